"""The MediaPipe Tasks model files (`.task` bundles) behind `keypoints.backend: tasks`.

A Tasks landmarker needs a model file that no wheel ships, so the pipeline fetches it when the
backend starts (never at import: importing must not touch the network, and a stage that never uses
the backend must not need one). The file's sha256 is the part of the extraction's cache key that
says which model made the stored keypoints, so it is always known: enforced when pinned in
params.yaml, otherwise computed and reported with a warning to pin it. The bytes a worker loads are
checked against that digest again (`read_verified`), so the model that ran is the one in the key.
"""

from __future__ import annotations

import hashlib
import logging
import os
from dataclasses import dataclass, replace
from pathlib import Path
from urllib.parse import urlparse

from signkd.errors import InputError, one_line

log = logging.getLogger(__name__)

PARTS = ("hand", "pose", "face")  # keypoints.tasks.<part>, in the order the backend runs them


class ModelFileError(InputError, RuntimeError):
    """A model file is missing and cannot be fetched, or is not the pinned one; one line naming the key."""


@dataclass(frozen=True)
class ModelFile:
    """One `keypoints.tasks.<part>` entry (or a checkpoint's record of it); picklable for workers."""

    part: str
    path: str
    url: str = ""
    sha256: str = ""  # pinned, or after `ensure` the file's own digest

    @property
    def key(self) -> str:
        return f"keypoints.tasks.{self.part}"


def configured(tasks: dict[str, dict]) -> tuple[ModelFile, ...]:
    """The entries of `keypoints.tasks` (as a dict) or of a checkpoint's record whose path is set,
    in PARTS order: an empty path means that part is not extracted."""
    unknown = sorted(set(tasks) - set(PARTS))
    if unknown:
        raise ModelFileError(f"unknown keypoints.tasks parts {unknown}; use {', '.join(PARTS)}")
    return tuple(ModelFile(part, str(entry.get("path") or ""), str(entry.get("url") or ""),
                           str(entry.get("sha256") or "").strip().lower())
                 for part in PARTS if (entry := tasks.get(part) or {}).get("path"))


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _sha256_file(path: Path) -> str:
    # imported here: requests and tqdm come with it, and importing this module must stay light
    from signkd.data.download import sha256_file

    return sha256_file(path)


def ensure(model: ModelFile, *, progress: bool = True) -> ModelFile:
    """`model` with `sha256` set to its file's digest, once the file is at `model.path`: fetched
    from `model.url` when missing (atomically: it appears complete or not at all). A pinned sha256
    that does not match refuses the file; an empty one is computed and a warning says to pin it."""
    dest = Path(model.path)
    if not dest.is_file():
        _fetch(model, dest, progress)
    digest = _sha256_file(dest)
    if model.sha256 and digest != model.sha256:
        raise ModelFileError(f"{model.key}.sha256: {dest} has sha256 {digest}, not the pinned {model.sha256}; "
                             f"delete {dest} so that {model.url or 'the url'} is fetched again, or correct the pin")
    if not model.sha256:
        log.warning("%s.sha256 is empty: %s has sha256 %s; pin it in params.yaml so that another file is refused",
                    model.key, dest, digest)
    return replace(model, sha256=digest)


def _fetch(model: ModelFile, dest: Path, progress: bool) -> None:
    """Download into a hidden sibling, check the pin, then rename into place."""
    if not model.url:
        raise ModelFileError(f"{model.key}.path: {dest} does not exist and {model.key}.url is empty; "
                             f"put the .task file there or set {model.key}.url")
    scheme = urlparse(model.url).scheme.lower()
    if scheme not in ("http", "https"):
        raise ModelFileError(f"{model.key}.url must be an http:// or https:// address, got {model.url!r}")
    from signkd.data.download import download

    tmp = dest.with_name(f".{dest.name}.download")
    log.info("fetching %s from %s", dest, model.url)
    try:
        download(model.url, tmp, progress=progress, retries=1, retry_wait=1.0, timeout=30.0)
    except Exception as err:  # noqa: BLE001 - DownloadError, requests' and OS errors alike: one line for the user
        reason = one_line(str(err).splitlines()[0] if str(err).strip() else type(err).__name__)[:240]
        raise ModelFileError(f"{model.key}.path: {dest} is missing and cannot be fetched from {model.url} ({reason}); "
                             f"copy the file there from a machine with network access, or fix {model.key}.url") from None
    tmp.with_name(tmp.name + ".sha256").unlink(missing_ok=True)  # download()'s sidecar: not ours to keep
    digest = _sha256_file(tmp)
    if model.sha256 and digest != model.sha256:
        tmp.unlink(missing_ok=True)
        raise ModelFileError(f"{model.key}.sha256: {model.url} served a file with sha256 {digest}, not the pinned "
                             f"{model.sha256}; it was deleted. Check {model.key}.url and the pin")
    os.replace(tmp, dest)


def read_verified(model: ModelFile) -> bytes:
    """The file's bytes, refused unless their sha256 is `model.sha256` (set by `ensure`)."""
    data = Path(model.path).read_bytes()
    digest = sha256_bytes(data)
    if digest != model.sha256:
        raise ModelFileError(f"{model.key}: {model.path} changed while extracting (sha256 {digest}, started with "
                             f"{model.sha256}); re-run so that the cache key names the model that ran")
    return data


def recorded(tasks: dict[str, dict]) -> dict[str, dict[str, str]]:
    """What a checkpoint records per extracted part: path, url and sha256 (the pinned one, else the
    file's own when it is there), so that `recognize` runs, or fetches, exactly that model."""
    out = {}
    for model in configured(tasks):
        digest = model.sha256 or (_sha256_file(Path(model.path)) if Path(model.path).is_file() else "")
        out[model.part] = {"path": model.path, "url": model.url, "sha256": digest}
    return out
