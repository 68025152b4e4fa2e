"""Adoption: tenants made before the operator (their record in namespace annotations) become
OdooTenants, their record moved onto them, without a helm call.

For each tenant namespace with a recorded spec and no OdooTenant of its id, one OdooTenant
is created whose ``.spec`` is the recorded spec (plan, Odoo version, custom domains,
overrides, suspension, owner); then the whole record (the spec saasodoo applied, what it
applied, the operation lock, ...) is moved onto it (``RecordStore.move``: its
``status.record`` written first, the namespace's ``saasodoo.dev/*`` record annotations
removed last). The operator then finds the spec equal to the record and the applied digest
equal to the desired one: the release is left as it is (its revision does not change).

Running it again creates nothing (idempotent). A tenant whose OdooTenant exists while its
namespace still holds a record (adopted by an earlier version, or a pass interrupted
between the two writes) has that record moved the same way (the operator's reconcile
does the same on its first look at the tenant).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from saasodoo.adapters.resources import TenantResources
from saasodoo.context import Context
from saasodoo.core.crd import from_tenant_spec, owner_labels
from saasodoo.core.record import SPEC_ANNOTATION, entries_of_annotations
from saasodoo.core.spec import TENANT_LABEL
from saasodoo.errors import Conflict, SaasodooError

log = logging.getLogger(__name__)

#: Annotation on an adopted OdooTenant: from where (``namespace/<name>``) and when.
ADOPTED_ANNOTATION = "saasodoo.dev/adopted-from"


@dataclass
class Adoption:
    """What one pass did: the ids adopted, those that had an OdooTenant, those whose record
    moved from their namespace onto their OdooTenant (adopted now or before), and
    failures."""

    adopted: list[str] = field(default_factory=list)
    present: list[str] = field(default_factory=list)
    moved: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)


def adopt_all(ctx: Context, resources: TenantResources, *, dry_run: bool = False) -> Adoption:
    """Create an OdooTenant for every tenant namespace that has none and move every record
    left on a namespace onto its OdooTenant (see the module docstring). Two list requests,
    plus per adopted tenant a create and two patches (its status, its namespace)."""
    result = Adoption()
    existing = {i["metadata"]["name"]: i for i in resources.list().get("items") or []}
    record, store = ctx.record, ctx.record.store
    for ns in ctx.kube.list_tenant_namespaces():
        tid = ns.labels.get(TENANT_LABEL, "")
        entries = entries_of_annotations(ns.annotations)
        if not tid or (tid not in existing and SPEC_ANNOTATION not in entries):
            continue
        try:
            if tid in existing:
                result.present.append(tid)
                if entries and (dry_run or store.move(tid, existing[tid], ns)):
                    result.moved.append(tid)
                continue
            if ns.phase == "Terminating":
                continue
            held = store.attach(ns, None)  # the record as the namespace holds it
            spec = record.spec(held)
            body_spec = from_tenant_spec(
                spec, suspended=record.suspended(held), owner=record.owner(held)
            )
            body = {
                "metadata": {
                    "name": tid,
                    "labels": owner_labels(body_spec),
                    "annotations": {ADOPTED_ANNOTATION: f"namespace/{ns.name}"},
                },
                "spec": body_spec,
            }
            if not dry_run:
                created = resources.create(body)
                store.move(tid, created, ns)
            result.adopted.append(tid)
            result.moved.append(tid)
        except Conflict:
            result.present.append(tid)  # created meanwhile (another adopter, the API)
            if not dry_run and store.move(tid):
                result.moved.append(tid)
        except SaasodooError as exc:
            log.warning("tenant %s: not adopted: %s", tid, exc.message)
            result.failed[tid] = exc.message
    return result
