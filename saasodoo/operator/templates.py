"""Templated creates (issue #25 point 3): a new tenant made from a template database of its
Odoo image instead of Odoo's ``-i base``, and the build of a missing template.

``TemplateCreates`` is used by ``TenantController.create`` (README, "New tenants"):

- ``plan(spec)``: whether a new tenant can be made from a template, and from which: the
  platform allows it (``Settings.templates``), the tenant is no staging copy, its backups
  are kept in S3 (the templates are kept there, under ``templates/<key>`` of the same
  location: ``core.templates``), and the newest complete template zip of its image's key
  (``core.templates.template_key``), listed with the platform's S3 key pair. A listing is
  kept ``FOUND_SECONDS`` (a template found) or ``MISSING_SECONDS`` (none yet).
- ``create_from(...)``: the templated create: ``Tenants.create(template=key, wait=False)``
  (the web pod's ``odoo-init`` waits for the restore instead of running ``-i base``:
  ``odoo.dbInit.template``) and, at once, the restore Job from the tenant's backup CronJob
  (``restore.py --source-tenant templates/<key> --drop-previous``: a copy, so a new
  ``database.uuid``/``database.secret``); the web pod personalizes the restored database
  from the create request. The tenant is looked at every ``FOLLOW_SECONDS`` until Ready.
- ``build(...)``: after a create that found no template, the Job that builds it in the new
  tenant's namespace (``backups.jobs.template_build_job``: ``-i base`` into a scratch
  database of that tenant's PostgreSQL, stored with backup.py, dropped), one per key at a
  time in this process.

``follow(obj)`` advances ``status.template`` (``core.templates`` states) from the Job's
outcome; a failed restore needs nothing done (the web pod ran ``-i base`` after its wait),
a failed build is tried again by the next create of that image. Events on the tenant.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from saasodoo.backups import Backups
from saasodoo.backups.jobs import backup_container, template_build_job, template_cleanup_job
from saasodoo.backups.service import list_store
from saasodoo.core import copies
from saasodoo.core import templates as tpl
from saasodoo.core.spec import COMPONENT_LABEL, TENANT_LABEL, TenantSpec, namespace_for
from saasodoo.core.values import backup_storage, get_path, helm_merge
from saasodoo.errors import Conflict, NotFound, SaasodooError

if TYPE_CHECKING:
    from saasodoo.operator.controller import TenantController
    from saasodoo.tenants import Tenants

log = logging.getLogger(__name__)

#: Seconds a template found in S3 is taken as there without listing again.
FOUND_SECONDS = 300.0
#: Seconds a template found missing is taken as missing (its build may store it meanwhile).
MISSING_SECONDS = 10.0
#: Seconds new tenants of a key take the ``-i base`` path without asking S3 again after
#: the templates could not be read (no key pair, S3 refusing or unreachable).
UNREADABLE_SECONDS = 60.0
#: How often a tenant whose template restore or build runs is looked at (seconds).
FOLLOW_SECONDS = 1.0
#: Once Ready, how often a build still running is looked at (seconds).
BUILD_FOLLOW_SECONDS = 10.0


@dataclass(frozen=True)
class TemplatePlan:
    """A new tenant's template: its ``key``, where templates are (``where``: the tenant's
    ``core.values.backup_storage``) and the newest template zip (``backup``; None: none
    yet, so the tenant runs ``-i base`` and builds it)."""

    key: str
    where: dict[str, str]
    backup: str | None


class TemplateCreates:
    """The templated creates of ``controller``'s OdooTenants (module docstring)."""

    def __init__(self, controller: TenantController, backups: Backups | None = None) -> None:
        self.controller = controller
        self.tenants = controller.tenants
        self.ctx = controller.ctx
        self.backups = backups or Backups(self.ctx.settings, kube=self.ctx.kube)
        self._listed: dict[str, tuple[float, str | None]] = {}
        self._unreadable: dict[str, float] = {}  # key -> when its listing last failed
        self._builds: dict[str, tuple[str, str]] = {}  # key -> (namespace, Job) started here

    # -- which template ----------------------------------------------------------------

    def plan(self, spec: TenantSpec) -> TemplatePlan | None:
        """The template of the new tenant ``spec`` (module docstring); None when templates
        do not apply to it, or the storage cannot be read now (logged: ``-i base`` then)."""
        settings = self.ctx.settings
        if not settings.templates or spec.copy_of is not None:
            return None
        values = self.tenants.values_for(spec).values
        local = self.tenants.local_chart()
        merged = helm_merge(local[1], values) if local else values
        where = backup_storage(merged)
        if where["type"] != "s3" or get_path(merged, "backup.enabled") is False:
            return None
        try:
            key = tpl.template_key(merged)
        except ValueError as exc:
            log.warning("tenant %s: no template: %s", spec.id, exc)
            return None
        failed = self._unreadable.get(key)
        if failed is not None and time.monotonic() - failed < UNREADABLE_SECONDS:
            return None
        try:
            backup = self.newest(key, where)
        except SaasodooError as exc:  # no key pair, S3 refusing or unreachable
            self._unreadable[key] = time.monotonic()
            log.warning("tenant %s: templates not readable (%s): -i base for %.0f s",
                        spec.id, exc.message, UNREADABLE_SECONDS)  # fmt: skip
            return None
        self._unreadable.pop(key, None)
        return TemplatePlan(key, where, backup)

    def newest(self, key: str, where: dict[str, str]) -> str | None:
        """The newest complete template zip of ``key`` (None: none), from the listing kept
        ``FOUND_SECONDS``/``MISSING_SECONDS``. Conflict (no platform key pair), StorageError
        and StorageUnavailable from S3."""
        now = time.monotonic()
        seen = self._listed.get(key)
        if seen is not None:
            at, name = seen
            if now - at < (FOUND_SECONDS if name else MISSING_SECONDS):
                return name
        name = self.list_newest(key, where)
        self._listed[key] = (now, name)
        return name

    def list_newest(self, key: str, where: dict[str, str]) -> str | None:
        """The newest complete zip of ``templates/<key>`` in S3 (None: none), listed now
        with the platform's key pair (``Backups.platform_store``)."""
        stored = list_store(self.backups.platform_store(tpl.template_folder(key), where))
        return stored[-1].name if stored else None

    # -- a templated create ------------------------------------------------------------

    async def create_from(
        self, obj: dict[str, Any], spec: TenantSpec, plan: TemplatePlan, placed: Tenants,
        owner: str | None,
    ) -> dict[str, Any]:  # fmt: skip
        """Install the tenant made from ``plan``'s template and start its restore Job;
        ``status.template`` to write (state ``restoring``). SaasodooError from the install
        (the caller reports it); a restore Job that cannot be created is logged and left
        to the web pod's fallback (``-i base`` after its wait)."""
        assert plan.backup is not None
        await placed.create(spec, owner=owner, wait=False, template=plan.key)
        job = tpl.restore_job_name(spec.id)
        progress = {"key": plan.key, "backup": plan.backup, "job": job,
                    "state": tpl.RESTORING, "startedAt": now()}  # fmt: skip
        try:
            cronjob = await asyncio.to_thread(self.backups.cronjob, spec.id)
            body = self.backups.jobs.restore_job(
                spec.id, cronjob, plan.backup, mode="restore", drop_previous=True,
                source_tenant=tpl.template_folder(plan.key),
            )  # fmt: skip
            body["metadata"]["name"] = job
            body["spec"]["ttlSecondsAfterFinished"] = 3600
            reserve_little(body)
            wait_longer_for_the_server(body)
            await asyncio.to_thread(self.create_job, body)
        except SaasodooError as exc:
            log.warning("tenant %s: template restore not started: %s", spec.id, exc.message)
            self.event(obj, "Warning", "TemplateRestoreFailed", f"restore of the template "
                       f"{plan.key} not started: {exc.message}; Odoo runs -i base")  # fmt: skip
            self._listed.pop(plan.key, None)
            return {**progress, "state": tpl.FELL_BACK, "message": exc.message[:1024]}
        self.event(obj, "Normal", "TemplateRestoring",
                   f"made from the template {plan.key} ({plan.backup})")  # fmt: skip
        return progress

    # -- a template build --------------------------------------------------------------

    async def build(self, obj: dict[str, Any], spec: TenantSpec, plan: TemplatePlan) -> (
        dict[str, Any] | None
    ):  # fmt: skip
        """Start the build of ``plan.key`` in the new tenant ``spec``'s namespace unless a
        build of it started here still runs; ``status.template`` to write (state
        ``building``), None when none was started."""
        running = self._builds.get(plan.key)
        if running is not None and await asyncio.to_thread(self.job_state, *running) == (
            copies.RUNNING
        ):  # fmt: skip
            return None
        self._builds.pop(plan.key, None)
        name = tpl.build_job_name(plan.key)
        try:
            body = await asyncio.to_thread(self.build_job, spec.id, spec.namespace, plan.key, name)
            await asyncio.to_thread(self.create_job, body)
        except (SaasodooError, ValueError) as exc:
            why = exc.message if isinstance(exc, SaasodooError) else str(exc)
            log.warning("tenant %s: template %s not built: %s", spec.id, plan.key, why)
            self.event(obj, "Warning", "TemplateBuildFailed", f"template {plan.key} not built "
                       f"here: {why}")  # fmt: skip
            return None
        self._builds[plan.key] = (spec.namespace, name)
        self.event(obj, "Normal", "TemplateBuilding", f"building the template {plan.key} "
                   f"(job {name}): the next tenants of this image are made from it")  # fmt: skip
        return {"key": plan.key, "job": name, "state": tpl.BUILDING, "startedAt": now()}

    def build_job(self, tenant_id: str, namespace: str, key: str, name: str) -> dict[str, Any]:
        """The build Job of ``key`` named ``name`` from the tenant's web Deployment and backup
        CronJob (``backups.jobs.template_build_job``)."""
        kube = self.ctx.kube
        selector = f"{COMPONENT_LABEL}=odoo,{TENANT_LABEL}={tenant_id}"
        path = f"/apis/apps/v1/namespaces/{namespace}/deployments"
        found = kube.list_items(f"list deployments of {namespace}", path, selector)
        if not found:
            raise NotFound(f"the tenant has no web Deployment ({selector})")
        cronjob = self.backups.cronjob(tenant_id)
        admin = self.backups.jobs.admin_env(namespace, backup_container(cronjob))
        if not admin:
            raise Conflict("a template is built on the chart's own PostgreSQL (its superuser "
                           "creates the scratch database)")  # fmt: skip
        return template_build_job(found[0], cronjob, key, name, admin)

    # -- following -------------------------------------------------------------------

    def follow(
        self, obj: dict[str, Any], ready: bool
    ) -> tuple[dict[str, Any] | None, float | None]:
        """``status.template`` advanced from its Job (None: unchanged) and when to look
        again (None: nothing left to follow; while a restore runs, every
        ``FOLLOW_SECONDS``; a build of a Ready tenant, every ``BUILD_FOLLOW_SECONDS``)."""
        progress = dict((obj.get("status") or {}).get("template") or {})
        state = str(progress.get("state") or "")
        if state not in (tpl.RESTORING, tpl.BUILDING):
            return None, None
        name = obj["metadata"]["name"]
        namespace = namespace_for(name)
        seen = self.job_state(namespace, str(progress.get("job") or ""))
        after = tpl.job_outcome(state, seen)
        if after is None:
            if state == tpl.RESTORING or not ready:
                return None, FOLLOW_SECONDS
            return None, BUILD_FOLLOW_SECONDS
        progress.update(state=after, finishedAt=now())
        key = str(progress.get("key") or "")
        if after == tpl.FELL_BACK:
            progress["message"] = f"the restore job {progress.get('job')} {seen}: initialized " \
                                  "with -i base"  # fmt: skip
            self.event(obj, "Warning", "TemplateRestoreFailed", progress["message"])
            self._listed.pop(key, None)
        elif after == tpl.RESTORED:
            self.event(obj, "Normal", "TemplateRestored", f"made from the template {key}")
        elif after == tpl.BUILT:
            self._listed.pop(key, None)
            self._builds.pop(key, None)
            self.event(obj, "Normal", "TemplateBuilt", f"template {key} stored")
        else:
            self._builds.pop(key, None)
            progress["message"] = f"the build job {progress.get('job')} {seen}"
            cleanup = self.clean_up(name, namespace, key, str(progress.get("job") or ""))
            if cleanup:
                progress["message"] += f"; job {cleanup} drops its scratch database and role"
            self.event(obj, "Warning", "TemplateBuildFailed", progress["message"])
        return progress, None

    def clean_up(self, tenant_id: str, namespace: str, key: str, build: str) -> str | None:
        """Start the cleanup after the failed build ``build`` of ``key`` in the tenant's
        namespace (``backups.jobs.template_cleanup_job``): its Job's name, None when it
        could not be made (logged; the scratch database and the build's role stay until an
        SRE drops them, see the README)."""
        name = f"{build[:52]}-cleanup"
        try:
            body = self.build_job(tenant_id, namespace, key, build)
            self.create_job(template_cleanup_job(body, name))
        except (SaasodooError, ValueError) as exc:
            why = exc.message if isinstance(exc, SaasodooError) else str(exc)
            log.warning("tenant %s: no cleanup after the failed build %s: %s", tenant_id,
                        build, why)  # fmt: skip
            return None
        return name

    def job_state(self, namespace: str, job: str) -> str:
        try:
            found = self.ctx.kube.read_job(namespace, job)
        except NotFound:
            return copies.ABSENT
        return copies.job_state([(c.type, c.status) for c in found.conditions])

    def create_job(self, body: dict[str, Any]) -> None:
        try:
            self.ctx.kube.create_job(body)
        except Conflict:
            pass  # created by an earlier turn

    def event(self, obj: dict[str, Any], kind: str, reason: str, note: str) -> None:
        self.controller.event(obj, kind, reason, note, "Template")


