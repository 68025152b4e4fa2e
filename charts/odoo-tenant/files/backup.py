#!/usr/bin/env python3
"""Backup of one Odoo tenant (CronJob `backup` of the odoo-tenant chart, and its on-demand Jobs).

Runs in the official Odoo image (pg_dump, psql and python3 are there), as the odoo user, with
the Python standard library only; also runs as it is on a developer's machine (the tests).

Writes one zip in the layout of Odoo's database manager, so Odoo can import it: `dump.sql`
(plain `pg_dump --no-owner`), `filestore/` (the content of `<data_dir>/filestore/<db>/`) and
`manifest.json` with Odoo's fields (odoo_dump, db_name, version, version_info, major_version,
pg_version, modules) plus ours under the same object: tenant, timestamp, kind (scheduled,
on-demand, pre-update, final), odoo_version, sizes, the SHA-256 of dump.sql and of every
filestore file, and per table its row count and an order-independent checksum of its rows
(computed from the COPY data of the dump itself, so from the dump's own snapshot).

Storage: a directory (`--dest`, the backup PVC) or an S3-compatible bucket (`--s3`: S3_ENDPOINT,
S3_BUCKET, S3_PREFIX, S3_REGION, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY; signed with AWS
Signature V4, path-style, multipart above S3_MULTIPART_BYTES). Objects are
`<prefix>/<tenant>/<UTC stamp>-<kind>.zip` and, written last (its presence marks a complete
backup), `<same>.json`: the manifest. The zip is built as `.partial` in the work directory and
renamed once complete, so a failed run leaves no half backup. After each backup the retention
policy (scheduled backups: the newest of each of the last N days, weeks and months,
borg-style; on-demand ones under their own rule, the newest N within D days; the newest
pre-update ones; `final` backups are never pruned) is applied. The last line printed is
`RESULT {json}`: the zip's name, where it is, its sizes and the dump's checksum.

A backup holds the tenant's data lock (`TenantLock`, a PostgreSQL advisory lock that
restore.py takes too): a backup and a restore of the same tenant never overlap, whoever
started them (the CronJob's schedule, saasodoo).

Refused, before anything is written: a pg_dump older than the server's major (it could not
dump it), a database holding what the tenant's role could not create again on restore
(extensions only a superuser may create, event triggers, functions in untrusted languages),
an unknown Odoo version (SAASODOO_ODOO_VERSION, set by the chart from `odoo.version`, else the
image's ODOO_VERSION). The first connection to PostgreSQL and to S3 is retried for
SAASODOO_CONNECT_RETRY_SECONDS (default 30): a new pod may be let through its NetworkPolicy a
moment after it starts.

The database connection comes from the libpq environment (PGHOST, PGPORT, PGDATABASE, PGUSER,
PGPASSWORD, PGSSLMODE). restore.py imports this module for the format and the storage.
"""

from __future__ import annotations

import argparse
import datetime
import hashlib
import hmac
import json
import os
import re
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
import xml.etree.ElementTree as ET
import zipfile
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

sys.dont_write_bytecode = True  # no __pycache__ beside the scripts (read-only in the pod)
sys.path.insert(0, str(Path(__file__).resolve().parent))
# The two contracts shared with saasodoo's control plane, mounted beside this script: the
# backup names and the retention rule; the dump's table checksums and the manifest version.
from dumpformat import CHUNK, FORMAT_VERSION, DumpScanner  # noqa: E402
from retention import (  # noqa: E402
    KINDS,
    Entry,
    Policy,
    free_moment,
    name_of,
    parse_name,
    retention,
)

PG_DUMP = os.environ.get("PG_DUMP", "pg_dump")
PSQL = os.environ.get("PSQL", "psql")
UTC = datetime.timezone.utc  # datetime.UTC is Python 3.11+; odoo:17.0 runs 3.10


def log(message: str) -> None:
    print(f"[backup] {message}", flush=True)


class BackupError(Exception):
    """A backup or restore step failed; the message says which."""


# -- the zip format ---------------------------------------------------------------------


def psql_query(sql: str, database: str | None = None) -> list[list[str]]:
    """Rows of a query, through psql (unaligned, tab-separated): no driver needed."""
    cmd = [PSQL, "--no-psqlrc", "-X", "-v", "ON_ERROR_STOP=1", "-At", "-F", "\t", "-c", sql]
    if database:
        cmd += ["--dbname", database]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise BackupError(f"psql failed: {proc.stderr.strip()}")
    return [line.split("\t") for line in proc.stdout.splitlines() if line]


