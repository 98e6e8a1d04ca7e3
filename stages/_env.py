"""Imported first by every stage script: outside the project's virtual environment, say so in
one line instead of a ModuleNotFoundError traceback from the first `import signkd`."""

import importlib.util
import sys

if importlib.util.find_spec("signkd") is None:
    sys.exit(f"error: the signkd package is not installed for {sys.executable}; activate the project's "
             "environment first (`source .venv/bin/activate`, created by `make install`), then rerun")
