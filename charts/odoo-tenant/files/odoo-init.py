#!/usr/bin/env python3
"""Start-up step of the Odoo pods (init container `odoo-init` of the odoo-tenant chart).

Runs in the official Odoo image (python3 and psycopg2 are there), as the odoo user.

1. Always: writes the final odoo.conf (mode 0600, into an emptyDir) from the ConfigMap's file
   plus the secrets read from the environment, which Kubernetes fills from Secrets:
   db_password (PGPASSWORD), admin_passwd (ODOO_MASTER_PASSWORD), smtp_password
   (ODOO_SMTP_PASSWORD). No secret is ever stored in a ConfigMap or passed on a command line.
2. --initialize (web pods): waits for the database server, takes a PostgreSQL advisory lock so
   that concurrent pods initialize one at a time, and unless the database carries the marker
   parameter `saasodoo.admin_initialized`:
     - installs base if needed: `odoo -i base --stop-after-init` (+ demo/language flags);
     - sets the admin user's login, e-mail and password (ODOO_ADMIN_EMAIL, ODOO_ADMIN_PASSWORD),
       `web.base.url`, `report.url` and the marker, in one transaction (`odoo shell`).
   A database with the marker is left alone, so the step is idempotent and cheap on restarts.
   A database restored from elsewhere without the marker gets its admin credentials reset from
   the Secret: restores must set the marker to keep theirs.
   On every start it also pins `report.url` (ODOO_REPORT_URL, one SQL statement when it
   differs): the address wkhtmltopdf fetches a PDF report's pages and assets from. The chart
   makes that name resolve to the pod itself (hostAliases), so a database initialized before,
   restored from another tenant or imported carries no address that this pod cannot reach.
   --wait (dedicated cron pod): waits until the database carries the marker.

The database connection comes from the libpq environment (PGHOST, PGPORT, PGDATABASE, PGUSER,
PGPASSWORD, PGSSLMODE).
"""

from __future__ import annotations

import argparse
import configparser
import os
import subprocess
import sys
import time
from pathlib import Path

MARKER = "saasodoo.admin_initialized"
LOCK_KEY = 0x6F646F6F  # "odoo": advisory lock serializing initializations of a database
OK = "SAASODOO-ADMIN-OK"

ADMIN_SCRIPT = f"""
import datetime, os
values = {{
    "login": os.environ["ODOO_ADMIN_EMAIL"],
    "email": os.environ["ODOO_ADMIN_EMAIL"],
    "password": os.environ["ODOO_ADMIN_PASSWORD"],
}}
if os.environ.get("ODOO_LANGUAGE"):
    values["lang"] = os.environ["ODOO_LANGUAGE"]
env.ref("base.user_admin").write(values)
params = env["ir.config_parameter"].sudo()
for key, var in (("web.base.url", "ODOO_BASE_URL"), ("report.url", "ODOO_REPORT_URL")):
    if os.environ.get(var):
        params.set_param(key, os.environ[var])
now = datetime.datetime.now(datetime.timezone.utc)
params.set_param("{MARKER}", now.strftime("%Y-%m-%dT%H:%M:%SZ"))
env.cr.commit()
print("{OK}")
"""


def log(message: str) -> None:
    print(f"[odoo-init] {message}", flush=True)


class InitError(Exception):
    """A failure the operator must fix; the message says how."""


def check_secret(option: str, value: str) -> None:
    if not value:
        raise InitError(f"{option}: the Secret value is empty")
    if value != value.strip() or "\n" in value or "\r" in value:
        raise InitError(
            f"{option}: the Secret value has leading/trailing whitespace or a newline, which "
            "odoo.conf cannot hold; recreate the Secret without it (e.g. printf, not echo)"
        )


