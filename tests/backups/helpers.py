"""What the backup tests share: the local servers and the chart's backup/restore programs."""

from __future__ import annotations

import hashlib
import os
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3

from tests.support import ROOT

FILES = ROOT / "charts" / "odoo-tenant" / "files"
S3_KEY = "test-access-key"
S3_SECRET = "test-secret-key"


@dataclass(frozen=True)
class PgServer:
    host: str
    port: int
    bindir: Path

    def env(self, database: str, user: str = "odoo") -> dict[str, str]:
        """libpq environment of the tenant role, as the chart gives the backup pod."""
        return {
            "PATH": f"{self.bindir}:{os.environ.get('PATH', '')}",
            "PGHOST": self.host,
            "PGPORT": str(self.port),
            "PGDATABASE": database,
            "PGUSER": user,
            "PGSSLMODE": "disable",
            "PGCONNECT_TIMEOUT": "10",
        }

    def psql(self, sql: str, database: str = "postgres", user: str = "postgres") -> str:
        proc = subprocess.run(
            ["psql", "--no-psqlrc", "-X", "-v", "ON_ERROR_STOP=1", "-At", "-c", sql],
            env={**os.environ, **self.env(database, user)},
            capture_output=True,
            text=True,
            check=False,
        )
        if proc.returncode != 0:
            raise AssertionError(f"psql {sql!r} failed: {proc.stderr}")
        return proc.stdout

    def admin(self, sql: str) -> str:
        return self.psql(sql)

    def databases(self, like: str) -> list[str]:
        out = self.admin(f"SELECT datname FROM pg_database WHERE datname LIKE '{like}%'")
        return sorted(out.split())

    def snapshot(self, database: str) -> dict[str, tuple[int, str]]:
        """Every user table: (row count, SHA-256 of its rows sorted)."""
        tables = self.psql(
            "SELECT schemaname || '.' || tablename FROM pg_tables "
            "WHERE schemaname NOT IN ('pg_catalog', 'information_schema') ORDER BY 1",
            database,
            "odoo",
        ).split()
        out = {}
        for table in tables:
            rows = self.psql(f"COPY {table} TO STDOUT", database, "odoo").splitlines()
            digest = hashlib.sha256("\n".join(sorted(rows)).encode()).hexdigest()
            out[table] = (len(rows), digest)
        return out


@dataclass(frozen=True)
class S3Server:
    endpoint: str

    def client(self) -> Any:
        return boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            aws_access_key_id=S3_KEY,
            aws_secret_access_key=S3_SECRET,
            region_name="us-east-1",
        )

    def env(self, bucket: str, prefix: str = "backups") -> dict[str, str]:
        return {
            "S3_ENDPOINT": self.endpoint,
            "S3_BUCKET": bucket,
            "S3_PREFIX": prefix,
            "S3_REGION": "us-east-1",
            "AWS_ACCESS_KEY_ID": S3_KEY,
            "AWS_SECRET_ACCESS_KEY": S3_SECRET,
        }


