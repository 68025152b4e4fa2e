"""The operator's periodic sweep: which tenants need a reconcile, from a few list requests.

A few list requests (namespaces, and Helm's storage records and the tenants' Services as
metadata only; pages of 500 past that), the tenants' Deployments and StatefulSets from the
operator's workload informers (``saasodoo.operator.workloads``; listed, in pages, only
while those have not synced), and no helm call: the desired digest
of each tenant is computed from its spec (pure), its state from ``determine_state``.
A tenant needs a look when its OdooTenant is being deleted, asks for a reconcile or a
force not yet handled, has a generation not yet observed, or when the cluster disagrees
with its status: no namespace, record or release, a record still on the namespace (to be
moved onto the OdooTenant), a release not in sync with the spec, a revision other than the
one recorded, workloads missing or not ready while Ready=True, or all ready while Ready is
not True. The tenant's record is read from the cached OdooTenant (no request).

The sweep also deletes the one-shot operation requests finished more than
``Settings.operator_request_ttl_seconds`` ago (``expire_requests``, from the request
informers' caches: no list request), as Kubernetes' TTL controller does with a finished
Job's ``ttlSecondsAfterFinished``.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

from saasodoo.adapters.kube import PARTIAL_METADATA, translate
from saasodoo.adapters.resources import CustomResources
from saasodoo.context import Context
from saasodoo.core import operations
from saasodoo.core.conditions import get_condition
from saasodoo.core.crd import RECONCILE_REQUESTED_AT
from saasodoo.core.reconcile import State
from saasodoo.core.record import entries_of_annotations
from saasodoo.core.spec import TENANT_LABEL, namespace_for
from saasodoo.core.status import Workload
from saasodoo.errors import SaasodooError
from saasodoo.operator.controller import FORCE_ANNOTATION, annotations_of, inventory_of
from saasodoo.reconciler import Reconciler

log = logging.getLogger(__name__)


def requested(obj: dict[str, Any]) -> bool:
    """A reconcile or force asked for through annotations and not handled yet."""
    notes, status = annotations_of(obj), obj.get("status") or {}
    return bool(
        (notes.get(RECONCILE_REQUESTED_AT)
         and notes[RECONCILE_REQUESTED_AT] != status.get("lastHandledReconcileAt"))
        or (notes.get(FORCE_ANNOTATION)
            and notes[FORCE_ANNOTATION] != status.get("lastHandledForceAt"))
    )  # fmt: skip


async def needs_look(
    ctx: Context,
    objects: list[dict[str, Any]],
    *,
    workloads: dict[str, list[Workload]] | None = None,
    reconciler: Reconciler | None = None,
) -> list[str]:
    """Names of the OdooTenants in ``objects`` that need a reconcile (module docstring).
    ``workloads``: every tenant's Deployments and StatefulSets by tenant id, as
    ``Kube.list_workloads`` answers (the informers' caches); None: listed here.
    ``reconciler``: one kept from sweep to sweep remembers the desired digests
    (``Reconciler.sweep_state``); None: a new one."""
    kube = ctx.kube
    namespaces = {ns.labels.get(TENANT_LABEL, ""): ns for ns in kube.list_tenant_namespaces()}
    heads = kube.list_release_heads()
    if workloads is None:
        workloads = kube.list_workloads()
    services: dict[str, set[str]] = {}
    with translate("list tenant services"):  # names and labels: metadata only
        found = kube.get_json("/api/v1/services", [("labelSelector", TENANT_LABEL)],
                              PARTIAL_METADATA).get("items") or []  # fmt: skip
    for svc in found:
        tid = (svc["metadata"].get("labels") or {}).get(TENANT_LABEL, "")
        services.setdefault(tid, set()).add(f"Service/{svc['metadata']['name']}")
    reconciler = reconciler or Reconciler(ctx)
    out = []
    for obj in objects:
        meta, status = obj["metadata"], obj.get("status") or {}
        name = meta["name"]
        ready = get_condition(status.get("conditions") or [], "Ready")
        is_ready = bool(ready and ready.get("status") == "True")
        raw = namespaces.get(name)
        # The record as the cached object holds it (run.CACHED_STATUS keeps it).
        ns = ctx.record.store.attach(raw, obj) if raw is not None else None
        head = heads.get((namespace_for(name), name))
        if (
            meta.get("deletionTimestamp")
            or requested(obj)
            or status.get("observedGeneration") != meta.get("generation")
            or ns is None
            or not ctx.record.has_spec(ns)
            or entries_of_annotations(ns.annotations)  # a record to move onto the object
            or head is None
            or head.revision != status.get("revision")
        ):
            out.append(name)
            continue
        try:
            state = await reconciler.sweep_state(ns, head)
        except (SaasodooError, ValueError) as exc:
            log.warning("tenant %s: %s", name, exc)
            out.append(name)
            continue
        mine = workloads.get(name, [])
        present = {f"{w.kind}/{w.name}" for w in mine} | services.get(name, set())
        expected = set(inventory_of(obj))
        all_ready = bool(mine) and all(w.is_ready for w in mine)
        if state is not State.IN_SYNC or expected - present or all_ready != is_ready:
            out.append(name)
    return out


def expire_requests(
    resources: dict[str, CustomResources],
    requests: dict[str, list[dict[str, Any]]],
    ttl_seconds: float,
    now: datetime | None = None,
) -> int:
    """Delete the requests (``requests``: kind -> objects, as cached) finished more than
    ``ttl_seconds`` before ``now`` (``operations.expired``) through ``resources`` (kind ->
    its resources); returns how many were deleted. A failed deletion is logged and tried
    again by the next sweep."""
    now = now or datetime.now(UTC)
    deleted = 0
    for kind, objects in requests.items():
        for obj in objects:
            if not operations.expired(obj, now, ttl_seconds):
                continue
            name = obj["metadata"]["name"]
            try:
                if resources[kind].delete(name):
                    deleted += 1
            except SaasodooError as exc:
                log.warning("%s %s not deleted: %s", kind, name, exc)
    return deleted
