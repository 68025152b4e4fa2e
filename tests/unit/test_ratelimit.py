"""The per-user limit of costly API calls (domain verification): a sliding window."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from saasodoo.api.ratelimit import RateLimit, Slots, TooManyRequests

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


class Body:
    """A streamed body that records its closing."""

    def __init__(self) -> None:
        self.closed = 0
        self.chunks = iter([b"a", b"b"])

    def __iter__(self) -> Body:
        return self

    def __next__(self) -> bytes:
        return next(self.chunks)

    def close(self) -> None:
        self.closed += 1


def test_slots_refuse_one_more_until_a_body_is_closed() -> None:
    slots = Slots("backup downloads", 2, retry_after=7)
    first, second = Body(), Body()
    held = [slots.hold(first), slots.hold(second)]
    third = Body()
    with pytest.raises(TooManyRequests) as refused:
        slots.hold(third)
    assert refused.value.retry_after == 7 and "2 backup downloads" in str(refused.value)
    assert third.closed == 1  # the refused one's stream is closed at once
    assert b"".join(held[0]) == b"ab"
    held[0].close()  # type: ignore[attr-defined]
    held[0].close()  # type: ignore[attr-defined]  # twice: released once
    assert first.closed == 1
    again = slots.hold(Body())  # the freed slot
    with pytest.raises(TooManyRequests):
        slots.hold(Body())
    held[1].close()  # type: ignore[attr-defined]
    again.close()  # type: ignore[attr-defined]
    for _ in range(2):
        slots.hold(Body())  # both free again, no more
    with pytest.raises(TooManyRequests):
        slots.hold(Body())


def test_a_slot_is_taken_before_a_download_s_slow_start_and_given_back_when_it_fails() -> None:
    """A backup on a volume starts a reader pod before its first byte: over the limit no
    start is made at all; a start that fails gives its slot back."""
    slots = Slots("backup downloads", 1, retry_after=7)
    started: list[str] = []

    def start() -> tuple[int, Iterator[bytes]]:
        started.append("reader")
        return 2, Body()

    size, held = slots.open(start)
    assert size == 2 and started == ["reader"]
    with pytest.raises(TooManyRequests):
        slots.open(start)
    assert started == ["reader"]  # refused before any work
    held.close()  # type: ignore[attr-defined]

    def failing() -> tuple[int, Iterator[bytes]]:
        raise TimeoutError("the reader did not listen")

    with pytest.raises(TimeoutError):
        slots.open(failing)
    assert slots.open(start)[0] == 2  # the slot came back
