"""Tenants as OdooTenant objects: what the CLI, the API and the Makefile write when the
operator runs (``Settings.operator``), and what they read back.

Writing a tenant here never runs helm: the change is checked first with the lifecycle's own
checks (``Tenants.check_create``, ``Tenants.plan_update``: a refusal names the field and
nothing is written), then written to the OdooTenant's ``.spec``; the operator applies it and
reports on ``.status``. ``wait`` follows the object until the operator has observed the new
generation and says Ready (kstatus ``Current``), or says it cannot (``Stalled``: raised as
``SaasodooError`` with the operator's message), calling back with each new message.
"""

from __future__ import annotations

import builtins
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cached_property
from typing import TYPE_CHECKING, Any

from saasodoo.adapters.kube import Kube, translate
from saasodoo.adapters.resources import TenantResources, merge_patch
from saasodoo.core.conditions import get_condition, kstatus
from saasodoo.core.copies import check_copy_ids, copy_labels, copy_spec, parse_expires_in
from saasodoo.core.crd import (
    FORCE_REQUESTED_AT,
    GROUP,
    OWNER_LABEL,
    PLURAL,
    RECONCILE_REQUESTED_AT,
    VERSION,
    from_tenant_spec,
    owner_label,
    owner_labels,
    row_object,
    to_tenant_spec,
)
from saasodoo.core.leader import Leader, leader_of
from saasodoo.core.spec import TenantSpec, check_new_tenant_id, check_tenant_id
from saasodoo.errors import Conflict, NotFound, SaasodooError
from saasodoo.settings import Settings

if TYPE_CHECKING:
    from saasodoo.adapters.kube.informer import Informer
    from saasodoo.context import Context
    from saasodoo.tenants import Tenants

log = logging.getLogger(__name__)

#: How often ``wait`` reads the object (seconds).
POLL_SECONDS = 0.5
#: What a ``TenantView`` reads of an OdooTenant's metadata and status (``listed``).
LISTED_METADATA = ("name", "namespace", "uid", "resourceVersion", "generation",
                   "creationTimestamp", "deletionTimestamp", "labels")  # fmt: skip
LISTED_STATUS = ("conditions", "observedGeneration", "revision", "url", "releases", "domains")


def listed(obj: dict[str, Any]) -> dict[str, Any]:
    """``obj`` reduced to what ``TenantView.of`` reads (the watch cache's transform): its
    spec whole, of its metadata and status ``LISTED_METADATA`` and ``LISTED_STATUS`` (not
    the record, the backups' inventory, the history)."""
    meta, status = obj.get("metadata") or {}, obj.get("status") or {}
    return {
        "metadata": {k: meta[k] for k in LISTED_METADATA if k in meta},
        "spec": obj.get("spec") or {},
        "status": {k: status[k] for k in LISTED_STATUS if k in status},
    }


class TenantStalled(SaasodooError):
    """The operator cannot bring the tenant to its spec (the OdooTenant is Stalled)."""


