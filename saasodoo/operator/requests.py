"""The one-shot operation requests (``OdooTenantBackup``, ``OdooTenantRestore``,
``OdooTenantVerify``, ``OdooTenantRollback``, ``OdooTenantRefresh``, ``OdooTenantDownload``:
``saasodoo.core.operations``), run by the
operator in the tenant's turn of the work queue.

The work queue's key stays the tenant's name: an event on a request queues its
``spec.tenant``, and ``RequestController.reconcile(name)`` (what the workers call) first
runs that tenant's oldest request not yet finished (``operations.order_key``), one per turn,
then asks for the tenant again at once; with none pending it is the tenant's reconcile
(``TenantController.reconcile``). So a request never runs beside a helm operation or
another request of the same tenant, and the operator's guarantees (one reconcile per tenant
at a time, the work cancelled when the leadership term ends) hold for requests too.

Which requests are pending comes from ``RequestIndex``, filled by the request informers'
events (no API request: a tenant without requests costs what it cost before); the one to run
is read again from the API server first (the cache may lag behind the operator's own
writes).

One request's run: the spec parsed (``InvalidSpec`` otherwise); one found ``Running`` (its
operator stopped or lost its term meanwhile) is started again while ``attempts`` is below
``MAX_ATTEMPTS``, else ``Failed``/``Interrupted``; the ownerReference to its OdooTenant
added (deleting the tenant garbage-collects its requests); ``Running`` written, then the
work, then ``Succeeded`` or ``Failed`` with the result; an Event on the request and on the
OdooTenant at the start and the end. A request for a tenant with no OdooTenant, or one
being deleted, fails with ``TenantNotFound``. A failed request is never retried by itself.

The executors are the existing services: backup ``Backups.create(kind="on-demand")`` (the
OdooTenant's ``BackupSucceeded`` and ``lastBackup`` follow, ``core.conditions.record_backup``);
restore ``Backups.restore`` (and ``Backups.discard`` of the backup when it fails with
``discardOnFailure``: an import); verify ``Backups.verify``; download ``Backups.serve`` (a
reader pod for a backup kept on the tenant's volume, its address in ``status.result``);
refresh (a staging copy's source copied into it again: ``refresh``);
rollback ``Tenants.rollback``, then the OdooTenant's ``.spec`` is made the spec of the
revision returned to, so the next reconcile finds the tenant in sync and runs no helm.
Blocking calls run in a thread, as the controller's.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from saasodoo.adapters.resources import CustomResources, TenantResources, merge_patch
from saasodoo.backups import Backups
from saasodoo.backups.finals import storage_of
from saasodoo.backups.jobs import transfer_deadline
from saasodoo.backups.restore import RestoreChoreography
from saasodoo.core import copies
from saasodoo.core import operations as ops
from saasodoo.core import updates as up
from saasodoo.core.conditions import BackupReport
from saasodoo.core.crd import from_tenant_spec
from saasodoo.core.spec import check_tenant_id, namespace_for
from saasodoo.errors import Conflict, InvalidInput, SaasodooError
from saasodoo.operator.backups import list_into_status, write_backup
from saasodoo.operator.controller import DONE, Result, TenantController
from saasodoo.tenants import Tenants

log = logging.getLogger(__name__)

#: What the turn asks of the work queue after running a request: the tenant again, at once
#: (its next request, or its reconcile).
AGAIN = Result(requeue_after=0.0)
#: Longest error text of an unexpected exception kept in a request's status.
MAX_ERROR = 2000


class RequestIndex:
    """The requests not finished yet, by tenant, as the request informers last showed them
    (thread-safe; no API request). ``update`` on every informer event, ``remove`` on
    DELETED."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        #: tenant -> {(kind, name): order key}
        self._pending: dict[str, dict[tuple[str, str], tuple[str, str]]] = {}
        #: (kind, name) -> tenant
        self._tenant: dict[tuple[str, str], str] = {}

    def update(self, kind: str, obj: dict[str, Any]) -> str | None:
        """Take the request ``obj`` of ``kind`` as now seen; returns its tenant when it is
        not finished (the key to queue), else None."""
        key = (kind, str(obj["metadata"]["name"]))
        if ops.is_terminal(obj):
            self._drop(key)
            return None
        tenant = ops.tenant_of(obj)
        with self._lock:
            old = self._tenant.get(key)
            if old is not None and old != tenant:
                self._pending.get(old, {}).pop(key, None)
            self._tenant[key] = tenant
            self._pending.setdefault(tenant, {})[key] = ops.order_key(obj)
        return tenant

    def remove(self, kind: str, obj: dict[str, Any]) -> None:
        self._drop((kind, str(obj["metadata"]["name"])))

    def _drop(self, key: tuple[str, str]) -> None:
        with self._lock:
            tenant = self._tenant.pop(key, None)
            if tenant is None:
                return
            mine = self._pending.get(tenant, {})
            mine.pop(key, None)
            if not mine:
                self._pending.pop(tenant, None)

    def pending(self, tenant: str) -> list[tuple[str, str]]:
        """``(kind, name)`` of the tenant's requests not finished, oldest first."""
        with self._lock:
            mine = dict(self._pending.get(tenant, {}))
        return sorted(mine, key=lambda k: (mine[k], k))

    def tenants(self) -> list[str]:
        """Tenants with a request not finished (sorted)."""
        with self._lock:
            return sorted(self._pending)


