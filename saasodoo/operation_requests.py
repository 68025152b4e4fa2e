"""One-shot operations as request resources (``saasodoo.core.operations``): what the CLI,
the HTTP API and the web UI write when the operator runs (``Settings.operator``), and what
they read back.

A request is written only after the checks the in-process operation makes before its first
change (``OperationRequests.check``: the tenant's OdooTenant exists, its backups are on,
the backup exists and is of the tenant's Odoo series, the revision exists...): a refusal
names the field and writes nothing. The operator runs it in the tenant's turn and writes its
``.status``; ``wait`` follows it until it Succeeded, or raises its failure as a
``SaasodooError`` whose kind follows the failure's reason (``RequestFailed`` and its exit
code 1 unless the reason says more), calling back with each new phase or message.

An import is the upload staged into the tenant's backup storage from here
(``Backups.stage_import``: the bytes never go to etcd), then an ``OdooTenantRestore`` of the
stored zip with ``discardOnFailure`` (the operator deletes it when the restore fails).

Names: the API server names a request ``<tenant>-<operation>-<5 characters>``
(``generateName``); ``get`` finds a request by its name alone, reading first the kind its
name says, then the others (a request made by ``kubectl create -f`` may be named anyhow).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from saasodoo.adapters.resources import CustomResources, TenantResources
from saasodoo.adapters.storage import served_stream
from saasodoo.backups import Backups
from saasodoo.backups.jobs import SERVE_SECONDS, reader_token
from saasodoo.context import Context
from saasodoo.core.conditions import get_condition
from saasodoo.core.copies import refresh_source
from saasodoo.core.crd import to_tenant_spec
from saasodoo.core.operations import (
    BY_OPERATION,
    DOWNLOAD,
    FAILED,
    KINDS,
    REASON_INVALID,
    REASON_TENANT_NOT_FOUND,
    REFRESH,
    RESTORE,
    ROLLBACK,
    SUCCEEDED,
    TENANT_LABEL,
    OperationKind,
    phase_of,
    request_body,
)
from saasodoo.core.reconcile import parse_duration
from saasodoo.core.spec import check_tenant_id
from saasodoo.core.values import backup_storage
from saasodoo.core.versions import check_rollback_series, odoo_series, parse_series
from saasodoo.errors import Conflict, FieldError, InvalidInput, NotFound, SaasodooError
from saasodoo.tenants import Tenants

log = logging.getLogger(__name__)

#: How often ``wait`` reads the request (seconds).
POLL_SECONDS = 0.5
#: What ``wait`` allows beyond the operation's own bound (the operator's turn, its writes).
MARGIN_SECONDS = 120.0
#: The most a restore waits for Odoo to be Ready again after it (``backups.restore``).
RESTORE_READY_SECONDS = 600.0
#: Seconds a download waits for the operator's reader pod of a backup volume to listen.
SERVE_WAIT_SECONDS = 180.0
#: How long after it succeeded an import's request still answers a retry of the same upload
#: (seconds): a client that timed out and sent the zip again gets the first import.
IMPORT_RETRY_SECONDS = 900.0
#: Kubernetes' DNS subdomain bound on an object's name, and its characters.
MAX_NAME = 253
NAME_CHARACTERS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789-.")


class RequestFailed(SaasodooError):
    """The operator ran the request and it failed (its ``status.message`` says why)."""


#: The error a Failed request raises in ``wait``, by its reason (default ``RequestFailed``).
FAILURES: dict[str, type[SaasodooError]] = {
    REASON_TENANT_NOT_FOUND: NotFound,
    REASON_INVALID: InvalidInput,
}


@dataclass(frozen=True)
class RequestView:
    """A request as its resource shows it (``.metadata``, ``.spec``, ``.status``)."""

    name: str
    kind: str
    operation: str  # backup, restore, verify, rollback
    tenant: str
    spec: dict[str, Any]
    phase: str  # Pending (also before the operator's first word), Running, Succeeded, Failed
    reason: str  # the Ready condition's reason ("" before any)
    message: str
    created_at: str
    started_at: str | None = None
    completed_at: str | None = None
    attempts: int = 0
    backup: str | None = None
    revision: int | None = None
    result: dict[str, Any] | None = None
    generation: int = 0
    observed_generation: int | None = None
    conditions: list[dict[str, Any]] = field(default_factory=list)

    @classmethod
    def of(cls, obj: dict[str, Any]) -> RequestView:
        op = KINDS[str(obj.get("kind"))]
        meta, spec, status = obj["metadata"], obj.get("spec") or {}, obj.get("status") or {}
        conditions = list(status.get("conditions") or [])
        ready = get_condition(conditions, "Ready") or {}
        return cls(
            name=meta["name"],
            kind=op.kind,
            operation=op.operation,
            tenant=str(spec.get("tenant") or (meta.get("labels") or {}).get(TENANT_LABEL, "")),
            spec={k: v for k, v in spec.items() if k != "tenant"},
            phase=phase_of(obj),
            reason=str(ready.get("reason") or ""),
            message=str(status.get("message") or ready.get("message") or ""),
            created_at=str(meta.get("creationTimestamp") or ""),
            started_at=status.get("startedAt"),
            completed_at=status.get("completedAt"),
            attempts=int(status.get("attempts") or 0),
            backup=status.get("backup"),
            revision=status.get("revision"),
            result=status.get("result"),
            generation=int(meta.get("generation") or 0),
            observed_generation=status.get("observedGeneration"),
            conditions=conditions,
        )

    @property
    def done(self) -> bool:
        return self.phase in (SUCCEEDED, FAILED)

    def to_dict(self) -> dict[str, Any]:
        """JSON-able, snake_case: what ``--json`` prints and the API answers."""
        return {
            "name": self.name,
            "kind": self.kind,
            "operation": self.operation,
            "tenant_id": self.tenant,
            "spec": self.spec,
            "phase": self.phase,
            "reason": self.reason,
            "message": self.message,
            "created_at": self.created_at,
            "started_at": self.started_at,
            "completed_at": self.completed_at,
            "attempts": self.attempts,
            "backup": self.backup,
            "revision": self.revision,
            # a reader pod's address is the platform's business, not its users'
            "result": self.result if self.operation != "download" else None,
            "generation": self.generation,
            "observed_generation": self.observed_generation,
            "conditions": self.conditions,
        }


def import_name(tenant_id: str, key: str) -> str:
    """The name of the import request keyed by ``key`` (a client's ``Idempotency-Key`` or
    the upload's SHA-256, with the import's options): ``<tenant>-restore-i<16 hex digits of
    the key's SHA-256>``."""
    token = hashlib.sha256(key.encode("utf-8")).hexdigest()[:16]
    return f"{check_tenant_id(tenant_id)}-{RESTORE.operation}-i{token}"


