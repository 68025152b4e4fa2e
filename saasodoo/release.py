"""Every helm call that changes a tenant's release, in one place: install, upgrade, ensure's
apply, reinstall, rollback (volume-safe) and uninstall.

Each runs the same steps: the operation lock in the tenant's record (``TenantRecord``: its
OdooTenant's status, or its namespace's annotations for a tenant without one; taken with
the namespace on create, with the desired spec on an upgrade, by ``TenantRecord.locked``
elsewhere), Helm 4's ownership mend before helm changes an
existing release (``Kube.mend_replicas_ownership``: a field saasodoo wrote, such as a
restore's replicas, would otherwise conflict), the helm call, then the record of what was
applied (which releases the lock) and the release of the domain claims the release no longer
routes. A failed helm call releases the lock, recording the revision it left
(``TenantRecord.failed``), so ``ensure`` remediates that one and no hand change.

Callers: ``saasodoo.tenants`` (the lifecycle), ``saasodoo.reconciler`` (ensure's
executors) and ``saasodoo.fleet`` (the undo of an upgrade), through the context
(``saasodoo.context``: ``ctx.release``), which alone builds it.
``.importlinter`` keeps the entry points (CLI, API, web) and the other rooms from importing
this module; tests/unit/test_helm_callers.py keeps every other module from calling the Helm
adapter's mutating methods (``install_or_upgrade``, ``rollback``, ``uninstall``).
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import Awaitable, Callable
from typing import Any

from saasodoo.adapters.helm import Helm, Revision
from saasodoo.adapters.kube import Kube, Namespace
from saasodoo.adapters.records import StatusRider
from saasodoo.core.crd import COPY_OF_LABEL
from saasodoo.core.reconcile import Action, Applied
from saasodoo.core.spec import MANAGED_BY, MANAGED_BY_LABEL, PLAN_LABEL, TENANT_LABEL, TenantSpec
from saasodoo.core.status import stuck_pods
from saasodoo.core.values import (
    ADMIN_SECRET_KEY,
    ADMIN_SECRET_NAME,
    TenantValues,
    floor_volume_sizes,
    get_path,
    shrinking_claims,
)
from saasodoo.core.versions import check_postgresql_image_change, postgresql_image
from saasodoo.domains import Domains
from saasodoo.errors import InvalidInput, SaasodooError
from saasodoo.record import TenantRecord
from saasodoo.settings import S3_KEYS

log = logging.getLogger(__name__)

#: Pod Security Standard of a tenant's namespace (set when it is created).
POD_SECURITY = {
    "pod-security.kubernetes.io/enforce": "restricted",
    "pod-security.kubernetes.io/warn": "restricted",
}
#: How often a waiting rollback looks for pods the StatefulSet controller leaves stuck.
STUCK_POD_POLL_SECONDS = 2.0


class TenantRelease:
    """The helm calls that change tenants' releases, each with its lock and record steps.

    ``helm``, ``kube`` and ``domains`` are called on first use (the context builds its
    adapters lazily); ``record`` is the tenant record they share with the lifecycle.
    """

    def __init__(
        self,
        record: TenantRecord,
        *,
        helm: Callable[[], Helm],
        kube: Callable[[], Kube],
        domains: Callable[[], Domains],
    ) -> None:
        self.record = record
        self._helm = helm
        self._kube = kube
        self._domains = domains

    @property
    def helm(self) -> Helm:
        return self._helm()

    @property
    def kube(self) -> Kube:
        return self._kube()

    @property
    def domains(self) -> Domains:
        return self._domains()

    # -- install and upgrade ------------------------------------------------------------

    async def install(
        self,
        spec: TenantSpec,
        values: TenantValues,
        digest: str,
        *,
        admin_password: str | None = None,
        owner: str | None = None,
        wait: bool = True,
        suspended: bool = False,
    ) -> Revision:
        """Create a tenant whose spec ``check_create`` accepted: namespace (the lock taken
        with it, in one request, so a crash from there on is recoverable by ensure), its
        custom domains claimed (HostTaken removes the namespace again), the admin Secret
        (``admin_password`` or a random one), ``helm install``, the record of what was
        applied. ``owner`` is recorded in its record. Values the chart itself refuses
        (InvalidInput) leave nothing behind; another failure releases the lock, recording
        the revision it left. ``suspended``: recorded so (the values are the caller's).
        Returns the installed revision."""
        # A platform Secret that cannot serve the tenant refuses the create before its
        # namespace exists (else each retry made and removed one).
        self._check_backup_credentials(values.values)
        # The lock is taken with the namespace: a crash from here on is recoverable.
        self.record.create(
            spec,
            labels={
                PLAN_LABEL: spec.plan,
                **POD_SECURITY,
                **({COPY_OF_LABEL: spec.copy_of} if spec.copy_of else {}),
            },  # fmt: skip
            lock=self.record.lock_for("create", digest),
            owner=owner,
        )
        await self._claim_or_undo_create(spec)
        try:
            self._admin_secret(spec, admin_password)
            log.info("installing tenant %s (plan %s)", spec.id, spec.plan)
            rev = await self._install_or_upgrade(
                spec, values.values, f"saasodoo: create (plan {spec.plan})", wait=wait
            )
        except InvalidInput:
            # The chart refused the values before installing anything (one of its own
            # checks): leave nothing behind.
            self._release_quietly(spec.id, list(spec.custom_domains))
            self.kube.delete_namespace(spec.namespace)
            self.kube.wait_namespace_gone(spec.namespace, timeout=120)
            raise
        except BaseException:
            # A failure (not a crash) releases the lock, recording the revision it left as
            # saasodoo's: ensure may then act at once.
            self.record.failed(spec, "create", digest, 0)
            raise
        self.record.write(spec, suspended, applied=Applied(digest, rev.revision))
        return rev

    async def _claim_or_undo_create(self, spec: TenantSpec) -> None:
        """Claim the new tenant's custom domains; if one is taken, remove the namespace."""
        try:
            self.domains.claim(spec.id, spec.custom_domains)
        except BaseException:
            self.kube.delete_namespace(spec.namespace)
            await asyncio.to_thread(self.kube.wait_namespace_gone, spec.namespace, 120)
            raise

    def _admin_secret(self, spec: TenantSpec, password: str | None = None) -> None:
        """The tenant's admin Secret, unless it exists (never overwritten)."""
        self.kube.create_secret_if_absent(
            spec.namespace,
            ADMIN_SECRET_NAME,
            {ADMIN_SECRET_KEY: password or secrets.token_urlsafe(24)},
            labels={TENANT_LABEL: spec.id, MANAGED_BY_LABEL: MANAGED_BY},
        )

    def _backup_credentials_source(
        self, values: dict[str, Any]
    ) -> tuple[tuple[str, str], str, dict[str, str]] | None:
        """With ``Settings.backup_s3_secret`` and values that keep backups in S3: the
        platform's Secret (namespace, name), the tenant's Secret name
        (``backup.s3.existingSecret``) and its keys (tenant's key -> platform's key), as the
        values name them; None otherwise."""
        source = self.record.settings.backup_s3_secret
        name = get_path(values, "backup.s3.existingSecret")
        if not source or get_path(values, "backup.storage") != "s3" or not name:
            return None
        namespace, _, secret = source.partition("/")
        keys = {
            get_path(values, "backup.s3.accessKeyIdKey") or S3_KEYS[0]: S3_KEYS[0],
            get_path(values, "backup.s3.secretAccessKeyKey") or S3_KEYS[1]: S3_KEYS[1],
        }
        return (namespace, secret), str(name), keys

    def _check_backup_credentials(self, values: dict[str, Any]) -> None:
        """The platform's backup Secret readable with the keys the values need, checked
        before a new tenant's namespace is made (NotFound/InvalidInput: nothing created)."""
        wanted = self._backup_credentials_source(values)
        if wanted is not None:
            self.kube.check_secret_keys(wanted[0], set(wanted[2].values()))

    def _backup_credentials(self, spec: TenantSpec, values: dict[str, Any]) -> None:
        """The platform's access key pair (``_backup_credentials_source``) copied into the
        tenant's namespace: a rotation of the platform's Secret reaches each tenant at its
        next install or upgrade. NotFound/InvalidInput when the platform's Secret is
        missing or lacks a key (helm is not called)."""
        wanted = self._backup_credentials_source(values)
        if wanted is None:
            return
        source, name, keys = wanted
        if self.kube.copy_secret_keys(
            source, spec.namespace, name, keys,
            labels={TENANT_LABEL: spec.id, MANAGED_BY_LABEL: MANAGED_BY},
        ):  # fmt: skip
            log.info("backup credentials of %s copied from %s/%s", spec.namespace, *source)

    async def upgrade(
        self,
        spec: TenantSpec,
        suspended: bool,
        values: TenantValues,
        digest: str,
        *,
        previous: tuple[TenantSpec, bool],
        operation: str,
        description: str,
        wait: bool,
        timeout: str | None = None,
        ns: Namespace | None = None,
        rider: StatusRider | None = None,
    ) -> Revision:
        """``helm upgrade`` to ``spec`` (``values``, whose digest is ``digest``), the desired
        state recorded first with the lock (one request): if this process dies during helm,
        ``ensure`` finishes the upgrade. Its hosts are claimed first (HostTaken: nothing
        done). If helm fails (or the operation is cancelled), the desired state goes back to
        ``previous`` (spec, suspended), the lock is released recording the revision the
        call left, and the hosts claimed for it are released. On success the hosts the
        release no longer routes are freed. ``timeout``: a Helm duration (default
        ``Settings.helm_timeout``). ``ns``: the tenant's namespace as the caller read it
        with its record (``TenantRecord.write``'s ``known``: fewer requests). ``rider``: the
        operator's status, written with the lock (its Reconciling); the record of what was
        applied carries it too, and its ``written`` is then the OdooTenant as that write
        answered (``StatusRider``). Returns the new revision."""
        claimed = self.domains.claim(spec.id, spec.custom_domains, routed=spec.verified_domains)
        head = self.record.head(spec)  # taken before helm: did a failed call leave a revision?
        base = head.revision if head else 0
        # helm upgrade without --install of a release whose history ends uninstalled (a hand
        # `helm uninstall --keep-history`) would be refused; with it, helm installs again.
        install = head is None or head.status == "uninstalled"
        self.record.write(spec, suspended, lock=self.record.lock_for(operation, digest), known=ns,
                          rider=rider)  # fmt: skip
        try:
            self.kube.mend_replicas_ownership(spec.namespace)  # helm 4 would conflict
            rev = await self._install_or_upgrade(
                spec, values.values, description, wait=wait, timeout=timeout, install=install
            )
        except BaseException:
            try:
                # Not ``known``: the lock's write may have changed the labels it holds.
                self.record.write(*previous)
            except Exception:  # noqa: BLE001 - the original error matters more
                log.warning("could not restore the previous spec of %s", spec.namespace)
            self.record.failed(spec, operation, digest, base)
            self._release_quietly(spec.id, claimed)
            raise
        # ``known`` still holds: its labels are compared, and the lock's write set the same.
        self.record.write(spec, suspended, applied=Applied(digest, rev.revision), known=ns,
                          rider=rider)  # fmt: skip
        # Hosts the release no longer routes are free for others only now.
        self.domains.release(spec.id, set(previous[0].custom_domains) - set(spec.custom_domains))
        return rev

    async def apply(
        self, spec: TenantSpec, suspended: bool, values: TenantValues, digest: str, action: Action
    ) -> Revision:
        """Ensure's install or upgrade (``action``: INSTALL, UPGRADE or REINSTALL) of the
        recorded ``spec`` under the operation lock, waiting for the workloads, then the
        record of what was applied and the release of the hosts ``spec`` no longer names.
        An install makes the admin Secret if a crash left none; an upgrade mends Helm 4's
        field ownership first. The caller claimed the spec's hosts."""
        if action is not Action.UPGRADE:
            # A crash between namespace and install may have left no admin Secret.
            self._admin_secret(spec)
        async with self.record.locked(spec, f"ensure {action.value}", digest):
            if action is Action.UPGRADE:
                self.kube.mend_replicas_ownership(spec.namespace)  # helm 4 would conflict
            rev = await self._install_or_upgrade(
                spec, values.values, f"saasodoo: ensure ({action.value} to spec)", wait=True,
                install=action is not Action.UPGRADE,
            )  # fmt: skip
        self.record.write(spec, suspended, applied=Applied(digest, rev.revision))
        self.domains.release_except(spec.id, spec.custom_domains)
        return rev

    async def reinstall(
        self, spec: TenantSpec, suspended: bool, values: TenantValues, digest: str
    ) -> Revision:
        """A failed first install uninstalled (under the lock), then installed again as
        ``apply`` does: the install's lock is taken once the old release is gone, so a
        failed install is recorded as the revision it left."""
        await self.uninstall(spec, f"ensure {Action.REINSTALL.value}", wait=True)
        return await self.apply(spec, suspended, values, digest, Action.REINSTALL)

    def _install_or_upgrade(
        self,
        spec: TenantSpec,
        values: dict[str, Any],
        description: str,
        *,
        wait: bool,
        timeout: str | None = None,
        install: bool = True,
    ) -> Awaitable[Revision]:
        """The one ``helm upgrade --install`` of the tenant's release (its coroutine), the
        tenant's backup storage credentials made current first. ``install=False`` when the
        release has a stored revision: a plain ``helm upgrade`` (cheaper: see
        ``Helm.install_or_upgrade``)."""
        self._backup_credentials(spec, values)
        return self.helm.install_or_upgrade(
            spec.release, spec.namespace, values, description=description, wait=wait,
            timeout=timeout, install=install,
        )  # fmt: skip

    # -- uninstall --------------------------------------------------------------------

    async def uninstall(self, spec: TenantSpec, operation: str, *, wait: bool = True) -> bool:
        """``helm uninstall`` of the tenant's release under the operation lock (named
        ``operation``; ensure waits meanwhile). The lock stays held on success: the caller
        installs again or deletes the namespace with its record. False when there was no
        release."""
        async with self.record.locked(spec, operation, ""):
            return await self.helm.uninstall(spec.release, spec.namespace, wait=wait)

    # -- rollback ---------------------------------------------------------------------

    async def rollback(
        self,
        spec: TenantSpec,
        revision: int,
        digest: str,
        *,
        restores: tuple[TenantSpec, bool] | None = None,
        failed_digest: str | None = None,
        record: bool = True,
        release_domains: bool = False,
        target_values: dict[str, Any] | None = None,
        wait: bool = True,
    ) -> int | None:
        """Back to ``revision`` (volume-safe: ``rollback_keeping_volumes``) under the
        operation lock ("rollback to <revision>", ``digest``: the digest of what it
        applies), then its record: what was applied (``digest`` at the new head revision)
        with ``failed_digest`` (the digest not to retry; None clears it) and, with
        ``restores`` (spec, suspended), that spec as the desired state; with
        ``release_domains``, the hosts the restored spec no longer names are freed. With
        ``record`` False (a revision that recorded no spec), or when helm reads no release
        after it, nothing is recorded and the lock is released. ``target_values``: the
        revision's values, when the caller read them already. Returns the new head
        revision (None when helm reads none)."""
        async with self.record.locked(spec, f"rollback to {revision}", digest):
            await self.rollback_keeping_volumes(spec, revision, target_values, wait=wait)
        head = await self.helm.status(spec.release, spec.namespace)
        if not record or head is None:
            self.record.unlock(spec.namespace)
            return head.revision if head else None
        applied = Applied(digest, head.revision)
        if restores is None:
            self.record.write_outcome(spec.namespace, applied, failed_digest)
        else:
            self.record.write(*restores, applied=applied, failed_digest=failed_digest)
            if release_domains:
                self.domains.release_except(spec.id, restores[0].custom_domains)
        return head.revision

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
        values and the volumes kept at their current size (the description says so). The
        caller holds the operation lock (``rollback`` does). A revision of another PostgreSQL
        major or Debian release is refused first (``check_database_image``), before any
        change. While helm waits, pods the StatefulSet controller leaves stuck on the failed
        revision are replaced (``_replacing_stuck_pods``)."""
        if target_values is None:
            target_values = await self.helm.get_values(spec.release, spec.namespace, revision)
        manifest = await self.helm.get_manifest(spec.release, spec.namespace, revision)
        await self.check_database_image(spec, revision, manifest)  # before any change
        # The revision's hosts may have been released and claimed by another tenant since.
        routed = get_path(target_values, "ingress.customDomains")
        hosts = [str(h) for h in routed] if isinstance(routed, list) else []
        self.domains.claim(spec.id, hosts, routed=hosts)
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
        call: Awaitable[Any]
        if not shrinking:
            call = self.helm.rollback(spec.release, spec.namespace, revision, wait=wait)
        else:
            values = floor_volume_sizes(target_values, target_claims, current_claims)
            call = self._install_or_upgrade(
                spec,
                values,
                f"saasodoo: rollback to {revision} (its values; volumes kept at their "
                f"current size: {', '.join(shrinking)})",
                wait=wait,
                install=False,
            )
        if not wait:
            await call
            return
        await self._replacing_stuck_pods(spec.namespace, call)

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

    async def _replacing_stuck_pods(self, namespace: str, call: Awaitable[Any]) -> list[str]:
        """Await ``call`` (a rollback waiting for its workloads) while replacing the pods of
        the failed revision that the StatefulSet controller never replaces by itself
        (``core.status.stuck_pods``, kubernetes/kubernetes#67250): once the rollback's
        template is applied, such a pod is deleted and the controller makes it anew from the
        template, as the rollback intends. Returns the pods deleted (each one logged)."""
        deleted: list[str] = []
        task = asyncio.ensure_future(call)
        while True:
            done, _ = await asyncio.wait({task}, timeout=STUCK_POD_POLL_SECONDS)
            if done:
                await task  # helm's error, if any
                return deleted
            try:
                sets = await asyncio.to_thread(self.kube.statefulset_pods, namespace)
                for name in stuck_pods(sets):
                    if name not in deleted:
                        await asyncio.to_thread(self.kube.delete_pod, namespace, name)
                        deleted.append(name)
                        log.warning(
                            "%s: deleted pod %s of the failed revision: the StatefulSet "
                            "controller does not replace it (kubernetes#67250)",
                            namespace,
                            name,
                        )
            except SaasodooError as exc:  # the rollback goes on; helm's wait decides
                log.warning("%s: could not look for stuck pods: %s", namespace, exc.message)

    def _release_quietly(self, tenant_id: str, hosts: list[str]) -> None:
        try:
            self.domains.release(tenant_id, hosts)
        except Exception:  # noqa: BLE001 - the original error matters more
            log.warning("could not release the domain claims %s of %s", hosts, tenant_id)
