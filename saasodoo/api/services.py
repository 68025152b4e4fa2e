"""What the API and the web UI share: the services of the app and the tenant operations.

Every operation takes the calling ``User`` and enforces ownership the same way: a tenant
that is not the caller's (unless the caller is an operator) is "not found", exactly like
one that does not exist. Long operations are queued on the ``JobRunner`` and return the
job; validation that needs no cluster change happens before queuing, so bad input
answers 422 at once.

With the operator (``Settings.operator``: ``Services.objects`` set) the tenant's own
changes (create, update, suspend, resume, delete) are checked the same way, then written to
its OdooTenant and returned as the object shows them (``TenantView``): no job, nothing in
this process's memory, so any API process answers for them. Rollbacks, backups, restores,
verifications and imports are written as request resources (``Services.requests``:
``OperationRequests``, after the same checks) and returned as the request shows them
(``RequestView``); the operator runs them. Domain verifications and fleet operations stay
jobs of this process.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable, Coroutine, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar

from flask import current_app
from pydantic import BaseModel, ValidationError

from saasodoo.adapters.auth import (
    AuthBackend,
    SessionCheck,
    TokenVerifier,
    User,
    end_sessions,
)
from saasodoo.api.config import ApiSettings
from saasodoo.api.jobs import FLEET, Job, JobRunner
from saasodoo.api.models import (
    CopyRefreshRequest,
    CopyRequest,
    FleetEnsureRequest,
    FleetUpgradeRequest,
    RestoreRequest,
    RollbackRequest,
    TenantCreate,
    TenantUpdate,
    VerifyRequest,
)
from saasodoo.api.ratelimit import RateLimit, Slots
from saasodoo.backups import Backups
from saasodoo.backups.results import BackupInfo
from saasodoo.core.domains import canonical_host
from saasodoo.core.spec import TenantSpec, check_tenant_id
from saasodoo.errors import Conflict, FieldError, InvalidInput, NotFound, SaasodooError
from saasodoo.fleet import Fleet, FleetSummary, FleetTarget
from saasodoo.odootenants import OdooTenants, TenantView
from saasodoo.operation_requests import OperationRequests, RequestView
from saasodoo.tenants import Tenant, Tenants, update_changes
from saasodoo.usage import tenant_usage

T = TypeVar("T")
M = TypeVar("M", bound=BaseModel)
OPERATORS_ONLY = "only operators may set chart overrides"


@dataclass
class Services:
    settings: ApiSettings
    tenants: Tenants
    auth: AuthBackend
    verifier: TokenVerifier
    sessions: SessionCheck
    jobs: JobRunner
    backups: Backups
    #: Domain verifications per user (``ApiSettings.domain_verify_limit``).
    verify_limit: RateLimit
    #: Backup downloads streaming at once in this process (``ApiSettings.download_slots``).
    downloads: Slots
    #: The OdooTenants when the operator applies tenant changes (``Settings.operator``);
    #: None: this process runs them as jobs.
    objects: OdooTenants | None = None
    #: The one-shot operations' request resources when the operator runs them (set with
    #: ``objects``); None: this process runs them as jobs.
    requests: OperationRequests | None = None

    @property
    def local_auth(self) -> bool:
        return self.settings.mode == "local"

    def user(self, access_token: str, *, live: bool = False) -> User:
        """The caller of a verified token; ``live`` (state-changing calls): its session is
        confirmed with the auth server too (``SessionCheck``)."""
        user = self.verifier.user(access_token, self.settings.admins)
        self.sessions.check(access_token, live=live)
        return user

    def sign_out(self, access_token: str | None, refresh_token: str | None = None) -> None:
        """End the user's sessions at the auth server (with ``refresh_token`` when the access
        token expired: ``adapters.auth.end_sessions``), then here at once. AuthUnavailable:
        nothing ended, try again."""
        used = end_sessions(self.auth, access_token, refresh_token)
        if used is not None:
            self.sessions.end(used)


def services() -> Services:
    svc: Services = current_app.extensions["saasodoo"]
    return svc


def run(coro: Coroutine[Any, Any, T]) -> T:
    """Run one of the library's coroutines from a request thread."""
    return asyncio.run(coro)


