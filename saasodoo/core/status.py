"""A tenant's status, classified from what the cluster says (release + namespace + workloads).

Pure: the adapters gather a ``Observation`` with as few API calls as possible (for a
whole fleet, a constant number of list calls), and ``classify`` turns it into one of
creating, ready, degraded, failed, suspended, deleting, with the reason.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from saasodoo.core.spec import COMPONENT_LABEL, TENANT_LABEL


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
class OperationLock:
    """The operation in flight on a tenant (in its record), set before helm runs."""

    holder: str  # host:pid
    operation: str
    digest: str  # the digest the operation applies
    expires: datetime
    alive: bool | None = None  # holder process alive (None: cannot tell, another host)

    def held(self, now: datetime) -> bool:
        """Whether the holder still operates (alive, or unknown and not expired)."""
        if self.alive is not None:
            return self.alive and now < self.expires
        return now < self.expires

    def ended(self) -> str:
        """Why the lock no longer holds, for a reason: its expiry or its holder's end."""
        if self.alive is False:
            return f"ended (its process {self.holder} is gone)"
        return f"expired at {self.expires.isoformat(timespec='seconds')}"


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


def add_workloads(
    out: dict[str, list[Workload]], kind: str, items: Iterable[Mapping[str, Any]]
) -> dict[str, list[Workload]]:
    """Reduce raw Deployments or StatefulSets (``kind``; the API's JSON, whole or slimmed to
    metadata name/generation/labels, ``spec.replicas`` and the status counts) into ``out``:
    tenant id (label ``TENANT_LABEL``) -> its Workloads. A replica count of a generation
    the controller has not observed yet counts no replica as updated. Returns ``out``."""
    for obj in items:
        meta, spec, status = obj["metadata"], obj.get("spec") or {}, obj.get("status") or {}
        labels = meta.get("labels") or {}
        current = meta.get("generation") == status.get("observedGeneration")
        replicas = spec.get("replicas")
        out.setdefault(labels[TENANT_LABEL], []).append(
            Workload(
                kind=kind,
                name=meta["name"],
                component=labels.get(COMPONENT_LABEL, ""),
                desired=1 if replicas is None else replicas,
                ready=status.get("readyReplicas", 0),
                updated=status.get("updatedReplicas", 0) if current else 0,
            )
        )
    return out


@dataclass(frozen=True)
class SetPod:
    """A pod of a StatefulSet: its revision (label ``controller-revision-hash``), whether it
    is Ready, whether it is being deleted."""

    name: str
    revision: str
    ready: bool
    deleting: bool = False


@dataclass(frozen=True)
class StatefulSetPods:
    """A StatefulSet of the tenant with its pods, as the controller sees them."""

    name: str
    #: ``.status.updateRevision``: the revision its pods should run.
    update_revision: str
    #: ``.status.observedGeneration`` reached ``.metadata.generation``: the controller has
    #: seen the current template (so ``update_revision`` is the template's).
    observed: bool
    #: ``podManagementPolicy: OrderedReady`` with ``updateStrategy: RollingUpdate``, where a
    #: pod that never becomes Ready blocks the controller for good (kubernetes#67250).
    ordered_rolling: bool
    pods: tuple[SetPod, ...] = ()


def stuck_pods(sets: tuple[StatefulSetPods, ...] | list[StatefulSetPods]) -> list[str]:
    """Pods the StatefulSet controller will never replace by itself: under OrderedReady and
    RollingUpdate it waits for every pod to be Ready before updating any, so a pod of another
    revision than the template's (a failed upgrade's) that is not Ready (Pending, crashing)
    blocks a rollback for good (kubernetes/kubernetes#67250, the documented remedy is to
    delete it: "Forced rollback"). Only once the controller has seen the current template."""
    return sorted(
        pod.name
        for sts in sets
        if sts.observed and sts.ordered_rolling and sts.update_revision
        for pod in sts.pods
        if pod.revision and pod.revision != sts.update_revision
        and not pod.ready and not pod.deleting
    )  # fmt: skip


@dataclass(frozen=True)
class Observation:
    tenant_id: str
    namespace_phase: str | None  # Active, Terminating, or None when absent
    release: ReleaseInfo | None
    workloads: tuple[Workload, ...] = field(default=())
    #: saasodoo's operation lock on the namespace (None: none recorded).
    lock: OperationLock | None = None
    #: How long a pending revision nobody holds counts as in progress (the helm timeout plus
    #: the lock's margin); None: always.
    stale_after: timedelta | None = None
    #: The revisions saasodoo knows it made (the one it last applied, one its failed
    #: operation left); empty: unknown (nothing recorded). Another deployed head is a hand
    #: change (an SRE's helm rollback/upgrade).
    saasodoo_revisions: tuple[int, ...] = ()


@dataclass(frozen=True)
class TenantStatus:
    tenant_id: str
    phase: Phase
    reason: str
    revision: int | None = None
    release_status: str | None = None


def pending_stuck(obs: Observation, now: datetime) -> str:
    """Why a pending release is no longer in progress ("" while it may be): the operation
    lock expired or its process is gone, or, with no lock, the revision is older than
    ``stale_after``. Such a release is locked until ``ensure`` unlocks it."""
    rel, lock = obs.release, obs.lock
    if lock is not None:
        return "" if lock.held(now) else f"operation '{lock.operation}' {lock.ended()}"
    if rel is None or rel.updated is None or obs.stale_after is None:
        return ""
    expired = rel.updated + obs.stale_after
    if now < expired:
        return ""
    return (
        f"{rel.status} since {rel.updated.isoformat(timespec='seconds')}, operation "
        f"expired at {expired.isoformat(timespec='seconds')}"
    )


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
    if rel.status.startswith("pending-"):
        stuck = pending_stuck(obs, now)
        if stuck:
            return status(
                Phase.DEGRADED,
                f"locked ({stuck}); saasodoo fleet ensure recovers it "
                "(--force if helm ran by hand)",
            )
    if rel.status == "pending-install":
        return status(Phase.CREATING, "helm install in progress")
    if rel.status in ("pending-upgrade", "pending-rollback"):
        return status(Phase.DEGRADED, f"helm {rel.status.removeprefix('pending-')} in progress")
    if rel.status != "deployed":
        return status(Phase.DEGRADED, f"release status is {rel.status}")

    if obs.saasodoo_revisions and rel.revision not in obs.saasodoo_revisions:
        return status(
            Phase.DEGRADED,
            f"changed by hand: revision {rel.revision} is not saasodoo's (its last is "
            f"{max(obs.saasodoo_revisions)}); left alone: `saasodoo fleet ensure --force` "
            "(or the OdooTenant's saasodoo.dev/force-requested-at) brings it back to its spec",
        )
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
