"""What the API and the web UI share: the services of the app and the tenant operations.

Every operation takes the calling ``User`` and enforces ownership the same way: a tenant
that is not the caller's (unless the caller is an operator) is "not found", exactly like
one that does not exist.

The API never runs helm on a tenant and keeps nothing in its memory: the operator does the
work. A tenant's own changes (create, update, suspend, resume, delete, a domain
verification) are checked with the lifecycle's own checks (a refusal: 422 naming the field,
409, nothing written), then written to its OdooTenant (``Services.objects``) and returned as
the object shows them (``TenantView``). Rollbacks, backups, restores, verifications, imports
and refreshes are written as request resources (``Services.requests``:
``OperationRequests``, after the same checks) and returned as the request shows them
(``RequestView``). So any number of API processes answer for any operation, and a process
that restarts loses nothing. Whether an operator leads to act on them is reported by
``GET /api/health`` (``LeaderCheck``), never waited for.
"""

from __future__ import annotations

import asyncio
import logging
import re
import threading
import time
from collections.abc import Callable, Coroutine, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, NoReturn, TypeVar

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
from saasodoo.core.leader import Leader
from saasodoo.core.spec import TenantSpec, check_tenant_id
from saasodoo.errors import Conflict, FieldError, InvalidInput, NotFound, SaasodooError
from saasodoo.odootenants import OdooTenants, TenantView
from saasodoo.operation_requests import OperationRequests, RequestView
from saasodoo.tenants import Tenants, update_changes

log = logging.getLogger(__name__)

T = TypeVar("T")
M = TypeVar("M", bound=BaseModel)
OPERATORS_ONLY = "only operators may set chart overrides"
#: What ``LeaderCheck`` says before its first look.
NOT_CHECKED = Leader(False, None, "not known yet: the Lease is being read")


class LeaderCheck:
    """Whether an operator leads, for ``GET /api/health`` and the web UI's banner, without
    making any request wait for the cluster: ``state`` answers the last look at once and,
    when that is older than ``ttl`` seconds, starts the next one in a thread of its own (one
    at a time). ``look`` is ``OdooTenants.leader`` (it turns the cluster's errors into its
    message)."""

    def __init__(self, look: Callable[[], Leader], ttl: float = 10.0) -> None:
        self._look = look
        self._ttl = ttl
        self._lock = threading.Lock()
        self._last = NOT_CHECKED
        self._at: float | None = None
        self._looking = False

    def state(self) -> Leader:
        with self._lock:
            stale = self._at is None or time.monotonic() - self._at > self._ttl
            if stale and not self._looking:
                self._looking = True
                threading.Thread(target=self._refresh, name="saasodoo-leader",
                                 daemon=True).start()  # fmt: skip
            return self._last

    def _refresh(self) -> None:
        try:
            found = self._look()
        except Exception as exc:  # noqa: BLE001 - a report: the error is its message
            log.warning("whether an operator leads is not known: %s", exc)
            found = Leader(False, None, f"not known: {exc}")
        with self._lock:
            self._last, self._at, self._looking = found, time.monotonic(), False


@dataclass
class Services:
    settings: ApiSettings
    tenants: Tenants
    auth: AuthBackend
    verifier: TokenVerifier
    sessions: SessionCheck
    backups: Backups
    #: Domain verifications per user (``ApiSettings.domain_verify_limit``).
    verify_limit: RateLimit
    #: Backup downloads streaming at once in this process (``ApiSettings.download_slots``).
    downloads: Slots
    #: The OdooTenants: what the tenant changes are written to, what is read back.
    objects: OdooTenants
    #: The one-shot operations' request resources (the operator runs them).
    requests: OperationRequests
    #: Whether an operator leads (``GET /api/health``); default: ``objects.leader``.
    leader: LeaderCheck = field(init=False)

    def __post_init__(self) -> None:
        self.leader = LeaderCheck(lambda: self.objects.leader())

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


def not_found(tenant_id: str) -> NotFound:
    return NotFound(f"tenant '{tenant_id}' not found")


# -- reading -----------------------------------------------------------------------------


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


