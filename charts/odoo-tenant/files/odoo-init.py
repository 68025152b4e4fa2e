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
     - personalizes the database in one transaction (`odoo shell`, ADMIN_SCRIPT: Odoo's own
       calls): the admin user's login (ODOO_ADMIN_LOGIN, default ODOO_ADMIN_EMAIL), e-mail and
       password (ODOO_ADMIN_EMAIL, ODOO_ADMIN_PASSWORD); when set, the language (ODOO_LANGUAGE:
       activated with its terms, on the admin, the company and the partner default), the
       company's name (ODOO_COMPANY_NAME), country and currency (ODOO_COUNTRY), the admin's
       time zone (ODOO_TIMEZONE); `web.base.url`, `report.url` and the marker. A database
       restored from a template (base installed, no marker, `saasodoo.template`) is
       personalized the same way, without `-i base`; one still carrying the template's
       identity first gets a new `database.uuid`/`database.secret` (ir.config_parameter
       init(force=True)). Any other database without the marker (restored, imported) gets
       its admin's credentials and URLs only: it keeps its language, company and zones.
   With --from-template KEY (a new tenant made from a template: saasodoo's restore Job
   loads it beside), a database without base installed is first waited for
   (wait_for_template: up to --template-wait seconds, holding no connection to it, for the
   restore's switch-over) instead of running `-i base`; past that, `-i base` as without.
   Meanwhile Odoo's shell is started without a database (PreparedShell): its start-up (about
   1.5 s of imports) runs during the wait, and it personalizes once the restore is in place.
   A database with the marker is left alone, so the step is idempotent and cheap on restarts.
   A database restored from elsewhere without the marker gets its admin credentials reset from
   the Secret: restores must set the marker to keep theirs.
   On every start it also pins `report.url` (ODOO_REPORT_URL, one SQL statement when it
   differs): the address wkhtmltopdf fetches a PDF report's pages and assets from. The chart
   makes that name resolve to the pod itself (hostAliases), so a database initialized before,
   restored from another tenant or imported carries no address that this pod cannot reach.
   --wait (dedicated cron pod): waits until the database carries the marker.
