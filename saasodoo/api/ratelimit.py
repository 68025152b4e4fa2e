"""Per-user limits on costly calls (e.g. domain verification: DNS look-ups and cluster writes).

A sliding window per key: at most ``limit`` calls in any ``window`` seconds; the next one is
refused with ``TooManyRequests`` (429) carrying the seconds until a slot frees
(``Retry-After``). In memory, like the job records: one API process.
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from collections.abc import Callable

from saasodoo.errors import SaasodooError


class TooManyRequests(SaasodooError):
    """The caller exceeded a per-user limit; ``retry_after``: seconds to wait (429)."""

    exit_code = 10
    http_status = 429
    retryable = True

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class RateLimit:
    """At most ``limit`` calls per key in any ``window`` seconds."""

    def __init__(
        self,
        what: str,
        limit: int,
        window: float,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if limit < 1 or window <= 0:
            raise ValueError("a rate limit needs limit >= 1 and window > 0")
        self.what = what
        self.limit = limit
        self.window = window
        self._clock = clock
        self._calls: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def hit(self, key: str) -> None:
        """Count one call of ``key``, or raise TooManyRequests (the call is not counted)."""
        now = self._clock()
        with self._lock:
            for other in [k for k, calls in self._calls.items() if calls[-1] <= now - self.window]:
                del self._calls[other]  # keys idle for a whole window: forgotten
            calls = self._calls.setdefault(key, deque())
            while calls and calls[0] <= now - self.window:
                calls.popleft()
            if len(calls) >= self.limit:
                wait = max(1, math.ceil(calls[0] + self.window - now))
                raise TooManyRequests(
                    f"too many {self.what}: at most {self.limit} per {self.window:g} s; "
                    f"retry in {wait} s",
                    wait,
                )
            calls.append(now)
