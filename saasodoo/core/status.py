"""A tenant's status, classified from what the cluster says (release + namespace + workloads).

Pure: the adapters gather a ``Observation`` with as few API calls as possible (for a
whole fleet, a constant number of list calls), and ``classify`` turns it into one of
creating, ready, degraded, failed, suspended, deleting, with the reason.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum


class Phase(StrEnum):
    CREATING = "creating"
    READY = "ready"
    DEGRADED = "degraded"
    FAILED = "failed"
    SUSPENDED = "suspended"
    DELETING = "deleting"


#: A first install whose pods are not Ready yet counts as "creating" for this long.
CREATING_GRACE = timedelta(minutes=15)


@dataclass(frozen=True)
class ReleaseInfo:
    """The newest revision of a tenant's Helm release."""

    revision: int
    status: str  # helm's: deployed, failed, pending-install, pending-upgrade, ...
    updated: datetime | None = None
    description: str = ""
    chart: str = ""
    app_version: str = ""


@dataclass(frozen=True)
class Workload:
    """A Deployment or StatefulSet of the tenant."""

    kind: str
    name: str
    component: str  # app.kubernetes.io/component: odoo, cron, postgresql, ...
    desired: int
    ready: int
    updated: int | None = None

    @property
    def is_ready(self) -> bool:
        return self.ready >= self.desired and (self.updated is None or self.updated >= self.desired)


@dataclass(frozen=True)
class Observation:
    tenant_id: str
    namespace_phase: str | None  # Active, Terminating, or None when absent
    release: ReleaseInfo | None
    workloads: tuple[Workload, ...] = field(default=())


@dataclass(frozen=True)
class TenantStatus:
    tenant_id: str
    phase: Phase
    reason: str
    revision: int | None = None
    release_status: str | None = None


def classify(obs: Observation, now: datetime) -> TenantStatus:
    def status(phase: Phase, reason: str) -> TenantStatus:
        rel = obs.release
        return TenantStatus(
            obs.tenant_id,
            phase,
            reason,
            revision=rel.revision if rel else None,
            release_status=rel.status if rel else None,
        )

    rel = obs.release
    if obs.namespace_phase == "Terminating" or (rel and rel.status == "uninstalling"):
        return status(Phase.DELETING, "the release or namespace is being deleted")
    if rel is None:
        return status(Phase.CREATING, "namespace prepared, release not installed yet")
    if rel.status == "failed":
        why = rel.description.strip()
        return status(Phase.FAILED, f"revision {rel.revision} failed" + (f": {why}" if why else ""))
    if rel.status == "pending-install":
        return status(Phase.CREATING, "helm install in progress")
    if rel.status in ("pending-upgrade", "pending-rollback"):
        return status(Phase.DEGRADED, f"helm {rel.status.removeprefix('pending-')} in progress")
    if rel.status != "deployed":
        return status(Phase.DEGRADED, f"release status is {rel.status}")

    odoo = [w for w in obs.workloads if w.component in ("odoo", "cron")]
    if odoo and all(w.desired == 0 for w in odoo):
        return status(Phase.SUSPENDED, "Odoo scaled to zero; data kept")
    if not obs.workloads:
        return status(Phase.DEGRADED, "no workloads found for the release")
    waiting = [w for w in obs.workloads if not w.is_ready]
    if not waiting:
        return status(Phase.READY, "all workloads ready")
    detail = ", ".join(f"{w.kind.lower()}/{w.name} {w.ready}/{w.desired} ready" for w in waiting)
    young = rel.updated is not None and now - rel.updated < CREATING_GRACE
    if rel.revision == 1 and young:
        return status(Phase.CREATING, f"starting: {detail}")
    return status(Phase.DEGRADED, detail)
