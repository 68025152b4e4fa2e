"""A staging copy's database neutralized as the operator will do it: the rendered `odoo-init`
container of the web pod run with `--neutralize` instead of `--initialize` (files/odoo-init.py,
Odoo's own `odoo neutralize`, then the copy's own admin and web.base.url), on the real Odoo 18
server, over a database that looks like production (an active mail server, every cron on, the
source's admin password and URL)."""

from __future__ import annotations

import copy
import json
import subprocess
from typing import Any

import pytest

from tests.odoo.harness import ADMIN_PASSWORD, Harness, LocalPod, RpcError, Tenant, create_database
from tests.odoo.harness import rpc as rpc_session
from tests.odoo.test_init import settled_writes

pytestmark = pytest.mark.odoo

COPY_EMAIL = "tester@copy.example"
COPY_PASSWORD = "C0py-only-pässword"
#: The copy's Secret and values, as the operator gives them to the Job.
COPY_ENV = {"ODOO_ADMIN_EMAIL": COPY_EMAIL, "ODOO_ADMIN_PASSWORD": COPY_PASSWORD}


def init_pod(tenant: Tenant, docs: list[dict[str, Any]], *mode: str) -> LocalPod:
    """The web pod with its odoo-init container's --initialize replaced by ``mode``:
    ``--neutralize`` is the Job the operator makes from the web Deployment's template;
    ``--initialize --copy`` what the chart renders for a copy (tests/chart/test_copy.py)."""
    pod = tenant.pod(copy.deepcopy(docs))
    init = pod.container("odoo-init")
    at = init["command"].index("--initialize")
    init["command"][at : at + 1] = list(mode)
    return pod


def neutralize_pod(tenant: Tenant, docs: list[dict[str, Any]]) -> LocalPod:
    return init_pod(tenant, docs, "--neutralize")