def parse(model: type[M], data: Any, what: str = "request") -> M:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise InvalidInput.from_validation(what, exc) from None


def tenant_json(tenant: Tenant) -> dict[str, Any]:
    return tenant.to_dict()


def not_found(tenant_id: str) -> NotFound:
    return NotFound(f"tenant '{tenant_id}' not found")


# -- reading -----------------------------------------------------------------------------


def visible_tenants(svc: Services, user: User) -> list[Tenant]:
    return svc.tenants.list_tenants(owner=None if user.is_admin else user.id)


def owned_tenant(svc: Services, user: User, tenant_id: str) -> Tenant:
    """The tenant if the caller may see it; otherwise the same 404 as a missing one."""
    check_tenant_id(tenant_id)
    try:
        tenant = run(svc.tenants.get(tenant_id))
    except NotFound:
        raise not_found(tenant_id) from None
    if not user.is_admin and tenant.owner != user.id:
        raise not_found(tenant_id)
    return tenant


def owned_view(objects: OdooTenants, user: User, tenant_id: str) -> TenantView:
    """The tenant's OdooTenant if the caller may see it (its ``spec.owner``); otherwise the
    same 404 as a missing one."""
    check_tenant_id(tenant_id)
    try:
        view = objects.get(tenant_id)
    except NotFound:
        raise not_found(tenant_id) from None
    if not user.is_admin and view.owner != user.id:
        raise not_found(tenant_id)
    return view


def visible_views(objects: OdooTenants, user: User) -> list[TenantView]:
    """The caller's OdooTenants (an operator's: all), by id."""
    return objects.list(owner=None if user.is_admin else user.id)


def history(svc: Services, user: User, tenant_id: str) -> list[dict[str, Any]]:
    """The release's helm history, oldest first. Operator: as its OdooTenant's status
    records it (``status.releases``: the newest revisions, read by the operator when the
    head changes; empty before its first reconcile)."""
    if svc.objects is not None:
        view = owned_view(svc.objects, user, tenant_id)
        return [
            {"revision": r.get("revision"), "status": r.get("status", ""),
             "updated": r.get("updated", ""), "description": r.get("description", ""),
             "chart": r.get("chart", ""), "app_version": r.get("appVersion", "")}
            for r in reversed(view.releases)
        ]  # fmt: skip
    owned_tenant(svc, user, tenant_id)
    revisions = run(svc.tenants.history(tenant_id))
    return [
        {
            "revision": r.revision,
            "status": r.status,
            "updated": r.updated.isoformat(),
            "description": r.description,
            "chart": r.chart,
            "app_version": r.app_version,
        }
        for r in revisions
    ]


class NotAvailable(SaasodooError):
    """What this API cannot show with the operator: its ServiceAccount reads nothing but
    the platform's resources."""

    http_status = 501


def usage(svc: Services, user: User, tenant_id: str) -> dict[str, Any]:
    """CPU and memory of the tenant from the metrics API (no pods measured yet: zeros).
    Operator: NotAvailable (501) for the caller's tenant: the pods' metrics are not the
    platform's resources."""
    if svc.objects is not None:
        owned_view(svc.objects, user, tenant_id)
        raise NotAvailable(
            "usage is not available through the API with the operator: its ServiceAccount "
            f"reads no pod metrics; an SRE sees them with kubectl top pods -n tenant-{tenant_id}"
        )
    owned_tenant(svc, user, tenant_id)
    (found,) = tenant_usage(svc.tenants.ctx.kube, tenant_id)
    return found.to_dict()


# -- changing (queued) ------------------------------------------------------------------------


def _check_overrides(user: User, overrides: dict[str, Any] | None) -> None:
    if overrides is not None and not user.is_admin:
        raise InvalidInput("invalid request", [FieldError("overrides", OPERATORS_ONLY)])