def run_script(name: str, args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """Run backup.py or restore.py as the pod does: `python3 <script> ...`, env only."""
    return subprocess.run(
        [sys.executable, str(FILES / name), *args],
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )


#: Where `run_killed` SIGKILLs restore.py: (function of restore.py to wrap, which call of it
#: triggers the kill, before or after that call runs).
KILL_POINTS: dict[str, tuple[str, int, str]] = {
    "loading the dump": ("DumpFilter.feed", 1, "after"),
    "checking the copy": ("check_copy", 1, "before"),
    "after the journal": ("write_journal", 1, "after"),  # nothing renamed yet
    "filestore half switched": ("Path.rename", 2, "after"),  # journal.tmp, live -> previous
    "filestore switched": ("Path.rename", 3, "after"),  # ..., scratch -> live
    "databases switched": ("admin_sql", 0, "rename"),  # right after the renaming transaction
}

KILLER = """
import os, pathlib, signal, sys
sys.dont_write_bytecode = True  # nothing written beside the chart files
sys.path.insert(0, sys.argv[1])
import restore
where, nth, when = sys.argv[2], int(sys.argv[3]), sys.argv[4]
owner = pathlib.Path if where == "Path.rename" else (
    restore.DumpFilter if where.startswith("DumpFilter.") else restore)
attr = where.rsplit(".", 1)[-1]
real = getattr(owner, attr)
calls = [0]
def die():
    sys.stdout.flush()
    os.killpg(os.getpgrp(), signal.SIGKILL)
def wrapped(*args, **kwargs):
    calls[0] += 1
    if when == "before" and calls[0] == nth:
        die()
    result = real(*args, **kwargs)
    if when == "after" and calls[0] == nth:
        die()
    if when == "rename" and "RENAME TO" in str(args[0]):
        die()
    return result
setattr(owner, attr, wrapped)
sys.exit(restore.main(sys.argv[5:]))
"""


def run_killed(
    point: str, args: list[str], env: dict[str, str]
) -> subprocess.CompletedProcess[str]:
    """restore.py, SIGKILLed with its process group (psql too, as a pod kill does) at `point`."""
    where, nth, when = KILL_POINTS[point]
    return subprocess.run(
        [sys.executable, "-c", KILLER, str(FILES), where, str(nth), when, *args],
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
        start_new_session=True,
    )


PAUSER = """
import pathlib, sys, time
sys.dont_write_bytecode = True  # nothing written beside the chart files
sys.path.insert(0, sys.argv[1])
module = __import__(sys.argv[2])
attr, gate = sys.argv[3], pathlib.Path(sys.argv[4])
real = getattr(module, attr)
def wrapped(*args, **kwargs):
    (gate / "paused").touch()
    while not (gate / "go").exists():
        time.sleep(0.1)
    return real(*args, **kwargs)
setattr(module, attr, wrapped)
sys.exit(module.main(sys.argv[5:]))
"""


def start_paused(
    script: str, where: str, args: list[str], env: dict[str, str], gate: Path
) -> subprocess.Popen[str]:
    """backup.py or restore.py, started and paused before its first call of the module
    function ``where`` (e.g. ``write_zip``) until ``gate/go`` exists; ``gate/paused`` tells
    that it got there (see ``wait_paused``)."""
    gate.mkdir(parents=True, exist_ok=True)
    return subprocess.Popen(
        [sys.executable, "-c", PAUSER, str(FILES), script.removesuffix(".py"), where, str(gate),
         *args],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip


def start_serving(
    dest: Path, name: str, token: str, seconds: int, *, digest: str | None = None
) -> tuple[subprocess.Popen[str], str]:
    """restore.py --serve of ``name`` from the backup directory ``dest`` on a free port of
    127.0.0.1, for ``token`` (or the SHA-256 ``digest`` of one): (process, base URL)."""
    digest = digest or hashlib.sha256(token.encode()).hexdigest()
    env = {"PATH": os.environ["PATH"], "SAASODOO_SERVE_SECONDS": str(seconds),
           "SAASODOO_SERVE_TOKEN_SHA256": digest}  # fmt: skip
    proc = subprocess.Popen(
        [sys.executable, str(FILES / "restore.py"), "--serve", f"--dest={dest}", f"--backup={name}",
         "--port=0", "--bind=127.0.0.1"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    assert proc.stdout is not None
    for line in proc.stdout:
        if " on 127.0.0.1:" in line:  # "serving NAME on 127.0.0.1:PORT for 30s"
            return proc, "http://" + line.split(" on ", 1)[1].split()[0]
    raise AssertionError(f"never served: {proc.communicate()[0]}")


def wait_paused(proc: subprocess.Popen[str], gate: Path, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not (gate / "paused").exists():
        if proc.poll() is not None:
            raise AssertionError(f"exited before pausing: {proc.communicate()[0]}")
        if time.monotonic() > deadline:
            raise AssertionError("never paused")
        time.sleep(0.1)


def files_snapshot(root: Path) -> dict[str, str]:
    return {
        p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


ODOO_SCHEMA = """
CREATE TABLE ir_module_module (id serial PRIMARY KEY, name varchar NOT NULL,
    state varchar, latest_version varchar);
INSERT INTO ir_module_module (name, state, latest_version) VALUES
    ('base', 'installed', '17.0.1.3'), ('web', 'installed', '17.0.1.0'),
    ('sale', 'uninstalled', NULL);
CREATE TABLE res_partner (id serial PRIMARY KEY, name varchar NOT NULL, comment text,
    active boolean DEFAULT true, data jsonb);
INSERT INTO res_partner (name, comment, data)
    SELECT 'Partner ' || i, E'tab\\there, newline\\nthere, quote '' and \\\\ backslash',
           jsonb_build_object('i', i)
    FROM generate_series(1, 500) AS i;
CREATE TABLE ir_attachment (id serial PRIMARY KEY, store_fname varchar, res_id int
    REFERENCES res_partner (id));
INSERT INTO ir_attachment (store_fname, res_id) VALUES ('ab/abcdef', 1), ('cd/cdef01', 2);
CREATE INDEX res_partner_name ON res_partner (name);
CREATE VIEW active_partner AS SELECT id, name FROM res_partner WHERE active;
"""


def make_tenant_data(pg: PgServer, database: str, filestore_root: Path) -> Path:
    """An Odoo-like database (modules, partners with awkward text, attachments) + filestore."""
    pg.psql(ODOO_SCHEMA, database, "odoo")
    store = filestore_root / database
    (store / "ab").mkdir(parents=True)
    (store / "cd").mkdir()
    (store / "ab" / "abcdef").write_bytes(b"attachment one")
    (store / "cd" / "cdef01").write_bytes(os.urandom(4096))
    (store / "checklist").mkdir()
    (store / "checklist" / "empty").write_bytes(b"")
    return store


def change_tenant_data(pg: PgServer, database: str, store: Path) -> None:
    """What happens after a backup: edits, deletes, new rows and files."""
    pg.psql(
        "UPDATE res_partner SET name = 'changed' WHERE id < 50; "
        "DELETE FROM ir_attachment WHERE id = 2; "
        "INSERT INTO res_partner (name) VALUES ('new'); "
        "CREATE TABLE added_later (x int);",
        database,
        "odoo",
    )
    (store / "ab" / "abcdef").write_bytes(b"overwritten")
    (store / "cd" / "cdef01").unlink()
    (store / "ef").mkdir()
    (store / "ef" / "ef0000").write_bytes(b"new file")


class LateProxy:
    """A TCP port that refuses connections for `delay` seconds, then forwards to 127.0.0.1:
    `target` (a server that starts late, or a NetworkPolicy that lets a new pod through a
    moment after it started). `delay=None`: never opens."""

    def __init__(self, target: int, delay: float | None) -> None:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = int(probe.getsockname()[1])
        self.target = target
        self.delay = delay
        self.accepted = 0
        self._stop = threading.Event()
        self._sockets: list[socket.socket] = []
        self._thread = threading.Thread(target=self._serve, daemon=True)

    def __enter__(self) -> LateProxy:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        for sock in self._sockets:
            sock.close()

    def _serve(self) -> None:
        if self.delay is None or self._stop.wait(self.delay):
            return
        listener = socket.create_server(("127.0.0.1", self.port))
        listener.settimeout(0.2)
        self._sockets.append(listener)
        while not self._stop.is_set():
            try:
                client, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self.accepted += 1
            upstream = socket.create_connection(("127.0.0.1", self.target))
            self._sockets += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=_pipe, args=(a, b), daemon=True).start()


def _pipe(src: socket.socket, dst: socket.socket) -> None:
    try:
        while data := src.recv(65536):
            dst.sendall(data)
    except OSError:
        pass
    finally:
        for sock in (src, dst):
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            sock.close()
