#!/usr/bin/env python3
"""Restore (or verify) one Odoo tenant's backup; never destroys live data before the copy is good.

Runs in the official Odoo image beside backup.py (whose format and storage it imports), as the
odoo user, standard library + psql only; also runs as it is on a developer's machine (the tests).

1. Fetch the zip (`--backup NAME`, default the newest complete one; or `--zip PATH`) and check
   every SHA-256 of its manifest. A mismatch stops here: nothing was touched. So do member
   names the unpacking would not give back as they are (dumpformat.member_problems) and, for
   a restore, a backup of another Odoo series than the tenant's (SAASODOO_ODOO_VERSION, which
   the chart passes to the backup CronJob, else the live database's `base` module).
2. Create a fresh database `<db>_r<stamp>` (through the admin connection PGADMINUSER/
   PGADMINPASSWORD when given, e.g. the chart PostgreSQL's superuser, owned by PGUSER; else as
   PGUSER, which then needs CREATEDB) shaped like the live one: same encoding, locale provider,
   collation and ctype, owner, privileges (no PUBLIC access, as postgres-init.sh leaves a new
   tenant's) and settings, so that apart from its data a restored tenant is a fresh one. Load
   `dump.sql` into it as PGUSER, in one transaction.
   Unpack the filestore into `<filestore root>/<db>_r<stamp>` (same volume: the switch is a
   rename).
3. Check the copy: every table's row count and row checksum equal the manifest's, every
   filestore file's checksum too.
4. `--verify-only` (the filestore is unpacked into the work directory instead, so the live
   filestore is not written to): report, drop the scratch database and files, done.
   Otherwise, a copy of another database (an import not flagged "moved", another tenant's
   backup) gets an identity of its own, as Odoo's restore gives a copy: new
   `database.uuid`, `database.secret`, `database.create_date`. Then switch over: the live
   database must have no connection (Odoo scaled to zero);
   the live database and filestore are renamed to `<db>_p<stamp>` (kept: `--drop-previous`
   drops them), the restored ones take their names. A failure in between renames back.

The previous data a restore keeps (`<db>_p<stamp>`, database and filestore) is kept for
`--keep-previous-hours` (SAASODOO_KEEP_PREVIOUS_HOURS, default 72; 0: dropped at once, as
with `--drop-previous`), then dropped by the next restore, recovery or `--prune-previous` run
(the backup CronJob's `prune-previous` step, daily). It counts against the filestore volume:
a restore first drops the expired copies, then refuses, before touching anything, when the
volume has not room for the restored filestore beside the live one. The result says what
was kept, its size and until when.

A restore or recovery holds the tenant's data lock (backup.py's `TenantLock`, a PostgreSQL
advisory lock every backup takes too): a scheduled backup and a restore of the same tenant
never overlap; the second waits for the first (SAASODOO_LOCK_WAIT_SECONDS), naming it.

`--source-tenant SOURCE`: a staging copy of SOURCE. The backup is read from SOURCE's folder
of the storage (S3: its prefix; `--per-tenant-dir`: its directory), which this program only
reads, never writes; the restored database is a copy (new identity, step 4) whatever the
manifest says (an import SOURCE received "moved" included). The rest is `--tenant`'s (its
database, filestore, lock).

`--check-only`: fetch the backup and check every checksum of its zip against its manifest,
nothing else (no database connection): how saasodoo proves a final backup readable before
it deletes a tenant.

`--list`: the complete backups of the tenant's folder (zip and manifest), oldest first, one
summary each in the RESULT line (`backups`: name, tenant, kind, timestamp, odoo_version,
db_name, sizes, dump_sha256, modules and tables counted, imported_from: the shape of
saasodoo's `BackupInfo.to_dict`); no zip is read, no database connection. How the control
plane lists backups it cannot read itself (a backup PVC).

`--serve --backup NAME`: serve that one zip of the backup volume (`--dest`) over HTTP on
`--port`, once, to a client showing the token whose SHA-256 (hex) is in
SAASODOO_SERVE_TOKEN_SHA256 (`Authorization: Bearer TOKEN`; the token itself is never given to
this program); it ends after one complete download, or after SAASODOO_SERVE_SECONDS (600)
without one (a connection silent for 60 s is dropped). How the platform hands a customer a
backup kept on a volume it cannot mount:
a short-lived pod in the tenant's namespace, no database connection.

`--fetch ADDRESS --backup NAME`: the other end: fetch that zip and its manifest from a reader
pod (token in SAASODOO_FETCH_TOKEN), check every checksum, store both in this tenant's storage
(how a staging copy gets a backup its source keeps on a volume).

The first connection (PostgreSQL, S3) is retried for SAASODOO_CONNECT_RETRY_SECONDS (30 s):
a new pod may be let through its NetworkPolicy a moment after it starts.

Interrupted (the pod killed, the node lost) at any point, the live data survives:
- before the switch, only the scratch copy `<db>_r<stamp>` exists beside the live data; the
  next restore (or `--recover`) drops it.
- the switch writes a journal (`.saasodoo-restore.json` in the filestore root, the same
  volume) before its first rename, renames the filestore directories, then renames both
  databases in one transaction (the commit point), then removes the journal. A journal found
  later means an interrupted switch: `--recover` (and every restore, first) rolls the
  filestore back if the databases were not switched, or just finishes if they were. Odoo
  never gets a restored filestore with the old database, or the reverse, once recovered.

The last line printed is `RESULT {json}`: what happened, for the orchestrator and people alike.
Exit codes: 0 done, 1 failed (live data untouched), 2 bad usage, 3 refused (a corrupt
backup, member names it cannot restore as they are, a backup of another Odoo series than
the tenant's): nothing was touched.
`--recover` only recovers from an interrupted restore (exit 0 when the data is consistent).
"""

from __future__ import annotations

import argparse
import datetime
import fcntl
import hashlib
import hmac
import json
import os
import re
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import uuid
import zipfile
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import IO, Any
from urllib.parse import quote

sys.dont_write_bytecode = True  # no __pycache__ beside the scripts (read-only in the pod)
sys.path.insert(0, str(Path(__file__).resolve().parent))
import backup as fmt  # noqa: E402  (the sibling script, mounted beside this one)
import dumpformat  # noqa: E402  (the dump's table checksums, shared with backup.py)

MAX_IDENT = 63
UTC = datetime.timezone.utc  # datetime.UTC is Python 3.11+; odoo:17.0 runs 3.10
JOURNAL = ".saasodoo-restore.json"
#: Seconds the switch-over waits for the last client sessions on the live database to end.
DRAIN_SECONDS = 10
LOCK = ".saasodoo-restore.lock"
#: Seconds `--serve` waits for its one complete download.
SERVE_SECONDS = float(os.environ.get("SAASODOO_SERVE_SECONDS") or 600)
_LOCKS: list[int] = []
_HELD: list[Any] = []  # the tenant lock (backup.TenantLock), held until the process ends
#: Hours a restore keeps the data it replaced (`<db>_p<stamp>`) before it may be dropped.
KEEP_PREVIOUS_HOURS = float(os.environ.get("SAASODOO_KEEP_PREVIOUS_HOURS") or 72)
#: Room left free on the filestore volume beyond a restored filestore (bytes).
SPACE_MARGIN = 64 << 20