3. --neutralize (a staging copy, after its restore and before any Odoo starts on it; the
   operator runs it in a Job made from the web pod's template): under the same advisory lock,
   runs Odoo's own `odoo neutralize -d <db>` (every installed module's data/neutralize.sql:
   outgoing mail servers off plus a dummy one, so Odoo cannot fall back to odoo.conf's
   smtp_server; crons off but the autovacuum; `database.is_neutralized`; webhooks off; the
   web banner; payment and delivery providers in test mode and fetchmail off where those
   modules are installed), checks the result, then gives the copy its own admin (login and
   e-mail ODOO_ADMIN_EMAIL, password ODOO_ADMIN_PASSWORD, from the copy's Secret) and
   `web.base.url` (ODOO_BASE_URL), and records `saasodoo.neutralized` = the database's
   `database.uuid` (a copy of a copy has a new uuid, so it is neutralized again).
   Idempotent: a database already in that state is only read (no Odoo command). The last line
   is `RESULT {json}` (what was done); exit 1 when the database is not neutralized after it
   (the copy must not start).
   --copy (the chart passes it when `tenant.copyOf` is set): the web pod's --initialize then
   neutralizes the database the same way unless it was as this copy (the marker), so no Odoo
   ever starts on a copy's database that was not (a restore, a refresh, a hand restore); the
   cron pod's --wait also waits for that marker before its Odoo runs any cron.

4. --build-template KEY (a template job, in the web pod's image and configuration): makes the
   empty database PGDATABASE a template: `odoo -i base` (+ --init-flag), then the parameters
   `saasodoo.template` = KEY and `saasodoo.template_uuid` = its database.uuid and a random
   admin password, no marker. backup.py then stores it (`--tenant templates/KEY`). A database
   already built as KEY is left alone; one with other Odoo data is refused. `RESULT {json}`.
   With the superuser PGADMINUSER/PGADMINPASSWORD (saasodoo's template build Job gives it),
   the build runs as a role of its own named as PGDATABASE (a random password, also written
   to SAASODOO_BUILD_PGPASSFILE for the pod's next containers), and a PGDATABASE that does
   not exist is created empty, owned by that role, without PUBLIC access: the tenant's role
   cannot reach a template while it is built.
   --drop-template: drops that database (a template only, never a tenant's), its filestore
   and (with PGADMINUSER) the build's role, once backup.py stored it.

5. --update (the operator's update Job, made from the web pod's template of the revision staged
   with Odoo at zero replicas: the new image, odoo.conf and this file): under the same advisory
   lock, `odoo -u <every installed module> --stop-after-init` (the modules by name, not `all`:
   naming them goes through Odoo's button_upgrade, which also installs a dependency the new code
   added; docs/updates.md). A database without base installed is left alone; one with a module
   `to install`, `to upgrade` or `to remove` (an Odoo killed during -u) is refused. After a
   failed -u no module is left `to ...` (Odoo resets the states when it caught the error; this
   resets them when it could not); the data -u committed stays: the operator restores its
   pre-update backup. SIGTERM (the Job's pod deleted or evicted) is passed on to Odoo, which
   stops at once and fails the update. `-u` holds backup.py's tenant data lock too (a
   scheduled backup waits for it instead of dumping a half-updated database). Checked
   afterwards: no module left `to ...`, base's version of the image's series. `RESULT {json}`
   last: ok, updated (modules named), changed ({module: [before, after]}), or error; exit 1 on
   failure.

The database connection comes from the libpq environment (PGHOST, PGPORT, PGDATABASE, PGUSER,
PGPASSWORD, PGSSLMODE).
"""

from __future__ import annotations

import argparse
import configparser
import contextlib
import json
import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import time
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

MARKER = "saasodoo.admin_initialized"
LOCK_KEY = 0x6F646F6F  # "odoo": advisory lock serializing initializations of a database
OK = "SAASODOO-ADMIN-OK"

#: Parameters a template database carries (odoo-init.py --build-template): the template's key
#: and the database.uuid it was built with, so a database restored from it without a new
#: identity is given one before anything else (Odoo's own copy step).
TEMPLATE_KEY = "saasodoo.template"
TEMPLATE_UUID = "saasodoo.template_uuid"

#: The new database's personalization, in Odoo's own calls (odoo/service/db.py
#: `_initialize_db`, which Odoo's database manager runs for a new database, and
#: base.language.install's `lang_install` / res.lang's `install_lang` for the language). Every
#: setting but the admin's credentials is optional: ODOO_ADMIN_LOGIN (default ODOO_ADMIN_EMAIL),
#: ODOO_LANGUAGE, ODOO_COMPANY_NAME, ODOO_COUNTRY, ODOO_TIMEZONE, ODOO_BASE_URL,
#: ODOO_REPORT_URL. Prints OK and a JSON summary of what it set.
ADMIN_SCRIPT = f"""
import datetime, json, os
from pytz import country_timezones
get = os.environ.get
done = []
params = env["ir.config_parameter"].sudo()
template_uuid = params.get_param("{TEMPLATE_UUID}")
if template_uuid and params.get_param("database.uuid") == template_uuid:
    # Restored from a template without a new identity: what Odoo's restore does for a copy.
    params.init(force=True)
    done.append("identity")
company = env.ref("base.main_company")
admin = env.ref("base.user_admin")
values = {{
    "login": get("ODOO_ADMIN_LOGIN") or get("ODOO_ADMIN_EMAIL"),
    "email": get("ODOO_ADMIN_EMAIL"),
    "password": get("ODOO_ADMIN_PASSWORD"),
}}
# What the tenant was created with, only into a new database (-i base just ran, or made from
# a template): an imported or restored one keeps its own language, company and time zones.
new = bool(get("SAASODOO_NEW_DATABASE"))
code = get("ODOO_LANGUAGE") if new else None
if code:
    langs = env["res.lang"]
    active = bool(langs.search([("code", "=", code)]))
    lang = langs._activate_lang(code) or langs._create_lang(code)
    if not active:  # base.language.install's lang_install: load every module's terms
        modules = env["ir.module.module"].search([("state", "=", "installed")])
        modules._update_translations([code])
        done.append("language")
    # As res.lang's install_lang for the language a database is created with.
    env["ir.default"].set("res.partner", "lang", code)
    company.partner_id.write({{"lang": code}})
    values["lang"] = code
if new and get("ODOO_COMPANY_NAME"):
    company.write({{"name": get("ODOO_COMPANY_NAME")}})
    done.append("company")
country_code = get("ODOO_COUNTRY") if new else None
if country_code:
    country = env["res.country"].search([("code", "=ilike", country_code)], limit=1)
    if not country:
        raise ValueError("country %s is not in res.country" % country_code)
    company.write({{"country_id": country.id, "currency_id": country.currency_id.id}})
    done.append("country")
    zones = country_timezones.get(country_code.upper(), [])
    if not get("ODOO_TIMEZONE") and len(zones) == 1:
        env["res.users"].search([]).write({{"tz": zones[0]}})
if new and get("ODOO_TIMEZONE"):
    values["tz"] = get("ODOO_TIMEZONE")
# The shell started ahead (PREPARED_SCRIPT) hashed the password while the template was restored,
# as res.users' _crypt_context does for a database that asks for no more rounds than Odoo's
# least: stored through Odoo's own _set_encrypted_password (what base's _set_password does
# with the hash it computes) when base's _set_password is the one in use and the database
# asks for no more rounds; otherwise the write hashes it (about 0.9 s of one core).
prehashed = globals().get("PREHASHED")
if prehashed:
    from odoo.addons.base.models.res_users import MIN_ROUNDS, Users
    users = env["res.users"]
    if (type(users)._set_password is Users._set_password
            and int(params.get_param("password.hashing.rounds", 0)) <= MIN_ROUNDS
            and users._crypt_context().identify(prehashed) == "pbkdf2_sha512"):
        del values["password"]
        done.append("password hashed ahead")
    else:
        prehashed = None
admin.write(values)
if prehashed:
    admin._set_encrypted_password(admin.id, prehashed)
for key, var in (("web.base.url", "ODOO_BASE_URL"), ("report.url", "ODOO_REPORT_URL")):
    if get(var):
        params.set_param(key, get(var))
now = datetime.datetime.now(datetime.timezone.utc)
params.set_param("{MARKER}", now.strftime("%Y-%m-%dT%H:%M:%SZ"))
env.cr.commit()
print("{OK} " + json.dumps(done))
"""


NEUTRALIZED = "saasodoo.neutralized"
#: The mail server Odoo's base/data/neutralize.sql inserts (active, to an invalid host).
DUMMY_MAIL_SERVER = "neutralization - disable emails"
DUMMY_WEBHOOK = "neutralization - disable webhook"
NEUTRALIZE_OK = "SAASODOO-NEUTRALIZE-OK"

NEUTRALIZE_SCRIPT = f"""
import os
values = {{}}
admin = env.ref("base.user_admin")
email = os.environ["ODOO_ADMIN_EMAIL"]
if admin.login != email:
    values["login"] = email
if admin.email != email:
    values["email"] = email
if os.environ.get("SAASODOO_SET_PASSWORD"):
    values["password"] = os.environ["ODOO_ADMIN_PASSWORD"]
if values:
    admin.write(values)
params = env["ir.config_parameter"].sudo()
url = os.environ.get("ODOO_BASE_URL")
if url and params.get_param("web.base.url") != url:
    params.set_param("web.base.url", url)
params.set_param("{NEUTRALIZED}", params.get_param("database.uuid"))
env.cr.commit()
print("{NEUTRALIZE_OK}")
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
    write_private(target, lambda handle: handle.write("\n".join(lines) + "\n"))
    filled = ", ".join(k for k, v in secrets.items() if v is not None)
    log(f"wrote {target} ({filled} from Secrets)")


def connect(dbname: str):  # type: ignore[no-untyped-def]
    import psycopg2  # in the Odoo image; imported here so write_config runs anywhere

    return psycopg2.connect(dbname=dbname, connect_timeout=5, application_name="odoo-init")


def wait_for_server(database: str, timeout: float) -> str:
    """Wait until the server accepts us; return the database to lock in (ours if it exists)."""
    import psycopg2

    deadline = time.monotonic() + timeout
    last, said = "", ""
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
        why = last.splitlines()[0] if last else "?"
        if why != said:  # once per reason, not once per try
            log(f"waiting for the database server: {why}")
            said = why
        # Every half second: a refused connection costs nothing (before the server listens,
        # its Service has no endpoint), and a new tenant's Odoo starts as soon as it can.
        time.sleep(0.5)


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


def odoo_command(args: list[str]) -> list[str]:
    """`odoo ARGS` (ODOO_BIN: another Odoo launcher, as the tests' vendored Odoo)."""
    return [os.environ.get("ODOO_BIN", "odoo"), *args]


def odoo_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """The environment Odoo runs with: this process's but the superuser's password (a
    template build's), plus EXTRA."""
    child = {k: v for k, v in os.environ.items() if k != "PGADMINPASSWORD"}
    return {**child, **(extra or {})}


#: What psycopg2 (libpq) says when the database host's name did not resolve: a new pod's
#: DNS lookups can fail for a moment on a busy node (seen with five tenants created at once
#: on the real node: the personalization's `odoo shell`, after `-i base` had connected for
#: a minute). Odoo's connection pool resolves the name for each new connection and does not
#: try again.
DNS_FAILURES = ("could not translate host name", "Temporary failure in name resolution")
#: How often a run whose only failure was DNS is tried again (RETRY_DNS_SECONDS apart).
RETRY_DNS = 3
RETRY_DNS_SECONDS = 2.0


def run_odoo(
    args: list[str],
    stdin: str | None = None,
    env: dict[str, str] | None = None,
    *,
    retry_dns: bool = False,
) -> str:
    """Run Odoo (`odoo ARGS`), its output passed on; InitError on a non-zero exit. Odoo gets
    `odoo_env(env)`. `retry_dns`: for a run that may be repeated (a shell script that checks
    before it writes): its log is held until it ends, and a run that failed on a name
    lookup (DNS_FAILURES) is run again, RETRY_DNS times at most, rather than restarting the
    container (whose Odoo start costs seconds of CPU again)."""
    command = odoo_command(args)
    for attempt in range(RETRY_DNS + 1):
        log("running: " + " ".join(command))
        proc = subprocess.run(command, input=stdin, stdout=subprocess.PIPE, text=True,
                              stderr=subprocess.PIPE if retry_dns else None, check=False,
                              env=odoo_env(env))  # fmt: skip
        sys.stdout.write(proc.stdout)
        if retry_dns:
            sys.stderr.write(proc.stderr)
        if proc.returncode == 0:
            return proc.stdout
        said = (proc.stdout or "") + (proc.stderr or "")
        if not retry_dns or attempt == RETRY_DNS or not any(f in said for f in DNS_FAILURES):
            break
        log(f"a name lookup failed (DNS, transient): trying again in {RETRY_DNS_SECONDS:.0f}s")
        time.sleep(RETRY_DNS_SECONDS)
    raise InitError(f"{' '.join(command[:3])} … exited with {proc.returncode}")


#: ADMIN_SCRIPT as run by a shell started ahead (PreparedShell): `odoo shell` without a
#: database opens no registry and holds no connection, so it can go through Odoo's start-up
#: (its imports, the server-wide modules: about 1.5 s) and hash the admin's password
#: (PREHASHED, about 0.9 s; ADMIN_SCRIPT says when it is used) while a template is still being
#: restored (restore.py switches over only when nobody is connected to the live database). It
#: then waits for one byte on the pipe SAASODOO_GO_FD: "1" (a new database) or "0" (one
#: restored or imported), opens the registry of SAASODOO_SHELL_DATABASE and runs ADMIN_SCRIPT
#: as `odoo shell -d` runs a script (odoo/cli/shell.py: the superuser's environment with its
#: context). End of file instead of a byte: it leaves, having touched nothing.
PREPARED_SCRIPT = f"""
import os
try:  # Odoo's own password hash for a new database (ADMIN_SCRIPT says when it is used)
    from odoo.addons.base.models.res_users import MIN_ROUNDS, CryptContext
    PREHASHED = CryptContext(["pbkdf2_sha512", "plaintext"], deprecated=["auto"],
                             pbkdf2_sha512__rounds=MIN_ROUNDS).hash(os.environ["ODOO_ADMIN_PASSWORD"])
except ImportError:  # another series' code: the write hashes it
    PREHASHED = None
go = os.read(int(os.environ["SAASODOO_GO_FD"]), 1)
if go:
    os.environ["SAASODOO_NEW_DATABASE"] = "1" if go == b"1" else ""
    from odoo.modules.registry import Registry
    with Registry(os.environ["SAASODOO_SHELL_DATABASE"]).cursor() as cr:
        env = odoo.api.Environment(cr, odoo.SUPERUSER_ID, {{}})
        env = odoo.api.Environment(cr, odoo.SUPERUSER_ID, env["res.users"].context_get())
        exec({ADMIN_SCRIPT!r}, {{"env": env, "PREHASHED": PREHASHED}})
"""


class PreparedShell:
    """`odoo shell` started ahead of the personalization it will run (PREPARED_SCRIPT): a new
    tenant made from a template waits for the restore anyway, and Odoo's start-up is done by
    then. `run(new)` lets it personalize DATABASE and returns its output (InitError on a
    failure, as run_odoo); `cancel()` lets it leave untouched; whichever comes first counts."""

    def __init__(self, conf: Path, database: str) -> None:
        command = odoo_command(["shell", "-c", str(conf), "-d", "", "--no-http", "--workers=0"])
        log("starting odoo shell ahead of the personalization: " + " ".join(command))
        read, self._go = os.pipe()
        self._done = False
        env = odoo_env({"SAASODOO_GO_FD": str(read), "SAASODOO_SHELL_DATABASE": database})
        self._proc = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                      text=True, env=env, pass_fds=(read,))  # fmt: skip
        os.close(read)
        assert self._proc.stdin is not None
        self._proc.stdin.write(PREPARED_SCRIPT)  # read whole by the shell once it started
        self._proc.stdin.close()

    def _finish(self, go: bytes) -> str:
        if self._done:
            return ""
        self._done = True
        try:
            if go:
                os.write(self._go, go)
        except BrokenPipeError:
            pass  # the shell ended already: its exit status says why
        finally:
            os.close(self._go)
        assert self._proc.stdout is not None
        out = self._proc.stdout.read()
        self._proc.wait()
        sys.stdout.write(out)
        if self._proc.returncode != 0:
            raise InitError(f"odoo shell (started ahead) exited with {self._proc.returncode}")
        return out

    def run(self, new: bool) -> str:
        log("personalizing with the odoo shell started ahead")
        return self._finish(b"1" if new else b"0")

    def cancel(self) -> None:
        try:
            self._finish(b"")
        except InitError as exc:
            log(f"{exc} (not needed)")


@contextlib.contextmanager
def init_lock(lock_db: str, database: str) -> Iterator[None]:
    """Hold the advisory lock LOCK_KEY (in `lock_db`: the database itself, or the server's
    `postgres` before it exists) that serializes the changes of `database`: initializations,
    neutralizations and updates never run beside each other. Released on exit."""
    lock = connect(lock_db)
    lock.autocommit = True
    try:
        with lock.cursor() as cur:
            log(f"taking the initialization lock of {database}")
            cur.execute("SELECT pg_advisory_lock(%s)", (LOCK_KEY,))
        yield
    finally:
        lock.close()  # releases the advisory lock


#: backup.py's tenant data lock (its `LOCK_CLASS` and `lock_key`; the chart tests check they
#: match): every backup, restore and recovery of the tenant holds it, and so does `odoo -u`,
#: so no scheduled backup dumps a database half-updated (Odoo commits module by module).
DATA_LOCK_CLASS = 0x5A0D
#: Seconds --update waits for a backup or restore of the tenant to end (backup.py's default).
DATA_LOCK_WAIT_SECONDS = float(os.environ.get("SAASODOO_LOCK_WAIT_SECONDS") or 1800)


def data_lock_key(database: str) -> int:
    """The data lock's second key for `database`: a positive 31-bit CRC of its name."""
    return zlib.crc32(database.encode()) & 0x7FFFFFFF


@contextlib.contextmanager
def data_lock(database: str, wait_seconds: float) -> Iterator[None]:
    """Hold the tenant's data lock (`DATA_LOCK_CLASS`, `data_lock_key`) as backup.py takes it:
    in the maintenance database (PGADMINDATABASE, default `postgres`), waiting at most
    `wait_seconds` for a backup or restore holding it. InitError when not granted in time.
    Released on exit (the session ends)."""
    import psycopg2
    import psycopg2.errors

    conn = connect(os.environ.get("PGADMINDATABASE") or "postgres")
    conn.autocommit = True
    key = (DATA_LOCK_CLASS, data_lock_key(database))
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT pg_try_advisory_lock(%s, %s)", key)
            if not cur.fetchone()[0]:
                log(f"waiting for the data lock of {database} (a backup or restore runs; at "
                    f"most {wait_seconds:.0f} s)")  # fmt: skip
                cur.execute("SET lock_timeout = %s", (int(wait_seconds * 1000),))
                try:
                    cur.execute("SELECT pg_advisory_lock(%s, %s)", key)
                except psycopg2.errors.LockNotAvailable:
                    raise InitError(f"a backup or restore of {database} held its data lock for "
                                    f"{wait_seconds:.0f} s: try the update again once it "
                                    "ended") from None  # fmt: skip
            log(f"took the data lock of {database}: no backup or restore runs during -u")
        yield
    finally:
        conn.close()  # ends the session and releases the lock


def initialize(
    conf: Path, database: str, flags: list[str], timeout: float, shell: PreparedShell | None = None
) -> None:
    """Initialize DATABASE unless it carries the marker (module docstring, step 2); with SHELL
    (started ahead while a template was restored) the personalization runs in it."""
    lock_db = wait_for_server(database, timeout)
    with init_lock(lock_db, database):
        base, marker = database_state(database)
        if base and marker:
            if shell is not None:
                shell.cancel()
            log(f"database {database} is initialized: nothing to do")
            if os.environ.get("ODOO_REPORT_URL"):
                pin_report_url(database, os.environ["ODOO_REPORT_URL"])
            return
        common = ["-c", str(conf), "-d", database, "--no-http", "--workers=0"]
        # A new database gets what the tenant was created with; one restored or imported
        # without the marker only its admin's credentials.
        new = not base or bool(template_state(database))
        if not base:
            log(f"initializing database {database} (base module); this takes a few minutes")
            run_odoo([*common, "--max-cron-threads=0", "-i", "base", "--stop-after-init", *flags])
        log(
            "setting the admin user's login, e-mail and password, and what the tenant was "
            "created with (language, company, country, time zone)"
        )
        if shell is not None:
            out = shell.run(new)
        else:
            out = run_odoo(["shell", *common], stdin=ADMIN_SCRIPT, retry_dns=True,
                           env={"SAASODOO_NEW_DATABASE": "1" if new else ""})  # fmt: skip
        if OK not in out:
            raise InitError("odoo shell did not confirm the admin user's update")
        log(f"database {database} initialized")


TEMPLATE_OK = "SAASODOO-TEMPLATE-OK"
TEMPLATE_SCRIPT = f"""
import os, secrets
params = env["ir.config_parameter"].sudo()
params.set_param("{TEMPLATE_KEY}", os.environ["SAASODOO_TEMPLATE_KEY"])
params.set_param("{TEMPLATE_UUID}", params.get_param("database.uuid"))
# base's admin/admin must not be a known password in any database made from the template.
env.ref("base.user_admin").write({{"password": secrets.token_urlsafe(32)}})
env.cr.commit()
print("{TEMPLATE_OK}")
"""


def template_state(database: str) -> str | None:
    """The template key a database was built as (`saasodoo.template`), "" for an Odoo
    database that is not a template (none, or a tenant's: personalized, with the admin
    marker, even if made from one), None when Odoo's base is not installed in it."""
    base, marker = database_state(database)
    if not base:
        return None
    if marker:
        return ""
    conn = connect(database)
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT value FROM ir_config_parameter WHERE key = %s", (TEMPLATE_KEY,))
            row = cur.fetchone()
            return str(row[0]) if row else ""
    finally:
        conn.close()


def build_template(
    conf: Path, database: str, key: str, flags: list[str], timeout: float
) -> dict[str, object]:
    """Make `database` (empty, made for it) a template: Odoo's `-i base` (with `flags`, e.g.
    --without-demo=all), then the parameters `saasodoo.template` = KEY and
    `saasodoo.template_uuid` = its database.uuid, and a random admin password. No admin
    login, no marker (`saasodoo.admin_initialized`): a tenant restored from it is
    personalized by its web pod's --initialize. A database already built as KEY is left
    alone; one holding other Odoo data is refused (a template never carries a tenant's)."""
    if os.environ.get("PGADMINUSER"):
        build_role(conf, database, timeout)
    lock_db = wait_for_server(database, timeout)
    if lock_db != database:
        create_scratch(database)
    lock = connect(database)
    lock.autocommit = True
    try:
        with lock.cursor() as cur:
            cur.execute("SELECT pg_advisory_lock(%s)", (LOCK_KEY,))
        built = template_state(database)
        if built == key:
            log(f"database {database} is already the template {key}: nothing to do")
            return {"ok": True, "database": database, "template": key, "built": False}
        if built is not None:
            raise InitError(
                f"database {database} already holds Odoo data"
                + (f" (the template {built})" if built else " (not a template: a tenant's?)")
                + ": a template is built in an empty database"
            )
        common = ["-c", str(conf), "-d", database, "--no-http", "--workers=0"]
        log(f"building the template {key} in {database} (odoo -i base)")
        started = time.monotonic()
        run_odoo([*common, "--max-cron-threads=0", "-i", "base", "--stop-after-init", *flags])
        out = run_odoo(["shell", *common], stdin=TEMPLATE_SCRIPT, retry_dns=True,
                       env={"SAASODOO_TEMPLATE_KEY": key})  # fmt: skip
        if TEMPLATE_OK not in out:
            raise InitError("odoo shell did not confirm the template's parameters")
        seconds = round(time.monotonic() - started, 1)
        log(f"template {key} built in {database} ({seconds} s)")
        return {"ok": True, "database": database, "template": key, "built": True,
                "seconds": seconds}  # fmt: skip
    finally:
        lock.close()


#: Module states an Odoo killed during -u/-i leaves (odoo/modules/loading.py
#: reset_modules_state resets them only on an error it caught).
PENDING_STATES = ("to install", "to upgrade", "to remove")


def module_versions(database: str) -> tuple[dict[str, str], dict[str, str]]:
    """({installed module: latest_version}, {module: state} of those in PENDING_STATES)."""
    conn = connect(database)
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT name, COALESCE(latest_version, '') FROM ir_module_module"
                        " WHERE state = 'installed'")  # fmt: skip
            installed = {str(n): str(v) for n, v in cur.fetchall()}
            cur.execute("SELECT name, state FROM ir_module_module WHERE state = ANY(%s)",
                        (list(PENDING_STATES),))  # fmt: skip
            return installed, {str(n): str(s) for n, s in cur.fetchall()}
    finally:
        conn.close()


def reset_module_states(database: str) -> int:
    """Odoo's own reset_modules_state (odoo/modules/loading.py) after a -u that could not run
    it: `to upgrade`/`to remove` back to installed, `to install` back to uninstalled. The
    number of modules reset."""
    conn = connect(database)
    try:
        with conn, conn.cursor() as cur:
            cur.execute("UPDATE ir_module_module SET state = 'installed'"
                        " WHERE state IN ('to remove', 'to upgrade')")  # fmt: skip
            count = cur.rowcount
            cur.execute("UPDATE ir_module_module SET state = 'uninstalled'"
                        " WHERE state = 'to install'")  # fmt: skip
            return int(count + cur.rowcount)
    finally:
        conn.close()


def odoo_series() -> str:
    """The image's Odoo series (`odoo --version`: "Odoo Server 18.0"), "" if not readable."""
    command = [os.environ.get("ODOO_BIN", "odoo"), "--version"]
    proc = subprocess.run(command, capture_output=True, text=True, check=False)
    found = re.search(r"(\d+\.\d+)", proc.stdout)
    return found.group(1) if found else ""


def last_exception(log_text: str) -> str:
    """The last exception line of Odoo's log (the line ending a traceback), "" if none."""
    found = ""
    in_traceback = False
    for line in log_text.splitlines():
        if line.startswith("Traceback (most recent call last):"):
            in_traceback = True
        elif in_traceback and line and not line[0].isspace():
            found, in_traceback = line.strip(), False
    return found[:500]


@dataclass
class UpdateRun:
    """How an `odoo -u` ended: its exit code, its log, and the signal that stopped it (the
    name, "" when none did)."""

    code: int
    output: str
    signal: str = ""


def run_update(conf: Path, database: str, modules: list[str]) -> UpdateRun:
    """`odoo -u` of `modules`, its output passed through line by line (`kubectl logs` follows
    the update as it goes). SIGTERM or SIGINT received meanwhile (the Job's pod deleted,
    evicted, its deadline reached) is passed on to Odoo, which stops at once (its handler
    raises KeyboardInterrupt, rolling back the module being updated; the modules before it
    were committed one by one, so the database is half-updated: the operator restores the
    pre-update backup) instead of running on until the kubelet's SIGKILL. As the container's
    PID 1 this process would otherwise ignore SIGTERM altogether."""
    command = [os.environ.get("ODOO_BIN", "odoo"), "-c", str(conf), "-d", database,
               "--no-http", "--workers=0", "--max-cron-threads=0", "-u", ",".join(modules),
               "--stop-after-init"]  # fmt: skip
    log(f"running: {' '.join(command[:8])} -u <{len(modules)} modules> --stop-after-init")
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True)  # fmt: skip
    stopped: list[str] = []

    def forward(signum: int, _frame: object) -> None:
        name = signal.Signals(signum).name
        if not stopped:
            log(f"{name} received: stopping odoo -u")
        stopped.append(name)
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(signum)

    previous = {s: signal.signal(s, forward) for s in (signal.SIGTERM, signal.SIGINT)}
    lines: list[str] = []
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            sys.stdout.write(line)
            sys.stdout.flush()
            lines.append(line)
        code = proc.wait()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return UpdateRun(code, "".join(lines), stopped[0] if stopped else "")


def update(conf: Path, database: str, timeout: float) -> dict[str, object]:
    """Update every installed module of `database` to the image's code (see the module's
    docstring, step 5); the report. InitError when it failed (the report's error)."""
    lock_db = wait_for_server(database, timeout)
    if lock_db != database:
        raise InitError(f"database {database} does not exist: nothing to update")
    with init_lock(database, database):
        base, _ = database_state(database)
        if not base:
            log(f"database {database} has no Odoo installed: nothing to update")
            return {"ok": True, "database": database, "updated": False}
        before, pending = module_versions(database)
        if pending:
            raise InitError(
                "modules left in a pending state (an Odoo stopped during -u or -i?): "
                + ", ".join(f"{n} {s}" for n, s in sorted(pending.items()))
                + "; restore a backup or reset their states first"
            )
        modules = sorted(before)
        with data_lock(database, DATA_LOCK_WAIT_SECONDS):
            log(f"updating the {len(modules)} installed modules of {database}: "
                f"{','.join(modules)}")  # fmt: skip
            started = time.monotonic()
            run = run_update(conf, database, modules)
        after, pending = module_versions(database)
        if run.code != 0 or pending or run.signal:
            reset = reset_module_states(database) if pending else 0
            states = f" ({reset} module states reset)" if reset else ""
            if run.signal:
                raise InitError(f"odoo -u stopped by {run.signal} (exit {run.code}): the "
                                f"modules updated before it are committed{states}")  # fmt: skip
            why = last_exception(run.output) or "see the log above"
            raise InitError(f"odoo -u exited with {run.code}: {why}{states}")
        series = odoo_series()
        base_version = after.get("base", "")
        if series and not base_version.startswith(series + "."):
            raise InitError(f"base is at version {base_version or '(none)'} after -u, not of the "
                            f"image's series {series}")  # fmt: skip
        changed = {n: [before.get(n, ""), v] for n, v in sorted(after.items())
                   if before.get(n) != v}  # fmt: skip
        seconds = round(time.monotonic() - started, 1)
        log(f"updated {len(modules)} modules of {database} in {seconds} s "
            f"({len(changed)} changed version)")  # fmt: skip
        return {"ok": True, "database": database, "updated": len(modules), "changed": changed,
                "seconds": seconds}  # fmt: skip


def admin_connect():  # type: ignore[no-untyped-def]
    """A connection to the server's `postgres` database as PGADMINUSER (PGADMINPASSWORD):
    the chart PostgreSQL's superuser, which the template build Job is given."""
    import psycopg2

    user = os.environ.get("PGADMINUSER")
    if not user:
        raise InitError("PGADMINUSER is not set: a scratch database is created by the superuser")
    conn = psycopg2.connect(dbname="postgres", user=user, password=os.environ.get(
        "PGADMINPASSWORD"), connect_timeout=5, application_name="odoo-init")  # fmt: skip
    conn.autocommit = True
    return conn


def create_scratch(database: str) -> None:
    """Create the empty `database` for a template build, owned by PGUSER (the build's role:
    `build_role` made it), UTF-8 from template0, no PUBLIC access (as postgres-init.sh
    leaves a tenant's): the tenant's own role cannot connect to it."""
    from psycopg2 import sql

    role = os.environ.get("PGUSER", "")
    conn = admin_connect()
    try:
        with conn.cursor() as cur:
            # No connection at all until PUBLIC's CONNECT is revoked: a session opened in
            # between would keep its access after the REVOKE.
            cur.execute(sql.SQL("CREATE DATABASE {} OWNER {} TEMPLATE template0 ENCODING 'UTF8' "
                                "ALLOW_CONNECTIONS false")
                        .format(sql.Identifier(database), sql.Identifier(role)))  # fmt: skip
            cur.execute(sql.SQL("REVOKE ALL ON DATABASE {} FROM PUBLIC")
                        .format(sql.Identifier(database)))  # fmt: skip
            cur.execute(sql.SQL("ALTER DATABASE {} ALLOW_CONNECTIONS true")
                        .format(sql.Identifier(database)))  # fmt: skip
    finally:
        conn.close()
    log(f"created the scratch database {database} (owner {role})")


SCRATCH = re.compile(r"_tpl_[0-9a-f]{8}$")


def build_role(conf: Path, database: str, timeout: float) -> None:
    """Give the template build a PostgreSQL role of its own, named as its scratch `database`
    (`<db>_tpl_<8 hex>`), with a random password made here: the scratch database is created
    owned by it, so the tenant's role (Odoo's, in the same server) can neither connect to
    the template while it is built nor change it (a template is restored into every later
    tenant of its image). Created through the superuser (PGADMINUSER); an existing one (a
    build that failed) gets a new password, and a leftover scratch database owned by
    another role is dropped. The credentials go into this process's libpq environment,
    into `conf` (`db_user`, `db_password`: the Odoo it runs) and, when
    SAASODOO_BUILD_PGPASSFILE is set, into that libpq password file (mode 0600, in a
    memory volume of the Job's pod) for the pod's next containers (backup.py, the drop)."""
    import psycopg2
    import psycopg2.extensions
    from psycopg2 import sql

    if not SCRATCH.search(database):
        raise InitError(f"database {database} is not a template build's scratch database")
    deadline = time.monotonic() + timeout
    while True:
        try:
            conn = admin_connect()
            break
        except psycopg2.OperationalError as exc:
            if time.monotonic() > deadline:
                why = f"database server not reachable after {timeout:.0f}s: {exc}"
                raise InitError(why) from exc
            log("waiting for the database server")
            time.sleep(3)
    password = secrets.token_urlsafe(32)
    role = sql.Identifier(database)
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (database,))
            verb = "ALTER" if cur.fetchone() else "CREATE"
            # Only the SCRAM verifier goes to the server: the password itself never reaches
            # its log, whatever log_statement says.
            verifier = psycopg2.extensions.encrypt_password(
                password, database, conn, "scram-sha-256"
            )
            cur.execute(sql.SQL(verb + " ROLE {} WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE "
                                "NOREPLICATION NOBYPASSRLS PASSWORD %s").format(role),
                        (verifier,))  # fmt: skip
            cur.execute("SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = %s",
                        (database,))  # fmt: skip
            row = cur.fetchone()
            if row and row[0] != database:
                log(f"dropping the leftover scratch database {database} (owner {row[0]})")
                cur.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(role))
    finally:
        conn.close()
    log(f"{verb.lower()}d the build's role {database}")
    os.environ["PGUSER"] = database
    os.environ["PGPASSWORD"] = password
    parser = configparser.ConfigParser(interpolation=None)
    parser.read(conf)
    parser.set("options", "db_user", database)
    parser.set("options", "db_password", password)
    write_private(conf, lambda handle: parser.write(handle))
    passfile = os.environ.get("SAASODOO_BUILD_PGPASSFILE")
    if passfile:
        escaped = [v.replace("\\", "\\\\").replace(":", "\\:") for v in (database, password)]
        line = f"*:*:*:{escaped[0]}:{escaped[1]}\n"
        write_private(Path(passfile), lambda handle: handle.write(line))