def start_create(svc: Services, user: User, body: TenantCreate) -> Job | TenantView:
    """The create job, or (operator) the new OdooTenant owned by the caller."""
    _check_overrides(user, body.overrides)
    # Unknown plan, bad overrides, an existing tenant, a taken host: 422/409 now, nothing
    # queued or written (the lifecycle's own checks, everything up to its first write).
    asked = TenantSpec.parse(body.model_dump(exclude_none=True))
    if svc.objects is not None:
        return run(svc.objects.create(asked, owner=user.id))
    spec, _ = run(svc.tenants.check_create(asked))
    tenants = svc.tenants
    return svc.jobs.submit(
        "create",
        user.id,
        spec.id,
        lambda: tenants.create(spec, owner=user.id, wait=True),
        tenant_json,
    )


def start_copy(svc: Services, user: User, tenant_id: str, body: CopyRequest) -> TenantView:
    """A staging copy of the caller's tenant (the OdooTenant ``body.to`` with
    ``spec.copyOf``, owned as the source is; ``OdooTenants.copy``'s refusals before anything
    is written). Only the operator makes copies: 409 without it; 404 for another's tenant."""
    if svc.objects is None:
        raise Conflict("staging copies are made by the operator (SAASODOO_OPERATOR=1)")
    owned_view(svc.objects, user, tenant_id)
    return run(svc.objects.copy(tenant_id, body.to, backup=body.backup, plan=body.plan,
                                expires_in=body.expires_in))  # fmt: skip


def start_refresh(
    svc: Services, user: User, tenant_id: str, body: CopyRefreshRequest
) -> RequestView:
    """An ``OdooTenantRefresh`` of the caller's staging copy (``OperationRequests.check``:
    422 naming ``tenant`` for a tenant that is no copy). The operator only: 409 without it;
    404 for another's tenant."""
    if svc.requests is None:
        raise Conflict("staging copies are refreshed by the operator (SAASODOO_OPERATOR=1)")
    return ask(svc, user, "refresh", tenant_id, backup=body.backup)


def start_update(svc: Services, user: User, tenant_id: str, body: TenantUpdate) -> Job | TenantView:
    changes = update_changes(**body.model_dump(exclude_none=True))  # 422 before ownership
    _check_overrides(user, body.overrides)
    if svc.objects is not None:
        owned_view(svc.objects, user, tenant_id)
        return run(svc.objects.update(tenant_id, **changes))  # plan_update's checks first
    owned_tenant(svc, user, tenant_id)
    # Another Odoo series, an unknown plan, bad overrides, a taken host: refused now, as the
    # lifecycle refuses them (the same checks).
    run(svc.tenants.plan_update(tenant_id, **changes))
    tenants = svc.tenants
    return svc.jobs.submit(
        "update",
        user.id,
        tenant_id,
        lambda: tenants.update(tenant_id, wait=True, **changes),
        tenant_json,
    )


def start_suspend(svc: Services, user: User, tenant_id: str, suspend: bool) -> Job | TenantView:
    if svc.objects is not None:
        owned_view(svc.objects, user, tenant_id)
        return svc.objects.set_suspended(tenant_id, suspend)
    owned_tenant(svc, user, tenant_id)
    tenants = svc.tenants
    if suspend:
        return svc.jobs.submit(
            "suspend", user.id, tenant_id, lambda: tenants.suspend(tenant_id), tenant_json
        )
    return svc.jobs.submit(
        "resume", user.id, tenant_id, lambda: tenants.resume(tenant_id), tenant_json
    )


