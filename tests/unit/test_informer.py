"""The operator's informer (saasodoo/operator/informer.py) against a small fake list/watch
function: the real ``kubernetes.watch.Watch`` reads the fake's stream, so the client's own
event parsing (BOOKMARK, ERROR 410) is part of what is tested. The real API server's side
is tests/cluster/test_operator_runtime.py."""

from __future__ import annotations

import contextlib
import json
import queue
import random
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
import urllib3
from kubernetes.client.rest import ApiException

from saasodoo.adapters.kube.informer import Informer, object_key, resync_interval

pytestmark = pytest.mark.unit

NS = "saasodoo-system"
CLOSED = b""


class FakeSocket:
    def __init__(self, stream: FakeStream) -> None:
        self.stream = stream

    def shutdown(self, how: int) -> None:
        self.stream.end()


class FakeConnection:
    def __init__(self, stream: FakeStream) -> None:
        self.sock = FakeSocket(stream)


class FakeStream:
    """A watch response: lines pushed by the server; ends after ``timeout_seconds`` (the
    server's timeout), when ended, and raises urllib3's ReadTimeoutError when no line came
    for the read timeout (as a socket read does)."""

    status = 200

    def __init__(self, timeout_seconds: int, read_timeout: float) -> None:
        self.lines: queue.Queue[bytes] = queue.Queue()
        self.timeout_seconds = timeout_seconds
        self.read_timeout = read_timeout
        self.connection = FakeConnection(self)
        self.closed = False

    def push(self, event: dict[str, Any]) -> None:
        self.lines.put(json.dumps(event).encode() + b"\n")

    def end(self) -> None:
        self.lines.put(CLOSED)

    def stream(self, amt: Any = None, decode_content: Any = None) -> Iterator[bytes]:
        start = last = time.monotonic()
        while True:
            now = time.monotonic()
            if now - start >= self.timeout_seconds:
                return
            try:
                line = self.lines.get(timeout=0.01)
            except queue.Empty:
                if time.monotonic() - last >= self.read_timeout:
                    raise urllib3.exceptions.ReadTimeoutError(
                        None, "/fake", "Read timed out."
                    ) from None
                continue
            if line == CLOSED:
                return
            last = time.monotonic()
            yield line

    def close(self) -> None:
        self.closed = True

    def release_conn(self) -> None:
        pass


class FakeListResponse:
    def __init__(self, doc: dict[str, Any]) -> None:
        self.data = json.dumps(doc).encode()

    def release_conn(self) -> None:
        pass


