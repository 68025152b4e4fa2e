"""Where a tenant's record is kept (saasodoo.adapters.records) and its form on an OdooTenant
(saasodoo.core.record): a tenant with an OdooTenant keeps it in the object's
``status.record`` and none on its namespace; one without keeps it on its namespace; a record
left on the namespace of a tenant that has an OdooTenant is moved onto it (the OdooTenant
written first, the namespace's annotations removed last), and a move interrupted between the
two converges when run again. Against the fakes of tests/fakes.py."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from typing import Any

import pytest

from saasodoo.adapters.resources import TenantResources, merge_patch
from saasodoo.context import Context
from saasodoo.core import record as codec
from saasodoo.core.conditions import ReconcileReport, next_status
from saasodoo.core.reconcile import Applied, OperationLock, Unfinished
from saasodoo.core.spec import TENANT_LABEL, TenantSpec
from saasodoo.errors import HelmFailure, SaasodooError, TransientClusterError
from saasodoo.operator.sweep import needs_look
from saasodoo.settings import Settings
from saasodoo.tenants import Tenants
from tests.fakes import FakeHelm, FakeKube

pytestmark = pytest.mark.unit

SETTINGS = Settings(base_domain="odoo.test")
NS = "tenant-acme"
SPEC = TenantSpec.parse(
    {
        "id": "acme",
        "admin_email": "a@acme.example",
        "overrides": {"odoo": {"config": {"workers": 2}}},
        "created_with": {"persistence.storageClass": None, "nodePool": None},
    }
)
LOCK = OperationLock("host:42", "update", "d-new", datetime(2026, 1, 1, 12, 5, tzinfo=UTC))


def odootenant(name: str = "acme", **status: Any) -> dict[str, Any]:
    return {"metadata": {"name": name, "generation": 1}, "status": status}


def context(kube: FakeKube) -> Context:
    return Context(SETTINGS, helm=FakeHelm(SETTINGS), kube=kube)


def held(kube: FakeKube, name: str = "acme") -> dict[str, Any]:
    return dict((kube.odootenants[name].get("status") or {}).get("record") or {})


def namespace_record(kube: FakeKube, ns: str = NS) -> dict[str, str]:
    return codec.entries_of_annotations(kube.namespaces[ns].annotations)


# -- the codec's form on an OdooTenant --------------------------------------------------------


def test_every_entry_round_trips_through_an_odootenants_status() -> None:
    entries = {
        codec.SPEC_ANNOTATION: SPEC.model_dump_json(),
        codec.SUSPENDED_ANNOTATION: "true",
        codec.OWNER_ANNOTATION: "user-1",
        codec.APPLIED_ANNOTATION: codec.encode_applied(Applied("d1", 3)),
        codec.FAILED_DIGEST_ANNOTATION: "d-bad",
        codec.OPERATION_ANNOTATION: codec.encode_lock(LOCK),
        codec.UNFINISHED_ANNOTATION: json.dumps(
            {"revision": 4, "operation": "update", "digest": "d2"}
        ),
    }
    status = codec.status_patch(entries)
    # Clear field names, objects where the entry is one; the spec stays its JSON text.
    assert status["applied"] == {"digest": "d1", "revision": 3}
    assert status["operation"]["holder"] == "host:42" and status["suspended"] is True
    assert status["failedDigest"] == "d-bad" and status["owner"] == "user-1"
    assert isinstance(status["spec"], str)
    back = codec.entries_of_status(status)
    assert set(back) == set(entries)
    assert codec.spec_of(back, {}, NS) == SPEC  # created_with's nulls kept
    assert codec.applied_of(back) == Applied("d1", 3)
    assert codec.lock_of(back) == LOCK
    assert codec.unfinished_of(back) == Unfinished(4, "update", "d2")
    assert codec.suspended_of(back) is True and codec.owner_of(back) == "user-1"


def test_removing_an_entry_is_a_null_and_an_unreadable_object_entry_is_dropped() -> None:
    assert codec.status_patch(codec.unlock_patch()) == {"operation": None}
    assert codec.status_patch({codec.SUSPENDED_ANNOTATION: None}) == {"suspended": None}
    assert codec.status_patch({codec.APPLIED_ANNOTATION: "not json"}) == {"applied": None}
    assert codec.entries_of_status({"suspended": False, "owner": ""}) == {}
    moved = codec.moved_patch({codec.SPEC_ANNOTATION: "{}"})
    assert set(moved) == set(codec.RECORD_KEYS)  # every other entry removed
    assert [k for k, v in moved.items() if v is not None] == [codec.SPEC_ANNOTATION]


def test_the_controllers_status_writes_never_touch_the_record() -> None:
    """The controller patches the status it computed from the status it read: a record
    written meanwhile (by the lifecycle) is neither sent again nor removed, even by a
    status that dropped or changed it."""
    previous = {"record": {"spec": "{}", "operation": {"holder": "h", "expires": "x"}}}
    status = next_status(previous, ReconcileReport(generation=1, outcome="progressing"),
                         datetime.now(UTC))  # fmt: skip
    assert status["record"] == previous["record"]
    assert "record" not in merge_patch(previous, status)
    kube = FakeKube()
    kube.odootenants["acme"] = odootenant(record={"spec": "{}", "owner": "u"})
    resources = TenantResources(kube, SETTINGS.system_namespace)
    resources.patch_status("acme", {"url": "https://acme"}, previous)  # record dropped
    resources.patch_status("acme", {"record": {"owner": "x"}}, previous)  # record changed
    assert held(kube) == {"spec": "{}", "owner": "u"}
    assert kube.odootenants["acme"]["status"]["url"] == "https://acme"


# -- which store ------------------------------------------------------------------------------


def test_a_tenant_without_an_odootenant_keeps_its_record_on_its_namespace() -> None:
    kube = FakeKube()
    asyncio.run(Tenants(context(kube)).create(SPEC, owner="user-1"))
    record = namespace_record(kube)
    assert codec.SPEC_ANNOTATION in record and codec.APPLIED_ANNOTATION in record
    assert codec.owner_of(record) == "user-1"
    assert not [c for c in kube.calls if "odootenant" in c]


def test_a_tenant_with_an_odootenant_keeps_its_record_there_and_none_on_its_namespace() -> None:
    kube = FakeKube()
    kube.odootenants["acme"] = odootenant()
    ctx = context(kube)
    tenants = Tenants(ctx)
    asyncio.run(tenants.create(SPEC, owner="user-1"))
    workers = {"odoo": {"config": {"workers": 3}}}
    asyncio.run(tenants.update("acme", plan="starter", overrides=workers))
    asyncio.run(tenants.suspend("acme"))
    assert namespace_record(kube) == {}
    assert kube.namespaces[NS].labels[TENANT_LABEL] == "acme"  # labels stay
    record = held(kube)
    assert record["suspended"] is True and record["owner"] == "user-1"
    assert record["applied"]["revision"] == 3 and "operation" not in record
    assert json.loads(record["spec"])["overrides"] == workers
    # Every view reads it from there.
    got = asyncio.run(tenants.get("acme"))
    assert got.owner == "user-1" and got.spec.overrides == workers
    assert [t.spec.id for t in tenants.list_tenants(owner="user-1")] == ["acme"]


def test_a_failed_helm_call_releases_the_lock_on_the_odootenant() -> None:
    kube = FakeKube()
    kube.odootenants["acme"] = odootenant()
    helm = FakeHelm(SETTINGS)
    tenants = Tenants(Context(SETTINGS, helm=helm, kube=kube))
    asyncio.run(tenants.create(SPEC))
    before = held(kube)["spec"]
    helm.fail_next = HelmFailure("upgrade failed")
    with pytest.raises(HelmFailure):
        asyncio.run(tenants.update("acme", overrides={"odoo": {"config": {"workers": 4}}}))
    record = held(kube)
    assert "operation" not in record  # released
    assert record["spec"] == before  # the previous spec recorded again
    assert namespace_record(kube) == {}


def test_a_lock_of_a_dead_holder_on_the_odootenant_is_recognised() -> None:
    kube = FakeKube()
    kube.odootenants["acme"] = odootenant()
    ctx = context(kube)
    asyncio.run(Tenants(ctx).create(SPEC))
    ctx.record.write(SPEC, False, lock=LOCK)
    ctx.record.alive = lambda holder: False
    lock = ctx.record.lock(ctx.record.namespace("acme"))
    assert lock is not None and lock.holder == "host:42" and lock.alive is False


# -- moving a record onto its OdooTenant ------------------------------------------------------


def namespace_recorded(kube: FakeKube) -> Context:
    """A tenant made without an OdooTenant (its record on its namespace), then given one
    without its record (as ``adopt`` of an earlier version did)."""
    ctx = context(kube)
    asyncio.run(Tenants(ctx).create(SPEC, owner="user-1"))
    kube.odootenants["acme"] = odootenant()
    return ctx


def test_a_move_writes_the_odootenant_first_and_removes_the_annotations_last() -> None:
    kube = FakeKube()
    ctx = namespace_recorded(kube)
    before = namespace_record(kube)
    revision = codec.applied_of(before)
    calls = len(kube.calls)
    assert ctx.record.move("acme")
    assert kube.calls[calls:] == ["patch odootenant acme status", f"patch namespace {NS}"]
    assert codec.entries_of_status(held(kube)) == before
    assert namespace_record(kube) == {}
    assert codec.applied_of(ctx.record.namespace("acme").record) == revision
    calls = len(kube.calls)
    assert not ctx.record.move("acme")  # nothing left to move: no write
    assert kube.calls[calls:] == []


@pytest.mark.parametrize("failing", ["status", "namespace"])
def test_a_move_interrupted_at_either_write_converges_when_run_again(failing: str) -> None:
    """Its OdooTenant's status fails (nothing written: still read from the namespace), or
    the namespace's patch fails (the OdooTenant holds it, every reader takes it from
    there, the annotations still there): run again, the record is on the OdooTenant only."""
    kube = FakeKube()
    ctx = namespace_recorded(kube)
    before = namespace_record(kube)
    error = TransientClusterError("the API server went away")
    if failing == "status":
        kube.fail_status = error
    else:
        kube.fail_patch = error
    with pytest.raises(TransientClusterError):
        ctx.record.move("acme")
    assert codec.entries_of_status(held(kube)) == ({} if failing == "status" else before)
    assert namespace_record(kube) == before  # removed last
    assert ctx.record.namespace("acme").record == before
    assert ctx.record.move("acme")
    assert namespace_record(kube) == {} and codec.entries_of_status(held(kube)) == before


def test_a_move_onto_an_odootenant_crd_without_status_record_fails_and_keeps_the_record() -> None:
    """An OdooTenant CRD older than this saasodoo prunes ``status.record`` silently: the move
    stops with an error naming the CRD, before the namespace's annotations are removed."""
    kube = FakeKube()
    ctx = namespace_recorded(kube)
    before = namespace_record(kube)
    kube.old_crd = True
    calls = len(kube.calls)
    with pytest.raises(SaasodooError, match="CRD in the cluster is older"):
        ctx.record.move("acme")
    assert namespace_record(kube) == before
    assert kube.calls[calls:] == ["patch odootenant acme status"]  # the namespace untouched
    assert ctx.record.namespace("acme").record == before