def start_rollback(
    svc: Services, user: User, tenant_id: str, body: RollbackRequest
) -> Job | RequestView:
    """The rollback job, or (operator) an OdooTenantRollback after the same checks."""
    if svc.requests is not None:
        return ask(svc, user, "rollback", tenant_id, revision=body.revision)
    owned_tenant(svc, user, tenant_id)
    tenants = svc.tenants
    # No such revision (404), none before (409), another Odoo series' (422): refused now.
    run(tenants.check_rollback(tenant_id, body.revision))
    return svc.jobs.submit(
        "rollback",
        user.id,
        tenant_id,
        lambda: tenants.rollback(tenant_id, body.revision),
        tenant_json,
    )


async def _delete(
    tenants: Tenants, tenant_id: str, keep_volumes: bool, final_backup: bool
) -> dict[str, Any]:
    deleted = await tenants.delete(
        tenant_id, keep_volumes=keep_volumes, final_backup=final_backup, wait=True
    )
    return deleted.to_dict()


def start_delete(
    svc: Services, user: User, tenant_id: str, keep_volumes: bool, final_backup: bool = True
) -> Job | TenantView:
    """Delete the tenant in a job: its result names where the final backup is kept
    (``Deleted.to_dict``); the job fails with 409 when no final backup can be kept or
    proven readable (nothing deleted) unless ``final_backup`` is False.

    Operator: the OdooTenant's deletion is asked for (its finalizer takes the final backup
    unless ``final_backup`` is False, or holds the deletion with the Ready condition's
    reason ``FinalBackupFailed``); ``keep_volumes`` is refused (422) there for now."""
    if svc.objects is not None:
        if keep_volumes:
            why = "not available through the operator yet"
            raise InvalidInput("invalid query", [FieldError("keep_volumes", why)])
        owned_view(svc.objects, user, tenant_id)
        return svc.objects.delete(tenant_id, final_backup=final_backup)
    owned_tenant(svc, user, tenant_id)
    tenants = svc.tenants
    return svc.jobs.submit(
        "delete", user.id, tenant_id,
        lambda: _delete(tenants, tenant_id, keep_volumes, final_backup),
    )  # fmt: skip


# -- custom domains ---------------------------------------------------------------------------


def domain_states(svc: Services, user: User, tenant_id: str) -> list[dict[str, Any]]:
    """Each custom domain's state (``DomainOut``). Operator: as the OdooTenant's status
    shows it (``status.domains``); a domain the operator has not looked at yet is
    ``unclaimed`` with no record."""
    if svc.objects is not None:
        view = owned_view(svc.objects, user, tenant_id)
        return domains_of(view)
    tenant = owned_tenant(svc, user, tenant_id)
    return [s.to_dict() for s in svc.tenants.ctx.domains.states(tenant.spec)]


def domains_of(view: TenantView) -> list[dict[str, Any]]:
    """``status.domains`` of an OdooTenant as ``DomainOut``s, in the spec's order."""
    shown = {str(d.get("host")): d for d in view.domains}
    out = []
    for host in view.custom_domains:
        d = shown.get(host) or {"state": "unclaimed", "message": "not looked at yet"}
        record = None
        if d.get("txtName"):
            record = {"txt_name": d["txtName"], "txt_value": d.get("txtValue", ""),
                      "cname_target": d.get("cnameTarget", "")}  # fmt: skip
        out.append({"host": host, "state": d.get("state", "unclaimed"), "record": record,
                    "message": d.get("message"), "checked_at": d.get("checkedAt"),
                    "next_check_at": d.get("nextCheckAt")})  # fmt: skip
    return out