class FakeServer:
    """ConfigMap-like objects in one namespace, an event history, compaction and failures.

    Called as a list function of the official client: with ``watch=True`` it answers a
    watch (a FakeStream), else a list (raw JSON, as with ``_preload_content=False``)."""

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.rv = 100
        self.objects: dict[str, dict[str, Any]] = {}
        self.history: list[tuple[int, str, dict[str, Any]]] = []
        #: A watch from a resourceVersion below this one is gone (410).
        self.compacted = 0
        #: How a 410 comes: "event" (an ERROR event, as the watch cache sends) or "status".
        self.gone_as = "event"
        self.live: list[FakeStream] = []
        #: ("list", None) or ("watch", resourceVersion) per request, in order.
        self.calls: list[tuple[str, str | None]] = []
        self.watch_kwargs: list[dict[str, Any]] = []
        self.list_times: list[float] = []
        self.fail_lists = 0
        self.fail_watches = 0
        #: (limit, continue) of each list request, in order.
        self.pages: list[tuple[int | None, str | None]] = []
        #: A list request with a continue token is answered 410 (the token expired).
        self.expire_continue = False

    # -- the client side ---------------------------------------------------------------

    def __call__(self, **kwargs: Any) -> Any:
        assert kwargs.get("_preload_content") is False
        if kwargs.get("watch"):
            return self.open_watch(kwargs)
        with self.lock:
            self.calls.append(("list", None))
            self.list_times.append(time.monotonic())
            if self.fail_lists:
                self.fail_lists -= 1
                raise ApiException(status=500, reason="Internal Server Error")
            self.pages.append((kwargs.get("limit"), kwargs.get("_continue")))
            if kwargs.get("_continue") and self.expire_continue:
                raise ApiException(status=410, reason="Expired")
            items = sorted(self.objects.values(), key=object_key)
            start = int(kwargs.get("_continue") or 0)
            end = start + kwargs["limit"] if kwargs.get("limit") else len(items)
            meta = {"resourceVersion": str(self.rv)}
            if end < len(items):  # as the API server pages: a continue token, same RV
                meta["continue"] = str(end)
            return FakeListResponse(
                {"kind": "ConfigMapList", "metadata": meta, "items": items[start:end]}
            )

    def open_watch(self, kwargs: dict[str, Any]) -> FakeStream:
        with self.lock:
            rv = kwargs["resource_version"]
            self.calls.append(("watch", rv))
            self.watch_kwargs.append(kwargs)
            if self.fail_watches:
                self.fail_watches -= 1
                raise ApiException(status=500, reason="Internal Server Error")
            if int(rv) < self.compacted and self.gone_as == "status":
                raise ApiException(status=410, reason="Gone")
            stream = FakeStream(kwargs["timeout_seconds"], kwargs["_request_timeout"][1])
            if int(rv) < self.compacted:
                status = {"kind": "Status", "code": 410, "reason": "Expired"}
                stream.push({"type": "ERROR", "object": {**status, "message": "too old"}})
                stream.end()
                return stream
            for event_rv, kind, obj in self.history:
                if event_rv > int(rv):
                    stream.push({"type": kind, "object": obj})
            self.live.append(stream)
            return stream

    # -- the server side ---------------------------------------------------------------

    def put(self, name: str, value: str) -> dict[str, Any]:
        with self.lock:
            self.rv += 1
            kind = "MODIFIED" if name in self.objects else "ADDED"
            obj = {
                "metadata": {"name": name, "namespace": NS, "resourceVersion": str(self.rv)},
                "data": {"v": value},
            }
            self.objects[name] = obj
            self.emit(kind, obj)
            return obj

    def delete(self, name: str) -> None:
        with self.lock:
            self.rv += 1
            obj = self.objects.pop(name)
            gone = {**obj, "metadata": {**obj["metadata"], "resourceVersion": str(self.rv)}}
            self.emit("DELETED", gone)

    def bookmark(self) -> str:
        """Other kinds changed (the RV moved on); a BOOKMARK tells the watchers so."""
        with self.lock:
            self.rv += 5
            for stream in self.live:
                stream.push(
                    {"type": "BOOKMARK", "object": {"metadata": {"resourceVersion": str(self.rv)}}}
                )
            return str(self.rv)

    def emit(self, kind: str, obj: dict[str, Any]) -> None:
        self.history.append((self.rv, kind, obj))
        for stream in self.live:
            stream.push({"type": kind, "object": obj})

    def end_watches(self, *, compact: bool = False) -> None:
        """The server ends every watch; with ``compact``, history up to now is gone."""
        with self.lock:
            if compact:
                self.compacted = self.rv
                self.history.clear()
            for stream in self.live:
                stream.end()
            self.live.clear()

    def watch_rvs(self) -> list[str | None]:
        return [rv for what, rv in self.calls if what == "watch"]


def wait_until(probe: Any, timeout: float = 5.0, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while not probe():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.01)


class Recorder:
    def __init__(self) -> None:
        self.events: list[tuple[str, str]] = []
        self.lock = threading.Lock()

    def __call__(self, kind: str, obj: dict[str, Any]) -> None:
        with self.lock:
            self.events.append((kind, object_key(obj)))

    def kinds(self, kind: str) -> list[str]:
        with self.lock:
            return [key for k, key in self.events if k == kind]


@pytest.fixture
def server() -> FakeServer:
    return FakeServer()


