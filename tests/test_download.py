"""Resumable, verified download and safe unpacking against a local HTTP server with Range support."""

from __future__ import annotations

import collections
import hashlib
import io
import os
import re
import tarfile
import threading
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from signkd.data import download as dl
from signkd.data.download import DownloadError, UnpackError, download, fetch_dataset, unpack
from signkd.data.phoenix import read_phoenix2014t
from tests.fixtures_phoenix import VIDEOS, make_phoenix2014t

PAYLOAD = os.urandom(300_000)


class FileServer:
    """Serves in-memory files; can ignore Range, or cut the first response after `cut_after` bytes."""

    def __init__(self):
        self.files: dict[str, bytes] = {}
        self.requests: list[dict] = []
        self.ignore_range = False
        self.cut_after: int | None = None
        self.content_encoding: str | None = None  # a label some servers put on .tar.gz files
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                server.requests.append({"path": self.path, "range": self.headers.get("Range")})
                data = server.files.get(self.path)
                if data is None:
                    self.send_error(404)
                    return
                start, status = 0, 200
                m = re.fullmatch(r"bytes=(\d+)-", self.headers.get("Range") or "")
                if m and not server.ignore_range:
                    start, status = int(m.group(1)), 206
                    if start >= len(data):
                        self.send_response(416)
                        self.send_header("Content-Range", f"bytes */{len(data)}")
                        self.send_header("Content-Length", "0")
                        self.end_headers()
                        return
                body = data[start:]
                self.send_response(status)
                self.send_header("Content-Length", str(len(body)))
                if server.content_encoding:
                    self.send_header("Content-Encoding", server.content_encoding)
                if status == 206:
                    self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
                self.end_headers()
                if server.cut_after is not None:
                    body, server.cut_after = body[: server.cut_after], None  # drop the connection once
                self.wfile.write(body)
                self.wfile.flush()

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.02,), daemon=True)
        self.thread.start()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}{path}"

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server():
    srv = FileServer()
    srv.files["/data.bin"] = PAYLOAD
    yield srv
    srv.close()


def _get(url, dest, **kw):
    return download(url, dest, progress=False, chunk_size=1 << 14, retry_wait=0, **kw)


def test_full_download_writes_sidecar_and_skips_when_done(server, tmp_path):
    dest = tmp_path / "d" / "data.bin"
    digest = hashlib.sha256(PAYLOAD).hexdigest()
    assert _get(server.url("/data.bin"), dest, sha256=digest, expected_size=len(PAYLOAD)) == dest
    assert dest.read_bytes() == PAYLOAD
    assert (tmp_path / "d" / "data.bin.sha256").read_text() == f"{digest}  data.bin\n"
    assert not dest.with_suffix(".bin.part").exists()
    _get(server.url("/data.bin"), dest, sha256=digest)
    assert len(server.requests) == 1  # verified from the sidecar, not fetched again
    with pytest.raises(DownloadError, match="exists but its sha256 is .* delete it"):
        _get(server.url("/data.bin"), dest, sha256="0" * 64)


def test_cut_transfer_is_resumed_with_range(server, tmp_path):
    server.cut_after = 100_000
    dest = _get(server.url("/data.bin"), tmp_path / "data.bin")
    assert dest.read_bytes() == PAYLOAD
    first, second = [r["range"] for r in server.requests]
    resumed_at = int(re.fullmatch(r"bytes=(\d+)-", second).group(1))
    assert first is None and 0 < resumed_at <= 100_000  # a chunk cut short is fetched again


def test_existing_part_is_resumed(server, tmp_path):
    dest = tmp_path / "data.bin"
    Path(str(dest) + ".part").write_bytes(PAYLOAD[:150_000])
    _get(server.url("/data.bin"), dest, sha256=hashlib.sha256(PAYLOAD).hexdigest())
    assert dest.read_bytes() == PAYLOAD
    assert server.requests[0]["range"] == "bytes=150000-"


def test_server_ignoring_range_restarts_from_zero(server, tmp_path):
    server.ignore_range = True
    dest = tmp_path / "data.bin"
    Path(str(dest) + ".part").write_bytes(b"\0" * 150_000)  # wrong bytes: must not survive
    _get(server.url("/data.bin"), dest)
    assert dest.read_bytes() == PAYLOAD
    assert server.requests[0]["range"] == "bytes=150000-"


def test_complete_part_answered_416_is_finalised(server, tmp_path):
    dest = tmp_path / "data.bin"
    Path(str(dest) + ".part").write_bytes(PAYLOAD)
    _get(server.url("/data.bin"), dest, expected_size=len(PAYLOAD))
    assert dest.read_bytes() == PAYLOAD


def test_checksum_mismatch_is_rejected(server, tmp_path):
    dest = tmp_path / "data.bin"
    url = server.url("/data.bin")
    with pytest.raises(DownloadError) as err:
        _get(url, dest, sha256="ab" * 32)
    msg = str(err.value)
    assert url in msg and "ab" * 32 in msg and hashlib.sha256(PAYLOAD).hexdigest() in msg
    assert not dest.exists() and not Path(str(dest) + ".part").exists()