def start_verify_domain(svc: Services, user: User, tenant_id: str, domain: str) -> Job | TenantView:
    """Queue the DNS check of ``domain`` (and, once proven, its routing: helm upgrade) as a
    job: no DNS look-up or cluster write runs in the request. Refused at once: a bad host
    (422), one the tenant does not have (404), more than ``ApiSettings.domain_verify_limit``
    verifications of the user per window (429 with Retry-After). A missing record fails the
    job with 409 naming the record to create.

    Operator: no job. The same refusals, then a reconcile of the OdooTenant is asked for
    (the ``saasodoo.dev/reconcile-requested-at`` annotation): the operator looks for the
    proof of every unproven domain at once and routes the proven ones; the tenant is
    returned (202) and ``GET .../domains`` shows each domain's state and last check."""
    if svc.objects is not None:
        view = owned_view(svc.objects, user, tenant_id)
        host = _host(domain)
        if host not in view.custom_domains:
            raise NotFound(f"tenant '{tenant_id}' has no custom domain '{host}'")
        svc.verify_limit.hit(user.id)
        svc.objects.request_reconcile(tenant_id, datetime.now(UTC).isoformat())
        return svc.objects.get(tenant_id)
    tenant = owned_tenant(svc, user, tenant_id)
    host = _host(domain)
    if host not in tenant.spec.custom_domains:
        raise NotFound(f"tenant '{tenant_id}' has no custom domain '{host}'")
    svc.verify_limit.hit(user.id)
    tenants = svc.tenants
    return svc.jobs.submit(
        "verify-domain",
        user.id,
        tenant_id,
        lambda: tenants.verify_domain(tenant_id, host, wait=True),
        tenant_json,
    )


def _host(domain: str) -> str:
    try:
        return canonical_host(domain)
    except ValueError as exc:
        raise InvalidInput("invalid request", [FieldError("domain", str(exc))]) from None


# -- backups --------------------------------------------------------------------------------------


async def _blocking(fn: Callable[[], T]) -> T:
    """A synchronous library call as a job's work (it runs in the job runner's thread)."""
    return fn()


def list_backups(svc: Services, user: User, tenant_id: str) -> list[dict[str, Any]]:
    """The tenant's complete backups, oldest first. With the operator: as it last listed
    them into the OdooTenant's ``status.backups`` (after each backup it runs or sees; the
    API's account reads no tenant storage), ownership checked on the OdooTenant. Without:
    read from the storage here (422 when it is not readable from here, e.g. a PVC without
    ``SAASODOO_API_BACKUP_PVC_ROOT``)."""
    if svc.objects is not None:
        owned_view(svc.objects, user, tenant_id)
        status = svc.objects.read(tenant_id).get("status") or {}
        listed = [BackupInfo.from_status(tenant_id, e) for e in status.get("backups") or []]
        return [b.to_dict() for b in sorted(listed, key=lambda b: (b.timestamp, b.name))]
    owned_tenant(svc, user, tenant_id)
    return [b.to_dict() for b in svc.backups.list_backups(tenant_id)]


#: A backup's name in storage: one zip, no path.
BACKUP_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*\.zip")


def download_backup(
    svc: Services, user: User, tenant_id: str, name: str
) -> tuple[int, Iterator[bytes]]:
    """A backup of the caller's tenant: its size in bytes and its content in chunks. With the
    operator: one the operator listed into the OdooTenant's status, read from where it says
    (S3, with the platform's key pair: the API's account reads no tenant Secret; a backup
    volume through an ``OdooTenantDownload``: the operator's reader pod serves it once).
    Without: read from the storage here. 404 for another's tenant or an unknown backup, 422
    for a name that is no zip name."""
    if not BACKUP_NAME.fullmatch(name):
        raise InvalidInput(
            "invalid backup name",
            [FieldError("name", "one zip name: letters, digits, '.', '_', '-', ending in .zip")],
        )
    if svc.objects is not None:
        owned_view(svc.objects, user, tenant_id)
        status = svc.objects.read(tenant_id).get("status") or {}
        if name not in [b.get("name") for b in status.get("backups") or []]:
            raise NotFound(f"tenant '{tenant_id}' has no backup {name}")
        where = status.get("backupStorage")
        if where is None and svc.requests is not None:  # listed before it was recorded
            where = (svc.requests.platform_storage(tenant_id) or ({"type": "pvc"}, ""))[0]
        where = where or {"type": "pvc"}
        requests = svc.requests
        if where.get("type") == "pvc" and requests is not None:
            # A volume no platform process mounts: the operator's reader pod serves it once
            # (the slot taken first: over the limit, no reader is started for nothing).
            return svc.downloads.open(lambda: requests.served_backup(tenant_id, name))
        size, content = svc.backups.download(tenant_id, name, where)
    else:
        owned_tenant(svc, user, tenant_id)
        size, content = svc.backups.download(tenant_id, name)
    return size, svc.downloads.hold(content)