def result_of(run: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    lines = [line for line in run.stdout.splitlines() if line.startswith("RESULT ")]
    assert lines, run.stdout + run.stderr
    report: dict[str, Any] = json.loads(lines[-1].removeprefix("RESULT "))
    return report


@pytest.fixture(scope="module")
def production(harness: Harness) -> tuple[Tenant, list[dict[str, Any]]]:
    """Tenant `umbra`, initialized by its pod, then made to look like a production database
    restored into a copy: a real mail server, every cron active, its own URL."""
    tenant = Tenant(harness, "umbra", "owner@umbra.example")
    create_database(harness.pg, tenant.db)
    docs = tenant.render(config={"workers": 0})
    init = tenant.pod(docs).run("odoo-init")
    assert init.returncode == 0, init.stdout + init.stderr
    harness.pg.psql(
        "INSERT INTO ir_mail_server (name, smtp_host, smtp_port, smtp_encryption, active,"
        " smtp_authentication) VALUES ('production', 'smtp.umbra.example', 587, 'starttls',"
        " true, 'login');"
        " UPDATE ir_cron SET active = true;"
        " UPDATE ir_config_parameter SET value = 'https://erp.umbra.example'"
        " WHERE key = 'web.base.url'",
        tenant.db,
    )
    return tenant, docs


def q(tenant: Tenant, sql: str) -> str:
    return tenant.harness.pg.psql(sql, tenant.db).strip()


def test_neutralize_a_copy_then_a_second_run_changes_nothing(
    production: tuple[Tenant, list[dict[str, Any]]], started: list
) -> None:
    tenant, docs = production
    assert q(tenant, "SELECT count(*) FROM ir_cron WHERE active") != "1"
    first = neutralize_pod(tenant, docs).run("odoo-init", COPY_ENV)
    assert first.returncode == 0, first.stdout + first.stderr
    report = result_of(first)
    assert report == {"ok": True, "database": "umbra", "neutralized": True, "admin": True,
                      "password": True, "base_url": True}, first.stdout  # fmt: skip
    assert "running: odoo neutralize" in first.stdout

    # Odoo's neutralization: the dummy mail server only, the autovacuum only, the flag, the banner.
    assert q(tenant, "SELECT name, smtp_host FROM ir_mail_server WHERE active") == (
        "neutralization - disable emails|invalid"
    )
    assert q(tenant, "SELECT d.name FROM ir_cron c JOIN ir_model_data d ON d.res_id = c.id"
                     " AND d.model = 'ir.cron' WHERE c.active") == "autovacuum_job"  # fmt: skip
    assert q(tenant, "SELECT value FROM ir_config_parameter"
                     " WHERE key = 'database.is_neutralized'") == "true"  # fmt: skip
    assert q(tenant, "SELECT active FROM ir_ui_view WHERE key = 'web.neutralize_banner'") == "t"
    # The copy's own URL and the marker on its identity.
    assert q(tenant, "SELECT value FROM ir_config_parameter WHERE key = 'web.base.url'") == (
        "https://umbra.example.com"
    )
    param = "SELECT value FROM ir_config_parameter WHERE key = '{}'"
    assert q(tenant, param.format("saasodoo.neutralized")) == q(
        tenant, param.format("database.uuid")
    )

    # Again: only read, no Odoo command, no row written.
    before = settled_writes(tenant.harness.pg, tenant.db)
    second = neutralize_pod(tenant, docs).run("odoo-init", COPY_ENV)
    assert second.returncode == 0, second.stdout + second.stderr
    assert "is neutralized: nothing to do" in second.stdout
    assert "running:" not in second.stdout
    assert result_of(second) == {"ok": True, "database": "umbra", "neutralized": False,
                                 "admin": False, "base_url": False}  # fmt: skip
    after = settled_writes(tenant.harness.pg, tenant.db)
    changed = {t: (before.get(t), n) for t, n in after.items() if before.get(t) != n}
    assert not changed, f"the second run wrote to the database: {changed}\n{second.stdout}"

    # The copy's admin signs in with the copy's password only.
    odoo = tenant.pod(docs).boot()
    started.append(odoo)
    with rpc_session(odoo.url) as client:
        uid = client.login(tenant.db, COPY_EMAIL, COPY_PASSWORD)
        (user,) = client.model("res.users", "read", [uid], ["login", "email"])
        assert (user["login"], user["email"]) == (COPY_EMAIL, COPY_EMAIL)
    for login, password in ((tenant.email, ADMIN_PASSWORD), (COPY_EMAIL, ADMIN_PASSWORD)):
        with rpc_session(odoo.url) as client, pytest.raises(RpcError, match="AccessDenied"):
            client.login(tenant.db, login, password)


def test_a_copy_s_pods_neutralize_a_new_identity_at_start_once(
    production: tuple[Tenant, list[dict[str, Any]]],
) -> None:
    """odoo-init --copy: the web pod neutralizes a database that got a new identity since it
    was (a restore, a refresh), the cron pod waits for that; a later start leaves a copy
    neutralized as itself alone, even with a mail server someone turned back on."""
    tenant, docs = production
    pg = tenant.harness.pg
    renewed = (
        "UPDATE ir_config_parameter SET value = gen_random_uuid()::text WHERE key = 'database.uuid'"
    )
    pg.psql(renewed + "; UPDATE ir_mail_server SET active = true WHERE name = 'production'",
            tenant.db)  # fmt: skip
    waiting = init_pod(tenant, docs, "--wait", "--copy")
    command = waiting.container("odoo-init")["command"]
    command[:] = [("--timeout=3" if a.startswith("--timeout=") else a) for a in command]
    refused = waiting.run("odoo-init")
    assert refused.returncode == 1 and "not neutralized after 3s" in refused.stdout, refused.stdout

    start = init_pod(tenant, docs, "--initialize", "--copy").run("odoo-init", COPY_ENV)
    assert start.returncode == 0, start.stdout + start.stderr
    assert "is initialized: nothing to do" in start.stdout  # the source's admin marker
    assert result_of(start)["neutralized"] is True, start.stdout
    assert (
        q(tenant, "SELECT count(*) FROM ir_mail_server WHERE active AND name = 'production'") == "0"
    )
    assert waiting.run("odoo-init").returncode == 0

    pg.psql("UPDATE ir_mail_server SET active = true WHERE name = 'production'", tenant.db)
    again = init_pod(tenant, docs, "--initialize", "--copy").run("odoo-init", COPY_ENV)
    assert again.returncode == 0, again.stdout + again.stderr
    assert "was neutralized as this copy: nothing to do" in again.stdout
    assert "running: odoo neutralize" not in again.stdout
    assert (
        q(tenant, "SELECT count(*) FROM ir_mail_server WHERE active AND name = 'production'") == "1"
    )