def write_private(target: Path, write) -> None:  # type: ignore[no-untyped-def]
    """Write `target` (mode 0600) through a partial file renamed over it."""
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(target.name + ".partial")
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        write(handle)
    os.replace(partial, target)


def drop_template(conf: Path, database: str) -> dict[str, object]:
    """Drop the template build's scratch `database` and its filestore (after backup.py
    stored it, or after a build that failed). Only a scratch database is dropped: its name
    ends in `_tpl_<8 hex>` (saasodoo.backups.jobs.template_scratch) and it holds a template
    (`saasodoo.template`, no admin marker) or no Odoo at all; a tenant's never is."""
    from psycopg2 import sql

    if not SCRATCH.search(database):
        raise InitError(f"database {database} is not a template build's scratch database")
    if os.environ.get("PGADMINUSER"):
        # Read the database as the superuser: the cleanup after a failed build runs without
        # the build role's password (it was on the failed pod's memory volume).
        os.environ.pop("PGPASSFILE", None)
        os.environ["PGUSER"] = os.environ["PGADMINUSER"]
        os.environ["PGPASSWORD"] = os.environ.get("PGADMINPASSWORD", "")
    built = template_state(database)  # None as well when it was never created
    if built == "":
        raise InitError(f"database {database} holds a tenant's Odoo data: not dropped")
    conn = admin_connect() if os.environ.get("PGADMINUSER") else connect("postgres")
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            cur.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)")
                        .format(sql.Identifier(database)))  # fmt: skip
            if os.environ.get("PGADMINUSER"):
                # The build's role (build_role), named as the database; never the tenant's.
                cur.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(database)))
    finally:
        conn.close()
    parser = configparser.ConfigParser(interpolation=None)
    parser.read(conf)
    data_dir = parser.get("options", "data_dir", fallback="/var/lib/odoo")
    filestore = Path(data_dir) / "filestore" / database
    if filestore.is_dir():
        shutil.rmtree(filestore)
    log(
        f"dropped the scratch database {database} (template {built or 'not built'}) and its "
        "filestore"
    )
    return {"ok": True, "database": database, "template": built, "dropped": True}