@contextlib.contextmanager
def following(informer: Informer, server: FakeServer | None = None) -> Iterator[None]:
    """Run the informer until its first list is handed out (and, given the server, its watch
    is open); stop it after."""
    informer.start()
    try:
        assert informer.wait_for_sync(5)
        if server is not None:
            wait_until(lambda: server.live, what="the watch")
        yield
    finally:
        informer.stop()


def make(server: FakeServer, **options: Any) -> tuple[Informer, Recorder]:
    recorder = Recorder()
    options.setdefault("inactivity_timeout", 5.0)
    options.setdefault("resync_period", None)
    informer = Informer(server, on_event=recorder, name="test", **options)
    return informer, recorder


def test_lists_then_follows_from_the_lists_resource_version(server: FakeServer) -> None:
    server.put("a", "1")
    server.put("b", "1")
    list_rv = str(server.rv)
    informer, rec = make(server, inactivity_timeout=70.0)
    with following(informer):
        assert sorted(rec.kinds("ADDED")) == [f"{NS}/a", f"{NS}/b"]
        wait_until(lambda: server.live, what="the watch")
        kwargs = server.watch_kwargs[0]
        assert kwargs["resource_version"] == list_rv
        assert kwargs["allow_watch_bookmarks"] is True and kwargs["watch"] is True
        assert kwargs["_request_timeout"] == (30.0, 70.0)  # the inactivity timeout
        assert 300 <= kwargs["timeout_seconds"] <= 600  # server side, spread
        server.put("a", "2")
        server.put("c", "1")
        server.delete("b")
        wait_until(lambda: f"{NS}/b" in rec.kinds("DELETED"), what="DELETED b")
        assert (informer.get(f"{NS}/a") or {}).get("data") == {"v": "2"}
        assert informer.get(f"{NS}/b") is None  # DELETED removes it from the cache
        assert sorted(informer.keys()) == [f"{NS}/a", f"{NS}/c"]
        assert rec.kinds("MODIFIED") == [f"{NS}/a"]
        assert informer.last_resource_version == str(server.rv)
        assert (informer.stats.lists, informer.stats.watches) == (1, 1)
    assert not informer.running


@pytest.mark.parametrize("gone_as", ["event", "status"])
def test_410_gone_re_lists_instead_of_re_watching_the_stale_version(
    server: FakeServer, gone_as: str
) -> None:
    server.gone_as = gone_as
    server.put("a", "1")
    server.put("b", "1")
    informer, rec = make(server)
    with following(informer, server):
        stale = informer.last_resource_version
        with server.lock:  # changes the informer misses: its watch is cut, then compacted away
            server.end_watches()
            server.put("a", "2")
            server.delete("b")
            server.put("c", "1")
            server.end_watches(compact=True)
        wait_until(lambda: informer.stats.relists_410 == 1, what="the re-list")
        wait_until(lambda: len(server.watch_rvs()) >= 3, what="the watch after the re-list")
        rvs = server.watch_rvs()
        assert rvs.count(stale) == 2, rvs  # the first watch, and the one that got 410
        assert rvs[2] == str(server.rv), rvs  # then from the new list's version, never stale
        assert informer.stats.lists == 2
        # The re-list tells what changed meanwhile, unchanged objects are not re-sent.
        assert rec.kinds("MODIFIED") == [f"{NS}/a"]
        assert rec.kinds("DELETED") == [f"{NS}/b"]
        assert rec.kinds("ADDED") == [f"{NS}/a", f"{NS}/b", f"{NS}/c"]
        assert rec.kinds("RESYNC") == []
        assert sorted(informer.keys()) == [f"{NS}/a", f"{NS}/c"]
        assert informer.stats.errors == 0


