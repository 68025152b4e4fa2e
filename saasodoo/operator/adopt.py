"""Adoption: tenants made before the operator (their spec in namespace annotations) become
OdooTenants, without a helm call.

For each tenant namespace with a recorded spec and no OdooTenant of its id, one OdooTenant
is created whose ``.spec`` is the recorded spec (plan, Odoo version, custom domains,
overrides, suspension, owner). The operator then finds the spec equal to the record and
the applied digest equal to the desired one: the release is left as it is (its revision
does not change). Running it again creates nothing (idempotent); an OdooTenant that
exists already is left alone.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from saasodoo.adapters.resources import TenantResources
from saasodoo.context import Context
from saasodoo.core.crd import from_tenant_spec, owner_labels
from saasodoo.core.record import SPEC_ANNOTATION
from saasodoo.core.spec import TENANT_LABEL
from saasodoo.errors import Conflict, SaasodooError

log = logging.getLogger(__name__)

#: Annotation on an adopted OdooTenant: from where (``namespace/<name>``) and when.
ADOPTED_ANNOTATION = "saasodoo.dev/adopted-from"


@dataclass
class Adoption:
    """What one pass did: the ids adopted, those that had an OdooTenant, and failures."""

    adopted: list[str] = field(default_factory=list)
    present: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)


def adopt_all(ctx: Context, resources: TenantResources, *, dry_run: bool = False) -> Adoption:
    """Create an OdooTenant for every tenant namespace that has none (see the module
    docstring). Two list requests plus one create per adopted tenant."""
    result = Adoption()
    existing = {i["metadata"]["name"] for i in resources.list().get("items") or []}
    record = ctx.record
    for ns in ctx.kube.list_tenant_namespaces():
        tid = ns.labels.get(TENANT_LABEL, "")
        if not tid or SPEC_ANNOTATION not in ns.annotations:
            continue
        if tid in existing:
            result.present.append(tid)
            continue
        if ns.phase == "Terminating":
            continue
        try:
            spec = record.spec(ns)
            body_spec = from_tenant_spec(
                spec, suspended=record.suspended(ns), owner=record.owner(ns)
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
                resources.create(body)
            result.adopted.append(tid)
        except Conflict:
            result.present.append(tid)  # created meanwhile (another adopter, the API)
        except SaasodooError as exc:
            log.warning("tenant %s: not adopted: %s", tid, exc.message)
            result.failed[tid] = exc.message
    return result