def neutralization_gaps(cur) -> list[str]:  # type: ignore[no-untyped-def]
    """What in the database is not as Odoo's neutralization leaves it (empty: neutralized)."""

    def count(sql: str, *args: object) -> int:
        cur.execute(sql, args)
        return int(cur.fetchone()[0])

    def table(name: str) -> bool:
        return count("SELECT count(*) FROM pg_class WHERE relname = %s AND relkind = 'r'",
                     name) == 1  # fmt: skip

    gaps = []
    flag = "SELECT count(*) FROM ir_config_parameter WHERE key = 'database.is_neutralized'"
    if not count(flag + " AND lower(value) IN ('true', '1')"):
        gaps.append("database.is_neutralized is not set")
    active = count("SELECT count(*) FROM ir_mail_server WHERE active"
                   " AND NOT (name = %s AND smtp_host = 'invalid')", DUMMY_MAIL_SERVER)  # fmt: skip
    if active:
        gaps.append(f"{active} outgoing mail server(s) active")
    if not count("SELECT count(*) FROM ir_mail_server WHERE active AND name = %s"
                 " AND smtp_host = 'invalid'", DUMMY_MAIL_SERVER):  # fmt: skip
        gaps.append("no neutralization mail server (Odoo would fall back to odoo.conf's)")
    crons = count(
        "SELECT count(*) FROM ir_cron WHERE active AND id NOT IN (SELECT res_id FROM"
        " ir_model_data WHERE model = 'ir.cron' AND module = 'base' AND name = 'autovacuum_job')"
    )
    if crons:
        gaps.append(f"{crons} cron(s) active besides the autovacuum")
    if count("SELECT count(*) FROM information_schema.columns WHERE table_name = 'ir_act_server'"
             " AND column_name = 'webhook_url'"):  # fmt: skip
        hooks = count("SELECT count(*) FROM ir_act_server WHERE state = 'webhook'"
                      " AND webhook_url IS DISTINCT FROM %s", DUMMY_WEBHOOK)  # fmt: skip
        if hooks:
            gaps.append(f"{hooks} webhook(s) active")
    if count("SELECT count(*) FROM ir_ui_view WHERE key = 'web.neutralize_banner' AND NOT active"):
        gaps.append("the neutralization banner is off")
    if table("fetchmail_server") and count("SELECT count(*) FROM fetchmail_server WHERE active"):
        gaps.append("incoming mail server(s) active")
    return gaps


