"""A tenant's status, classified from what the cluster says (release + namespace + workloads).

Pure: the adapters gather a ``Observation`` with as few API calls as possible (for a
whole fleet, a constant number of list calls), and ``classify`` turns it into conditions in
an OdooTenant's form and Flux's vocabulary (``saasodoo.core.conditions``: Ready, Reconciling,
Released, Remediated, Drifted): the one status vocabulary of every view, with the operator
(which writes them on the OdooTenant) and without (``--local``, computed from this).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from saasodoo.core.conditions import (
    DRIFTED,
    FALSE,
    READY,
    RECONCILING,
    RELEASED,
    REMEDIATED,
    TRUE,
    UNKNOWN,
    Reason,
    get_condition,
    kstatus,
    ordered,
    released,
    timestamp,
    waiting,
)
from saasodoo.core.spec import COMPONENT_LABEL, TENANT_LABEL


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
    #: The Odoo series and image the revision runs (``core.versions.revision_odoo``), when
    #: read from its record ("": not read, or not said).
    odoo_series: str = ""
    odoo_image: str = ""


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
    """A tenant's status as ``classify`` computes it from an ``Observation``: conditions in
    an OdooTenant's form and vocabulary (``saasodoo.core.conditions``), so a tenant observed
    without the operator (``--local``) reads as one the operator reports on. ``detail``:
    what was seen, in words (the workloads not ready, the helm operation under way), which
    the operator puts in its own conditions' messages."""

    tenant_id: str
    conditions: tuple[dict[str, Any], ...]
    detail: str
    revision: int | None = None
    release_status: str | None = None
    #: The namespace or the release is being deleted (kstatus ``Terminating``).
    deleting: bool = False

    def condition(self, type: str) -> dict[str, Any]:
        return get_condition(self.conditions, type) or {}

    @property
    def ready(self) -> str:
        """The Ready condition's status: True, False or Unknown."""
        return str(self.condition(READY).get("status", ""))

    @property
    def reason(self) -> str:
        """The Ready condition's reason (Flux's: ``UpgradeSucceeded``, ``Suspended``,
        ``Progressing``, ``UpgradeFailed``, ``Unmanaged``, ``Deleting``, ...)."""
        return str(self.condition(READY).get("reason", ""))

    @property
    def message(self) -> str:
        """The Ready condition's message."""
        return str(self.condition(READY).get("message", ""))

    @property
    def kstatus(self) -> str:
        """kstatus of the status (``conditions.kstatus``): Terminating while deleting."""
        if self.deleting:
            return "Terminating"
        return kstatus({"status": {"conditions": list(self.conditions)}})

    def to_status(self) -> dict[str, Any]:
        """The status as an OdooTenant's ``.status`` carries it (conditions, revision)."""
        return {"conditions": [dict(c) for c in self.conditions], "revision": self.revision}


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
    """The conditions of a tenant from what the cluster shows (its namespace, its release's
    head, its workloads, saasodoo's lock and record), as the operator would report them:

    - namespace Terminating or release uninstalling: Ready False ``Deleting``, Reconciling;
    - no release: Reconciling ``Progressing`` while the create's lock is held, else Ready
      and Released False ``InstallFailed`` (``fleet ensure`` installs it);
    - head failed: Released and Ready False ``InstallFailed`` (revision 1) or
      ``UpgradeFailed``, with helm's description;
    - head pending-*: Reconciling ``Progressing`` while its operation may run; once its lock
      ended or it is older than ``stale_after``, Ready False with the operation's failure
      reason (locked: ``fleet ensure`` recovers it);
    - head deployed but not saasodoo's (an SRE's ``helm rollback``/``upgrade``): Drifted True
      ``DriftDetected``, Ready False ``Unmanaged``;
    - deployed and saasodoo's (or nothing recorded): Released True (``InstallSucceeded`` for
      revision 1, else ``UpgradeSucceeded``), Drifted False when saasodoo's revisions are
      known; Ready True (``Suspended`` when Odoo is scaled to zero), or Unknown with
      Reconciling ``Progressing`` while workloads are not ready (or none is found).

    ``lastTransitionTime`` is when helm last deployed the head (``now`` when unknown): the
    observation does not know when a condition changed; ``observedGeneration`` is absent
    (no object has a generation here)."""
    rel = obs.release
    since = timestamp(rel.updated if rel is not None and rel.updated is not None else now)
    found: list[dict[str, Any]] = []

    def put(type_: str, value: str, reason: str, message: str) -> None:
        found.append({"type": type_, "status": value, "lastTransitionTime": since,
                      "reason": str(reason), "message": message})  # fmt: skip

    def status(detail: str, *, deleting: bool = False) -> TenantStatus:
        return TenantStatus(
            obs.tenant_id,
            tuple(ordered(found)),
            detail,
            revision=rel.revision if rel else None,
            release_status=rel.status if rel else None,
            deleting=deleting,
        )

    def progressing(detail: str) -> None:
        put(READY, UNKNOWN, Reason.PROGRESSING, detail)
        put(RECONCILING, TRUE, Reason.PROGRESSING, detail)

    if obs.namespace_phase == "Terminating" or (rel and rel.status == "uninstalling"):
        detail = "the release or namespace is being deleted"
        put(READY, FALSE, Reason.DELETING, detail)
        put(RECONCILING, TRUE, Reason.PROGRESSING, detail)
        return status(detail, deleting=True)
    if rel is None:
        if obs.lock is not None and obs.lock.held(now):
            progressing(detail := "namespace prepared, helm install in progress")
            return status(detail)
        detail = "namespace prepared, release not installed"
        if obs.lock is not None:
            detail += f" (operation '{obs.lock.operation}' {obs.lock.ended()})"
        detail += "; saasodoo fleet ensure installs it"
        put(READY, FALSE, Reason.INSTALL_FAILED, detail)
        put(RELEASED, FALSE, Reason.INSTALL_FAILED, detail)
        return status(detail)
    install = rel.revision == 1
    failed_reason = Reason.INSTALL_FAILED if install else Reason.UPGRADE_FAILED
    if rel.status == "failed":
        why = rel.description.strip()
        detail = f"revision {rel.revision} failed" + (f": {why}" if why else "")
        put(READY, FALSE, failed_reason, detail)
        put(RELEASED, FALSE, failed_reason, detail)
        return status(detail)
    if rel.status.startswith("pending-"):
        operation = rel.status.removeprefix("pending-")
        stuck = pending_stuck(obs, now)
        if not stuck:
            progressing(detail := f"helm {operation} in progress")
            return status(detail)
        detail = (f"locked ({stuck}); saasodoo fleet ensure recovers it (--force if helm ran "
                  "by hand)")  # fmt: skip
        if operation == "rollback":
            put(READY, FALSE, Reason.ROLLBACK_FAILED, detail)
            put(REMEDIATED, FALSE, Reason.ROLLBACK_FAILED, detail)
        else:
            why_failed = Reason.INSTALL_FAILED if operation == "install" else Reason.UPGRADE_FAILED
            put(READY, FALSE, why_failed, detail)
            put(RELEASED, FALSE, why_failed, detail)
        return status(detail)
    if rel.status != "deployed":
        detail = f"release status is {rel.status}"
        put(READY, UNKNOWN, Reason.PROGRESSING, detail)
        return status(detail)

    if obs.saasodoo_revisions and rel.revision not in obs.saasodoo_revisions:
        detail = (
            f"changed by hand: revision {rel.revision} is not saasodoo's (its last is "
            f"{max(obs.saasodoo_revisions)}); left alone: `saasodoo fleet ensure --force` "
            "(or the OdooTenant's saasodoo.dev/force-requested-at) brings it back to its spec"
        )
        put(READY, FALSE, Reason.UNMANAGED, detail)
        put(DRIFTED, TRUE, Reason.DRIFT_DETECTED, detail)
        return status(detail)
    reason, message = released(install, rel.revision)
    put(RELEASED, TRUE, reason, message)
    if obs.saasodoo_revisions:
        put(DRIFTED, FALSE, Reason.NO_DRIFT_DETECTED, "the release's head is saasodoo's")
    odoo = [w for w in obs.workloads if w.component in ("odoo", "cron")]
    if odoo and all(w.desired == 0 for w in odoo):
        detail = "Odoo scaled to zero; data kept"
        put(READY, TRUE, Reason.SUSPENDED, f"suspended: {detail}")
        return status(detail)
    if not obs.workloads:
        progressing(waiting(message, detail := "no workloads found for the release"))
        return status(detail)
    unready = [w for w in obs.workloads if not w.is_ready]
    if not unready:
        put(READY, TRUE, reason, message)
        return status("all workloads ready")
    detail = ", ".join(f"{w.kind.lower()}/{w.name} {w.ready}/{w.desired} ready" for w in unready)
    progressing(waiting(message, detail))
    return status(detail)
