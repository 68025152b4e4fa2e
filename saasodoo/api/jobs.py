"""Long operations (install, upgrade, delete...) run here so no request waits for them.

A bounded thread pool runs each job's coroutine with ``asyncio.run``; the request answers
202 with the job's URL at once. Job records live in memory (one API process; they are a
view of work in flight, the cluster stays the source of truth): id, kind, tenant, owner,
state, result or error. One job per tenant at a time (fleet-wide jobs, which belong to no
tenant, take the ``FLEET`` key instead: one at a time); a full queue answers 503.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import uuid
from collections import OrderedDict
from collections.abc import Callable, Coroutine
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from saasodoo.errors import Conflict, InvalidInput, SaasodooError

log = logging.getLogger(__name__)

Work = Callable[[], Coroutine[Any, Any, Any]]

#: Exclusivity key of fleet-wide jobs (not a valid tenant id, so it never clashes with one).
FLEET = "(fleet)"


class Busy(SaasodooError):
    """Too many operations queued; retry later."""

    http_status = 503
    retryable = True


class JobState(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"


def _now() -> datetime:
    return datetime.now(UTC)


@dataclass
class Job:
    id: str
    kind: str
    owner: str
    tenant_id: str | None
    state: JobState = JobState.QUEUED
    created_at: datetime = field(default_factory=_now)
    updated_at: datetime = field(default_factory=_now)
    result: Any = None
    error: dict[str, Any] | None = None
    #: What the job holds exclusively while active: its tenant, or ``FLEET``.
    key: str | None = None

    @property
    def active(self) -> bool:
        return self.state in (JobState.QUEUED, JobState.RUNNING)

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "kind": self.kind,
            "tenant_id": self.tenant_id,
            "state": self.state.value,
            "created_at": self.created_at.isoformat(),
            "updated_at": self.updated_at.isoformat(),
            "result": self.result,
            "error": self.error,
            "status_url": f"/api/jobs/{self.id}",
        }


def error_body(exc: SaasodooError) -> dict[str, Any]:
    body: dict[str, Any] = {"status": "error", "message": exc.message}
    if isinstance(exc, InvalidInput):
        body["fields"] = [{"field": f.field, "message": f.message} for f in exc.fields]
    return body


class JobRunner:
    def __init__(self, workers: int = 4, max_pending: int = 64, keep: int = 1000) -> None:
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="saasodoo-job")
        self._jobs: OrderedDict[str, Job] = OrderedDict()
        self._lock = threading.Lock()
        self._max_pending = max_pending
        self._keep = keep

    def submit(
        self,
        kind: str,
        owner: str,
        tenant_id: str | None,
        work: Work,
        result: Callable[[Any], Any] = lambda r: r,
        key: str | None = None,
    ) -> Job:
        """Queue ``work``; ``result`` turns its return value into JSON-able data.

        ``key`` (default: the tenant) is held exclusively while the job is active."""
        key = key or tenant_id
        job = Job(id=uuid.uuid4().hex, kind=kind, owner=owner, tenant_id=tenant_id, key=key)
        with self._lock:
            active = [j for j in self._jobs.values() if j.active]
            if key and any(j.key == key for j in active):
                if key == FLEET:
                    raise Conflict("a fleet operation is in progress")
                raise Conflict(f"tenant '{tenant_id}' has an operation in progress")
            if len(active) >= self._max_pending:
                raise Busy("too many operations in progress, retry later")
            self._jobs[job.id] = job
            self._prune()
        self._pool.submit(self._run, job, work, result)
        return job

    def get(self, job_id: str) -> Job | None:
        with self._lock:
            return self._jobs.get(job_id)

    def active_for(self, tenant_id: str) -> Job | None:
        with self._lock:
            return next(
                (j for j in self._jobs.values() if j.tenant_id == tenant_id and j.active), None
            )

    def latest_for(self, tenant_id: str) -> Job | None:
        """The tenant's most recent job, finished or not (the web UI shows how it ended)."""
        with self._lock:
            return next(
                (j for j in reversed(self._jobs.values()) if j.tenant_id == tenant_id), None
            )

    def wait_idle(self, timeout: float) -> bool:
        """Whether every job finished within ``timeout`` seconds (tests, shutdown)."""
        deadline = _now().timestamp() + timeout
        while _now().timestamp() < deadline:
            with self._lock:
                if not any(j.active for j in self._jobs.values()):
                    return True
            threading.Event().wait(0.2)
        return False

    def shutdown(self, wait: bool = True) -> None:
        self._pool.shutdown(wait=wait, cancel_futures=not wait)

    def _set(self, job: Job, state: JobState, **changes: Any) -> None:
        with self._lock:
            job.state = state
            job.updated_at = _now()
            for key, value in changes.items():
                setattr(job, key, value)

    def _run(self, job: Job, work: Work, result: Callable[[Any], Any]) -> None:
        self._set(job, JobState.RUNNING)
        try:
            value = result(asyncio.run(work()))
        except SaasodooError as exc:
            log.info("job %s (%s %s) failed: %s", job.id, job.kind, job.tenant_id, exc.message)
            body = {**error_body(exc), "status_code": exc.http_status}
            self._set(job, JobState.FAILED, error=body)
        except Exception:  # noqa: BLE001 - recorded without details, logged with them
            log.exception("job %s (%s %s) crashed", job.id, job.kind, job.tenant_id)
            body = {"status": "error", "message": "internal error", "status_code": 500}
            self._set(job, JobState.FAILED, error=body)
        else:
            self._set(job, JobState.SUCCEEDED, result=value)

    def _prune(self) -> None:
        finished = [j.id for j in self._jobs.values() if not j.active]
        for job_id in finished[: max(0, len(self._jobs) - self._keep)]:
            del self._jobs[job_id]