def password_matches(password: str, hashed: str) -> bool:
    """Whether `password` is the one stored (Odoo's CryptContext: pbkdf2_sha512; passlib is
    in the Odoo image). Verifying writes nothing, unlike a login."""
    if not hashed:
        return False
    from passlib.context import CryptContext

    try:
        return bool(CryptContext(["pbkdf2_sha512", "plaintext"]).verify(password, hashed))
    except ValueError:  # a hash of another scheme
        return False


@dataclass(frozen=True)
class CopyState:
    """The facts --neutralize decides on, read without Odoo."""

    gaps: list[str]  # what is not neutralized (neutralization_gaps)
    marked: bool  # saasodoo.neutralized is the database's current database.uuid
    base_url: str | None
    login: str
    email: str | None
    hashed: str  # the admin's password hash


def copy_state(database: str) -> CopyState:
    conn = connect(database)
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT to_regclass('public.ir_config_parameter') IS NOT NULL")
            if not cur.fetchone()[0]:
                raise InitError(f"database {database} is not an initialized Odoo database")
            cur.execute("SELECT key, value FROM ir_config_parameter WHERE key IN"
                        " ('database.uuid', 'web.base.url', %s)", (NEUTRALIZED,))  # fmt: skip
            params = dict(cur.fetchall())
            cur.execute(
                "SELECT u.login, p.email, COALESCE(u.password, '') FROM res_users u"
                " JOIN res_partner p ON p.id = u.partner_id JOIN ir_model_data d"
                " ON d.res_id = u.id AND d.model = 'res.users' AND d.module = 'base'"
                " AND d.name = 'user_admin'"
            )
            row = cur.fetchone()
            if row is None:
                raise InitError(f"database {database} has no admin user (base.user_admin)")
            uuid = params.get("database.uuid")
            return CopyState(
                gaps=neutralization_gaps(cur),
                marked=bool(uuid) and params.get(NEUTRALIZED) == uuid,
                base_url=params.get("web.base.url"),
                login=row[0],
                email=row[1],
                hashed=row[2],
            )
    finally:
        conn.close()