def _within(completed_at: str | None, now: datetime) -> bool:
    """Whether ``completed_at`` (ISO 8601) is less than ``IMPORT_RETRY_SECONDS`` before now."""
    try:
        done = datetime.fromisoformat(str(completed_at).replace("Z", "+00:00"))
    except ValueError:
        return False
    return done.tzinfo is not None and (now - done).total_seconds() < IMPORT_RETRY_SECONDS


def operation_of(name: str) -> OperationKind | None:
    """The kind a generated name says (``<tenant>-<operation>-<suffix>``), else None."""
    parts = name.rsplit("-", 2)
    return BY_OPERATION.get(parts[1]) if len(parts) == 3 else None


def check_name(name: str) -> str:
    """``name`` if it can be an object's name (DNS subdomain), else InvalidInput."""
    ok = 0 < len(name) <= MAX_NAME and all(c in NAME_CHARACTERS for c in name)
    if not ok or not name[0].isalnum() or not name[-1].isalnum():
        raise InvalidInput(
            "invalid request name",
            [FieldError("name", "a DNS subdomain: lower-case letters, digits, '-' and '.', "
                        f"at most {MAX_NAME} characters")],
        )  # fmt: skip
    return name


class OperationRequests:
    """The one-shot operation requests of the platform namespace
    (``Settings.system_namespace``)."""

    def __init__(
        self,
        ctx: Context,
        *,
        tenants: Tenants | None = None,
        backups: Backups | None = None,
        objects: Callable[[OperationKind], CustomResources] | None = None,
        tenant_objects: TenantResources | None = None,
    ) -> None:
        """``tenants``: the lifecycle whose checks a request goes through (default: the
        context's); ``backups``: the service that checks and stages (default: one on the
        context's settings); ``objects`` and ``tenant_objects``: the requests of a kind and
        the OdooTenants (tests pass fakes)."""
        self.ctx = ctx
        self.tenants = tenants or Tenants(ctx)
        self.backups = backups or Backups(ctx.settings)
        namespace = ctx.settings.system_namespace
        # The cluster is reached on first use (a refused option needs none).
        self.objects = objects or (
            lambda op: CustomResources(self.ctx.kube, namespace, op.plural, op.kind)
        )
        self._tenant_objects = tenant_objects

    @property
    def tenant_objects(self) -> TenantResources:
        if self._tenant_objects is None:
            self._tenant_objects = TenantResources(self.ctx.kube,
                                                   self.ctx.settings.system_namespace)  # fmt: skip
        return self._tenant_objects

    # -- writing ----------------------------------------------------------------------------

    def tenant(self, tenant_id: str) -> dict[str, Any]:
        """The tenant's OdooTenant; NotFound when there is none (or it is being deleted)."""
        obj = self.tenant_objects.get(check_tenant_id(tenant_id))
        if obj is None or (obj.get("metadata") or {}).get("deletionTimestamp"):
            raise NotFound(f"tenant '{tenant_id}' not found")
        return obj

    async def check(self, op: OperationKind, tenant_id: str, **spec: Any) -> dict[str, Any]:
        """What can be checked from the resources alone (the API's ServiceAccount reads
        nothing else), before the request is written: the spec's fields (InvalidInput naming
        ``spec.<field>``), the OdooTenant (NotFound); a rollback: against the release history
        the operator records (``status.releases``), the revision exists (NotFound), there
        is one before it (Conflict) and it ran the tenant's Odoo series (InvalidInput naming
        ``revision``). The rest is the operator's to check when it runs the request, which
        then fails with the reason in its status: backups off, no such backup or one of
        another Odoo series (a restore), a revision of another Odoo series whose series the
        history did not record yet (reason ``InvalidSpec``). Returns what the request must
        name that the caller left to "now": a rollback's revision (the previous one as of
        this check, so a second click or a restarted request never rolls back the
        rollback)."""
        request_body(op, self.ctx.settings.system_namespace, tenant_id, **spec)
        obj = self.tenant(tenant_id)
        if op is REFRESH:
            refresh_source(obj)
        if op is ROLLBACK:
            return {"revision": rollback_target(obj, spec.get("revision"))}
        return {}

    async def create(self, operation: str, tenant_id: str, *, checked: bool = False,
                     name: str | None = None, **spec: Any) -> RequestView:  # fmt: skip
        """Check (unless ``checked``: the caller just did), then write a new request of
        ``operation`` (backup, restore, verify, rollback) for ``tenant_id``; ``spec`` in
        snake_case (``backup``, ``drop_previous``, ``revision``...). ``name``: the request's
        name (default: the API server's ``<tenant>-<operation>-<suffix>``; taken: Conflict).
        Returns it as written (phase Pending)."""
        op = self.kind(operation)
        if not checked:
            spec = {**spec, **await self.check(op, tenant_id, **spec)}
        body = request_body(op, self.ctx.settings.system_namespace, tenant_id, **spec)
        if name is not None:
            body["metadata"].pop("generateName", None)
            body["metadata"]["name"] = check_name(name)
        return RequestView.of(self.objects(op).create(body))

    def served_backup(
        self, tenant_id: str, backup: str, *, timeout: float = SERVE_WAIT_SECONDS
    ) -> tuple[int, Iterator[bytes]]:
        """A backup kept on the tenant's backup volume, which no platform process mounts:
        an ``OdooTenantDownload`` naming the SHA-256 of a token made here (the token itself
        never leaves this process), followed until the operator's reader pod listens
        (``timeout`` seconds), then read from it once (``storage.served_stream``): its size
        in bytes and its content in chunks. The request's failure as ``wait`` raises it; the
        request is deleted then (a pending one never starts a reader for nobody)."""
        token, digest = reader_token()
        view = asyncio.run(self.create("download", tenant_id, backup=backup, token_sha256=digest))
        try:
            served = self.wait(view.name, timeout=timeout)
        except SaasodooError:
            # Given up (not served in time, or failed): no reader is started for nobody later.
            try:
                self.objects(DOWNLOAD).delete(view.name)
            except SaasodooError:
                log.warning("%s %s not deleted", view.kind, view.name, exc_info=True)
            raise
        address = str((served.result or {}).get("address") or "")
        if not address:
            raise SaasodooError(f"{view.kind} {view.name} succeeded but named no address")
        return served_stream(address, token, backup)

    def stage_import(
        self,
        tenant_id: str,
        source: Path,
        *,
        moved: bool = False,
        max_bytes: int | None = None,
        work_dir: Path | None = None,
    ) -> str:
        """The first half of an import, in this process: ``source`` checked and rewritten by
        the import worker and stored beside the tenant's backups (``Backups.stage_import``;
        InvalidInput before anything is stored). Returns the stored backup's name. With the
        platform's S3 key pair (the API in the cluster, whose account reads no tenant
        object) the storage and the Odoo series come from the OdooTenant itself
        (``platform_storage``)."""
        obj = self.tenant(tenant_id)
        extra: dict[str, Any] = {} if max_bytes is None else {"max_bytes": max_bytes}
        where = self.platform_storage(tenant_id, obj)
        if where is not None:
            extra["where"] = where
        return self.backups.stage_import(tenant_id, source, moved=moved, work_dir=work_dir,
                                         **extra)  # fmt: skip

    def platform_storage(
        self, tenant_id: str, obj: dict[str, Any] | None = None
    ) -> tuple[dict[str, str], str] | None:
        """With the platform's S3 key pair (``Settings.backup_s3_access_key_id``): where the
        tenant keeps its backups (the OdooTenant's ``status.backupStorage``, as the operator
        last listed them; else ``core.values.backup_storage`` of the values its spec makes)
        and its Odoo series; None without the key pair (then the tenant's CronJob and
        namespace say, read with this process's rights)."""
        if self.ctx.settings.backup_s3_access_key_id is None:
            return None
        obj = obj if obj is not None else self.tenant(tenant_id)
        spec = to_tenant_spec(tenant_id, obj.get("spec") or {}, copies=True)
        # Where the operator last saw them (its CronJob), else where the values put them: a
        # platform change of tenants.values reaches a tenant only at its next upgrade.
        seen = (obj.get("status") or {}).get("backupStorage")
        where = seen or backup_storage(self.tenants.values_for(spec).values)
        return dict(where), spec.odoo_version

    async def request_import(
        self, tenant_id: str, staged: str, *, drop_previous: bool = False, key: str | None = None
    ) -> RequestView:
        """The second half: a restore of the staged backup ``staged`` that deletes it when
        it does not succeed. Should the request not be written, the staged zip is deleted
        here (``Backups.discard``). With ``key`` (``import_name``) the request has the key's
        name: when another process wrote it first (a retry of the same upload raced this
        one), this staged zip is deleted and that request returned."""
        name = import_name(tenant_id, key) if key is not None else None
        # Where to discard from, read before the request (the tenant may go meanwhile).
        try:
            where = self.platform_storage(tenant_id)
        except SaasodooError:  # already gone: the create below says so
            where = None
        try:
            return await self.create(
                RESTORE.operation, tenant_id, backup=staged, drop_previous=drop_previous,
                discard_on_failure=True, name=name,
            )  # fmt: skip
        except Conflict:
            self._discard(tenant_id, staged, where)
            if name is None:
                raise
            return self.get(name)
        except BaseException:
            self._discard(tenant_id, staged, where)
            raise

    def _discard(
        self, tenant_id: str, staged: str, where: tuple[dict[str, str], str] | None
    ) -> None:
        """``Backups.discard`` from ``where`` (``platform_storage``), best effort."""
        try:
            if where is None:
                self.backups.discard(tenant_id, staged)
            else:
                self.backups.discard(tenant_id, staged, where[0])
        except SaasodooError as exc:
            log.warning("staged import %s of %s not discarded: %s", staged, tenant_id, exc)

    def asked_import(
        self, tenant_id: str, key: str, now: datetime | None = None
    ) -> RequestView | None:
        """The import already asked with ``key`` (a client's retry of the same upload): its
        request when it is not finished, or succeeded less than ``IMPORT_RETRY_SECONDS``
        ago; then nothing is staged again. A failed or older one is deleted (the key starts
        a new import) and None returned."""
        name = import_name(tenant_id, key)
        obj = self.objects(RESTORE).get(name)
        if obj is None:
            return None
        view = RequestView.of({"kind": RESTORE.kind, **obj})
        now = now or datetime.now(UTC)
        if not view.done or (view.phase == SUCCEEDED and _within(view.completed_at, now)):
            return view
        self.objects(RESTORE).delete(name)
        return None

    # -- reading ----------------------------------------------------------------------------

    @staticmethod
    def kind(operation: str) -> OperationKind:
        op = BY_OPERATION.get(operation)
        if op is None:
            raise InvalidInput(
                "unknown operation",
                [FieldError("operation", f"must be one of {', '.join(BY_OPERATION)}")],
            )
        return op

    def read(self, name: str) -> dict[str, Any]:
        """The request named ``name`` (any kind); NotFound when there is none."""
        check_name(name)
        first = operation_of(name)
        order = [first] if first else []
        order += [k for k in KINDS.values() if k is not first]
        for op in order:
            obj = self.objects(op).get(name)
            if obj is not None:
                return obj
        raise NotFound(f"operation '{name[:80]}' not found")

    def get(self, name: str) -> RequestView:
        return RequestView.of(self.read(name))

    def list(self, tenant_id: str | None = None) -> list[RequestView]:
        """The requests of ``tenant_id`` (every tenant's: None), oldest first (one list
        request per kind)."""
        selector = f"{TENANT_LABEL}={check_tenant_id(tenant_id)}" if tenant_id else None
        views = [RequestView.of({"kind": op.kind, **o})
                 for op in KINDS.values()
                 for o in self.objects(op).list(selector).get("items") or []]  # fmt: skip
        return sorted(views, key=lambda v: (v.created_at, v.name))

    def default_timeout(self, operation: str, tenant_id: str) -> float:
        """Seconds ``wait`` allows by default: the operation's own bound (a backup Job's
        deadline; a restore's plus Odoo's start; a rollback: ``SAASODOO_HELM_TIMEOUT``)
        plus ``MARGIN_SECONDS``."""
        op = self.kind(operation)
        if op is ROLLBACK:
            return parse_duration(self.ctx.settings.helm_timeout).total_seconds() + MARGIN_SECONDS
        cronjob = self.backups.cronjob(tenant_id)
        deadline = cronjob["spec"]["jobTemplate"]["spec"].get("activeDeadlineSeconds") or 3600
        extra = RESTORE_READY_SECONDS if op is RESTORE else 0.0
        if op is REFRESH:  # the source's backup, its transfer, the restore, Odoo's start
            extra = float(deadline) + SERVE_SECONDS + RESTORE_READY_SECONDS
        return float(deadline) + extra + MARGIN_SECONDS

    def wait(
        self,
        name: str,
        *,
        timeout: float,
        on_progress: Callable[[RequestView], None] | None = None,
        poll_seconds: float = POLL_SECONDS,
    ) -> RequestView:
        """Follow the request until it ends. Succeeded: returned. Failed: raised, as
        ``FAILURES`` says for its reason (``RequestFailed`` otherwise) with its message.
        NotFound when it is deleted meanwhile; SaasodooError after ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        last: tuple[str, str] | None = None
        while True:
            view = self.get(name)
            if (view.phase, view.message) != last and on_progress is not None:
                on_progress(view)
            last = (view.phase, view.message)
            if view.phase == SUCCEEDED:
                return view
            if view.phase == FAILED:
                raise failure(view)
            if time.monotonic() > deadline:
                raise SaasodooError(
                    f"{view.kind} {name} not finished after {timeout:.0f}s ({view.phase}): "
                    f"{view.message or 'no status yet (is the operator running?)'}"
                )
            time.sleep(poll_seconds)


def rollback_target(tenant: dict[str, Any], revision: int | None) -> int | None:
    """The revision a rollback of the OdooTenant ``tenant`` returns to, checked against the
    history its status records (``status.releases``): ``revision``, or the one before the
    newest. NotFound for a revision helm does not have, Conflict when there is none before;
    Conflict for "the previous one" while the operator has recorded no history yet (a named
    revision is then left to the operator to check); InvalidInput naming ``revision`` for a
    revision of another Odoo series (``check_recorded_series``)."""
    tenant_id = tenant["metadata"]["name"]
    releases = (tenant.get("status") or {}).get("releases") or []
    known = sorted(int(r["revision"]) for r in releases if r.get("revision"))
    if not known:
        if revision is None:
            raise Conflict(
                f"tenant '{tenant_id}': its release history is not recorded yet (the operator "
                "writes it once the tenant is reconciled); name the revision or try again"
            )
        return revision
    if revision is None:
        if len(known) < 2:
            raise Conflict(f"tenant '{tenant_id}' has no previous revision to roll back to")
        revision = known[-2]
    elif revision not in known:
        raise NotFound(
            f"tenant '{tenant_id}' has no revision {revision} (known: {', '.join(map(str, known))})"
        )
    entry = next(r for r in releases if int(r.get("revision") or 0) == revision)
    check_recorded_series(tenant, entry)
    return revision


def check_recorded_series(tenant: dict[str, Any], entry: dict[str, Any]) -> None:
    """Refuse (InvalidInput naming ``revision``) a rollback of the OdooTenant ``tenant`` to the
    revision ``entry`` of its ``status.releases`` when that revision ran another Odoo series
    than the tenant's database (its spec's: ``core.versions.odoo_series``). An entry without
    a recorded series (written before saasodoo recorded it), or a spec that does not parse,
    is left to the operator, which checks the revision's values itself."""
    target = parse_series(str(entry.get("odooSeries") or ""))
    if target is None:
        return
    tenant_id = tenant["metadata"]["name"]
    try:
        current = odoo_series(to_tenant_spec(tenant_id, tenant.get("spec") or {}, copies=True))
    except InvalidInput:
        return
    check_rollback_series(tenant_id, int(entry["revision"]), current, target)


def failure(view: RequestView) -> SaasodooError:
    """The error a Failed request stands for (``FAILURES`` by its reason)."""
    error = FAILURES.get(view.reason, RequestFailed)
    return error(f"{view.kind} {view.name} failed: {view.message or view.reason}")
