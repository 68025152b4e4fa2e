"""Servers of the backup tests, started by the tests themselves and stopped at session end.

- PostgreSQL: `pg_server` of tests/servers.py (shared with the auth and Odoo tests).
- S3: moto's server (`moto[server]` from PyPI, in the dev extras): a pure-Python implementation
  of the S3 REST API (SigV4, ListObjectsV2, multipart uploads), on 127.0.0.1 and a free port.
"""

from __future__ import annotations

import subprocess
import sys
import uuid
from collections.abc import Iterator

import pytest

from tests.backups.helpers import PgServer, S3Server
from tests.servers import free_port, wait_port


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
