"""The update executor: a change that alters the Odoo code an initialized database runs goes
through ``odoo -u`` with a pre-update backup and is undone on failure (issue #25 point 2,
docs/updates.md; the decisions are in the pure ``saasodoo.core.updates``).

``UpdateExecutor.step(obj, spec, ns)`` is called by ``TenantController.turn`` before the
spec is applied and before ``ensure`` (so neither ``Tenants.update`` nor an out-of-date
tenant's ``UPGRADE`` after a chart change ever runs a new image without ``-u``). It returns
``Proceed`` when there is no update to run (the ordinary reconcile goes on, with the object
as last written), else the turn's Result:

1. what is desired vs. applied: the desired values' digest against the applied one (no helm
   call while they agree); when they differ, the applied revision's values (``helm get
   values``) and the desired ones, each over the chart's own values.yaml, make the
   ``core.updates.code_change``; ``update_due`` says whether an update starts, runs, is held
   (Stalled) or none is needed;
2. one step at a time, with ``next_update_action``/``move``: ``status.update`` is written
   before each step's work starts, the work has a fixed name (``work_names``) or is judged by
   the release's revisions (``release_step_state``), and a step whose work runs is looked at
   again after ``POLL_SECONDS`` (a requeue, never a wait in the worker);
3. conditions: Reconciling with the step's reason while it runs; Stalled with the failed
   step's reason and ``stalled_message`` (the backup used) at the end of a failed update;
   Events ``UpdateProgressing`` per step, ``UpdateSucceeded``, the Stalled reason as a
   Warning.

The helm steps run without ``helm --wait``: ``stop`` is over once the staged revision is
deployed and no Odoo pod (web or cron) is left, ``rollout`` once its workloads are ready
(failed when they are not within the helm timeout), ``rollback`` once its revision is
deployed. ``signed-in-check`` is the chart's ``helm test`` (``Tenants.check_ready``), run in
the turn.

Limits (docs/updates.md): the applied values are merged over the running chart's defaults,
so a chart version that only changes its own default image is not seen as a code change;
pin the image in the values (``odoo.image.tag``/``digest``) for such builds.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from saasodoo.adapters.kube import Namespace
from saasodoo.backups import Backups
from saasodoo.backups.jobs import job_from_cronjob
from saasodoo.core import updates as up
from saasodoo.core.copies import ABSENT, FAILED_WORK, RUNNING, SUCCEEDED, job_state, last_result
from saasodoo.core.crd import UPDATE_RESOLVED_AT
from saasodoo.core.spec import COMPONENT_LABEL, TENANT_LABEL, TenantSpec, namespace_for
from saasodoo.core.status import ReleaseInfo
from saasodoo.core.templates import BUILDING, RESTORING
from saasodoo.core.values import TenantValues, helm_merge
from saasodoo.errors import Conflict, FieldError, NotFound, SaasodooError, TransientClusterError

if TYPE_CHECKING:
    from saasodoo.operator.controller import Result, TenantController

log = logging.getLogger(__name__)

#: How soon an update whose step's work runs is looked at again (seconds).
POLL_SECONDS = 5.0
#: Steps taken in one turn at most (each start ends the turn; advances may chain).
MAX_MOVES = 10
#: The helm steps: judged by the release's revisions and the operation lock.
HELM_STEPS = (up.STOP, up.ROLLOUT, up.ROLLBACK)
#: How soon the ordinary reconcile follows an update said resolved by hand (seconds).
RESOLVED_REQUEUE = 0.1
#: Odoo's pods, which the stop and the restore wait to be gone (web and cron).
ODOO_COMPONENTS = ("odoo", "cron")


@dataclass(frozen=True)
class Proceed:
    """No update runs: the ordinary reconcile goes on in this turn with ``obj``, the
    OdooTenant as the step last wrote it (an update finished, an annotation echoed), or as
    it was given when the step wrote nothing (the caller need not read it again)."""

    obj: dict[str, Any]


def odoo_pods_left(pods: list[Any]) -> list[str]:
    """The names of the web and cron pods among ``pods`` (a Job's pod carries the web
    labels too, with ``job-name``: not counted)."""
    return sorted(p.name for p in pods if "job-name" not in p.labels
                  and p.phase not in ("Succeeded", "Failed"))  # fmt: skip


class UpdateExecutor:
    """Runs the updates of ``controller``'s OdooTenants (module docstring)."""

    def __init__(self, controller: TenantController, backups: Backups | None = None) -> None:
        self.controller = controller
        self.tenants = controller.tenants
        self.ctx = controller.ctx
        self.backups = backups or Backups(self.ctx.settings, kube=self.ctx.kube)

    # -- the turn -------------------------------------------------------------------

    async def step(self, obj: dict[str, Any], spec: TenantSpec, ns: Namespace) -> Result | Proceed:
        """The update's next step; ``Proceed`` when no update runs (the ordinary reconcile)."""
        if not self.controller.has_record(ns):
            return Proceed(obj)  # apply_spec refuses it
        progress = dict((obj.get("status") or {}).get("update") or {})
        generation = int(obj["metadata"].get("generation") or 0)
        force = self.controller.force_requested(obj)
        suspended = bool((obj.get("spec") or {}).get("suspended", False))
        # What is due does not depend on the change but for START (else NONE): the values
        # are compared (a helm call when they differ) only then.
        change: up.CodeChange | None = None
        resolved = self.controller.update_resolved(obj)
        due = up.update_due(progress, generation=generation, changed=True, force=force,
                            resolved=resolved)  # fmt: skip
        if due == up.RESOLVED:
            return self.resolve(obj, progress)
        if resolved:  # only a stalled update is resolved by hand: said, and marked handled
            obj = self.ignore_resolved(obj, progress)
        if due == up.START:
            change = await self.change_of(spec, ns, suspended)
            due = up.START if change is not None else up.NONE
            if change is not None and not force and up.retries_failed_target(progress, change):
                return self.stalled(obj, progress, waiting=generation)
        if due == up.NONE:
            return Proceed(obj)
        if due == up.HOLD:
            return self.stalled(obj, progress)
        if due == up.RETRY_REVERT:
            progress = up.retry_revert(progress)
            self.event(obj, "Normal", "UpdateProgressing",
                       f"forced: {up.STEP_WORDS[str(progress['step'])]} again")  # fmt: skip
            obj = self.write(obj, progress, handled_force=True)
        elif due == up.START:
            assert change is not None
            current = await self.tenants.settled(ns)
            await self.tenants.check_change(spec, current)  # InvalidInput: Stalled, InvalidSpec
            refusal = self.backup_refusal(spec, suspended)
            plan = up.update_plan(change, initialized=self.initialized(obj),
                                  suspended=suspended, refusal=refusal)  # fmt: skip
            if not plan:
                return Proceed(obj)
            head = self.head(spec)
            if head is not None and str(head.status).startswith("pending"):
                # helm still runs on the release (another operation): not a revision to come
                # back to. Looked at again later; nothing is applied meanwhile.
                return self.controller.report(
                    obj, outcome="busy", requeue=POLL_SECONDS,
                    detail=f"revision {head.revision} is {head.status}: the update waits",
                )  # fmt: skip
            progress = up.update_status(
                None, step=plan[0], now=datetime.now(UTC), generation=generation,
                attempt=up.next_attempt(progress, generation), change=change.to_status(),
                fromRevision=head.revision if head else None,
            )  # fmt: skip
            self.event(obj, "Normal", "UpdateProgressing", f"update started: {change.message}")
            obj = self.write(obj, progress, handled_force=force)
        return await self.run(obj, spec, progress, suspended)

    async def run(
        self, obj: dict[str, Any], spec: TenantSpec, progress: dict[str, Any], suspended: bool
    ) -> Result | Proceed:
        """The steps of the update under way, as far as they go in this turn."""
        plan = [up.STOP, up.BACKUP, up.UPDATE] if suspended else list(up.FORWARD)
        uid = str(obj["metadata"].get("uid") or "")
        names = up.work_names(spec.id, uid, int(progress.get("generation") or 0),
                              int(progress.get("attempt") or 1))  # fmt: skip
        for _ in range(MAX_MOVES):
            step = up.current_step(plan, progress)
            if step in up.NO_HELM_STEPS:
                hand = up.hand_revision(progress, self.head(spec))
                if hand is not None:
                    progress = up.interrupted(progress, hand, now=datetime.now(UTC))
                    return self.stalled(obj, progress, announce=True)
            seen, found, fields = await self.observe(step, spec, progress, names)
            action = up.next_update_action(plan, step, seen)
            if action.verb == "done":
                return Proceed(self.finish(obj, progress))
            if action.verb == "fail" and step == up.STALLED:
                return self.stalled(obj, progress)
            if action.verb in ("advance", "fail"):
                progress = up.move(progress, action, now=datetime.now(UTC), why=found, **fields)
                if action.verb == "advance":
                    self.event(obj, "Normal", "UpdateProgressing",
                               f"{up.STEP_WORDS[step]}: done")  # fmt: skip
                else:
                    self.event(obj, "Warning", up.STEP_REASONS[step][1], found or "failed")
                if progress["step"] == up.DONE:
                    return Proceed(self.finish(obj, progress))
                if progress["step"] == up.STALLED:
                    return self.stalled(obj, progress, announce=True)
                obj = self.write(obj, progress)
                continue
            if action.verb == "start":
                extra: dict[str, Any] = {}
                if step in HELM_STEPS:
                    head = self.head(spec)
                    extra["stepFrom"] = head.revision if head else 0
                progress = up.update_status(progress, step=step, now=datetime.now(UTC), **extra)
                obj = self.write(obj, progress)
                self.event(obj, "Normal", "UpdateProgressing", up.STEP_WORDS[step])
                try:
                    await self.start(step, spec, progress, names)
                except (TransientClusterError, Conflict) as exc:
                    # Not the step's failure: the cluster's blip, or another operation's
                    # lock. Started again next turn (its work has a fixed name: a Job made
                    # before the error is found, never made twice).
                    return self.controller.report(
                        obj, outcome="progressing",
                        detail=f"{up.STEP_WORDS.get(step, step)}: {exc.message}; trying again",
                        requeue=POLL_SECONDS, update=progress, reason=up.STEP_REASONS[step][0],
                    )  # fmt: skip
                except SaasodooError as exc:
                    failed = up.next_update_action(plan, step, FAILED_WORK)
                    progress = up.move(progress, failed, now=datetime.now(UTC), why=exc.message)
                    self.event(obj, "Warning", up.STEP_REASONS[step][1], exc.message)
                    if progress["step"] == up.STALLED:
                        return self.stalled(obj, progress, announce=True)
                    obj = self.write(obj, progress)
                    continue
                if step == up.UPDATE:  # RUN_ONCE: from now on, a Job gone is a failure
                    progress = up.update_status(progress, step=step, now=datetime.now(UTC),
                                                work=up.UPDATE, job=names[up.UPDATE])  # fmt: skip
                    obj = self.write(obj, progress)
            return self.controller.report(
                obj, outcome="progressing", detail=up.STEP_WORDS.get(step, step),
                requeue=POLL_SECONDS, update=progress, reason=up.STEP_REASONS[step][0],
            )  # fmt: skip
        step = str(progress.get("step"))
        return self.controller.report(
            obj, outcome="progressing", detail=up.STEP_WORDS.get(step, step),
            requeue=POLL_SECONDS, update=progress,
        )  # fmt: skip

    # -- what is asked ----------------------------------------------------------------

    async def change_of(
        self, spec: TenantSpec, ns: Namespace, suspended: bool
    ) -> up.CodeChange | None:
        """The code change from the applied revision to the desired spec (None: none, or
        the desired values are the applied ones: no helm call then)."""
        version = self.controller.chart_version() or ""
        return await self.tenants.code_change_of(spec, ns, suspended, version)

    @staticmethod
    def initialized(obj: dict[str, Any]) -> bool:
        """The tenant's database carries Odoo (a revision was applied: ``change_of`` sees
        none before), unless it is a templated create whose template is still being restored
        or built."""
        template = (obj.get("status") or {}).get("template") or {}
        return template.get("state") not in (RESTORING, BUILDING)

    def backup_refusal(self, spec: TenantSpec, suspended: bool) -> FieldError | None:
        """Why the tenant keeps no pre-update backup (``core.updates.backup_refusal`` of its
        values over the chart's defaults), None when it does."""
        values = self.tenants.values_for(spec, suspended=suspended).values
        chart = self.tenants.local_chart()
        return up.backup_refusal(helm_merge(chart[1] if chart else {}, values))

    def head(self, spec: TenantSpec) -> ReleaseInfo | None:
        return self.ctx.record.head(spec)

    # -- what the cluster shows -----------------------------------------------------

    async def observe(
        self, step: str, spec: TenantSpec, progress: dict[str, Any], names: dict[str, str]
    ) -> tuple[str, str, dict[str, Any]]:
        """The state of ``step``'s work (``ABSENT``, ``RUNNING``, ``SUCCEEDED``,
        ``FAILED_WORK``), why it failed (or what it did), and the fields its end records."""
        if step in (up.DONE, up.STALLED):
            return SUCCEEDED, "", {}
        now = datetime.now(UTC)
        stale = self.ctx.stale_after
        if step in HELM_STEPS:
            if step != up.ROLLBACK and progress.get("stepFrom") is None:
                return ABSENT, "", {}
            head = self.head(spec)
            ns = self.ctx.record.read(spec.namespace)
            lock = self.ctx.record.lock(ns) if ns is not None else None
            started = int(progress.get("stepFrom") or 0)
            if step == up.ROLLBACK:
                if progress.get("stepFrom") is None and not (
                    head is not None and head.revision == progress.get("fromRevision")
                    and head.status == "deployed"
                ):  # fmt: skip
                    return ABSENT, "", {}
                seen = up.rollback_state(head, int(progress.get("fromRevision") or 0), started,
                                         lock, now, stale)  # fmt: skip
            else:
                seen = up.release_step_state(head, started, lock, now, stale)
            # The revision a helm step ended on: the newest one until the next helm step
            # (``up.hand_revision`` tells a revision made by hand meanwhile).
            ended = {"headRevision": head.revision} if head is not None else {}
            if seen == FAILED_WORK:
                return seen, f"helm left revision {head.revision if head else '?'} " \
                    f"{head.status if head else 'absent'}", ended  # fmt: skip
            if seen != SUCCEEDED or head is None:
                return seen, "", {}
            if step == up.STOP:
                if self.odoo_pods(spec):
                    return RUNNING, "", {}
                # The staged revision may restart the other workloads too (a chart version
                # that changes PostgreSQL's pod): the backup waits for them.
                slow = self.workloads_not_ready(spec, head, now, stale, but=ODOO_COMPONENTS)
                if slow is not None:
                    return (FAILED_WORK, f"workloads not ready after the stop: {slow}", ended) \
                        if slow else (RUNNING, "", {})  # fmt: skip
                return seen, "", {"stagedRevision": head.revision, **ended}
            if step == up.ROLLOUT:
                slow = self.workloads_not_ready(spec, head, now, stale)
                if slow is not None:
                    return (FAILED_WORK, f"workloads not ready after the rollout: {slow}",
                            ended) if slow else (RUNNING, "", {})  # fmt: skip
                return seen, "", ended
            return seen, "", ended
        if step == up.CHECK:
            try:
                await self.tenants.check_ready(spec)
            except SaasodooError as exc:
                return FAILED_WORK, exc.message, {}
            return SUCCEEDED, "", {}
        return await asyncio.to_thread(self.observe_job, step, spec, progress, names)

    def observe_job(
        self, step: str, spec: TenantSpec, progress: dict[str, Any], names: dict[str, str]
    ) -> tuple[str, str, dict[str, Any]]:
        """A Job step's state (``BACKUP``, ``UPDATE``, ``RESTORE``)."""
        name = names[step]
        try:
            job = self.ctx.kube.read_job(spec.namespace, name)
        except NotFound:
            return up.work_state(step, ABSENT, progress), f"job {name} is gone", {}
        seen = up.work_state(step, job_state([(c.type, c.status) for c in job.conditions]),
                             progress)  # fmt: skip
        if seen in (ABSENT, RUNNING):
            return seen, "", {}
        if step == up.UPDATE:
            result = self.job_result(spec, name)
            fields = {"result": result} if result else {}
            if seen == FAILED_WORK:
                why = (result or {}).get("error") or "see its log"
                return seen, f"job {name} failed: {why}", fields
            return seen, "", fields
        report = self.backups.jobs.result(spec.namespace, name)
        if seen == FAILED_WORK:
            return seen, f"job {name} failed: {(report or {}).get('error') or 'see its log'}", {}
        if step == up.RESTORE:
            return seen, "", {"previousData": up.previous_data(report)}
        cronjob = self.backups.cronjob(spec.id)
        started = datetime.fromisoformat(str(progress.get("startedAt")).replace("Z", "+00:00"))
        backup = self.backups.taken(spec.id, cronjob, "pre-update", started, report)
        if backup is None:
            return FAILED_WORK, f"job {name} succeeded but its backup is not known (neither " \
                "in the storage nor in its log)", {}  # fmt: skip
        return seen, "", {"backup": backup.name, "backupJob": name}

    def job_result(self, spec: TenantSpec, job: str) -> dict[str, Any] | None:
        """The update Job's ``RESULT`` (None when its log cannot be read: a simulated node)."""
        try:
            return last_result(self.ctx.kube.job_pod_logs(spec.namespace, job, "odoo-init"))
        except Exception:  # noqa: BLE001 - the log is a bonus
            log.debug("no log for job %s/%s", spec.namespace, job, exc_info=True)
            return None

    def writing_job(self, obj: dict[str, Any]) -> str | None:
        """The update's Job that writes the tenant's database now (``odoo -u`` or the
        restore of the pre-update backup, while its step is current and the Job has not
        ended), else None: what a deletion waits for before its final backup."""
        progress = (obj.get("status") or {}).get("update") or {}
        step = progress.get("step")
        if step not in (up.UPDATE, up.RESTORE):
            return None
        name = obj["metadata"]["name"]
        names = up.work_names(name, str(obj["metadata"].get("uid") or ""),
                              int(progress.get("generation") or 0),
                              int(progress.get("attempt") or 1))  # fmt: skip
        job = names[str(step)]
        try:
            found = self.ctx.kube.read_job(namespace_for(name), job)
        except NotFound:
            return None
        ended = job_state([(c.type, c.status) for c in found.conditions]) != RUNNING
        if ended and not self.pods_of_job(namespace_for(name), job):
            return None
        return job

    def pods_of_job(self, namespace: str, job: str) -> list[str]:
        """The pods of the Job ``job`` that have not ended (running or terminating)."""
        pods = self.ctx.kube.list_pods(namespace, f"job-name={job}")
        return sorted(p.name for p in pods if p.phase not in ("Succeeded", "Failed"))

    def workloads_not_ready(
        self,
        spec: TenantSpec,
        head: ReleaseInfo,
        now: datetime,
        stale: timedelta,
        but: tuple[str, ...] = (),
    ) -> str | None:
        """None when the tenant's Deployments and StatefulSets (but the ``but`` components;
        without ``but``, at least one) are ready; "" while some are not and ``head`` (the
        helm step's revision) is younger than ``stale``; past it, the ones not ready
        (``kind/name ready/desired``)."""
        workloads = [w for w in self.ctx.kube.list_workloads(spec.namespace).get(spec.id, [])
                     if w.component not in but]  # fmt: skip
        if all(w.is_ready for w in workloads) and (workloads or but):
            return None  # none at all is ready only when some were left out (an external DB)
        if head.updated is None or now - head.updated <= stale:
            return ""
        return ", ".join(f"{w.kind}/{w.name} {w.ready}/{w.desired}"
                         for w in workloads if not w.is_ready) or "none found"  # fmt: skip

    def odoo_pods(self, spec: TenantSpec) -> list[str]:
        selector = f"{TENANT_LABEL}={spec.id},{COMPONENT_LABEL} in ({','.join(ODOO_COMPONENTS)})"
        return odoo_pods_left(self.ctx.kube.list_pods(spec.namespace, selector))

    # -- the work -------------------------------------------------------------------

    async def start(
        self, step: str, spec: TenantSpec, progress: dict[str, Any], names: dict[str, str]
    ) -> None:
        """Start ``step``'s work: a helm call without ``--wait``, or a Job."""
        tenants, record = self.tenants, self.ctx.record
        change = progress.get("change") or {}
        if step == up.STOP:
            ns = record.namespace(spec.id)
            current = await tenants.settled(ns)
            await tenants.upgrade_to(
                spec, True, (current, record.suspended(ns)), "update",
                f"saasodoo: update stop (Odoo at zero; {change.get('fromImage')} -> "
                f"{change.get('toImage')})", wait=False,
            )  # fmt: skip
        elif step == up.ROLLOUT:
            ns = record.namespace(spec.id)
            target = await tenants.settled(ns)  # the spec the stop recorded
            values, _ = await tenants.desired(target)
            closed = TenantValues(helm_merge(values.values, up.ROLLOUT_VALUES))
            digest = closed.digest(await self.ctx.helm.digest_chart_version())
            await tenants.upgrade_to(
                target, False, (target, True), "update",
                "saasodoo: update rollout (no Ingress until the signed-in check)", wait=False,
                desired=(closed, digest),
            )  # fmt: skip
        elif step == up.ROLLBACK:
            before = progress.get("fromRevision")
            if not before:
                raise SaasodooError("no revision before the update is recorded")
            ns = record.namespace(spec.id)
            if record.lock(ns) is not None:
                record.unlock(ns.name)  # a failed or abandoned helm step's
            await tenants.rollback(spec.id, int(before), wait=False)
        elif step == up.BACKUP:
            cronjob = await asyncio.to_thread(self.backups.cronjob, spec.id)
            body = job_from_cronjob(cronjob, names[step], purpose="backup", kind="pre-update")
            body["metadata"]["labels"][up.UPDATE_JOB_LABEL] = up.BACKUP
            await asyncio.to_thread(self.create_job, body)
        elif step == up.UPDATE:
            deployment = self.web_deployment(spec)
            try:
                settings = self.ctx.settings
                body = up.update_job(
                    deployment, names[step], image=change.get("toImage"),
                    deadline_seconds=settings.update_deadline_seconds,
                    memory=settings.update_memory,
                )  # fmt: skip
            except ValueError as exc:
                raise SaasodooError(str(exc)) from None
            await asyncio.to_thread(self.create_job, body)
        elif step == up.RESTORE:
            backup = progress.get("backup")
            if not backup:
                raise SaasodooError("no pre-update backup is recorded: nothing to restore")
            if await asyncio.to_thread(self.stop_odoo, spec):
                return  # Odoo's pods are still stopping: the Job on a next turn
            if await asyncio.to_thread(self.pods_of_job, spec.namespace, names[up.UPDATE]):
                # The -u Job's pod outlives its Job's failure (a deadline, a deletion) by its
                # grace period: odoo -u may still write. The restore on a next turn.
                return
            cronjob = await asyncio.to_thread(self.backups.cronjob, spec.id)
            body = self.backups.jobs.restore_job(spec.id, cronjob, str(backup), mode="restore")
            body["metadata"]["name"] = names[step]
            body["metadata"]["labels"][up.UPDATE_JOB_LABEL] = up.RESTORE
            await asyncio.to_thread(self.create_job, body)

    def web_deployment(self, spec: TenantSpec) -> dict[str, Any]:
        selector = f"{COMPONENT_LABEL}=odoo,{TENANT_LABEL}={spec.id}"
        path = f"/apis/apps/v1/namespaces/{spec.namespace}/deployments"
        found = self.ctx.kube.list_items(f"list deployments of {spec.namespace}", path,
                                             selector)  # fmt: skip
        if not found:
            raise NotFound(f"the tenant has no web Deployment ({selector})")
        return found[0]

    def stop_odoo(self, spec: TenantSpec) -> list[str]:
        """Web and cron Deployments to zero replicas (``scale_deployment``: helm keeps owning
        the field; the rollback that follows sets them again); the Odoo pods still left."""
        kube = self.ctx.kube
        for component in ODOO_COMPONENTS:
            selector = f"{COMPONENT_LABEL}={component},{TENANT_LABEL}={spec.id}"
            for found in kube.list_deployments(spec.namespace, selector):
                if found.replicas:
                    kube.scale_deployment(spec.namespace, found.name, 0)
        return self.odoo_pods(spec)

    def create_job(self, body: dict[str, Any]) -> None:
        try:
            self.ctx.kube.create_job(body)
        except Conflict:
            pass  # created by an earlier turn

    # -- status and Events ----------------------------------------------------------

    def write(
        self, obj: dict[str, Any], progress: dict[str, Any], *, handled_force: bool = False
    ) -> dict[str, Any]:
        """``status.update`` and Reconciling with the step's reason; the object as written
        (the write's answer: not read again)."""
        step = str(progress.get("step"))
        written = self.controller.report(
            obj, outcome="progressing", detail=up.STEP_WORDS.get(step, step), update=progress,
            reason=up.STEP_REASONS.get(step, ("UpdateProgressing", ""))[0],
            handled_force=handled_force,
        ).written  # fmt: skip
        return written if written is not None else obj

    def finish(self, obj: dict[str, Any], progress: dict[str, Any]) -> dict[str, Any]:
        """The update is done: recorded, and the ordinary reconcile goes on; the object as
        written."""
        if progress.get("step") != up.DONE or not progress.get("finishedAt"):
            progress = up.update_status(progress, step=up.DONE, now=datetime.now(UTC))
        if (obj.get("status") or {}).get("update") != progress:
            result = progress.get("result") or {}
            changed = ", ".join(sorted(result.get("changed") or {})) or "no module version"
            updated = result.get("updated", "?")
            ran = ("odoo -u skipped: no Odoo in the database" if updated is False
                   else f"odoo -u ran on {updated} modules ({changed} changed)")  # fmt: skip
            suspended = bool((obj.get("spec") or {}).get("suspended"))
            check = ("suspended: not rolled out, no signed-in check" if suspended
                     else "signed-in check passed")  # fmt: skip
            self.event(obj, "Normal", "UpdateSucceeded", f"{ran}; {check}")
            return self.write(obj, progress)
        return obj

    def stalled(
        self,
        obj: dict[str, Any],
        progress: dict[str, Any],
        *,
        announce: bool = False,
        waiting: int | None = None,
    ) -> Result:
        """Stalled with the failed step's reason and what was done about it; ``waiting``: a
        later generation held because it asks for the same code (``retries_failed_target``)."""
        reason, message = up.stalled_reason(progress), up.stalled_message(progress)
        if waiting is not None:
            message += (
                f". Generation {waiting} asks for the same Odoo code "
                f"({(progress.get('change') or {}).get('toImage')}): held, not applied; change "
                "the image or the code options, or annotate saasodoo.dev/force-requested-at "
                "to try this update again"
            )
        if announce:
            self.event(obj, "Warning", reason, message)
        return self.controller.report(obj, outcome="stalled", detail=message, update=progress,
                                      reason=reason)  # fmt: skip

    def resolve(self, obj: dict[str, Any], progress: dict[str, Any]) -> Result:
        """A stalled update said resolved by hand (``up.RESOLVED``): ``status.update``
        dropped, the annotation echoed, an Event saying what was dropped; the ordinary
        reconcile follows in the next turn, from the status as written (soon)."""
        note = (f"update of generation {progress.get('generation')} said resolved by hand "
                f"({up.RESOLVED_ANNOTATION}): its record dropped (it was stalled: "
                f"{up.stalled_reason(progress)}; pre-update backup "
                f"{progress.get('backup') or 'none'}); the spec is reconciled as usual"
                )  # fmt: skip
        self.event(obj, "Normal", "UpdateResolvedByHand", note)
        return self.controller.report(obj, outcome="progressing", detail=note,
                                      requeue=RESOLVED_REQUEUE, handled_resolved=True)  # fmt: skip

    def ignore_resolved(self, obj: dict[str, Any], progress: dict[str, Any]) -> dict[str, Any]:
        """``saasodoo.dev/update-resolved-at`` set when no update is stalled: a Warning
        Event, and the value echoed at once, so that an update stalling later is not taken
        for resolved by an annotation set before. The object as written."""
        token = ((obj.get("metadata") or {}).get("annotations") or {}).get(UPDATE_RESOLVED_AT)
        step = progress.get("step")
        where = f"the update is at {step}" if up.in_progress(progress) else "no update is stalled"
        self.event(obj, "Warning", "UpdateResolvedIgnored",
                   f"{UPDATE_RESOLVED_AT}={token} ignored: {where}")  # fmt: skip
        name = obj["metadata"]["name"]
        self.controller.resources.patch_status(name, {"lastHandledUpdateResolvedAt": token}, {})
        return self.controller.resources.get(name) or obj

    def event(self, obj: dict[str, Any], kind: str, reason: str, note: str) -> None:
        self.controller.event(obj, kind, reason, note, "Update")
