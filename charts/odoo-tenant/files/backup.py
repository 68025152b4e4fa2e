#!/usr/bin/env python3
"""Backup of one Odoo tenant (CronJob `backup` of the odoo-tenant chart).

Runs in the official Odoo image (pg_dump, python3 and psycopg2 are there), as the odoo user.
Writes `<dest>/<database>_<UTC timestamp>.zip` in the layout of Odoo's database manager:
`dump.sql` (plain `pg_dump --no-owner`), `filestore/` and `manifest.json`, so the zip can be
restored by Odoo itself. The zip is written as `.partial` and renamed once complete, so a
failed run leaves no half backup; then only the newest `--keep` zips are kept.

This is a local copy on the backup volume; off-site storage, verification and restore belong
to the backups feature. The database connection comes from the libpq environment (PGHOST,
PGPORT, PGDATABASE, PGUSER, PGPASSWORD, PGSSLMODE).
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

PG_DUMP = os.environ.get("PG_DUMP", "pg_dump")


def log(message: str) -> None:
    print(f"[backup] {message}", flush=True)


def installed_modules(database: str) -> tuple[dict[str, str], str]:
    """Installed modules with their versions, and the server version, as Odoo's manifest has."""
    import psycopg2

    conn = psycopg2.connect(dbname=database, connect_timeout=10, application_name="backup")
    try:
        with conn.cursor() as cur:
            cur.execute(
                "SELECT name, latest_version FROM ir_module_module WHERE state = 'installed'"
            )
            modules = {name: version or "" for name, version in cur.fetchall()}
        version = conn.server_version
        return modules, f"{version // 10000}.{version % 10000}"
    finally:
        conn.close()


def odoo_version() -> str:
    return os.environ.get("ODOO_VERSION", "")


def manifest(database: str, modules: dict[str, str], pg_version: str) -> dict[str, object]:
    version = odoo_version()
    return {
        "odoo_dump": "1",
        "db_name": database,
        "version": version,
        "major_version": version,
        "pg_version": pg_version,
        "modules": modules,
        "created_by": "odoo-tenant chart backup",
    }


def write_zip(target: Path, database: str, filestore: Path | None) -> int:
    """Write the backup zip; return the number of filestore files in it."""
    modules, pg_version = installed_modules(database)
    files = 0
    with zipfile.ZipFile(target, "w", compression=zipfile.ZIP_DEFLATED, allowZip64=True) as zf:
        zf.writestr("manifest.json", json.dumps(manifest(database, modules, pg_version), indent=4))
        with (
            subprocess.Popen([PG_DUMP, "--no-owner", database], stdout=subprocess.PIPE) as dump,
            zf.open("dump.sql", "w", force_zip64=True) as out,
        ):
            assert dump.stdout is not None
            shutil.copyfileobj(dump.stdout, out, 1 << 20)
        if dump.returncode != 0:
            raise RuntimeError(f"pg_dump exited with {dump.returncode}")
        if filestore is not None and filestore.is_dir():
            for path in sorted(filestore.rglob("*")):
                if path.is_file():
                    zf.write(path, "filestore/" + path.relative_to(filestore).as_posix())
                    files += 1
    return files


def prune(dest: Path, database: str, keep: int) -> list[Path]:
    """Delete all but the newest `keep` complete backups of the database; return the deleted."""
    backups = sorted(dest.glob(f"{database}_*.zip"))
    doomed = backups[:-keep] if keep > 0 else []
    for path in doomed:
        path.unlink()
    return doomed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dest", type=Path, required=True, help="directory of the backups")
    parser.add_argument("--filestore", type=Path, help="Odoo's filestore root (data_dir/filestore)")
    parser.add_argument("--keep", type=int, default=7, help="number of backups to keep")
    args = parser.parse_args(argv)
    database = os.environ.get("PGDATABASE")
    if not database:
        log("ERROR: PGDATABASE is not set")
        return 1
    args.dest.mkdir(parents=True, exist_ok=True)
    for stale in args.dest.glob("*.partial"):
        log(f"removing {stale.name}, left by an interrupted run")
        stale.unlink()
    stamp = datetime.datetime.now(datetime.UTC).strftime("%Y%m%dT%H%M%SZ")
    target = args.dest / f"{database}_{stamp}.zip"
    partial = target.with_name(target.name + ".partial")
    filestore = args.filestore / database if args.filestore else None
    try:
        files = write_zip(partial, database, filestore)
    except Exception as exc:
        partial.unlink(missing_ok=True)
        log(f"ERROR: backup of {database} failed: {exc}")
        return 1
    partial.rename(target)
    log(f"wrote {target} ({target.stat().st_size} bytes, {files} filestore files)")
    for path in prune(args.dest, database, args.keep):
        log(f"deleted old backup {path.name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
