"""Fetch and unpack an official dataset archive robustly.

The Phoenix archives are tens of GB on an academic FTP/HTTP server: transfers get cut, disks fill
up, mirrors serve truncated files. So a download resumes from its `.part` file with an HTTP Range
request, checks disk space first, verifies size and checksum before the file takes its final
name, and unpacking refuses unsafe member paths and appears in place only when complete.
"""

from __future__ import annotations

import hashlib
import lzma
import os
import posixpath
import re
import shutil
import tarfile
import time
import zipfile
import zlib
from pathlib import Path
from urllib.parse import urlparse

import requests
import urllib3
from tqdm import tqdm

from signkd.errors import InputError
from signkd.io import atomic_dir, write_text

TAR_SUFFIXES = (".tar", ".tar.gz", ".tgz", ".tar.bz2", ".tbz2", ".tar.xz")
MARKER = ".signkd-unpacked"
_SPACE_MARGIN = 64 << 20  # keep some room so the filesystem is not filled to the last byte


class DownloadError(InputError, RuntimeError):
    """A download cannot complete or its result does not match what was expected."""


class UnpackError(InputError, RuntimeError):
    """An archive is corrupt, of an unknown type, or contains unsafe member paths."""


def sha256_file(path: str | os.PathLike, chunk_size: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(chunk_size):
            digest.update(chunk)
    return digest.hexdigest()


def download(
    url: str,
    dest: str | os.PathLike,
    *,
    expected_size: int = 0,
    sha256: str = "",
    progress: bool = True,
    chunk_size: int = 1 << 20,
    retries: int = 3,
    retry_wait: float = 2.0,
    timeout: float = 60.0,
) -> Path:
    """Download `url` to `dest`, resuming an earlier `.part`; verified before it is renamed into place.

    `expected_size` 0 means "trust the server's length"; an empty `sha256` means the digest is
    recorded in `dest.sha256` but not enforced. A cut connection is resumed up to `retries` times.
    """
    dest = Path(dest)
    sha256 = sha256.strip().lower()
    if dest.exists():
        _check_existing(dest, url, expected_size, sha256)
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_suffix(dest.suffix + ".part")

    for attempt in range(retries + 1):
        try:
            digest, total = _transfer(url, part, expected_size, progress, chunk_size, timeout)
            break
        except (requests.ConnectionError, requests.Timeout, _Incomplete) as exc:
            if attempt == retries:
                raise DownloadError(
                    f"downloading {url} failed after {retries + 1} attempts ({exc}); "
                    f"{part} keeps what arrived, re-run to resume"
                ) from exc
            time.sleep(retry_wait * (attempt + 1))

    size = part.stat().st_size
    if total and size != total:
        part.unlink()
        raise DownloadError(f"{url}: received {size} bytes but expected {total}; the partial file was deleted, re-run")
    if sha256 and digest != sha256:
        part.unlink()
        raise DownloadError(
            f"checksum mismatch for {url}: expected sha256 {sha256}, got {digest}; the download was deleted. "
            "Re-run to download again; if it persists, the server has a different file than "
            "data.download.sha256 describes (check the URL and the checksum)"
        )
    write_text(_sidecar(dest), f"{digest}  {dest.name}\n")
    os.replace(part, dest)
    return dest


class _Incomplete(Exception):
    """The body ended before the announced length: resumable like a dropped connection."""


def _transfer(url: str, part: Path, expected_size: int, progress: bool, chunk_size: int, timeout: float):
    """One HTTP request appending to `part`; returns (sha256 of the whole part, total size or 0)."""
    offset = part.stat().st_size if part.exists() else 0
    # identity: the archive's own bytes. A server that still labels the body `Content-Encoding: gzip`
    # (some do for .tar.gz) is not decoded on the fly below, so sizes and checksums are the file's
    headers = {"Accept-Encoding": "identity", **({"Range": f"bytes={offset}-"} if offset else {})}
    with requests.get(url, headers=headers, stream=True, timeout=timeout) as resp:
        if resp.status_code == 416:  # nothing left to send: the part is (at least) complete
            total = _total_from_content_range(resp.headers.get("Content-Range", "")) or expected_size
            if total and offset > total:
                part.unlink()
                raise _Incomplete(f"{part} is larger than the file on the server; restarting from zero")
            return sha256_file(part), total or offset
        if resp.status_code >= 500:
            raise requests.ConnectionError(f"server error {resp.status_code} for {url}")
        if resp.status_code not in (200, 206):
            raise DownloadError(f"{url} answered HTTP {resp.status_code} {resp.reason}; check data.download.url")

        if resp.status_code == 206:
            start = _start_from_content_range(resp.headers.get("Content-Range", ""))
            if start != offset:
                raise DownloadError(f"{url} resumed at byte {start}, not at {offset}; delete {part} and re-run")
            total = _total_from_content_range(resp.headers.get("Content-Range", ""))
            mode = "ab"
        else:  # 200: a fresh start, or a server that ignores Range (then the part is rewritten)
            offset = 0
            total = int(resp.headers.get("Content-Length", 0) or 0)
            mode = "wb"
        if expected_size and total and total != expected_size:
            raise DownloadError(
                f"{url} has {total} bytes but data.download.expected_size is {expected_size}; "
                "the URL may point to another version of the file"
            )
        total = expected_size or total
        _check_space(part.parent, total - offset if total else 0, url)

        digest = hashlib.sha256()
        if offset:
            with open(part, "rb") as f:
                while chunk := f.read(1 << 20):
                    digest.update(chunk)
        written = offset
        bar = tqdm(total=total or None, initial=offset, unit="B", unit_scale=True, unit_divisor=1024,
                   desc=part.name.removesuffix(".part"), disable=not progress)
        try:
            with open(part, mode) as f:
                try:
                    for chunk in resp.raw.stream(chunk_size, decode_content=False):
                        f.write(chunk)
                        digest.update(chunk)
                        written += len(chunk)
                        bar.update(len(chunk))
                except (requests.exceptions.ChunkedEncodingError, urllib3.exceptions.HTTPError) as exc:
                    raise _Incomplete(f"connection dropped after {written} bytes ({exc})") from exc
        finally:
            bar.close()
    if total and written < total:
        raise _Incomplete(f"connection closed after {written} of {total} bytes")
    return digest.hexdigest(), total


def _start_from_content_range(value: str) -> int:
    m = re.match(r"bytes (\d+)-\d+/", value.strip())
    return int(m.group(1)) if m else -1


def _total_from_content_range(value: str) -> int:
    m = re.search(r"/(\d+)\s*$", value.strip())
    return int(m.group(1)) if m else 0


def _check_space(folder: Path, needed: int, what: str) -> None:
    free = shutil.disk_usage(folder).free
    if needed and free < needed + _SPACE_MARGIN:
        raise DownloadError(
            f"not enough free disk space in {folder} for {what}: need {_human(needed)} "
            f"(+{_human(_SPACE_MARGIN)} margin), {_human(free)} free; free some space or set data.raw_dir to a larger disk"
        )


def _human(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.1f} {unit}" if unit != "B" else f"{n} B"
        n /= 1024
    return f"{n:.1f} GiB"


def _sidecar(dest: Path) -> Path:
    return dest.with_name(dest.name + ".sha256")


def _check_existing(dest: Path, url: str, expected_size: int, sha256: str) -> None:
    """Accept a finished download if it matches; the sidecar digest is reused to skip re-hashing."""
    size = dest.stat().st_size
    if expected_size and size != expected_size:
        raise DownloadError(f"{dest} exists with {size} bytes, expected {expected_size}; delete it to download {url} again")
    sidecar = _sidecar(dest)
    digest = ""
    if sidecar.is_file() and sidecar.stat().st_mtime >= dest.stat().st_mtime:
        digest = next(iter(sidecar.read_text(encoding="utf-8").split()), "")
    if not digest:
        digest = sha256_file(dest)
        write_text(sidecar, f"{digest}  {dest.name}\n")
    if sha256 and digest != sha256:
        raise DownloadError(
            f"{dest} exists but its sha256 is {digest}, expected {sha256}; delete it (and {sidecar.name}) to download {url} again"
        )


def unpack(archive: str | os.PathLike, dest_dir: str | os.PathLike, *, progress: bool = True) -> Path:
    """Extract a tar(.gz/.bz2/.xz) or zip into `dest_dir`, which appears only once extraction succeeded.

    Members with absolute paths, `..` components or links leaving the archive are refused, so a
    hostile or broken archive cannot write outside `dest_dir`.
    """
    archive, dest_dir = Path(archive), Path(dest_dir)
    if not archive.is_file():
        raise UnpackError(f"archive {archive} does not exist; download it first")
    name = archive.name.lower()
    is_zip = name.endswith(".zip")
    if not is_zip and not name.endswith(TAR_SUFFIXES):
        raise UnpackError(f"{archive}: unknown archive type; expected one of {', '.join(TAR_SUFFIXES + ('.zip',))}")
    dest_dir.parent.mkdir(parents=True, exist_ok=True)
    _check_space(dest_dir.parent, archive.stat().st_size, f"unpacking {archive.name}")
    try:
        with atomic_dir(dest_dir) as tmp:
            if is_zip:
                _unzip(archive, tmp)
            else:
                _untar(archive, tmp, progress)
    except tarfile.FilterError as exc:  # what the stdlib "data" filter refuses beyond our own checks
        raise UnpackError(f"archive {archive} has an unsafe member ({exc}); refusing to unpack it") from exc
    except KeyError as exc:  # tarfile: a hard link to a member the archive does not hold (found by fuzzing)
        raise UnpackError(f"archive {archive} has a link to a member it does not contain ({exc.args[0]}); "
                          "it is damaged or not a dataset archive: download it again") from exc
    except (tarfile.TarError, zipfile.BadZipFile, EOFError, zlib.error, lzma.LZMAError) as exc:
        raise _corrupt(archive, exc) from exc
    except OSError as exc:
        if exc.errno is not None:
            raise  # a real I/O problem (disk full, permissions), not a damaged archive
        raise _corrupt(archive, exc) from exc  # gzip/bz2 report bad data as OSError without errno
    return dest_dir


def _corrupt(archive: Path, exc: Exception) -> UnpackError:
    return UnpackError(
        f"archive {archive} is corrupt or incomplete ({type(exc).__name__}: {exc}); "
        f"delete it (and {archive.name}.sha256) and re-run to download it again"
    )


def _safe_member(archive: Path, name: str, link: str | None = None) -> None:
    """Refuse absolute member names, any `..` component, and links that resolve outside the tree."""
    name = name.replace("\\", "/")
    bad = name.startswith("/") or re.match(r"^[A-Za-z]:", name) or ".." in name.split("/")
    what, path = "member", name
    if not bad and link is not None:
        target = posixpath.normpath(link.replace("\\", "/"))
        bad = target.startswith("/") or re.match(r"^[A-Za-z]:", target) or target == ".." or target.startswith("../")
        what, path = "link target", link
    if bad:
        raise UnpackError(
            f"archive {archive} has an unsafe {what} path {path!r} (absolute or with '..'); "
            "refusing to unpack it: it could write outside the target folder. Get the archive from the official source"
        )


def _untar(archive: Path, target: Path, progress: bool) -> None:
    """One streaming pass: each member is checked, then extracted (no second pass over tens of GB)."""
    kinds: dict[str, bool] = {}  # member path -> is a folder
    with tarfile.open(archive, mode="r|*") as tar, tqdm(unit=" files", desc=f"unpack {archive.name}", disable=not progress) as bar:
        for member in tar:
            if member.isdev() or member.isfifo():
                raise UnpackError(f"archive {archive} contains a device/fifo member {member.name!r}; refusing to unpack it")
            link = member.linkname if (member.issym() or member.islnk()) else None
            if member.issym() and link and not link.startswith("/"):
                link = posixpath.join(posixpath.dirname(member.name), link)  # relative to the link's folder
            _safe_member(archive, member.name, link)
            _consistent_member(archive, member, kinds)
            tar.extract(member, target, filter="data")
            bar.update(1)


def _consistent_member(archive: Path, member: tarfile.TarInfo, kinds: dict[str, bool]) -> None:
    """Refuse a member that would name the target folder itself, be both a file and a folder, or
    sit below a file (each made extraction fail with an OS error; found by fuzzing)."""
    path = posixpath.normpath(member.name.replace("\\", "/"))
    is_dir = member.isdir()
    problem = None
    if not is_dir and (path in (".", "") or member.name.replace("\\", "/").split("/")[-1] in (".", "")):
        problem = "is a file but names a folder"
    elif kinds.get(path, is_dir) != is_dir:
        problem = "appears both as a file and as a folder"
    else:
        parts = path.split("/")
        if any(kinds.get("/".join(parts[:k]), True) is False for k in range(1, len(parts))):
            problem = "lies below a member that is a file"
    if problem:
        raise UnpackError(f"archive {archive}: member {member.name!r} {problem}; it is damaged or not a dataset "
                          "archive: download it again")
    kinds[path] = is_dir


def _unzip(archive: Path, target: Path) -> None:
    with zipfile.ZipFile(archive) as zf:
        for info in zf.infolist():
            _safe_member(archive, info.filename)
        zf.extractall(target)  # each member's CRC is checked as it is read


def fetch_dataset(
    url: str,
    raw_dir: str | os.PathLike,
    name: str,
    *,
    expected_size: int = 0,
    sha256: str = "",
    progress: bool = True,
    keep_archive: bool = True,
) -> Path:
    """Download `url` into `raw_dir/downloads/` and unpack it into `raw_dir/<name>`; skip what is done.

    A marker file written after unpacking says the folder is complete, so an interrupted unpack is
    redone rather than trusted.
    """
    raw_dir = Path(raw_dir)
    target = raw_dir / name
    marker = target / MARKER
    if marker.is_file():
        return target
    basename = posixpath.basename(urlparse(url).path) or f"{name}.tar.gz"
    archive = download(url, raw_dir / "downloads" / basename, expected_size=expected_size, sha256=sha256, progress=progress)
    unpack(archive, target, progress=progress)
    digest = _sidecar(archive).read_text(encoding="utf-8").split()[0]
    write_text(marker, f"{basename} sha256={digest}\n")
    if not keep_archive:
        archive.unlink()
    return target
