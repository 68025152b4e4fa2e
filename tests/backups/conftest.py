"""Servers of the backup tests, started by the tests themselves and stopped at session end.

- PostgreSQL: ``pg_server`` (tests/conftest.py); like the chart's PostgreSQL it has the
  superuser `postgres` and a role `odoo` without CREATEDB that owns the tenant database.
- S3: moto's server (`moto[server]` from PyPI, in the dev extras): a pure-Python implementation
  of the S3 REST API (SigV4, ListObjectsV2, multipart uploads), on 127.0.0.1 and a free port.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator

import pytest

from scripts.gotrue import free_port
from tests.backups.helpers import PgServer, S3Server


def wait_port(port: int, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise AssertionError(f"nothing listens on 127.0.0.1:{port} after {timeout}s")


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
