"""A new tenant from a template database (issue #25 point 3), on the real Odoo 18 server.

The template is built once, as the platform builds one per Odoo image: the web pod's rendered
`odoo-init` container run with `--build-template KEY` instead of `--initialize` (Odoo's
`-i base` into an empty scratch database, plus the template's parameters), then the backup
CronJob's container (backup.py) writing its zip under `templates/KEY` of a backup location
shared by tenants. A new tenant gets it through the restore Job saasodoo makes
(restore.py `--source-tenant templates/KEY`: a copy, so a new identity), then its web pod's
ordinary `odoo-init --initialize` finds base installed without the admin marker and
personalizes the database from the create request (the spec's fields, through the values
saasodoo computes and the environment the chart renders) (files/odoo-init.py ADMIN_SCRIPT, Odoo's
own calls): no `-i base` for the tenant."""

from __future__ import annotations

import copy
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from saasodoo.backups.jobs import template_scratch
from saasodoo.core.spec import TenantSpec
from saasodoo.core.templates import template_folder
from saasodoo.core.values import personal_values
from tests.chart.helpers import one
from tests.odoo.harness import (
    ADMIN_PASSWORD,
    Harness,
    OdooProcess,
    RpcError,
    Tenant,
    create_database,
    rpc,
    run_restore_job,
)
from tests.odoo.test_neutralize import init_pod, result_of

pytestmark = pytest.mark.odoo

KEY = "odoo-18.0-test"
FOLDER = template_folder(KEY)
#: What the create request asked for (TenantSpec fields), rendered into the tenant's values.
PERSONAL = {
    "admin_login": "chef@tarte.example",
    "company_name": "Tarte & Tatin SARL",
    "language": "fr_FR",
    "country": "FR",
    "timezone": "Europe/Paris",
}


def backup_claim(docs: list[dict[str, Any]]) -> str:
    (name,) = [
        d["metadata"]["name"]
        for d in docs
        if d["kind"] == "PersistentVolumeClaim"
        and d["metadata"]["labels"].get("app.kubernetes.io/component") == "backup"
    ]
    return str(name)


def param(harness: Harness, db: str, key: str) -> str:
    return harness.pg.psql(f"SELECT value FROM ir_config_parameter WHERE key = '{key}'", db).strip()


@pytest.fixture(scope="module")
def template(harness: Harness) -> tuple[Path, dict[str, str]]:
    """The template KEY built in its own scratch database `tplbuild` and stored under
    templates/KEY of a backup directory; that directory and the template's identity."""
    builder = Tenant(harness, "tplbuild", "unused@template.example")
    create_database(harness.pg, builder.db)
    docs = builder.render(config={"workers": 0})
    built = init_pod(builder, docs, f"--build-template={KEY}").run("odoo-init")
    assert built.returncode == 0, built.stdout + built.stderr
    assert result_of(built)["built"] is True, built.stdout
    assert "running: odoo -c" in built.stdout and "-i base" in built.stdout
    again = init_pod(builder, docs, f"--build-template={KEY}").run("odoo-init")
    assert again.returncode == 0 and result_of(again)["built"] is False, again.stdout
    assert param(harness, builder.db, "saasodoo.admin_initialized") == ""

    pod = builder.local_pod(docs, copy.deepcopy(one(docs, "CronJob")))
    container = pod.container("backup")
    container["command"] = [
        f"--tenant={FOLDER}" if a.startswith("--tenant=") else a for a in container["command"]
    ] + ["--per-tenant-dir", "--no-prune"]
    stored = pod.run_job("backup", {"BACKUP_KIND": "on-demand"}, timeout=300)
    assert stored.returncode == 0, stored.stdout + stored.stderr
    root = builder.claims[backup_claim(docs)]
    assert len(list((root / FOLDER).glob("*-on-demand.zip"))) == 1, stored.stdout
    identity = {k: param(harness, builder.db, k) for k in ("database.uuid", "database.secret")}
    assert identity["database.uuid"] == param(harness, builder.db, "saasodoo.template_uuid")
    return root, identity


def restore_template(tenant: Tenant, docs: list[dict[str, Any]]) -> str:
    """saasodoo's restore Job for the tenant, reading the newest zip of templates/KEY."""
    done = run_restore_job(tenant, docs, None, drop_previous=True, source_tenant=FOLDER,
                           extra_args=("--per-tenant-dir",))  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert result_of(done)["identity"] == "new", done.stdout
    return done.stdout