def installed_modules(database: str) -> tuple[dict[str, str], str]:
    """Installed modules with their versions, and the server version, as Odoo's manifest has.

    A database without Odoo's tables (not initialized yet) has no modules."""
    [[version]] = psql_query("SHOW server_version_num", database)
    # Written as Odoo's database manager writes it (odoo/service/db.py, dump_db_manifest:
    # "%d.%d" % divmod(server_version / 100, 100)): "15.0" for 15.18, "9.6" for 9.6.24.
    major, minor = divmod(int(version) / 100, 100)
    pg_version = f"{int(major)}.{int(minor)}"
    has_modules = psql_query("SELECT to_regclass('public.ir_module_module') IS NOT NULL", database)
    if has_modules != [["t"]]:
        return {}, pg_version
    rows = psql_query(
        "SELECT name, coalesce(latest_version, '') FROM ir_module_module "
        "WHERE state = 'installed' ORDER BY name",
        database,
    )
    return {row[0]: (row[1] if len(row) > 1 else "") for row in rows}, pg_version


def odoo_version() -> str:
    """The tenant's Odoo series: SAASODOO_ODOO_VERSION, which the chart sets from its
    `odoo.version` (right for any image), else the official image's ODOO_VERSION. A manifest
    without a version would defeat the version checks of restores and imports: refused."""
    version = os.environ.get("SAASODOO_ODOO_VERSION") or os.environ.get("ODOO_VERSION") or ""
    if not re.fullmatch(r"\d+\.\d+", version):
        raise BackupError(
            f"Odoo version {version!r} unknown or not a series like 18.0: set "
            "SAASODOO_ODOO_VERSION (the chart sets it from odoo.version)"
        )
    return version


# -- the first connection ----------------------------------------------------------------

#: Seconds the first connection to PostgreSQL or S3 is retried: a new pod's address may be
#: let through by the NetworkPolicy controller a moment after its containers start, and a
#: just-started server may not listen yet. Later connections are not retried.
CONNECT_RETRY_SECONDS = float(os.environ.get("SAASODOO_CONNECT_RETRY_SECONDS") or 30)
#: psql's errors that no retry cures (the server answered).
PERMANENT = ("authentication failed", "does not exist", "no pg_hba.conf entry", "permission denied")


def retrying(what: str, attempt: Any, transient: Any, timeout: float | None = None) -> Any:
    """attempt() until it returns, retrying for `timeout` seconds while transient(exc)."""
    limit = CONNECT_RETRY_SECONDS if timeout is None else timeout
    deadline = time.monotonic() + limit
    delay = 0.2
    said = ""
    while True:
        try:
            return attempt()
        except Exception as exc:
            if not transient(exc) or time.monotonic() + delay > deadline:
                if transient(exc):
                    raise BackupError(f"{what} not reachable after {limit:.0f}s: {exc}") from None
                raise
            why = (str(exc).strip().splitlines() or ["?"])[0]
            if why != said:  # once per reason, not once per try
                log(f"{what} not reachable yet, retrying: {why}")
                said = why
            time.sleep(delay)
            delay = min(delay * 2, 0.5)  # a refused connection is cheap; start promptly


def wait_for_database(database: str | None, env: dict[str, str] | None = None) -> None:
    """The first connection to PostgreSQL, retried briefly while it is refused or unresolved."""

    def attempt() -> None:
        cmd = [PSQL, "--no-psqlrc", "-X", "-At", "-c", "SELECT 1"]
        if database:
            cmd += ["--dbname", database]
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
        if proc.returncode != 0:
            raise ConnectionError(proc.stderr.strip() or f"psql exited with {proc.returncode}")

    def transient(exc: Exception) -> bool:
        return isinstance(exc, ConnectionError) and not any(p in str(exc) for p in PERMANENT)

    try:
        retrying("PostgreSQL", attempt, transient)
    except ConnectionError as exc:
        raise BackupError(f"cannot connect to PostgreSQL: {exc}") from None


# -- one data operation of a tenant at a time ----------------------------------------------

#: The first key of the advisory lock every backup, restore and recovery of a tenant takes;
#: the second is derived from the tenant's database name (``lock_key``).
LOCK_CLASS = 0x5A0D
#: Seconds a backup or restore waits for another one of the same tenant to end.
LOCK_WAIT_SECONDS = float(os.environ.get("SAASODOO_LOCK_WAIT_SECONDS") or 1800)


def lock_key(database: str) -> int:
    """The advisory lock's second key for `database`: a positive 31-bit CRC of its name."""
    return zlib.crc32(database.encode()) & 0x7FFFFFFF


