"""Issue #22 point 2 with the real Odoo 18: the chart's `helm test` container
(files/signin-check.py, run as rendered) passes on a healthy tenant and fails, naming the step
and Odoo's own error, when signed-in requests fail while /web/health still answers 200 (a
column Odoo reads at sign-in is gone, the kind of fault Odoo of another series meets on a
database it did not migrate: odoo/odoo#27446). Credentials the admin changed in Odoo are no
failure: the check then proves /web/login renders from the database."""

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

        # The admin's password changed in Odoo (a customer's own): Odoo refuses the Secret's.
        # No session can be had; the check proves /web/login renders from the database and
        # passes, saying so (an update must not be reverted for a customer's new password).
        changed = check.run("signin", {**env, "ODOO_PASSWORD": "not-the-admins-any-more"},
                            timeout=300)  # fmt: skip
        assert changed.returncode == 0, changed.stdout + changed.stderr
        assert "were refused (changed in Odoo): not signed in; /web/login 200" in changed.stdout

        pg = tenant.harness.pg
        pg.psql("ALTER TABLE res_users RENAME COLUMN login TO login_gone", tenant.db)
        try:
            assert httpx.get(odoo.url + "/web/health", timeout=30).status_code == 200
            failed = check.run("signin", env, timeout=300)
            refused = check.run("signin", {**env, "ODOO_PASSWORD": "wrong"}, timeout=300)
        finally:
            pg.psql("ALTER TABLE res_users RENAME COLUMN login_gone TO login", tenant.db)
        # A broken schema is no refusal of credentials: it fails, whatever the password.
        assert refused.returncode == 1, refused.stdout + refused.stderr
        assert failed.returncode == 1, failed.stdout + failed.stderr
        assert f"signed-in check failed: sign-in as {tenant.email}" in failed.stderr
        assert "login" in failed.stderr and "UndefinedColumn" in failed.stderr, failed.stderr
        assert ADMIN_PASSWORD not in failed.stderr + failed.stdout + ok.stdout
    finally:
        odoo.stop()