def assert_personalized(odoo: OdooProcess, db: str, languages: set[str]) -> None:
    """What Odoo serves is what PERSONAL asked for; only the requested login signs in.
    ``languages``: the active ones. A database made by `-i base --load-language=fr_FR` has
    fr_FR only (res.lang's install_lang activates that one); one made from the en_US template
    keeps en_US beside it, as any database to which Odoo's "Add languages" added one (Odoo
    refuses to archive the language it was set up in: its inactive users use it)."""
    with rpc(odoo.url) as client:
        uid = client.login(db, PERSONAL["admin_login"], ADMIN_PASSWORD)
        (user,) = client.model("res.users", "read", [uid], ["login", "email", "lang", "tz"])
        assert (user["login"], user["email"], user["lang"], user["tz"]) == (
            "chef@tarte.example", f"owner@{db}.example", "fr_FR", "Europe/Paris"
        )  # fmt: skip
        (company,) = client.model(
            "res.company", "search_read", [], ["name", "country_id", "currency_id"]
        )
        assert company["name"] == "Tarte & Tatin SARL"
        (country,) = client.model("res.country", "read", [company["country_id"][0]], ["code"])
        assert country["code"] == "FR"
        assert company["currency_id"][1] == "EUR"
        langs = client.model("res.lang", "search_read", [["active", "=", True]], ["code"])
        assert {lang["code"] for lang in langs} == languages
    # Neither the template's admin nor the default one signs in.
    for login in ("admin", f"owner@{db}.example"):
        with rpc(odoo.url) as client, pytest.raises(RpcError, match="AccessDenied"):
            client.login(db, login, ADMIN_PASSWORD)


def test_a_tenant_from_the_template_is_personalized_and_has_its_own_identity(
    harness: Harness, template: tuple[Path, dict[str, str]], started: list[OdooProcess]
) -> None:
    shared, identity = template

    tenant = Tenant(harness, "tarte", "owner@tarte.example")
    create_database(harness.pg, tenant.db)
    spec = TenantSpec.parse({"id": tenant.id, "admin_email": tenant.email, **PERSONAL})
    docs = tenant.render(config={"workers": 0}, **personal_values(spec)["odoo"])
    tenant.claims[backup_claim(docs)] = shared  # the platform's backup location
    begin = time.monotonic()
    restore_template(tenant, docs)
    restored = time.monotonic()
    init = tenant.pod(docs).run("odoo-init")
    assert init.returncode == 0, init.stdout + init.stderr
    personalized = time.monotonic()
    assert "-i base" not in init.stdout, init.stdout  # no Odoo install for the tenant
    assert '["language", "company", "country"]' in init.stdout, init.stdout
    print(f"restore {restored - begin:.1f} s, personalization {personalized - restored:.1f} s")

    db = tenant.db
    assert param(harness, db, "database.uuid") not in ("", identity["database.uuid"])
    assert param(harness, db, "database.secret") not in ("", identity["database.secret"])
    assert param(harness, db, "web.base.url") == "https://tarte.example.com"

    # A tenant's database, though made from the template, is never taken for one.
    refused = init_pod(tenant, docs, f"--build-template={KEY}").run("odoo-init")
    assert refused.returncode == 1, refused.stdout
    assert "already holds Odoo data (not a template" in result_of(refused)["error"]

    odoo = tenant.pod(docs).boot()  # its init container again: initialized, nothing to do
    started.append(odoo)
    assert_personalized(odoo, db, {"en_US", "fr_FR"})


def test_a_template_copied_without_a_new_identity_gets_one_before_anything_else(
    harness: Harness, template: tuple[Path, dict[str, str]]
) -> None:
    """A template restored by hand (PostgreSQL's own CREATE DATABASE ... TEMPLATE keeps
    every row): the web pod's personalization renews database.uuid and database.secret
    first, as Odoo's restore of a copy does (ir.config_parameter init(force=True))."""
    tenant = Tenant(harness, "clafoutis", "owner@clafoutis.example")
    harness.pg.admin(f'CREATE DATABASE "{tenant.db}" OWNER odoo TEMPLATE "tplbuild"')
    old = {k: param(harness, tenant.db, k) for k in ("database.uuid", "database.secret")}
    assert param(harness, tenant.db, "saasodoo.template_uuid") == old["database.uuid"]
    docs = tenant.render(config={"workers": 0})
    init = tenant.pod(docs).run("odoo-init")
    assert init.returncode == 0, init.stdout + init.stderr
    assert '["identity"]' in init.stdout, init.stdout
    for key, value in old.items():
        assert param(harness, tenant.db, key) not in ("", value), key


def test_the_i_base_path_applies_the_same_fields(
    harness: Harness, started: list[OdooProcess]
) -> None:
    """Today's create path, kept as the fallback: the web pod's --initialize runs `-i base`
    (with --load-language from the values) and the same personalization."""
    tenant = Tenant(harness, "crepe", "owner@crepe.example")
    create_database(harness.pg, tenant.db)
    spec = TenantSpec.parse({"id": tenant.id, "admin_email": tenant.email, **PERSONAL})
    docs = tenant.render(config={"workers": 0}, **personal_values(spec)["odoo"])
    odoo = tenant.pod(docs).boot()
    started.append(odoo)
    assert_personalized(odoo, tenant.db, {"fr_FR"})