class TenantLock:
    """The tenant's data lock: a PostgreSQL advisory lock (`pg_advisory_lock(LOCK_CLASS,
    lock_key(database))`) held by a psql session on the maintenance database
    (PGADMINDATABASE, default `postgres`: never the tenant's own, which a restore renames and
    which must have no connection for it). A backup (any kind, scheduled by the CronJob or
    started by saasodoo) and a restore or recovery of the same tenant take it, so they never
    overlap: the second one waits, up to `wait_seconds` (SAASODOO_LOCK_WAIT_SECONDS, 1800),
    naming the holder, then fails with that reason. The session ends with this process (its
    stdin is this process's pipe): a killed backup or restore never leaves the lock held.
    `env` is the libpq environment of the connection (the tenant role's, or the admin's)."""

    def __init__(
        self,
        database: str,
        holder: str,
        env: dict[str, str] | None = None,
        wait_seconds: float | None = None,
    ) -> None:
        self.database = database
        self.holder = holder
        self.wait_seconds = LOCK_WAIT_SECONDS if wait_seconds is None else wait_seconds
        base = dict(os.environ if env is None else env)
        base["PGDATABASE"] = base.get("PGADMINDATABASE") or "postgres"
        self.env = base
        self.token = f"saasodoo {holder} {os.getpid()}.{int(time.time() * 1000) % 10**6}"[:63]
        self.proc: subprocess.Popen[bytes] | None = None

    def _query(self, sql: str) -> list[list[str]]:
        cmd = [PSQL, "--no-psqlrc", "-X", "-v", "ON_ERROR_STOP=1", "-At", "-F", "\t", "-c", sql]
        proc = subprocess.run(cmd, capture_output=True, text=True, env=self.env, check=False)
        if proc.returncode != 0:
            raise BackupError(f"reading the tenant lock failed: {proc.stderr.strip()}")
        return [line.split("\t") for line in proc.stdout.splitlines() if line]

    def __enter__(self) -> TenantLock:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()

    def acquire(self) -> None:
        key = lock_key(self.database)
        env = dict(self.env, PGAPPNAME=self.token)
        self.proc = subprocess.Popen(
            [PSQL, "--no-psqlrc", "-X", "-q", "-v", "ON_ERROR_STOP=1"],
            stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env,
        )  # fmt: skip
        assert self.proc.stdin is not None
        wait_ms = max(int(self.wait_seconds * 1000), 1)
        # Keep-alives: a holder whose node is lost (no FIN ever comes) is noticed by the
        # server within about a minute, which then ends its session and the lock.
        statements = (
            "SET tcp_keepalives_idle = 30; SET tcp_keepalives_interval = 10;\n"
            "SET tcp_keepalives_count = 3;\n"
            f"SET lock_timeout = {wait_ms};\nSELECT pg_advisory_lock({LOCK_CLASS}, {key});\n"
        )
        self.proc.stdin.write(statements.encode())
        self.proc.stdin.flush()
        try:
            self._wait_granted(key)
        except BaseException:
            self.release()
            raise

    def _wait_granted(self, key: int) -> None:
        assert self.proc is not None
        sql = (
            "SELECT a.application_name, l.granted FROM pg_locks l "
            "JOIN pg_stat_activity a ON a.pid = l.pid WHERE l.locktype = 'advisory' "
            f"AND l.classid = {LOCK_CLASS} AND l.objid = {key} AND l.objsubid = 2 "
            "AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())"
        )
        deadline = time.monotonic() + self.wait_seconds + 10
        told = False
        while True:
            if self.proc.poll() is not None:
                error = (self.proc.stderr.read() if self.proc.stderr else b"").decode().strip()
                if "lock timeout" in error:
                    raise BackupError(
                        f"another backup or restore of this tenant still ran after "
                        f"{self.wait_seconds:.0f}s: try again once it has ended"
                    )
                raise BackupError(f"taking the tenant lock failed: {error}")
            rows = self._query(sql)
            if [self.token, "t"] in rows:
                log(f"tenant lock taken ({self.holder})")
                return
            holders = [name for name, granted in rows if granted == "t"]
            if holders and not told:
                other = holders[0].rsplit(" ", 1)[0]
                log(f"waiting for the tenant lock, held by {other} (at most "
                    f"{self.wait_seconds:.0f}s)")  # fmt: skip
                told = True
            if time.monotonic() > deadline:
                raise BackupError("the tenant lock was not granted in time")
            time.sleep(0.3)

    def release(self) -> None:
        proc, self.proc = self.proc, None
        if proc is None:
            return
        try:
            assert proc.stdin is not None
            proc.stdin.close()  # psql ends, and with it the session and its lock
            proc.wait(timeout=10)
        except (OSError, subprocess.TimeoutExpired):
            proc.kill()
            proc.wait()
        finally:
            if proc.stderr is not None:
                proc.stderr.close()


# -- what the tenant's role could not restore ----------------------------------------------

UNRESTORABLE_QUERIES = (
    # Extensions a database owner may not create (not marked trusted), so neither may restore.
    (
        "extension {0} (only a superuser may create it)",
        "SELECT e.extname FROM pg_extension e JOIN pg_available_extension_versions v "
        "ON v.name = e.extname AND v.version = e.extversion "
        "WHERE e.extname <> 'plpgsql' AND NOT v.trusted ORDER BY 1",
    ),
    ("event trigger {0} (only a superuser may create it)", "SELECT evtname FROM pg_event_trigger"),
    # Functions in untrusted languages (C, internal, plpython3u, ...) outside extensions.
    (
        "function {0} in an untrusted language (only a superuser may create it)",
        "SELECT p.oid::regprocedure FROM pg_proc p JOIN pg_language l ON l.oid = p.prolang "
        "JOIN pg_namespace n ON n.oid = p.pronamespace WHERE NOT l.lanpltrusted "
        "AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND NOT EXISTS ("
        "SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_proc'::regclass "
        "AND d.objid = p.oid AND d.deptype = 'e') ORDER BY 1",
    ),
)


