"""Servers of the backup tests, started by the tests themselves and stopped at session end.

- PostgreSQL: Debian's server binaries (`/usr/lib/postgresql/<major>/bin`, package `postgresql`
  in scripts/apt-packages.txt), a throw-away cluster owned by the `postgres` system user (tests
  run as root; PostgreSQL refuses to), on 127.0.0.1 and a free port, trust authentication.
  Like the chart's PostgreSQL: the superuser `postgres` and a role `odoo` without CREATEDB that
  owns the tenant database.
- S3: moto's server (`moto[server]` from PyPI, in the dev extras): a pure-Python implementation
  of the S3 REST API (SigV4, ListObjectsV2, multipart uploads), on 127.0.0.1 and a free port.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.backups.helpers import PgServer, S3Server


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_port(port: int, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise AssertionError(f"nothing listens on 127.0.0.1:{port} after {timeout}s")


def pg_bindir() -> Path:
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"))
    if not found:
        pytest.fail(
            "PostgreSQL server binaries not found under /usr/lib/postgresql: "
            "install Debian's `postgresql` (scripts/install-apt.sh)"
        )
    return found[-1].parent


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PgServer]:
    bindir = pg_bindir()
    base = Path(tempfile.mkdtemp(prefix="saasodoo-pg-"))
    data = base / "data"
    port = free_port()
    as_root = os.geteuid() == 0
    if as_root:
        shutil.chown(base, "postgres", "postgres")

    def run(*cmd: str) -> None:
        full = ["runuser", "-u", "postgres", "--", *cmd] if as_root else list(cmd)
        proc = subprocess.run(full, capture_output=True, text=True, check=False, cwd=base)
        if proc.returncode != 0:
            pytest.fail(f"{' '.join(cmd)} failed:\n{proc.stdout}\n{proc.stderr}")

    run(str(bindir / "initdb"), "-D", str(data), "-U", "postgres", "--auth=trust",
        "--encoding=UTF8", "--locale=C")  # fmt: skip
    run(str(bindir / "pg_ctl"), "-D", str(data), "-l", str(base / "log"), "-w", "start", "-o",
        f"-h 127.0.0.1 -p {port} -k {base} -c fsync=off -c full_page_writes=off")  # fmt: skip
    server = PgServer(host="127.0.0.1", port=port, bindir=bindir)
    try:
        server.admin("CREATE ROLE odoo LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE")
        yield server
    finally:
        run(str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop")
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture
def database(pg_server: PgServer) -> Iterator[str]:
    """A fresh tenant database owned by `odoo`, dropped afterwards with its restore copies."""
    name = f"t{uuid.uuid4().hex[:10]}"
    pg_server.admin(f'CREATE DATABASE "{name}" OWNER odoo')
    pg_server.admin(f'REVOKE ALL ON DATABASE "{name}" FROM PUBLIC')
    yield name
    for db in pg_server.databases(name):
        pg_server.admin(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')


@pytest.fixture(scope="session")
def s3_server() -> Iterator[S3Server]:
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_port(port)
        yield S3Server(endpoint=f"http://127.0.0.1:{port}")
    finally:
        proc.terminate()
        proc.wait(timeout=10)


@pytest.fixture
def bucket(s3_server: S3Server) -> str:
    name = f"bak-{uuid.uuid4().hex[:8]}"
    s3_server.client().create_bucket(Bucket=name)
    return name