def log(message: str) -> None:
    print(f"[restore] {message}", flush=True)


def quote_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def admin_env() -> dict[str, str]:
    """libpq environment of the maintenance connection (database `postgres`)."""
    env = dict(os.environ)
    if env.get("PGADMINUSER"):
        env["PGUSER"] = env["PGADMINUSER"]
        env["PGPASSWORD"] = env.get("PGADMINPASSWORD", "")
    env["PGDATABASE"] = env.get("PGADMINDATABASE") or "postgres"
    return env


def admin_sql(sql: str) -> list[list[str]]:
    proc = subprocess.run(
        [fmt.PSQL, "--no-psqlrc", "-X", "-v", "ON_ERROR_STOP=1", "-At", "-F", "\t", "-c", sql],
        capture_output=True,
        text=True,
        env=admin_env(),
        check=False,
    )
    if proc.returncode != 0:
        raise fmt.BackupError(f"{sql.split(' ')[0]} failed: {proc.stderr.strip()}")
    return [line.split("\t") for line in proc.stdout.splitlines() if line]


def database_exists(name: str) -> bool:
    lit = name.replace("'", "''")
    return admin_sql(f"SELECT 1 FROM pg_database WHERE datname = '{lit}'") == [["1"]]


def drop_database(name: str) -> None:
    admin_sql(f"DROP DATABASE IF EXISTS {quote_ident(name)}")


def literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def database_shape(name: str) -> dict[str, Any] | None:
    """What makes a database what it is apart from its data: encoding, locale provider,
    collation and ctype (libc, ICU or builtin locale), connection limit, owner, privileges
    (the REVOKE ... FROM PUBLIC of a new tenant) and its own settings. None if it is absent."""
    [[num]] = admin_sql("SHOW server_version_num")
    version = int(num)
    locale = "datlocale" if version >= 170000 else "daticulocale" if version >= 150000 else "NULL"
    provider = "datlocprovider" if version >= 150000 else "'c'"
    rows = admin_sql(
        "SELECT pg_encoding_to_char(d.encoding), d.datcollate, d.datctype, "
        f"{provider}, coalesce({locale}, ''), d.datconnlimit, pg_get_userbyid(d.datdba), "
        "coalesce(d.datacl::text, ''), coalesce((SELECT array_to_json(s.setconfig) "
        "FROM pg_db_role_setting s WHERE s.setdatabase = d.oid AND s.setrole = 0)::text, '[]') "
        f"FROM pg_database d WHERE d.datname = {literal(name)}"
    )
    if not rows:
        return None
    [[encoding, collate, ctype, prov, loc, connlimit, owner, acl, settings]] = rows
    return {
        "encoding": encoding, "collate": collate, "ctype": ctype, "provider": prov,
        "locale": loc, "connlimit": int(connlimit), "owner": owner, "acl": acl,
        "settings": json.loads(settings),
    }  # fmt: skip


def create_database(name: str, owner: str, like: str) -> None:
    """A new database shaped as the live one `like` (as postgres-init.sh and the server's
    initdb, or Odoo, made it); without one, as a new tenant database of this server is (the
    server's default locale, no privileges for PUBLIC)."""
    shape = database_shape(like)
    owner_clause = f" OWNER {quote_ident(owner)}" if os.environ.get("PGADMINUSER") else ""
    clauses = ""
    if shape is not None:
        clauses = (
            f" ENCODING {literal(shape['encoding'])} LC_COLLATE {literal(shape['collate'])}"
            f" LC_CTYPE {literal(shape['ctype'])} CONNECTION LIMIT {shape['connlimit']}"
        )
        provider = {"i": "icu", "b": "builtin"}.get(shape["provider"])
        if provider:
            clauses += f" LOCALE_PROVIDER {provider}"
            key = "ICU_LOCALE" if provider == "icu" else "BUILTIN_LOCALE"
            clauses += f" {key} {literal(shape['locale'])}"
        if os.environ.get("PGADMINUSER"):
            owner_clause = f" OWNER {quote_ident(shape['owner'])}"
    admin_sql(f"CREATE DATABASE {quote_ident(name)}{owner_clause} TEMPLATE template0{clauses}")
    ident = quote_ident(name)
    if shape is None or shape["acl"]:
        # The privileges of the live database (or of a new tenant's: nothing for PUBLIC).
        statements = [f"REVOKE ALL ON DATABASE {ident} FROM PUBLIC"]
        if shape is not None:
            statements += grants(ident, shape["acl"])
        admin_sql("; ".join(statements))
    for setting in (shape or {}).get("settings") or []:
        key, _, value = setting.partition("=")
        admin_sql(f"ALTER DATABASE {ident} SET {quote_ident(key)} TO {literal(value)}")


def grants(ident: str, acl: str) -> list[str]:
    """GRANT statements giving a database the privileges of an ACL (`{=Tc/o,o=CTc/o}`)."""
    names = {"C": "CREATE", "T": "TEMPORARY", "c": "CONNECT"}
    out = []
    for item in acl.strip("{}").split(","):
        grantee, _, rest = item.partition("=")
        privileges = rest.split("/", 1)[0]
        granted = [names[ch] for ch in privileges if ch in names]
        if granted:
            who = quote_ident(grantee.strip('"')) if grantee else "PUBLIC"
            out.append(f"GRANT {', '.join(granted)} ON DATABASE {ident} TO {who}")
    return out


class DumpFilter(dumpformat.LineFeed):
    """Feeds dump.sql to psql, leaving out the statements a database owner may not run on a
    fresh database (`COMMENT ON EXTENSION`: the extensions belong to the superuser), and the
    dump's own `\\restrict`/`\\unrestrict` lines (pg_dump 17.6, 16.10, 15.14, 14.19, 13.22
    and later write them): load_dump puts psql in restricted mode under its own key first.
    Line by line through dumpformat.LineFeed (linear in the dump's size, long lines too)."""

    SKIP = (b"COMMENT ON EXTENSION ",)
    RESTRICT_RE = re.compile(rb"^\\(un)?restrict(\s|$)")

    def __init__(self, out: IO[bytes]) -> None:
        super().__init__()
        self.out = out
        self.in_copy = False
        self.ready: list[bytes] = []

    def feed(self, data: bytes) -> None:
        super().feed(data)
        self.flush()

    def close(self) -> None:
        super().close()
        self.flush()

    def flush(self) -> None:
        if self.ready:
            self.out.write(b"".join(self.ready))
            self.ready = []

    def _line(self, line: bytes) -> None:
        self.ready.append(self.rewritten(line))
        self.ready.append(b"\n")

    def rewritten(self, line: bytes) -> bytes:
        if self.in_copy:
            self.in_copy = line != b"\\."
            return line
        if dumpformat.COPY_RE.match(line):
            self.in_copy = True
        elif line.startswith(self.SKIP):
            return b"-- (skipped by restore) " + line
        elif self.RESTRICT_RE.match(line):
            return b"-- (skipped by restore) " + line.split(b" ", 1)[0]
        return line