def neutralize(
    conf: Path, database: str, timeout: float, *, once: bool = False
) -> dict[str, object]:
    """Neutralize the copy's database and give it its own admin and URL (see the module's
    docstring, step 3); the report of what was done. ``once`` (a copy's pod starting): a
    database neutralized since it got its identity is left as it is, even if someone turned
    a mail server or a cron back on in the copy since."""
    lock_db = wait_for_server(database, timeout)
    if lock_db != database:
        raise InitError(f"database {database} does not exist: restore the copy first")
    email, password = os.environ["ODOO_ADMIN_EMAIL"], os.environ["ODOO_ADMIN_PASSWORD"]
    base_url = os.environ.get("ODOO_BASE_URL") or ""
    lock = connect(database)
    lock.autocommit = True
    report: dict[str, object] = {"database": database, "neutralized": False, "admin": False,
                                 "base_url": False}  # fmt: skip
    try:
        with lock.cursor() as cur:
            log(f"taking the initialization lock of {database}")
            cur.execute("SELECT pg_advisory_lock(%s)", (LOCK_KEY,))
        state = copy_state(database)
        if once and state.marked:
            log(f"database {database} was neutralized as this copy: nothing to do")
            report["ok"] = True
            return report
        if state.gaps or not state.marked:
            why = "; ".join(state.gaps) or "not neutralized since it got its identity"
            log(f"neutralizing database {database} ({why})")
            run_odoo(["neutralize", "-c", str(conf), "-d", database])
            report["neutralized"] = True
            state = copy_state(database)
            if state.gaps:
                raise InitError(
                    "odoo neutralize left the database not neutralized: " + "; ".join(state.gaps)
                )
        new_password = not password_matches(password, state.hashed)
        admin = new_password or state.login != email or state.email != email
        url = bool(base_url) and state.base_url != base_url
        if admin or url or not state.marked:
            log("setting the copy's admin user, web.base.url and neutralization marker")
            common = ["-c", str(conf), "-d", database, "--no-http", "--workers=0"]
            env_extra = {"SAASODOO_SET_PASSWORD": "1"} if new_password else {}
            out = run_odoo(["shell", *common], stdin=NEUTRALIZE_SCRIPT, env=env_extra)
            if NEUTRALIZE_OK not in out:
                raise InitError("odoo shell did not confirm the copy's admin user update")
            report.update(admin=admin, password=new_password, base_url=url)
        if not report["neutralized"] and not admin and not url and state.marked:
            log(f"database {database} is neutralized: nothing to do")
        report["ok"] = True
        return report
    finally:
        lock.close()


