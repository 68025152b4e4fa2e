"""The operator's keyed, rate-limited work queue (saasodoo/operator/workqueue.py): client-go's
default controller rate limiter and the queue's one-worker-per-key guarantee."""

from __future__ import annotations

import threading
import time
from collections import Counter

import pytest

from saasodoo.operator.workqueue import (
    BucketRateLimiter,
    ItemExponentialFailureRateLimiter,
    WorkQueue,
    default_controller_rate_limiter,
)

pytestmark = pytest.mark.unit


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def test_exponential_back_off_doubles_from_5ms_and_caps_at_1000s() -> None:
    limiter: ItemExponentialFailureRateLimiter[str] = ItemExponentialFailureRateLimiter()
    delays = [limiter.when("a") for _ in range(20)]
    assert delays[:5] == pytest.approx([0.005, 0.01, 0.02, 0.04, 0.08])
    assert delays[17] == pytest.approx(0.005 * 2**17)  # 655.36 s
    assert delays[18] == delays[19] == 1000.0  # 1310.72 s capped
    assert limiter.num_requeues("a") == 20
    assert limiter.when("b") == pytest.approx(0.005)  # per key
    for _ in range(100):  # far past 2**64: still the cap, no overflow
        limiter.when("c")
    assert limiter.when("c") == 1000.0


def test_forget_resets_the_back_off() -> None:
    queue: WorkQueue[str] = WorkQueue(clock=FakeClock())
    for _ in range(5):
        queue.add_rate_limited("t1")
    assert queue.num_requeues("t1") == 5
    queue.forget("t1")
    assert queue.num_requeues("t1") == 0
    limiter = default_controller_rate_limiter(clock=FakeClock())
    for _ in range(3):
        limiter.when("k")
    limiter.forget("k")
    assert limiter.when("k") == pytest.approx(0.005)


def test_token_bucket_10_qps_burst_100() -> None:
    clock = FakeClock()
    bucket: BucketRateLimiter[str] = BucketRateLimiter(clock=clock)
    assert [bucket.when(str(i)) for i in range(100)] == [0.0] * 100
    assert bucket.when("x") == pytest.approx(0.1)
    assert bucket.when("y") == pytest.approx(0.2)
    clock.advance(0.2)  # two tokens earned back: the reservations are paid
    assert bucket.when("z") == pytest.approx(0.1)
    clock.advance(60)  # refilled, never above the burst
    assert [bucket.when(str(i)) for i in range(100)] == [0.0] * 100
    assert bucket.when("w") == pytest.approx(0.1)
    with pytest.raises(ValueError, match="qps"):
        BucketRateLimiter(qps=0)


def test_default_limiter_is_the_max_of_both() -> None:
    clock = FakeClock()
    limiter = default_controller_rate_limiter(clock=clock)
    # 100 distinct keys fail once: the per-key 5 ms wins while the bucket has tokens.
    assert [limiter.when(f"t{i}") for i in range(100)] == [pytest.approx(0.005)] * 100
    # The 101st failure (any key) waits for the bucket: 0.1 s > 5 ms.
    assert limiter.when("t100") == pytest.approx(0.1)
    # A key failing often waits for its own back-off once that is longer.
    clock.advance(1000)
    for _ in range(9):
        limiter.when("hot")
    assert limiter.when("hot") == pytest.approx(0.005 * 2**9)


def test_rate_limited_key_comes_back_after_its_delay() -> None:
    clock = FakeClock()
    queue: WorkQueue[str] = WorkQueue(clock=clock)
    queue.add_rate_limited("t1")  # 5 ms
    assert queue.get(timeout=0) is None and len(queue) == 0
    clock.advance(0.005)
    assert queue.get(timeout=0) == "t1"
    queue.done("t1")
    queue.add_rate_limited("t1")  # 10 ms now
    clock.advance(0.009)
    assert queue.get(timeout=0) is None
    clock.advance(0.001)
    assert queue.get(timeout=0) == "t1"


def test_duplicates_coalesce_and_order_is_fifo() -> None:
    queue: WorkQueue[str] = WorkQueue()
    for key in ("a", "b", "a", "c", "b", "a"):
        queue.add(key)
    assert len(queue) == 3
    assert [queue.get(timeout=0) for _ in range(3)] == ["a", "b", "c"]
    assert queue.get(timeout=0) is None