def test_bookmark_version_is_kept_and_used_on_reconnect(server: FakeServer) -> None:
    server.put("a", "1")
    informer, rec = make(server)
    with following(informer, server):
        bookmark_rv = server.bookmark()
        wait_until(lambda: informer.stats.bookmarks == 1, what="the bookmark")
        assert informer.last_resource_version == bookmark_rv
        server.end_watches()  # the server's timeout
        wait_until(lambda: len(server.watch_rvs()) == 2, what="the reconnect")
        assert server.watch_rvs()[1] == bookmark_rv
        assert informer.stats.lists == 1  # resumed, not re-listed
        assert rec.events == [("ADDED", f"{NS}/a")]  # a bookmark is not an event


def test_inactivity_timeout_reconnects_from_the_last_version(server: FakeServer) -> None:
    server.put("a", "1")
    informer, _ = make(server, inactivity_timeout=0.2)
    with following(informer):
        wait_until(lambda: informer.stats.inactivity_reconnects >= 2, what="silent-stream drops")
        rvs = server.watch_rvs()
        assert len(rvs) >= 3 and set(rvs) == {str(server.rv)}
        assert informer.stats.lists == 1 and informer.stats.errors == 0
        server.put("a", "2")  # a reconnected watch still delivers
        wait_until(
            lambda: (informer.get(f"{NS}/a") or {}).get("data") == {"v": "2"}, what="the update"
        )


def test_resync_interval_stays_within_the_jitter() -> None:
    rng = random.Random(7)
    samples = [resync_interval(300, 0.1, rng) for _ in range(2000)]
    assert all(270 <= s <= 330 for s in samples)
    assert min(samples) < 275 and max(samples) > 325  # really spread over the range
    assert resync_interval(300, 0, rng) == 300


def test_periodic_resync_hands_out_every_cached_object_without_a_list(
    server: FakeServer,
) -> None:
    server.put("a", "1")
    server.put("b", "1")
    informer, rec = make(server, resync_period=0.5, resync_jitter=0.1)
    with following(informer):
        wait_until(lambda: informer.stats.resyncs >= 3, timeout=10, what="three resyncs")
        assert rec.kinds("RESYNC").count(f"{NS}/a") >= 3
        assert rec.kinds("RESYNC").count(f"{NS}/b") >= 3
        # client-go's resync: the cache replayed, no list request after the first one; the
        # watch is re-opened from the last resourceVersion.
        stats = informer.stats
        assert stats.lists == 1 and len(server.list_times) == 1 and stats.errors == 0
        assert stats.watches >= stats.resyncs
        rv = informer.last_resource_version
        assert set(server.watch_rvs()) == {rv}
        # A change seen by the watch between resyncs is what the next resync hands out.
        changed = server.put("a", "2")["metadata"]["resourceVersion"]
        wait_until(lambda: (informer.get(f"{NS}/a") or {}).get("metadata", {})
                   .get("resourceVersion") == changed, what="the change")  # fmt: skip
        done = informer.stats.resyncs
        wait_until(lambda: informer.stats.resyncs > done, timeout=5, what="one more resync")
        assert rec.events[-1][0] in ("RESYNC", "MODIFIED")


def test_errors_back_off_doubling_and_a_failed_watch_resumes(server: FakeServer) -> None:
    server.put("a", "1")
    server.fail_lists = 3
    informer, _ = make(server, backoff_initial=0.1, backoff_max=0.2)
    with following(informer):
        gaps = [b - a for a, b in zip(server.list_times, server.list_times[1:], strict=False)]
        assert len(gaps) == 3
        # 0.1 s, doubled to 0.2 s, capped at 0.2 s (uncapped it would be 0.4 s).
        assert gaps[0] >= 0.1 and gaps[1] >= 0.2 and 0.2 <= gaps[2] < 0.38, gaps
        wait_until(lambda: server.live, what="the watch")
        rv = informer.last_resource_version
        server.fail_watches = 1
        server.end_watches()
        wait_until(lambda: len(server.live) == 1 and informer.stats.watches == 3, what="resume")
        assert server.watch_rvs()[-2:] == [rv, rv]  # resumed from the last version
        assert informer.stats.lists == 4 and informer.stats.errors == 4


