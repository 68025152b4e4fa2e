"""Issue #22 point 2 with the real Odoo 18: the chart's `helm test` container
(files/signin-check.py, run as rendered) passes on a healthy tenant and fails, naming the step
and Odoo's own error, when signed-in requests fail while /web/health still answers 200 (a
column Odoo reads at sign-in is gone, the kind of fault Odoo of another series meets on a
database it did not migrate: odoo/odoo#27446)."""

from __future__ import annotations

import httpx
import pytest

from tests.chart.helpers import one
from tests.odoo.conftest import InitRuns
from tests.odoo.harness import ADMIN_PASSWORD

pytestmark = pytest.mark.odoo


def test_the_signed_in_check_passes_then_fails_while_health_answers(
    initialized: InitRuns,
) -> None:
    tenant = initialized.tenant
    docs = tenant.render(config={"workers": 2})
    odoo = tenant.pod(docs).boot()
    try:
        check = tenant.local_pod(docs, one(docs, "Job", f"{tenant.id}-odoo-tenant-test"), "test")
        env = {"ODOO_URL": odoo.url, "CHECK_TIMEOUT": "60"}
        ok = check.run("signin", env, timeout=300)
        assert ok.returncode == 0, ok.stdout + ok.stderr
        assert f"signed in as {tenant.email}" in ok.stdout and "/web 200" in ok.stdout

        pg = tenant.harness.pg
        pg.psql("ALTER TABLE res_users RENAME COLUMN login TO login_gone", tenant.db)
        try:
            assert httpx.get(odoo.url + "/web/health", timeout=30).status_code == 200
            failed = check.run("signin", env, timeout=300)
        finally:
            pg.psql("ALTER TABLE res_users RENAME COLUMN login_gone TO login", tenant.db)
        assert failed.returncode == 1, failed.stdout + failed.stderr
        assert f"signed-in check failed: sign-in as {tenant.email}" in failed.stderr
        assert "login" in failed.stderr and "UndefinedColumn" in failed.stderr, failed.stderr
        assert ADMIN_PASSWORD not in failed.stderr + failed.stdout + ok.stdout
    finally:
        odoo.stop()
