"""The per-user limit of costly API calls (domain verification): a sliding window."""

from __future__ import annotations

import pytest

from saasodoo.api.ratelimit import RateLimit, TooManyRequests

pytestmark = pytest.mark.unit


def test_sliding_window_per_user_with_retry_after() -> None:
    now = [1000.0]
    limit = RateLimit("domain verifications", 3, 60, clock=lambda: now[0])
    for _ in range(3):
        limit.hit("alice")
    with pytest.raises(TooManyRequests) as exc:
        limit.hit("alice")
    assert exc.value.http_status == 429 and exc.value.retryable
    assert exc.value.retry_after == 60 and "at most 3 per 60 s" in exc.value.message
    limit.hit("bob")  # per user
    now[0] += 30
    with pytest.raises(TooManyRequests) as exc:
        limit.hit("alice")
    assert exc.value.retry_after == 30  # the oldest call leaves the window then
    now[0] += 30
    for _ in range(3):  # the window has passed (refused calls were not counted)
        limit.hit("alice")
    with pytest.raises(TooManyRequests):
        limit.hit("alice")


def test_bad_limits_are_refused() -> None:
    with pytest.raises(ValueError):
        RateLimit("x", 0, 60)
    with pytest.raises(ValueError):
        RateLimit("x", 1, 0)
