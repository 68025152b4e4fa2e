"""An informer: list, then watch one resource into a thread-safe cache, and tell a handler.

One ``Informer`` follows one resource (a custom resource or any core kind) through a list
function of the official ``kubernetes`` client (``CustomObjectsApi.list_namespaced_custom_object``,
``CoreV1Api.list_namespaced_config_map``, ... with its positional arguments bound, e.g. by
``functools.partial``, or ``Informer.for_custom_objects``). Objects are plain JSON dicts: the
list is read raw (``_preload_content=False``) and parsed with orjson; watch events through
``kubernetes.watch.Watch`` with ``return_type="object"`` (dicts, and ``ERROR`` events raised as
``ApiException``).

The protocol (the pitfalls of operator.md §2; client-go's reflector, KEP-956):

- **List, then watch** from the list's ``resourceVersion`` with ``allowWatchBookmarks=true``.
  The resourceVersion of every event, BOOKMARKs included, is kept, and a reconnect resumes
  from it (a bookmark moves it forward when nothing we watch changes).
- **410 Gone** (``ApiException`` status 410, or an ``ERROR`` event with code 410: the
  resourceVersion was compacted away) ⇒ **re-list**, never a re-watch from the same stale
  resourceVersion (``stats.relists_410``).
- **Inactivity timeout** on the client side: the watch's socket read timeout is
  ``inactivity_timeout`` (default 70 s; the API server sends a bookmark about every minute),
  so a stream that went silent (a half-open connection, a stalled proxy) is dropped and
  re-opened from the last resourceVersion (``stats.inactivity_reconnects``). The server-side
  ``timeoutSeconds`` of each watch is random in [``watch_timeout``, 2 × ``watch_timeout``)
  (client-go's spread), so many informers do not reconnect in step.
- **Periodic resync** with jitter: every ``resync_period`` ± ``resync_jitter`` (default
  300 s ± 10 %) the handler is called with ``RESYNC`` for every cached object, as
  client-go's resync replays its store: no list request (the watch, kept current by its
  events, bookmarks and the re-list on 410, is what keeps the cache right), one watch
  request (the stream is re-opened from the last resourceVersion). A re-list on every
  resync cost a list of every object, parsed whole, per kind and period: at 1,000 tenants
  and a 20 s period, the operator's largest CPU cost when idle (profiled). Making a resync
  cost no helm call is the controller's job.
- **Paged lists** (``limit`` and ``continue``, as client-go's pager; ``DEFAULT_PAGE_SIZE``
  100 objects, not client-go's 500: see there): one page of full objects
  is parsed at a time and ``transform`` keeps what the handlers read, so a list's memory is
  the transformed cache plus one page; an expired continue token (410) lists unpaged once.
- **Other errors** (connection refused, 5xx, a broken stream) back off ``backoff_initial``
  doubling to ``backoff_max`` seconds (1 s to 30 s), then resume: a failed list is listed
  again, a failed watch resumes from the last resourceVersion.

Handlers: ``on_event(kind, obj)`` with kind ``"ADDED" | "MODIFIED" | "DELETED" | "RESYNC"``,
called on the informer's thread after the cache was updated (a handler's exception is logged
and ignored). ``has_synced()`` turns true once the first list was stored and handed out.
``stop()`` is prompt: it closes the stream (``Watch.stop`` shuts the socket down).

Why not ``kubernetes.informer.SharedInformer`` (client 36+): it does not ask for bookmarks,
has no inactivity timeout (a silent stream stalls it for good: kopf #585, #1276) and no
jitter on its resync, and it builds the client's typed models (costly for 1,000 objects, and
our custom resources have no model).

This module imports the official client directly, as an adapter does: it is client plumbing.
"""

from __future__ import annotations

import builtins
import functools
import logging
import math
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson
import urllib3
from kubernetes import client, watch
from kubernetes.client.rest import ApiException

log = logging.getLogger(__name__)

#: A list function of the official client, its path arguments bound; called with keyword
#: arguments only (``watch``, ``resource_version``, ``_preload_content``, ...).
ListFunc = Callable[..., Any]
#: ``on_event(kind, obj)``: kind is one of EVENT_KINDS, obj the object as a JSON dict.
EventHandler = Callable[[str, dict[str, Any]], None]

