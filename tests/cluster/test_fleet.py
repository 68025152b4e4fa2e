"""Fleet operations against the cluster: no-op ensure, canary upgrades with a failure
threshold, GitOps export (helm 4; the per-tenant paths run with both helms in test_reconcile)."""

from __future__ import annotations

import asyncio
import base64
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from saasodoo.adapters.resources import apply_crd
from saasodoo.cli.fleet import export_cmd
from saasodoo.context import Context
from saasodoo.core.crd import crd_manifest
from saasodoo.core.spec import TenantSpec
from saasodoo.errors import NotFound
from saasodoo.fleet import CANARY_LABEL, Fleet, FleetSummary, FleetTarget
from saasodoo.gitops import export
from saasodoo.reconciler import EnsureResult, Outcome
from saasodoo.settings import Settings
from saasodoo.tenants import Tenants
from tests.support import ROOT, Cluster

pytestmark = pytest.mark.cluster

IDS = [f"flt-{i}" for i in range(10)]
#: An Odoo pod that can never be scheduled (more CPU than any node has): upgrades time out.
UNSCHEDULABLE = {
    "odoo": {"resources": {"requests": {"cpu": "500"}, "limits": {"cpu": "500"}}},
    "quota": {"hard": {"requests.cpu": "2000", "limits.cpu": "2000"}},
}
#: The tenant made to fail: an admission policy (as a cluster's policy engine might) refuses
#: its Odoo Deployment on the new rollout.
BAD = "flt-6"
#: A rollout of every Odoo pod that changes no Odoo code (a new image is refused without the
#: operator: tests/unit/test_fleet.py; through the operator it runs the update's steps).
ROLLOUT = "2025-10-01"
NEW_BUILD = FleetTarget(overrides={"odoo": {"podAnnotations": {"saasodoo.dev/rollout": ROLLOUT}}})


def settings(kube: Cluster) -> Settings:
    return Settings(
        kubeconfig=kube.kubeconfig,
        helm_binary=str(kube.tools.helm(4)),
        helm_timeout="5m",
        base_domain="odoo.test",
    )


@pytest.fixture(scope="module")
def fleet_tenants(kube: Cluster) -> Iterator[list[str]]:
    tenants = Tenants(Context(settings(kube)))

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
    tenants = Tenants(Context(settings(kube)))
    fleet = Fleet(tenants.ctx)
    costs = []
    for n in (5, 10):
        helm_before, requests_before = tenants.ctx.helm.calls, tenants.ctx.kube.requests
        summary = asyncio.run(fleet.ensure_all(fleet_tenants[:n]))
        assert [r.outcome for r in summary.results] == [Outcome.UNCHANGED] * n, summary
        costs.append(
            (tenants.ctx.helm.calls - helm_before, tenants.ctx.kube.requests - requests_before)
        )
    # list namespaces + list OdooTenants (their records) + list release heads, whatever N
    assert costs == [(0, 3), (0, 3)]


@pytest.fixture
def refuse_new_build_for_bad(kube: Cluster) -> Iterator[None]:
    """A ValidatingAdmissionPolicy refusing Deployments of the new build in BAD's namespace only."""
    api = client.AdmissionregistrationV1Api(kube.api)
    name = "test-refuse-new-build"
    policy = {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "ValidatingAdmissionPolicy",
        "metadata": {"name": name},
        "spec": {
            "failurePolicy": "Fail",
            "matchConstraints": {
                "resourceRules": [
                    {
                        "apiGroups": ["apps"],
                        "apiVersions": ["v1"],
                        "operations": ["CREATE", "UPDATE"],
                        "resources": ["deployments"],
                    }
                ]
            },  # fmt: skip
            "validations": [
                {
                    "expression": "!has(object.spec.template.metadata.annotations) || "
                    "object.spec.template.metadata.annotations.all("
                    f"k, k != 'saasodoo.dev/rollout' || object.spec.template.metadata"
                    f".annotations[k] != '{ROLLOUT}')",
                    "message": f"rollout {ROLLOUT} is not allowed here (test policy)",
                }
            ],  # fmt: skip
        },
    }
    binding = {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "ValidatingAdmissionPolicyBinding",
        "metadata": {"name": name},
        "spec": {
            "policyName": name,
            "validationActions": ["Deny"],
            "matchResources": {"namespaceSelector": {"matchLabels": {"saasodoo.dev/tenant": BAD}}},
        },
    }
    api.create_validating_admission_policy(policy)
    api.create_validating_admission_policy_binding(binding)
    try:
        # In force once a server-side dry run of the change is refused.
        [deployment] = [
            d.metadata.name
            for d in kube.apps.list_namespaced_deployment(
                f"tenant-{BAD}", label_selector="app.kubernetes.io/component=odoo"
            ).items
        ]
        patch = {"spec": {"template": {"metadata": {"annotations": {
            "saasodoo.dev/rollout": ROLLOUT}}}}}  # fmt: skip
        deadline = time.monotonic() + 30
        while True:
            try:
                kube.apps.patch_namespaced_deployment(
                    deployment, f"tenant-{BAD}", patch, dry_run="All"
                )
            except ApiException as exc:
                assert exc.status in (400, 403, 422), exc
                break
            assert time.monotonic() < deadline, "the admission policy never took effect"
            time.sleep(0.5)
        yield
    finally:
        api.delete_validating_admission_policy_binding(name)
        api.delete_validating_admission_policy(name)