def test_an_imported_database_keeps_its_company_and_language(
    harness: Harness, template: tuple[Path, dict[str, str]]
) -> None:
    """A database without the admin marker that is neither new nor a template (an import, a
    hand restore) gets only its admin's credentials from the tenant: the create request's
    company, language, country and time zone are for a new database."""
    tenant = Tenant(harness, "galette", "owner@galette.example")
    harness.pg.admin(f'CREATE DATABASE "{tenant.db}" OWNER odoo TEMPLATE "tplbuild"')
    harness.pg.psql(
        "DELETE FROM ir_config_parameter WHERE key LIKE 'saasodoo.%';"
        " UPDATE res_partner SET name = 'Imported Ltd' WHERE id = (SELECT partner_id FROM"
        " res_company WHERE id = 1); UPDATE res_company SET name = 'Imported Ltd' WHERE id = 1",
        tenant.db,
    )
    spec = TenantSpec.parse({"id": tenant.id, "admin_email": tenant.email, **PERSONAL})
    docs = tenant.render(config={"workers": 0}, **personal_values(spec)["odoo"])
    init = tenant.pod(docs).run("odoo-init")
    assert init.returncode == 0, init.stdout + init.stderr
    assert "SAASODOO-ADMIN-OK []" in init.stdout, init.stdout
    q = harness.pg.psql
    assert q("SELECT name FROM res_company WHERE id = 1", tenant.db).strip() == "Imported Ltd"
    assert q("SELECT count(*) FROM res_lang WHERE active", tenant.db).strip() == "1"
    country = "SELECT p.country_id IS NULL FROM res_company c JOIN res_partner p"
    country += " ON p.id = c.partner_id"
    assert q(country + " WHERE c.id = 1", tenant.db).strip() == "t"  # res.company's is related
    assert q("SELECT login FROM res_users WHERE id = 2", tenant.db).strip() == "chef@tarte.example"


def test_the_web_pod_waits_for_the_template_restore_instead_of_installing_base(
    harness: Harness, template: tuple[Path, dict[str, str]], started: list[OdooProcess]
) -> None:
    """The templated create as the operator runs it: the tenant's web pod (values
    `odoo.dbInit.template.key`) starts beside the restore Job; its odoo-init waits for the
    restore's switch-over, holding no connection to the live database (restore.py refuses
    to switch while a client is connected to it), then personalizes: no `-i base`."""
    shared, identity = template
    tenant = Tenant(harness, "brioche", "owner@brioche.example")
    create_database(harness.pg, tenant.db)
    spec = TenantSpec.parse({"id": tenant.id, "admin_email": tenant.email, **PERSONAL})
    odoo_values = personal_values(spec)["odoo"]
    odoo_values["dbInit"] = {"template": {"key": KEY, "waitSeconds": 120}}
    docs = tenant.render(config={"workers": 0}, **odoo_values)
    tenant.claims[backup_claim(docs)] = shared
    init_command = tenant.pod(docs).container("odoo-init")["command"]
    assert f"--from-template={KEY}" in init_command and "--template-wait=120" in init_command

    with ThreadPoolExecutor(1) as pool:
        waiting = pool.submit(tenant.pod(docs).run, "odoo-init")
        time.sleep(3)  # the init container is waiting when the Job starts
        assert not waiting.done()
        restore_template(tenant, docs)
        init = waiting.result(timeout=300)
    assert init.returncode == 0, init.stdout + init.stderr
    assert f"template {KEY} restored into {tenant.db}" in init.stdout, init.stdout
    assert "-i base" not in init.stdout, init.stdout
    # Odoo's start-up and the password's hash ran while the restore did: the shell started
    # ahead personalizes, and the admin signs in with the password it hashed.
    assert "personalizing with the odoo shell started ahead" in init.stdout, init.stdout
    assert '["language", "company", "country", "password hashed ahead"]' in init.stdout
    assert param(harness, tenant.db, "database.uuid") not in ("", identity["database.uuid"])
    assert param(harness, tenant.db, "saasodoo.admin_initialized") != ""
    odoo = tenant.pod(docs).boot()
    started.append(odoo)
    assert_personalized(odoo, tenant.db, {"en_US", "fr_FR"})