def test_size_mismatch_and_http_error(server, tmp_path):
    with pytest.raises(DownloadError, match="expected_size is 5"):
        _get(server.url("/data.bin"), tmp_path / "a.bin", expected_size=5)
    with pytest.raises(DownloadError, match="HTTP 404"):
        _get(server.url("/missing.bin"), tmp_path / "b.bin")


def test_not_enough_disk_space(server, tmp_path, monkeypatch):
    usage = collections.namedtuple("usage", "total used free")
    monkeypatch.setattr(dl.shutil, "disk_usage", lambda p: usage(10**6, 10**6 - 1000, 1000))
    with pytest.raises(DownloadError, match="not enough free disk space"):
        _get(server.url("/data.bin"), tmp_path / "data.bin")
    assert not (tmp_path / "data.bin").exists()


def _tar_gz(src: Path, arcname: str) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        tar.add(src, arcname=arcname)
    return buf.getvalue()


def test_fetch_dataset_unpacks_official_layout(server, tmp_path):
    base = make_phoenix2014t(tmp_path / "src")
    server.files["/phoenix-2014-T.v3.tar.gz"] = _tar_gz(base, "PHOENIX-2014-T-release-v3/PHOENIX-2014-T")
    raw = tmp_path / "raw"
    target = fetch_dataset(server.url("/phoenix-2014-T.v3.tar.gz"), raw, "phoenix2014t", progress=False)
    assert target == raw / "phoenix2014t"
    assert (raw / "downloads" / "phoenix-2014-T.v3.tar.gz").is_file()
    splits = read_phoenix2014t(target)
    assert [s.id for s in splits["train"]] == [v[0] for v in VIDEOS["train"]]
    fetch_dataset(server.url("/phoenix-2014-T.v3.tar.gz"), raw, "phoenix2014t", progress=False)
    assert len(server.requests) == 1  # marker says it is done


def test_corrupt_archives_name_the_file(tmp_path):
    good = _tar_gz(make_phoenix2014t(tmp_path / "src"), "PHOENIX-2014-T")
    cases = {"trunc.tar.gz": good[: len(good) // 2], "junk.tgz": b"not an archive" * 10, "bad.zip": b"PK\3\4junk"}
    for name, data in cases.items():
        (tmp_path / name).write_bytes(data)
        with pytest.raises(UnpackError, match=f"{name} is corrupt or incomplete.*delete it"):
            unpack(tmp_path / name, tmp_path / "out", progress=False)
        assert not (tmp_path / "out").exists()
    (tmp_path / "x.rar").write_bytes(b"Rar!")
    with pytest.raises(UnpackError, match="unknown archive type"):
        unpack(tmp_path / "x.rar", tmp_path / "out")


def _tar_with(tmp_path: Path, *members: tarfile.TarInfo) -> Path:
    path = tmp_path / "evil.tar"
    with tarfile.open(path, "w") as tar:
        for info in members:
            tar.addfile(info, io.BytesIO(b"x" * info.size) if info.isfile() else None)
    return path


def _file(name: str) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.size = 1
    return info


def _symlink(name: str, target: str) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.linkname = tarfile.SYMTYPE, target
    return info


@pytest.mark.parametrize("members", [
    [_file("ok/a.txt"), _file("ok/../../evil.txt")],
    [_file("/tmp/evil.txt")],
    [_symlink("ok/link", "../../outside")],
])
def test_path_traversal_is_refused(tmp_path, members):
    archive = _tar_with(tmp_path, *members)
    with pytest.raises(UnpackError, match="unsafe .*path"):
        unpack(archive, tmp_path / "sub" / "out", progress=False)
    assert not (tmp_path / "sub" / "out").exists() and not (tmp_path / "evil.txt").exists()


def test_zip_traversal_refused_and_inner_symlink_allowed(tmp_path):
    with zipfile.ZipFile(tmp_path / "e.zip", "w") as zf:
        zf.writestr("a/../../evil.txt", b"x")
    with pytest.raises(UnpackError, match="unsafe member path"):
        unpack(tmp_path / "e.zip", tmp_path / "out", progress=False)
    archive = _tar_with(tmp_path, _file("d/a.txt"), _symlink("d/e/link", "../a.txt"))
    out = unpack(archive, tmp_path / "ok", progress=False)
    assert (out / "d" / "e" / "link").read_bytes() == b"x"


@pytest.mark.parametrize("encoding", ["x-gzip", "gzip"])
def test_a_tar_gz_labelled_gzip_encoded_is_stored_as_sent(server, tmp_path, encoding):
    """A server that labels a .tar.gz `Content-Encoding: x-gzip` must not have it unzipped on the fly
    (the size check would then fail on every rerun): the stored file is the archive, byte for byte."""
    import gzip

    archive = gzip.compress(PAYLOAD)
    server.files["/a.tar.gz"] = archive
    server.content_encoding = encoding
    dest = download(server.url("/a.tar.gz"), tmp_path / "a.tar.gz", progress=False,
                    sha256=hashlib.sha256(archive).hexdigest())
    assert dest.read_bytes() == archive
