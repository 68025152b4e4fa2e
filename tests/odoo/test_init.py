"""A new tenant database, initialized exactly as the Odoo pod does it: the rendered `odoo-init`
init container (files/odoo-init.py from the scripts ConfigMap, with its rendered arguments and
environment) running the real Odoo 18 server."""

from __future__ import annotations

import time

import pytest

from tests.backups.helpers import PgServer
from tests.odoo.conftest import InitRuns
from tests.odoo.harness import ADMIN_PASSWORD, RpcError, rpc

pytestmark = pytest.mark.odoo

#: Rows ever written to each table of the database (PostgreSQL's cumulative statistics).
WRITES = (
    "SELECT relname, n_tup_ins, n_tup_upd, n_tup_del FROM pg_stat_user_tables"
    " WHERE n_tup_ins + n_tup_upd + n_tup_del > 0 ORDER BY relname"
)


def settled_writes(pg: PgServer, db: str) -> dict[str, str]:
    """Per table, `inserted updated deleted` rows (WRITES) once every other backend of DB has
    exited and flushed its statistics.

    A backend flushes its pending counters when it exits (and at most every second while
    it runs), so a read taken while the previous run's connections are still closing
    misses their last rows and the next read "finds" a write. Bounded: 30 s."""
    others = (
        f"SELECT count(*) FROM pg_stat_activity WHERE datname = '{db}' AND pid <> pg_backend_pid()"
    )
    deadline = time.monotonic() + 30
    last = None
    while time.monotonic() < deadline:
        if pg.psql(others, db).strip() == "0":
            time.sleep(0.6)  # flushed to the cumulative views at most every 500 ms
            now = pg.psql(WRITES, db)
            if now == last:
                return {t: " ".join(n) for t, *n in (r.split("|") for r in now.splitlines())}
            last = now
        else:
            time.sleep(0.2)
    raise AssertionError(f"the statistics of {db} did not settle in 30 s (last {last!r})")


def outputs(runs: InitRuns) -> str:
    return "\n\n".join(f"rc={r.returncode}\n{r.stdout}\n{r.stderr}" for r in runs.results)


def test_three_concurrent_pods_initialize_the_database_once(initialized: InitRuns) -> None:
    runs = initialized
    assert all(r.returncode == 0 for r in runs.results), outputs(runs)
    installs = [r for r in runs.results if "initializing database acme" in r.stdout]
    admin_sets = [r for r in runs.results if "setting the admin user's login" in r.stdout]
    noops = [r for r in runs.results if "is initialized: nothing to do" in r.stdout]
    assert (len(installs), len(admin_sets), len(noops)) == (1, 1, 2), outputs(runs)
    pg = runs.tenant.harness.pg
    db = runs.tenant.db
    assert pg.psql("SELECT state FROM ir_module_module WHERE name = 'base'", db).strip() == (
        "installed"
    )
    marker = "SELECT count(*) FROM ir_config_parameter WHERE key = 'saasodoo.admin_initialized'"
    assert pg.psql(marker, db).strip() == "1"
    # web.base.url and report.url from the values (the Ingress URL, the in-cluster Service)
    assert runs.params == {
        "web.base.url": "https://acme.example.com",
        "report.url": "http://acme-odoo-tenant:8069",
    }
    # --without-demo=all (the chart's default demoData: false) reached Odoo
    assert pg.psql("SELECT count(*) FROM ir_module_module WHERE demo", db).strip() == "0"


def test_a_second_run_is_a_no_op(initialized: InitRuns) -> None:
    """A start of the same pod over an initialized database writes nothing. A first run puts
    back what other renders of this shared database left (tests/odoo/test_config.py's prefork
    pods pin report.url to the gevent port 8072); the second one is measured."""
    tenant = initialized.tenant
    pg = tenant.harness.pg
    first = tenant.pod(initialized.docs).run("odoo-init")
    assert first.returncode == 0, first.stdout + first.stderr
    tables = settled_writes(pg, tenant.db)
    start = time.monotonic()
    result = tenant.pod(initialized.docs).run("odoo-init")
    seconds = time.monotonic() - start
    assert result.returncode == 0, result.stdout + result.stderr
    assert "is initialized: nothing to do" in result.stdout
    assert "running:" not in result.stdout  # no Odoo command at all
    # A generous bound (no Odoo is started, asserted above); speed targets live in make bench.
    assert seconds < 60, f"a no-op start-up took {seconds:.1f}s"
    after = settled_writes(pg, tenant.db)
    changed = {t: (tables.get(t), n) for t, n in after.items() if tables.get(t) != n}
    assert not changed, f"the second run wrote to the database: {changed}\n{result.stdout}"


def test_every_start_pins_report_url_to_the_pods_own_address(initialized: InitRuns) -> None:
    """A database restored from another tenant (or imported, or initialized by an older chart)
    carries a report.url this pod may not reach: wkhtmltopdf would then print PDFs without
    their pages' assets or time out. Each start of a web pod sets it back (#22, point 11)."""
    tenant = initialized.tenant
    pg = tenant.harness.pg
    query = "SELECT value FROM ir_config_parameter WHERE key = 'report.url'"
    pg.psql(
        "UPDATE ir_config_parameter SET value = 'http://other-odoo-tenant.tenant-other:8069'"
        " WHERE key = 'report.url'",
        tenant.db,
    )
    result = tenant.pod(initialized.docs).run("odoo-init")
    assert result.returncode == 0, result.stdout + result.stderr
    assert pg.psql(query, tenant.db).strip() == "http://acme-odoo-tenant:8069", result.stdout
    assert "report.url set to http://acme-odoo-tenant:8069" in result.stdout
    pg.psql("DELETE FROM ir_config_parameter WHERE key = 'report.url'", tenant.db)
    result = tenant.pod(initialized.docs).run("odoo-init")
    assert result.returncode == 0, result.stdout + result.stderr
    assert pg.psql(query, tenant.db).strip() == "http://acme-odoo-tenant:8069", result.stdout


def test_the_admin_from_values_and_secret_logs_in_over_json_rpc(
    initialized: InitRuns, started: list
) -> None:
    tenant = initialized.tenant
    odoo = tenant.pod(initialized.docs).boot()
    started.append(odoo)
    with rpc(odoo.url) as client:
        uid = client.login(tenant.db, tenant.email, ADMIN_PASSWORD)
        (user,) = client.model("res.users", "read", [uid], ["login", "email"])
        assert (user["login"], user["email"]) == (tenant.email, tenant.email)
        groups = client.model("res.users", "has_group", [uid], "base.group_system")
        assert groups is True
    for login, password in ((tenant.email, "admin"), ("admin", "admin"), ("admin", ADMIN_PASSWORD)):
        with rpc(odoo.url) as client, pytest.raises(RpcError, match="AccessDenied"):
            client.login(tenant.db, login, password)