def test_fleet_upgrade_of_ten_with_one_made_to_fail(
    kube: Cluster, fleet_tenants: list[str], refuse_new_build_for_bad: None
) -> None:
    tenants = Tenants(Context(settings(kube)))
    fleet = Fleet(tenants.ctx)
    good = NEW_BUILD
    before = asyncio.run(tenants.get(BAD)).spec
    seen: list[str] = []

    # 1. The failing tenant is the canary (labelled): it fails, is rolled back, and nobody
    #    else is touched.
    kube.core.patch_namespace(f"tenant-{BAD}", {"metadata": {"labels": {CANARY_LABEL: "true"}}})
    summary = asyncio.run(
        fleet.upgrade(good, fleet_tenants, on_result=lambda r: seen.append(r.tenant_id))
    )
    kube.core.patch_namespace(f"tenant-{BAD}", {"metadata": {"labels": {CANARY_LABEL: None}}})
    outcomes = {r.tenant_id: r.outcome for r in summary.results}
    assert outcomes == {t: Outcome.FAILED if t == BAD else Outcome.SKIPPED for t in IDS}
    assert summary.stopped == f"canary {BAD} failed"
    assert sorted(seen) == fleet_tenants  # the progress callback saw every tenant
    failed = outcomes_of(summary)[BAD]
    assert (
        "upgrade failed" in failed.detail and f"rollout {ROLLOUT} is not allowed" in failed.detail
    )
    assert "rolled-back" in failed.detail
    assert asyncio.run(tenants.get(BAD)).spec == before  # keeps its previous spec ...
    assert asyncio.run(tenants.get(BAD)).status.reason in (
        "InstallSucceeded",
        "UpgradeSucceeded",
    )  # ... and runs

    # 2. A good canary (flt-0), then one at a time, no failure allowed: the tenants before
    #    BAD are upgraded, BAD fails, the rest are skipped.
    summary = asyncio.run(fleet.upgrade(good, fleet_tenants, canaries=1, concurrency=1))
    outcomes = {r.tenant_id: r.outcome for r in summary.results}
    assert outcomes == {
        **{t: Outcome.UPGRADED for t in IDS[:6]},
        BAD: Outcome.FAILED,
        **{t: Outcome.SKIPPED for t in IDS[7:]},
    }, summary.to_dict()
    assert summary.stopped == "1 failures, more than the 0 allowed" and not summary.ok
    assert all("more than the 0 allowed" in outcomes_of(summary)[t].detail for t in IDS[7:])

    # 3. One failure allowed, three at a time: everyone else gets there; BAD is reported.
    summary = asyncio.run(
        fleet.upgrade(good, fleet_tenants, canaries=1, max_failures=1, concurrency=3)
    )
    assert summary.to_dict()["counts"] == {"unchanged": 6, "failed": 1, "upgraded": 3}
    assert summary.stopped is None and not summary.ok
    assert outcomes_of(summary)[BAD].outcome is Outcome.FAILED
    for tid in fleet_tenants:
        tenant = asyncio.run(tenants.get(tid))
        assert tenant.status.reason in ("InstallSucceeded", "UpgradeSucceeded"), (
            tid,
            tenant.status,
        )
        assert tenant.spec.overrides == (before.overrides if tid == BAD else NEW_BUILD.overrides)
    # Nothing is left for ensure to do: failed tenants were rolled back to what they had.
    calls = tenants.ctx.helm.calls
    ensure = asyncio.run(fleet.ensure_all(fleet_tenants))
    assert ensure.count(Outcome.UNCHANGED) == 10 and tenants.ctx.helm.calls == calls


def outcomes_of(summary: FleetSummary) -> dict[str, EnsureResult]:
    return {r.tenant_id: r for r in summary.results}


