"""The operator's bound on helm processes at once (``CountingCommand.slots``,
``Settings.operator_helm_concurrency``): more reconciles than slots wait their turn, and a
wait cancelled (a leadership term's end) takes no slot."""

from __future__ import annotations

import asyncio
import threading
import time

import pyhelm3
import pytest

from saasodoo.adapters.helm import CountingCommand

pytestmark = pytest.mark.unit


@pytest.fixture
def command(monkeypatch: pytest.MonkeyPatch) -> tuple[CountingCommand, list[int]]:
    """A command whose helm process is a 0.1 s sleep, recording how many run at once."""
    running, peaks = [0], []
    lock = threading.Lock()

    async def process(self: object, command: list[str], input: bytes | None = None) -> bytes:  # noqa: A002
        with lock:
            running[0] += 1
            peaks.append(running[0])
        await asyncio.sleep(0.1)
        with lock:
            running[0] -= 1
        return b""

    monkeypatch.setattr(pyhelm3.Command, "run", process)
    cmd = CountingCommand()
    cmd.slots = threading.BoundedSemaphore(2)
    return cmd, peaks


def test_no_more_helm_processes_than_slots_run_at_once(
    command: tuple[CountingCommand, list[int]],
) -> None:
    cmd, peaks = command
    threads = [threading.Thread(target=asyncio.run, args=(cmd.run(["version"]),))
               for _ in range(6)]  # fmt: skip
    start = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert cmd.calls == 6 and max(peaks) == 2
    assert time.monotonic() - start >= 0.3  # three rounds of two
    assert cmd.slots is not None and cmd.slots.acquire(blocking=False)  # all given back
    cmd.slots.release()


def test_a_cancelled_wait_takes_no_slot(command: tuple[CountingCommand, list[int]]) -> None:
    cmd, peaks = command
    slots = cmd.slots
    assert slots is not None

    async def cancelled() -> None:
        slots.acquire()
        slots.acquire()  # both held: the call waits
        task = asyncio.ensure_future(cmd.run(["upgrade"]))
        await asyncio.sleep(0.1)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        slots.release()
        slots.release()

    asyncio.run(cancelled())
    assert not peaks and cmd.calls == 0
    assert slots.acquire(blocking=False) and slots.acquire(blocking=False)