def unrestorable_objects(database: str) -> list[str]:
    """What a restore as the tenant's role (a database owner, not a superuser) could not
    recreate: a backup holding any of it is not a good backup. Empty for a superuser role."""
    if psql_query("SELECT rolsuper FROM pg_roles WHERE rolname = current_user", database) == [
        ["t"]
    ]:
        return []
    found: list[str] = []
    for label, sql in UNRESTORABLE_QUERIES:
        found += [label.format(row[0]) for row in psql_query(sql, database)]
    return found


# -- the dumping client -------------------------------------------------------------------


def client_major(program: str) -> int:
    """Major version of a PostgreSQL client program (`pg_dump (PostgreSQL) 17.2 (...)`)."""
    try:
        out = subprocess.run(
            [program, "--version"], capture_output=True, text=True, check=False
        ).stdout
    except OSError as exc:
        raise BackupError(f"{program} cannot run: {exc}") from None
    match = re.search(r"\(PostgreSQL\) (\d+)", out)
    if not match:
        raise BackupError(f"cannot read the version of {program}: {out.strip()!r}")
    return int(match[1])


def check_dump_client(server_version: str) -> None:
    """pg_dump refuses a server of a newer major than itself: say so clearly, and how to fix."""
    server = int(server_version.split(".")[0])
    client = client_major(PG_DUMP)
    if client < server:
        raise BackupError(
            f"pg_dump {client} is older than the PostgreSQL {server} server and cannot dump it: "
            f"give the backup the PostgreSQL {server} client (the chart's backup.pgClient.image)"
        )


def version_info(version: str) -> list[Any]:
    """Odoo's release.version_info for a "17.0"-style version."""
    parts = [int(p) for p in re.findall(r"\d+", version)[:2]] or [0, 0]
    while len(parts) < 2:
        parts.append(0)
    return [parts[0], parts[1], 0, "final", 0, ""]


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(CHUNK), b""):
            digest.update(block)
    return digest.hexdigest()


def filestore_files(root: Path | None) -> list[Path]:
    if root is None or not root.is_dir():
        return []
    return sorted(p for p in root.rglob("*") if p.is_file())


@dataclass
class Written:
    """What write_zip produced."""

    manifest: dict[str, Any]
    files: int


def write_zip(
    target: Path,
    database: str,
    filestore: Path | None,
    *,
    tenant: str = "",
    kind: str = "scheduled",
    now: datetime.datetime | None = None,
) -> Written:
    """Write the backup zip (Odoo's layout); return its manifest."""
    if kind not in KINDS:
        raise BackupError(f"unknown kind {kind!r} (one of {', '.join(KINDS)})")
    now = now or datetime.datetime.now(UTC)
    version = odoo_version()
    modules, pg_version = installed_modules(database)
    check_dump_client(pg_version)
    unrestorable = unrestorable_objects(database)
    if unrestorable:
        raise BackupError(
            "the tenant's database role could not restore this database, which holds "
            + "; ".join(unrestorable)
            + ": remove it (or have it created by the platform, not in the tenant's database)"
        )
    scanner = DumpScanner()
    dump_hash = hashlib.sha256()
    dump_size = 0
    files: dict[str, dict[str, Any]] = {}
    with zipfile.ZipFile(target, "w", compression=zipfile.ZIP_DEFLATED, allowZip64=True) as zf:
        with (
            subprocess.Popen(
                [PG_DUMP, "--no-owner", "--dbname", database], stdout=subprocess.PIPE
            ) as dump,
            zf.open("dump.sql", "w", force_zip64=True) as out,
        ):
            assert dump.stdout is not None
            for block in iter(lambda: dump.stdout.read(CHUNK), b""):  # type: ignore[union-attr]
                out.write(block)
                dump_hash.update(block)
                scanner.feed(block)
                dump_size += len(block)
        if dump.returncode != 0:
            raise BackupError(f"pg_dump exited with {dump.returncode}")
        scanner.close()
        for path in filestore_files(filestore):
            assert filestore is not None
            name = path.relative_to(filestore).as_posix()
            zf.write(path, "filestore/" + name)
            files[name] = {"size": path.stat().st_size, "sha256": sha256_file(path)}
        manifest: dict[str, Any] = {
            # Odoo's own fields (odoo/service/db.py dump_db_manifest).
            "odoo_dump": "1",
            "db_name": database,
            "version": version,
            "version_info": version_info(version),
            "major_version": version,
            "pg_version": pg_version,
            "modules": modules,
            # Ours.
            "saasodoo": FORMAT_VERSION,
            "tenant": tenant,
            "timestamp": now.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "kind": kind,
            "odoo_version": version,
            "sizes": {
                "dump": dump_size,
                "filestore": sum(f["size"] for f in files.values()),
                "filestore_files": len(files),
            },
            "checksums": {"dump.sql": dump_hash.hexdigest(), "filestore": files},
            "tables": scanner.result(),
        }
        zf.writestr("manifest.json", json.dumps(manifest, indent=4, sort_keys=True))
    manifest["sizes"]["zip"] = target.stat().st_size
    return Written(manifest, len(files))


