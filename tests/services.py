"""Real servers for the `scale` tests: a throwaway PostgreSQL cluster and an MLflow tracking server.

Each starts on a free loopback port in a temporary folder and is stopped and deleted afterwards.
Where a server cannot start here (binaries missing, no user to run it as), the test is skipped
with the reason; `.ci/run` installs what they need.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Iterator

import pytest

PG_USER = "signkd"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _pg_bin() -> Path | None:
    """Debian keeps initdb/pg_ctl off PATH in /usr/lib/postgresql/<version>/bin."""
    found = shutil.which("pg_ctl")
    if found and shutil.which("initdb"):
        return Path(found).resolve().parent
    versions = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"), key=lambda p: int(Path(p).parts[-3]))
    return Path(versions[-1]).parent if versions else None


def _as_server_user() -> tuple[list[str], str | None]:
    """PostgreSQL refuses to run as root: as root, run it as the `postgres` user the package made."""
    if os.geteuid() != 0:
        return [], None
    try:
        pwd.getpwnam("postgres")
    except KeyError:
        pytest.skip("running as root and there is no 'postgres' user to run PostgreSQL as "
                    "(install Debian's postgresql package, as .ci/run does)")
    runuser = shutil.which("runuser")
    if runuser is None:
        pytest.skip("running as root without runuser(1) to start PostgreSQL as the 'postgres' user")
    return [runuser, "-u", "postgres", "--"], "postgres"


@contextlib.contextmanager
def postgres_server() -> Iterator[str]:
    """A fresh cluster on 127.0.0.1; yields the URL prefix `postgresql+psycopg://signkd@127.0.0.1:PORT`
    (trust authentication, superuser `signkd`); add `/<database>`."""
    pytest.importorskip("psycopg", reason="psycopg is not installed (pip install -e '.[dev]')")
    bindir = _pg_bin()
    if bindir is None:
        pytest.skip("PostgreSQL server binaries (initdb, pg_ctl) not found; install Debian's postgresql package "
                    "(.ci/run does: apt-get install postgresql)")
    prefix, owner = _as_server_user()
    # not under pytest's tmp_path: that is private to root, and the server user must enter it
    home = Path(tempfile.mkdtemp(prefix="signkd-pg-"))
    if owner:
        shutil.chown(home, owner)
    data, port = home / "data", free_port()
    run = lambda *args: subprocess.run([*prefix, *map(str, args)], capture_output=True, text=True, timeout=120)  # noqa: E731
    try:
        init = run(bindir / "initdb", "-D", data, "-U", PG_USER, "--auth=trust", "-E", "UTF8", "--no-sync")
        if init.returncode:
            pytest.skip(f"initdb failed, PostgreSQL cannot start here: {init.stderr.strip()[-500:]}")
        start = run(bindir / "pg_ctl", "-D", data, "-l", home / "server.log", "-w", "-t", "60", "-o",
                    f"-h 127.0.0.1 -p {port} -k {home} -c fsync=off -c max_connections=50", "start")
        if start.returncode:
            log = (home / "server.log").read_text(errors="replace")[-800:] if (home / "server.log").exists() else ""
            pytest.skip(f"PostgreSQL did not start: {start.stderr.strip()[-300:]} {log}")
        yield f"postgresql+psycopg://{PG_USER}@127.0.0.1:{port}"
    finally:
        if data.exists():
            run(bindir / "pg_ctl", "-D", data, "-m", "immediate", "-w", "stop")
        shutil.rmtree(home, ignore_errors=True)


def create_database(server_url: str, name: str) -> str:
    """CREATE DATABASE `name`; returns its SQLAlchemy URL."""
    import psycopg

    dsn = server_url.replace("postgresql+psycopg://", "postgresql://") + "/postgres"
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return f"{server_url}/{name}"


@contextlib.contextmanager
def mlflow_server(home: Path) -> Iterator[str]:
    """`mlflow server` with a SQLite backend and proxied artifacts under `home`; yields its URL."""
    port = free_port()
    log = open(home / "mlflow-server.log", "w")
    mlflow_cli = Path(sys.executable).parent / "mlflow"
    proc = subprocess.Popen(
        [str(mlflow_cli), "server", "--host", "127.0.0.1", "--port", str(port), "--workers", "1",
         "--backend-store-uri", f"sqlite:///{home / 'server.db'}",
         "--serve-artifacts", "--artifacts-destination", str(home / "artifacts")],
        stdout=log, stderr=subprocess.STDOUT, cwd=home, start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            if proc.poll() is not None:
                pytest.skip(f"mlflow server exited with {proc.returncode}: "
                            f"{(home / 'mlflow-server.log').read_text(errors='replace')[-800:]}")
            try:
                with urllib.request.urlopen(f"{url}/health", timeout=2) as response:
                    if response.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"mlflow server not healthy after 120 s: {(home / 'mlflow-server.log').read_text()[-800:]}")
            time.sleep(0.5)
        yield url
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, 15)  # the server's own process group: uvicorn and its workers
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, 9)
                proc.wait()
        log.close()