def start_backup(svc: Services, user: User, tenant_id: str) -> Job | RequestView:
    if svc.requests is not None:
        return ask(svc, user, "backup", tenant_id)
    owned_tenant(svc, user, tenant_id)
    backups, timeout = svc.backups, svc.settings.backup_timeout
    backups.cronjob(tenant_id)  # backups disabled: 404 now rather than a failed job
    return svc.jobs.submit(
        "backup",
        user.id,
        tenant_id,
        lambda: _blocking(lambda: backups.create(tenant_id, timeout=timeout).to_dict()),
    )


def start_restore(
    svc: Services, user: User, tenant_id: str, body: RestoreRequest
) -> Job | RequestView:
    if svc.requests is not None:
        return ask(svc, user, "restore", tenant_id, backup=body.backup,
                   drop_previous=body.drop_previous)  # fmt: skip
    owned_tenant(svc, user, tenant_id)
    svc.backups.check_restore(tenant_id, body.backup)  # 404 now rather than a failed job
    backups, timeout = svc.backups, svc.settings.backup_timeout
    return svc.jobs.submit(
        "restore",
        user.id,
        tenant_id,
        lambda: _blocking(
            lambda: backups.restore(
                tenant_id, body.backup, drop_previous=body.drop_previous, timeout=timeout
            ).to_dict()
        ),
    )


def start_verify(
    svc: Services, user: User, tenant_id: str, body: VerifyRequest
) -> Job | RequestView:
    if svc.requests is not None:
        return ask(svc, user, "verify", tenant_id, backup=body.backup)
    owned_tenant(svc, user, tenant_id)
    svc.backups.check_restore(
        tenant_id, body.backup, series=False
    )  # 404 now rather than a failed job
    backups, timeout = svc.backups, svc.settings.backup_timeout
    return svc.jobs.submit(
        "verify",
        user.id,
        tenant_id,
        lambda: _blocking(lambda: _verify(backups, tenant_id, body.backup, timeout)),
    )


def _verify(
    backups: Backups, tenant_id: str, backup: str | None, timeout: float | None
) -> dict[str, Any]:
    result = backups.verify(tenant_id, backup, timeout=timeout)
    if not result.ok:
        detail = (result.job.result or {}).get("error") or result.job.reason
        raise SaasodooError(
            f"verification of '{tenant_id}' failed (job {result.job.name}): {detail}"
        )
    return result.to_dict()


# -- request resources (the operator) ---------------------------------------------------------


def ask(svc: Services, user: User, operation: str, tenant_id: str, **spec: Any) -> RequestView:
    """A request of ``operation`` for the caller's tenant (404 otherwise), written after the
    checks the job would make before its first change (``OperationRequests.check``)."""
    assert svc.requests is not None and svc.objects is not None
    owned_view(svc.objects, user, tenant_id)
    return run(svc.requests.create(operation, tenant_id, **spec))


def operation_not_found(name: str) -> NotFound:
    return NotFound(f"operation '{name[:80]}' not found")


def owned_request(svc: Services, user: User, name: str) -> RequestView:
    """The request ``name`` if its tenant is the caller's (operators: any); otherwise, and
    without the operator, the same 404 as a missing one."""
    if svc.requests is None or svc.objects is None:
        raise operation_not_found(name)
    try:
        view = svc.requests.get(name)
        owned_view(svc.objects, user, view.tenant)
    except NotFound:
        raise operation_not_found(name) from None
    return view