def test_the_first_write_to_a_tenant_adopted_by_an_earlier_version_moves_its_record() -> None:
    """``--local`` (or the operator) writing to a tenant whose OdooTenant holds no record
    yet moves the namespace's record first, then writes on the OdooTenant."""
    kube = FakeKube()
    ctx = namespace_recorded(kube)
    asyncio.run(Tenants(ctx).suspend("acme"))
    assert namespace_record(kube) == {}
    record = held(kube)
    assert record["suspended"] is True and record["owner"] == "user-1"
    assert record["applied"]["revision"] == 2


# -- the sweep reads the record from the cached OdooTenant -------------------------------------


def test_the_sweep_reads_the_record_from_the_cached_object_and_flags_one_left_on_a_namespace() -> (
    None
):
    kube = FakeKube()
    kube.helm = FakeHelm(SETTINGS)
    kube.odootenants["acme"] = odootenant()
    ctx = Context(SETTINGS, helm=kube.helm, kube=kube)
    asyncio.run(Tenants(ctx).create(SPEC))
    cached = kube.odootenants["acme"]
    cached["status"].update(observedGeneration=1, revision=1)
    calls = len(kube.calls)
    assert asyncio.run(needs_look(ctx, [cached])) == []  # in sync, from the cached record
    assert kube.calls[calls:] == []  # no write, no record read beyond the cache
    without = {**cached, "status": {"observedGeneration": 1, "revision": 1}}
    assert asyncio.run(needs_look(ctx, [without])) == ["acme"]  # no record: a look
    kube.patch_namespace(NS, annotations={codec.SPEC_ANNOTATION: SPEC.model_dump_json()})
    assert asyncio.run(needs_look(ctx, [cached])) == ["acme"]  # one left to move