def load_dump(zf: zipfile.ZipFile, database: str) -> None:
    """Load dump.sql into `database` in one transaction. The dump may come from a customer
    (an import): psql runs in restricted mode (`\\restrict`, CVE-2025-8714), refusing every
    backslash command of the dump (`\\!`, `\\o |...`, `\\copy ... program`, ...) under a
    key the dump cannot know, so the dump is SQL only and runs as the tenant's role. A psql
    too old for `\\restrict` stops at it (invalid command, ON_ERROR_STOP): it never loads a
    dump unrestricted."""
    env = dict(os.environ, PGDATABASE=database)
    cmd = [fmt.PSQL, "--no-psqlrc", "-X", "-q", "-v", "ON_ERROR_STOP=1", "--single-transaction"]
    with (
        subprocess.Popen(
            cmd, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env
        ) as psql,
        zf.open("dump.sql") as dump,
    ):
        assert psql.stdin is not None and psql.stderr is not None
        filt = DumpFilter(psql.stdin)
        try:
            psql.stdin.write(b"\\restrict " + secrets.token_hex(32).encode() + b"\n")
            for block in iter(lambda: dump.read(dumpformat.CHUNK), b""):
                filt.feed(block)
            filt.close()
            psql.stdin.close()
        except BrokenPipeError:
            pass
        errors = psql.stderr.read().decode(errors="replace").strip()
    if psql.returncode != 0:
        raise fmt.BackupError(f"loading dump.sql failed: {errors[-500:]}")


#: A table name as pg_dump writes it on a COPY line (``dumpformat.COPY_RE``): schema and table,
#: each a lower-case identifier or a double-quoted one without a newline or a backslash. The
#: names come from the manifest, which an import brings from elsewhere: anything else is refused
#: before it reaches psql.
_IDENT = r'(?:[a-z_][a-z0-9_$]*|"(?:[^"\\\n]|"")+")'
TABLE_NAME = re.compile(rf"{_IDENT}\.{_IDENT}")
#: The line psql prints (``\qecho``) after each table's rows. COPY's text format writes a
#: backslash in a value as two and never escapes a dot (PostgreSQL's COPY documentation), so
#: no row of any table is this line.
TABLE_END = b"\\."