def test_without_the_template_restore_the_web_pod_falls_back_to_i_base(harness: Harness) -> None:
    """The restore never comes (the template was deleted, the Job failed): past
    `waitSeconds` the web pod initializes the database with `-i base`, as without a
    template, and the tenant still gets what it asked for."""
    tenant = Tenant(harness, "far", "owner@far.example")
    create_database(harness.pg, tenant.db)
    docs = tenant.render(config={"workers": 0},
                         dbInit={"template": {"key": KEY, "waitSeconds": 2}})  # fmt: skip
    init = tenant.pod(docs).run("odoo-init")
    assert init.returncode == 0, init.stdout + init.stderr
    assert f"was not restored into {tenant.db} within 2s" in init.stdout, init.stdout
    assert "-i base" in init.stdout, init.stdout
    assert "personalizing with the odoo shell started ahead" in init.stdout, init.stdout
    assert param(harness, tenant.db, "saasodoo.admin_initialized") != ""


def test_a_build_given_the_superuser_runs_as_a_role_of_its_own(harness: Harness) -> None:
    """With PGADMINUSER (saasodoo's build Job gives the chart PostgreSQL's superuser), the
    scratch database is created owned by a role named as it, with a password the build
    makes (passed on in a libpq password file, 0600): the tenant's role cannot connect to a
    template while it is built. The drop removes the database and that role."""
    owner = Tenant(harness, "tplrole", "unused@template.example")
    docs = owner.render(config={"workers": 0})
    scratch = template_scratch(owner.db, KEY)
    build = init_pod(owner, docs, f"--build-template={KEY}")
    tenant_role = build.env(build.container("odoo-init"))["PGUSER"]
    passfile = build.root / "run" / "pgpass"
    admin = {"PGDATABASE": scratch, "PGADMINUSER": "postgres", "PGADMINPASSWORD": "unused",
             "SAASODOO_BUILD_PGPASSFILE": str(passfile)}  # fmt: skip
    built = build.run("odoo-init", admin)
    assert built.returncode == 0, built.stdout + built.stderr
    assert result_of(built)["built"] is True, built.stdout
    assert harness.pg.psql(
        f"SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = '{scratch}'"
    ).strip() == scratch  # fmt: skip
    assert harness.pg.psql(
        f"SELECT rolsuper OR rolcreatedb OR rolcreaterole FROM pg_roles WHERE rolname = '{scratch}'"
    ).strip() == "f"  # fmt: skip
    assert param(harness, scratch, "saasodoo.template") == KEY
    # Only its SCRAM verifier reached the server (never the password, whatever it logs).
    stored = harness.pg.psql(f"SELECT rolpassword FROM pg_authid WHERE rolname = '{scratch}'")
    assert stored.startswith("SCRAM-SHA-256$"), stored
    with pytest.raises(AssertionError, match="permission denied for database"):
        harness.pg.psql("SELECT 1", scratch, user=tenant_role)
    assert passfile.stat().st_mode & 0o777 == 0o600
    assert passfile.read_text().startswith(f"*:*:*:{scratch}:")
    password = passfile.read_text().strip().split(":")[-1]
    assert password not in built.stdout + built.stderr

    # The build of an existing template as the same role again: nothing to do (a new password).
    again = init_pod(owner, docs, f"--build-template={KEY}").run("odoo-init", admin)
    assert again.returncode == 0 and result_of(again)["built"] is False, again.stdout

    # The drop, as the Job's last container: the build's role through the password file.
    drop = init_pod(owner, docs, "--drop-template")
    container = drop.container("odoo-init")
    container["env"] = [e for e in container["env"] if e["name"] != "PGPASSWORD"]
    as_role = {**admin, "PGUSER": scratch, "PGPASSFILE": str(passfile)}
    dropped = drop.run("odoo-init", as_role)
    assert dropped.returncode == 0, dropped.stdout + dropped.stderr
    assert result_of(dropped)["dropped"] is True
    gone = f"SELECT count(*) FROM pg_database WHERE datname = '{scratch}'"
    assert harness.pg.psql(gone).strip() == "0"
    assert harness.pg.psql(f"SELECT count(*) FROM pg_roles WHERE rolname = '{scratch}'").strip() \
        == "0"  # fmt: skip

    # The cleanup after a build that failed before its database existed (the role made,
    # the pod gone with its password file): the drop as the superuser alone drops the role.
    harness.pg.psql(f'CREATE ROLE "{scratch}" LOGIN')
    cleanup = init_pod(owner, docs, "--drop-template")
    container = cleanup.container("odoo-init")
    container["env"] = [e for e in container["env"] if e["name"] != "PGPASSWORD"]
    cleaned = cleanup.run("odoo-init", {k: v for k, v in admin.items()
                                        if k != "SAASODOO_BUILD_PGPASSFILE"})  # fmt: skip
    assert cleaned.returncode == 0, cleaned.stdout + cleaned.stderr
    assert harness.pg.psql(f"SELECT count(*) FROM pg_roles WHERE rolname = '{scratch}'").strip() \
        == "0"  # fmt: skip