def check_options(text: str, appended: list[str]) -> None:
    """Odoo reads odoo.conf with a strict config parser: a key given twice stops it at start-up.
    Refuse such a template here, naming the key, and one that holds an appended secret."""
    parser = configparser.RawConfigParser(strict=True, comment_prefixes=(";", "#"))
    try:
        parser.read_string(text)
    except configparser.DuplicateOptionError as exc:
        raise InitError(f"odoo.conf sets {exc.option} twice (line {exc.lineno})") from None
    except configparser.Error as exc:
        raise InitError(f"odoo.conf is not readable: {exc}") from None
    for option in appended:
        if parser.has_option("options", option):
            raise InitError(f"odoo.conf sets {option}, which comes from a Secret")


def write_config(template: Path, target: Path, secrets: dict[str, str | None]) -> None:
    """Write template + `option = secret` lines to target, readable by its owner only."""
    text = template.read_text()
    check_options(text, [k for k, v in secrets.items() if v is not None])
    lines = [text.rstrip("\n"), "; secrets, appended by odoo-init from Secrets"]
    for option, value in secrets.items():
        if value is None:
            continue
        check_secret(option, value)
        lines.append(f"{option} = {value}")
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(target.name + ".partial")
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write("\n".join(lines) + "\n")
    os.replace(partial, target)
    filled = ", ".join(k for k, v in secrets.items() if v is not None)
    log(f"wrote {target} ({filled} from Secrets)")


def connect(dbname: str):  # type: ignore[no-untyped-def]
    import psycopg2  # in the Odoo image; imported here so write_config runs anywhere

    return psycopg2.connect(dbname=dbname, connect_timeout=5, application_name="odoo-init")


def wait_for_server(database: str, timeout: float) -> str:
    """Wait until the server accepts us; return the database to lock in (ours if it exists)."""
    import psycopg2

    deadline = time.monotonic() + timeout
    last = ""
    while True:
        try:
            connect(database).close()
            return database
        except psycopg2.OperationalError as exc:
            last = str(exc).strip()
            if "does not exist" in last:
                log(f"database {database} does not exist yet: Odoo will create it")
                connect("postgres").close()
                return "postgres"
        if time.monotonic() > deadline:
            raise InitError(f"database server not reachable after {timeout:.0f}s: {last}")
        log(f"waiting for the database server: {last.splitlines()[0] if last else '?'}")
        time.sleep(3)


def database_state(database: str) -> tuple[bool, bool]:
    """(base installed, marker set) of the database; (False, False) if it does not exist."""
    import psycopg2

    try:
        conn = connect(database)
    except psycopg2.OperationalError as exc:
        if "does not exist" in str(exc):
            return False, False
        raise
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT to_regclass('public.ir_module_module') IS NOT NULL")
            if not cur.fetchone()[0]:
                return False, False
            cur.execute("SELECT state FROM ir_module_module WHERE name = 'base'")
            row = cur.fetchone()
            base = bool(row and row[0] == "installed")
            cur.execute("SELECT to_regclass('public.ir_config_parameter') IS NOT NULL")
            if not cur.fetchone()[0]:
                return base, False
            cur.execute("SELECT 1 FROM ir_config_parameter WHERE key = %s", (MARKER,))
            return base, cur.fetchone() is not None
    finally:
        conn.close()


def pin_report_url(database: str, url: str) -> None:
    """Set the parameter `report.url` of an initialized database to URL unless it is already.
    Odoo's ir_config_parameter has a unique key (constraint key_uniq); Odoo caches parameters
    per process, and this runs before the pod's Odoo starts."""
    conn = connect(database)
    try:
        with conn, conn.cursor() as cur:
            cur.execute("SELECT value FROM ir_config_parameter WHERE key = 'report.url'")
            row = cur.fetchone()
            if row and row[0] == url:
                return
            cur.execute(
                "INSERT INTO ir_config_parameter"
                " (key, value, create_uid, write_uid, create_date, write_date)"
                " VALUES ('report.url', %s, 1, 1,"
                " now() at time zone 'UTC', now() at time zone 'UTC')"
                " ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value,"
                " write_date = EXCLUDED.write_date"
                " WHERE ir_config_parameter.value IS DISTINCT FROM EXCLUDED.value",
                (url,),
            )
            log(f"report.url set to {url} (was {row[0] if row else 'unset'})")
    finally:
        conn.close()