def verify_zip(path: Path) -> dict[str, Any]:
    """Check every checksum of the zip against its manifest; return the manifest.

    Raises BackupError naming the first mismatch: such a zip must not be restored."""
    try:
        with zipfile.ZipFile(path) as zf:
            names = set(zf.namelist())
            for required in ("manifest.json", "dump.sql"):
                if required not in names:
                    raise BackupError(f"{path.name}: no {required} in the zip")
            manifest: dict[str, Any] = json.loads(zf.read("manifest.json"))
            sums = manifest.get("checksums")
            if not isinstance(sums, dict):
                raise BackupError(f"{path.name}: the manifest has no checksums")
            if _zip_member_sha256(zf, "dump.sql") != sums.get("dump.sql"):
                raise BackupError(f"{path.name}: checksum of dump.sql does not match")
            expected = dict(sums.get("filestore") or {})
            present = {n.removeprefix("filestore/") for n in names if n.startswith("filestore/")}
            present = {n for n in present if n and not n.endswith("/")}
            if present != set(expected):
                raise BackupError(f"{path.name}: filestore files differ from the manifest")
            for name, meta in expected.items():
                if _zip_member_sha256(zf, "filestore/" + name) != meta.get("sha256"):
                    raise BackupError(f"{path.name}: checksum of filestore/{name} does not match")
    except (zipfile.BadZipFile, ValueError, KeyError, OSError) as exc:
        raise BackupError(f"{path.name}: unreadable backup ({exc})") from None
    return manifest


def _zip_member_sha256(zf: zipfile.ZipFile, name: str) -> str:
    digest = hashlib.sha256()
    with zf.open(name) as fh:
        for block in iter(lambda: fh.read(CHUNK), b""):
            digest.update(block)
    return digest.hexdigest()


# -- storage ----------------------------------------------------------------------------


class Store:
    """Where the zips and their manifests live; names are relative to the tenant's folder."""

    def put_file(self, name: str, path: Path) -> None:
        raise NotImplementedError

    def put_bytes(self, name: str, data: bytes) -> None:
        raise NotImplementedError

    def get_file(self, name: str, path: Path) -> None:
        raise NotImplementedError

    def get_bytes(self, name: str) -> bytes:
        raise NotImplementedError

    def names(self) -> list[str]:
        raise NotImplementedError

    def delete(self, name: str) -> None:
        raise NotImplementedError

    def describe(self) -> str:
        raise NotImplementedError


