"""A keyed, rate-limited work queue: client-go's ``workqueue.TypedRateLimitingInterface``.

Semantics (``k8s.io/client-go/util/workqueue``: ``queue.go``, ``delaying_queue.go``,
``rate_limiting_queue.go``, ``default_rate_limiters.go``):

- ``add(key)`` coalesces: a key already waiting is not queued twice (the *dirty* set).
- A key handed out by ``get()`` is *processing* until ``done(key)``. It is never handed to a
  second worker meanwhile: an ``add`` while it is processing marks it dirty, and ``done``
  queues it again, so the change is not lost and the two reconciles never overlap.
- ``add_after(key, seconds)`` queues the key once the delay has passed (the earliest of
  several pending delays wins); ``add_rate_limited(key)`` is ``add_after`` with the rate
  limiter's delay; ``forget(key)`` resets the key's back-off (call it after a success).
- ``shutdown()`` refuses new keys, drops delayed ones and wakes every blocked ``get``; keys
  already queued are still handed out, then ``get`` returns ``None`` (client-go's ``ShutDown``).

The default rate limiter is client-go's ``DefaultTypedControllerRateLimiter``: the maximum of
a per-key exponential back-off (5 ms, 10 ms, 20 ms, ... capped at 1000 s) and an overall token
bucket (10 per second, burst 100) shared by all keys. All durations are in seconds; the clock
(``time.monotonic`` by default) is injectable for tests.
"""

from __future__ import annotations

import heapq
import itertools
import threading
import time
from collections import deque
from collections.abc import Callable, Hashable
from typing import Generic, Protocol, TypeVar

K = TypeVar("K", bound=Hashable)
K_contra = TypeVar("K_contra", bound=Hashable, contravariant=True)

Clock = Callable[[], float]

#: client-go's ``DefaultTypedControllerRateLimiter``: per-item 5 ms -> 1000 s, 10 qps / 100.
DEFAULT_BASE_DELAY = 0.005
DEFAULT_MAX_DELAY = 1000.0
DEFAULT_QPS = 10.0
DEFAULT_BURST = 100


class RateLimiter(Protocol[K_contra]):
    """How long a key waits before it is retried (client-go ``TypedRateLimiter``)."""

    def when(self, key: K_contra) -> float:
        """Seconds to wait before ``key`` is queued again; records one more failure."""
        ...

    def forget(self, key: K_contra) -> None:
        """Stop tracking ``key`` (its next failure starts from the base delay)."""
        ...

    def num_requeues(self, key: K_contra) -> int:
        """Failures recorded for ``key`` since it was last forgotten."""
        ...


class ItemExponentialFailureRateLimiter(Generic[K]):
    """Per-key exponential back-off: ``base_delay * 2**failures`` seconds, at most
    ``max_delay`` (client-go ``ItemExponentialFailureRateLimiter``)."""

    def __init__(
        self, base_delay: float = DEFAULT_BASE_DELAY, max_delay: float = DEFAULT_MAX_DELAY
    ) -> None:
        if base_delay <= 0 or max_delay < base_delay:
            raise ValueError(
                f"base_delay must be > 0 and max_delay >= base_delay (seconds), "
                f"got {base_delay} and {max_delay}"
            )
        self.base_delay = base_delay
        self.max_delay = max_delay
        self._failures: dict[K, int] = {}
        self._lock = threading.Lock()

    def when(self, key: K) -> float:
        with self._lock:
            exp = self._failures.get(key, 0)
            self._failures[key] = exp + 1
        if exp >= 64:  # 2**64 * base overflows any sensible cap
            return self.max_delay
        return min(self.base_delay * 2.0**exp, self.max_delay)

    def forget(self, key: K) -> None:
        with self._lock:
            self._failures.pop(key, None)

    def num_requeues(self, key: K) -> int:
        with self._lock:
            return self._failures.get(key, 0)


class BucketRateLimiter(Generic[K]):
    """An overall token bucket of ``qps`` tokens per second holding at most ``burst``
    (client-go ``TypedBucketRateLimiter`` over ``golang.org/x/time/rate``: each ``when``
    reserves a token; when the bucket is empty the reservation waits for the next one, so
    tokens may go negative and the delays grow by ``1 / qps`` per call)."""

    def __init__(
        self, qps: float = DEFAULT_QPS, burst: int = DEFAULT_BURST, *, clock: Clock = time.monotonic
    ) -> None:
        if qps <= 0 or burst < 1:
            raise ValueError(f"qps must be > 0 and burst >= 1, got {qps} and {burst}")
        self.qps = qps
        self.burst = burst
        self._clock = clock
        self._tokens = float(burst)
        self._last = clock()
        self._lock = threading.Lock()

    def when(self, key: K) -> float:
        with self._lock:
            now = self._clock()
            elapsed = max(0.0, now - self._last)
            self._tokens = min(float(self.burst), self._tokens + elapsed * self.qps)
            self._last = now
            self._tokens -= 1.0
            return 0.0 if self._tokens >= 0 else -self._tokens / self.qps

    def forget(self, key: K) -> None:
        return None

    def num_requeues(self, key: K) -> int:
        return 0


class MaxOfRateLimiter(Generic[K]):
    """The longest delay of several limiters (client-go ``TypedMaxOfRateLimiter``)."""

    def __init__(self, *limiters: RateLimiter[K]) -> None:
        if not limiters:
            raise ValueError("MaxOfRateLimiter needs at least one limiter")
        self.limiters = limiters

    def when(self, key: K) -> float:
        return max(limiter.when(key) for limiter in self.limiters)

    def forget(self, key: K) -> None:
        for limiter in self.limiters:
            limiter.forget(key)

    def num_requeues(self, key: K) -> int:
        return max(limiter.num_requeues(key) for limiter in self.limiters)