def visible_views(svc: Services, user: User) -> list[TenantView]:
    """The caller's OdooTenants (an operator's: all), by id: from this process's watch cache
    (``OdooTenants.watch``, started by the first list; ``ApiSettings.watch_cache``) once it
    has listed, else one list request."""
    if svc.settings.watch_cache:
        svc.objects.watch()
    return svc.objects.list(owner=None if user.is_admin else user.id)


def history(svc: Services, user: User, tenant_id: str) -> list[dict[str, Any]]:
    """The release's helm history, oldest first, as the OdooTenant's status records it
    (``status.releases``: the newest revisions, read by the operator when the head changes;
    empty before its first reconcile)."""
    view = owned_view(svc.objects, user, tenant_id)
    return [
        {"revision": r.get("revision"), "status": r.get("status", ""),
         "updated": r.get("updated", ""), "description": r.get("description", ""),
         "chart": r.get("chart", ""), "app_version": r.get("appVersion", ""),
         "odoo_series": r.get("odooSeries", ""), "odoo_image": r.get("odooImage", "")}
        for r in reversed(view.releases)
    ]  # fmt: skip


class NotAvailable(SaasodooError):
    """What this API cannot show: its ServiceAccount reads nothing but the platform's
    resources."""

    http_status = 501


def usage(svc: Services, user: User, tenant_id: str) -> NoReturn:
    """NotAvailable (501) for the caller's tenant (404 for another's): the pods' metrics
    are not the platform's resources."""
    owned_view(svc.objects, user, tenant_id)
    raise NotAvailable(
        "usage is not available through the API: its ServiceAccount reads no pod metrics; "
        f"an SRE sees them with kubectl top pods -n tenant-{tenant_id}"
    )


# -- changing: written to the OdooTenant ------------------------------------------------------


def _check_overrides(user: User, overrides: dict[str, Any] | None) -> None:
    if overrides is not None and not user.is_admin:
        raise InvalidInput("invalid request", [FieldError("overrides", OPERATORS_ONLY)])


def start_create(svc: Services, user: User, body: TenantCreate) -> TenantView:
    """The new OdooTenant owned by the caller. Unknown plan, bad overrides, an existing
    tenant: 422/409 now, nothing written (``OdooTenants.create``'s checks)."""
    _check_overrides(user, body.overrides)
    asked = TenantSpec.parse(body.model_dump(exclude_none=True))
    return run(svc.objects.create(asked, owner=user.id))


def start_copy(svc: Services, user: User, tenant_id: str, body: CopyRequest) -> TenantView:
    """A staging copy of the caller's tenant (the OdooTenant ``body.to`` with
    ``spec.copyOf``, owned as the source is; ``OdooTenants.copy``'s refusals before anything
    is written); 404 for another's tenant."""
    owned_view(svc.objects, user, tenant_id)
    return run(svc.objects.copy(tenant_id, body.to, backup=body.backup, plan=body.plan,
                                expires_in=body.expires_in))  # fmt: skip


def start_refresh(
    svc: Services, user: User, tenant_id: str, body: CopyRefreshRequest
) -> RequestView:
    """An ``OdooTenantRefresh`` of the caller's staging copy (``OperationRequests.check``:
    422 naming ``tenant`` for a tenant that is no copy); 404 for another's tenant."""
    return ask(svc, user, "refresh", tenant_id, backup=body.backup)


def start_update(svc: Services, user: User, tenant_id: str, body: TenantUpdate) -> TenantView:
    changes = update_changes(**body.model_dump(exclude_none=True))  # 422 before ownership
    _check_overrides(user, body.overrides)
    owned_view(svc.objects, user, tenant_id)
    return run(svc.objects.update(tenant_id, **changes))  # plan_update's checks first


def start_suspend(svc: Services, user: User, tenant_id: str, suspend: bool) -> TenantView:
    owned_view(svc.objects, user, tenant_id)
    return svc.objects.set_suspended(tenant_id, suspend)


def start_rollback(svc: Services, user: User, tenant_id: str, body: RollbackRequest) -> RequestView:
    """An OdooTenantRollback, after the checks: no such revision (404), none before (409),
    another Odoo series' (422)."""
    return ask(svc, user, "rollback", tenant_id, revision=body.revision)