def tenant_requests(svc: Services, user: User, tenant_id: str) -> list[RequestView]:
    """The caller's tenant's requests, oldest first (404 for another's tenant; without the
    operator there are none: its operations are jobs)."""
    if svc.requests is None or svc.objects is None:
        owned_tenant(svc, user, tenant_id)
        return []
    owned_view(svc.objects, user, tenant_id)
    return svc.requests.list(tenant_id)


# -- the fleet (operators only: the admin blueprint checks) -----------------------------------


def _fleet_json(summary: FleetSummary) -> dict[str, Any]:
    return summary.to_dict()


def fleet_views(svc: Services, selector: str | None = None) -> list[TenantView]:
    """Operator: the OdooTenants (``selector``: a label selector over them; malformed:
    InvalidInput naming ``selector``)."""
    assert svc.objects is not None
    try:
        items = svc.objects.resources.list(selector).get("items") or []
    except InvalidInput as exc:
        raise InvalidInput("invalid request", [FieldError("selector", exc.message)]) from None
    return sorted((TenantView.of(o) for o in items), key=lambda v: v.id)


def request_fleet_ensure(svc: Services, body: FleetEnsureRequest) -> dict[str, Any]:
    """Operator: a reconcile asked of every (selected) OdooTenant (the annotation
    ``saasodoo.dev/reconcile-requested-at``, with ``force`` also
    ``saasodoo.dev/force-requested-at``), nothing followed here; what was asked."""
    assert svc.objects is not None
    token = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    asked = []
    for view in fleet_views(svc, body.selector):
        try:
            svc.objects.request_reconcile(view.id, token, force=body.force)
        except NotFound:  # deleted meanwhile
            continue
        asked.append(view.id)
    return {"requested_at": token, "force": body.force, "tenants": asked}


#: Why the API runs no fleet upgrade with the operator.
FLEET_UPGRADE_CLI = (
    "with the operator, a fleet upgrade is spec changes in waves (canaries first, stopping at "
    "the failure threshold) followed until Ready, which no API request can wait for: run "
    "`saasodoo fleet upgrade` (it writes the OdooTenants' specs and follows them), or change "
    "tenants one by one with PATCH /api/tenants/<id>"
)


def start_fleet_ensure(svc: Services, user: User, body: FleetEnsureRequest) -> Job:
    fleet = Fleet(svc.tenants.ctx)
    fleet.check_selector(body.selector)
    return svc.jobs.submit(
        "fleet-ensure",
        user.id,
        None,
        lambda: fleet.ensure_all(selector=body.selector, force=body.force),
        _fleet_json,
        key=FLEET,
    )


def start_fleet_upgrade(svc: Services, user: User, body: FleetUpgradeRequest) -> Job:
    """The fleet upgrade job. Operator: Conflict (409) saying to use the CLI
    (``FLEET_UPGRADE_CLI``)."""
    if body.odoo_version is None and body.image_tag is None:
        why = "give odoo_version or image_tag"
        raise InvalidInput(
            "nothing to upgrade", [FieldError("odoo_version", why), FieldError("image_tag", why)]
        )
    if svc.objects is not None:
        raise Conflict(FLEET_UPGRADE_CLI)
    fleet = Fleet(svc.tenants.ctx)
    fleet.check_selector(body.selector)
    overrides = {"odoo": {"image": {"tag": body.image_tag}}} if body.image_tag else None
    target = FleetTarget(odoo_version=body.odoo_version, overrides=overrides)
    fleet.check_upgrade(target, selector=body.selector)  # another Odoo series for any: 422 now
    return svc.jobs.submit(
        "fleet-upgrade",
        user.id,
        None,
        lambda: fleet.upgrade(
            target,
            selector=body.selector,
            canaries=body.canaries,
            max_failures=body.max_failures,
        ),
        _fleet_json,
        key=FLEET,
    )


def job_for(svc: Services, user: User, job_id: str) -> Job:
    job = svc.jobs.get(job_id)
    if job is None or not (user.is_admin or job.owner == user.id):
        raise NotFound(f"job '{job_id[:64]}' not found")
    return job
