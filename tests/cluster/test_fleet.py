"""Fleet operations against the cluster: no-op ensure, canary upgrades with a failure
threshold, GitOps export (helm 4; the per-tenant paths run with both helms in test_reconcile)."""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from saasodoo.cli_fleet import export_cmd
from saasodoo.core.spec import TenantSpec
from saasodoo.errors import NotFound
from saasodoo.fleet import Fleet, FleetTarget, Outcome, export
from saasodoo.settings import Settings
from saasodoo.tenants import Tenants
from tests.support import Cluster

pytestmark = pytest.mark.cluster

IDS = [f"flt-{i}" for i in range(4)]
#: An Odoo pod that can never be scheduled (more CPU than any node has): upgrades time out.
UNSCHEDULABLE = {
    "odoo": {"resources": {"requests": {"cpu": "500"}, "limits": {"cpu": "500"}}},
    "quota": {"hard": {"requests.cpu": "2000", "limits.cpu": "2000"}},
}


def settings(kube: Cluster) -> Settings:
    return Settings(
        kubeconfig=kube.kubeconfig,
        helm_binary=str(kube.tools.helm(4)),
        helm_timeout="5m",
        base_domain="odoo.test",
    )


@pytest.fixture(scope="module")
def fleet_tenants(kube: Cluster) -> Iterator[list[str]]:
    tenants = Tenants(settings(kube))

    async def delete_all(wait: bool) -> None:
        async def one(tid: str) -> None:
            try:
                await tenants.delete(tid, final_backup=False, wait=wait)
            except NotFound:
                pass

        await asyncio.gather(*(one(t) for t in IDS))

    async def create_all() -> None:
        specs = [TenantSpec.parse({"id": t, "admin_email": f"a@{t}.example"}) for t in IDS]
        await asyncio.gather(*(tenants.create(s) for s in specs))

    asyncio.run(delete_all(True))
    asyncio.run(create_all())
    yield IDS
    asyncio.run(delete_all(False))


def test_noop_fleet_ensure_makes_no_helm_call_and_constant_requests(
    kube: Cluster, fleet_tenants: list[str]
) -> None:
    tenants = Tenants(settings(kube))
    fleet = Fleet(tenants)
    costs = []
    for n in (2, 4):
        helm_before, requests_before = tenants.helm.calls, tenants.kube.requests
        summary = asyncio.run(fleet.ensure_all(fleet_tenants[:n]))
        assert [r.outcome for r in summary.results] == [Outcome.UNCHANGED] * n, summary
        costs.append((tenants.helm.calls - helm_before, tenants.kube.requests - requests_before))
    assert costs == [(0, 2), (0, 2)]  # list namespaces + list release heads, whatever N


def test_fleet_upgrade_canary_threshold_and_success(
    kube: Cluster, fleet_tenants: list[str]
) -> None:
    tenants = Tenants(settings(kube))
    fleet = Fleet(tenants)
    bad = FleetTarget(overrides=UNSCHEDULABLE)
    seen: list[str] = []

    # The canary fails: it is rolled back and nobody else is touched.
    summary = asyncio.run(
        fleet.upgrade(
            bad,
            fleet_tenants,
            canaries=1,
            timeout="10s",
            on_result=lambda r: seen.append(r.tenant_id),
        )
    )
    outcomes = {r.tenant_id: r.outcome for r in summary.results}
    assert outcomes == {
        "flt-0": Outcome.FAILED,
        "flt-1": Outcome.SKIPPED,
        "flt-2": Outcome.SKIPPED,
        "flt-3": Outcome.SKIPPED,
    }
    assert summary.stopped == "canary flt-0 failed"
    assert sorted(seen) == fleet_tenants  # progress saw every tenant
    failed = summary.results[0]
    assert "upgrade failed" in failed.detail and "rolled-back" in failed.detail
    assert asyncio.run(tenants.get("flt-0")).spec.overrides == {}  # keeps its previous spec

    # No canary, one failure allowed, one at a time: two fail, then the rest is skipped.
    summary = asyncio.run(
        fleet.upgrade(bad, fleet_tenants, canaries=0, max_failures=1, concurrency=1, timeout="10s")
    )
    counts = summary.to_dict()["counts"]
    assert counts == {"failed": 2, "skipped": 2}, summary.to_dict()
    assert summary.stopped == "2 failures, more than the 1 allowed"
    assert not summary.ok

    # A good target: the canary, then the others, two at a time; specs recorded.
    good = FleetTarget(odoo_version="19.0")
    summary = asyncio.run(fleet.upgrade(good, fleet_tenants, canaries=1, concurrency=2))
    assert summary.ok and summary.count(Outcome.UPGRADED) == 4, summary.to_dict()
    for tid in fleet_tenants:
        tenant = asyncio.run(tenants.get(tid))
        assert tenant.spec.odoo_version == "19.0" and tenant.status.phase.value == "ready"
    # Again: already there, nothing upgraded; and ensure finds everything in sync.
    again = asyncio.run(fleet.upgrade(good, fleet_tenants))
    assert again.count(Outcome.UNCHANGED) == 4, again.to_dict()
    calls = tenants.helm.calls
    ensure = asyncio.run(fleet.ensure_all(fleet_tenants))
    assert ensure.count(Outcome.UNCHANGED) == 4 and tenants.helm.calls == calls


def test_export_values_and_flux_helmrelease(
    kube: Cluster, fleet_tenants: list[str], tmp_path: Path
) -> None:
    tenants = Tenants(settings(kube))
    tid = fleet_tenants[0]
    files = asyncio.run(export(tenants, tid, flux=True))
    assert sorted(files) == [f"{tid}.helmrelease.yaml", f"{tid}.values.yaml"]
    values = yaml.safe_load(files[f"{tid}.values.yaml"])
    deployed = json.loads(
        kube.helm(4, "get", "values", tid, "-n", f"tenant-{tid}", "-o", "json").stdout
    )
    assert values == deployed  # exactly what saasodoo deployed
    release = yaml.safe_load(files[f"{tid}.helmrelease.yaml"])
    assert release["apiVersion"] == "helm.toolkit.fluxcd.io/v2"
    assert release["kind"] == "HelmRelease"
    assert release["metadata"] == {
        "name": tid,
        "namespace": f"tenant-{tid}",
        "labels": {"saasodoo.dev/tenant": tid, "app.kubernetes.io/managed-by": "flux"},
    }
    spec = release["spec"]
    assert spec["releaseName"] == tid and spec["storageNamespace"] == f"tenant-{tid}"
    assert spec["chart"]["spec"]["chart"] == "./charts/odoo-tenant"
    assert spec["chart"]["spec"]["sourceRef"]["kind"] == "GitRepository"
    assert spec["values"] == deployed
    secret = kube.core.read_namespaced_secret("saasodoo-admin", f"tenant-{tid}")
    password = base64.b64decode(secret.data["admin-password"]).decode()
    assert all(password not in text for text in files.values())

    # The CLI writes the same files.
    result = CliRunner().invoke(
        export_cmd,
        [tid, "--flux", "-d", str(tmp_path)],
        obj=settings(kube),
    )
    assert result.exit_code == 0, result.output
    written = tmp_path / f"{tid}.helmrelease.yaml"
    assert yaml.safe_load(written.read_text()) == release