def start_delete(
    svc: Services, user: User, tenant_id: str, keep_volumes: bool, final_backup: bool = True
) -> TenantView:
    """The OdooTenant's deletion is asked for: its finalizer takes the final backup unless
    ``final_backup`` is False, or holds the deletion with the Ready condition's reason
    ``FinalBackupFailed``. ``keep_volumes`` is refused (422) for now."""
    if keep_volumes:
        why = "not available through the operator yet"
        raise InvalidInput("invalid query", [FieldError("keep_volumes", why)])
    owned_view(svc.objects, user, tenant_id)
    return svc.objects.delete(tenant_id, final_backup=final_backup)


# -- custom domains ---------------------------------------------------------------------------


def domain_states(svc: Services, user: User, tenant_id: str) -> list[dict[str, Any]]:
    """Each custom domain's state (``DomainOut``) as the OdooTenant's status shows it
    (``status.domains``); a domain the operator has not looked at yet is ``unclaimed``
    with no record."""
    return domains_of(owned_view(svc.objects, user, tenant_id))


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


def start_verify_domain(svc: Services, user: User, tenant_id: str, domain: str) -> TenantView:
    """Refused at once: a bad host (422), one the tenant does not have (404), more than
    ``ApiSettings.domain_verify_limit`` verifications of the user per window (429 with
    Retry-After). Then a reconcile of the OdooTenant is asked for (the
    ``saasodoo.dev/reconcile-requested-at`` annotation): the operator looks for the proof of
    every unproven domain at once and routes the proven ones; the tenant is returned (202)
    and ``GET .../domains`` shows each domain's state and last check."""
    view = owned_view(svc.objects, user, tenant_id)
    host = _host(domain)
    if host not in view.custom_domains:
        raise NotFound(f"tenant '{tenant_id}' has no custom domain '{host}'")
    svc.verify_limit.hit(user.id)
    svc.objects.request_reconcile(tenant_id, datetime.now(UTC).isoformat())
    return svc.objects.get(tenant_id)


def _host(domain: str) -> str:
    try:
        return canonical_host(domain)
    except ValueError as exc:
        raise InvalidInput("invalid request", [FieldError("domain", str(exc))]) from None


# -- backups --------------------------------------------------------------------------------------


def list_backups(svc: Services, user: User, tenant_id: str) -> list[dict[str, Any]]:
    """The tenant's complete backups, oldest first, as the operator last listed them into
    the OdooTenant's ``status.backups`` (after each backup it runs or sees; the API's
    account reads no tenant storage), ownership checked on the OdooTenant."""
    owned_view(svc.objects, user, tenant_id)
    status = svc.objects.read(tenant_id).get("status") or {}
    listed = [BackupInfo.from_status(tenant_id, e) for e in status.get("backups") or []]
    return [b.to_dict() for b in sorted(listed, key=lambda b: (b.timestamp, b.name))]


#: A backup's name in storage: one zip, no path.
BACKUP_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*\.zip")


def download_backup(
    svc: Services, user: User, tenant_id: str, name: str
) -> tuple[int, Iterator[bytes]]:
    """A backup of the caller's tenant: its size in bytes and its content in chunks. One the
    operator listed into the OdooTenant's status, read from where it says (S3, with the
    platform's key pair: the API's account reads no tenant Secret; a backup volume through
    an ``OdooTenantDownload``: the operator's reader pod serves it once). 404 for another's
    tenant or an unknown backup, 422 for a name that is no zip name."""
    if not BACKUP_NAME.fullmatch(name):
        raise InvalidInput(
            "invalid backup name",
            [FieldError("name", "one zip name: letters, digits, '.', '_', '-', ending in .zip")],
        )
    owned_view(svc.objects, user, tenant_id)
    status = svc.objects.read(tenant_id).get("status") or {}
    if name not in [b.get("name") for b in status.get("backups") or []]:
        raise NotFound(f"tenant '{tenant_id}' has no backup {name}")
    where = status.get("backupStorage")
    if where is None:  # listed before it was recorded
        where = (svc.requests.platform_storage(tenant_id) or ({"type": "pvc"}, ""))[0]
    requests = svc.requests
    if where.get("type") == "pvc":
        # A volume no platform process mounts: the operator's reader pod serves it once
        # (the slot taken first: over the limit, no reader is started for nothing).
        return svc.downloads.open(lambda: requests.served_backup(tenant_id, name))
    size, content = svc.backups.download(tenant_id, name, where)
    return size, svc.downloads.hold(content)


