"""The tenant lifecycle: create, status, list, update, suspend, resume, history, rollback, delete.

The one library the CLI, the HTTP API and the Makefile call. A tenant is the namespace
``tenant-<id>`` (labelled ``saasodoo.dev/tenant=<id>``, its spec in the annotation
``saasodoo.dev/spec``) plus the Helm release ``<id>`` in it; there is no other state.
Every input is validated and the values rendered before anything is created, so bad
input leaves nothing behind.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections import Counter
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from functools import cached_property
from typing import Any

from saasodoo.adapters.catalog import load_catalog
from saasodoo.adapters.helm import Helm, Revision, local_chart_schema
from saasodoo.adapters.kube import Kube
from saasodoo.core.domains import canonical_host
from saasodoo.core.plans import Catalog
from saasodoo.core.reconcile import Applied
from saasodoo.core.record import new_tenant_annotations
from saasodoo.core.spec import (
    COMPONENT_LABEL,
    MANAGED_BY,
    MANAGED_BY_LABEL,
    PLAN_LABEL,
    TENANT_LABEL,
    TenantSpec,
    check_new_tenant_id,
)
from saasodoo.core.status import Observation, Phase, ReleaseInfo, TenantStatus, classify
from saasodoo.core.values import (
    ADMIN_SECRET_KEY,
    ADMIN_SECRET_NAME,
    Platform,
    TenantValues,
    compute_values,
    floor_volume_sizes,
    get_path,
    helm_merge,
    shrinking_claims,
    validate_against_schema,
)
from saasodoo.core.versions import (
    check_postgresql_image_change,
    check_version_change,
    postgresql_image,
)
from saasodoo.domains import Domains, DomainState
from saasodoo.errors import Conflict, FieldError, HelmFailure, InvalidInput, NotFound, NotReady
from saasodoo.record import NamespaceRecord
from saasodoo.settings import Settings

log = logging.getLogger(__name__)

POD_SECURITY = {
    "pod-security.kubernetes.io/enforce": "restricted",
    "pod-security.kubernetes.io/warn": "restricted",
}
#: What suspension changes in the values: no Odoo pod (web and cron); data kept.
SUSPEND_VALUES: dict[str, Any] = {"odoo": {"replicas": 0}}


@dataclass(frozen=True)
class Tenant:
    """A tenant as the cluster shows it."""

    spec: TenantSpec
    status: TenantStatus
    url: str
    owner: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.spec.id,
            "namespace": self.spec.namespace,
            "url": self.url,
            "plan": self.spec.plan,
            "odoo_version": self.spec.odoo_version,
            "admin_email": self.spec.admin_email,
            "custom_domains": list(self.spec.custom_domains),
            "status": self.status.phase.value,
            "reason": self.status.reason,
            "revision": self.status.revision,
            "release_status": self.status.release_status,
            "owner": self.owner,
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
    """Lifecycle operations over one cluster, one helm binary and one plans catalog."""

    def __init__(
        self,
        settings: Settings,
        *,
        helm: Helm | None = None,
        kube: Kube | None = None,
        catalog: Catalog | None = None,
    ) -> None:
        self.settings = settings
        self._helm = helm
        self._kube = kube
        self.catalog = catalog or load_catalog(settings.plans_dir)
        #: The tenant record on each namespace (spec, owner, applied, operation lock).
        self.record = NamespaceRecord(settings, lambda: self.kube)
        self.platform = Platform(
            base_domain=settings.base_domain,
            ingress_class=settings.ingress_class,
            storage_class=settings.storage_class,
            node_pool=settings.node_pool,
        )

    # Adapters are built on first use: `render` needs no cluster, `list` no helm.
    @property
    def helm(self) -> Helm:
        if self._helm is None:
            self._helm = Helm(self.settings)
        return self._helm

    @property
    def kube(self) -> Kube:
        if self._kube is None:
            self._kube = Kube(self.settings)
        return self._kube

    @cached_property
    def domains(self) -> Domains:
        """Platform-wide claims of custom domains and their proof (``saasodoo.domains``)."""
        return Domains(self.settings, lambda: self.kube)

    # -- pure helpers ---------------------------------------------------------------

    def values_for(self, spec: TenantSpec, *, suspended: bool = False) -> TenantValues:
        computed = compute_values(spec, self.catalog, self.platform)
        if suspended:
            return TenantValues(helm_merge(computed.values, SUSPEND_VALUES))
        return computed

    def url_for(self, tenant_id: str) -> str:
        return f"https://{tenant_id}.{self.settings.base_domain}"

    async def desired(
        self, spec: TenantSpec, *, suspended: bool = False
    ) -> tuple[TenantValues, str]:
        """The values of ``spec`` and their digest (chart version + values)."""
        values = self.values_for(spec, suspended=suspended)
        return values, values.digest(await self.helm.digest_chart_version())

    async def get(self, tenant_id: str) -> Tenant:
        ns = self.record.namespace(tenant_id)
        spec = self.record.spec(ns)
        release = await self.helm.status(spec.release, spec.namespace)
        workloads = self.kube.list_workloads(spec.namespace).get(tenant_id, [])
        obs = Observation(tenant_id, ns.phase, release, tuple(workloads))
        return Tenant(
            spec, classify(obs, datetime.now(UTC)), self.url_for(tenant_id), self.record.owner(ns)
        )

    def list_tenants(self, owner: str | None = None) -> list[Tenant]:
        """Every tenant (or ``owner``'s) with its status, in four API requests in all, plus
        one per failed release (its record says why it failed; the heads only that it did)."""
        namespaces = self.kube.list_tenant_namespaces()
        heads = self.kube.list_release_heads()
        for key, head in heads.items():
            if head.status == "failed" and not head.description:
                why = self.kube.release_description(key[0], key[1], head.revision)
                heads[key] = replace(head, description=why)
        workloads = self.kube.list_workloads()
        now = datetime.now(UTC)
        tenants = []
        for ns in namespaces:
            if owner is not None and self.record.owner(ns) != owner:
                continue
            try:
                spec = self.record.spec(ns)
            except (NotFound, ValueError):
                log.warning("namespace %s is labelled as a tenant but has no spec", ns.name)
                continue
            obs = Observation(
                spec.id,
                ns.phase,
                heads.get((spec.namespace, spec.release)),
                tuple(workloads.get(spec.id, [])),
            )
            tenants.append(
                Tenant(spec, classify(obs, now), self.url_for(spec.id), self.record.owner(ns))
            )
        return sorted(tenants, key=lambda t: t.spec.id)

    async def history(self, tenant_id: str) -> list[Revision]:
        ns = self.record.namespace(tenant_id)
        spec = self.record.spec(ns)
        return await self.helm.history(spec.release, spec.namespace)

    async def render(self, spec: TenantSpec) -> str:
        """The manifests of a tenant, rendered by ``helm template`` without a cluster."""
        check_new_tenant_id(spec.id)
        self.domains.check_rules(spec)
        values = self.values_for(spec)
        return await self.helm.template(spec.release, spec.namespace, values.values)

    # -- changing -----------------------------------------------------------------------

    async def _validate(self, spec: TenantSpec, values: TenantValues) -> None:
        """Schema errors before any change: against the local chart's values.schema.json in
        process (no helm run), or by rendering a packaged/OCI chart with ``helm template``."""
        local = self._helm.local_schema() if self._helm else local_chart_schema(self.settings.chart)
        if local is not None:
            validate_against_schema(local[0], local[1], values.values)
        else:
            await self.helm.template(spec.release, spec.namespace, values.values)

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
        self.domains.check_rules(spec)  # the platform's own names: no cluster call
        if spec.verified_domains:
            spec = spec.model_copy(update={"verified_domains": ()})
        values = await self.check_change(spec)
        if self.kube.read_namespace(spec.namespace) is not None:
            raise Conflict(f"tenant '{spec.id}' already exists (namespace {spec.namespace})")
        self.domains.check(spec)  # another tenant's host (the claim still decides a race)
        return spec, values

    async def plan_update(
        self,
        tenant_id: str,
        *,
        plan: str | None = None,
        odoo_version: str | None = None,
        custom_domains: list[str] | None = None,
        overrides: dict[str, Any] | None = None,
    ) -> UpdatePlan:
        """What ``update`` would apply, or why not, before any change (the API calls it
        before queuing): InvalidInput when nothing is given, for another Odoo series, an unknown
        plan or overrides the schema rejects; NotFound for no such tenant; HostTaken for
        another tenant's host."""
        changes = update_changes(
            plan=plan, odoo_version=odoo_version, custom_domains=custom_domains,
            overrides=overrides,
        )  # fmt: skip
        ns = self.record.namespace(tenant_id)
        current = self.record.spec(ns)
        spec = TenantSpec.parse({**current.model_dump(), **changes})
        await self.check_change(spec, current)  # no other Odoo series, no schema errors
        self.domains.check(spec)
        return UpdatePlan(current, spec, self.record.suspended(ns), tuple(sorted(changes)))

    async def create(
        self,
        spec: TenantSpec,
        *,
        admin_password: str | None = None,
        owner: str | None = None,
        wait: bool = True,
    ) -> Tenant:
        """Namespace, admin Secret, then ``helm install``. Refuses an existing tenant.

        ``owner`` (e.g. the API user's id) is recorded on the namespace. Custom domains are
        claimed right after the namespace is created; a host of another tenant removes the
        namespace again and raises HostTaken. A new tenant's domains start unverified.
        """
        spec, values = await self.check_create(spec)
        digest = values.digest(await self.helm.digest_chart_version())
        self.kube.create_tenant_namespace(
            spec.namespace,
            spec.id,
            labels={PLAN_LABEL: spec.plan, **POD_SECURITY},
            # The lock is taken with the namespace: a crash from here on is recoverable.
            annotations=new_tenant_annotations(spec, self.record.lock_for("create", digest), owner),
        )
        await self._claim_or_undo_create(spec)
        try:
            self.kube.create_secret_if_absent(
                spec.namespace,
                ADMIN_SECRET_NAME,
                {ADMIN_SECRET_KEY: admin_password or secrets.token_urlsafe(24)},
                labels={TENANT_LABEL: spec.id, MANAGED_BY_LABEL: MANAGED_BY},
            )
            log.info("installing tenant %s (plan %s)", spec.id, spec.plan)
            rev = await self.helm.install_or_upgrade(
                spec.release,
                spec.namespace,
                values.values,
                description=f"saasodoo: create (plan {spec.plan})",
                wait=wait,
            )
        except InvalidInput:
            # The chart refused the values before installing anything (one of its own
            # checks): leave nothing behind.
            self._release_quietly(spec.id, list(spec.custom_domains))
            self.kube.delete_namespace(spec.namespace)
            self.kube.wait_namespace_gone(spec.namespace, timeout=120)
            raise
        except BaseException:
            # A failure (not a crash) releases the lock: ensure may then act at once.
            self.record.unlock_quietly(spec.namespace)
            raise
        self.record.write(spec, False, applied=Applied(digest, rev.revision))
        # The install just told us the release's state: no `helm status` round trip.
        release = ReleaseInfo(rev.revision, rev.status, rev.updated, rev.description)
        workloads = self.kube.list_workloads(spec.namespace).get(spec.id, [])
        obs = Observation(spec.id, "Active", release, tuple(workloads))
        return Tenant(spec, classify(obs, datetime.now(UTC)), self.url_for(spec.id), owner)

    async def _claim_or_undo_create(self, spec: TenantSpec) -> None:
        """Claim the new tenant's custom domains; if one is taken, remove the namespace."""
        try:
            self.domains.claim(spec.id, spec.custom_domains)
        except BaseException:
            self.kube.delete_namespace(spec.namespace)
            await asyncio.to_thread(self.kube.wait_namespace_gone, spec.namespace, 120)
            raise

    async def update(
        self,
        tenant_id: str,
        *,
        plan: str | None = None,
        odoo_version: str | None = None,
        custom_domains: list[str] | None = None,
        overrides: dict[str, Any] | None = None,
        wait: bool = True,
    ) -> Tenant:
        """Change plan or configuration: new values, ``helm upgrade``, then record the spec.
        Refused before any change as ``plan_update`` says."""
        planned = await self.plan_update(
            tenant_id, plan=plan, odoo_version=odoo_version, custom_domains=custom_domains,
            overrides=overrides,
        )  # fmt: skip
        await self.upgrade_to(
            planned.spec, planned.suspended, (planned.current, planned.suspended), "update",
            f"saasodoo: update {', '.join(planned.changes)}", wait=wait,
        )  # fmt: skip
        return await self.get(tenant_id)

    async def suspend(self, tenant_id: str, *, wait: bool = True) -> Tenant:
        return await self._set_suspended(tenant_id, True, wait=wait)

    async def resume(self, tenant_id: str, *, wait: bool = True) -> Tenant:
        return await self._set_suspended(tenant_id, False, wait=wait)

    async def _set_suspended(self, tenant_id: str, suspended: bool, *, wait: bool) -> Tenant:
        ns = self.record.namespace(tenant_id)
        spec = self.record.spec(ns)
        operation = "suspend" if suspended else "resume"
        await self.upgrade_to(
            spec, suspended, (spec, self.record.suspended(ns)), operation, f"saasodoo: {operation}",
            wait=wait,
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
    ) -> Revision:
        """``helm upgrade`` to ``spec``, the desired state recorded first (with the lock, one
        request): if this process dies during helm, ``ensure`` finishes the upgrade. If helm
        fails (or the operation is cancelled), the desired state goes back to ``previous``.
        ``desired``: the values and digest, when the caller computed them already."""
        values, digest = desired or await self.desired(spec, suspended=suspended)
        claimed = self.domains.claim(spec.id, spec.custom_domains)  # HostTaken: nothing done
        self.record.write(spec, suspended, lock=self.record.lock_for(operation, digest))
        try:
            self.kube.mend_replicas_ownership(spec.namespace)  # helm 4 would conflict
            rev = await self.helm.install_or_upgrade(
                spec.release,
                spec.namespace,
                values.values,
                description=description,
                wait=wait,
                timeout=timeout,
            )
        except BaseException:
            try:
                self.record.write(*previous, lock=None)
            except Exception:  # noqa: BLE001 - the original error matters more
                log.warning("could not restore the previous spec of %s", spec.namespace)
            self._release_quietly(spec.id, claimed)
            raise
        self.record.write(spec, suspended, applied=Applied(digest, rev.revision))
        # Hosts the release no longer routes are free for others only now.
        self.domains.release(spec.id, set(previous[0].custom_domains) - set(spec.custom_domains))
        return rev

    async def check_ready(self, spec: TenantSpec, *, timeout: str | None = None) -> None:
        """Prove that Odoo serves its users, not only ``/web/health`` (which is
        ``auth='none'`` and answers 200 while every signed-in page may fail): the chart's
        ``helm test`` Job signs in as the admin over JSON-RPC ``/web/session/authenticate``
        with the password of the tenant's Secret, reads ``res.users`` and opens ``/web``
        (``charts/odoo-tenant/files/signin-check.py``). ``timeout``: a Helm duration
        (default ``Settings.helm_timeout``). Raises ``NotReady`` with the check's own
        reason (the last line of the test pod's log) when it fails."""
        try:
            await self.helm.test(spec.release, spec.namespace, timeout=timeout)
        except HelmFailure as exc:
            raise NotReady(
                f"tenant '{spec.id}' failed its signed-in check: "
                f"{self._test_reason(spec) or exc.message}"
            ) from None

    def _test_reason(self, spec: TenantSpec) -> str:
        """The last line of the ``helm test`` pod's log ("" when it cannot be read)."""
        try:
            pods = self.kube.list_pods(spec.namespace, f"{COMPONENT_LABEL}=test")
            for pod in sorted(pods, key=lambda p: p.name, reverse=True):
                lines = self.kube.pod_log(spec.namespace, pod.name, "signin").splitlines()
                said = [line for line in lines if line.startswith("signed-in check failed")]
                if said or lines:
                    return (said or lines)[-1].strip()[:500]
        except Exception:  # noqa: BLE001 - helm's own message is the fallback
            log.warning("could not read the test pod's log in %s", spec.namespace)
        return ""

    def _release_quietly(self, tenant_id: str, hosts: list[str]) -> None:
        try:
            self.domains.release(tenant_id, hosts)
        except Exception:  # noqa: BLE001 - the original error matters more
            log.warning("could not release the domain claims %s of %s", hosts, tenant_id)

    async def check_rollback(
        self, tenant_id: str, revision: int | None = None
    ) -> tuple[TenantSpec, int, dict[str, Any], TenantSpec | None]:
        """What ``rollback`` returns to, or why not, before any change (the API calls it
        before queuing; NotFound for no such revision, Conflict for none before it): the
        tenant's spec, the revision (default: the previous one), its values and the spec it
        recorded. A revision of another Odoo series is refused (core.versions), naming
        ``revision``."""
        ns = self.record.namespace(tenant_id)
        spec = self.record.spec(ns)
        history = await self.helm.history(spec.release, spec.namespace)
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
        target_values = await self.helm.get_values(spec.release, spec.namespace, revision)
        recorded = get_path(target_values, "tenant.spec")
        restored = (
            TenantSpec.model_validate(recorded) if isinstance(recorded, dict) and recorded else None
        )
        if restored is not None:  # a revision of another Odoo series: not its database
            check_version_change(spec, restored, field="revision")
        await self.check_database_image(spec, revision)
        return spec, revision, target_values, restored

    async def check_database_image(
        self, spec: TenantSpec, revision: int, target: list[dict[str, Any]] | None = None
    ) -> None:
        """Refuse (InvalidInput naming ``revision``) going back to ``revision`` when its
        PostgreSQL image is another major or Debian release than the newest revision's
        (``core.versions.check_postgresql_image_change``): ``helm rollback`` replays stored
        manifests, so the chart's own check does not run. ``target``: the revision's
        manifest, when the caller read it already."""
        if target is None:
            target = await self.helm.get_manifest(spec.release, spec.namespace, revision)
        newest = await self.helm.get_manifest(spec.release, spec.namespace)
        check_postgresql_image_change(
            spec.id, postgresql_image(newest), postgresql_image(target), revision
        )

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
        async with self.record.locked(spec.namespace, f"rollback to {revision}", digest):
            await self.rollback_keeping_volumes(spec, revision, target_values, wait=wait)
        head = await self.helm.status(spec.release, spec.namespace)
        if restored is not None and head is not None:
            self.record.write(restored, suspended, applied=Applied(digest, head.revision))
            self.domains.release_except(spec.id, restored.custom_domains)
        else:
            self.record.unlock(spec.namespace)
        return await self.get(tenant_id)

    async def rollback_keeping_volumes(
        self,
        spec: TenantSpec,
        revision: int,
        target_values: dict[str, Any] | None = None,
        *,
        wait: bool = True,
    ) -> None:
        """Make the release what ``revision`` deployed: ``helm rollback``, or, when that would
        shrink a volume grown since (Kubernetes refuses), ``helm upgrade`` with the revision's
        values and the volumes kept at their current size (the description says so). Used by
        ``rollback``, ensure's remediation of a failed upgrade and the fleet's undo of an
        upgrade; the caller holds the operation lock. A revision of another PostgreSQL major
        or Debian release is refused first (``check_database_image``), before any change."""
        if target_values is None:
            target_values = await self.helm.get_values(spec.release, spec.namespace, revision)
        manifest = await self.helm.get_manifest(spec.release, spec.namespace, revision)
        await self.check_database_image(spec, revision, manifest)  # before any change
        # The revision's hosts may have been released and claimed by another tenant since.
        routed = get_path(target_values, "ingress.customDomains")
        self.domains.claim(spec.id, [str(h) for h in routed] if isinstance(routed, list) else [])
        target_claims = {
            d["metadata"]["name"]: (
                d["metadata"].get("labels", {}).get("app.kubernetes.io/component", ""),
                str(d["spec"]["resources"]["requests"]["storage"]),
            )
            for d in manifest
            if d.get("kind") == "PersistentVolumeClaim"
        }
        current_claims = self.kube.claim_sizes(spec.namespace)
        shrinking = shrinking_claims(target_claims, current_claims)
        self.kube.mend_replicas_ownership(spec.namespace)  # helm 4 would conflict
        if not shrinking:
            await self.helm.rollback(spec.release, spec.namespace, revision, wait=wait)
            return
        values = floor_volume_sizes(target_values, target_claims, current_claims)
        await self.helm.install_or_upgrade(
            spec.release,
            spec.namespace,
            values,
            description=(
                f"saasodoo: rollback to {revision} (its values; volumes kept at their "
                f"current size: {', '.join(shrinking)})"
            ),
            wait=wait,
        )

    async def delete(
        self,
        tenant_id: str,
        *,
        keep_volumes: bool = False,
        final_backup: bool = True,
        wait: bool = True,
    ) -> None:
        """A final backup (unless ``final_backup`` is False), ``helm uninstall``, then the
        namespace; ``keep_volumes`` retains the PVs. A failed final backup raises before
        anything is deleted."""
        ns = self.record.namespace(tenant_id)
        spec = self.record.spec(ns)
        if final_backup:
            await asyncio.to_thread(self._final_backup, spec.id)
        if keep_volumes:
            self.kube.retain_volumes(spec.namespace, spec.id)
        await self.helm.uninstall(spec.release, spec.namespace, wait=wait)
        self.domains.release_except(spec.id, ())  # the Ingress is gone: its hosts are free
        self.kube.delete_namespace(spec.namespace)
        if wait:
            self.kube.wait_namespace_gone(spec.namespace, timeout=300)

    def _final_backup(self, tenant_id: str) -> None:
        from saasodoo.backups import Backups  # the backups package imports this module

        try:
            Backups(self.settings, kube=self.kube).create(tenant_id, kind="final")
        except NotFound:  # backup.enabled=false or no release: nothing to back up with
            log.warning(
                "tenant %s has no backup CronJob: deleted without a final backup", tenant_id
            )

    # -- custom domains ---------------------------------------------------------------------

    def domain_states(self, tenant_id: str) -> list[DomainState]:
        """Each custom domain: verified (routed) or pending, with the DNS record to create."""
        ns = self.record.namespace(tenant_id)
        return self.domains.states(self.record.spec(ns))

    async def verify_domain(self, tenant_id: str, host: str, *, wait: bool = True) -> Tenant:
        """Check the DNS proof of ``host`` (NotVerified names the record to create); once
        found, the domain is verified and routed (``helm upgrade``)."""
        try:
            host = canonical_host(host)
        except ValueError as exc:
            raise InvalidInput("invalid domain", [FieldError("domain", str(exc))]) from None
        ns = self.record.namespace(tenant_id)
        spec = self.record.spec(ns)
        self.domains.prove(spec, host)
        if host in spec.verified_domains:
            return await self.get(tenant_id)
        verified = TenantSpec.parse(
            {**spec.model_dump(), "verified_domains": [*spec.verified_domains, host]}
        )
        suspended = self.record.suspended(ns)
        await self.upgrade_to(
            verified, suspended, (spec, suspended), "verify domain",
            f"saasodoo: verify domain {host}", wait=wait,
        )  # fmt: skip
        return await self.get(tenant_id)

    # -- placement ------------------------------------------------------------------------

    def distribution(self) -> dict[str, list[str]]:
        """Tenants per node (from the nodes their pods run on); every node listed."""
        nodes: dict[str, set[str]] = {n.name: set() for n in self.kube.list_nodes()}
        for pod in self.kube.list_tenant_pods():
            node = pod.node
            tenant = pod.labels.get(TENANT_LABEL)
            if node and tenant:
                nodes.setdefault(node, set()).add(tenant)
        return {node: sorted(tenants) for node, tenants in sorted(nodes.items())}


def count_phases(tenants: list[Tenant]) -> Counter[Phase]:
    return Counter(t.status.phase for t in tenants)
