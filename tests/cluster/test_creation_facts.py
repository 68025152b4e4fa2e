"""Issue 22, point 14, against the cluster with real helm: a change of a platform setting
that shapes what cannot change in place (SAASODOO_STORAGE_CLASS, SAASODOO_NODE_POOL, the
volume layout of values/base.yaml) leaves every existing tenant as it is: its desired
digest stays, `fleet ensure` runs no helm upgrade; a new tenant takes the new setting."""

from __future__ import annotations

import asyncio
import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client

from saasodoo.context import Context
from saasodoo.core.record import APPLIED_ANNOTATION, SPEC_ANNOTATION
from saasodoo.core.spec import TenantSpec
from saasodoo.errors import NotFound
from saasodoo.fleet import Fleet
from saasodoo.reconciler import Outcome
from saasodoo.settings import Settings
from saasodoo.tenants import Tenants
from tests.support import ROOT, Cluster

pytestmark = pytest.mark.cluster

MAJOR = 4
TID = "crfx-old"
#: A second StorageClass served by the simulated cluster's provisioner.
FAST = "saasodoo-test-fast"
POOL = "saasodoo.dev/test-pool=a"


def settings(kube: Cluster, **kw: Any) -> Settings:
    return Settings(
        kubeconfig=kube.kubeconfig, helm_binary=str(kube.tools.helm(MAJOR)), helm_timeout="5m",
        **kw,
    )  # fmt: skip


def plans_with_base(tmp: Path, change: dict[str, Any]) -> Path:
    """A copy of values/ whose base.yaml has ``change`` merged in (a platform file edit)."""
    out = tmp / "values"
    shutil.copytree(ROOT / "values", out)
    base = yaml.safe_load((out / "base.yaml").read_text())
    for key, value in change.items():
        node = base
        *parents, leaf = key.split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value
    (out / "base.yaml").write_text(yaml.safe_dump(base))
    return out


def delete(tenants: Tenants, tid: str, wait: bool = True) -> None:
    try:
        asyncio.run(tenants.delete(tid, final_backup=False, wait=wait))
    except NotFound:
        pass


@pytest.fixture(scope="module")
def existing(kube: Cluster) -> Iterator[str]:
    """One tenant created with the platform's default settings, a fast StorageClass beside."""
    storage = client.StorageV1Api(kube.api)
    try:
        storage.create_storage_class(
            client.V1StorageClass(
                metadata=client.V1ObjectMeta(name=FAST),
                provisioner="saasodoo.dev/kwok-provisioner",
                volume_binding_mode="WaitForFirstConsumer",
                allow_volume_expansion=True,
            )
        )
    except client.ApiException as exc:
        if exc.status != 409:
            raise
    tenants = Tenants(Context(settings(kube)))
    delete(tenants, TID)
    asyncio.run(tenants.create(TenantSpec.parse({"id": TID, "admin_email": "a@crf.example"})))
    yield TID
    delete(tenants, TID, wait=False)


#: name -> (settings changed, base.yaml changed, chart value, new tenants' value).
CHANGES: dict[str, tuple[dict[str, Any], dict[str, Any], str, Any]] = {
    "SAASODOO_STORAGE_CLASS": ({"storage_class": FAST}, {}, "storage", FAST),
    "SAASODOO_NODE_POOL": ({"node_pool": POOL}, {}, "placement", {"saasodoo.dev/test-pool": "a"}),
    "base.yaml odoo.persistence.accessModes": (
        {}, {"odoo.persistence.accessModes": ["ReadWriteMany"]}, "access", ["ReadWriteMany"],
    ),
    "base.yaml backup.persistence.enabled": (
        {}, {"backup.persistence.enabled": False}, "backup-volume", False,
    ),
}  # fmt: skip


def observed(kube: Cluster, tid: str) -> dict[str, Any]:
    """What each change would alter in the tenant's objects."""
    ns = f"tenant-{tid}"
    claims = {
        c.metadata.labels.get("app.kubernetes.io/component", ""): c
        for c in kube.core.list_namespaced_persistent_volume_claim(ns).items
    }
    pg = kube.apps.list_namespaced_stateful_set(ns).items[0]
    return {
        "storage": claims["postgresql"].spec.storage_class_name,
        "placement": pg.spec.template.spec.node_selector,
        "access": claims["odoo"].spec.access_modes,
        "backup-volume": "backup" in claims,
    }


