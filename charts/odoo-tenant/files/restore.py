#!/usr/bin/env python3
"""Restore (or verify) one Odoo tenant's backup; never destroys live data before the copy is good.

Runs in the official Odoo image beside backup.py (whose format and storage it imports), as the
odoo user, standard library + psql only; also runs as it is on a developer's machine (the tests).

1. Fetch the zip (`--backup NAME`, default the newest complete one; or `--zip PATH`) and check
   every SHA-256 of its manifest. A mismatch stops here: nothing was touched.
2. Create a fresh database `<db>_r<stamp>` (through the admin connection PGADMINUSER/
   PGADMINPASSWORD when given, e.g. the chart PostgreSQL's superuser, owned by PGUSER; else as
   PGUSER, which then needs CREATEDB) and load `dump.sql` into it as PGUSER, in one transaction.
   Unpack the filestore into `<filestore root>/<db>_r<stamp>` (same volume: the switch is a
   rename).
3. Check the copy: every table's row count and row checksum equal the manifest's, every
   filestore file's checksum too.
4. `--verify-only` (the filestore is unpacked into the work directory instead, so the live
   filestore is not written to): report, drop the scratch database and files, done.
   Otherwise switch over: the live database must have no connection (Odoo scaled to zero);
   the live database and filestore are renamed to `<db>_p<stamp>` (kept: `--drop-previous`
   drops them), the restored ones take their names. A failure in between renames back.

The last line printed is `RESULT {json}`: what happened, for the orchestrator and people alike.
Exit codes: 0 done, 1 failed (live data untouched), 2 bad usage, 3 corrupt backup (refused).
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import IO, Any

sys.dont_write_bytecode = True  # no __pycache__ beside the scripts (read-only in the pod)
sys.path.insert(0, str(Path(__file__).resolve().parent))
import backup as fmt  # noqa: E402  (the sibling script, mounted beside this one)

MAX_IDENT = 63


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


def create_database(name: str, owner: str) -> None:
    owner_clause = f" OWNER {quote_ident(owner)}" if os.environ.get("PGADMINUSER") else ""
    admin_sql(
        f"CREATE DATABASE {quote_ident(name)}{owner_clause} TEMPLATE template0 "
        "ENCODING 'UTF8' LC_COLLATE 'C' LC_CTYPE 'C'"
    )


class DumpFilter:
    """Feeds dump.sql to psql, leaving out the statements a database owner may not run on a
    fresh database (`COMMENT ON EXTENSION`: the extensions belong to the superuser)."""

    SKIP = (b"COMMENT ON EXTENSION ",)

    def __init__(self, out: IO[bytes]) -> None:
        self.out = out
        self.in_copy = False
        self.pending = b""

    def feed(self, data: bytes) -> None:
        lines = (self.pending + data).split(b"\n")
        self.pending = lines.pop()
        self.out.write(b"".join(self._line(line) for line in lines))

    def close(self) -> None:
        if self.pending:
            self.out.write(self._line(self.pending))

    def _line(self, line: bytes) -> bytes:
        if self.in_copy:
            self.in_copy = line != b"\\."
            return line + b"\n"
        if fmt.COPY_RE.match(line):
            self.in_copy = True
        elif line.startswith(self.SKIP):
            return b"-- (skipped by restore) " + line + b"\n"
        return line + b"\n"


def load_dump(zf: zipfile.ZipFile, database: str) -> None:
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
            for block in iter(lambda: dump.read(fmt.CHUNK), b""):
                filt.feed(block)
            filt.close()
            psql.stdin.close()
        except BrokenPipeError:
            pass
        errors = psql.stderr.read().decode(errors="replace").strip()
    if psql.returncode != 0:
        raise fmt.BackupError(f"loading dump.sql failed: {errors[-500:]}")


def table_sums(database: str, tables: list[str]) -> dict[str, dict[str, Any]]:
    """Row count and row checksum of each table, as backup.py computes them from the dump."""
    env = dict(os.environ, PGDATABASE=database)
    out: dict[str, dict[str, Any]] = {}
    for table in tables:
        rows = fmt.RowSum()
        with subprocess.Popen(
            [fmt.PSQL, "--no-psqlrc", "-X", "-v", "ON_ERROR_STOP=1", "-c",
             f"COPY {table} TO STDOUT"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env,
        ) as psql:  # fmt: skip
            assert psql.stdout is not None and psql.stderr is not None
            for line in psql.stdout:
                rows.add(line.rstrip(b"\n"))
            errors = psql.stderr.read().decode(errors="replace").strip()
        if psql.returncode != 0:
            raise fmt.BackupError(f"reading {table} failed: {errors}")
        out[table] = {"rows": rows.rows, "sha256sum": rows.hexdigest()}
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
            shutil.copyfileobj(src, out, fmt.CHUNK)


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
    store = fmt.open_store(args, args.tenant)
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


def restore(args: argparse.Namespace) -> dict[str, Any]:
    database = os.environ.get("PGDATABASE") or ""
    user = os.environ.get("PGUSER") or ""
    if not database:
        raise fmt.BackupError("PGDATABASE is not set")
    work = args.work
    work.mkdir(parents=True, exist_ok=True)
    name, local, downloaded = fetch(args, work)
    try:
        return restore_zip(args, name, local, database, user, work)
    finally:
        if downloaded:
            local.unlink(missing_ok=True)


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
    stamp = datetime.datetime.now(datetime.UTC).strftime("%Y%m%d%H%M%S")
    scratch = f"{database[: MAX_IDENT - 16]}_r{stamp}"
    previous = f"{database[: MAX_IDENT - 16]}_p{stamp}"
    root: Path | None = args.filestore
    # Verification unpacks into the work directory: the live filestore is not even written to.
    scratch_dir = (work if args.mode == "verify" else root) / scratch if root else None
    switched = False
    try:
        create_database(scratch, user)
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
        switch_over(database, scratch, previous, root)
        switched = True
        report.update(ok=True, previous_database=previous)
        if root is not None:
            report["previous_filestore"] = str(root / previous)
        if args.drop_previous:
            drop_database(previous)
            if root is not None:
                shutil.rmtree(root / previous, ignore_errors=True)
            report["previous_dropped"] = True
        return report
    finally:
        if not switched:
            drop_database(scratch)
            if scratch_dir is not None:
                shutil.rmtree(scratch_dir, ignore_errors=True)


def switch_over(database: str, scratch: str, previous: str, root: Path | None) -> None:
    """Restored copy in, live data kept under `previous`; undone if a step fails."""
    lit = database.replace("'", "''")
    [[busy]] = admin_sql(f"SELECT count(*) FROM pg_stat_activity WHERE datname = '{lit}'")
    if busy != "0":
        raise fmt.BackupError(f"database {database} has {busy} connection(s): stop Odoo first")
    live = database_exists(database)
    if live:
        admin_sql(f"ALTER DATABASE {quote_ident(database)} RENAME TO {quote_ident(previous)}")
    try:
        admin_sql(f"ALTER DATABASE {quote_ident(scratch)} RENAME TO {quote_ident(database)}")
    except fmt.BackupError:
        if live:
            admin_sql(f"ALTER DATABASE {quote_ident(previous)} RENAME TO {quote_ident(database)}")
        raise
    if root is None:
        return
    try:
        if (root / database).exists():
            (root / database).rename(root / previous)
        (root / scratch).rename(root / database)
    except OSError as exc:
        # Put the database back as it was, the restored copy under its scratch name.
        if (root / previous).exists() and not (root / database).exists():
            (root / previous).rename(root / database)
        admin_sql(f"ALTER DATABASE {quote_ident(database)} RENAME TO {quote_ident(scratch)}")
        if live:
            admin_sql(f"ALTER DATABASE {quote_ident(previous)} RENAME TO {quote_ident(database)}")
        raise fmt.BackupError(f"switching the filestore failed: {exc}") from None
    log(f"switched over: {database} restored, previous data kept as {previous}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    fmt.add_storage_arguments(parser)
    parser.add_argument("--backup", help="zip name in the storage (default: the newest)")
    parser.add_argument("--zip", type=Path, help="a local zip instead of the storage")
    parser.add_argument("--filestore", type=Path, help="Odoo's filestore root (data_dir/filestore)")
    parser.add_argument("--work", type=Path, default=Path(os.environ.get("TMPDIR", "/tmp")))
    parser.add_argument(
        "--verify-only", dest="mode", action="store_const", const="verify", default="restore"
    )
    parser.add_argument("--drop-previous", action="store_true")
    args = parser.parse_args(argv)
    if not args.zip and not args.dest and not args.s3:
        log("ERROR: give --zip, --dest or --s3")
        return 2
    try:
        report = restore(args)
    except (fmt.BackupError, OSError) as exc:
        report = {"ok": False, "error": str(exc), "mode": args.mode}
    if not report.get("ok"):
        log(f"ERROR: {report.get('error')}; the live data is untouched")
    print("RESULT " + json.dumps(report, sort_keys=True), flush=True)
    if report.get("corrupt"):
        return 3
    return 0 if report.get("ok") else 1


if __name__ == "__main__":
    sys.exit(main())