ADDED = "ADDED"
MODIFIED = "MODIFIED"
DELETED = "DELETED"
RESYNC = "RESYNC"
EVENT_KINDS = (ADDED, MODIFIED, DELETED, RESYNC)
BOOKMARK = "BOOKMARK"
GONE = 410

DEFAULT_RESYNC_PERIOD = 300.0
DEFAULT_RESYNC_JITTER = 0.1
DEFAULT_INACTIVITY_TIMEOUT = 70.0
DEFAULT_WATCH_TIMEOUT = 300.0
#: Objects per list request (client-go's reflector: 500). Smaller here: an OdooTenant with a
#: day-30 status is about 64 KiB as parsed JSON, and CPython keeps the memory of the largest
#: page. Measured over 1,000 such OdooTenants, cached with ``run.cached`` (resident memory
#: above the process' 58 MiB at start): unpaged +76 MiB (peak +133), 500 a page +60 (peak
#: +80), 250 +35, 100 +25, 50 +17. 100 costs 10 list requests per 1,000 objects a (re-)list.
DEFAULT_PAGE_SIZE = 100


def object_key(obj: dict[str, Any]) -> str:
    """``namespace/name`` of a namespaced object, ``name`` of a cluster-scoped one
    (client-go's ``MetaNamespaceKeyFunc``)."""
    meta = obj.get("metadata") or {}
    namespace = meta.get("namespace")
    name = str(meta.get("name", ""))
    return f"{namespace}/{name}" if namespace else name


def resource_version(obj: dict[str, Any]) -> str | None:
    """``metadata.resourceVersion`` of an object, list or bookmark, if any."""
    rv = (obj.get("metadata") or {}).get("resourceVersion")
    return str(rv) if rv else None


def resync_interval(period: float, jitter: float, rng: random.Random | None = None) -> float:
    """Seconds until the next resync: ``period`` scaled by a uniform factor in
    [1 - jitter, 1 + jitter] (jitter 0.1 = ± 10 %)."""
    r = rng or random
    return period * r.uniform(1.0 - jitter, 1.0 + jitter)


@dataclass
class InformerStats:
    """What an informer asked of the API server and what it saw (for benchmarks and tests)."""

    #: LIST requests (the first list, re-lists after 410, resyncs, retries after errors).
    lists: int = 0
    #: WATCH requests (each connection).
    watches: int = 0
    #: Re-lists caused by 410 Gone.
    relists_410: int = 0
    #: Periodic resyncs done.
    resyncs: int = 0
    #: Watches dropped by the client-side inactivity timeout.
    inactivity_reconnects: int = 0
    #: Failed requests or streams other than 410 and inactivity (each one backed off).
    errors: int = 0
    #: ADDED/MODIFIED/DELETED events received from watches.
    events: int = 0
    #: BOOKMARK events received.
    bookmarks: int = 0

    @property
    def requests(self) -> int:
        """API requests made: lists plus watches."""
        return self.lists + self.watches


