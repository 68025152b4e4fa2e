"""The tenant lifecycle: create, status, list, update, suspend, resume, history, rollback, delete.

The one library the CLI, the HTTP API and the Makefile call. A tenant is the namespace
``tenant-<id>`` (labelled ``saasodoo.dev/tenant=<id>``) plus the Helm release ``<id>`` in
it, and saasodoo's record of it (its spec among it: ``saasodoo.record``, kept on its
OdooTenant or, without one, on its namespace); there is no other state.
Every input is validated and the values rendered before anything is created, so bad
input leaves nothing behind.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

from saasodoo.adapters.helm import Revision, local_chart_schema
from saasodoo.adapters.kube import Namespace
from saasodoo.adapters.records import StatusRider
from saasodoo.backups.finals import FinalBackup, KeptFinals
from saasodoo.context import Context
from saasodoo.core.domains import canonical_host
from saasodoo.core.spec import (
    COMPONENT_LABEL,
    TENANT_LABEL,
    TenantSpec,
    check_new_tenant_id,
)
from saasodoo.core.status import (
    Observation,
    ReleaseInfo,
    TenantStatus,
    classify,
)
from saasodoo.core.updates import CodeChange, code_change
from saasodoo.core.values import (
    TEMPLATE_KEY_PATH,
    TenantValues,
    check_values,
    compute_values,
    creation_facts,
    get_path,
    helm_merge,
    node_pool_values,
    template_values,
    validate_against_schema,
)
from saasodoo.core.versions import (
    check_rollback_series,
    check_version_change,
    odoo_series,
)
from saasodoo.domains import DomainState
from saasodoo.errors import (
    Conflict,
    FieldError,
    HelmFailure,
    InvalidInput,
    NotFound,
    NotReady,
    SaasodooError,
)
from saasodoo.settings import check_node_pool

log = logging.getLogger(__name__)

#: What suspension changes in the values: no Odoo pod (web and cron); data kept.
SUSPEND_VALUES: dict[str, Any] = {"odoo": {"replicas": 0}}


@dataclass(frozen=True)
class Tenant:
    """A tenant as the cluster shows it without the operator: its recorded spec, and its
    status in the conditions an OdooTenant carries (``core.status.classify``)."""

    spec: TenantSpec
    status: TenantStatus
    url: str
    owner: str | None = None
    #: Recorded suspended (Odoo at zero replicas by saasodoo's own change).
    suspended: bool = False

    def to_dict(self) -> dict[str, Any]:
        """The keys ``saasodoo.odootenants.TenantView.to_dict`` gives a tenant the operator
        reports on (a script reading ``-o json`` reads both alike): ``ready``, ``reason`` and
        ``message`` of the Ready condition, ``status`` its kstatus; ``generation`` and
        ``observed_generation`` are None (no object), ``expires_at`` too (a copy's expiry is
        the operator's)."""
        return {
            "id": self.spec.id,
            "plan": self.spec.plan,
            "odoo_version": self.spec.odoo_version,
            "suspended": self.suspended,
            "owner": self.owner,
            "ready": self.status.ready,
            "reason": self.status.reason,
            "message": self.status.message,
            "status": self.status.kstatus,
            "revision": self.status.revision,
            "url": self.url,
            "generation": None,
            "observed_generation": None,
            "conditions": [dict(c) for c in self.status.conditions],
            "admin_email": self.spec.admin_email,
            "custom_domains": list(self.spec.custom_domains),
            "copy_of": self.spec.copy_of,
            "expires_at": None,
        }


@dataclass(frozen=True)
class Deleted:
    """What ``Tenants.delete`` did: the tenant deleted, whether its volumes were retained,
    and its final backup (None with ``final_backup=False``), proven readable and kept."""

    tenant: str
    kept_volumes: bool
    final_backup: FinalBackup | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.tenant,
            "deleted": True,
            "kept_volumes": self.kept_volumes,
            "final_backup": self.final_backup.to_dict() if self.final_backup else None,
        }


@dataclass(frozen=True)
class UpdatePlan:
    """What ``Tenants.update`` applies: the recorded spec, the new one, whether the tenant
    is suspended and the names of the changed fields (sorted)."""

    current: TenantSpec
    spec: TenantSpec
    suspended: bool
    changes: tuple[str, ...]


