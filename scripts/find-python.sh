#!/bin/sh
# Print an interpreter the project can install on (CPython 3.10-3.12), or stop with one line.
# mediapipe 0.10.21 -- the last release with the Holistic API and offline models -- has wheels for
# CPython 3.10-3.12 only, so a python3 that is 3.13 (Debian 13, Ubuntu 25.04) cannot install it.
# $PYTHON (make repro PYTHON=...) is tried first; if it is not supported, the others are tried.
supported() { "$1" -c 'import sys; sys.exit(not ((3, 10) <= sys.version_info[:2] <= (3, 12)))' 2>/dev/null; }
for py in ${PYTHON:-} python3 python3.12 python3.11 python3.10; do
  command -v "$py" >/dev/null 2>&1 || continue
  if supported "$py"; then
    if [ -n "${PYTHON:-}" ] && [ "$py" != "$PYTHON" ]; then
      version=$("$PYTHON" -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>/dev/null) || version=""
      if [ -n "$version" ]; then
        echo "note: $PYTHON is Python $version, which mediapipe 0.10.21 does not support; using $py" >&2
      else
        echo "note: $PYTHON does not run here; using $py" >&2
      fi
    fi
    command -v "$py"
    exit 0
  fi
done
echo "error: SignKD needs Python 3.10, 3.11 or 3.12 (mediapipe 0.10.21 has no wheel for newer ones) and found none; install one (e.g. 'pyenv install 3.12' or 'apt-get install python3.12-venv') and run 'make repro PYTHON=python3.12'" >&2
exit 1