class Informer:
    """List-then-watch one resource into a cache (module docstring for the protocol).

    ``list_func``: a list function of the official client with its path arguments bound
    (keyword arguments such as ``label_selector`` may be bound too). Durations in seconds;
    ``resync_period`` ``None`` or 0 turns the periodic resync off. ``request_timeout`` bounds
    a list request and the connection of a watch. ``transform``: applied to every object
    before it is cached and handed out (keep only what the handler reads: a cache of 2,000
    full Deployments would cost the operator tens of MiB, by estimate). ``page_size``: objects
    per list request (``_list``; 0: one unpaged list).
    """

    def __init__(
        self,
        list_func: ListFunc,
        *,
        on_event: EventHandler | None = None,
        name: str = "informer",
        resync_period: float | None = DEFAULT_RESYNC_PERIOD,
        resync_jitter: float = DEFAULT_RESYNC_JITTER,
        inactivity_timeout: float = DEFAULT_INACTIVITY_TIMEOUT,
        watch_timeout: float = DEFAULT_WATCH_TIMEOUT,
        request_timeout: float = 30.0,
        backoff_initial: float = 1.0,
        backoff_max: float = 30.0,
        rng: random.Random | None = None,
        transform: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
        page_size: int = DEFAULT_PAGE_SIZE,
    ) -> None:
        if not 0 <= resync_jitter < 1:
            raise ValueError(f"resync_jitter must be in [0, 1), got {resync_jitter}")
        for field_name, value in (
            ("inactivity_timeout", inactivity_timeout),
            ("watch_timeout", watch_timeout),
            ("request_timeout", request_timeout),
            ("backoff_initial", backoff_initial),
        ):
            if value <= 0:
                raise ValueError(f"{field_name} must be > 0 seconds, got {value}")
        if backoff_max < backoff_initial:
            raise ValueError(
                f"backoff_max must be >= backoff_initial, got {backoff_max} < {backoff_initial}"
            )
        self.list_func = list_func
        self.name = name
        self.resync_period = resync_period or 0.0
        self.resync_jitter = resync_jitter
        self.inactivity_timeout = inactivity_timeout
        self.watch_timeout = watch_timeout
        self.request_timeout = request_timeout
        self.backoff_initial = backoff_initial
        self.backoff_max = backoff_max
        self.stats = InformerStats()
        self._transform = transform
        self.page_size = page_size
        self._rng = rng or random.Random()
        self._handlers: list[EventHandler] = [on_event] if on_event else []
        self._lock = threading.Lock()
        self._cache: dict[str, dict[str, Any]] = {}
        self._rv: str | None = None
        self._next_resync = math.inf
        self._synced = threading.Event()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        # One Watch per informer: ``stop()`` reaches the stream it is reading.
        self._watch = watch.Watch(return_type="object")

    @classmethod
    def for_custom_objects(
        cls,
        api_client: client.ApiClient,
        group: str,
        version: str,
        plural: str,
        namespace: str | None = None,
        *,
        label_selector: str | None = None,
        **options: Any,
    ) -> Informer:
        """An informer of the custom resource ``plural.group/version``, in ``namespace`` or
        cluster-wide (``namespace`` None); ``options`` as for ``Informer``."""
        api = client.CustomObjectsApi(api_client)
        selector = {"label_selector": label_selector} if label_selector else {}
        func: ListFunc
        if namespace:
            func = functools.partial(
                api.list_namespaced_custom_object, group, version, namespace, plural, **selector
            )
        else:
            func = functools.partial(
                api.list_cluster_custom_object, group, version, plural, **selector
            )
        options.setdefault("name", f"{plural}.{group}")
        return cls(func, **options)

    # -- the cache ---------------------------------------------------------------------

    def add_handler(self, handler: EventHandler) -> None:
        """Call ``handler(kind, obj)`` for every event from now on (before ``start``)."""
        self._handlers.append(handler)

    def get(self, key: str) -> dict[str, Any] | None:
        """The latest object stored under ``key`` (``namespace/name``), or None."""
        with self._lock:
            return self._cache.get(key)

    def list(self) -> builtins.list[dict[str, Any]]:
        """Every object in the cache (a snapshot; the dicts are shared, do not mutate)."""
        with self._lock:
            return list(self._cache.values())

    def remember(self, obj: dict[str, Any]) -> None:
        """Store ``obj`` as this process just wrote it (the answer of its create or patch),
        unless the cache holds a newer resourceVersion of it already: a list read right
        after a write of this process shows the write before its watch event arrives.
        resourceVersions are compared as the integers the API server gives (etcd's
        revisions); one that is not an integer is stored as it is."""
        if self._transform is not None:
            obj = self._transform(obj)
        key, rv = object_key(obj), resource_version(obj)
        with self._lock:
            held = resource_version(self._cache.get(key) or {})
            if rv and held and rv.isdigit() and held.isdigit() and int(held) >= int(rv):
                return
            self._cache[key] = obj

    def keys(self) -> builtins.list[str]:
        with self._lock:
            return list(self._cache)

    def has_synced(self) -> bool:
        """True once the first full list was stored and handed to the handlers."""
        return self._synced.is_set()

    def wait_for_sync(self, timeout: float | None = None) -> bool:
        """Block until ``has_synced()`` (at most ``timeout`` seconds); its value."""
        return self._synced.wait(timeout)

    @property
    def last_resource_version(self) -> str | None:
        """The resourceVersion a reconnect resumes from (the last event's or bookmark's)."""
        return self._rv

    # -- lifecycle ---------------------------------------------------------------------

    def start(self) -> None:
        """Run the informer on a daemon thread of its own (``informer-<name>``)."""
        if self._thread is not None:
            raise RuntimeError(f"informer {self.name} already started")
        self._thread = threading.Thread(target=self._run, name=f"informer-{self.name}", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        """Stop promptly: close the open stream and wait up to ``timeout`` seconds for the
        thread (a list in flight ends within ``request_timeout``)."""
        self._stopping.set()
        thread = self._thread
        deadline = time.monotonic() + timeout
        while thread is not None and thread.is_alive() and time.monotonic() < deadline:
            # Repeated: a stream opened just after one call is closed by the next.
            self._watch.stop()
            thread.join(0.1)

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    # -- the loop ----------------------------------------------------------------------

    def _run(self) -> None:
        need_list = True
        backoff = self.backoff_initial
        while not self._stopping.is_set():
            delivered = self.stats.events + self.stats.bookmarks
            try:
                if need_list:
                    self._relist()
                    need_list = False
                    backoff = self.backoff_initial
                self._watch_once()
                backoff = self.backoff_initial
            except ApiException as exc:
                if self._stopping.is_set():
                    break
                if exc.status == GONE and not need_list:
                    log.info(
                        "%s: resourceVersion %s is gone (410): re-listing", self.name, self._rv
                    )
                    self.stats.relists_410 += 1
                    need_list = True
                    continue
                backoff = self._failed(exc, backoff, delivered)
            except urllib3.exceptions.ReadTimeoutError:
                if self._stopping.is_set():
                    break
                if need_list:  # the list itself timed out
                    backoff = self._failed(TimeoutError("list timed out"), backoff, delivered)
                    continue
                log.info(
                    "%s: no event for %.0f s: reconnecting from %s",
                    self.name,
                    self.inactivity_timeout,
                    self._rv,
                )
                self.stats.inactivity_reconnects += 1
            except Exception as exc:  # a broken stream, a refused connection, a bad answer
                if self._stopping.is_set():
                    break
                if not need_list and self._resync_due():
                    continue  # the stream was closed on purpose (the resync timer)
                backoff = self._failed(exc, backoff, delivered)
            if not need_list and self._resync_due():
                self._replay()
        log.debug("%s: stopped", self.name)

    def _failed(self, exc: BaseException, backoff: float, delivered: int) -> float:
        """Count and log a failure, wait ``backoff`` (interruptible); the next back-off."""
        if self.stats.events + self.stats.bookmarks > delivered:
            backoff = self.backoff_initial  # the stream worked for a while: start over
        self.stats.errors += 1
        log.warning("%s: %s; retrying in %.1f s", self.name, describe(exc), backoff)
        self._stopping.wait(backoff)
        return min(backoff * 2, self.backoff_max)

    def _resync_due(self) -> bool:
        return time.monotonic() >= self._next_resync

    def _list(self) -> tuple[builtins.list[dict[str, Any]], str | None]:
        """Every object (transformed) and the list's resourceVersion, in pages of
        ``page_size`` (``DEFAULT_PAGE_SIZE``; client-go pages too): only one page of full
        objects is parsed at a time, so a list of 1,000 large objects costs the memory of
        its transformed objects plus one page, not of the whole answer. The pages are one
        snapshot (the API server serves every page at the first one's resourceVersion); a
        continue token that expired (410) gives one unpaged list instead, as client-go's
        pager does."""
        items: builtins.list[dict[str, Any]] = []
        token: str | None = None
        while True:
            paging: dict[str, Any] = {"limit": self.page_size} if self.page_size else {}
            if token:
                paging["_continue"] = token
            self.stats.lists += 1
            try:
                resp = self.list_func(
                    _preload_content=False, _request_timeout=self.request_timeout, **paging
                )
            except ApiException as exc:
                if exc.status != GONE or not token:
                    raise
                log.info("%s: the list's continue token expired: listing unpaged", self.name)
                items, token, paging = [], None, {}
                self.stats.lists += 1
                resp = self.list_func(_preload_content=False, _request_timeout=self.request_timeout)
            try:
                doc = orjson.loads(resp.data)
            finally:
                resp.release_conn()
            page = doc.pop("items", None) or []  # the page's full objects go with it
            if self._transform is not None:
                page = [self._transform(obj) for obj in page]
            items.extend(page)
            token = (doc.get("metadata") or {}).get("continue") if paging else None
            if not token:
                return items, resource_version(doc)

    def _replay(self) -> None:
        """The periodic resync: ``RESYNC`` for every cached object, no request."""
        with self._lock:
            cached = builtins.list(self._cache.values())
        self.stats.resyncs += 1
        self._next_resync = time.monotonic() + resync_interval(
            self.resync_period, self.resync_jitter, self._rng
        )
        for obj in cached:
            self._dispatch(RESYNC, obj)

    def _relist(self) -> None:
        items, rv = self._list()
        fresh = {object_key(obj): obj for obj in items}
        with self._lock:
            old, self._cache = self._cache, fresh
            self._rv = rv
        if self.resync_period > 0:
            self._next_resync = time.monotonic() + resync_interval(
                self.resync_period, self.resync_jitter, self._rng
            )
        log.debug("%s: listed %d objects at %s", self.name, len(fresh), self._rv)
        for key, obj in fresh.items():
            before = old.get(key)
            if before is None:
                self._dispatch(ADDED, obj)
            elif resource_version(before) != resource_version(obj):
                self._dispatch(MODIFIED, obj)
        for key, obj in old.items():
            if key not in fresh:
                self._dispatch(DELETED, obj)
        self._synced.set()

    def _watch_once(self) -> None:
        """One watch connection from the last resourceVersion, until the server ends it,
        the resync is due, or ``stop()``."""
        until_resync = self._next_resync - time.monotonic()
        if until_resync <= 0 or self._stopping.is_set():
            return
        server_timeout = self._rng.uniform(self.watch_timeout, 2 * self.watch_timeout)
        server_timeout = min(server_timeout, until_resync)
        timer = None
        if not math.isinf(until_resync):
            timer = threading.Timer(until_resync, self._watch.stop)
            timer.daemon = True
            timer.start()
        self.stats.watches += 1
        try:
            stream = self._watch.stream(
                self.list_func,
                resource_version=self._rv,
                allow_watch_bookmarks=True,
                timeout_seconds=max(1, math.ceil(server_timeout)),
                _request_timeout=(self.request_timeout, self.inactivity_timeout),
            )
            for event in stream:
                self._apply(event)
                if self._stopping.is_set():
                    break
        finally:
            if timer is not None:
                timer.cancel()

    def _apply(self, event: dict[str, Any]) -> None:
        kind = event.get("type")
        obj = event.get("raw_object") or event.get("object") or {}
        rv = resource_version(obj)
        if kind == BOOKMARK:
            self.stats.bookmarks += 1
            if rv:
                self._rv = rv
            return
        if kind not in (ADDED, MODIFIED, DELETED):
            log.warning("%s: ignoring a watch event of type %r", self.name, kind)
            return
        self.stats.events += 1
        if self._transform is not None:
            obj = self._transform(obj)
        key = object_key(obj)
        with self._lock:
            if kind == DELETED:
                self._cache.pop(key, None)
            else:
                self._cache[key] = obj
            if rv:
                self._rv = rv
        self._dispatch(kind, obj)

    def _dispatch(self, kind: str, obj: dict[str, Any]) -> None:
        for handler in self._handlers:
            try:
                handler(kind, obj)
            except Exception:
                log.exception("%s: handler failed on %s %s", self.name, kind, object_key(obj))


def describe(exc: BaseException) -> str:
    """A short description of a client error for logs (status and reason, no body)."""
    if isinstance(exc, ApiException):
        return f"API error {exc.status} {exc.reason}"
    return f"{type(exc).__name__}: {exc}"