#: The CPU a templated create's restore Job reserves (``resources.requests.cpu`` of its
#: containers; their limits are the CronJob's).
RESTORE_CPU_REQUEST = "10m"


def reserve_little(job: dict[str, Any]) -> None:
    """The restore Job of a templated create reserves ``RESTORE_CPU_REQUEST`` of CPU: it runs
    seconds beside the tenant's first start, and a pod reserving the backup CronJob's
    request would wait for room on a full node (or take it from the tenant's own pods, which
    then wait for it). Its limit stays, so it cannot take more than a backup does."""
    pod = job["spec"]["template"]["spec"]
    for container in (pod.get("initContainers") or []) + (pod.get("containers") or []):
        requests = container.setdefault("resources", {}).setdefault("requests", {})
        requests["cpu"] = RESTORE_CPU_REQUEST


#: Seconds the restore of a templated create retries its first connection to PostgreSQL
#: (SAASODOO_CONNECT_RETRY_SECONDS; the CronJob's is 30). It starts with the tenant's
#: PostgreSQL, whose first start (its image pulled on a new node, initdb, the init scripts on
#: a temporary server, five at once on a busy node) can take tens of seconds: the restore
#: must outlast it, and a restore that cannot still gives up within the web pod's wait
#: (odoo.dbInit.template.waitSeconds, 60 s), which then falls back to `-i base`. (Chart
#: 0.2 clients also met a cached NXDOMAIN for the headless Service's name, up to 30 s.)
RESTORE_CONNECT_RETRY_SECONDS = 45


def wait_longer_for_the_server(job: dict[str, Any]) -> None:
    """Set SAASODOO_CONNECT_RETRY_SECONDS of the restore Job's containers to
    ``RESTORE_CONNECT_RETRY_SECONDS``."""
    pod = job["spec"]["template"]["spec"]
    for container in (pod.get("initContainers") or []) + (pod.get("containers") or []):
        env = [e for e in container.get("env") or []
               if e.get("name") != "SAASODOO_CONNECT_RETRY_SECONDS"]  # fmt: skip
        env.append({"name": "SAASODOO_CONNECT_RETRY_SECONDS",
                    "value": str(RESTORE_CONNECT_RETRY_SECONDS)})  # fmt: skip
        container["env"] = env


def now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
