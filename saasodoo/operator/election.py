"""Leader election on a ``coordination.k8s.io/v1`` Lease: one active operator replica.

client-go's ``tools/leaderelection`` protocol, thread-based:

- A candidate reads the Lease every ``retry_period`` seconds. It may take it when it is
  absent (create), has no holder (released), or was not renewed for ``leaseDurationSeconds``
  *as measured on the candidate's own clock* since it last saw the record change (client-go's
  ``observedTime``: no trust in other machines' clocks). Every write is a replace carrying the
  ``resourceVersion`` just read (optimistic concurrency: of two candidates only one wins,
  the other gets 409 and stays a follower).
- The leader renews every ``retry_period``. Leadership ends **the moment** it cannot be
  kept: when a read shows another holder (the Lease was taken over), or when no renewal
  succeeded within ``renew_deadline`` (a watchdog thread fires at the deadline even while a
  renewal request hangs). Since ``renew_deadline < lease_duration``, the old leader has
  stopped before any standby may take the Lease.
- Each leadership term has its own ``threading.Event`` (the *term*), set when the term ends:
  ``on_started_leading(term)`` runs on a thread of its own and its work must check the
  term (or wait on it) and stop when it is set; ``on_stopped_leading()`` is called once the
  term has ended. ``leading`` is set while leader (readiness may be gated on it).
- ``stop()`` (graceful) ends the term at once, waits for ``on_started_leading`` to return,
  then **releases** the Lease as client-go's ``ReleaseOnCancel`` does (no holder,
  ``leaseDurationSeconds`` 1, ``renewTime`` now), so a standby takes over within one retry
  period; a Lease request of the campaign's thread still in flight is not waited for. A
  process killed without ``stop()`` (SIGKILL) does not release: a standby takes over once
  ``lease_duration`` has passed without a renewal.

Defaults are client-go's: lease 15 s, renew deadline 10 s, retry 2 s (seconds throughout).
Identity: ``POD_NAME`` (the downward API) or ``<host>:<pid>``.

Why not ``kubernetes.leaderelection.LeaderElection``: its ``run()`` blocks for ever, it has
no stop and no release on shutdown, and it notices a lost Lease only after the renew
deadline. Why not its ``LeaseLock`` for the record: its requests have no timeout (a hung API
server would hold the renewal past the deadline), it does not keep ``leaseTransitions``,
it binds the default global ApiClient, and it turns every error into ``False``. The Lease is
read and replaced here with ``CoordinationV1Api`` directly, every request bounded by
``request_timeout``.

This module imports the official client directly, as an adapter does: it is client plumbing.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from kubernetes import client
from kubernetes.client.rest import ApiException

log = logging.getLogger(__name__)

DEFAULT_LEASE_DURATION = 15
DEFAULT_RENEW_DEADLINE = 10.0
DEFAULT_RETRY_PERIOD = 2.0
#: client-go's JitterFactor: the renew deadline must exceed 1.2 retry periods.
JITTER_FACTOR = 1.2
STOPPING = "stopping"


def default_identity() -> str:
    """``POD_NAME`` if set (the pod's name from the downward API), else ``<host>:<pid>``."""
    return os.environ.get("POD_NAME") or f"{socket.gethostname()}:{os.getpid()}"


def micro_now() -> datetime:
    """Now in UTC, for a Lease's MicroTime fields. The client writes ``isoformat()``, which
    drops a zero microsecond, and the API server parses MicroTime with a fixed 6-digit
    fraction: avoid the zero."""
    now = datetime.now(UTC)
    return now if now.microsecond else now.replace(microsecond=1)


class LeaderElector:
    """One candidate for the Lease ``namespace/name`` (module docstring for the protocol).

    ``lease_duration`` (whole seconds, written to the Lease), ``renew_deadline`` and
    ``retry_period`` are seconds with client-go's constraints: lease > deadline > 1.2 × retry.
    ``request_timeout`` bounds each API request (default: half the renew deadline).
    """

    def __init__(
        self,
        api_client: client.ApiClient,
        name: str,
        namespace: str,
        *,
        identity: str | None = None,
        lease_duration: int = DEFAULT_LEASE_DURATION,
        renew_deadline: float = DEFAULT_RENEW_DEADLINE,
        retry_period: float = DEFAULT_RETRY_PERIOD,
        request_timeout: float | None = None,
        on_started_leading: Callable[[threading.Event], None] | None = None,
        on_stopped_leading: Callable[[], None] | None = None,
    ) -> None:
        if retry_period <= 0:
            raise ValueError(f"retry_period must be > 0 seconds, got {retry_period}")
        if renew_deadline <= JITTER_FACTOR * retry_period:
            raise ValueError(
                f"renew_deadline must be > {JITTER_FACTOR} x retry_period, "
                f"got {renew_deadline} and {retry_period}"
            )
        if int(lease_duration) != lease_duration or lease_duration <= renew_deadline:
            raise ValueError(
                f"lease_duration must be whole seconds > renew_deadline, "
                f"got {lease_duration} and {renew_deadline}"
            )
        self.name = name
        self.namespace = namespace
        self.identity = identity or default_identity()
        self.lease_duration = int(lease_duration)
        self.renew_deadline = renew_deadline
        self.retry_period = retry_period
        self.request_timeout = request_timeout or renew_deadline / 2
        self.on_started_leading = on_started_leading
        self.on_stopped_leading = on_stopped_leading
        #: Set while this candidate leads.
        self.leading = threading.Event()
        #: Leadership terms this candidate began.
        self.terms = 0
        self._api = client.CoordinationV1Api(api_client)
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._work: threading.Thread | None = None
        self._term: threading.Event | None = None
        #: Set by ``stop()`` once the work of the term it ended has returned: from then on
        #: the Lease may be released, by ``stop()`` or by the campaign's thread.
        self._work_done = threading.Event()
        #: Whether ``stop()`` ended a term (its thread may not release before
        #: ``_work_done``), and whether it was asked to release the Lease at all (not: as
        #: after a SIGKILL, the Lease expires).
        self._stopped_a_term = False
        self._release_on_stop = True
        self._last_renew = 0.0
        # The last record read or written, and when (monotonic) it was first seen.
        self._observed: tuple[Any, ...] | None = None
        self._observed_at = 0.0
        self._holder: str | None = None
        self._transitions = 0

    # -- what others read --------------------------------------------------------------

    @property
    def is_leader(self) -> bool:
        return self.leading.is_set()

    def holder(self) -> str | None:
        """The Lease's holder as last read or written by this candidate (None: no holder)."""
        return self._holder

    @property
    def transitions(self) -> int:
        """The Lease's ``leaseTransitions`` as last seen: how often its holder changed."""
        return self._transitions

    @property
    def term(self) -> threading.Event | None:
        """The current term's event (set when the term ends), None when not leading."""
        return self._term

    # -- lifecycle ---------------------------------------------------------------------

    def start(self) -> None:
        """Campaign and, once leader, renew, on a daemon thread (``election-<identity>``)."""
        if self._thread is not None:
            raise RuntimeError(f"elector {self.identity} already started")
        self._thread = threading.Thread(
            target=self._run, name=f"election-{self.identity}", daemon=True
        )
        self._thread.start()

    def stop(self, *, release: bool = True, timeout: float = 30.0) -> None:
        """Stop campaigning and end the term at once (its work is told to stop); wait up to
        ``timeout`` seconds for ``on_started_leading`` to return, then, with ``release``,
        release the Lease. Work that did not return in time keeps the Lease unreleased (it
        expires after ``lease_duration``), so no standby starts beside it. The campaign's
        thread is not waited for first: a Lease request of it in flight on a busy API server
        took up to two request timeouts and a retry period (5 s in the bench), and the
        release cannot be undone by it (its replace carries the resourceVersion it read
        before, so it gets 409; one that read the released Lease and took it again releases
        it itself, the work being done)."""
        with self._lock:
            self._stopping.set()
            term = self._term
            self._stopped_a_term = term is not None
            self._release_on_stop = release
        thread = self._thread
        if term is None:
            if thread is not None:  # it releases a Lease it takes while stopping
                thread.join(self.request_timeout * 2 + self.retry_period)
            return
        self._end_term(term, STOPPING)
        work = self._work
        if work is not None and work is not threading.current_thread():
            work.join(timeout)
            if work.is_alive():
                log.warning(
                    "%s: the leader's work did not stop within %.0f s: Lease %s/%s not released",
                    self.identity,
                    timeout,
                    self.namespace,
                    self.name,
                )
                return
        self._work_done.set()
        if release:
            self.release()
        if thread is not None:
            thread.join(self.request_timeout * 2 + self.retry_period)

    def release(self) -> bool:
        """Give the Lease up if this candidate holds it (client-go ``ReleaseOnCancel``: no
        holder, ``leaseDurationSeconds`` 1, ``renewTime`` now). True if released."""
        try:
            lease = self._read()
            spec = lease.spec or client.V1LeaseSpec()
            if spec.holder_identity != self.identity:
                return False
            now = micro_now()
            lease.spec = client.V1LeaseSpec(
                holder_identity=None,
                lease_duration_seconds=1,
                acquire_time=now,
                renew_time=now,
                lease_transitions=spec.lease_transitions,
            )
            written = self._api.replace_namespaced_lease(
                self.name, self.namespace, lease, _request_timeout=self.request_timeout
            )
        except Exception as exc:
            log.warning("%s: could not release Lease %s: %s", self.identity, self.name, exc)
            return False
        self._observe(written.spec)
        log.info("%s: released Lease %s/%s", self.identity, self.namespace, self.name)
        return True

    # -- the loop ----------------------------------------------------------------------

    def _run(self) -> None:
        while not self._stopping.is_set():
            term = self._term
            started = time.monotonic()
            try:
                held = self._try_acquire_or_renew()
            except Exception as exc:
                log.warning("%s: Lease %s: %s", self.identity, self.name, exc)
                held = False
            if self._stopping.is_set():
                with self._lock:
                    free = self._term is None and (
                        not self._stopped_a_term
                        or (self._work_done.is_set() and self._release_on_stop)
                    )
                if held and free:
                    self.release()  # taken or renewed while stopping: nobody will lead on it
                break
            if term is None:
                if held:
                    self._begin_term(started)
            elif held:
                with self._lock:
                    if self._term is term:
                        self._last_renew = started
            elif self._holder not in (None, self.identity):
                self._end_term(term, f"Lease taken over by {self._holder}")
            elif time.monotonic() - self._last_renew > self.renew_deadline:
                self._end_term(term, f"no renewal within {self.renew_deadline} s")
            self._stopping.wait(self.retry_period)

    def _begin_term(self, acquired_at: float) -> None:
        term = threading.Event()
        with self._lock:
            self._term = term
            self._last_renew = acquired_at
            self.terms += 1
            self.leading.set()
        log.info("%s: leading (Lease %s/%s)", self.identity, self.namespace, self.name)
        threading.Thread(
            target=self._watchdog, args=(term,), name=f"election-watchdog-{self.identity}",
            daemon=True,
        ).start()  # fmt: skip
        if self.on_started_leading is not None:
            self._work = threading.Thread(
                target=self._lead, args=(term,), name=f"leader-{self.identity}", daemon=True
            )
            self._work.start()

    def _lead(self, term: threading.Event) -> None:
        assert self.on_started_leading is not None
        try:
            self.on_started_leading(term)
        except Exception:
            # As the client's c0b60e08: stop leading, and stop campaigning (a new term would
            # run the same failing work again); a stop() later changes nothing.
            log.exception("%s: on_started_leading failed: giving up leadership", self.identity)
            self._stopping.set()
            self._end_term(term, "on_started_leading failed")
            self.release()

    def _watchdog(self, term: threading.Event) -> None:
        """End the term at the renew deadline, even while a renewal request hangs."""
        while not term.is_set():
            remaining = self._last_renew + self.renew_deadline - time.monotonic()
            if remaining <= 0:
                self._end_term(term, f"no renewal within {self.renew_deadline} s")
                return
            term.wait(remaining)

    def _end_term(self, term: threading.Event, reason: str) -> None:
        with self._lock:
            if term.is_set():
                return
            term.set()
            if self._term is term:
                self._term = None
                self.leading.clear()
        level = logging.INFO if reason == STOPPING else logging.WARNING
        log.log(level, "%s: stopped leading: %s", self.identity, reason)
        if self.on_stopped_leading is not None:
            try:
                self.on_stopped_leading()
            except Exception:
                log.exception("%s: on_stopped_leading failed", self.identity)

    # -- the Lease ---------------------------------------------------------------------

    def _read(self) -> Any:
        return self._api.read_namespaced_lease(
            self.name, self.namespace, _request_timeout=self.request_timeout
        )

    def _observe(self, spec: Any) -> None:
        spec = spec or client.V1LeaseSpec()
        record = (
            spec.holder_identity,
            spec.lease_duration_seconds,
            spec.acquire_time,
            spec.renew_time,
            spec.lease_transitions,
        )
        if record != self._observed:
            self._observed = record
            self._observed_at = time.monotonic()
        self._holder = spec.holder_identity or None
        self._transitions = spec.lease_transitions or 0

    def _try_acquire_or_renew(self) -> bool:
        """One round of client-go's ``tryAcquireOrRenew``: True if this candidate holds the
        Lease afterwards. ApiExceptions other than 404/409 and connection errors raise."""
        now = micro_now()
        try:
            lease = self._read()
        except ApiException as exc:
            if exc.status != 404:
                raise
            return self._create(now)
        spec = lease.spec or client.V1LeaseSpec()
        self._observe(spec)
        holder = spec.holder_identity or ""
        duration = spec.lease_duration_seconds or self.lease_duration
        if holder and holder != self.identity and self._observed_at + duration > time.monotonic():
            return False  # held by another, not expired on our clock
        renewing = holder == self.identity
        lease.spec = client.V1LeaseSpec(
            holder_identity=self.identity,
            lease_duration_seconds=self.lease_duration,
            acquire_time=spec.acquire_time if renewing and spec.acquire_time else now,
            renew_time=now,
            lease_transitions=(spec.lease_transitions or 0) + (0 if renewing else 1),
        )
        try:
            written = self._api.replace_namespaced_lease(
                self.name, self.namespace, lease, _request_timeout=self.request_timeout
            )
        except ApiException as exc:
            if exc.status == 409:  # another candidate wrote first
                return False
            raise
        self._observe(written.spec)
        if not renewing:
            log.info("%s: acquired Lease %s (was %r)", self.identity, self.name, holder or None)
        return True

    def _create(self, now: datetime) -> bool:
        body = client.V1Lease(
            metadata=client.V1ObjectMeta(name=self.name, namespace=self.namespace),
            spec=client.V1LeaseSpec(
                holder_identity=self.identity,
                lease_duration_seconds=self.lease_duration,
                acquire_time=now,
                renew_time=now,
                lease_transitions=0,
            ),
        )
        try:
            created = self._api.create_namespaced_lease(
                self.namespace, body, _request_timeout=self.request_timeout
            )
        except ApiException as exc:
            if exc.status == 409:  # another candidate created it first
                return False
            raise
        self._observe(created.spec)
        log.info("%s: created Lease %s/%s", self.identity, self.namespace, self.name)
        return True