def table_sums(database: str, tables: list[str]) -> dict[str, dict[str, Any]]:
    """Row count and row checksum of each table, as backup.py computes them from the dump.

    One psql session reads every table (``COPY t TO STDOUT``, then a TABLE_END line): one
    connection, where a session per table cost about 25 ms each (3 s of a new tenant's
    120-table template restore). BackupError for a name that is not a table name (TABLE_NAME)
    or a table psql could not read."""
    for table in tables:
        if not TABLE_NAME.fullmatch(table):
            raise fmt.BackupError(
                f"the manifest names a table {table!r}, which is not a table name"
            )
    script = "".join(f"COPY {table} TO STDOUT;\n\\qecho '\\\\.'\n" for table in tables)
    env = dict(os.environ, PGDATABASE=database)
    out: dict[str, dict[str, Any]] = {}
    rows = dumpformat.RowSum()
    with tempfile.TemporaryFile() as commands, tempfile.TemporaryFile() as errors:
        commands.write(script.encode())
        commands.seek(0)
        with subprocess.Popen(
            [fmt.PSQL, "--no-psqlrc", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-f", "-"],
            stdin=commands, stdout=subprocess.PIPE, stderr=errors, env=env,
        ) as psql:  # fmt: skip
            assert psql.stdout is not None
            for line in psql.stdout:
                line = line.rstrip(b"\n")
                if line == TABLE_END and len(out) < len(tables):
                    out[tables[len(out)]] = {"rows": rows.rows, "sha256sum": rows.hexdigest()}
                    rows = dumpformat.RowSum()
                else:
                    rows.add(line)
        if psql.returncode != 0 or len(out) != len(tables):
            errors.seek(0)
            why = errors.read().decode(errors="replace").strip() or f"psql exited {psql.returncode}"
            table = tables[min(len(out), len(tables) - 1)]
            raise fmt.BackupError(f"reading {table} failed: {why}")
    return out


def unpack_filestore(zf: zipfile.ZipFile, target: Path) -> None:
    target.mkdir(parents=True)
    root = target.resolve()
    for info in zf.infolist():
        if not info.filename.startswith("filestore/") or info.is_dir():
            continue
        dest = (target / info.filename.removeprefix("filestore/")).resolve()
        if root not in dest.parents:
            raise fmt.BackupError(f"unsafe path in the zip: {info.filename}")
        dest.parent.mkdir(parents=True, exist_ok=True)
        with zf.open(info) as src, dest.open("wb") as out:
            shutil.copyfileobj(src, out, dumpformat.CHUNK)


def check_copy(manifest: dict[str, Any], database: str, filestore: Path | None) -> list[str]:
    """Differences between the restored copy and the manifest (empty: the copy is good)."""
    problems: list[str] = []
    expected_tables: dict[str, dict[str, Any]] = manifest.get("tables") or {}
    actual = table_sums(database, sorted(expected_tables))
    for table, want in expected_tables.items():
        got = actual.get(table)
        if got != {"rows": want.get("rows"), "sha256sum": want.get("sha256sum")}:
            problems.append(f"table {table}: expected {want}, restored {got}")
    files: dict[str, dict[str, Any]] = (manifest.get("checksums") or {}).get("filestore") or {}
    if filestore is not None:
        present = {p.relative_to(filestore).as_posix() for p in fmt.filestore_files(filestore)}
        if present != set(files):
            problems.append(f"filestore: {len(present)} files restored, {len(files)} expected")
        for name, meta in files.items():
            path = filestore / name
            if path.is_file() and fmt.sha256_file(path) != meta.get("sha256"):
                problems.append(f"filestore/{name}: checksum differs")
    return problems


def fetch(args: argparse.Namespace, work: Path) -> tuple[str, Path, bool]:
    """Name and local path of the backup, and whether that is a download to delete after."""
    if args.zip:
        return args.zip.name, args.zip, False
    store = fmt.open_store(args, args.source_tenant or args.tenant)
    if isinstance(store, fmt.S3Store):
        store.wait_reachable()
    name = args.backup
    if not name:
        entries = fmt.stored_entries(store)
        if not entries:
            raise fmt.BackupError(f"no complete backup in {store.describe()}")
        name = entries[-1].name
    if isinstance(store, fmt.DirStore):
        if not (store.root / name).is_file():
            raise fmt.BackupError(f"no backup {name} in {store.describe()}")
        return name, store.root / name, False  # read in place
    local = work / name
    log(f"fetching {name} from {store.describe()}")
    store.get_file(name, local)
    return name, local, True


def check_only(args: argparse.Namespace) -> dict[str, Any]:
    """Fetch the backup and check its zip against its manifest; no database involved."""
    work = args.work
    work.mkdir(parents=True, exist_ok=True)
    name, local, downloaded = fetch(args, work)
    report: dict[str, Any] = {"mode": "check", "backup": name}
    try:
        manifest = fmt.verify_zip(local)
        report.update(
            ok=True,
            sha256=fmt.sha256_file(local),
            size=local.stat().st_size,
            tenant=manifest.get("tenant"),
            kind=manifest.get("kind"),
            timestamp=manifest.get("timestamp"),
            files=len((manifest.get("checksums") or {}).get("filestore") or {}),
        )
        log(f"{name}: every checksum matches its manifest")
    except fmt.BackupError as exc:
        report.update(ok=False, corrupt=True, error=str(exc))
    finally:
        if downloaded:
            local.unlink(missing_ok=True)
    return report


def backup_summary(name: str, manifest: dict[str, Any]) -> dict[str, Any]:
    """One backup as `--list` reports it (saasodoo's `BackupInfo.to_dict` shape): the
    manifest's small fields, its per-table and per-module maps counted."""
    entry = fmt.parse_name(name)
    stamp = entry.timestamp.strftime("%Y-%m-%dT%H:%M:%SZ") if entry else None
    return {
        "name": name,
        "tenant": str(manifest.get("tenant", "")),
        "kind": str(manifest.get("kind", entry.kind if entry else "")),
        "timestamp": stamp,
        "odoo_version": str(manifest.get("odoo_version", manifest.get("version", ""))),
        "db_name": str(manifest.get("db_name", "")),
        "sizes": {k: int(v) for k, v in (manifest.get("sizes") or {}).items()},
        "dump_sha256": (manifest.get("checksums") or {}).get("dump.sql"),
        "modules": len(manifest.get("modules") or {}),
        "tables": len(manifest.get("tables") or {}),
        "imported_from": manifest.get("imported_from"),
    }


def list_stored(args: argparse.Namespace) -> dict[str, Any]:
    """The complete backups of the tenant's folder, oldest first (see `--list`)."""
    store = fmt.open_store(args, args.source_tenant or args.tenant)
    if isinstance(store, fmt.S3Store):
        store.wait_reachable()
    backups = []
    for entry in fmt.stored_entries(store):
        try:
            manifest = json.loads(store.get_bytes(entry.name + ".json"))
        except (fmt.BackupError, ValueError):
            continue  # deleted meanwhile (retention), or not ours
        if isinstance(manifest, dict):
            backups.append(backup_summary(entry.name, manifest))
    log(f"{len(backups)} complete backup(s) in {store.describe()}")
    return {"mode": "list", "ok": True, "backups": backups}


def serve(args: argparse.Namespace) -> dict[str, Any]:
    """`--serve` (see the module docstring): the report says whether the zip was served and
    how many requests were denied (no or a wrong token, another path)."""
    expected = os.environ.get("SAASODOO_SERVE_TOKEN_SHA256", "")
    if not re.fullmatch(r"[0-9a-f]{64}", expected):
        raise fmt.BackupError("SAASODOO_SERVE_TOKEN_SHA256 must be a SHA-256 in hex (64 digits)")
    store = fmt.open_store(args, args.tenant)
    if not isinstance(store, fmt.DirStore):
        raise fmt.BackupError("--serve serves a backup of the backup volume: give --dest")
    if not args.backup or not fmt.parse_name(args.backup):
        raise fmt.BackupError("--serve needs --backup NAME, a backup's zip name")
    path = store.root / args.backup
    if not path.is_file():
        raise fmt.BackupError(f"no backup {args.backup} in {store.describe()}")
    wanted = "/" + quote(args.backup)
    state = {"served": False, "denied": 0}

    class Handler(BaseHTTPRequestHandler):
        # A client silent this long is dropped: one idle connection cannot hold the reader.
        timeout = 60

        def do_GET(self) -> None:  # noqa: N802 - http.server's name
            token = self.headers.get("Authorization", "").removeprefix("Bearer ").strip()
            digest = hashlib.sha256(token.encode()).hexdigest()
            if not token or not hmac.compare_digest(digest, expected):
                state["denied"] += 1
                self.send_error(403, "a valid bearer token is needed")
                return
            if self.path not in (wanted, wanted + ".json"):
                state["denied"] += 1
                self.send_error(404, "only the backup this pod was started for")
                return
            manifest = self.path.endswith(".json")
            source = path.with_name(path.name + ".json") if manifest else path
            if not source.is_file():
                self.send_error(404, f"no {source.name}")
                return
            size = source.stat().st_size
            self.send_response(200)
            self.send_header("Content-Type", "application/json" if manifest else "application/zip")
            self.send_header("Content-Length", str(size))
            self.end_headers()
            with source.open("rb") as f:
                shutil.copyfileobj(f, self.wfile, 1 << 20)
            self.wfile.flush()
            if not manifest:  # the zip, whole: the one download this pod is for
                state["served"] = True
            log(f"served {source.name} ({size} bytes) to {self.client_address[0]}")

        def log_message(self, format: str, *values: Any) -> None:  # noqa: A002
            log(f"{self.client_address[0]} {format % values}")

    server = HTTPServer((args.bind, args.port), Handler)
    server.timeout = 1.0
    log(f"serving {args.backup} on {args.bind}:{server.server_address[1]} for {SERVE_SECONDS:.0f}s")
    deadline = time.monotonic() + SERVE_SECONDS
    try:
        while not state["served"] and time.monotonic() < deadline:
            server.handle_request()  # a client gone mid-way leaves it unserved: it may ask again
    finally:
        server.server_close()
    report: dict[str, Any] = {"mode": "serve", "backup": args.backup, **state}
    if state["served"]:
        report.update(ok=True, size=path.stat().st_size)
    else:
        report.update(ok=False, error=f"no complete download within {SERVE_SECONDS:.0f}s")
    return report


def fetch_served(args: argparse.Namespace) -> dict[str, Any]:
    """`--fetch ADDRESS`: the backup `--backup` and its manifest from the reader pod at
    ADDRESS (`host:port`, another tenant's restore.py `--serve`), with the token in
    SAASODOO_FETCH_TOKEN, checked against its manifest, then stored in this tenant's storage
    under the same name (how a staging copy gets a backup its source keeps on a volume).
    The first connection is retried (SAASODOO_CONNECT_RETRY_SECONDS: the NetworkPolicies
    may open a moment after the pods start)."""
    token = os.environ.get("SAASODOO_FETCH_TOKEN", "")
    if not token:
        raise fmt.BackupError("SAASODOO_FETCH_TOKEN is not set")
    if not args.backup or not fmt.parse_name(args.backup):
        raise fmt.BackupError("--fetch needs --backup NAME, a backup's zip name")
    store = fmt.open_store(args, args.tenant)
    if isinstance(store, fmt.S3Store):
        store.wait_reachable()
    work = args.work
    work.mkdir(parents=True, exist_ok=True)
    for left in work.glob(".*.fetching"):  # of an attempt that was killed
        left.unlink(missing_ok=True)
    local = work / f".{args.backup}.fetching"

    def get(name: str, target: Path) -> None:
        request = urllib.request.Request(f"http://{args.fetch}/{quote(name)}")
        request.add_header("Authorization", f"Bearer {token}")
        with urllib.request.urlopen(request, timeout=60) as answer, target.open("wb") as out:
            shutil.copyfileobj(answer, out, 1 << 20)

    def transient(exc: Exception) -> bool:
        return isinstance(exc, OSError) and not isinstance(exc, urllib.error.HTTPError)

    manifest_path = work / f".{args.backup}.json.fetching"
    try:
        fmt.retrying(
            f"the reader at {args.fetch}",
            lambda: get(args.backup + ".json", manifest_path),
            transient,
        )
        get(args.backup, local)
        inside = fmt.verify_zip(local)
        beside = json.loads(manifest_path.read_bytes())
        if not isinstance(beside, dict) or beside.get("checksums") != inside.get("checksums"):
            raise fmt.BackupError(f"the manifest of {args.backup} differs from the one in its zip")
        log(
            f"fetched {args.backup} ({local.stat().st_size} bytes) from {args.fetch}: "
            "every checksum matches its manifest"
        )
        store.put_file(args.backup, local)
        store.put_bytes(args.backup + ".json", manifest_path.read_bytes())
    except urllib.error.HTTPError as exc:
        raise fmt.BackupError(f"the reader at {args.fetch} refused: HTTP {exc.code}") from None
    finally:
        local.unlink(missing_ok=True)
        manifest_path.unlink(missing_ok=True)
    return {"mode": "fetch", "ok": True, "backup": args.backup, "from": args.fetch}


def restore(args: argparse.Namespace) -> dict[str, Any]:
    if args.mode == "list":
        return list_stored(args)
    if args.mode == "serve":
        return serve(args)
    if args.mode == "fetch":
        return fetch_served(args)
    database = os.environ.get("PGDATABASE") or ""
    user = os.environ.get("PGUSER") or ""
    if not database:
        raise fmt.BackupError("PGDATABASE is not set")
    if args.mode == "check":
        return check_only(args)
    # The first connections of a new pod: retried briefly (a NetworkPolicy may open a moment
    # after the pod starts), the maintenance one and the tenant role's.
    fmt.wait_for_database(None, admin_env())
    if args.mode != "verify":
        # One backup or restore of the tenant at a time, whoever started it (held until
        # this process ends).
        lock = fmt.TenantLock(database, args.mode, admin_env())
        lock.acquire()
        _HELD.append(lock)
        if args.filestore is not None:
            lock_filestore(args.filestore)
        # Odoo is stopped for a restore: the time to clean up after one that was killed (not
        # for the CronJob's pruning step, which runs beside Odoo).
        recovered = recover(database, args.filestore) if args.mode != "prune-previous" else {}
        pruned = prune_previous(database, args.filestore, args.keep_previous_hours)
        if pruned:
            recovered["pruned_previous"] = pruned
        if args.mode in ("recover", "prune-previous"):
            return {"ok": True, "mode": args.mode, "database": database, **recovered}
    else:
        recovered = {}
    work = args.work
    work.mkdir(parents=True, exist_ok=True)
    name, local, downloaded = fetch(args, work)
    try:
        return {**recovered, **restore_zip(args, name, local, database, user, work)}
    finally:
        if downloaded:
            local.unlink(missing_ok=True)


def lock_filestore(root: Path) -> None:
    """One restore or recovery at a time on a filestore, for the life of this process: a
    recovery started while a killed restore's pod is still terminating waits for it."""
    root.mkdir(parents=True, exist_ok=True)
    fd = os.open(root / LOCK, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        log("another restore of this filestore is running: waiting for it to end")
        fcntl.flock(fd, fcntl.LOCK_EX)
    _LOCKS.append(fd)  # held until the process ends (the kernel releases it even on SIGKILL)


def restore_zip(
    args: argparse.Namespace, name: str, local: Path, database: str, user: str, work: Path
) -> dict[str, Any]:
    report: dict[str, Any] = {"backup": name, "database": database, "mode": args.mode}
    try:
        manifest = fmt.verify_zip(local)
    except fmt.BackupError as exc:
        report.update(ok=False, corrupt=True, error=str(exc))
        return report
    log(f"{name}: checksums of dump.sql and {len(manifest['checksums']['filestore'])} files ok")
    refusal = refuse(local, name, manifest, database, series=args.mode != "verify")
    if refusal:
        report.update(ok=False, refused=True, error=refusal)
        return report
    root: Path | None = args.filestore
    if args.mode != "verify" and root is not None:
        check_room(local, root)
    scratch, previous = fresh_names(database, root)
    # Verification unpacks into the work directory: the live filestore is not even written to.
    scratch_dir = (work if args.mode == "verify" else root) / scratch if root else None
    switched = False
    try:
        create_database(scratch, user, like=database)
        with zipfile.ZipFile(local) as zf:
            load_dump(zf, scratch)
            if scratch_dir is not None:
                unpack_filestore(zf, scratch_dir)
        problems = check_copy(manifest, scratch, scratch_dir)
        report["checks"] = {
            "tables": len(manifest.get("tables") or {}),
            "files": len(manifest["checksums"]["filestore"]),
            "problems": problems,
        }
        if problems:
            raise fmt.BackupError(
                "the restored copy differs from the backup: " + "; ".join(problems)
            )
        log(f"restored copy checked: {report['checks']['tables']} tables, "
            f"{report['checks']['files']} files")  # fmt: skip
        if args.mode == "verify":
            report["ok"] = True
            return report
        report["identity"] = "kept"
        staging = args.as_copy or (bool(args.source_tenant) and args.source_tenant != args.tenant)
        if staging or is_copy(manifest, args.tenant):
            renew_identity(scratch)
            report["identity"] = "new"
        switch_over(database, scratch, previous, root)
        switched = True
        report.update(ok=True, previous_database=previous)
        if root is not None:
            report["previous_filestore"] = str(root / previous)
        if not args.drop_previous and args.keep_previous_hours > 0:
            until = stamp_of(previous) + datetime.timedelta(hours=args.keep_previous_hours)
            report["previous"] = {
                "database": previous,
                "filestore": str(root / previous) if root is not None else None,
                "bytes": previous_size(previous, root),
                "kept_until": until.strftime("%Y-%m-%dT%H:%M:%SZ"),
            }
            log(f"the replaced data is kept as {previous} until {until:%Y-%m-%d %H:%M} UTC")
        if args.drop_previous or args.keep_previous_hours <= 0:
            try:
                drop_database(previous)
                if root is not None:
                    shutil.rmtree(root / previous, ignore_errors=True)
                report["previous_dropped"] = True
            except fmt.BackupError as exc:  # restored all the same: say so, not "failed"
                log(f"could not drop the previous data {previous}: {exc}")
                report["previous_dropped"] = False
        return report
    finally:
        # A journal left by the switch means its outcome is unknown: `recover` decides, from
        # the names, and needs the scratch copy for that. Otherwise drop the scratch copy.
        unsettled = args.mode != "verify" and root is not None and (root / JOURNAL).exists()
        if not switched and not unsettled:
            drop_database(scratch)
            if scratch_dir is not None:
                shutil.rmtree(scratch_dir, ignore_errors=True)


def refuse(
    local: Path, name: str, manifest: dict[str, Any], database: str, *, series: bool = True
) -> str:
    """Why the backup must not be restored into `database` at all (empty: it may), checked
    before anything is touched: member names the unpacking would not give back as they are
    (dumpformat.member_problems, the rule saasodoo's import check applies too), or, with
    `series` (a restore; a verification only reads), a backup of another Odoo series than the
    tenant's (Odoo migrates a database only forward, and only through its upgrade scripts:
    17.0 data under 18.0 code breaks, and the reverse)."""
    with zipfile.ZipFile(local) as zf:
        problems = dumpformat.member_problems(zf.namelist())
    if problems:
        return f"{name}: member names that cannot be restored: " + "; ".join(problems)
    if not series:
        return ""
    theirs = dumpformat.manifest_series(manifest)
    # The series the tenant's Odoo runs (the chart passes it to the backup CronJob, whose
    # Jobs these are), else the live database's own.
    ours = dumpformat.odoo_series(os.environ.get("SAASODOO_ODOO_VERSION")) or live_series(database)
    if ours and theirs != ours:
        return (
            f"{name} is a backup of Odoo {theirs or 'of an unknown series'}; the tenant "
            f"runs Odoo {ours}. Restore a backup of Odoo {ours}, or move the data "
            "to another series through Odoo's upgrade service (export, upgrade, import into "
            "a tenant of that series)"
        )
    return ""


def live_series(database: str) -> str:
    """The Odoo series ("18.0") of the live database: its `base` module's version; "" when
    there is no live database or no Odoo in it yet."""
    if not database_exists(database):
        return ""
    env = dict(admin_env(), PGDATABASE=database)
    proc = subprocess.run(
        [fmt.PSQL, "--no-psqlrc", "-X", "-At", "-c",
         "SELECT latest_version FROM ir_module_module WHERE name = 'base'"],
        capture_output=True, text=True, env=env, check=False,
    )  # fmt: skip
    if proc.returncode != 0:
        if "ir_module_module" in proc.stderr and "does not exist" in proc.stderr:
            return ""  # not initialized by Odoo yet
        raise fmt.BackupError(f"reading the Odoo version of {database} failed: {proc.stderr}")
    return dumpformat.odoo_series(proc.stdout.strip())


def is_copy(manifest: dict[str, Any], tenant: str) -> bool:
    """Whether the restored database is a copy of another one, to be given an identity of its
    own: an import not flagged "moved" (``identity: copy``), or a backup of another tenant.
    A tenant's own backup, or a "moved" import, keeps the identity it had."""
    identity = manifest.get("identity")
    if identity in ("copy", "moved"):
        return identity == "copy"
    return bool(tenant and manifest.get("tenant") and manifest["tenant"] != tenant)


def renew_identity(database: str) -> None:
    """What Odoo's own restore does for a copy (odoo/service/db.py restore_db, copy=True:
    ir.config_parameter's init(force=True)), for the database's identity: a new
    `database.uuid` (uuid1, as Odoo), `database.secret` (uuid4: the key behind signed links,
    session tokens and access tokens) and `database.create_date`; two databases must not
    look like one to Odoo's services, nor share the key. Runs on the scratch copy, after its
    checks, before the switch."""
    stamp = datetime.datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S")
    values = {
        "database.uuid": str(uuid.uuid1()),
        "database.secret": str(uuid.uuid4()),
        "database.create_date": stamp,
    }
    cases = " ".join(f"WHEN {literal(k)} THEN {literal(v)}" for k, v in values.items())
    keys = ", ".join(literal(k) for k in values)
    env = dict(os.environ, PGDATABASE=database)
    sql = (
        "DO $$ BEGIN IF to_regclass('ir_config_parameter') IS NOT NULL THEN "
        f"UPDATE ir_config_parameter SET value = CASE key {cases} END, "
        f"write_date = (now() AT TIME ZONE 'UTC') WHERE key IN ({keys}); END IF; END $$"
    )
    proc = subprocess.run(
        [fmt.PSQL, "--no-psqlrc", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-c", sql],
        capture_output=True, text=True, env=env, check=False,
    )  # fmt: skip
    if proc.returncode != 0:
        raise fmt.BackupError(f"giving the copy its own identity failed: {proc.stderr.strip()}")
    log("a copy: new database.uuid, database.secret and database.create_date")


def check_room(local: Path, root: Path) -> None:
    """Refuse a restore the filestore volume has no room for: the restored filestore is
    unpacked beside the live one (kept as the previous copy), plus a margin."""
    with zipfile.ZipFile(local) as zf:
        need = sum(i.file_size for i in zf.infolist() if i.filename.startswith("filestore/"))
    root.mkdir(parents=True, exist_ok=True)
    free = shutil.disk_usage(root).free
    if need + SPACE_MARGIN > free:
        raise fmt.BackupError(
            f"not enough room on the filestore volume: the restored filestore needs {need} "
            f"bytes (+{SPACE_MARGIN} spare) beside the live one and {free} are free; drop the "
            "previous copies sooner (--drop-previous, backup.keepPreviousHours) or grow the "
            "volume"
        )


def previous_pattern(database: str) -> re.Pattern[str]:
    """`<db>_p<stamp>`: the data a restore replaced (stamp `%Y%m%d%H%M%S`, UTC)."""
    return re.compile(re.escape(database[: MAX_IDENT - 16]) + r"_p(\d{14})")


def stamp_of(previous: str) -> datetime.datetime:
    """When the previous copy `<db>_p<stamp>` was replaced."""
    return datetime.datetime.strptime(previous[-14:], "%Y%m%d%H%M%S").replace(tzinfo=UTC)


def previous_size(previous: str, root: Path | None) -> int:
    """Bytes of a previous copy: its database and its filestore directory."""
    try:
        [[size]] = admin_sql(
            "SELECT coalesce((SELECT pg_database_size(oid) FROM pg_database "
            f"WHERE datname = {literal(previous)}), 0)"
        )
        total = int(size)
    except (fmt.BackupError, ValueError) as exc:
        log(f"could not measure the database {previous}: {exc}")
        total = 0
    if root is not None and (root / previous).is_dir():
        total += sum(p.stat().st_size for p in (root / previous).rglob("*") if p.is_file())
    return total


def prune_previous(
    database: str,
    root: Path | None,
    hours: float,
    now: datetime.datetime | None = None,
) -> list[str]:
    """Drop the previous copies (`<db>_p<stamp>`, databases and filestore directories) kept
    longer than `hours`; one a restore journal names (an unfinished switch) is left alone.
    Returns what was dropped."""
    now = now or datetime.datetime.now(UTC)
    pattern = previous_pattern(database)
    spared: set[str] = set()
    if root is not None and (root / JOURNAL).is_file():
        spared.add(str(json.loads((root / JOURNAL).read_text()).get("previous")))

    def expired(name: str) -> bool:
        match = pattern.fullmatch(name)
        if not match or name in spared:
            return False
        return stamp_of(name) + datetime.timedelta(hours=hours) <= now

    dropped = drop_copies(root, expired)
    for name in dropped:
        log(f"dropped {name}: the replaced data was kept {hours:g} hours")
    return dropped


def drop_copies(root: Path | None, wanted: Any) -> list[str]:
    """Drop the databases, and the directories of the filestore root, whose name `wanted`
    accepts; one that cannot be dropped (in use) is left, and said. Returns what went."""
    dropped: list[str] = []
    for [name] in admin_sql("SELECT datname FROM pg_database"):
        if wanted(name):
            try:
                drop_database(name)
            except fmt.BackupError as exc:
                log(f"left {name}: {exc}")
                continue
            dropped.append(name)
    if root is not None and root.is_dir():
        for path in root.iterdir():
            if path.is_dir() and wanted(path.name):
                shutil.rmtree(path, ignore_errors=True)
                dropped.append(str(path))
    return sorted(set(dropped))


def fresh_names(database: str, root: Path | None) -> tuple[str, str]:
    """`<db>_r<stamp>` and `<db>_p<stamp>`, neither a database nor a directory yet (two
    restores within a second must not collide with the previous data the first one kept)."""
    now = datetime.datetime.now(UTC).replace(microsecond=0)
    taken = {name for [name] in admin_sql("SELECT datname FROM pg_database")}
    if root is not None and root.is_dir():
        taken |= {path.name for path in root.iterdir()}
    while True:
        stamp = now.strftime("%Y%m%d%H%M%S")
        names = (f"{database[: MAX_IDENT - 16]}_r{stamp}", f"{database[: MAX_IDENT - 16]}_p{stamp}")
        if not taken.intersection(names):
            return names
        now += datetime.timedelta(seconds=1)


def client_sessions(database: str) -> list[str]:
    """The client sessions on `database`, each as "application from address, state".
    Only client backends count: an autovacuum worker is not a client, and PostgreSQL's own
    ALTER DATABASE RENAME stops it (CountOtherDBBackends in procarray.c sends it SIGTERM and
    waits), where counting it refused restores at random after writes."""
    lit = database.replace("'", "''")
    rows = admin_sql(
        "SELECT coalesce(nullif(application_name, ''), 'unnamed'), "
        "coalesce(host(client_addr), 'local socket'), coalesce(state, '') "
        f"FROM pg_stat_activity WHERE datname = '{lit}' AND backend_type = 'client backend' "
        "AND pid <> pg_backend_pid() ORDER BY backend_start"
    )
    return [f"{app} from {addr}, {state}" for app, addr, state in rows]


def other_backends(database: str) -> list[str]:
    """Every other session on `database`, of any kind, each as "<backend type> <application>
    from <address> (pid N)": what holds a rename PostgreSQL refuses after the clients left
    (a walsender of logical replication, a background worker of an extension)."""
    lit = database.replace("'", "''")
    rows = admin_sql(
        "SELECT coalesce(backend_type, 'hidden backend'), coalesce(nullif(application_name, "
        "''), 'unnamed'), coalesce(host(client_addr), 'no client address'), pid "
        f"FROM pg_stat_activity WHERE datname = '{lit}' AND pid <> pg_backend_pid() "
        "ORDER BY backend_start"
    )
    return [f"{kind} {app} from {addr} (pid {pid})" for kind, app, addr, pid in rows]


def switch_refused(database: str, exc: fmt.BackupError) -> str:
    """The message of a failed switch: PostgreSQL's own words and, when it refused because
    the database "is being accessed by other users" (clients were gone: something else is
    there), which sessions those are and what to do."""
    text = f"switching over failed, nothing changed: {exc}"
    refused = re.search(r'database "((?:[^"]|"")+)" is being accessed by other users', str(exc))
    if refused is None:
        return text
    held_db = refused.group(1).replace('""', '"')  # the live database or the restored copy
    try:
        held = other_backends(held_db)
    except fmt.BackupError:
        return text
    if not held:
        return text
    return (
        f"{text}; sessions on {held_db}: {'; '.join(held)}. PostgreSQL renames a database "
        "only when no other session is on it (it stops autovacuum workers itself): stop that "
        "replication or worker (or pg_terminate_backend the pid as the superuser), then restore "
        "again"
    )


def wait_for_clients_to_leave(database: str) -> list[str]:
    """The client sessions on `database` still there after `DRAIN_SECONDS` ([] at once when
    none): the backend of an Odoo pod that just stopped may outlive the pod by a moment."""
    deadline = time.monotonic() + DRAIN_SECONDS
    while True:
        sessions = client_sessions(database)
        if not sessions or time.monotonic() >= deadline:
            return sessions
        time.sleep(0.5)


def switch_over(database: str, scratch: str, previous: str, root: Path | None) -> None:
    """Restored copy in, live data kept under `previous`; undone if a step fails, and
    recoverable (`recover`) if the process dies at any point."""
    sessions = wait_for_clients_to_leave(database)
    if sessions:
        raise fmt.BackupError(
            f"database {database} has {len(sessions)} connection(s) "
            f"({'; '.join(sessions)}) still after {DRAIN_SECONDS}s: stop Odoo first"
        )
    entry = {
        "database": database,
        "scratch": scratch,
        "previous": previous,
        "had_database": database_exists(database),
        "had_dir": root is not None and (root / database).is_dir(),
    }
    renames = [f"ALTER DATABASE {quote_ident(scratch)} RENAME TO {quote_ident(database)}"]
    if entry["had_database"]:
        renames.insert(
            0, f"ALTER DATABASE {quote_ident(database)} RENAME TO {quote_ident(previous)}"
        )
    if root is None:
        # Nothing but the databases: the one transaction is the whole switch.
        try:
            admin_sql("BEGIN; " + "; ".join(renames) + "; COMMIT")
        except fmt.BackupError as exc:
            raise fmt.BackupError(switch_refused(database, exc)) from None
        log(f"switched over: {database} restored, previous data kept as {previous}")
        return
    write_journal(root, entry)
    try:
        if entry["had_dir"]:
            (root / database).rename(root / previous)
        (root / scratch).rename(root / database)
        fsync_dir(root)  # the renames are on disk before the databases commit to them
    except OSError as exc:
        undo_filestore_switch(root, entry)
        (root / JOURNAL).unlink()
        raise fmt.BackupError(f"switching the filestore failed, nothing changed: {exc}") from None
    try:
        # The commit point: both databases change names together or not at all.
        admin_sql("BEGIN; " + "; ".join(renames) + "; COMMIT")
    except fmt.BackupError as exc:
        # psql failed, but did the server commit? Ask; if even that fails, the journal stays
        # and `recover` decides later.
        if not committed(entry):
            undo_filestore_switch(root, entry)
            (root / JOURNAL).unlink()
            raise fmt.BackupError(switch_refused(database, exc)) from None
    try:
        (root / JOURNAL).unlink()
        fsync_dir(root)
    except OSError as exc:  # switched all the same; the next recover finds it finished
        log(f"could not remove the journal: {exc}")
    log(f"switched over: {database} restored, previous data kept as {previous}")


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_journal(root: Path, entry: dict[str, Any]) -> None:
    """Durably, before the first rename: a crash after it finds what to undo."""
    tmp = root / (JOURNAL + ".tmp")
    with tmp.open("w") as out:
        json.dump(entry, out)
        out.flush()
        os.fsync(out.fileno())
    tmp.rename(root / JOURNAL)
    fsync_dir(root)


def committed(entry: dict[str, Any]) -> bool:
    """Whether the databases' renaming transaction committed. `previous` is a fresh name only
    that transaction creates; without a live database before, the scratch database is gone
    and the live name exists (the scratch copy is never dropped while a journal exists)."""
    if entry["had_database"]:
        return database_exists(entry["previous"])
    return not database_exists(entry["scratch"]) and database_exists(entry["database"])


def undo_filestore_switch(root: Path, entry: dict[str, Any]) -> None:
    """The filestore directories back to their names before the switch (each step of the
    switch is a rename, so whatever the point reached, the names say what to rename back)."""
    live, scratch, previous = (root / entry[k] for k in ("database", "scratch", "previous"))
    if live.exists() and not scratch.exists():
        live.rename(scratch)  # the restored copy back to its scratch name
    if entry["had_dir"] and previous.exists() and not live.exists():
        previous.rename(live)
    fsync_dir(root)


def redo_filestore_switch(root: Path, entry: dict[str, Any]) -> None:
    """After a commit whose filestore renames did not reach the disk (a node crash): the
    filestore follows the databases."""
    live, scratch, previous = (root / entry[k] for k in ("database", "scratch", "previous"))
    if not scratch.exists():
        return  # both renames are there
    if live.exists() and not previous.exists():
        live.rename(previous)
    if not live.exists():
        scratch.rename(live)
    fsync_dir(root)


def recover(database: str, root: Path | None) -> dict[str, Any]:
    """Bring the data back to a consistent state after a restore was killed: finish or undo
    an interrupted switch (journal), then drop the scratch copies such a restore left."""
    report: dict[str, Any] = {}
    if root is not None and (root / JOURNAL).is_file():
        journal = root / JOURNAL
        entry = json.loads(journal.read_text())
        if entry.get("database") != database:
            raise fmt.BackupError(f"{journal} is about database {entry.get('database')!r}")
        if committed(entry):
            redo_filestore_switch(root, entry)
            report["recovered"] = (
                f"finished the interrupted restore, previous data: {entry['previous']}"
            )
        else:
            undo_filestore_switch(root, entry)
            report["recovered"] = "rolled back an interrupted restore, the live data is as before"
        journal.unlink()
        fsync_dir(root)
        log(report["recovered"])
    if root is not None:
        (root / (JOURNAL + ".tmp")).unlink(missing_ok=True)
    leftovers = drop_scratch_copies(database, root)
    if leftovers:
        report["dropped_scratch"] = leftovers
    return report


def drop_scratch_copies(database: str, root: Path | None) -> list[str]:
    """Scratch databases and filestore directories (`<db>_r<stamp>`) of restores that died
    before switching over. One still in use (a verification running now) is left alone."""
    pattern = re.compile(re.escape(database[: MAX_IDENT - 16]) + r"_r\d{14}")
    dropped = drop_copies(root, pattern.fullmatch)
    for name in dropped:
        log(f"dropped {name}, left by an interrupted restore")
    return sorted(set(dropped))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    fmt.add_storage_arguments(parser)
    parser.add_argument("--backup", help="zip name in the storage (default: the newest)")
    parser.add_argument("--zip", type=Path, help="a local zip instead of the storage")
    parser.add_argument(
        "--source-tenant",
        default="",
        help="read the backup from this tenant's folder (a staging copy of it: only read, "
        "the restored database gets an identity of its own)",
    )
    parser.add_argument(
        "--as-copy",
        action="store_true",
        help="give the restored database an identity of its own whatever the manifest says "
        "(a staging copy whose backup was carried into this tenant's own storage)",
    )
    parser.add_argument("--filestore", type=Path, help="Odoo's filestore root (data_dir/filestore)")
    parser.add_argument("--work", type=Path, default=Path(os.environ.get("TMPDIR", "/tmp")))
    parser.add_argument(
        "--verify-only", dest="mode", action="store_const", const="verify", default="restore"
    )
    parser.add_argument(
        "--recover",
        dest="mode",
        action="store_const",
        const="recover",
        help="only recover from an interrupted restore (finish or undo its switch-over)",
    )
    parser.add_argument(
        "--check-only",
        dest="mode",
        action="store_const",
        const="check",
        help="only check the backup's zip against its manifest (no database)",
    )
    parser.add_argument(
        "--list",
        dest="mode",
        action="store_const",
        const="list",
        help="only list the complete backups in the storage (no zip read, no database)",
    )
    parser.add_argument(
        "--serve",
        dest="mode",
        action="store_const",
        const="serve",
        help="only serve --backup once over HTTP on --port (token: SAASODOO_SERVE_TOKEN_SHA256)",
    )
    parser.add_argument(
        "--fetch",
        metavar="ADDRESS",
        help="only fetch --backup from the reader pod at ADDRESS (host:port, token: "
        "SAASODOO_FETCH_TOKEN) into this tenant's storage",
    )
    parser.add_argument("--port", type=int, default=8070, help="--serve's port (0: any free one)")
    parser.add_argument("--bind", default="0.0.0.0", help="--serve's address (a pod's: all)")
    parser.add_argument(
        "--prune-previous",
        dest="mode",
        action="store_const",
        const="prune-previous",
        help="only drop the previous copies kept longer than --keep-previous-hours",
    )
    parser.add_argument("--drop-previous", action="store_true")
    parser.add_argument(
        "--keep-previous-hours",
        type=float,
        default=KEEP_PREVIOUS_HOURS,
        help="hours the replaced data (<db>_p<stamp>) is kept (0: dropped at once)",
    )
    args = parser.parse_args(argv)
    if args.fetch:
        args.mode = "fetch"
    if (
        args.mode not in ("recover", "prune-previous")
        and not args.zip
        and not args.dest
        and not args.s3
    ):
        log("ERROR: give --zip, --dest or --s3")
        return 2
    try:
        report = restore(args)
    except (fmt.BackupError, OSError) as exc:
        report = {"ok": False, "error": str(exc), "mode": args.mode}
    if args.mode == "prune-previous":
        if not report.get("ok"):  # the backup that follows matters more: it goes on
            log(f"ERROR: pruning the previous copies failed: {report.get('error')}")
        print("PRUNED " + json.dumps(report, sort_keys=True), flush=True)
        return 0
    if not report.get("ok"):
        log(f"ERROR: {report.get('error')}; the live data is untouched")
    print("RESULT " + json.dumps(report, sort_keys=True), flush=True)
    if report.get("corrupt") or report.get("refused"):
        return 3
    return 0 if report.get("ok") else 1


if __name__ == "__main__":
    sys.exit(main())
