"""The OdooTenant controller: one reconcile per tenant, on the house's lifecycle and rules.

``TenantController.reconcile(name)`` brings one ``OdooTenant`` (``saasodoo.dev/v1alpha1``,
in the platform namespace) and its tenant together, one step per call, and writes what it
saw and did to the object's status (``saasodoo.core.conditions.next_status``: Flux's
conditions) and as Events. The steps, in order:

1. deletion requested: the finalizer's work (final backup unless ``spec.finalBackup`` is
   false, ``helm uninstall``, the domain claims released, the namespace removed), then the
   finalizer goes. A final backup that cannot be kept holds the deletion, with
   ``Ready=False`` reason ``FinalBackupFailed`` naming the way out;
2. the finalizer is added before anything is created;
3. no tenant yet: ``Tenants.create`` (the namespace, the admin Secret, ``helm install``),
   from its Odoo image's template database when there is one, else with ``-i base`` and
   the template then built (``saasodoo.operator.templates``);
4. an update that changes Odoo's code (a new image of the series, a code option of
   odoo.conf): ``odoo -u`` with a pre-update backup, undone on failure
   (``saasodoo.operator.updates``), before 5 and 6 could apply it with a plain helm upgrade;
5. the spec differs from the tenant's record: ``Tenants.update`` / ``suspend`` / ``resume``
   (their checks run first: a refused change is ``Stalled`` with reason ``InvalidSpec``);
6. else the reconcile rules (``Reconciler.ensure``): in sync costs no helm call; a locked,
   interrupted or failed operation is recovered; an SRE's ``helm rollback`` is reported as
   drift and left alone unless ``saasodoo.dev/force-requested-at`` asks otherwise.

A tenant whose workloads are not ready yet is looked at again after ``POLL_SECONDS``; a
failure goes back to the work queue with its back-off, at most ``MAX_RETRIES`` times per
generation, then the tenant is ``Stalled`` until its spec changes or a reconcile is forced.
The spec comes from the OdooTenant; saasodoo's record of the tenant (the spec it last
applied, with the verified domains and what it was created with; the applied digest and
revision, the operation lock, a failed digest, an unfinished revision) is the OdooTenant's
``status.record`` too, written by the lifecycle (``saasodoo.record``) with merge patches of
those fields alone, so this controller's condition writes and the record's never undo each
other; the namespace carries only its labels. A record still on the namespace (a tenant
adopted by an earlier version) is moved onto the OdooTenant at the start of its first
reconcile, without a helm call.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any, Required, TypedDict, Unpack

from saasodoo.adapters.kube import Namespace
from saasodoo.adapters.records import StatusRider
from saasodoo.adapters.resources import TenantResources
from saasodoo.context import Context
from saasodoo.core import updates as up
from saasodoo.core.conditions import (
    ReconcileReport,
    get_condition,
    next_status,
    revert_conditions,
    status_changed,
    timestamp,
)
from saasodoo.core.copies import seconds_to_expiry, with_reason
from saasodoo.core.crd import (
    DOMAINS_LIMIT,
    FINALIZER,
    FORCE_REQUESTED_AT,
    OWNER_LABEL,
    RECONCILE_REQUESTED_AT,
    RELEASES_LIMIT,
    UPDATE_RESOLVED_AT,
    owner_label,
    to_tenant_spec,
)
from saasodoo.core.domains import domain_check_due, next_domain_check
from saasodoo.core.reconcile import State
from saasodoo.core.spec import NAMESPACE_PREFIX, TENANT_LABEL, TenantSpec, namespace_for
from saasodoo.core.status import Observation, ReleaseInfo, Workload, classify
from saasodoo.core.templates import BUILDING, RESTORING
from saasodoo.errors import InvalidInput, NotFound, SaasodooError
from saasodoo.operator.copies import CopyExecutor
from saasodoo.operator.templates import FOLLOW_SECONDS as TEMPLATE_FOLLOW_SECONDS
from saasodoo.operator.templates import TemplateCreates
from saasodoo.operator.updates import Proceed, UpdateExecutor
from saasodoo.reconciler import ObservedTenant, Outcome, Reconciler
from saasodoo.reconciler import upgrade as upgrade_executor
from saasodoo.tenants import Tenants

log = logging.getLogger(__name__)

#: Annotation asking for one forced reconcile (``saasodoo.core.crd.FORCE_REQUESTED_AT``).
FORCE_ANNOTATION = FORCE_REQUESTED_AT
#: How soon a tenant whose workloads are still starting is looked at again (seconds).
POLL_SECONDS = 5.0
#: How soon a tenant another operation holds is looked at again (seconds).
BUSY_SECONDS = 15.0
#: Failed attempts at one generation before the tenant is Stalled.
MAX_RETRIES = 3
#: First retry interval after a failure (seconds); doubles per failure, at most 600.
RETRY_SECONDS = 10.0
#: Spec fields that ``Tenants.update`` changes, by TenantSpec name.
UPDATABLE = ("plan", "odoo_version", "custom_domains", "overrides")


@dataclass(frozen=True)
class Result:
    """What the work queue does next with a key: nothing (None), or look again after
    ``requeue_after`` seconds; ``failed`` counts a failure (retried after ``requeue_after``,
    or at the queue's back-off when None). ``written``: the OdooTenant as the report's status
    write returned it (None: nothing written), for the turn to go on with without reading it
    again; not part of what the queue is told (nor ``workloads_ready``)."""

    requeue_after: float | None = None
    failed: bool = False
    written: dict[str, Any] | None = field(default=None, compare=False, repr=False)
    #: Whether the status written says the tenant's workloads are ready (None: the turn did
    #: not look at them): a workload event that arrived during the turn needs no turn of its
    #: own when the workloads' cache agrees (``saasodoo.operator.run``).
    workloads_ready: bool | None = field(default=None, compare=False)


DONE = Result()


class Report(TypedDict, total=False):
    """What a turn reports (``TenantController.compose``'s keyword arguments, read there)."""

    outcome: Required[str]
    detail: Required[str]
    state: str
    operation: str | None
    started: datetime | None
    workloads_ready: bool | None
    revision: int | None
    digest: str | None
    failed: bool
    deleting: bool
    handled_force: bool
    handled_resolved: bool
    inventory: list[str] | None
    releases: list[Any] | None
    domains: list[dict[str, Any]] | None
    copy: dict[str, Any] | None
    reason: str | None
    template: dict[str, Any] | None
    update: dict[str, Any] | None


@dataclass(frozen=True)
class Seen:
    """What a reconcile has just read of its tenant, handed to ``observe`` so it reads none
    of it again: the release head, the tenant's workloads and its inventory."""

    head: ReleaseInfo | None
    workloads: Sequence[Workload]
    inventory: list[str]


def annotations_of(obj: dict[str, Any]) -> dict[str, str]:
    return dict((obj.get("metadata") or {}).get("annotations") or {})


class TenantController:
    """Reconciles the OdooTenants of ``resources`` with one context's adapters and
    lifecycle (``Tenants``)."""

    def __init__(self, ctx: Context, resources: TenantResources) -> None:
        self.ctx = ctx
        self.tenants = Tenants(ctx)
        self.resources = resources
        self.reconciler = Reconciler(ctx)
        self.copier = CopyExecutor(self)
        self.templates = TemplateCreates(self)
        self.updater = UpdateExecutor(self)

    # -- one reconcile --------------------------------------------------------------

    async def reconcile(self, name: str) -> Result:
        """Reconcile the OdooTenant ``name`` (see the module docstring). Raises nothing a
        worker must handle beyond what the returned Result says; unexpected errors
        propagate (the worker logs them and backs the key off). A staging copy past its
        ``spec.expiresAt`` is deleted without a final backup; one with an expiry is looked
        at again then."""
        obj = self.resources.get(name)
        if obj is None:
            return DONE
        if obj["metadata"].get("deletionTimestamp"):
            return await self.finalize(obj)
        try:
            left = seconds_to_expiry(obj.get("spec") or {}, datetime.now(UTC))
        except InvalidInput:
            left = None  # the spec's own refusal is reported below
        if left is not None and left <= 0:
            return self.expire(obj)
        result = await self.turn(name, obj)
        if left is None:
            return result
        return replace(result, requeue_after=sooner(result.requeue_after, left))

    def expire(self, obj: dict[str, Any]) -> Result:
        """The copy is past its ``expiresAt``: ``finalBackup: false`` on its spec (visible),
        then deleted; the finalizer uninstalls it without a final backup."""
        name = obj["metadata"]["name"]
        expires = (obj.get("spec") or {}).get("expiresAt")
        if (obj.get("spec") or {}).get("finalBackup", True):
            self.resources.patch(name, {"spec": {"finalBackup": False}})
        self.event(obj, "Normal", "Expired", f"expired at {expires}: deleted without a final "
                   "backup", "Delete")  # fmt: skip
        self.resources.delete(name)
        return Result(requeue_after=0.0)

    async def turn(self, name: str, obj: dict[str, Any]) -> Result:
        """The reconcile of the OdooTenant ``obj`` that is not being deleted."""
        if FINALIZER not in (obj["metadata"].get("finalizers") or []):
            obj = self.resources.set_finalizer(obj, FINALIZER, True)
        owner = owner_label((obj.get("spec") or {}).get("owner"))
        if (obj["metadata"].get("labels") or {}).get(OWNER_LABEL) != owner:
            # The label the API lists a user's tenants by follows spec.owner (a kubectl
            # apply, an owner changed by hand, an OdooTenant older than the label).
            obj = self.resources.patch(name, {"metadata": {"labels": {OWNER_LABEL: owner}}})
        generation = int(obj["metadata"].get("generation") or 0)
        previous = dict(obj.get("status") or {})
        attempts = int(previous.get("failures") or 0)
        if previous.get("observedGeneration") != generation:
            attempts = 0  # a new generation gets its own tries
        force = self.force_requested(obj)
        # The tenant's record is on this object; one left on its namespace by an earlier
        # version is moved here first (no helm call).
        ns = self.ctx.record.of(name, obj)
        try:
            spec = self.desired_spec(obj, ns)
        except InvalidInput as exc:
            return self.report(obj, outcome="invalid", detail=exc.message)
        # An update under way is never given up half-way (Odoo may be at zero): its own
        # steps decide, whatever failed turns came before.
        if attempts >= MAX_RETRIES and not force and not up.in_progress(previous.get("update")):
            return self.report(
                obj, outcome="stalled",
                detail=f"gave up after {attempts} failed attempts at generation {generation}: "
                f"{previous_message(previous)}; change the spec or annotate "
                f"{FORCE_ANNOTATION} to try again",
            )  # fmt: skip
        try:
            if spec.copy_of is not None:  # a staging copy: made first (saasodoo.operator.copies)
                made = await self.copier.step(obj, spec, ns)
                if made is not None:
                    return made
                obj = self.resources.get(name) or obj
                ns = self.ctx.record.read(namespace_for(name))
            if ns is None:
                return await self.create(obj, spec)
            if ns.phase == "Terminating":
                return self.report(obj, outcome="busy", detail="its namespace is terminating",
                                   requeue=BUSY_SECONDS)  # fmt: skip
            # A change of Odoo's code goes through odoo -u (saasodoo.operator.updates), never
            # through apply_spec's or ensure's plain helm upgrade.
            updating = await self.updater.step(obj, spec, ns)
            if not isinstance(updating, Proceed):
                return updating
            obj = updating.obj  # as the step last wrote it: not read again
            changed = await self.apply_spec(obj, spec, ns)
            if changed is not None:
                return changed
            return await self.ensure(obj, ns, force=force)
        except InvalidInput as exc:
            return self.report(obj, outcome="invalid", detail=exc.message)
        except SaasodooError as exc:
            log.warning("tenant %s: %s", name, exc.message)
            return self.report(obj, outcome="failed", detail=exc.message, failed=True)

    def desired_spec(self, obj: dict[str, Any], ns: Namespace | None) -> TenantSpec:
        """The TenantSpec the OdooTenant asks for, with what only saasodoo records (verified
        domains, creation facts) from the tenant's record. InvalidInput names the field."""
        verified: tuple[str, ...] = ()
        created_with = None
        if ns is not None and self.ctx.record.has_spec(ns):
            recorded = self.ctx.record.spec(ns)
            verified, created_with = recorded.verified_domains, recorded.created_with
        spec = to_tenant_spec(
            obj["metadata"]["name"], obj.get("spec") or {},
            verified_domains=verified, created_with=created_with, copies=True,
        )  # fmt: skip
        self.ctx.catalog.plan(spec.plan)  # an unknown plan: InvalidInput naming it
        return spec

    def has_record(self, ns: Namespace) -> bool:
        """Whether the tenant of ``ns`` (as the record reads it) has a recorded spec."""
        return self.ctx.record.has_spec(ns)

    def force_requested(self, obj: dict[str, Any]) -> bool:
        token = annotations_of(obj).get(FORCE_ANNOTATION)
        return bool(token) and token != (obj.get("status") or {}).get("lastHandledForceAt")

    @staticmethod
    def update_resolved(obj: dict[str, Any]) -> bool:
        """Whether ``saasodoo.dev/update-resolved-at`` holds a value not handled yet."""
        token = annotations_of(obj).get(UPDATE_RESOLVED_AT)
        status = obj.get("status") or {}
        return bool(token) and token != status.get("lastHandledUpdateResolvedAt")

    async def create(self, obj: dict[str, Any], spec: TenantSpec) -> Result:
        """Install a new tenant: from its image's template when there is one (restored
        beside the install, no ``helm --wait``: saasodoo.operator.templates), else with
        ``-i base`` (``helm --wait``), after which a missing template is built here."""
        plan = await asyncio.to_thread(self.templates.plan, spec)
        templated = plan is not None and plan.backup is not None
        how = f", from the template {plan.key}" if plan is not None and templated else ""
        obj = self.progress(obj, f"installing (plan {spec.plan}, Odoo {spec.odoo_version}{how})")
        owner = (obj.get("spec") or {}).get("owner")
        started = datetime.now(UTC)
        self.event(obj, "Normal", "Progressing", f"helm install of {spec.id}{how}", "Install")
        placed = self.placed((obj.get("spec") or {}).get("nodePool"))
        template: dict[str, Any] | None = None
        try:
            if plan is not None and templated:
                template = await self.templates.create_from(obj, spec, plan, placed, owner)
            else:
                await placed.create(spec, owner=owner, wait=True)
        except InvalidInput:
            raise
        except SaasodooError as exc:
            self.event(obj, "Warning", "InstallFailed", exc.message, "Install")
            return self.report(obj, outcome="failed", detail=exc.message, failed=True,
                               operation="install", started=started)  # fmt: skip
        self.event(obj, "Normal", "InstallSucceeded", f"{spec.id} installed", "Install")
        if plan is not None and not templated:
            template = await self.templates.build(obj, spec, plan)
        ns = self.ctx.record.read(spec.namespace)
        return await self.observe(
            obj, ns, outcome="installed", operation="install", started=started,
            template=template,
        )  # fmt: skip

    def placed(self, node_pool: str | None) -> Tenants:
        """The lifecycle that creates a tenant on ``node_pool`` (None: the platform's
        setting); what it is created with is then recorded and kept (``created_with``)."""
        ctx = self.ctx
        if node_pool is None or node_pool == ctx.settings.node_pool:
            return self.tenants
        settings = ctx.settings.model_copy(update={"node_pool": node_pool})
        placed = Context(settings, helm=ctx.helm, kube=ctx.kube, catalog=ctx.catalog)
        placed.record.holder, placed.record.alive = ctx.record.holder, ctx.record.alive
        return Tenants(placed)

    async def apply_spec(
        self, obj: dict[str, Any], spec: TenantSpec, ns: Namespace
    ) -> Result | None:
        """Apply a changed spec through the lifecycle's checks; None when nothing changed."""
        if not self.ctx.record.has_spec(ns):
            raise InvalidInput(
                f"namespace {ns.name} exists but is not a saasodoo tenant's; "
                "delete it or choose another name"
            )
        record = self.ctx.record
        current = record.spec(ns)
        owner = (obj.get("spec") or {}).get("owner")
        if owner and record.owner(ns) != owner:
            if record.owner(ns) and (obj.get("status") or {}).get("observedGeneration") is None:
                # A new OdooTenant naming a tenant of another owner (the API checks no
                # namespace): never handed over.
                raise InvalidInput(
                    f"tenant '{spec.id}' already exists (namespace {ns.name}) and belongs to "
                    "another owner"
                )
            record.write_owner(ns.name, owner)
        changes = {
            f: getattr(spec, f) for f in UPDATABLE if getattr(spec, f) != getattr(current, f)
        }
        suspended = bool((obj.get("spec") or {}).get("suspended", False))
        if not changes and suspended == record.suspended(ns):
            return None
        started = datetime.now(UTC)
        upgraded = False
        if changes:
            what = ", ".join(sorted(changes))
            # Reconciling rides on the lock's write, the record of what was applied on the
            # next: one status write each instead of two (StatusRider).
            rider = self.rider(obj, f"upgrading ({what})")
            told = self.event_beside(obj, "Normal", "Progressing", f"helm upgrade: {what}",
                                     "Upgrade")  # fmt: skip
            args: dict[str, Any] = {
                k: (list(v) if isinstance(v, tuple) else v) for k, v in changes.items()
            }
            try:
                # not a code change: the update executor (updates.py) ran before; the
                # namespace and its record as read in this turn
                await self.tenants.apply_update(spec.id, ns=ns, wait=True, rider=rider,
                                                allow_code_change=True, **args)  # fmt: skip
            except InvalidInput:
                raise
            except SaasodooError as exc:
                obj = rider.written or obj
                self.event(obj, "Warning", "UpgradeFailed", exc.message, "Upgrade")
                return self.report(obj, outcome="failed", detail=exc.message, failed=True,
                                   operation="upgrade", started=started)  # fmt: skip
            finally:
                await told
            if rider.written is not None:
                obj = rider.written  # as the last write carrying the status answered
                if ns.record_held:  # that write was the record's of what was applied
                    ns, upgraded = self.ctx.record.attach(ns, obj), True
        # The update recorded the suspension it found (``record.suspended(ns)``): unchanged.
        if suspended != record.suspended(ns):
            verb = "suspend" if suspended else "resume"
            obj = self.progress(obj, f"{verb}ing")
            try:
                if suspended:
                    await self.tenants.suspend(spec.id, wait=True)
                else:
                    await self.tenants.resume(spec.id, wait=True)
            except SaasodooError as exc:
                self.event(obj, "Warning", "UpgradeFailed", exc.message, verb.capitalize())
                return self.report(obj, outcome="failed", detail=exc.message, failed=True,
                                   operation=verb, started=started)  # fmt: skip
            upgraded = False  # the suspension's helm call wrote the record again
        told = self.event_beside(obj, "Normal", "UpgradeSucceeded", f"{spec.id} upgraded",
                                 "Upgrade")  # fmt: skip
        try:
            if not upgraded:
                ns = self.recorded(obj, ns)
            return await self.observe(obj, ns, outcome="upgraded", operation="upgrade",
                                      started=started)  # fmt: skip
        finally:
            await told

    async def ensure(self, obj: dict[str, Any], ns: Namespace, *, force: bool) -> Result:
        """The reconcile rules on the tenant as the cluster shows it: no helm call when it
        is in sync (the head revision is read from Helm's storage records)."""
        kube = self.ctx.kube
        head = kube.list_release_heads(ns.name).get((ns.name, obj["metadata"]["name"]))
        first = None
        if head is None or head.status != "failed":  # a failed head needs helm's history
            first = await self.reconciler.observed(ns, head)
            state = self.reconciler.state_of(first)
            if state is State.IN_SYNC and first.observation.lock is None and not force:
                # What observe reads, read once here: the head, the workloads, the inventory.
                workloads = kube.list_workloads(ns.name).get(obj["metadata"]["name"], [])
                found = self.inventory(ns.name, workloads)
                missing = sorted(set(inventory_of(obj)) - set(found))
                if not missing:
                    try:
                        domains, routed, recheck = await self.check_domains(obj, ns)
                    except SaasodooError as exc:  # the claims unreadable now: next time
                        log.warning("tenant %s: custom domains not checked: %s",
                                    obj["metadata"]["name"], exc.message)  # fmt: skip
                        domains, routed, recheck = None, [], POLL_SECONDS * 12
                    if routed:
                        ns = self.recorded(obj, ns)
                        return await self.observe(
                            obj, ns, outcome="upgraded", detail=f"custom domain routed: "
                            f"{', '.join(routed)}", operation="upgrade", started=started_at(),
                            domains=domains, recheck=recheck,
                        )  # fmt: skip
                    return await self.observe(obj, ns, outcome="unchanged", state=state.value,
                                              domains=domains, recheck=recheck,
                                              already=Seen(head, workloads, found))  # fmt: skip
                return await self.correct_drift(obj, first, missing)
        started = datetime.now(UTC)
        result = await self.reconciler.ensure(obj["metadata"]["name"], force=force, first=first)
        operation = None
        if result.steps:
            operation = result.steps[-1].rsplit("-> ", 1)[-1]
            kind = (
                "Warning" if result.outcome in (Outcome.FAILED, Outcome.ROLLED_BACK) else "Normal"
            )
            self.event(obj, kind, reason_of(result.outcome), result.detail or result.outcome.value,
                       operation.capitalize())  # fmt: skip
        if result.outcome is Outcome.BUSY:
            return self.report(obj, outcome="busy", detail=result.detail, requeue=BUSY_SECONDS)
        if result.outcome in (Outcome.FAILED, Outcome.GAVE_UP):
            return self.report(obj, outcome=result.outcome.value, detail=result.detail,
                               failed=True, operation=operation, started=started)  # fmt: skip
        ns = self.recorded(obj, ns)
        return await self.observe(obj, ns, outcome=result.outcome.value, detail=result.detail,
                            operation=operation, started=started, handled_force=force)  # fmt: skip

    async def check_domains(
        self, obj: dict[str, Any], ns: Namespace
    ) -> tuple[list[dict[str, Any]] | None, list[str], float | None]:
        """The custom domains of a tenant in sync: each unproven one whose check is due
        (``core.domains.domain_check_due``: asked for through the reconcile-request
        annotation, never checked, or its back-off over) is looked for in DNS (bounded by
        ``Settings.dns_timeout``) and, once proven, claimed and routed
        (``Tenants.verify_domain``: a helm upgrade). Returns ``status.domains`` (None: no
        change, no request made), the hosts routed now, and the seconds until the next check
        is due (None: none)."""
        name = obj["metadata"]["name"]
        status = obj.get("status") or {}
        hosts = list((obj.get("spec") or {}).get("customDomains") or [])
        previous = {str(d.get("host")): d for d in status.get("domains") or []}
        if not hosts:
            return ([] if previous else None), [], None
        now = datetime.now(UTC)
        asked = annotations_of(obj).get(RECONCILE_REQUESTED_AT)
        requested = bool(asked) and asked != status.get("lastHandledReconcileAt")
        record = self.ctx.record
        verified = set(record.spec(ns).verified_domains)
        due = [h for h in hosts if h not in verified
               and domain_check_due(previous.get(h), now, requested)]  # fmt: skip
        if not due and list(previous) == hosts[:DOMAINS_LIMIT]:
            return None, [], seconds_to_next_check(previous.values(), verified, now)
        checks: dict[str, str] = {}
        routed: list[str] = []
        for host in due:
            try:
                await self.tenants.verify_domain(name, host, wait=True)
            except SaasodooError as exc:  # no proof yet, taken, DNS unavailable
                checks[host] = exc.message
            else:
                routed.append(host)
        spec = record.spec(record.namespace(name)) if routed else record.spec(ns)
        entries = []
        for state in self.ctx.domains.states(spec)[:DOMAINS_LIMIT]:
            old = previous.get(state.host) or {}
            entry: dict[str, Any] = {"host": state.host, "state": state.state}
            if state.challenge is not None:
                entry.update(txtName=state.challenge.txt_name,
                             txtValue=state.challenge.txt_value,
                             cnameTarget=state.challenge.cname_target)  # fmt: skip
            if state.host in routed:
                entry.update(message="proven through DNS: routed", checkedAt=timestamp(now))
            elif state.host in checks:
                failed = 1 if requested else int(old.get("failedChecks") or 0) + 1
                entry.update(message=checks[state.host][:1024], checkedAt=timestamp(now),
                             nextCheckAt=timestamp(next_domain_check(failed, now)),
                             failedChecks=failed)  # fmt: skip
            else:
                entry.update({k: old[k] for k in ("message", "checkedAt", "nextCheckAt",
                                                  "failedChecks") if k in old})  # fmt: skip
            if state.state == "verified":
                entry.pop("nextCheckAt", None)
                entry.pop("failedChecks", None)
            entries.append(entry)
        verified = set(spec.verified_domains)
        return entries, routed, seconds_to_next_check(entries, verified, now)

    async def correct_drift(
        self, obj: dict[str, Any], tenant: ObservedTenant, missing: list[str]
    ) -> Result:
        """Objects of the release deleted by hand (``missing``, as ``Kind/name``) are put
        back by an upgrade to the same values (helm creates what its manifest has and the
        cluster lacks), as Flux's drift correction does."""
        what = ", ".join(missing)
        self.event(obj, "Warning", "DriftDetected", f"deleted by hand: {what}", "Upgrade")
        started = datetime.now(UTC)
        try:
            await upgrade_executor(self.reconciler, tenant)
        except SaasodooError as exc:
            return self.report(obj, outcome="failed", detail=f"correcting drift ({what}): "
                               f"{exc.message}", failed=True, operation="upgrade",
                               started=started)  # fmt: skip
        self.event(obj, "Normal", "UpgradeSucceeded", f"put back: {what}", "Upgrade")
        ns = self.recorded(obj, tenant.namespace)
        return await self.observe(obj, ns, outcome="upgraded", detail=f"put back {what}",
                            operation="upgrade", started=started)  # fmt: skip

    def recorded(self, obj: dict[str, Any], ns: Namespace) -> Namespace:
        """``ns`` as read in this turn with the tenant's record as it is now, after a helm
        operation recorded what it applied: the OdooTenant ``obj`` read again (one request;
        ``obj`` itself is left as the turn holds it), the namespace not; both when the record
        is not kept on the OdooTenant."""
        if not ns.record_held:
            return self.ctx.record.read(ns.name) or ns
        current = self.resources.get(obj["metadata"]["name"])
        return self.ctx.record.attach(ns, current) if current is not None else ns

    def inventory(self, namespace: str, workloads: Iterable[Workload] | None = None) -> list[str]:
        """The release's Deployments, StatefulSets and Services now, as sorted ``Kind/name``
        (three list requests; one with the tenant's ``workloads`` as just listed): what a
        later reconcile expects to find (Flux's inventory)."""
        name = namespace.removeprefix(NAMESPACE_PREFIX)
        kube = self.ctx.kube
        if workloads is None:
            workloads = kube.list_workloads(namespace).get(name, [])
        found = [f"{w.kind}/{w.name}" for w in workloads]
        services = kube.list_items(
            "list tenant services", f"/api/v1/namespaces/{namespace}/services",
            f"{TENANT_LABEL}={name}",
        )  # fmt: skip
        found += [f"Service/{s['metadata']['name']}" for s in services]
        return sorted(found)

    # -- deletion -------------------------------------------------------------------

    async def finalize(self, obj: dict[str, Any]) -> Result:
        """The finalizer's work, then the finalizer goes (see the module docstring)."""
        name = obj["metadata"]["name"]
        if FINALIZER not in (obj["metadata"].get("finalizers") or []):
            return DONE
        final_backup = bool((obj.get("spec") or {}).get("finalBackup", True))
        writing = await asyncio.to_thread(self.updater.writing_job, obj)
        if writing:
            # odoo -u or the restore of the pre-update backup is writing the database: a
            # final backup now would keep a half-done state. Deleted once that Job ends.
            update = (obj.get("status") or {}).get("update") or {}
            return self.report(
                obj, outcome="busy", deleting=True, requeue=BUSY_SECONDS,
                detail=f"deleting once the update's Job {writing} ends (pre-update backup "
                f"{update.get('backup') or 'not taken'})",
            )  # fmt: skip
        obj = self.progress(obj, "deleting" + (": taking the final backup" if final_backup else ""),
                            deleting=True)  # fmt: skip
        note = "no final backup (spec.finalBackup is false)"
        try:
            deleted = await self.tenants.delete(name, final_backup=final_backup, wait=True)
            if deleted.final_backup is not None:
                note = f"final backup kept: {deleted.final_backup.location}"
        except NotFound:
            note = "the tenant was already gone"
        except SaasodooError as exc:
            why = (
                f"{exc.message}; nothing was deleted. To delete without a final backup: "
                f"kubectl -n {self.resources.namespace} patch odootenant {name} --type merge "
                '-p \'{"spec":{"finalBackup":false}}\''
            )
            self.event(obj, "Warning", "FinalBackupFailed", why, "Delete")
            return self.report(obj, outcome="final-backup-failed", detail=why, failed=True,
                               deleting=True)  # fmt: skip
        self.event(obj, "Normal", "Deleted", f"{name} deleted; {note}", "Delete")
        # Read again: the deletion wrote the tenant's record (status.record) meanwhile, and
        # the finalizer's patch tests the resourceVersion it was computed from.
        current = self.resources.get(name)
        if current is not None:
            self.resources.set_finalizer(current, FINALIZER, False)
        return DONE

    # -- status ---------------------------------------------------------------------

    async def observe(
        self,
        obj: dict[str, Any],
        ns: Namespace | None,
        *,
        outcome: str,
        detail: str = "",
        state: str = "",
        operation: str | None = None,
        started: datetime | None = None,
        handled_force: bool = False,
        domains: list[dict[str, Any]] | None = None,
        recheck: float | None = None,
        template: dict[str, Any] | None = None,
        already: Seen | None = None,
    ) -> Result:
        """Status from the tenant's workloads (three list requests, four when Ready: the
        inventory; none with ``already``, what the caller has just read; no helm call); a
        tenant still starting is looked at again after POLL_SECONDS, one with a domain check
        due after ``recheck`` seconds. ``template``: a new ``status.template``; one already
        there is followed (``TemplateCreates.follow``: its Job's outcome, and sooner looks
        while it runs). The release's revisions are listed whole (the head is the newest;
        ``releases`` needs no list of its own), as one list of the heads would cost."""
        name = obj["metadata"]["name"]
        kube = self.ctx.kube
        namespace = namespace_for(name)
        listed: list[ReleaseInfo] | None = None
        if already is None:
            listed = kube.release_revisions(namespace, name)
            head = max(listed, key=lambda r: r.revision) if listed else None
            workloads = kube.list_workloads(namespace).get(name, [])
        else:
            head, workloads = already.head, list(already.workloads)
        lock = self.ctx.record.lock(ns) if ns is not None else None
        seen = classify(
            Observation(name, ns.phase if ns else None, head, tuple(workloads), lock=lock,
                        stale_after=self.ctx.stale_after),
            datetime.now(UTC),
        )  # fmt: skip
        ready = seen.ready == "True"  # Ready, or Suspended: in sync
        message = detail or seen.detail
        if not ready and outcome not in ("unmanaged", "stalled", "rolled-back"):
            message = seen.detail
        applied = self.ctx.record.applied(ns) if ns is not None else None
        inventory = None
        if ns is not None and ready:
            inventory = (
                already.inventory if already is not None else self.inventory(namespace, workloads)
            )
        releases = self.releases(obj, head, listed)
        follow = None
        if template is None:
            template, follow = await asyncio.to_thread(self.templates.follow, obj, ready)
        elif template.get("state") in (RESTORING, BUILDING):
            follow = TEMPLATE_FOLLOW_SECONDS
        return self.report(
            obj, outcome=outcome, detail=message, state=state, operation=operation,
            started=started, workloads_ready=ready, revision=head.revision if head else None,
            digest=applied.digest if applied else None, handled_force=handled_force,
            inventory=inventory, releases=releases, domains=domains, template=template,
            requeue=sooner(sooner(None if ready or outcome in ("unmanaged", "stalled")
                                  else POLL_SECONDS, recheck), follow),
        )  # fmt: skip

    def releases(
        self,
        obj: dict[str, Any],
        head: ReleaseInfo | None,
        listed: list[ReleaseInfo] | None = None,
    ) -> list[dict[str, Any]] | None:
        """The release's helm history for ``status.releases`` (newest first, at most
        ``RELEASES_LIMIT``), read from Helm's storage records only when the head revision or
        its status differs from what the status shows: one metadata-only list (none with
        ``listed``, the revisions the caller has just listed), and one record read per
        revision not shown yet (no helm process). None: keep the status' own."""
        shown = list((obj.get("status") or {}).get("releases") or [])
        if head is None:
            return None
        newest = shown[0] if shown else {}
        if (newest.get("revision") == head.revision and newest.get("status") == head.status
                and all("odooSeries" in r for r in shown)):  # fmt: skip
            return None
        name = obj["metadata"]["name"]
        kube, namespace = self.ctx.kube, namespace_for(name)
        known = {int(r["revision"]): r for r in shown if r.get("revision")}
        try:
            labels = listed if listed is not None else kube.release_revisions(namespace, name)
        except SaasodooError as exc:
            log.warning("tenant %s: helm's release records not read: %s", name, exc.message)
            return None
        revisions = []
        for info in sorted(labels, key=lambda r: r.revision, reverse=True)[:RELEASES_LIMIT]:
            old = known.get(info.revision)
            # What a revision records does not change, its status may; an entry written
            # before the series was recorded is read once more.
            if old is not None and "odooSeries" in old:
                revisions.append(replace(info, description=str(old.get("description", "")),
                                         chart=str(old.get("chart", "")),
                                         app_version=str(old.get("appVersion", "")),
                                         odoo_series=str(old.get("odooSeries", "")),
                                         odoo_image=str(old.get("odooImage", ""))))  # fmt: skip
                continue
            full = kube.release_revision(namespace, name, info.revision)
            revisions.append(replace(full, status=info.status) if full else info)
        return release_entries(revisions)

    def progress(self, obj: dict[str, Any], what: str, *, deleting: bool = False) -> dict[str, Any]:
        """Mark the object Reconciling before a long step (so ``kubectl wait`` and every view
        see it at once); returns the object as written (the status write's answer: not read
        again), or ``obj`` when its status said so already."""
        written = self.report(obj, outcome="progressing", detail=what, deleting=deleting).written
        return written if written is not None else obj

    def rider(self, obj: dict[str, Any], what: str) -> StatusRider:
        """The Reconciling status of ``progress`` (``what``: the step) to ride on the next
        write of the tenant's record instead of a request of its own (``StatusRider``)."""
        status = self.compose(obj, outcome="progressing", detail=what)
        previous = dict(obj.get("status") or {})
        return StatusRider(status if status_changed(previous, status) else None, previous)

    def report(
        self, obj: dict[str, Any], *, requeue: float | None = None, **fields: Unpack[Report]
    ) -> Result:
        """Write the status the report makes (``compose`` of ``fields``; only when it
        changed) and say what next: look again after ``requeue`` seconds (None: not)."""
        previous = dict(obj.get("status") or {})
        status = self.compose(obj, **fields)
        written = None
        if status_changed(previous, status):
            written = self.resources.patch_status(obj["metadata"]["name"], status, previous)
        ready = fields.get("workloads_ready")
        if fields.get("failed"):
            # A failed helm operation is retried after RETRY_SECONDS doubling per failure of
            # this generation (Flux's retryInterval), not at the queue's millisecond back-off.
            tries = int(status.get("failures") or 1)
            return Result(failed=True, requeue_after=min(RETRY_SECONDS * 2 ** (tries - 1), 600),
                          written=written, workloads_ready=ready)  # fmt: skip
        return Result(requeue_after=requeue, written=written, workloads_ready=ready)

    def compose(
        self,
        obj: dict[str, Any],
        *,
        outcome: str,
        detail: str,
        state: str = "",
        operation: str | None = None,
        started: datetime | None = None,
        workloads_ready: bool | None = None,
        revision: int | None = None,
        digest: str | None = None,
        failed: bool = False,
        deleting: bool = False,
        handled_force: bool = False,
        handled_resolved: bool = False,
        inventory: list[str] | None = None,
        releases: list[Any] | None = None,
        domains: list[dict[str, Any]] | None = None,
        copy: dict[str, Any] | None = None,
        reason: str | None = None,
        template: dict[str, Any] | None = None,
        update: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """The status a report makes of ``obj`` (as read) in the pure core's terms
        (``next_status``: Flux's conditions), not written. ``copy``: a staging copy's
        ``status.copy``; ``update``: an update's ``status.update``; ``reason``: the reason
        of its Ready, Reconciling and Stalled conditions instead of the outcome's (a copy's
        or an update's step); ``handled_resolved``: a stalled update said resolved by hand,
        ``status.update`` dropped and the annotation echoed. A failed operation's head
        revision is read (one request) for ``releases``."""
        meta = obj["metadata"]
        previous = dict(obj.get("status") or {})
        spec = obj.get("spec") or {}
        report = ReconcileReport(
            generation=int(meta.get("generation") or 0),
            outcome=outcome,
            detail=detail,
            state=state,
            revision=revision if revision is not None else previous.get("revision"),
            chart_version=self.chart_version(),
            digest=digest or previous.get("appliedDigest"),
            url=self.tenants.url_for(meta["name"]),
            suspended=bool(spec.get("suspended", False)),
            workloads_ready=workloads_ready,
            deleting=deleting,
            reconcile_requested_at=annotations_of(obj).get(RECONCILE_REQUESTED_AT),
            operation=operation,
            started_at=started,
        )
        moment = datetime.now(UTC)
        status = next_status(previous, report, moment)
        if update is not None and update.get("step") == up.STALLED:
            status["conditions"] = revert_conditions(
                status.get("conditions") or [], reverted=bool(update.get("reverted")),
                message=detail, generation=report.generation, now=moment,
            )  # fmt: skip
        if handled_force:
            status["lastHandledForceAt"] = annotations_of(obj).get(FORCE_ANNOTATION)
        elif previous.get("lastHandledForceAt"):
            status["lastHandledForceAt"] = previous["lastHandledForceAt"]
        if handled_resolved:
            status.pop("update", None)
            status["lastHandledUpdateResolvedAt"] = annotations_of(obj).get(UPDATE_RESOLVED_AT)
        status["inventory"] = inventory if inventory is not None else inventory_of(obj)
        if releases is None and failed and not deleting:  # a failed revision shows too
            namespace = namespace_for(meta["name"])
            try:
                head = self.ctx.kube.list_release_heads(namespace).get((namespace, meta["name"]))
            except SaasodooError:
                head = None  # the next reconcile reads it
            releases = self.releases(obj, head)
        if releases is not None:
            status["releases"] = releases
        if domains is not None:
            status["domains"] = domains
        if copy is not None:
            status["copy"] = copy
        if template is not None:
            status["template"] = template
        if update is not None:
            status["update"] = update
        if reason is not None:
            status["conditions"] = with_reason(status.get("conditions") or [], reason)
        return status

    def chart_version(self) -> str | None:
        meta = getattr(self.ctx.helm, "chart_version", None)
        return str(meta) if meta else None

    def event(self, obj: dict[str, Any], kind: str, reason: str, note: str, action: str) -> None:
        self.resources.event(obj, kind, reason, note, action)

    def event_beside(
        self, obj: dict[str, Any], kind: str, reason: str, note: str, action: str
    ) -> asyncio.Future[None]:
        """``event`` written on a thread while the turn goes on (an Event is best effort,
        and nothing in the turn reads it): off a fleet upgrade's path to helm and to Ready.
        The caller awaits it before its turn ends."""
        return asyncio.ensure_future(asyncio.to_thread(self.event, obj, kind, reason, note, action))


def release_entries(revisions: list[ReleaseInfo]) -> list[dict[str, Any]]:
    """Helm's revisions as ``status.releases`` (newest first, bounded; ``updated`` left
    out when unknown)."""
    newest = sorted(revisions, key=lambda r: r.revision, reverse=True)[:RELEASES_LIMIT]
    entries = []
    for r in newest:
        entry: dict[str, Any] = {"revision": r.revision, "status": r.status}
        if r.updated is not None:
            entry["updated"] = timestamp(r.updated)
        entry.update(description=r.description[:1024], chart=r.chart, appVersion=r.app_version,
                     odooSeries=r.odoo_series, odooImage=r.odoo_image)  # fmt: skip
        entries.append(entry)
    return entries


def started_at() -> datetime:
    return datetime.now(UTC)


def sooner(a: float | None, b: float | None) -> float | None:
    """The earlier of two requeue delays (None: not at all)."""
    given = [x for x in (a, b) if x is not None]
    return min(given) if given else None


def seconds_to_next_check(
    entries: Iterable[dict[str, Any]], verified: set[str], now: datetime
) -> float | None:
    """Seconds until the earliest ``nextCheckAt`` of the unproven domains (None: none)."""
    waits = []
    for entry in entries:
        raw = entry.get("nextCheckAt")
        if entry.get("host") in verified or not isinstance(raw, str):
            continue
        try:
            when = datetime.fromisoformat(raw.replace("Z", "+00:00"))
        except ValueError:
            continue
        waits.append(max((when - now).total_seconds(), 1.0))
    return min(waits) if waits else None


def inventory_of(obj: dict[str, Any]) -> list[str]:
    """The inventory the last reconcile recorded in the object's status."""
    return list((obj.get("status") or {}).get("inventory") or [])


def previous_message(status: dict[str, Any]) -> str:
    """The message of the Ready condition in ``status`` ("" when none)."""
    ready = get_condition(status.get("conditions") or [], "Ready") or {}
    return str(ready.get("message") or "")


def reason_of(outcome: Outcome) -> str:
    """The Event reason of an ensure outcome, in Flux's words where Flux has one."""
    return {
        Outcome.INSTALLED: "InstallSucceeded",
        Outcome.UPGRADED: "UpgradeSucceeded",
        Outcome.RECOVERED: "UpgradeSucceeded",
        Outcome.ROLLED_BACK: "RollbackSucceeded",
        Outcome.UNMANAGED: "DriftDetected",
        Outcome.STALLED: "RetriesExceeded",
        Outcome.FAILED: "ReconciliationFailed",
        Outcome.GAVE_UP: "RetriesExceeded",
    }.get(outcome, "ReconciliationSucceeded")
