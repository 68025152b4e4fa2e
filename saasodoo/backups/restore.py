"""The restore choreography: stop Odoo, run the restore Job, recover if it died, give Odoo its
replicas back and wait until it is Ready again (the restore is complete only then).

Odoo starts again only on data known to be consistent: untouched (the Job never ran),
restored, or put right by a recovery (``restore.py --recover``); otherwise it stays at zero
and the error says how to go on. The replicas to give back are noted on each Deployment
(``REPLICAS_ANNOTATION``) with the generation of the very patch that scales it to zero, so a
restore after a failed one gives back the tenant's size, not zero, unless something (a helm
upgrade, ``tenant resume``) changed the Deployment since. All cluster calls go through
``saasodoo.adapters.kube``.
"""

from __future__ import annotations

import logging
import time
from dataclasses import replace
from typing import Any, Protocol

from saasodoo.adapters.kube import Deployment, Kube
from saasodoo.backups.jobs import JOB_LABEL, JobRunner, job_timeout
from saasodoo.backups.results import JobOutcome, RestoreResult
from saasodoo.core.spec import COMPONENT_LABEL
from saasodoo.errors import Conflict, InvalidInput, SaasodooError, TransientClusterError

log = logging.getLogger(__name__)

#: On Odoo's Deployments while a restore has them at zero: the replicas to give back (a
#: restore after a failed one must not take zero for the tenant's size).
REPLICAS_ANNOTATION = "saasodoo.dev/replicas-before-restore"
#: How long a recovery Job may take (it renames directories and drops scratch copies).
RECOVER_SECONDS = 600
#: The components whose pods use the database and the filestore (stopped during a restore).
ODOO_COMPONENTS = ("odoo", "cron")
#: Seconds Odoo's pods get to go away once scaled to zero.
STOP_SECONDS = 300
#: Seconds Odoo gets to be Ready again once scaled back (its init container, start-up probe).
READY_SECONDS = 600
#: Seconds between two progress lines while waiting for Odoo.
PROGRESS_SECONDS = 15


class RunJob(Protocol):
    """Runs a Job body to its end (``JobRunner.run``, or the ``Backups.run_job`` facade)."""

    def __call__(self, body: dict[str, Any], *, timeout: float) -> JobOutcome: ...