def test_a_failing_handler_does_not_stop_the_informer(server: FakeServer) -> None:
    seen: list[str] = []

    def handler(kind: str, obj: dict[str, Any]) -> None:
        seen.append(obj["metadata"]["name"])
        raise RuntimeError("boom")

    server.put("a", "1")
    informer = Informer(server, on_event=handler, resync_period=None, inactivity_timeout=5)
    with following(informer, server):
        server.put("b", "1")
        wait_until(lambda: seen == ["a", "b"], what="both events")
        assert len(informer.list()) == 2


def test_stop_is_prompt_with_a_long_open_watch(server: FakeServer) -> None:
    informer, _ = make(server, inactivity_timeout=60.0, watch_timeout=600.0)
    informer.start()
    assert informer.wait_for_sync(5)
    wait_until(lambda: server.live, what="the watch")
    start = time.monotonic()
    informer.stop()
    assert not informer.running
    assert time.monotonic() - start < 1.0


def test_bad_settings_are_refused_with_their_names(server: FakeServer) -> None:
    with pytest.raises(ValueError, match="resync_jitter"):
        Informer(server, resync_jitter=1.5)
    with pytest.raises(ValueError, match="inactivity_timeout"):
        Informer(server, inactivity_timeout=0)
    with pytest.raises(ValueError, match="backoff_max"):
        Informer(server, backoff_initial=2, backoff_max=1)


def test_lists_in_pages_and_caches_what_the_transform_keeps(server: FakeServer) -> None:
    for i in range(5):
        server.put(f"o{i}", str(i))
    list_rv = str(server.rv)

    def keep_name(obj: dict[str, Any]) -> dict[str, Any]:
        return {"metadata": obj["metadata"]}  # "data" dropped

    informer, rec = make(server, page_size=2, transform=keep_name)
    with following(informer, server):
        assert server.pages == [(2, None), (2, "2"), (2, "4")]
        assert sorted(rec.kinds("ADDED")) == [f"{NS}/o{i}" for i in range(5)]
        assert informer.get(f"{NS}/o3") == {"metadata": server.objects["o3"]["metadata"]}
        assert server.watch_kwargs[0]["resource_version"] == list_rv  # the list's snapshot
        assert informer.stats.lists == 3  # one per page


def test_an_expired_continue_token_lists_unpaged_once(server: FakeServer) -> None:
    for i in range(3):
        server.put(f"o{i}", str(i))
    server.expire_continue = True
    informer, rec = make(server, page_size=2)
    with following(informer, server):
        assert server.pages == [(2, None), (2, "2"), (None, None)]
        assert informer.stats.lists == 3  # the expired page's request counts too
        assert sorted(informer.keys()) == [f"{NS}/o{i}" for i in range(3)]
        assert len(rec.kinds("ADDED")) == 3  # the first page's objects once, not twice


def test_a_write_of_this_process_is_remembered_until_a_newer_version_arrives(
    server: FakeServer,
) -> None:
    """``remember``: what a process just wrote is in its cache before the watch event (a
    list right after a create shows it); an older answer never replaces a newer event."""
    server.put("a", "1")
    informer, _ = make(server)
    with following(informer):
        wait_until(lambda: server.live, what="the watch")
        written = {"metadata": {"name": "z", "namespace": NS, "resourceVersion": "999"},
                   "data": {"v": "mine"}}  # fmt: skip
        informer.remember(written)
        assert (informer.get(f"{NS}/z") or {}).get("data") == {"v": "mine"}
        newer = server.put("a", "2")
        wait_until(lambda: (informer.get(f"{NS}/a") or {}).get("data") == {"v": "2"})
        stale = {**newer, "metadata": {**newer["metadata"], "resourceVersion": "1"},
                 "data": {"v": "old answer"}}  # fmt: skip
        informer.remember(stale)
        assert (informer.get(f"{NS}/a") or {}).get("data") == {"v": "2"}