class DirStore(Store):
    """A directory (the backup PVC): `<root>/<name>`, written through a temporary name."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def put_file(self, name: str, path: Path) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        tmp = self.root / f".{name}.partial"
        if path.resolve().parent == self.root.resolve():
            path.rename(self.root / name)
            return
        shutil.copyfile(path, tmp)
        tmp.rename(self.root / name)

    def put_bytes(self, name: str, data: bytes) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        tmp = self.root / f".{name}.partial"
        tmp.write_bytes(data)
        tmp.rename(self.root / name)

    def get_file(self, name: str, path: Path) -> None:
        if not (self.root / name).is_file():
            raise BackupError(f"no backup {name} in {self.root}")
        shutil.copyfile(self.root / name, path)

    def get_bytes(self, name: str) -> bytes:
        try:
            return (self.root / name).read_bytes()
        except FileNotFoundError:
            raise BackupError(f"no {name} in {self.root}") from None

    def names(self) -> list[str]:
        if not self.root.is_dir():
            return []
        return sorted(p.name for p in self.root.iterdir() if p.is_file())

    def delete(self, name: str) -> None:
        (self.root / name).unlink(missing_ok=True)

    def describe(self) -> str:
        return str(self.root)


def _sign(key: bytes, msg: str) -> bytes:
    return hmac.new(key, msg.encode(), hashlib.sha256).digest()


S3_NS = "{http://s3.amazonaws.com/doc/2006-03-01/}"


@dataclass
class S3Store(Store):
    """An S3-compatible bucket, path-style, AWS Signature V4, standard library only."""

    endpoint: str
    bucket: str
    prefix: str
    access_key: str
    secret_key: str
    region: str = "us-east-1"
    multipart_bytes: int = 1 << 30
    part_bytes: int = 64 << 20
    timeout: float = 300.0
    _base: str = field(init=False, default="")

    def __post_init__(self) -> None:
        self.endpoint = self.endpoint.rstrip("/")
        self.prefix = self.prefix.strip("/")

    @classmethod
    def from_env(cls, tenant: str, env: dict[str, str] | None = None) -> S3Store:
        env = dict(os.environ if env is None else env)
        missing = [
            k
            for k in ("S3_ENDPOINT", "S3_BUCKET", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")
            if not env.get(k)
        ]
        if missing:
            raise BackupError(f"S3 storage needs {', '.join(missing)}")
        prefix = "/".join(p for p in (env.get("S3_PREFIX", "").strip("/"), tenant) if p)
        return cls(
            endpoint=env["S3_ENDPOINT"],
            bucket=env["S3_BUCKET"],
            prefix=prefix,
            access_key=env["AWS_ACCESS_KEY_ID"],
            secret_key=env["AWS_SECRET_ACCESS_KEY"],
            region=env.get("S3_REGION") or "us-east-1",
            multipart_bytes=int(env.get("S3_MULTIPART_BYTES") or (1 << 30)),
            part_bytes=max(int(env.get("S3_PART_BYTES") or (64 << 20)), 5 << 20),
        )

    def key(self, name: str) -> str:
        return f"{self.prefix}/{name}" if self.prefix else name

    def _request(
        self,
        method: str,
        key: str | None,
        query: dict[str, str] | None = None,
        body: bytes | IO[bytes] | None = None,
        payload_sha256: str | None = None,
        length: int | None = None,
    ) -> Any:
        path = "/" + urllib.parse.quote(self.bucket, safe="")
        if key is not None:
            path += "/" + urllib.parse.quote(key, safe="/-_.~")
        query = query or {}
        canonical_query = "&".join(
            f"{urllib.parse.quote(k, safe='-_.~')}={urllib.parse.quote(v, safe='-_.~')}"
            for k, v in sorted(query.items())
        )
        url = urllib.parse.urlsplit(self.endpoint)
        host = url.netloc
        now = datetime.datetime.now(UTC)
        amz_date = now.strftime("%Y%m%dT%H%M%SZ")
        day = now.strftime("%Y%m%d")
        if payload_sha256 is None:
            payload_sha256 = hashlib.sha256(body if isinstance(body, bytes) else b"").hexdigest()
        headers = {"host": host, "x-amz-content-sha256": payload_sha256, "x-amz-date": amz_date}
        signed = ";".join(sorted(headers))
        canonical = "\n".join(
            [
                method,
                path,
                canonical_query,
                "".join(f"{k}:{headers[k]}\n" for k in sorted(headers)),
                signed,
                payload_sha256,
            ]
        )
        scope = f"{day}/{self.region}/s3/aws4_request"
        to_sign = "\n".join(
            ["AWS4-HMAC-SHA256", amz_date, scope, hashlib.sha256(canonical.encode()).hexdigest()]
        )
        key_bytes = _sign(
            _sign(_sign(_sign(("AWS4" + self.secret_key).encode(), day), self.region), "s3"),
            "aws4_request",
        )
        signature = hmac.new(key_bytes, to_sign.encode(), hashlib.sha256).hexdigest()
        request_headers = {
            "x-amz-content-sha256": payload_sha256,
            "x-amz-date": amz_date,
            "Authorization": (
                f"AWS4-HMAC-SHA256 Credential={self.access_key}/{scope}, "
                f"SignedHeaders={signed}, Signature={signature}"
            ),
        }
        if body is not None:
            # Not urllib's default (a form), which servers may parse and swallow.
            request_headers["Content-Type"] = "application/octet-stream"
        if length is not None:
            request_headers["Content-Length"] = str(length)
        elif isinstance(body, bytes):
            request_headers["Content-Length"] = str(len(body))
        full = f"{url.scheme}://{host}{path}" + (f"?{canonical_query}" if canonical_query else "")
        request = urllib.request.Request(full, data=body, method=method, headers=request_headers)
        try:
            return urllib.request.urlopen(request, timeout=self.timeout)
        except urllib.error.HTTPError as exc:
            detail = exc.read().decode(errors="replace")[:300]
            if exc.code == 404:
                raise FileNotFoundError(f"s3://{self.bucket}/{key}") from None
            raise BackupError(f"S3 {method} {key or self.bucket}: {exc.code} {detail}") from None
        except urllib.error.URLError as exc:
            raise BackupError(f"S3 endpoint {self.endpoint} unreachable: {exc.reason}") from None

    def wait_reachable(self) -> None:
        """The first request (a listing of the tenant's folder, what retention and restores
        need anyway: no other permission), retried briefly while the endpoint cannot be
        reached; the bucket missing or the credentials refused fail at once."""

        def attempt() -> None:
            query = {"list-type": "2", "max-keys": "1", "prefix": self.key("")}
            try:
                with self._request("GET", None, query):
                    pass
            except FileNotFoundError:
                raise BackupError(f"S3 bucket {self.bucket} does not exist") from None

        retrying(
            f"S3 endpoint {self.endpoint}",
            attempt,
            lambda exc: isinstance(exc, BackupError) and "unreachable" in str(exc),
        )

    def put_bytes(self, name: str, data: bytes) -> None:
        with self._request("PUT", self.key(name), body=data):
            pass

    def put_file(self, name: str, path: Path) -> None:
        size = path.stat().st_size
        if size >= self.multipart_bytes:
            self._put_multipart(self.key(name), path)
            return
        with (
            path.open("rb") as fh,
            self._request(
                "PUT", self.key(name), body=fh, payload_sha256=sha256_file(path), length=size
            ),
        ):
            pass

    def _put_multipart(self, key: str, path: Path) -> None:
        with self._request("POST", key, {"uploads": ""}, body=b"") as resp:
            upload_id = ET.fromstring(resp.read()).findtext(f"{S3_NS}UploadId") or ""
        if not upload_id:
            raise BackupError(f"S3 multipart upload of {key}: no UploadId")
        etags: list[str] = []
        try:
            with path.open("rb") as fh:
                for number, part in enumerate(iter(lambda: fh.read(self.part_bytes), b""), 1):
                    query = {"partNumber": str(number), "uploadId": upload_id}
                    with self._request("PUT", key, query, body=part) as resp:
                        etags.append(resp.headers["ETag"])
            body = (
                "<CompleteMultipartUpload>"
                + "".join(
                    f"<Part><PartNumber>{n}</PartNumber><ETag>{etag}</ETag></Part>"
                    for n, etag in enumerate(etags, 1)
                )
                + "</CompleteMultipartUpload>"
            )
            with self._request("POST", key, {"uploadId": upload_id}, body=body.encode()) as resp:
                reply = resp.read()
                if b"<Error>" in reply:
                    raise BackupError(f"S3 multipart upload of {key} failed: {reply[:300]!r}")
        except BaseException:
            with self._request("DELETE", key, {"uploadId": upload_id}):
                pass
            raise

    def get_file(self, name: str, path: Path) -> None:
        try:
            with self._request("GET", self.key(name)) as resp, path.open("wb") as out:
                shutil.copyfileobj(resp, out, CHUNK)
        except FileNotFoundError:
            raise BackupError(f"no backup {name} in {self.describe()}") from None

    def get_bytes(self, name: str) -> bytes:
        try:
            with self._request("GET", self.key(name)) as resp:
                data: bytes = resp.read()
                return data
        except FileNotFoundError:
            raise BackupError(f"no {name} in {self.describe()}") from None

    def names(self) -> list[str]:
        out: list[str] = []
        token = ""
        folder = self.key("")
        while True:
            query = {"list-type": "2", "prefix": folder}
            if token:
                query["continuation-token"] = token
            with self._request("GET", None, query) as resp:
                root = ET.fromstring(resp.read())
            for item in root.iter(f"{S3_NS}Contents"):
                key = item.findtext(f"{S3_NS}Key") or ""
                rest = key[len(folder) :]
                if rest and "/" not in rest:
                    out.append(rest)
            token = root.findtext(f"{S3_NS}NextContinuationToken") or ""
            if root.findtext(f"{S3_NS}IsTruncated") != "true" or not token:
                return sorted(out)

    def delete(self, name: str) -> None:
        try:
            with self._request("DELETE", self.key(name)):
                pass
        except FileNotFoundError:
            pass

    def describe(self) -> str:
        return f"s3://{self.bucket}/{self.prefix}"


def open_store(args: argparse.Namespace, tenant: str) -> Store:
    if args.s3:
        return S3Store.from_env(tenant)
    if not args.dest:
        raise BackupError("give --dest DIR or --s3")
    return DirStore(args.dest / tenant if tenant and args.per_tenant_dir else args.dest)


def stored_entries(store: Store) -> list[Entry]:
    """Complete backups: zips whose manifest (written last) is there too."""
    names = set(store.names())
    entries = [parse_name(n) for n in names if n.endswith(".zip") and n + ".json" in names]
    return sorted((e for e in entries if e), key=lambda e: e.timestamp)


def prune(store: Store, policy: Policy, now: datetime.datetime | None = None) -> list[str]:
    """Apply the retention policy to the store (on-demand ages measured from `now`); return
    the deleted zips."""
    names = set(store.names())
    entries = [e for e in (parse_name(n) for n in names if n.endswith(".zip")) if e]
    complete = [e for e in entries if e.name + ".json" in names]
    keep = retention(complete, policy, now)
    doomed = [e.name for e in complete if e.name not in keep]
    for name in doomed:
        store.delete(name + ".json")  # first: the backup no longer counts as complete
        store.delete(name)
    return sorted(doomed)


# -- the program ------------------------------------------------------------------------


def run_backup(
    store: Store,
    database: str,
    filestore_root: Path | None,
    work: Path,
    *,
    tenant: str,
    kind: str,
    policy: Policy | None,
    now: datetime.datetime | None = None,
) -> tuple[str, dict[str, Any]]:
    """One backup: zip in `work`, upload, manifest last, then retention. Returns the name."""
    now = now or datetime.datetime.now(UTC)
    wait_for_database(database)
    if isinstance(store, S3Store):
        store.wait_reachable()
    with TenantLock(database, f"backup ({kind})"):
        work.mkdir(parents=True, exist_ok=True)
        for stale in work.glob("*.partial"):
            log(f"removing {stale.name}, left by an interrupted run")
            stale.unlink()
        now = free_moment(store.names, kind, now)  # this second's name taken: the next one
        name = name_of(now, kind)
        refuse_taken(store, name)
        partial = work / f"{name}.partial"
        filestore = filestore_root / database if filestore_root else None
        try:
            written = write_zip(partial, database, filestore, tenant=tenant, kind=kind, now=now)
            refuse_taken(store, name)  # again: an import may have been stored meanwhile
            store.put_file(name, partial)
            store.put_bytes(name + ".json", json.dumps(written.manifest, sort_keys=True).encode())
        finally:
            partial.unlink(missing_ok=True)
        size = written.manifest["sizes"]["zip"]
        log(f"wrote {name} to {store.describe()} ({size} bytes, {written.files} filestore files)")
        if policy is not None:
            for doomed in prune(store, policy, now):
                log(f"deleted old backup {doomed} (retention)")
        return name, written.manifest


def refuse_taken(store: Any, name: str) -> None:
    """Names are the UTC second of their start: an on-demand backup and an import staged by the
    control plane in the same second get the same one. Never overwrite: BackupError."""
    if {name, name + ".json"} & set(store.names()):
        raise BackupError(
            f"a backup named {name} is already stored (an import or another backup of the "
            "same second): not overwritten; run the backup again"
        )


def add_storage_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--dest", type=Path, help="directory of the backups (the backup PVC)")
    parser.add_argument("--s3", action="store_true", help="store in S3 (S3_* and AWS_* env)")
    parser.add_argument(
        "--per-tenant-dir",
        action="store_true",
        help="with --dest: use <dest>/<tenant> (one directory shared by several tenants)",
    )
    parser.add_argument("--tenant", default=os.environ.get("SAASODOO_TENANT", ""), help="tenant id")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    add_storage_arguments(parser)
    parser.add_argument("--filestore", type=Path, help="Odoo's filestore root (data_dir/filestore)")
    parser.add_argument(
        "--work", type=Path, help="where the zip is built (default: --dest, else /tmp)"
    )
    parser.add_argument("--kind", default=os.environ.get("BACKUP_KIND") or "scheduled")
    parser.add_argument("--keep", "--keep-daily", dest="daily", type=int, default=7)
    parser.add_argument("--keep-weekly", type=int, default=4)
    parser.add_argument("--keep-monthly", type=int, default=3)
    parser.add_argument("--keep-pre-update", type=int, default=3)
    parser.add_argument("--keep-on-demand", type=int, default=5)
    parser.add_argument("--keep-on-demand-days", type=int, default=30)
    parser.add_argument("--no-prune", action="store_true", help="skip the retention step")
    args = parser.parse_args(argv)
    database = os.environ.get("PGDATABASE")
    if not database:
        log("ERROR: PGDATABASE is not set")
        return 1
    try:
        store = open_store(args, args.tenant)
        work = args.work or (
            store.root if isinstance(store, DirStore) else Path(os.environ.get("TMPDIR", "/tmp"))
        )
        policy = (
            None
            if args.no_prune
            else Policy(
                args.daily, args.keep_weekly, args.keep_monthly, args.keep_pre_update,
                args.keep_on_demand, args.keep_on_demand_days,
            )
        )  # fmt: skip
        name, manifest = run_backup(
            store, database, args.filestore, work,
            tenant=args.tenant, kind=args.kind, policy=policy,
        )  # fmt: skip
    except (BackupError, OSError) as exc:
        log(f"ERROR: backup of {database} failed: {exc}")
        print("RESULT " + json.dumps({"ok": False, "error": str(exc)}, sort_keys=True), flush=True)
        return 1
    print("RESULT " + json.dumps(backup_summary(name, manifest, store), sort_keys=True), flush=True)
    return 0


def backup_summary(name: str, manifest: dict[str, Any], store: Store) -> dict[str, Any]:
    """What the `RESULT` line of a backup says: the zip's name and where it is, and the
    manifest's fields saasodoo shows (not its per-file and per-table checksums)."""
    keep = ("tenant", "kind", "timestamp", "odoo_version", "db_name", "sizes")
    return {
        "ok": True,
        "name": name,
        "storage": store.describe(),
        **{key: manifest.get(key) for key in keep},
        "checksums": {"dump.sql": (manifest.get("checksums") or {}).get("dump.sql")},
    }


if __name__ == "__main__":
    sys.exit(main())
