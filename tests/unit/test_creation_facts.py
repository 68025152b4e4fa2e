"""Issue 22, point 14: what a tenant was created with that cannot change in place (storage
class, volume layout, placement) is recorded on it and kept; a change of the platform's
settings or files applies to new tenants only. Against the small fakes (tests/fakes.py):
the digest of every existing tenant stays, ensure runs no helm upgrade, a new tenant takes
the new setting; a tenant created before the record gets it from its deployed values."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

import pytest

from saasodoo.context import Context
from saasodoo.core.plans import Catalog
from saasodoo.core.record import APPLIED_ANNOTATION, SPEC_ANNOTATION, applied_of
from saasodoo.core.spec import TenantSpec
from saasodoo.core.values import (
    CREATION_PATHS,
    OPTIONAL_FACTS,
    TEMPLATE_KEY_PATH,
    Platform,
    compute_values,
    creation_facts,
    get_path,
    helm_merge,
)
from saasodoo.errors import InvalidInput
from saasodoo.reconciler import Outcome, Reconciler
from saasodoo.settings import Settings
from saasodoo.tenants import Tenants
from tests.fakes import FakeHelm, FakeKube

pytestmark = pytest.mark.unit

NS, KEY = "tenant-acme", ("tenant-acme", "acme")
SPEC = TenantSpec.parse({"id": "acme", "admin_email": "a@acme.example"})
BASE = Settings(base_domain="odoo.test", storage_class="slow", node_pool="pool=a")


def tenants_with(settings: Settings, helm: FakeHelm, kube: FakeKube) -> Tenants:
    return Tenants(Context(settings, helm=helm, kube=kube))


def with_base(change: dict[str, Any]) -> Callable[[Tenants], None]:
    """A change of values/base.yaml (the platform's file, SAASODOO_PLANS_DIR)."""

    def apply(t: Tenants) -> None:
        t.ctx.catalog = Catalog(
            base=helm_merge(t.ctx.catalog.base, change), plans=t.ctx.catalog.plans
        )

    return apply


#: Each setting or platform file that shapes what cannot change in place, changed.
CHANGES: dict[str, tuple[dict[str, Any], Callable[[Tenants], None] | None, str, Any]] = {
    "SAASODOO_STORAGE_CLASS": (
        {"storage_class": "fast"}, None, "postgresql.persistence.storageClass", "fast",
    ),
    "SAASODOO_STORAGE_CLASS emptied": (
        {"storage_class": ""}, None, "odoo.persistence.storageClass", None,
    ),
    "SAASODOO_NODE_POOL": ({"node_pool": "pool=b"}, None, "nodeSelector", {"pool": "b"}),
    "SAASODOO_NODE_POOL emptied": ({"node_pool": ""}, None, "tolerations", None),
    "base.yaml access modes": (
        {}, with_base({"odoo": {"persistence": {"accessModes": ["ReadWriteMany"]}}}),
        "odoo.persistence.accessModes", ["ReadWriteMany"],
    ),
    "base.yaml backup volume": (
        {}, with_base({"backup": {"persistence": {"enabled": False}}}),
        "backup.persistence.enabled", False,
    ),
    "base.yaml external database": (
        {}, with_base({"postgresql": {"enabled": False}}), "postgresql.enabled", False,
    ),
}  # fmt: skip


@pytest.mark.parametrize("name", list(CHANGES))
def test_a_setting_change_leaves_existing_tenants_and_applies_to_new_ones(name: str) -> None:
    settings_change, file_change, path, new_value = CHANGES[name]
    helm = FakeHelm(BASE)
    kube = FakeKube(helm=helm)
    asyncio.run(tenants_with(BASE, helm, kube).create(SPEC))
    before = dict(kube.namespaces[NS].annotations)
    old_value = get_path(helm.releases[KEY][-1].values, path)
    assert old_value != new_value

    changed = tenants_with(BASE.model_copy(update=settings_change), helm, kube)
    if file_change:
        file_change(changed)
    commands = list(helm.commands)
    result = asyncio.run(Reconciler(changed.ctx).ensure("acme"))
    assert (result.outcome, result.steps) == (Outcome.UNCHANGED, []), result
    assert helm.commands == commands  # no helm upgrade
    digest = asyncio.run(Reconciler(changed.ctx).observe("acme")).observation.desired_digest
    assert applied_of(before) is not None and digest == applied_of(before).digest  # type: ignore[union-attr]
    assert kube.namespaces[NS].annotations[APPLIED_ANNOTATION] == before[APPLIED_ANNOTATION]
    # A plan change of the existing tenant keeps them too.
    asyncio.run(changed.update("acme", plan="standard"))
    assert get_path(helm.releases[KEY][-1].values, path) == old_value

    # A new tenant is created with the new setting.
    new = SPEC.model_copy(update={"id": "beta"})
    asyncio.run(changed.create(new))
    assert get_path(helm.releases[("tenant-beta", "beta")][-1].values, path) == new_value


def test_creation_facts_are_recorded_on_the_namespace_and_kept_out_of_revisions() -> None:
    helm = FakeHelm(BASE)
    kube = FakeKube(helm=helm)
    asyncio.run(tenants_with(BASE, helm, kube).create(SPEC))
    recorded = json.loads(kube.namespaces[NS].annotations[SPEC_ANNOTATION])["created_with"]
    # Every fact, but the template key, which a tenant made without a template lacks.
    assert set(recorded) == set(CREATION_PATHS) - set(OPTIONAL_FACTS)
    assert recorded["nodeSelector"] == {"pool": "a"}
    assert recorded["odoo.persistence.storageClass"] == "slow"
    assert recorded["odoo.persistence.accessModes"] is None  # the chart's default
    # Not part of the values' spec: a tenant's revisions keep the digests they had.
    assert "created_with" not in helm.releases[KEY][-1].values["tenant"]["spec"]


def test_a_request_cannot_set_what_a_tenant_is_created_with() -> None:
    helm = FakeHelm(BASE)
    kube = FakeKube(helm=helm)
    forged = SPEC.model_copy(update={"created_with": {"nodeSelector": {"pool": "z"}}})
    asyncio.run(tenants_with(BASE, helm, kube).create(forged))
    assert helm.releases[KEY][-1].values["nodeSelector"] == {"pool": "a"}


def test_a_tenant_from_before_the_record_keeps_what_its_revision_deployed() -> None:
    """Created by a saasodoo that did not record it: the first look derives it from the
    values saasodoo last applied, records it, and a setting changed since changes nothing."""
    helm = FakeHelm(BASE)
    kube = FakeKube(helm=helm)
    asyncio.run(tenants_with(BASE, helm, kube).create(SPEC))
    # As an older saasodoo left it: no created_with in the recorded spec.
    kube.patch_namespace(NS, annotations={SPEC_ANNOTATION: SPEC.model_dump_json()})
    applied = kube.namespaces[NS].annotations[APPLIED_ANNOTATION]

    changed = tenants_with(Settings(base_domain="odoo.test", storage_class="fast"), helm, kube)
    commands = list(helm.commands)
    result = asyncio.run(Reconciler(changed.ctx).ensure("acme"))
    assert (result.outcome, result.steps) == (Outcome.UNCHANGED, []), result
    assert helm.commands == commands
    assert kube.namespaces[NS].annotations[APPLIED_ANNOTATION] == applied
    recorded = json.loads(kube.namespaces[NS].annotations[SPEC_ANNOTATION])["created_with"]
    assert recorded["postgresql.persistence.storageClass"] == "slow"
    assert recorded["nodeSelector"] == {"pool": "a"}


def test_compute_values_puts_the_creation_facts_over_the_platform() -> None:
    catalog = Catalog(base={}, plans={})
    facts = {p: None for p in CREATION_PATHS} | {"odoo.persistence.storageClass": "slow"}
    spec = TenantSpec.parse({"id": "acme", "admin_email": "a@acme.example", "plan": "x"})
    with pytest.raises(Exception):  # noqa: B017 - no plan x in an empty catalog
        compute_values(spec, catalog, Platform("odoo.test"))
    spec = spec.model_copy(update={"plan": "starter", "created_with": facts})
    from saasodoo.adapters.catalog import load_catalog
    from tests.support import ROOT

    real = load_catalog(ROOT / "values")
    values = compute_values(spec, real, Platform("odoo.test", storage_class="fast",
                                                 node_pool="k=v")).values  # fmt: skip
    assert values["odoo"]["persistence"]["storageClass"] == "slow"
    assert "storageClass" not in values["postgresql"]["persistence"]
    assert "nodeSelector" not in values and "tolerations" not in values
    assert creation_facts(values)["odoo.persistence.storageClass"] == "slow"


def test_moving_a_tenant_to_another_node_pool_is_an_explicit_operation() -> None:
    helm = FakeHelm(BASE)
    kube = FakeKube(helm=helm)
    asyncio.run(tenants_with(BASE, helm, kube).create(SPEC))
    other = tenants_with(BASE.model_copy(update={"node_pool": "pool=b"}), helm, kube)
    assert asyncio.run(Reconciler(other.ctx).ensure("acme")).outcome is Outcome.UNCHANGED
    asyncio.run(other.move("acme", node_pool="pool=c"))
    values = helm.releases[KEY][-1].values
    assert values["nodeSelector"] == {"pool": "c"} and values["tolerations"][0]["value"] == "c"
    assert "move to node pool pool=c" in helm.releases[KEY][-1].revision.description
    assert asyncio.run(Reconciler(other.ctx).ensure("acme")).outcome is Outcome.UNCHANGED
    asyncio.run(other.move("acme", node_pool=""))
    values = helm.releases[KEY][-1].values
    assert "nodeSelector" not in values and "tolerations" not in values
    # The storage facts stay as they were.
    assert values["odoo"]["persistence"]["storageClass"] == "slow"
    with pytest.raises(InvalidInput) as exc:
        asyncio.run(other.move("acme", node_pool="no pool"))
    assert exc.value.fields[0].field == "node_pool"


def test_a_rollback_across_a_move_records_the_placement_it_deploys() -> None:
    helm = FakeHelm(BASE)
    kube = FakeKube(helm=helm)
    tenants = tenants_with(BASE, helm, kube)
    asyncio.run(tenants.create(SPEC))
    asyncio.run(tenants.move("acme", node_pool="pool=c"))
    asyncio.run(tenants.rollback("acme", 1))
    assert helm.releases[KEY][-1].values["nodeSelector"] == {"pool": "a"}
    recorded = json.loads(kube.namespaces[NS].annotations[SPEC_ANNOTATION])["created_with"]
    assert recorded["nodeSelector"] == {"pool": "a"}
    commands = list(helm.commands)
    assert asyncio.run(Reconciler(tenants.ctx).ensure("acme")).outcome is Outcome.UNCHANGED
    assert helm.commands == commands


def test_a_templated_create_records_its_template_and_keeps_it_in_later_values() -> None:
    """The template key of a templated create (the web pod waits for that restore) is a
    creation fact: recorded, and rendered the same by every later computation, so an
    upgrade does not change the pods for it."""
    helm = FakeHelm(BASE)
    kube = FakeKube(helm=helm)
    tenants = tenants_with(BASE, helm, kube)
    asyncio.run(tenants.create(SPEC, wait=False, template="docker.io-library-odoo-18.0"))
    recorded = json.loads(kube.namespaces[NS].annotations[SPEC_ANNOTATION])["created_with"]
    assert recorded[TEMPLATE_KEY_PATH] == "docker.io-library-odoo-18.0"
    installed = helm.releases[(NS, SPEC.id)][-1].values
    assert get_path(installed, TEMPLATE_KEY_PATH) == "docker.io-library-odoo-18.0"
    spec = tenants.ctx.record.spec(tenants.ctx.record.namespace(SPEC.id))
    assert get_path(tenants.values_for(spec).values, TEMPLATE_KEY_PATH) == (
        "docker.io-library-odoo-18.0"
    )
