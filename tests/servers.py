"""Local servers shared by several test folders, started by the tests, stopped at session end.

- PostgreSQL (`pg_server`, registered in tests/conftest.py): Debian's server binaries
  (`/usr/lib/postgresql/<major>/bin`, package `postgresql` in scripts/apt-packages.txt), a
  throw-away cluster owned by the `postgres` system user (tests run as root; PostgreSQL refuses
  to), on 127.0.0.1 and a free port, trust authentication (``scripts/gotrue.py``'s
  ``Postgres``, which `make api AUTH=gotrue` uses too). Like the chart's PostgreSQL: the
  superuser `postgres` and a role `odoo` without CREATEDB that owns the tenant database.
  The backup, auth and Odoo tests share it.
"""

from __future__ import annotations

import contextlib
import shutil
import socket
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from scripts.gotrue import Postgres, free_port
from tests.backups.helpers import PgServer

__all__ = ["free_port", "pg_server", "running_pg", "wait_port"]


def wait_port(port: int, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise AssertionError(f"nothing listens on 127.0.0.1:{port} after {timeout}s")


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PgServer]:
    with running_pg() as server:
        yield server


@contextlib.contextmanager
def running_pg() -> Iterator[PgServer]:
    """A throw-away PostgreSQL server (see the module's docstring), stopped on exit."""
    base = Path(tempfile.mkdtemp(prefix="saasodoo-pg-"))
    try:
        pg = Postgres(base).start()
    except RuntimeError as exc:
        shutil.rmtree(base, ignore_errors=True)
        pytest.fail(str(exc))
    server = PgServer(host="127.0.0.1", port=pg.port, bindir=pg.bindir)
    try:
        server.admin("CREATE ROLE odoo LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE")
        yield server
    finally:
        pg.stop()
        shutil.rmtree(base, ignore_errors=True)