def test_fleet_upgrade_threshold_with_rollouts_that_never_become_ready(
    kube: Cluster, fleet_tenants: list[str]
) -> None:
    """A target whose pods can never be scheduled: helm's wait times out; with one failure
    allowed and one at a time, two fail (rolled back) and the rest is skipped. Then the
    fleet converges (BAD too, its policy gone)."""
    tenants = Tenants(Context(settings(kube)))
    fleet = Fleet(tenants.ctx)
    subset = fleet_tenants[:4]
    bad = FleetTarget(overrides=UNSCHEDULABLE)
    before = {t: asyncio.run(tenants.get(t)).spec.overrides for t in subset}
    summary = asyncio.run(
        fleet.upgrade(bad, subset, canaries=0, max_failures=1, concurrency=1, timeout="10s")
    )
    assert summary.to_dict()["counts"] == {"failed": 2, "skipped": 2}, summary.to_dict()
    assert summary.stopped == "2 failures, more than the 1 allowed"
    assert {t: asyncio.run(tenants.get(t)).spec.overrides for t in subset} == before

    good = NEW_BUILD
    summary = asyncio.run(fleet.upgrade(good, fleet_tenants, concurrency=4))
    assert summary.ok, summary.to_dict()
    assert summary.count(Outcome.UNCHANGED) + summary.count(Outcome.UPGRADED) == 10
    again = asyncio.run(fleet.upgrade(good, fleet_tenants))
    assert again.count(Outcome.UNCHANGED) == 10, again.to_dict()


def test_export_values_and_flux_helmrelease(
    kube: Cluster, fleet_tenants: list[str], tmp_path: Path
) -> None:
    tenants = Tenants(Context(settings(kube)))
    tid = fleet_tenants[0]
    files = asyncio.run(export(tenants.ctx, tid, flux=True, odootenant=True))
    assert sorted(files) == [
        f"{tid}.helmrelease.yaml", f"{tid}.odootenant.yaml", f"{tid}.values.yaml"
    ]  # fmt: skip
    # The OdooTenant passes the API server's own validation (server-side dry run).
    apply_crd(tenants.ctx.kube, crd_manifest())
    tenants.ctx.kube.create_namespace_if_absent(tenants.ctx.settings.system_namespace)
    ot = tmp_path / "ot.yaml"
    ot.write_text(files[f"{tid}.odootenant.yaml"])
    kube.kubectl("apply", "--dry-run=server", "-f", str(ot))
    doc = yaml.safe_load(files[f"{tid}.odootenant.yaml"])
    assert doc["kind"] == "OdooTenant" and doc["metadata"]["name"] == tid
    assert "status" not in doc and doc["spec"]["plan"]
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

    # Rendered as Flux would (its release name, namespace, chart path and values) and from
    # the values file with plain helm: the very manifests saasodoo installed. A server-side
    # dry run, as the real upgrade: lookup() sees the live Secrets, so nothing differs.
    installed = manifests(kube.helm(4, "get", "manifest", tid, "-n", f"tenant-{tid}").stdout)
    assert {kind for kind, _ in installed} >= {"Deployment", "StatefulSet", "NetworkPolicy"}
    chart = ROOT / spec["chart"]["spec"]["chart"]
    namespace = spec.get("targetNamespace") or release["metadata"]["namespace"]
    from_flux = tmp_path / "flux-values.yaml"
    from_flux.write_text(yaml.safe_dump(spec["values"]))
    from_file = tmp_path / "exported-values.yaml"
    from_file.write_text(files[f"{tid}.values.yaml"])
    for values_file in (from_flux, from_file):
        rendered = kube.helm(
            4, "upgrade", spec["releaseName"], str(chart), "-n", namespace,
            "-f", str(values_file), "--dry-run=server", "-o", "json",
        )  # fmt: skip
        assert manifests(json.loads(rendered.stdout)["manifest"]) == installed
    [listed] = json.loads(kube.helm(4, "list", "-n", f"tenant-{tid}", "-o", "json").stdout)
    assert listed["chart"] == f"odoo-tenant-{spec['chart']['spec']['version']}"

    # The CLI writes the same files.
    result = CliRunner().invoke(
        export_cmd,
        [tid, "--flux", "--odootenant", "-d", str(tmp_path)],
        obj=settings(kube),
    )
    assert result.exit_code == 0, result.output
    written = tmp_path / f"{tid}.helmrelease.yaml"
    assert yaml.safe_load(written.read_text()) == release


def manifests(stream: str) -> dict[tuple[str, str], dict[str, Any]]:
    """A rendered manifest stream by (kind, name)."""
    docs = [d for d in yaml.safe_load_all(stream) if d]
    return {(d["kind"], d["metadata"]["name"]): d for d in docs}