def database_oid(cur, database: str) -> int | None:  # type: ignore[no-untyped-def]
    cur.execute("SELECT oid FROM pg_database WHERE datname = %s", (database,))
    row = cur.fetchone()
    return int(row[0]) if row else None


def wait_for_template(
    database: str,
    key: str,
    seconds: float,
    timeout: float,
    prepare: Callable[[], None] | None = None,
) -> bool:
    """A new tenant made from the template KEY: saasodoo's restore Job (restore.py
    --source-tenant templates/KEY) loads it into a scratch database beside the empty live one
    and switches them over by renaming, which it refuses while a client is connected to the
    live one. So this waits without a connection to it: from the server's `postgres`
    database, until the database named PGDATABASE is another one (its oid changed: the
    switch), for up to SECONDS. True once a database with base installed is in place (also
    when it already was); False past SECONDS, or when the live database holds Odoo data
    already: the caller then goes on as without a template (`-i base`). PREPARE is called
    once it is known that the wait begins (the caller starts its PreparedShell then)."""
    import psycopg2

    lock_db = wait_for_server(database, timeout)
    base, _ = database_state(database)
    if base:
        return True
    if prepare is not None:
        prepare()
    conn = connect("postgres")
    conn.autocommit = True
    started = time.monotonic()
    try:
        with conn.cursor() as cur:
            first = database_oid(cur, database) if lock_db == database else None
            log(f"waiting up to {seconds:.0f}s for the template {key} to be restored into "
                f"{database} (restore.py --source-tenant templates/{key})")  # fmt: skip
            while time.monotonic() - started < seconds:
                # Every 0.1 s: one catalog lookup on a connection held open, and the new
                # tenant's personalization starts as soon as the restore switched over.
                time.sleep(0.1)
                now = database_oid(cur, database)
                if now is not None and now != first:
                    break
            else:
                log(f"the template {key} was not restored into {database} within "
                    f"{seconds:.0f}s: initializing it with -i base instead")  # fmt: skip
                return False
    except psycopg2.Error as exc:
        log(f"waiting for the template {key}: {exc}: initializing with -i base instead")
        return False
    finally:
        conn.close()
    base, _ = database_state(database)
    log(f"template {key} restored into {database} after {time.monotonic() - started:.1f}s"
        + ("" if base else ", but without base installed: -i base"))  # fmt: skip
    return base


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