def run_odoo(args: list[str], stdin: str | None = None) -> str:
    command = [os.environ.get("ODOO_BIN", "odoo"), *args]
    log("running: " + " ".join(command))
    proc = subprocess.run(command, input=stdin, stdout=subprocess.PIPE, text=True, check=False)
    sys.stdout.write(proc.stdout)
    if proc.returncode != 0:
        raise InitError(f"{' '.join(command[:3])} … exited with {proc.returncode}")
    return proc.stdout


def initialize(conf: Path, database: str, flags: list[str], timeout: float) -> None:
    lock_db = wait_for_server(database, timeout)
    lock = connect(lock_db)
    lock.autocommit = True
    try:
        with lock.cursor() as cur:
            log(f"taking the initialization lock of {database}")
            cur.execute("SELECT pg_advisory_lock(%s)", (LOCK_KEY,))
        base, marker = database_state(database)
        if base and marker:
            log(f"database {database} is initialized: nothing to do")
            if os.environ.get("ODOO_REPORT_URL"):
                pin_report_url(database, os.environ["ODOO_REPORT_URL"])
            return
        common = ["-c", str(conf), "-d", database, "--no-http", "--workers=0"]
        if not base:
            log(f"initializing database {database} (base module); this takes a few minutes")
            run_odoo([*common, "--max-cron-threads=0", "-i", "base", "--stop-after-init", *flags])
        log("setting the admin user's login, e-mail and password")
        out = run_odoo(["shell", *common], stdin=ADMIN_SCRIPT)
        if OK not in out:
            raise InitError("odoo shell did not confirm the admin user's update")
        log(f"database {database} initialized")
    finally:
        lock.close()  # releases the advisory lock


def wait_initialized(database: str, timeout: float) -> None:
    wait_for_server(database, timeout)
    deadline = time.monotonic() + timeout
    while True:
        base, marker = database_state(database)
        if base and marker:
            log(f"database {database} is initialized")
            return
        if time.monotonic() > deadline:
            raise InitError(f"database {database} not initialized after {timeout:.0f}s")
        log(f"waiting for the web pod to initialize database {database}")
        time.sleep(5)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--template", type=Path, required=True, help="odoo.conf from the ConfigMap")
    parser.add_argument("--config", type=Path, required=True, help="final odoo.conf to write")
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--initialize", action="store_true", help="initialize a new database")
    mode.add_argument("--wait", action="store_true", help="wait until the database is initialized")
    parser.add_argument("--timeout", type=float, default=300, help="seconds to wait for the server")
    parser.add_argument("--init-flag", action="append", default=[], help="extra flag for -i base")
    args = parser.parse_args(argv)
    try:
        write_config(
            args.template,
            args.config,
            {
                "db_password": os.environ.get("PGPASSWORD"),
                "admin_passwd": os.environ.get("ODOO_MASTER_PASSWORD"),
                "smtp_password": os.environ.get("ODOO_SMTP_PASSWORD"),
            },
        )
        database = os.environ.get("PGDATABASE", "")
        if (args.initialize or args.wait) and not database:
            raise InitError("PGDATABASE is not set")
        if args.initialize:
            for var in ("ODOO_ADMIN_EMAIL", "ODOO_ADMIN_PASSWORD"):
                if not os.environ.get(var):
                    raise InitError(f"{var} is not set")
            initialize(args.config, database, args.init_flag, args.timeout)
        elif args.wait:
            wait_initialized(database, args.timeout)
    except InitError as exc:
        log(f"ERROR: {exc}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