def test_add_while_processing_is_requeued_after_done_not_handed_out() -> None:
    queue: WorkQueue[str] = WorkQueue()
    queue.add("t1")
    assert queue.get(timeout=0) == "t1"
    queue.add("t1")  # changed while being reconciled
    queue.add("t1")  # coalesces
    assert len(queue) == 0 and queue.get(timeout=0) is None  # not to a second worker
    assert queue.processing() == {"t1"}
    queue.done("t1")
    assert len(queue) == 1
    assert queue.get(timeout=0) == "t1"
    queue.done("t1")
    assert queue.get(timeout=0) is None  # once, not twice


def test_add_after_hands_keys_out_in_time_order_and_keeps_the_earliest() -> None:
    clock = FakeClock()
    queue: WorkQueue[str] = WorkQueue(clock=clock)
    queue.add_after("late", 3)
    queue.add_after("early", 1)
    queue.add_after("middle", 2)
    queue.add_after("middle", 5)  # a later time for a waiting key: the earlier one stays
    queue.add_after("late", 0.5)  # an earlier time wins
    queue.add_after("now", 0)  # no delay: queued at once
    assert queue.get(timeout=0) == "now"
    clock.advance(10)
    assert [queue.get(timeout=0) for _ in range(3)] == ["late", "early", "middle"]
    assert queue.get(timeout=0) is None  # the stale entries do not come out again


def test_blocking_get_wakes_for_a_delayed_key_in_real_time() -> None:
    queue: WorkQueue[str] = WorkQueue()
    start = time.monotonic()
    queue.add_after("t1", 0.2)
    assert queue.get(timeout=5) == "t1"
    assert 0.19 <= time.monotonic() - start < 2


def test_get_times_out_and_shutdown_wakes_getters() -> None:
    queue: WorkQueue[str] = WorkQueue()
    start = time.monotonic()
    assert queue.get(timeout=0.1) is None
    assert time.monotonic() - start >= 0.09
    got: list[str | None] = []
    getters = [threading.Thread(target=lambda: got.append(queue.get())) for _ in range(3)]
    for t in getters:
        t.start()
    time.sleep(0.1)
    queue.shutdown()
    for t in getters:
        t.join(timeout=5)
        assert not t.is_alive()
    assert got == [None, None, None]
    queue.add("t1")  # refused after shutdown
    queue.add_after("t2", 0.01)
    assert len(queue) == 0 and queue.get(timeout=0.05) is None and queue.shutting_down


def test_shutdown_hands_out_what_was_queued_and_drops_the_delayed() -> None:
    queue: WorkQueue[str] = WorkQueue()
    queue.add("a")
    queue.add_after("b", 0.05)
    queue.shutdown()
    assert queue.get(timeout=0) == "a"
    time.sleep(0.1)
    assert queue.get(timeout=0) is None


def test_one_key_is_never_processed_by_two_workers_at_once() -> None:
    """Eight real worker threads, 20 keys added 2,000 times from three producer threads."""
    queue: WorkQueue[str] = WorkQueue()
    keys = [f"t{i}" for i in range(20)]
    active: set[str] = set()
    overlaps: list[str] = []
    handled: Counter[str] = Counter()
    lock = threading.Lock()

    def worker() -> None:
        while (key := queue.get()) is not None:
            with lock:
                if key in active:
                    overlaps.append(key)
                active.add(key)
                handled[key] += 1
            time.sleep(0.0005)
            with lock:
                active.discard(key)
            queue.done(key)

    def producer(offset: int) -> None:
        for i in range(2000):
            queue.add(keys[(i + offset) % len(keys)])
            if i % 50 == 0:
                time.sleep(0.001)

    workers = [threading.Thread(target=worker) for _ in range(8)]
    producers = [threading.Thread(target=producer, args=(n,)) for n in range(3)]
    for t in workers + producers:
        t.start()
    for t in producers:
        t.join(timeout=30)
    # The last add of each key is handled after it was made: wait until the queue is idle.
    deadline = time.monotonic() + 30
    while (len(queue) or queue.processing()) and time.monotonic() < deadline:
        time.sleep(0.01)
    queue.shutdown()
    for t in workers:
        t.join(timeout=10)
        assert not t.is_alive()
    assert overlaps == []
    assert set(handled) == set(keys)
    assert sum(handled.values()) < 6000  # duplicates coalesced


def test_bad_parameters_are_refused_with_their_names() -> None:
    with pytest.raises(ValueError, match="base_delay"):
        ItemExponentialFailureRateLimiter(base_delay=0)
    with pytest.raises(ValueError, match="max_delay"):
        ItemExponentialFailureRateLimiter(base_delay=1, max_delay=0.5)
    with pytest.raises(ValueError, match="burst"):
        BucketRateLimiter(burst=0)