@dataclass(frozen=True)
class Done:
    """What an executor did: ``ok`` (Succeeded, else Failed), the message, and what it
    produced for the request's status."""

    ok: bool
    message: str
    backup: str | None = None
    revision: int | None = None
    result: dict[str, Any] | None = None
    #: The Failed request's reason when it says more than ``Failed`` (``InvalidSpec``).
    reason: str | None = None


class RequestController:
    """Runs the requests of the platform namespace in their tenant's turn, and the tenant's
    reconcile (``controller``) when it has none pending."""

    def __init__(
        self,
        controller: TenantController,
        index: RequestIndex,
        *,
        backups: Backups | None = None,
    ) -> None:
        self.controller = controller
        self.index = index
        self.tenants: Tenants = controller.tenants
        self.ctx = controller.ctx
        self.resources: TenantResources = controller.resources
        self.backups = backups or Backups(self.ctx.settings, kube=self.ctx.kube)
        namespace = self.resources.namespace
        self.requests = {
            op.kind: CustomResources(self.ctx.kube, namespace, op.plural, op.kind)
            for op in ops.KINDS.values()
        }

    # -- the turn -------------------------------------------------------------------

    async def reconcile(self, name: str) -> Result:
        """The tenant ``name``'s turn: its oldest pending request, or its reconcile."""
        request = self.next_request(name)
        if request is None:
            return await self.controller.reconcile(name)
        tenant = self.resources.get(name)
        if tenant is not None and up.in_progress((tenant.get("status") or {}).get("update")):
            # The update's steps own the tenant until it ends: the request waits (Pending).
            return await self.controller.reconcile(name)
        if tenant is None or tenant["metadata"].get("deletionTimestamp"):
            why = "is being deleted" if tenant is not None else "does not exist"
            note = await self.discard_staged(request)
            self.finish(request, tenant, ops.FAILED, reason=ops.REASON_TENANT_NOT_FOUND,
                        message=f"the OdooTenant {name} {why} (namespace "
                        f"{self.resources.namespace}){note}")  # fmt: skip
            return AGAIN
        await self.run(request, tenant)
        return AGAIN

    def next_request(self, tenant: str) -> dict[str, Any] | None:
        """The tenant's oldest request not finished, as the API server has it now (the
        index may lag behind: requests found finished or gone are passed over)."""
        for kind, name in self.index.pending(tenant):
            obj = self.requests[kind].get(name)
            if obj is not None and not ops.is_terminal(obj):
                return obj
        return None

    async def run(self, request: dict[str, Any], tenant: dict[str, Any]) -> None:
        """One request, start to end (module docstring). A cancellation (the term ended)
        leaves it ``Running``: the next term starts it again."""
        op = ops.kind_of(request)
        try:
            spec = ops.parse_spec(op, request.get("spec"))
        except InvalidInput as exc:
            note = await self.discard_staged(request)
            self.finish(request, tenant, ops.FAILED, reason=ops.REASON_INVALID,
                        message=exc.message + note)  # fmt: skip
            return
        status = request.get("status") or {}
        if ops.interrupted(request):
            note = await self.discard_staged(request)
            self.finish(request, tenant, ops.FAILED, reason=ops.REASON_INTERRUPTED,
                        message=f"interrupted {status.get('attempts')} times (the operator "
                        "stopped while it ran); create a new request to try again"
                        + note)  # fmt: skip
            return
        restart = ops.phase_of(request) == ops.RUNNING
        if restart and op is ops.ROLLBACK and getattr(spec, "revision", None) is None:
            # "the previous revision" of a restarted rollback may be the one it made: never
            # roll the rollback back (the CLI and the API always name the revision)
            self.finish(request, tenant, ops.FAILED, reason=ops.REASON_INTERRUPTED,
                        message="interrupted: a rollback to the previous revision is not "
                        "started twice; see helm history and ask again naming "
                        "spec.revision")  # fmt: skip
            return
        refs = ops.with_owner(request, tenant)
        if refs is not None:
            request = self.requests[op.kind].set_owner_references(request, refs)
        what = f"{op.operation} of {spec.tenant}"
        if restart:
            what += f" started again (attempt {int(status.get('attempts') or 0) + 1}: the "
            what += "operator stopped while it ran)"
        request = self.write(request, ops.RUNNING, message=what, restart=restart)
        self.event(request, tenant, "Normal", ops.REASON_PROGRESSING, what, op)
        try:
            done = await self.execute(op, spec, request, tenant)
        except InvalidInput as exc:  # a check only the operator can make (a revision of
            done = Done(False, exc.message, reason=ops.REASON_INVALID)  # another series, ...)
        except SaasodooError as exc:
            done = Done(False, exc.message)
        except Exception as exc:  # noqa: BLE001 - the request fails, the operator goes on
            log.exception("%s %s failed", op.kind, request["metadata"]["name"])
            done = Done(False, f"unexpected error: {type(exc).__name__}: {exc}"[:MAX_ERROR])
        self.finish(request, tenant, ops.SUCCEEDED if done.ok else ops.FAILED,
                    message=done.message, reason=None if done.ok else done.reason,
                    backup=done.backup, revision=done.revision, result=done.result)  # fmt: skip
        if done.ok and op in (ops.BACKUP, ops.RESTORE, ops.REFRESH):  # new zips
            await asyncio.to_thread(list_into_status, self.resources, self.backups, spec.tenant)

    # -- the executors --------------------------------------------------------------

    async def execute(
        self, op: ops.OperationKind, spec: Any, request: dict[str, Any], tenant: dict[str, Any]
    ) -> Done:
        if op is ops.BACKUP:
            return await self.backup(spec.tenant)
        if op is ops.RESTORE:
            return await self.restore(spec)
        if op is ops.VERIFY:
            return await self.verify(spec)
        if op is ops.DOWNLOAD:
            return await self.download(spec)
        if op is ops.REFRESH:
            return await self.refresh(spec, request, tenant)
        return await self.rollback(spec, tenant)

    async def backup(self, tenant_id: str) -> Done:
        try:
            taken = await asyncio.to_thread(self.backups.create, tenant_id, kind="on-demand")
        except SaasodooError as exc:
            self.record_backup(tenant_id, BackupReport("", False, datetime.now(UTC), exc.message))
            raise
        name = taken.backup.name if taken.backup else None
        if name:
            message = f"backup {name} taken (job {taken.job.name})"
        else:
            message = (f"backup job {taken.job.name} completed; the new backup was not "
                       "found (its storage is not readable from here and the job's log said "
                       "nothing)")  # fmt: skip
        self.record_backup(tenant_id, BackupReport(name or taken.job.name, True,
                                                   datetime.now(UTC), message))  # fmt: skip
        return Done(True, message, backup=name, result=taken.to_dict())

    async def restore(self, spec: ops.RestoreRequestSpec) -> Done:
        what = spec.backup or "the newest backup"
        try:
            restored = await asyncio.to_thread(
                self.backups.restore, spec.tenant, spec.backup, drop_previous=spec.drop_previous
            )
        except Conflict as exc:
            # Another restore of the tenant runs (a restarted request's first Job, still
            # reading the zip): nothing is discarded under it.
            return Done(False, exc.message, backup=spec.backup)
        except SaasodooError as exc:
            if spec.discard_on_failure and spec.backup:
                try:
                    await asyncio.to_thread(self.backups.discard, spec.tenant, spec.backup)
                except SaasodooError as gone:
                    log.warning("restore of %s: %s not discarded: %s", spec.tenant,
                                spec.backup, gone.message)  # fmt: skip
                    return Done(False, f"{exc.message}; {spec.backup} could not be deleted "
                                f"from the tenant's storage: {gone.message}",
                                backup=spec.backup)  # fmt: skip
                return Done(False, f"{exc.message}; {spec.backup} was deleted from the "
                            "tenant's storage (discardOnFailure)", backup=spec.backup)  # fmt: skip
            return Done(False, exc.message, backup=spec.backup)
        name = spec.backup or (restored.job.result or {}).get("backup")
        message = (f"restored {name or what} (job {restored.job.name}); Odoo Ready again after "
                   f"{restored.ready_seconds}s")  # fmt: skip
        return Done(True, message, backup=name, result=restored.to_dict())

    async def verify(self, spec: ops.VerifyRequestSpec) -> Done:
        checked = await asyncio.to_thread(self.backups.verify, spec.tenant, spec.backup)
        name = spec.backup or (checked.job.result or {}).get("backup")
        what = name or "the newest backup"
        if checked.ok:
            message = f"{what} restores and matches its manifest (job {checked.job.name})"
        else:
            why = (checked.job.result or {}).get("error") or checked.job.reason
            message = f"{what} failed verification (job {checked.job.name}): {why}"
        return Done(checked.ok, message, backup=name, result=checked.to_dict())

    async def download(self, spec: ops.DownloadRequestSpec) -> Done:
        """A reader pod serving the backup once (``Backups.serve``); its address and expiry
        in ``status.result``."""
        served = await asyncio.to_thread(
            self.backups.serve, spec.tenant, spec.backup, spec.token_sha256
        )
        message = (f"{spec.backup} served once at {served['address']} until "
                   f"{served['expiresAt']} (job {served['job']})")  # fmt: skip
        return Done(True, message, backup=spec.backup, result=served)

    async def refresh(
        self, spec: ops.RefreshRequestSpec, request: dict[str, Any], tenant: dict[str, Any]
    ) -> Done:
        """A staging copy's source copied into it again: a fresh backup of the source taken
        online (or the one named), carried into the copy's own storage first when the
        source keeps it on its volume (``Backups.carry_over``), then restored into the copy
        as a copy (a new identity; Odoo at zero meanwhile, and its pods neutralize the new
        data before any Odoo runs on it: odoo-init.py ``--initialize --copy``)."""
        try:
            source = copies.refresh_source(tenant)
        except (InvalidInput, Conflict) as exc:
            return Done(False, exc.message, reason=ops.REASON_INVALID)
        backup = spec.backup
        if backup is None:
            taken = await asyncio.to_thread(self.backups.create, source, kind="on-demand")
            backup = taken.backup.name if taken.backup else None
            if not backup:
                return Done(False, f"the backup of {source} (job {taken.job.name}) named no "
                            "backup: its storage is not readable from here")  # fmt: skip
        cronjob = await asyncio.to_thread(self.backups.cronjob, source)
        kept, _ = storage_of(cronjob)
        if kept not in ("s3", "pvc"):
            return Done(False, f"{source} keeps no backups", reason=ops.REASON_INVALID)
        reads_from: str | None = source
        if kept == "pvc":  # its volume: carried into the copy's own storage first
            # Named by the request and the backup: a request started again after an
            # operator restart (which may have taken another backup) finds its own Job.
            uid = str(request["metadata"].get("uid") or "").replace("-", "")[:8]
            which = hashlib.sha256(backup.encode()).hexdigest()[:6]
            name = f"{spec.tenant[:30]}-refresh-fetch-{uid}-{which}"
            await asyncio.to_thread(self.backups.carry_over, source, spec.tenant, backup, name)
            fetched = await asyncio.to_thread(
                self.backups.jobs.follow, namespace_for(spec.tenant), name,
                timeout=transfer_deadline(cronjob) + 120,
            )  # fmt: skip
            if not fetched.succeeded:
                why = (fetched.result or {}).get("error") or fetched.reason
                return Done(False, f"carrying {backup} over from {source} failed (job "
                            f"{name}): {why}", backup=backup)  # fmt: skip
            reads_from = None
        restored = await asyncio.to_thread(
            self.backups.restore, spec.tenant, backup, source_tenant=reads_from,
            as_copy=reads_from is None,
        )  # fmt: skip
        message = (f"refreshed from {source}'s backup {backup} (job {restored.job.name}); "
                   f"Odoo Ready again after {restored.ready_seconds}s")  # fmt: skip
        return Done(True, message, backup=backup, result=restored.to_dict())

    async def rollback(self, spec: ops.RollbackRequestSpec, tenant: dict[str, Any]) -> Done:
        """``Tenants.rollback``, then the OdooTenant's spec made the revision's (its fields
        not part of a tenant's spec, such as ``nodePool``, kept)."""
        rolled = await self.tenants.rollback(spec.tenant, spec.revision, wait=True)
        record = self.ctx.record
        suspended = record.suspended(record.namespace(spec.tenant))
        current = dict(tenant.get("spec") or {})
        desired = {
            **current,
            **from_tenant_spec(rolled.spec, suspended=suspended, owner=current.get("owner"),
                               final_backup=bool(current.get("finalBackup", True))),
        }  # fmt: skip
        patch = merge_patch(current, desired)
        if patch:
            self.resources.patch(spec.tenant, {"spec": patch})
        to = f"revision {spec.revision}" if spec.revision else "the previous revision"
        message = (f"rolled back to {to}: the release is at revision {rolled.status.revision}, "
                   "the OdooTenant's spec is that revision's")  # fmt: skip
        return Done(True, message, revision=rolled.status.revision, result=rolled.to_dict())

    async def discard_staged(self, request: dict[str, Any]) -> str:
        """An import's restore (``discardOnFailure`` with a ``backup``) failing before it
        ran (tenant gone, spec refused, interrupted): the staged zip deleted from the
        tenant's storage (``Backups.discard``), unless a restore Job of the tenant still runs
        (it may be reading the zip). Returns what to add to the request's message ("" for
        any other request)."""
        spec = request.get("spec") or {}
        backup, tenant_id = spec.get("backup"), spec.get("tenant")
        if ops.kind_of(request) is not ops.RESTORE or not spec.get("discardOnFailure"):
            return ""
        if not isinstance(backup, str) or not backup or not isinstance(tenant_id, str):
            return ""
        try:
            running = await asyncio.to_thread(self.restores_running, tenant_id)
            if running:
                return (f"; {backup} kept in the tenant's storage: the restore job "
                        f"{', '.join(running)} still runs")  # fmt: skip
            await asyncio.to_thread(self.backups.discard, tenant_id, backup)
        except (SaasodooError, ValueError) as exc:
            message = exc.message if isinstance(exc, SaasodooError) else str(exc)
            log.warning("%s: staged %s not discarded: %s", tenant_id, backup, message)
            return f"; {backup} could not be deleted from the tenant's storage: {message}"
        return f"; {backup} was deleted from the tenant's storage (discardOnFailure)"

    def restores_running(self, tenant_id: str) -> list[str]:
        """The tenant's restore (or recovery) Jobs still running (none without its
        namespace)."""
        namespace = namespace_for(check_tenant_id(tenant_id))
        if self.backups.kube.read_namespace(namespace) is None:
            return []
        backups = self.backups
        return RestoreChoreography(backups.kube, backups.jobs, backups.run_job).running_restores(
            namespace
        )

    # -- status and Events ----------------------------------------------------------

    def record_backup(self, tenant_id: str, report: BackupReport) -> None:
        """The OdooTenant's ``lastBackup`` and ``BackupSucceeded`` from ``report``."""
        write_backup(self.resources, tenant_id, report)

    def write(
        self, request: dict[str, Any], phase: str, *, message: str, reason: str | None = None,
        restart: bool = False, **fields: Any,
    ) -> dict[str, Any]:  # fmt: skip
        """Write the request's next status (``operations.transition``); returns the object
        as written."""
        meta = request["metadata"]
        previous = dict(request.get("status") or {})
        status = ops.transition(
            previous, phase, generation=int(meta.get("generation") or 1),
            now=datetime.now(UTC), message=message, reason=reason, restart=restart, **fields,
        )  # fmt: skip
        resources = self.requests[ops.kind_of(request).kind]
        return resources.patch_status(meta["name"], status, previous)

    def finish(
        self,
        request: dict[str, Any],
        tenant: dict[str, Any] | None,
        phase: str,
        *,
        message: str,
        reason: str | None = None,
        **fields: Any,
    ) -> None:
        """The final status and the Events saying so."""
        op = ops.kind_of(request)
        request = self.write(request, phase, message=message, reason=reason, **fields)
        kind = "Normal" if phase == ops.SUCCEEDED else "Warning"
        why = reason or (ops.REASON_SUCCEEDED if phase == ops.SUCCEEDED else ops.REASON_FAILED)
        self.event(request, tenant, kind, why, message, op)
        log.info("%s %s: %s: %s", op.kind, request["metadata"]["name"], phase, message)

    def event(
        self,
        request: dict[str, Any],
        tenant: dict[str, Any] | None,
        kind: str,
        reason: str,
        note: str,
        op: ops.OperationKind,
    ) -> None:
        """An Event on the request and one on its OdooTenant (when there is one)."""
        action = op.operation.capitalize()
        request = {"kind": op.kind, **request}
        self.requests[op.kind].event(request, kind, reason, note, action)
        if tenant is not None:
            name = request["metadata"]["name"]
            self.resources.event(tenant, kind, reason, f"{op.kind} {name}: {note}", action)


__all__ = ["AGAIN", "DONE", "Done", "RequestController", "RequestIndex"]