def default_controller_rate_limiter(
    *,
    base_delay: float = DEFAULT_BASE_DELAY,
    max_delay: float = DEFAULT_MAX_DELAY,
    qps: float = DEFAULT_QPS,
    burst: int = DEFAULT_BURST,
    clock: Clock = time.monotonic,
) -> MaxOfRateLimiter[K]:
    """client-go's ``DefaultTypedControllerRateLimiter``: the max of a per-key exponential
    back-off (``base_delay`` doubling to ``max_delay`` seconds) and an overall token bucket
    (``qps`` per second, ``burst``)."""
    return MaxOfRateLimiter(
        ItemExponentialFailureRateLimiter(base_delay, max_delay),
        BucketRateLimiter(qps, burst, clock=clock),
    )


class WorkQueue(Generic[K]):
    """A keyed, rate-limited work queue (module docstring for the guarantees).

    Thread-safe. ``rate_limiter`` defaults to ``default_controller_rate_limiter``; ``clock``
    measures the delays of ``add_after`` and the limiter (seconds, monotonic). ``get``'s own
    ``timeout`` is real time: with a fake clock, advance it and call ``get(timeout=0)``.
    """

    def __init__(
        self,
        rate_limiter: RateLimiter[K] | None = None,
        *,
        clock: Clock = time.monotonic,
        name: str = "",
    ) -> None:
        self.name = name
        self._clock = clock
        self.rate_limiter: RateLimiter[K] = rate_limiter or default_controller_rate_limiter(
            clock=clock
        )
        self._cond = threading.Condition()
        self._queue: deque[K] = deque()
        self._dirty: set[K] = set()
        self._processing: set[K] = set()
        # Delayed keys: a heap of (ready_at, seq, key); _ready_at holds each key's earliest
        # time, and heap entries that disagree with it are stale.
        self._heap: list[tuple[float, int, K]] = []
        self._ready_at: dict[K, float] = {}
        self._seq = itertools.count()
        self._shutting_down = False

    # -- adding ------------------------------------------------------------------------

    def add(self, key: K) -> None:
        """Queue ``key`` now (a no-op if it is already queued, or after ``shutdown``)."""
        with self._cond:
            self._add_locked(key)

    def add_after(self, key: K, seconds: float) -> None:
        """Queue ``key`` once ``seconds`` have passed (at once if ``seconds <= 0``). A key
        already waiting keeps the earlier of its two times."""
        with self._cond:
            if self._shutting_down:
                return
            if seconds <= 0:
                self._add_locked(key)
                return
            ready = self._clock() + seconds
            current = self._ready_at.get(key)
            if current is not None and current <= ready:
                return
            self._ready_at[key] = ready
            heapq.heappush(self._heap, (ready, next(self._seq), key))
            self._cond.notify_all()  # a getter may now have an earlier time to wake at

    def add_rate_limited(self, key: K) -> None:
        """Queue ``key`` after the rate limiter's delay (one more failure recorded for it)."""
        self.add_after(key, self.rate_limiter.when(key))

    def forget(self, key: K) -> None:
        """Reset ``key``'s back-off (after a successful reconcile). Does not dequeue it."""
        self.rate_limiter.forget(key)

    def num_requeues(self, key: K) -> int:
        """Failures recorded for ``key`` since it was last forgotten."""
        return self.rate_limiter.num_requeues(key)

    # -- taking ------------------------------------------------------------------------

    def get(self, timeout: float | None = None) -> K | None:
        """The next key, now processing until ``done(key)``. Blocks up to ``timeout`` seconds
        (``None``: until a key or shutdown); ``None`` on timeout, or once shut down and empty."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            while True:
                self._promote_locked()
                if self._queue:
                    key = self._queue.popleft()
                    self._processing.add(key)
                    self._dirty.discard(key)
                    return key
                if self._shutting_down:
                    return None
                wait: float | None = None
                if self._heap:
                    wait = max(0.0, self._heap[0][0] - self._clock())
                if deadline is not None:
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        return None
                    wait = remaining if wait is None else min(wait, remaining)
                self._cond.wait(wait)

    def done(self, key: K) -> None:
        """End the processing of ``key``; if it was added meanwhile, queue it again."""
        with self._cond:
            self._processing.discard(key)
            if key in self._dirty:
                self._queue.append(key)
                self._cond.notify()

    # -- lifecycle ---------------------------------------------------------------------

    def shutdown(self) -> None:
        """Refuse new keys, drop delayed ones and wake every ``get``."""
        with self._cond:
            self._shutting_down = True
            self._heap.clear()
            self._ready_at.clear()
            self._cond.notify_all()

    @property
    def shutting_down(self) -> bool:
        with self._cond:
            return self._shutting_down

    def __len__(self) -> int:
        """Keys queued and ready (not the delayed ones nor those processing)."""
        with self._cond:
            self._promote_locked()
            return len(self._queue)

    def processing(self) -> frozenset[K]:
        """Keys handed out and not yet ``done``."""
        with self._cond:
            return frozenset(self._processing)

    # -- internals (callers hold self._cond) ------------------------------------------

    def _add_locked(self, key: K) -> None:
        if self._shutting_down or key in self._dirty:
            return
        self._dirty.add(key)
        if key in self._processing:
            return  # queued again by done()
        self._queue.append(key)
        self._cond.notify()

    def _promote_locked(self) -> None:
        now = self._clock()
        while self._heap and self._heap[0][0] <= now:
            ready, _, key = heapq.heappop(self._heap)
            if self._ready_at.get(key) == ready:
                del self._ready_at[key]
                self._add_locked(key)
