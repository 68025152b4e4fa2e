"""Local servers shared by several test folders, started by the tests, stopped at session end.

- PostgreSQL (`pg_server`, registered in tests/conftest.py): Debian's server binaries
  (`/usr/lib/postgresql/<major>/bin`, package `postgresql` in scripts/apt-packages.txt), a
  throw-away cluster owned by the `postgres` system user (tests run as root; PostgreSQL refuses
  to), on 127.0.0.1 and a free port, trust authentication. Like the chart's PostgreSQL: the
  superuser `postgres` and a role `odoo` without CREATEDB that owns the tenant database.
  The backup tests and the Odoo tests share it.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.backups.helpers import PgServer


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
    with running_pg() as server:
        yield server


@contextlib.contextmanager
def running_pg() -> Iterator[PgServer]:
    """A throw-away PostgreSQL server (see the module's docstring), stopped on exit."""
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