@dataclass(frozen=True)
class TenantView:
    """A tenant as its OdooTenant shows it (``.spec`` and ``.status``)."""

    id: str
    plan: str
    odoo_version: str
    suspended: bool
    owner: str | None
    ready: str  # the Ready condition's status: True, False, Unknown ("" before any)
    reason: str
    message: str
    #: Current, InProgress, Failed, Terminating: kstatus, except that an object the operator
    #: has not reconciled yet (no ``status.observedGeneration``) is InProgress, where kstatus'
    #: generic rules would call a resource without conditions Current.
    kstatus: str
    revision: int | None
    url: str | None
    generation: int
    observed_generation: int | None
    conditions: list[dict[str, Any]] = field(default_factory=list)
    admin_email: str = ""
    custom_domains: list[str] = field(default_factory=list)
    #: The tenant this one is a staging copy of (``spec.copyOf.tenant``), None for others.
    copy_of: str | None = None
    #: When the operator deletes the copy (``spec.expiresAt``, RFC 3339), None: never.
    expires_at: str | None = None
    #: helm's history as the operator last read it (``status.releases``), newest first.
    releases: list[dict[str, Any]] = field(default_factory=list)
    #: Each custom domain's state as the operator last saw it (``status.domains``).
    domains: list[dict[str, Any]] = field(default_factory=list)

    @classmethod
    def of(cls, obj: dict[str, Any]) -> TenantView:
        meta, spec, status = obj["metadata"], obj.get("spec") or {}, obj.get("status") or {}
        ready = get_condition(status.get("conditions") or [], "Ready") or {}
        return cls(
            id=meta["name"],
            plan=spec.get("plan", ""),
            odoo_version=spec.get("odooVersion", ""),
            suspended=bool(spec.get("suspended", False)),
            owner=spec.get("owner"),
            ready=ready.get("status", ""),
            reason=ready.get("reason", ""),
            message=ready.get("message", ""),
            kstatus=kstatus(obj) if observed(obj) else "InProgress",
            revision=status.get("revision"),
            url=status.get("url"),
            generation=int(meta.get("generation") or 0),
            observed_generation=status.get("observedGeneration"),
            conditions=list(status.get("conditions") or []),
            admin_email=spec.get("adminEmail", ""),
            custom_domains=list(spec.get("customDomains") or []),
            copy_of=(spec.get("copyOf") or {}).get("tenant"),
            expires_at=spec.get("expiresAt"),
            releases=list(status.get("releases") or []),
            domains=list(status.get("domains") or []),
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "plan": self.plan,
            "odoo_version": self.odoo_version,
            "suspended": self.suspended,
            "owner": self.owner,
            "ready": self.ready,
            "reason": self.reason,
            "message": self.message,
            "status": self.kstatus,
            "revision": self.revision,
            "url": self.url,
            "generation": self.generation,
            "observed_generation": self.observed_generation,
            "conditions": self.conditions,
            "admin_email": self.admin_email,
            "custom_domains": self.custom_domains,
            "copy_of": self.copy_of,
            "expires_at": self.expires_at,
        }