def wait_neutralized(database: str, timeout: float) -> None:
    """Wait until the copy's database was neutralized since it got its identity (the web
    pod's odoo-init --initialize --copy, or the operator's Job, does it)."""
    deadline = time.monotonic() + timeout
    while not copy_state(database).marked:
        if time.monotonic() > deadline:
            raise InitError(f"database {database} not neutralized after {timeout:.0f}s")
        log(f"waiting for the web pod to neutralize the copy's database {database}")
        time.sleep(5)
    log(f"database {database} is neutralized")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--template", type=Path, required=True, help="odoo.conf from the ConfigMap")
    parser.add_argument("--config", type=Path, required=True, help="final odoo.conf to write")
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--initialize", action="store_true", help="initialize a new database")
    mode.add_argument("--wait", action="store_true", help="wait until the database is initialized")
    mode.add_argument(
        "--neutralize", action="store_true", help="neutralize a staging copy's database"
    )
    mode.add_argument(
        "--build-template",
        metavar="KEY",
        help="build a template database (odoo -i base) in the empty PGDATABASE, keyed KEY",
    )
    mode.add_argument(
        "--update",
        action="store_true",
        help="update every installed module of PGDATABASE to the image's code (odoo -u)",
    )
    mode.add_argument(
        "--drop-template",
        action="store_true",
        help="drop the template build's scratch database PGDATABASE and its filestore",
    )
    parser.add_argument(
        "--copy",
        action="store_true",
        help="a staging copy: --initialize neutralizes the database unless it was as this "
        "copy; --wait also waits for that",
    )
    parser.add_argument(
        "--from-template",
        metavar="KEY",
        help="--initialize: a new tenant made from the template KEY, whose restore saasodoo "
        "runs beside: wait for it (--template-wait) instead of -i base",
    )
    parser.add_argument(
        "--template-wait",
        type=float,
        default=60,
        help="seconds --from-template waits before falling back to -i base",
    )
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
        if (
            args.initialize
            or args.wait
            or args.neutralize
            or args.build_template
            or args.drop_template
            or args.update
        ) and (not database):
            raise InitError("PGDATABASE is not set")
        if args.neutralize or args.initialize:
            for var in ("ODOO_ADMIN_EMAIL", "ODOO_ADMIN_PASSWORD"):
                if not os.environ.get(var):
                    raise InitError(f"{var} is not set")
        if args.build_template:
            try:
                report = build_template(
                    args.config, database, args.build_template, args.init_flag, args.timeout
                )
            except InitError as exc:
                print("RESULT " + json.dumps({"ok": False, "error": str(exc)}), flush=True)
                raise
            print("RESULT " + json.dumps(report, sort_keys=True), flush=True)
        if args.drop_template:
            print("RESULT " + json.dumps(drop_template(args.config, database)), flush=True)
        if args.update:
            try:
                report = update(args.config, database, args.timeout)
            except InitError as exc:
                print("RESULT " + json.dumps({"ok": False, "database": database,
                                              "error": str(exc)}), flush=True)  # fmt: skip
                raise
            print("RESULT " + json.dumps(report, sort_keys=True), flush=True)
        if args.initialize:
            shell: PreparedShell | None = None

            def prepare() -> None:
                nonlocal shell
                shell = PreparedShell(args.config, database)

            try:
                if args.from_template:
                    wait_for_template(database, args.from_template, args.template_wait,
                                      args.timeout, prepare)  # fmt: skip
                initialize(args.config, database, args.init_flag, args.timeout, shell)
            finally:
                if shell is not None:
                    shell.cancel()  # a no-op once it ran
        if args.neutralize or (args.initialize and args.copy):
            try:
                report = neutralize(args.config, database, args.timeout, once=args.initialize)
            except InitError as exc:
                print("RESULT " + json.dumps({"ok": False, "error": str(exc)}), flush=True)
                raise
            print("RESULT " + json.dumps(report, sort_keys=True), flush=True)
        if args.wait:
            wait_initialized(database, args.timeout)
            if args.copy:
                wait_neutralized(database, args.timeout)
    except InitError as exc:
        log(f"ERROR: {exc}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