@pytest.mark.parametrize("name", list(CHANGES))
def test_a_setting_change_leaves_existing_tenants_and_applies_to_new_ones(
    kube: Cluster, existing: str, name: str, tmp_path: Path
) -> None:
    changed_settings, changed_base, what, new_value = CHANGES[name]
    ns_name = f"tenant-{existing}"
    before_ns = kube.core.read_namespace(ns_name).metadata.annotations
    before = observed(kube, existing)
    revisions = kube.helm(MAJOR, "history", existing, "-n", ns_name, "-o", "json").stdout
    extra: dict[str, Any] = {}
    if changed_base:
        extra["plans_dir"] = plans_with_base(tmp_path, changed_base)
    tenants = Tenants(Context(settings(kube, **changed_settings, **extra)))

    calls = tenants.ctx.helm.calls
    (result,) = asyncio.run(Fleet(tenants.ctx).ensure_all([existing])).results
    assert (result.outcome, result.steps) == (Outcome.UNCHANGED, []), result
    assert tenants.ctx.helm.calls - calls <= 1  # no helm upgrade (at most helm status)
    after_ns = kube.core.read_namespace(ns_name).metadata.annotations
    assert after_ns[APPLIED_ANNOTATION] == before_ns[APPLIED_ANNOTATION]  # same digest
    assert kube.helm(MAJOR, "history", existing, "-n", ns_name, "-o", "json").stdout == revisions
    assert observed(kube, existing) == before
    # A plan change of the existing tenant keeps them too (an upgrade that succeeds).
    asyncio.run(tenants.update(existing, overrides={"odoo": {"config": {"workers": 3}}}))
    assert observed(kube, existing) == before
    asyncio.run(tenants.update(existing, overrides={}))

    # A new tenant takes the new setting (created without waiting: its pods may have no node).
    new_id = f"crfx-new{list(CHANGES).index(name)}"
    delete(tenants, new_id)
    try:
        asyncio.run(
            tenants.create(
                TenantSpec.parse({"id": new_id, "admin_email": "a@crf.example"}), wait=False
            )
        )
        assert observed(kube, new_id)[what] == new_value
        recorded = json.loads(
            kube.core.read_namespace(f"tenant-{new_id}").metadata.annotations[SPEC_ANNOTATION]
        )
        assert recorded["created_with"] is not None
    finally:
        delete(tenants, new_id, wait=False)


def test_a_tenant_from_before_the_record_is_kept_as_deployed(kube: Cluster, existing: str) -> None:
    """A tenant an older saasodoo created (no creation facts in its record): the first ensure
    records them from its deployed revision, and a changed setting still changes nothing."""
    ns_name = f"tenant-{existing}"
    annotations = kube.core.read_namespace(ns_name).metadata.annotations
    spec = json.loads(annotations[SPEC_ANNOTATION])
    spec.pop("created_with", None)
    kube.core.patch_namespace(
        ns_name, {"metadata": {"annotations": {SPEC_ANNOTATION: json.dumps(spec)}}}
    )
    before = observed(kube, existing)
    tenants = Tenants(Context(settings(kube, storage_class=FAST, node_pool=POOL)))
    calls = tenants.ctx.helm.calls
    (result,) = asyncio.run(Fleet(tenants.ctx).ensure_all([existing])).results
    assert (result.outcome, result.steps) == (Outcome.UNCHANGED, []), result
    assert tenants.ctx.helm.calls - calls <= 2  # helm get values once, then nothing
    after = kube.core.read_namespace(ns_name).metadata.annotations
    assert after[APPLIED_ANNOTATION] == annotations[APPLIED_ANNOTATION]
    recorded = json.loads(after[SPEC_ANNOTATION])["created_with"]
    assert recorded["postgresql.persistence.storageClass"] is None  # the cluster's default
    assert recorded["nodeSelector"] is None
    assert observed(kube, existing) == before