class RestoreChoreography:
    """One tenant's restore, from stopping Odoo to starting it again."""

    def __init__(
        self, kube: Kube, jobs: JobRunner, run_job: RunJob, *, poll_seconds: float = 1.0
    ) -> None:
        self.kube = kube
        self.jobs = jobs
        self.run_job = run_job
        self.poll_seconds = poll_seconds

    def run(
        self,
        tenant_id: str,
        cronjob: dict[str, Any],
        backup: str | None,
        *,
        drop_previous: bool = False,
        timeout: float | None = None,
        source_tenant: str | None = None,
        as_copy: bool = False,
    ) -> RestoreResult:
        """Scale Odoo to zero, restore ``backup`` (default: the newest), scale Odoo back and
        return once its Deployments are Ready again (``READY_SECONDS`` at most), with the
        seconds that took in the result. ``source_tenant``: the backup is that tenant's, read
        from its folder of the S3 storage (a staging copy's refresh: restore.py
        ``--source-tenant``); ``as_copy``: restored as a copy whatever its manifest says
        (``--as-copy``). Conflict when a restore of the tenant is running;
        SaasodooError when the restore failed (saying whether the previous data is live,
        recovered, or Odoo left stopped) or Odoo is not Ready in time (the data restored)."""
        namespace = cronjob["metadata"]["namespace"]
        body = self.jobs.restore_job(
            tenant_id, cronjob, backup, mode="restore", drop_previous=drop_previous,
            source_tenant=source_tenant, as_copy=as_copy,
        )  # fmt: skip
        if any(self.running_restores(namespace)):
            raise Conflict(f"a restore of '{tenant_id}' is already running")
        deployments = self.odoo_deployments(namespace)
        replicas = {name: count for name, (count, _) in deployments.items()}
        log.info("restore of %s: scaling Odoo to zero (%s)", tenant_id, replicas)
        # Odoo starts again only on data known to be consistent: untouched (the Job never
        # ran), restored, or put right by a recovery. Otherwise it stays at zero.
        safe = True
        outcome = recovered = None
        try:
            for name, (count, generation) in deployments.items():
                # Noted with the generation this very update gives the Deployment (one patch,
                # one increment): trusted later only if nothing changed it since (a helm
                # upgrade, `tenant resume`).
                self.set_odoo_replicas(namespace, name, 0, f"{count}@{generation + 1}")
            self.wait_no_odoo_pods(namespace, timeout=STOP_SECONDS)
            safe = False
            outcome = self.run_job(body, timeout=job_timeout(cronjob, timeout))
            # A RESULT line means restore.py ended on its own terms, having switched over or
            # cleaned up; without one it died (killed, evicted, deadline), maybe mid-switch.
            safe = outcome.succeeded or outcome.result is not None
            if not safe:
                log.warning("restore job %s died (%s): recovering", outcome.name, outcome.reason)
                recovered = self.recover(tenant_id, cronjob, outcome.name)
                safe = recovered.succeeded
        finally:
            if safe:
                for name, count in replicas.items():
                    self.set_odoo_replicas(namespace, name, count, None)
        assert outcome is not None
        error = (outcome.result or {}).get("error") or outcome.reason
        if recovered is not None and not recovered.succeeded:
            raise SaasodooError(
                f"restore of '{tenant_id}' failed (job {outcome.name}: {error}) and so did its "
                f"recovery (job {recovered.name}: {recovered.reason}); Odoo is left stopped: "
                "`saasodoo backup restore` recovers first, then restores; "
                f"`saasodoo tenant resume {tenant_id}` starts Odoo again"
            )
        if recovered is not None:
            what = (recovered.result or {}).get("recovered") or "the data is consistent"
            raise SaasodooError(
                f"restore of '{tenant_id}' failed (job {outcome.name}: {error}); "
                f"recovered by job {recovered.name} ({what}); Odoo started again"
            )
        result = RestoreResult(tenant_id, backup, outcome, replicas)
        if not result.ok and (outcome.result or {}).get("refused"):
            # restore.py refused the backup before touching anything (its member names, another
            # Odoo series): bad input, as the same refusals made from here are
            raise InvalidInput(f"restore of '{tenant_id}' refused (job {outcome.name}): {error}")
        if not result.ok:
            raise SaasodooError(
                f"restore of '{tenant_id}' failed (job {outcome.name}): {error}; "
                "the previous data is still live"
            )
        try:
            seconds = self.wait_odoo_ready(namespace, replicas, timeout=READY_SECONDS)
        except TransientClusterError as exc:
            raise SaasodooError(
                f"restore of '{tenant_id}' done (job {outcome.name}), but {exc}; "
                f"`saasodoo tenant status {tenant_id}` says why"
            ) from exc
        return replace(result, ready_seconds=seconds)

    def recover(self, tenant_id: str, cronjob: dict[str, Any], died: str) -> JobOutcome:
        """Run `restore.py --recover` once the dead restore's pod is gone (restore.py's
        filestore lock also makes the recovery wait for it)."""
        namespace = cronjob["metadata"]["namespace"]
        deadline = time.monotonic() + RECOVER_SECONDS
        while True:
            pods = self.kube.list_pods(namespace, f"job-name={died}")
            if all(p.finished for p in pods):
                break
            if time.monotonic() > deadline:
                raise TransientClusterError(f"pods of job {namespace}/{died} still running")
            time.sleep(self.poll_seconds)
        body = self.jobs.restore_job(tenant_id, cronjob, None, mode="recover")
        body["spec"]["activeDeadlineSeconds"] = RECOVER_SECONDS
        return self.run_job(body, timeout=RECOVER_SECONDS + 60)

    def set_odoo_replicas(self, namespace: str, name: str, count: int, note: str | None) -> None:
        """Scale an Odoo Deployment and set (or, with None, remove) the replicas note; Helm
        stays the owner of ``.spec.replicas`` (see ``Kube.scale_deployment``)."""
        self.kube.scale_deployment(namespace, name, count, {REPLICAS_ANNOTATION: note})

    def odoo_deployments(self, namespace: str) -> dict[str, tuple[int, int]]:
        """Odoo's Deployments: name -> (replicas to give back after a restore, generation)."""
        selector = f"{COMPONENT_LABEL} in ({','.join(ODOO_COMPONENTS)})"
        return {
            d.name: (replicas_before(d), d.generation)
            for d in self.kube.list_deployments(namespace, selector)
        }

    def running_restores(self, namespace: str) -> list[str]:
        """Restore and recovery Jobs of the namespace still running."""
        jobs = self.kube.list_jobs(namespace, f"{JOB_LABEL} in (restore,recover)")
        return [j.name for j in jobs if j.active]

    def wait_odoo_ready(self, namespace: str, replicas: dict[str, int], timeout: float) -> float:
        """Return the seconds until every Deployment of ``replicas`` (name -> count) is Ready
        with its count (``Deployment.ready``; one at zero is at once), logging progress every
        ``PROGRESS_SECONDS``; TransientClusterError naming the ones not Ready after
        ``timeout`` seconds."""
        start = time.monotonic()
        said = start
        while True:
            found = {d.name: d for d in self.kube.list_deployments(namespace, _odoo_selector())}
            waiting = {
                name: f"{found[name].ready_replicas if name in found else 0}/{count} ready"
                for name, count in replicas.items()
                if count and not (name in found and found[name].ready)
            }
            now = time.monotonic()
            if not waiting:
                log.info("%s: Odoo Ready again after %.0fs", namespace, now - start)
                return round(now - start, 1)
            if now - start > timeout:
                raise TransientClusterError(
                    f"Odoo of {namespace} not Ready after {timeout:.0f}s ({_listing(waiting)})"
                )
            if now - said >= PROGRESS_SECONDS:
                log.info("%s: waiting for Odoo to be Ready (%s)", namespace, _listing(waiting))
                said = now
            time.sleep(self.poll_seconds)

    def wait_no_odoo_pods(self, namespace: str, timeout: float) -> None:
        """Return once no Odoo pod is left running (a finished one, such as a staging copy's
        neutralize Job's, made from the web pod's template, holds nothing);
        TransientClusterError after ``timeout`` seconds."""
        selector = f"{COMPONENT_LABEL} in ({','.join(ODOO_COMPONENTS)})"
        deadline = time.monotonic() + timeout
        while True:
            if not [p for p in self.kube.list_pods(namespace, selector) if not p.finished]:
                return
            if time.monotonic() > deadline:
                raise TransientClusterError(
                    f"Odoo pods of {namespace} still there after {timeout:.0f}s"
                )
            time.sleep(self.poll_seconds)


def _odoo_selector() -> str:
    return f"{COMPONENT_LABEL} in ({','.join(ODOO_COMPONENTS)})"


def _listing(waiting: dict[str, str]) -> str:
    return ", ".join(f"{name} {state}" for name, state in sorted(waiting.items()))


def replicas_before(deployment: Deployment) -> int:
    """Odoo's replicas to give back after a restore: the Deployment's, or, when a restore that
    failed left it at zero untouched since, what that restore noted."""
    count = deployment.replicas
    note = deployment.annotations.get(REPLICAS_ANNOTATION) or ""
    noted, _, generation = note.partition("@")
    if count == 0 and noted.isdigit() and generation == str(deployment.generation):
        return int(noted)
    return count
