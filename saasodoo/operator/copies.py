"""The staging-copy executor: makes the OdooTenant whose ``spec.copyOf`` names a source
(README, "Staging copies"), one step per turn of the copy in the work queue.

``CopyExecutor.step(obj, spec, ns)`` is called by ``TenantController.reconcile`` for a copy
whose ``status.copy.step`` is not ``copied`` yet. It checks the source (``copies.copy_plan``:
NotFound, Conflict or InvalidInput make the copy ``Stalled``), then looks at the current
step's work and does what ``copies.next_copy_action`` says:

1. ``backup-source`` (unless ``spec.copyOf.backup``): an ``OdooTenantBackup`` of the source,
   run by the request machinery in the source's turn (the source keeps serving); the copy
   looks again every ``POLL_SECONDS`` (a requeue, never a wait in the worker);
2. ``install-stopped``: ``Tenants.create(suspended=True)``: the copy's release with Odoo at
   zero replicas (web and cron), its values carrying ``tenant.copyOf`` and no SMTP
   (``core.values.copy_values``), its namespace labelled ``saasodoo.dev/copy-of``;
3. ``restore``: a Job from the copy's backup CronJob running ``restore.py --source-tenant
   <source> --backup <name>`` (it reads the source's S3 prefix, writes nothing there);
4. ``neutralize``: a Job from the copy's web pod template running ``odoo-init.py
   --neutralize`` (``copies.neutralize_job``); its ``RESULT`` goes to ``status.copy``;
5. ``start``: the copy is handed to the ordinary reconcile (``status.copy.step`` =
   ``copied``), whose resume scales Odoo up (``spec.suspended`` honoured) and reports Ready.

Each step's work has a fixed name (``copies.work_names``: from the copy's uid), so a step
re-entered after an operator restart finds its request or Job instead of starting another.
A failed step leaves Odoo at zero and the copy ``Stalled`` with the step's reason
(``copies.STEP_REASONS``) until it is deleted. Events on the copy at each step.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from saasodoo.adapters.kube import Namespace
from saasodoo.adapters.resources import CustomResources
from saasodoo.backups import Backups
from saasodoo.backups.finals import storage_of
from saasodoo.backups.jobs import backup_container
from saasodoo.core import copies
from saasodoo.core import operations as ops
from saasodoo.core.spec import COMPONENT_LABEL, TENANT_LABEL, TenantSpec, namespace_for
from saasodoo.errors import Conflict, InvalidInput, NotFound, SaasodooError

if TYPE_CHECKING:
    from saasodoo.operator.controller import Result, TenantController

log = logging.getLogger(__name__)

#: How soon a copy whose step's work runs is looked at again (seconds).
POLL_SECONDS = 5.0
#: How soon a copy whose source is not installed yet is looked at again (seconds).
WAIT_SOURCE_SECONDS = 15.0
#: Steps taken in one turn at most (each start ends the turn; advances may chain).
MAX_MOVES = 8


class CopyExecutor:
    """Makes the staging copies of ``controller``'s OdooTenants (module docstring)."""

    def __init__(self, controller: TenantController, backups: Backups | None = None) -> None:
        self.controller = controller
        self.tenants = controller.tenants
        self.ctx = controller.ctx
        self.resources = controller.resources
        self.backups = backups or Backups(self.ctx.settings, kube=self.ctx.kube)
        self.requests = CustomResources(
            self.ctx.kube, self.resources.namespace, ops.BACKUP.plural, ops.BACKUP.kind
        )

    # -- the turn -------------------------------------------------------------------

    async def step(
        self, obj: dict[str, Any], spec: TenantSpec, ns: Namespace | None
    ) -> Result | None:
        """The copy's next step; None once its data is in place (``copied``: the caller
        goes on with the ordinary reconcile)."""
        source = spec.copy_of or ""
        progress = dict((obj.get("status") or {}).get("copy") or {})
        if progress.get("step") == copies.COPIED:
            return None
        facts = self.source_facts(source)
        if facts.exists and not facts.deleting and not facts.storage:
            if self.ctx.kube.read_namespace(namespace_for(source)) is None:
                # A source written beside its copy, not installed yet: the copy waits.
                return self.controller.report(
                    obj, outcome="progressing", requeue=WAIT_SOURCE_SECONDS,
                    detail=f"waiting for the source {source} to be installed",
                    reason="CopyWaitingForSource",
                )  # fmt: skip
        try:
            plan = copies.copy_plan(facts, obj.get("spec") or {})
        except (NotFound, Conflict, InvalidInput) as exc:
            return self.controller.report(obj, outcome="invalid", detail=exc.message)
        names = copies.work_names(spec.id, str(obj["metadata"].get("uid") or ""))
        backup = (obj.get("spec") or {}).get("copyOf", {}).get("backup") or progress.get("backup")
        step = copies.current_step(plan, progress)
        for _ in range(MAX_MOVES):
            seen, found = await self.observe(step, spec, ns, names)
            action = copies.next_copy_action(plan, step, seen)
            if action.verb == "done":
                return None
            if action.verb == "fail":
                why = progress.get("message") if step == copies.FAILED else found
                return self.fail(obj, source, progress, step, str(why or "failed"))
            if action.verb == "advance":
                fields: dict[str, Any] = {"message": found or None}
                if step == copies.BACKUP_SOURCE:
                    backup = found
                    fields = {"backup": backup, "backupRequest": names[step],
                              "message": f"backup {backup} of {source} taken"}  # fmt: skip
                elif step == copies.NEUTRALIZE:
                    result = self.job_result(spec, names[step], "odoo-init")
                    fields = {"neutralized": result, "message": "neutralized"}
                progress = copies.copy_status(progress, source=source, step=action.next_step,
                                              now=datetime.now(UTC), **fields)  # fmt: skip
                if backup and "backup" not in progress:
                    progress["backup"] = backup
                self.event(obj, "Normal", "CopyProgressing",
                           f"{copies.STEP_WORDS[step]}: done")  # fmt: skip
                step = action.next_step
                if step == copies.COPIED:
                    self.event(obj, "Normal", "CopySucceeded", f"a copy of {source} made from "
                               f"{progress.get('backup')}; starting Odoo")  # fmt: skip
                    self.write(obj, progress, step)
                    return None
                obj = self.write(obj, progress, step)
                continue
            if action.verb == "start":
                progress = copies.copy_status(progress, source=source, step=step,
                                              now=datetime.now(UTC))  # fmt: skip
                obj = self.write(obj, progress, step)
                self.event(obj, "Normal", "CopyProgressing", copies.STEP_WORDS[step])
                try:
                    await self.start(step, obj, spec, names, backup, copies.TRANSFER in plan)
                except InvalidInput:
                    raise
                except SaasodooError as exc:
                    return self.fail(obj, source, progress, step, exc.message)
                if step == copies.INSTALL:
                    continue  # installed: the next step in this turn
            return self.controller.report(
                obj, outcome="progressing", detail=copies.STEP_WORDS[step],
                requeue=POLL_SECONDS, copy=progress,
                reason=copies.STEP_REASONS[step][0],
            )  # fmt: skip
        return self.controller.report(obj, outcome="progressing", detail=copies.STEP_WORDS.get(
            step, step), requeue=POLL_SECONDS, copy=progress)  # fmt: skip

    # -- what the cluster shows -----------------------------------------------------

    def source_facts(self, source: str) -> copies.SourceFacts:
        """The source as the API server has it now: its OdooTenant, and its backup storage
        from its backup CronJob (none: ``""``)."""
        obj = self.resources.get(source)
        if obj is None:
            return copies.SourceFacts(source, exists=False)
        deleting = bool(obj["metadata"].get("deletionTimestamp"))
        version = str((obj.get("spec") or {}).get("odooVersion") or "")
        try:
            storage, _ = storage_of(self.backups.cronjob(source))
        except NotFound:
            storage = ""
        kept = storage if storage in (copies.S3, copies.PVC) else ""
        return copies.SourceFacts(source, True, deleting, version, kept)

    async def observe(
        self, step: str, spec: TenantSpec, ns: Namespace | None, names: dict[str, str]
    ) -> tuple[str, str]:
        """The state of ``step``'s work (``copies.ABSENT``, ...) and what it produced or
        why it failed (the backup's name for ``backup-source``)."""
        if step in (copies.COPIED, copies.FAILED, copies.START):
            return copies.SUCCEEDED, ""
        if step == copies.BACKUP_SOURCE:
            request = await asyncio.to_thread(self.requests.get, names[step])
            status = (request or {}).get("status") or {}
            phase = None if request is None else status.get("phase") or "Pending"
            seen = copies.request_state(phase)
            if seen == copies.SUCCEEDED and not status.get("backup"):
                return copies.FAILED_WORK, (
                    f"{ops.BACKUP.kind} {names[step]} succeeded but named no backup (the "
                    "source's storage is not readable)"
                )
            return seen, str(status.get("backup") or status.get("message") or "")
        if step == copies.INSTALL:
            namespace = self.ctx.record.read(spec.namespace)
            if namespace is None:
                return copies.ABSENT, ""
            if not self.ctx.record.has_spec(namespace):
                return copies.FAILED_WORK, (f"namespace {namespace.name} exists but is not a "
                                            "saasodoo tenant's")  # fmt: skip
            head = self.ctx.record.head(spec)
            lock = self.ctx.record.lock(namespace)
            stale_after = self.controller.reconciler.stale_after
            return copies.install_state(head, lock, datetime.now(UTC), stale_after)
        try:
            job = self.ctx.kube.read_job(spec.namespace, names[step])
        except NotFound:
            return copies.ABSENT, ""
        seen = copies.job_state([(c.type, c.status) for c in job.conditions])
        if seen == copies.FAILED_WORK:
            container = "backup" if step in (copies.RESTORE, copies.TRANSFER) else "odoo-init"
            result = self.job_result(spec, names[step], container) or {}
            return seen, f"job {names[step]} failed: {result.get('error') or 'see its log'}"
        return seen, f"job {names[step]} completed" if seen == copies.SUCCEEDED else ""

    def job_result(self, spec: TenantSpec, job: str, container: str) -> dict[str, Any] | None:
        """The Job's ``RESULT`` line (None when its log cannot be read: a simulated node)."""
        try:
            logs = self.ctx.kube.job_pod_logs(spec.namespace, job, container)
            return copies.last_result(logs)
        except Exception:  # noqa: BLE001 - the log is a bonus
            log.debug("no log for job %s/%s", spec.namespace, job, exc_info=True)
            return None

    # -- the work -------------------------------------------------------------------

    async def start(
        self, step: str, obj: dict[str, Any], spec: TenantSpec, names: dict[str, str],
        backup: str | None, transferred: bool = False,
    ) -> None:  # fmt: skip
        """Create ``step``'s work (a request, the release, a Job). ``transferred``: the
        backup is carried into the copy's own storage first (a source keeping its backups
        on its PVC), so the restore reads it there."""
        source = spec.copy_of or ""
        if step == copies.BACKUP_SOURCE:
            request: dict[str, Any] = {
                "metadata": {"name": names[step], "labels": copies.copy_labels(source)},
                "spec": {"tenant": source},
            }
            try:
                await asyncio.to_thread(self.requests.create, request)
            except Conflict:
                pass  # created by an earlier turn (its status not seen yet)
        elif step == copies.INSTALL:
            owner = (obj.get("spec") or {}).get("owner")
            placed = self.controller.placed((obj.get("spec") or {}).get("nodePool"))
            # No helm --wait: with Odoo at zero nothing mounts the filestore volume yet, and a
            # WaitForFirstConsumer claim stays Pending until the restore Job does.
            await placed.create(spec, owner=owner, wait=False, suspended=True)
        elif step == copies.TRANSFER:
            if not backup:
                raise SaasodooError("no backup of the source to carry over")
            await asyncio.to_thread(
                self.backups.carry_over, source, spec.id, backup, names[step],
                {copies.COPY_JOB_LABEL: copies.TRANSFER},
            )  # fmt: skip
        elif step == copies.RESTORE:
            cronjob = await asyncio.to_thread(self.backups.cronjob, spec.id)
            if not transferred:  # read from the source's folder of the S3 storage
                await asyncio.to_thread(self.share_storage_secrets, cronjob, source, spec)
            body = self.backups.jobs.restore_job(
                spec.id, cronjob, backup, mode="restore",
                source_tenant=None if transferred else source, as_copy=transferred,
            )  # fmt: skip
            body["metadata"]["name"] = names[step]
            body["metadata"]["labels"][copies.COPY_JOB_LABEL] = copies.RESTORE
            await asyncio.to_thread(self.create_job, body)
        elif step == copies.NEUTRALIZE:
            selector = f"{COMPONENT_LABEL}=odoo,{TENANT_LABEL}={spec.id}"
            path = f"/apis/apps/v1/namespaces/{spec.namespace}/deployments"
            found = self.ctx.kube.list_items(f"list deployments of {spec.namespace}",
                                                 path, selector)  # fmt: skip
            if not found:
                raise NotFound(f"the copy has no web Deployment ({selector})")
            try:
                body = copies.neutralize_job(found[0], names[step])
            except ValueError as exc:
                raise SaasodooError(str(exc)) from None
            await asyncio.to_thread(self.create_job, body)

    def share_storage_secrets(self, cronjob: dict[str, Any], source: str, spec: TenantSpec) -> None:
        """The S3 key pair Secrets the copy's backup container reads, copied from the
        source's namespace where the copy's has none (its restore Job reads the source's
        prefix with the source's keys; the values never hold them). SaasodooError naming a
        Secret neither namespace has."""
        kube = self.ctx.kube
        for name in copies.storage_secrets(backup_container(cronjob)):
            try:
                kube.secret_data(spec.namespace, name)
                continue
            except NotFound:
                pass
            theirs = (namespace_for(source), name)
            try:
                keys = {key: key for key in kube.secret_data(*theirs)}
                # copied as the API gives it (base64), never decoded here
                kube.copy_secret_keys(theirs, spec.namespace, name, keys,
                                      labels={TENANT_LABEL: spec.id})  # fmt: skip
            except NotFound:
                raise SaasodooError(
                    f"the backup storage Secret {name} is in neither the copy's namespace nor "
                    f"the source's ({namespace_for(source)})"
                ) from None

    def create_job(self, body: dict[str, Any]) -> None:
        try:
            self.ctx.kube.create_job(body)
        except Conflict:
            pass  # created by an earlier turn

    # -- status and Events ----------------------------------------------------------

    def write(self, obj: dict[str, Any], progress: dict[str, Any], step: str) -> dict[str, Any]:
        """``status.copy`` and Reconciling with the step's reason; the object as written."""
        words = copies.STEP_WORDS.get(step, "copied: starting Odoo")
        reason = copies.STEP_REASONS.get(step, ("CopyStarting", ""))[0]
        self.controller.report(obj, outcome="progressing", detail=words, copy=progress,
                               reason=reason)  # fmt: skip
        return self.resources.get(obj["metadata"]["name"]) or obj

    def fail(
        self, obj: dict[str, Any], source: str, progress: dict[str, Any], step: str, why: str
    ) -> Result:
        """The copy failed at ``step``: Stalled with the step's reason, Odoo left at zero."""
        failed_at = progress.get("failedStep") or step
        reason = copies.STEP_REASONS.get(failed_at, ("", "CopyFailed"))[1]
        message = f"copy of {source} failed at {failed_at}: {why}; Odoo stays at zero " \
                  "replicas. Delete this OdooTenant and ask again"  # fmt: skip
        if step != copies.FAILED:
            progress = copies.copy_status(progress, source=source, step=copies.FAILED,
                                          now=datetime.now(UTC), message=why[:1024],
                                          failedStep=step)  # fmt: skip
            self.event(obj, "Warning", reason, message)
        return self.controller.report(obj, outcome="invalid", detail=message, copy=progress,
                                      reason=reason)  # fmt: skip

    def event(self, obj: dict[str, Any], kind: str, reason: str, note: str) -> None:
        self.controller.event(obj, kind, reason, note, "Copy")