def update_changes(**given: Any) -> dict[str, Any]:
    """The given (not None) fields of an update, by name; InvalidInput when there is none."""
    changes = {k: v for k, v in given.items() if v is not None}
    if not changes:
        raise InvalidInput(
            "nothing to update",
            [FieldError("(body)", "give one of plan, odoo_version, custom_domains, overrides")],
        )
    return changes


class Tenants:
    """Lifecycle operations over one context (``saasodoo.context``: one cluster, one helm
    binary and one plans catalog); the adapters are the context's (``self.ctx``)."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx

    # -- pure helpers ---------------------------------------------------------------

    def values_for(self, spec: TenantSpec, *, suspended: bool = False) -> TenantValues:
        computed = compute_values(spec, self.ctx.catalog, self.ctx.platform)
        if suspended:
            return TenantValues(helm_merge(computed.values, SUSPEND_VALUES))
        return computed

    def url_for(self, tenant_id: str) -> str:
        """The tenant's public address (``Settings.public_url``: scheme, host, port)."""
        return self.ctx.settings.tenant_url(f"{tenant_id}.{self.ctx.settings.base_domain}")

    async def desired(
        self, spec: TenantSpec, *, suspended: bool = False
    ) -> tuple[TenantValues, str]:
        """The values of ``spec`` and their digest (chart version + values)."""
        values = self.values_for(spec, suspended=suspended)
        return values, values.digest(await self.ctx.helm.digest_chart_version())

    async def settled(self, ns: Namespace) -> TenantSpec:
        """The spec recorded on ``ns`` with what the tenant was created with
        (``TenantSpec.created_with``, see ``core.values.CREATION_PATHS``). A tenant created
        before saasodoo recorded that gets it once, from the values of the revision saasodoo
        last applied (else the newest deployed one: one or two helm calls), recorded on its
        namespace: a later change of the platform's settings leaves it as it is. A tenant
        without a deployed revision takes the platform's settings of now."""
        spec = self.ctx.record.spec(ns)
        if spec.created_with is not None:
            return spec
        applied = self.ctx.record.applied(ns)
        revision = applied.revision if applied else None
        if revision is None:
            good = [r.revision for r in await self._history_or_none(spec) if r.status in
                    ("deployed", "superseded")]  # fmt: skip
            revision = max(good) if good else None
        if revision is None:
            values = self.values_for(spec).values
        else:
            values = await self.ctx.helm.get_values(spec.release, spec.namespace, revision)
        spec = spec.model_copy(update={"created_with": creation_facts(values)})
        self.ctx.record.write_spec(spec)
        log.info("tenant %s: recorded what it was created with (revision %s)", spec.id, revision)
        return spec

    async def _history_or_none(self, spec: TenantSpec) -> list[Revision]:
        try:
            return await self.ctx.helm.history(spec.release, spec.namespace)
        except NotFound:
            return []

    async def get(self, tenant_id: str) -> Tenant:
        ns = self.ctx.record.namespace(tenant_id)
        spec = self.ctx.record.spec(ns)
        release = self.ctx.kube.release_head(spec.namespace, spec.release)  # no helm process
        workloads = self.ctx.kube.list_workloads(spec.namespace).get(tenant_id, [])
        obs = Observation(
            tenant_id, ns.phase, release, tuple(workloads), self.ctx.record.lock(ns),
            self.ctx.stale_after, self.ctx.record.revisions(ns),
        )  # fmt: skip
        return Tenant(
            spec,
            classify(obs, datetime.now(UTC)),
            self.url_for(tenant_id),
            self.ctx.record.owner(ns),
            self.ctx.record.suspended(ns),
        )

    def list_tenants(self, owner: str | None = None) -> list[Tenant]:
        """Every tenant (or ``owner``'s) with its status, in five API requests in all (the
        OdooTenants among them, for the records they hold), plus one per failed release
        (its record says why it failed; the heads only that it did)."""
        namespaces = self.ctx.record.list()
        heads = self.ctx.kube.list_release_heads(explain_failed=True)
        workloads = self.ctx.kube.list_workloads()
        now = datetime.now(UTC)
        tenants = []
        for ns in namespaces:
            if owner is not None and self.ctx.record.owner(ns) != owner:
                continue
            try:
                spec = self.ctx.record.spec(ns)
            except (NotFound, ValueError):
                log.warning("namespace %s is labelled as a tenant but has no spec", ns.name)
                continue
            obs = Observation(
                spec.id,
                ns.phase,
                heads.get((spec.namespace, spec.release)),
                tuple(workloads.get(spec.id, [])),
                self.ctx.record.lock(ns),
                self.ctx.stale_after,
                self.ctx.record.revisions(ns),
            )
            tenants.append(
                Tenant(
                    spec,
                    classify(obs, now),
                    self.url_for(spec.id),
                    self.ctx.record.owner(ns),
                    self.ctx.record.suspended(ns),
                )
            )
        return sorted(tenants, key=lambda t: t.spec.id)

    async def history(self, tenant_id: str) -> list[Revision]:
        ns = self.ctx.record.namespace(tenant_id)
        spec = self.ctx.record.spec(ns)
        return await self.ctx.helm.history(spec.release, spec.namespace)

    async def render(self, spec: TenantSpec) -> str:
        """The manifests of a tenant, rendered by ``helm template`` without a cluster."""
        check_new_tenant_id(spec.id)
        self.ctx.domains.check_rules(spec)
        values = self.values_for(spec)
        return await self.ctx.helm.template(spec.release, spec.namespace, values.values)

    # -- changing -----------------------------------------------------------------------

    def local_chart(self) -> tuple[dict[str, Any], dict[str, Any]] | None:
        """(values.schema.json, values.yaml) of the tenant chart when it is a directory
        (kept by the Helm adapter once read), None for a packaged or OCI chart."""
        return (
            helm.local_schema()
            if (helm := self.ctx.built_helm)
            else local_chart_schema(self.ctx.settings.chart)
        )

    async def _validate(self, spec: TenantSpec, values: TenantValues) -> None:
        """Schema errors before any change: against the local chart's values.schema.json in
        process (no helm run), or by rendering a packaged/OCI chart with ``helm template``."""
        check_values(values.values)
        local = self.local_chart()
        if local is not None:
            validate_against_schema(local[0], local[1], values.values)
        else:
            await self.ctx.helm.template(spec.release, spec.namespace, values.values)

    async def check_change(
        self, spec: TenantSpec, current: TenantSpec | None = None
    ) -> TenantValues:
        """Everything that refuses ``spec`` before any change, as ``InvalidInput``: another
        Odoo series than ``current`` runs (core.versions), an unknown plan, values (overrides) the
        chart's schema rejects. The API calls it before queuing, so it answers 422 at once."""
        if current is not None:
            check_version_change(current, spec)
        values = self.values_for(spec)
        await self._validate(spec, values)
        return values

    async def check_create(self, spec: TenantSpec) -> tuple[TenantSpec, TenantValues]:
        """Everything that refuses creating ``spec``, before any change (the API calls it
        before queuing, ``create`` before its first write): a platform host among the custom
        domains or an id not starting with a letter (InvalidInput), an unknown plan or
        overrides the schema rejects (``check_change``), an existing namespace (Conflict), a
        host another tenant holds (HostTaken). Returns the spec to create (its domains
        unverified) and its values."""
        check_new_tenant_id(spec.id)  # Services' names: a letter first
        self.ctx.domains.check_rules(spec)  # the platform's own names: no cluster call
        # Its domains start unverified; what it is created with comes from the platform now.
        spec = spec.model_copy(update={"verified_domains": (), "created_with": None})
        values = await self.check_change(spec)
        spec = spec.model_copy(update={"created_with": creation_facts(values.values)})
        if self.ctx.kube.read_namespace(spec.namespace) is not None:
            raise Conflict(f"tenant '{spec.id}' already exists (namespace {spec.namespace})")
        self.ctx.domains.check(spec)  # another tenant's host (the claim still decides a race)
        return spec, values

    async def plan_update(
        self,
        tenant_id: str,
        *,
        plan: str | None = None,
        odoo_version: str | None = None,
        custom_domains: list[str] | None = None,
        overrides: dict[str, Any] | None = None,
        allow_code_change: bool = False,
        ns: Namespace | None = None,
    ) -> UpdatePlan:
        """What ``update`` would apply, or why not, before any change (the API calls it
        before queuing): InvalidInput when nothing is given, for another Odoo series, an unknown
        plan or overrides the schema rejects, and for a change of the Odoo code the database
        runs unless ``allow_code_change`` (``refuse_code_change``); NotFound for no such tenant;
        HostTaken for another tenant's host. ``ns``: the tenant's namespace with its record,
        when the caller has just read it (else it is read here)."""
        changes = update_changes(
            plan=plan, odoo_version=odoo_version, custom_domains=custom_domains,
            overrides=overrides,
        )  # fmt: skip
        if ns is None:
            ns = self.ctx.record.namespace(tenant_id)
        current = await self.settled(ns)
        spec = TenantSpec.parse({**current.model_dump(), **changes})
        await self.check_change(spec, current)  # no other Odoo series, no schema errors
        self.ctx.domains.check(spec)
        suspended = self.ctx.record.suspended(ns)
        if not allow_code_change:
            await self.refuse_code_change(spec, ns, suspended)
        return UpdatePlan(current, spec, suspended, tuple(sorted(changes)))

    async def code_change_of(
        self,
        spec: TenantSpec,
        ns: Namespace,
        suspended: bool,
        chart_version: str,
        desired: tuple[TenantValues, str] | None = None,
    ) -> CodeChange | None:
        """The change of the Odoo code its database runs (``core.updates.code_change``) from
        the tenant's applied revision (or a newer deployed one, made by hand) to ``spec``
        (chart ``chart_version`` on both sides);
        None when there is none, when nothing was applied yet (no database to update), or
        when the desired values are the applied ones (no helm call then). ``desired``: the
        values and digest of ``spec``, when the caller computed them already. The applied
        revision's values are the recorded spec's when their digest is the applied one (no
        read of its release record then)."""
        values, digest = desired or await self.desired(spec, suspended=suspended)
        applied = self.ctx.record.applied(ns)
        if applied is None or applied.revision is None or applied.digest == digest:
            return None
        # What runs is the newest deployed revision: a newer one than saasodoo's was made by
        # hand (a helm rollback during an update, kept with update-resolved-at: its database
        # never saw the update's -u, whatever the record says was applied).
        revision = applied.revision
        head = self.ctx.record.head(spec)
        if head is not None and head.revision > revision and head.status == "deployed":
            revision = head.revision
        old = None
        if revision == applied.revision and self.ctx.record.has_spec(ns):
            try:
                recorded, was = await self.desired(
                    self.ctx.record.spec(ns), suspended=self.ctx.record.suspended(ns)
                )
            except (SaasodooError, ValueError):  # e.g. a plan gone since: read them
                was = ""
            if was == applied.digest:  # the digest covers the values and the chart version
                old = recorded.values
        if old is None:
            old = self.ctx.kube.release_values(spec.namespace, spec.release, revision)
        if old is None:  # its record unreadable from here: ask helm
            old = await self.ctx.helm.get_values(spec.release, spec.namespace, revision)
        chart = self.local_chart()
        defaults = chart[1] if chart else {}
        try:
            return code_change(helm_merge(defaults, old), helm_merge(defaults, values.values),
                               chart_version, chart_version, tenant_id=spec.id)  # fmt: skip
        except ValueError as exc:  # no image named (a packaged chart without its defaults)
            log.warning("tenant %s: no code change seen: %s", spec.id, exc)
            return None

    async def refuse_code_change(
        self,
        spec: TenantSpec,
        ns: Namespace,
        suspended: bool,
        desired: tuple[TenantValues, str] | None = None,
    ) -> None:
        """InvalidInput when moving the tenant to ``spec`` changes the Odoo code its database
        runs (a new image of its series, a code option, a module; ``code_change_of``). Only
        the operator runs such a change's steps (pre-update backup, ``odoo -u`` with web
        traffic stopped, the signed-in check, the restore on failure: docs/updates.md); a
        plain ``helm upgrade`` would start the new code on a database not updated for it."""
        version = await self.ctx.helm.digest_chart_version()
        change = await self.code_change_of(spec, ns, suspended, version, desired)
        if change is not None:
            raise InvalidInput(
                f"tenant '{spec.id}': this change alters the Odoo code its database runs "
                f"({change.message}); without the operator nothing runs the update's steps "
                "(pre-update backup, odoo -u, signed-in check, restore on failure): apply it "
                "through the operator (SAASODOO_OPERATOR=1; docs/updates.md)"
            )

    async def create(
        self,
        spec: TenantSpec,
        *,
        admin_password: str | None = None,
        owner: str | None = None,
        wait: bool = True,
        suspended: bool = False,
        template: str | None = None,
    ) -> Tenant:
        """Namespace, admin Secret, then ``helm install``. Refuses an existing tenant.

        ``owner`` (e.g. the API user's id) is recorded in its record. Custom domains are
        claimed right after the namespace is created; a host of another tenant removes the
        namespace again and raises HostTaken. A new tenant's domains start unverified.
        ``suspended``: installed and recorded suspended (Odoo at zero replicas, web and cron:
        a staging copy until its data is restored and neutralized; ``resume`` starts it).
        ``template``: a templated create (``core.templates``): the web pod waits for the
        restore of that template key, which the caller starts (no ``helm --wait`` then:
        ``wait`` is for the caller to leave False); recorded as a creation fact.
        """
        spec, values = await self.check_create(spec)
        if template:
            values = TenantValues(helm_merge(values.values, template_values(template)))
            facts = {**(spec.created_with or {}), TEMPLATE_KEY_PATH: template}
            spec = spec.model_copy(update={"created_with": facts})
        if suspended:
            values = TenantValues(helm_merge(values.values, SUSPEND_VALUES))
        digest = values.digest(await self.ctx.helm.digest_chart_version())
        rev = await self.ctx.release.install(
            spec, values, digest, admin_password=admin_password, owner=owner, wait=wait,
            suspended=suspended,
        )  # fmt: skip
        # The install just told us the release's state: no `helm status` round trip.
        release = ReleaseInfo(rev.revision, rev.status, rev.updated, rev.description)
        workloads = self.ctx.kube.list_workloads(spec.namespace).get(spec.id, [])
        obs = Observation(spec.id, "Active", release, tuple(workloads))
        return Tenant(spec, classify(obs, datetime.now(UTC)), self.url_for(spec.id), owner,
                      suspended)  # fmt: skip

    async def update(
        self,
        tenant_id: str,
        *,
        plan: str | None = None,
        odoo_version: str | None = None,
        custom_domains: list[str] | None = None,
        overrides: dict[str, Any] | None = None,
        wait: bool = True,
        allow_code_change: bool = False,
    ) -> Tenant:
        """Change plan or configuration: new values, ``helm upgrade``, then record the spec
        (``apply_update``); the tenant as it is then."""
        await self.apply_update(
            tenant_id, plan=plan, odoo_version=odoo_version, custom_domains=custom_domains,
            overrides=overrides, wait=wait, allow_code_change=allow_code_change,
        )  # fmt: skip
        return await self.get(tenant_id)

    async def apply_update(
        self,
        tenant_id: str,
        *,
        plan: str | None = None,
        odoo_version: str | None = None,
        custom_domains: list[str] | None = None,
        overrides: dict[str, Any] | None = None,
        wait: bool = True,
        allow_code_change: bool = False,
        ns: Namespace | None = None,
        rider: StatusRider | None = None,
    ) -> Revision:
        """``update`` without reading the tenant back: new values, ``helm upgrade``, then
        the spec recorded; the new revision. Refused before any change as ``plan_update``
        says. ``allow_code_change``: the caller checked that the change alters no Odoo code,
        or runs the update's steps around it (the operator). ``ns``: the tenant's namespace
        with its record as the caller has just read it (the operator's turn), else read
        here. ``rider``: the operator's status, written with the record's writes
        (``TenantRelease.upgrade``)."""
        planned = await self.plan_update(
            tenant_id, plan=plan, odoo_version=odoo_version, custom_domains=custom_domains,
            overrides=overrides, allow_code_change=allow_code_change, ns=ns,
        )  # fmt: skip
        return await self.upgrade_to(
            planned.spec, planned.suspended, (planned.current, planned.suspended), "update",
            f"saasodoo: update {', '.join(planned.changes)}", wait=wait, ns=ns, rider=rider,
        )  # fmt: skip

    async def suspend(self, tenant_id: str, *, wait: bool = True) -> Tenant:
        return await self._set_suspended(tenant_id, True, wait=wait)

    async def resume(self, tenant_id: str, *, wait: bool = True) -> Tenant:
        return await self._set_suspended(tenant_id, False, wait=wait)

    async def _set_suspended(self, tenant_id: str, suspended: bool, *, wait: bool) -> Tenant:
        ns = self.ctx.record.namespace(tenant_id)
        spec = await self.settled(ns)
        operation = "suspend" if suspended else "resume"
        await self.upgrade_to(
            spec, suspended, (spec, self.ctx.record.suspended(ns)), operation,
            f"saasodoo: {operation}", wait=wait,
        )  # fmt: skip
        return await self.get(tenant_id)

    async def upgrade_to(
        self,
        spec: TenantSpec,
        suspended: bool,
        previous: tuple[TenantSpec, bool],
        operation: str,
        description: str,
        *,
        wait: bool,
        timeout: str | None = None,
        desired: tuple[TenantValues, str] | None = None,
        ns: Namespace | None = None,
        rider: StatusRider | None = None,
    ) -> Revision:
        """``helm upgrade`` to ``spec``, the desired state recorded first (with the lock, one
        request): if this process dies during helm, ``ensure`` finishes the upgrade. If helm
        fails (or the operation is cancelled), the desired state goes back to ``previous``.
        ``desired``: the values and digest, when the caller computed them already; ``ns``:
        the tenant's namespace with its record, as just read; ``rider``: the operator's
        status written with the record (both ``TenantRelease.upgrade``)."""
        values, digest = desired or await self.desired(spec, suspended=suspended)
        return await self.ctx.release.upgrade(
            spec, suspended, values, digest, previous=previous, operation=operation,
            description=description, wait=wait, timeout=timeout, ns=ns, rider=rider,
        )  # fmt: skip

    async def check_ready(self, spec: TenantSpec, *, timeout: str | None = None) -> None:
        """Prove that Odoo serves its users, not only ``/web/health`` (which is
        ``auth='none'`` and answers 200 while every signed-in page may fail): the chart's
        ``helm test`` Job signs in as the admin over JSON-RPC ``/web/session/authenticate``
        with the password of the tenant's Secret, reads ``res.users`` and opens ``/web``
        (``charts/odoo-tenant/files/signin-check.py``). ``timeout``: a Helm duration
        (default ``Settings.helm_timeout``). Raises ``NotReady`` with the check's own
        reason (the last line of the test pod's log) when it fails."""
        try:
            await self.ctx.helm.test(spec.release, spec.namespace, timeout=timeout)
        except HelmFailure as exc:
            raise NotReady(
                f"tenant '{spec.id}' failed its signed-in check: "
                f"{self._test_reason(spec) or exc.message}"
            ) from None

    def _test_reason(self, spec: TenantSpec) -> str:
        """The last line of the ``helm test`` pod's log ("" when it cannot be read)."""
        try:
            pods = self.ctx.kube.list_pods(spec.namespace, f"{COMPONENT_LABEL}=test")
            for pod in sorted(pods, key=lambda p: p.name, reverse=True):
                lines = self.ctx.kube.pod_log(spec.namespace, pod.name, "signin").splitlines()
                said = [line for line in lines if line.startswith("signed-in check failed")]
                if said or lines:
                    return (said or lines)[-1].strip()[:500]
        except Exception:  # noqa: BLE001 - helm's own message is the fallback
            log.warning("could not read the test pod's log in %s", spec.namespace)
        return ""

    async def move(self, tenant_id: str, *, node_pool: str, wait: bool = True) -> Tenant:
        """Move the tenant's pods to another node pool (``KEY=VALUE``; "" for any node): the
        explicit operation that changes its recorded placement, which a change of
        ``SAASODOO_NODE_POOL`` never does (``core.values.CREATION_PATHS``). A ``helm
        upgrade`` moves the pods; their volumes do not move: with node-local volumes the
        database's pod cannot start elsewhere, the upgrade fails and ensure rolls it back
        (move such a tenant by backup, delete, create in the new pool and import).
        InvalidInput for a pool that is not a label KEY=VALUE."""
        try:
            check_node_pool(node_pool)
        except ValueError as exc:
            raise InvalidInput("invalid node pool", [FieldError("node_pool", str(exc))]) from None
        ns = self.ctx.record.namespace(tenant_id)
        spec = await self.settled(ns)
        placement = node_pool_values(node_pool)
        facts = {
            **(spec.created_with or {}),
            **{key: placement.get(key) for key in ("nodeSelector", "tolerations")},
        }
        moved = spec.model_copy(update={"created_with": facts})
        suspended = self.ctx.record.suspended(ns)
        await self.upgrade_to(
            moved, suspended, (spec, suspended), "move",
            f"saasodoo: move to node pool {node_pool or '(any node)'}", wait=wait,
        )  # fmt: skip
        return await self.get(tenant_id)

    async def check_rollback(
        self, tenant_id: str, revision: int | None = None
    ) -> tuple[TenantSpec, int, dict[str, Any], TenantSpec | None]:
        """What ``rollback`` returns to, or why not, before any change (the API calls it
        before queuing; NotFound for no such revision, Conflict for none before it): the
        tenant's spec, the revision (default: the previous one), its values and the spec it
        recorded. A revision of another Odoo series is refused (core.versions), naming
        ``revision``."""
        ns = self.ctx.record.namespace(tenant_id)
        spec = await self.settled(ns)
        history = await self.ctx.helm.history(spec.release, spec.namespace)
        known = [r.revision for r in history]
        if revision is None:
            if len(known) < 2:
                raise Conflict(f"tenant '{tenant_id}' has no previous revision to roll back to")
            revision = known[-2]
        if revision not in known:
            raise NotFound(
                f"tenant '{tenant_id}' has no revision {revision} "
                f"(known: {', '.join(map(str, known)) or 'none'})"
            )
        target_values = await self.ctx.helm.get_values(spec.release, spec.namespace, revision)
        recorded = get_path(target_values, "tenant.spec")
        restored = (
            revision_spec(recorded, target_values)
            if isinstance(recorded, dict) and recorded
            else None
        )
        if restored is not None:  # a revision of another Odoo series: not its database
            check_rollback_series(spec.id, revision, odoo_series(spec), odoo_series(restored))
        await self.ctx.release.check_database_image(spec, revision)
        return spec, revision, target_values, restored

    async def rollback(
        self, tenant_id: str, revision: int | None = None, *, wait: bool = True
    ) -> Tenant:
        """Return to ``revision`` (default: the previous one) and make its spec the desired one.

        A plain ``helm rollback`` replays the revision's stored manifests. When that would
        shrink a volume that has grown since (Kubernetes refuses to shrink a PVC), the
        revision's values are applied with ``helm upgrade`` instead, volumes kept at their
        current size; the new revision's description says which path was taken.
        Only Kubernetes objects go back: the database stays as it is, so a revision of
        another Odoo series is refused (``check_rollback``).
        """
        spec, revision, target_values, restored = await self.check_rollback(tenant_id, revision)
        suspended = get_path(target_values, "odoo.replicas") == 0
        # What the rollback applies, as ensure will compute it from the restored spec (with
        # volumes kept at their size the values differ only where Kubernetes forces them).
        digest = (await self.desired(restored, suspended=suspended))[1] if restored else ""
        await self.ctx.release.rollback(
            spec, revision, digest, restores=(restored, suspended) if restored else None,
            record=restored is not None, release_domains=True, target_values=target_values,
            wait=wait,
        )  # fmt: skip
        return await self.get(tenant_id)

    async def delete(
        self,
        tenant_id: str,
        *,
        keep_volumes: bool = False,
        final_backup: bool = True,
        wait: bool = True,
    ) -> Deleted:
        """A final backup (unless ``final_backup`` is False), ``helm uninstall``, then the
        namespace; ``keep_volumes`` retains the PVs.

        The final backup is taken and proven readable where it is stored before anything is
        deleted, and kept where the deletion does not reach: in the S3 bucket, or, on the
        tenant's backup volume, by keeping that volume under a claim in the platform's
        namespace for ``Settings.final_backup_days`` (``saasodoo.backups.finals``; the
        deletion then waits for the tenant's claim to go, whatever ``wait``). When none can
        be kept or proven, FinalBackupRefused (Conflict) and nothing is deleted. Returns what
        was deleted and where the final backup is."""
        ns = self.ctx.record.namespace(tenant_id)
        spec = self.ctx.record.spec(ns)
        final = None
        if final_backup:
            final = await asyncio.to_thread(self._final_backup, spec.id)
        if keep_volumes:
            self.ctx.kube.retain_volumes(spec.namespace, spec.id)
        await self.ctx.release.uninstall(spec, "delete", wait=wait)
        self.ctx.domains.release_except(spec.id, ())  # the Ingress is gone: its hosts are free
        self.ctx.kube.delete_namespace(spec.namespace)
        if final is not None and final.volume:
            final = await asyncio.to_thread(self._keep_final, final)
        if wait:
            self.ctx.kube.wait_namespace_gone(spec.namespace, timeout=300)
        return Deleted(spec.id, keep_volumes, final)

    def _final_backup(self, tenant_id: str) -> FinalBackup:
        from saasodoo.backups import Backups  # the backups package imports this module

        final = Backups(self.ctx.settings, kube=self.ctx.kube).take_final(tenant_id)
        if final.volume:
            final = KeptFinals(self.ctx.settings, self.ctx.kube).retain(final)
        return final

    def _keep_final(self, final: FinalBackup) -> FinalBackup:
        """The retained backup volume under a claim of the platform's namespace, once the
        tenant's claim is gone; then the kept final backups whose time is up are deleted."""
        kept = KeptFinals(self.ctx.settings, self.ctx.kube)
        assert final.volume is not None
        claim = kept.adopt(final.volume)
        try:
            kept.prune_kept()
        except Exception:  # noqa: BLE001 - the deletion is done; pruning is retried next time
            log.warning("could not prune the kept final backups", exc_info=True)
        where = f"pvc {kept.namespace}/{claim} (volume {final.volume}): {final.name}"
        return replace(final, claim=f"{kept.namespace}/{claim}", location=where)

    # -- custom domains ---------------------------------------------------------------------

    def domain_states(self, tenant_id: str) -> list[DomainState]:
        """Each custom domain: verified (routed) or pending, with the DNS record to create."""
        ns = self.ctx.record.namespace(tenant_id)
        return self.ctx.domains.states(self.ctx.record.spec(ns))

    async def verify_domain(self, tenant_id: str, host: str, *, wait: bool = True) -> Tenant:
        """Check the DNS proof of ``host`` (NotVerified names the record to create); once
        found, the domain is verified and routed (``helm upgrade``)."""
        try:
            host = canonical_host(host)
        except ValueError as exc:
            raise InvalidInput("invalid domain", [FieldError("domain", str(exc))]) from None
        ns = self.ctx.record.namespace(tenant_id)
        spec = await self.settled(ns)
        self.ctx.domains.prove(spec, host)
        if host in spec.verified_domains:
            return await self.get(tenant_id)
        verified = TenantSpec.parse(
            {**spec.model_dump(), "verified_domains": [*spec.verified_domains, host]}
        )
        suspended = self.ctx.record.suspended(ns)
        await self.upgrade_to(
            verified, suspended, (spec, suspended), "verify domain",
            f"saasodoo: verify domain {host}", wait=wait,
        )  # fmt: skip
        return await self.get(tenant_id)

    # -- placement ------------------------------------------------------------------------

    def distribution(self) -> dict[str, list[str]]:
        """Tenants per node (from the nodes their pods run on); every node listed."""
        nodes: dict[str, set[str]] = {n.name: set() for n in self.ctx.kube.list_nodes()}
        for pod in self.ctx.kube.list_tenant_pods():
            node = pod.node
            tenant = pod.labels.get(TENANT_LABEL)
            if node and tenant:
                nodes.setdefault(node, set()).add(tenant)
        return {node: sorted(tenants) for node, tenants in sorted(nodes.items())}


def revision_spec(recorded: dict[str, Any], values: dict[str, Any]) -> TenantSpec:
    """The spec a revision recorded in its values (``tenant.spec``), with the creation facts
    its values deploy (``core.values.creation_facts``; the values' spec does not repeat
    them): what the tenant is once that revision is back."""
    spec = TenantSpec.model_validate(recorded)
    return spec.model_copy(update={"created_with": creation_facts(values)})