def start_backup(svc: Services, user: User, tenant_id: str) -> RequestView:
    return ask(svc, user, "backup", tenant_id)


def start_restore(svc: Services, user: User, tenant_id: str, body: RestoreRequest) -> RequestView:
    return ask(svc, user, "restore", tenant_id, backup=body.backup,
               drop_previous=body.drop_previous)  # fmt: skip


def start_verify(svc: Services, user: User, tenant_id: str, body: VerifyRequest) -> RequestView:
    return ask(svc, user, "verify", tenant_id, backup=body.backup)


# -- request resources ------------------------------------------------------------------------


def ask(svc: Services, user: User, operation: str, tenant_id: str, **spec: Any) -> RequestView:
    """A request of ``operation`` for the caller's tenant (404 otherwise), written after the
    checks the operator would make before its first change (``OperationRequests.check``)."""
    owned_view(svc.objects, user, tenant_id)
    return run(svc.requests.create(operation, tenant_id, **spec))


def operation_not_found(name: str) -> NotFound:
    return NotFound(f"operation '{name[:80]}' not found")


def owned_request(svc: Services, user: User, name: str) -> RequestView:
    """The request ``name`` if its tenant is the caller's (operators: any); otherwise the
    same 404 as a missing one."""
    try:
        view = svc.requests.get(name)
        owned_view(svc.objects, user, view.tenant)
    except NotFound:
        raise operation_not_found(name) from None
    return view


def tenant_requests(svc: Services, user: User, tenant_id: str) -> list[RequestView]:
    """The caller's tenant's requests, oldest first (404 for another's tenant)."""
    owned_view(svc.objects, user, tenant_id)
    return svc.requests.list(tenant_id)


# -- the fleet (operators only: the admin blueprint checks) -----------------------------------


def fleet_views(svc: Services, selector: str | None = None) -> list[TenantView]:
    """The OdooTenants (``selector``: a label selector over them; malformed: InvalidInput
    naming ``selector``)."""
    try:
        items = svc.objects.resources.list(selector).get("items") or []
    except InvalidInput as exc:
        raise InvalidInput("invalid request", [FieldError("selector", exc.message)]) from None
    return sorted((TenantView.of(o) for o in items), key=lambda v: v.id)


def request_fleet_ensure(svc: Services, body: FleetEnsureRequest) -> dict[str, Any]:
    """A reconcile asked of every (selected) OdooTenant (the annotation
    ``saasodoo.dev/reconcile-requested-at``, with ``force`` also
    ``saasodoo.dev/force-requested-at``), nothing followed here; what was asked."""
    token = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    asked = []
    for view in fleet_views(svc, body.selector):
        try:
            svc.objects.request_reconcile(view.id, token, force=body.force)
        except NotFound:  # deleted meanwhile
            continue
        asked.append(view.id)
    return {"requested_at": token, "force": body.force, "tenants": asked}


#: Why the API runs no fleet upgrade.
FLEET_UPGRADE_CLI = (
    "a fleet upgrade is spec changes in waves (canaries first, stopping at the failure "
    "threshold) followed until Ready, which no API request can wait for: run "
    "`saasodoo fleet upgrade` (it writes the OdooTenants' specs and follows them), or change "
    "tenants one by one with PATCH /api/tenants/<id>"
)


def refuse_fleet_upgrade(body: FleetUpgradeRequest) -> NoReturn:
    """422 when nothing is asked, else Conflict (409) saying to use the CLI
    (``FLEET_UPGRADE_CLI``)."""
    if body.odoo_version is None and body.image_tag is None:
        why = "give odoo_version or image_tag"
        raise InvalidInput(
            "nothing to upgrade", [FieldError("odoo_version", why), FieldError("image_tag", why)]
        )
    raise Conflict(FLEET_UPGRADE_CLI)
