"""`tenant status|list` speak conditions in both modes (#23 points 4 and 5): with the operator
they read an OdooTenant; with `--local` (no operator) the pure core computes the same
conditions from the namespace, the release and the workloads, printed with the same columns
and the same `-o json` keys, so a script reads both alike."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest
from click.testing import CliRunner

import saasodoo.cli as cli_module
import saasodoo.odootenants as odootenants
from saasodoo.cli import cli
from saasodoo.core.spec import TenantSpec
from saasodoo.core.status import Observation, ReleaseInfo, Workload, classify
from saasodoo.odootenants import TenantView
from saasodoo.tenants import Tenant

pytestmark = pytest.mark.unit

NOW = datetime(2026, 12, 7, 9, tzinfo=UTC)
SPEC = TenantSpec.parse({"id": "acme", "admin_email": "admin@acme.example"})
ODOO = Workload("Deployment", "acme-odoo", "odoo", desired=1, ready=1, updated=1)


def local_tenant(workloads: tuple[Workload, ...] = (ODOO,)) -> Tenant:
    release = ReleaseInfo(2, "deployed", NOW)
    status = classify(Observation("acme", "Active", release, workloads, saasodoo_revisions=(2,)),
                      NOW)  # fmt: skip
    return Tenant(SPEC, status, "https://acme.odoo.test", owner="u1")


def resource() -> dict[str, Any]:
    ready = {"type": "Ready", "status": "True", "observedGeneration": 2, "reason":
             "UpgradeSucceeded", "lastTransitionTime": "2026-12-07T09:00:00Z",
             "message": "Helm upgrade succeeded (revision 2, chart 0.1.0)"}  # fmt: skip
    return {
        "metadata": {"name": "acme", "generation": 2},
        "spec": {"plan": "starter", "odooVersion": "18.0", "adminEmail": "admin@acme.example"},
        "status": {"observedGeneration": 2, "conditions": [ready], "revision": 2,
                   "url": "https://acme.odoo.test"},
    }  # fmt: skip


def test_a_local_tenant_has_the_keys_of_an_odootenant_view() -> None:
    local = local_tenant().to_dict()
    operator = TenantView.of(resource()).to_dict()
    assert list(local) == list(operator)
    same = ("id", "plan", "odoo_version", "ready", "reason", "status", "revision", "url")
    assert {k: local[k] for k in same} == {k: operator[k] for k in same}
    assert local["message"] == "Helm upgrade succeeded (revision 2)"
    assert (local["generation"], local["observed_generation"]) == (None, None)  # no object
    types = {c["type"] for c in local["conditions"]}
    assert types == {"Ready", "Released", "Drifted"}


def test_a_local_tenant_starting_reads_as_reconciling() -> None:
    starting = Workload("Deployment", "acme-odoo", "odoo", desired=1, ready=0, updated=1)
    d = local_tenant((starting,)).to_dict()
    assert (d["ready"], d["reason"], d["status"]) == ("Unknown", "Progressing", "InProgress")
    assert d["message"].endswith("waiting for the workloads to become ready: "
                                 "deployment/acme-odoo 0/1 ready")  # fmt: skip


class FakeTenants:
    def list_tenants(self) -> list[Tenant]:
        return [local_tenant()]

    async def get(self, tenant_id: str) -> Tenant:
        return local_tenant()


class FakeObjects:
    def list(self) -> list[TenantView]:
        return [TenantView.of(resource())]

    def summaries(self) -> list[TenantView]:
        return self.list()

    def get(self, tenant_id: str) -> TenantView:
        return TenantView.of(resource())


@pytest.fixture
def modes(monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    """Run a tenant command in both modes: (--local's result, the operator mode's)."""
    monkeypatch.setattr(cli_module, "tenants_of", lambda ctx: FakeTenants())
    monkeypatch.setattr(odootenants, "OdooTenants", lambda settings: FakeObjects())
    monkeypatch.setenv("SAASODOO_OPERATOR", "1")  # --local: this process, even so
    runner = CliRunner()

    def both(*args: str) -> tuple[Any, Any]:
        local = runner.invoke(cli, ["tenant", "--local", *args], catch_exceptions=False)
        operator = runner.invoke(cli, ["tenant", *args], catch_exceptions=False)
        assert local.exit_code == operator.exit_code == 0, (local.output, operator.output)
        return local, operator

    return both


def test_status_and_list_json_have_the_same_keys_in_both_modes(modes) -> None:  # type: ignore[no-untyped-def]
    local, operator = modes("status", "acme", "-o", "json")
    assert list(json.loads(local.stdout)) == list(json.loads(operator.stdout))
    local, operator = modes("list", "-o", "json")
    (one,), (other,) = json.loads(local.stdout), json.loads(operator.stdout)
    assert list(one) == list(other) and one["ready"] == other["ready"] == "True"


def test_status_and_list_tables_have_the_same_columns_in_both_modes(modes) -> None:  # type: ignore[no-untyped-def]
    local, operator = modes("list")
    header = ["TENANT", "READY", "STATUS", "PLAN", "ODOO", "REV", "URL", "MESSAGE"]
    assert local.stdout.splitlines()[0].split() == header, local.stdout
    assert operator.stdout.splitlines()[0] == local.stdout.splitlines()[0]
    assert local.stdout.splitlines()[1].split()[:3] == ["acme", "True", "Current"]
    local, operator = modes("status", "acme")
    rows = [line.split()[0] for line in local.stdout.splitlines()]
    assert rows == [line.split()[0] for line in operator.stdout.splitlines()]
    assert rows[:6] == ["id", "url", "status", "ready", "reason", "message"]
