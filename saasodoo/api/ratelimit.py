"""Limits on costly calls: per user (e.g. domain verification: DNS look-ups and cluster
writes, ``RateLimit``) and per process (backup downloads, each holding a server thread while it
streams, ``Slots``).

A sliding window per key: at most ``limit`` calls in any ``window`` seconds; the next one is
refused with ``TooManyRequests`` (429) carrying the seconds until a slot frees
(``Retry-After``). In memory, like the job records: one API process.
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator

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


class Slots:
    """At most ``limit`` of ``what`` at once in this process: ``hold`` refuses one more with
    ``TooManyRequests`` (429, ``Retry-After``) rather than let them take every server thread
    (a download streams for as long as its client reads)."""

    def __init__(self, what: str, limit: int, retry_after: int = 30) -> None:
        self.what = what
        self.limit = limit
        self.retry_after = retry_after
        self._free = threading.BoundedSemaphore(limit)

    def hold(self, content: Iterator[bytes]) -> Iterator[bytes]:
        """``content`` holding a slot until it is closed (the WSGI server closes a response's
        iterable when it is done or its client went away); TooManyRequests when none is free
        (``content`` is closed then)."""
        if not self._free.acquire(blocking=False):
            close = getattr(content, "close", None)
            if close is not None:
                close()
            raise self._busy()
        return _Held(content, self._free.release)

    def open(self, start: Callable[[], tuple[int, Iterator[bytes]]]) -> tuple[int, Iterator[bytes]]:
        """A slot taken first, then ``start()`` (its size and content; it may do slow work
        first, such as a reader pod started for a download), the content holding the slot
        until it is closed. TooManyRequests before any of that work when none is free; the
        slot is given back when ``start`` fails."""
        if not self._free.acquire(blocking=False):
            raise self._busy()
        try:
            size, content = start()
        except BaseException:
            self._free.release()
            raise
        return size, _Held(content, self._free.release)

    def _busy(self) -> TooManyRequests:
        return TooManyRequests(
            f"{self.limit} {self.what} are running on this server: try again shortly",
            self.retry_after,
        )


class _Held:
    """An iterator that releases its slot once, when closed."""

    def __init__(self, content: Iterator[bytes], release: Callable[[], None]) -> None:
        self._content = content
        self._release: Callable[[], None] | None = release

    def __iter__(self) -> _Held:
        return self

    def __next__(self) -> bytes:
        return next(self._content)

    def close(self) -> None:
        release, self._release = self._release, None
        if release is None:
            return
        try:
            close = getattr(self._content, "close", None)
            if close is not None:
                close()
        finally:
            release()