class OdooTenants:
    """The OdooTenants of the platform namespace (``Settings.system_namespace``)."""

    def __init__(self, settings: Settings, *, ctx: Context | None = None) -> None:
        self.settings = settings
        self._ctx = ctx
        self._resources: TenantResources | None = None
        self._cache: Informer | None = None
        self._cache_lock = threading.Lock()

    @property
    def resources(self) -> TenantResources:
        """The OdooTenants through the cluster, reached on first use (an app that refuses a
        request before reading needs no cluster)."""
        if self._resources is None:
            kube = self._ctx.kube if self._ctx is not None else Kube(self.settings)
            self._resources = TenantResources(kube, self.settings.system_namespace)
        return self._resources

    @resources.setter
    def resources(self, resources: TenantResources) -> None:
        self._resources = resources

    @property
    def ctx(self) -> Context:
        """The context of the lifecycle's checks, made on first use (reading and listing
        need only the resources: `tenant list` loads no helm, plans or DNS)."""
        if self._ctx is None:
            from saasodoo.context import Context

            self._ctx = Context(self.settings, kube=self.resources.kube)
        return self._ctx

    @cached_property
    def tenants(self) -> Tenants:
        """The lifecycle whose checks a change goes through (on the context)."""
        from saasodoo.tenants import Tenants

        return Tenants(self.ctx)

    def read(self, tenant_id: str) -> dict[str, Any]:
        obj = self.resources.get(check_tenant_id(tenant_id))
        if obj is None:
            raise NotFound(f"tenant '{tenant_id}' not found")
        return obj

    def get(self, tenant_id: str) -> TenantView:
        return TenantView.of(self.read(tenant_id))

    def list(self, owner: str | None = None) -> list[TenantView]:
        """Every tenant, or those of ``owner`` (checked against ``spec.owner``), by id: from
        the watch cache once it has listed (``watch``: a long-running process such as the
        API; no request), else one list request, a user's selected by the ``OWNER_LABEL``
        label on the API server (it reads only the user's tenants, whatever the size of the
        platform; a label the operator has not brought in step yet never shows another's
        tenant)."""
        cache = self._cache
        if cache is not None and cache.has_synced():
            objects = cache.list()
        else:
            selector = f"{OWNER_LABEL}={owner_label(owner)}" if owner else None
            objects = self.resources.list(selector).get("items") or []
        views = [TenantView.of(o) for o in objects]
        return sorted((v for v in views if owner is None or v.owner == owner),
                      key=lambda v: v.id)  # fmt: skip

    def watch(self) -> None:
        """Keep a watch cache of the OdooTenants (an ``Informer`` on its own thread, each
        object reduced to what a ``TenantView`` reads: ``listed``) for ``list``: the API
        serves its tenant lists from it (issue #23: 1,000 tenants, p50 under 100 ms), where a
        list request reads every status whole (about 15 MiB at 1,000 tenants with a month of
        backups each). Idempotent; a cluster whose client cannot watch leaves ``list`` on
        list requests (logged). The cache lags behind the API server by its watch's delay;
        this process's own writes are in it at once (``_noted``)."""
        with self._cache_lock:
            if self._cache is not None:
                return
            try:
                from saasodoo.adapters.kube.informer import Informer

                cache = Informer.for_custom_objects(
                    self.resources.kube.api, GROUP, VERSION, PLURAL,
                    self.settings.system_namespace, transform=listed, resync_period=None,
                    name="odootenants-list",
                )  # fmt: skip
            except Exception as exc:  # noqa: BLE001 - the list requests still work
                log.warning("no watch cache of the OdooTenants (lists read them): %s", exc)
                return
            cache.start()
            self._cache = cache

    def stop_watching(self) -> None:
        """Stop the watch cache (``list`` reads the API server again)."""
        with self._cache_lock:
            cache, self._cache = self._cache, None
        if cache is not None:
            cache.stop()

    def _noted(self, obj: dict[str, Any]) -> dict[str, Any]:
        """``obj`` (this process's write's answer), also into the watch cache."""
        if self._cache is not None:
            self._cache.remember(obj)
        return obj

    def summaries(self) -> builtins.list[TenantView]:
        """Every tenant as its printer columns tell it (``TenantResources.table``,
        ``crd.row_object``), by id: id, plan, series, Ready and its message, kstatus,
        revision and URL; the other fields empty. What ``tenant list`` shows, read as the
        API server prints it (about 200 KiB for 1,000 tenants, where ``list`` reads every
        status whole)."""
        table = self.resources.table()
        columns = table.get("columnDefinitions") or []
        views = [TenantView.of(row_object(columns, row)) for row in table.get("rows") or []]
        return sorted(views, key=lambda v: v.id)

    async def check(self, spec: TenantSpec, current: TenantSpec | None = None) -> None:
        """What refuses ``spec`` without reading the cluster (the API's ServiceAccount reads
        only OdooTenants and their requests): InvalidInput naming the field for an id not
        starting with a letter (a new tenant), a platform host among the custom domains,
        another Odoo series than ``current``'s, an unknown plan, overrides the chart's schema
        rejects. What needs the cluster is the operator's to check, and its refusal is the
        OdooTenant's status (a namespace of another tenant or a host another tenant proved:
        ``Ready`` False with the reason)."""
        if current is None:
            check_new_tenant_id(spec.id)
        self.ctx.domains.check_rules(spec)
        await self.tenants.check_change(spec, current)

    async def create(self, spec: TenantSpec, *, owner: str | None = None) -> TenantView:
        """Check ``spec`` (``check``, which reads nothing; then Conflict for an existing
        OdooTenant, also when the API server says so), then write its OdooTenant."""
        spec = spec.model_copy(update={"verified_domains": (), "created_with": None})
        await self.check(spec)
        if self.resources.get(spec.id) is not None:
            raise Conflict(f"tenant '{spec.id}' already exists")
        body_spec = from_tenant_spec(spec, suspended=False, owner=owner)
        if self.ctx.settings.node_pool:  # this caller's placement, kept with the tenant
            body_spec["nodePool"] = self.ctx.settings.node_pool
        body = {"metadata": {"name": spec.id, "labels": owner_labels(body_spec)},
                "spec": body_spec}  # fmt: skip
        return TenantView.of(self._noted(self.resources.create(body)))

    async def copy(
        self,
        source_id: str,
        new_id: str,
        *,
        backup: str | None = None,
        plan: str | None = None,
        expires_in: str | None = None,
        now: datetime | None = None,
    ) -> TenantView:
        """Write the OdooTenant ``new_id``, a staging copy of ``source_id`` (``spec.copyOf``,
        label ``saasodoo.dev/copy-of``): the source's admin, series, plan (or ``plan``),
        owner and overrides, its own hosts, ``spec.expiresAt`` = ``now`` + ``expires_in``
        (``7d``, ``12h``, ...). The operator makes it (README, "Staging copies"). Refusals
        before anything is written: InvalidInput naming ``to``, ``expires_in``, ``plan`` or
        ``backup``; NotFound for no source; Conflict for a source being deleted or an
        existing ``new_id``."""
        check_copy_ids(source_id, check_tenant_id(new_id))
        expires_at = None
        if expires_in is not None:
            expires_at = (now or datetime.now(UTC)) + parse_expires_in(expires_in)
        source = self.resources.get(check_tenant_id(source_id))
        if source is None:
            raise NotFound(f"source tenant '{source_id}' not found")
        if (source.get("metadata") or {}).get("deletionTimestamp"):
            raise Conflict(f"source tenant '{source_id}' is being deleted")
        if self.resources.get(new_id) is not None:
            raise Conflict(f"tenant '{new_id}' already exists (--to names a new tenant)")
        body_spec = copy_spec(source_id, source.get("spec") or {}, new_id, backup=backup,
                              plan=plan, expires_at=expires_at)  # fmt: skip
        await self.check(to_tenant_spec(new_id, body_spec, copies=True))
        if self.ctx.settings.node_pool:  # this caller's placement, kept with the tenant
            body_spec["nodePool"] = self.ctx.settings.node_pool
        labels = {**copy_labels(source_id), **owner_labels(body_spec)}
        body = {"metadata": {"name": new_id, "labels": labels}, "spec": body_spec}
        return TenantView.of(self._noted(self.resources.create(body)))

    async def update(self, tenant_id: str, **changes: Any) -> TenantView:
        """Check the change against the OdooTenant's spec (``check``; InvalidInput when
        nothing is given), then patch the spec. ``changes``: plan, odoo_version,
        custom_domains, overrides."""
        from saasodoo.tenants import update_changes

        changes = update_changes(**changes)
        obj = self.read(tenant_id)
        current = to_tenant_spec(tenant_id, obj.get("spec") or {})
        spec = TenantSpec.parse({**current.model_dump(), **changes})
        await self.check(spec, current)
        new = from_tenant_spec(spec, suspended=False, owner=None)
        patch = {k: v for k, v in new.items() if k in ("plan", "odooVersion", "customDomains",
                                                        "overrides")}  # fmt: skip
        if "overrides" in patch:
            # A merge patch merges maps: null out what the new overrides drop.
            old = (obj.get("spec") or {}).get("overrides") or {}
            patch["overrides"] = merge_patch(old, patch["overrides"])
        return TenantView.of(self._noted(self.resources.patch(tenant_id, {"spec": patch})))

    def request_reconcile(self, tenant_id: str, token: str, *, force: bool = False) -> None:
        """Ask the operator to reconcile now (Flux's ``requestedAt``): the annotation
        ``saasodoo.dev/reconcile-requested-at`` (and with ``force``
        ``saasodoo.dev/force-requested-at``) set to ``token``, echoed in the status once
        handled."""
        notes = {RECONCILE_REQUESTED_AT: token}
        if force:
            notes[FORCE_REQUESTED_AT] = token
        self.resources.patch(tenant_id, {"metadata": {"annotations": notes}})

    def leader(self, now: datetime | None = None) -> Leader:
        """Whether an operator leads (``saasodoo.core.leader``): the OdooTenant kind served
        (one object listed) and the Lease ``Settings.operator_lease`` of the system namespace
        held. Errors are the answer's message (this is a report: nothing waits on it)."""
        namespace, name = self.resources.namespace, self.settings.operator_lease
        where = f"{namespace}/{name}"
        kube = self.resources.kube
        try:
            with translate(f"list {self.resources.plural}"):
                kube.get_json(self.resources.path(), [("limit", "1")])
        except NotFound:
            return Leader(False, None, "no operator can run: the OdooTenant kind is not "
                          "installed (saasodoo operator run --install-crds, or the platform "
                          "chart)")  # fmt: skip
        except SaasodooError as exc:
            return Leader(False, None, f"not known: {exc.message}")
        path = f"/apis/coordination.k8s.io/v1/namespaces/{namespace}/leases/{name}"
        try:
            with translate(f"read the Lease {where}"):
                lease = kube.get_json(path)
        except NotFound:
            lease = None
        except SaasodooError as exc:
            return Leader(False, None, f"not known: {exc.message}")
        return leader_of(lease, now or datetime.now(UTC), where)

    def set_suspended(self, tenant_id: str, suspended: bool) -> TenantView:
        self.read(tenant_id)
        changed = self.resources.patch(tenant_id, {"spec": {"suspended": suspended}})
        return TenantView.of(self._noted(changed))

    def delete(self, tenant_id: str, *, final_backup: bool = True) -> TenantView:
        """Ask for deletion; the operator takes the final backup first unless
        ``final_backup`` is False (which is written to the spec before the deletion)."""
        obj = self.read(tenant_id)
        if not final_backup and (obj.get("spec") or {}).get("finalBackup", True):
            obj = self._noted(self.resources.patch(tenant_id, {"spec": {"finalBackup": False}}))
        self.resources.delete(tenant_id)
        return TenantView.of(self.resources.get(tenant_id) or obj)

    def wait(
        self,
        tenant_id: str,
        *,
        timeout: float,
        gone: bool = False,
        on_progress: Callable[[TenantView], None] | None = None,
    ) -> TenantView | None:
        """Follow the OdooTenant until it is Ready for its current generation (or, with
        ``gone``, deleted: returns None). TenantStalled when the operator says Stalled (or a
        held deletion's reason); NotReady-like SaasodooError after ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        last = ""
        while True:
            obj = self.resources.get(tenant_id)
            if obj is None:
                if gone:
                    return None
                raise NotFound(f"tenant '{tenant_id}' is gone")
            view = TenantView.of(obj)
            if view.message != last and on_progress is not None:
                on_progress(view)
                last = view.message
            if not gone and view.kstatus == "Current" and view.ready == "True":
                return view
            stalled = get_condition(view.conditions, "Stalled")
            if (stalled and stalled.get("status") == "True"
                    and view.observed_generation == view.generation):  # fmt: skip
                raise TenantStalled(
                    f"tenant '{tenant_id}': {stalled.get('message') or view.message}"
                )
            if gone and view.reason == "FinalBackupFailed":
                raise TenantStalled(f"tenant '{tenant_id}' not deleted: {view.message}")
            if time.monotonic() > deadline:
                raise SaasodooError(
                    f"tenant '{tenant_id}' not {'deleted' if gone else 'Ready'} after "
                    f"{timeout:.0f}s: {view.message or 'no status yet (is the operator running?)'}"
                )
            time.sleep(POLL_SECONDS)


def observed(obj: dict[str, Any]) -> bool:
    """Whether the operator reconciled ``obj`` once (``status.observedGeneration`` set) or it
    is being deleted."""
    meta, status = obj.get("metadata") or {}, obj.get("status") or {}
    return status.get("observedGeneration") is not None or bool(meta.get("deletionTimestamp"))
