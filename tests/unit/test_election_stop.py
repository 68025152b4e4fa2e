"""A graceful stop of the leader (``LeaderElector.stop``) releases the Lease as soon as its
work has returned, without waiting for a Lease request of the campaign's thread still in
flight (on a busy API server one took seconds: the bench's graceful takeover of 6.9 s), and
that request cannot take the Lease back: its replace carries the resourceVersion it read
before the release (409). Over a small in-memory Lease store standing in for the API."""

from __future__ import annotations

import copy
import threading
import time
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client.rest import ApiException

from saasodoo.operator.election import LeaderElector

pytestmark = pytest.mark.unit


class Leases:
    """One Lease with optimistic concurrency; the campaign thread's replace hangs while
    ``hang`` is set (``hung`` tells it is inside)."""

    def __init__(self) -> None:
        self.lease: client.V1Lease | None = None
        self.version = 0
        self.lock = threading.Lock()
        self.hang = threading.Event()
        self.hung = threading.Event()
        self.go = threading.Event()

    def read_namespaced_lease(self, name: str, namespace: str, **_: Any) -> client.V1Lease:
        with self.lock:
            if self.lease is None:
                raise ApiException(status=404)
            return copy.deepcopy(self.lease)

    def create_namespaced_lease(self, namespace: str, body: Any, **_: Any) -> client.V1Lease:
        with self.lock:
            if self.lease is not None:
                raise ApiException(status=409)
            self.version += 1
            body.metadata.resource_version = str(self.version)
            self.lease = copy.deepcopy(body)
            return copy.deepcopy(body)

    def replace_namespaced_lease(
        self, name: str, namespace: str, body: Any, **_: Any
    ) -> client.V1Lease:
        if self.hang.is_set() and threading.current_thread().name.startswith("election-"):
            self.hung.set()
            self.go.wait(10)
        with self.lock:
            assert self.lease is not None
            if body.metadata.resource_version != self.lease.metadata.resource_version:
                raise ApiException(status=409)
            self.version += 1
            body.metadata.resource_version = str(self.version)
            self.lease = copy.deepcopy(body)
            return copy.deepcopy(body)


def leader(leases: Leases) -> LeaderElector:
    """A candidate ``a`` leading over ``leases`` (its work waits for the term's end)."""
    worked = threading.Event()

    def lead(term: threading.Event) -> None:
        worked.set()
        term.wait()

    elector = LeaderElector(
        client.ApiClient(), "op", "ns", identity="a", lease_duration=6, renew_deadline=4,
        retry_period=0.2, on_started_leading=lead, request_timeout=2,
    )  # fmt: skip
    elector._api = leases  # type: ignore[assignment]
    elector.start()
    assert worked.wait(5) and elector.is_leader
    return elector


def test_a_graceful_stop_releases_without_waiting_for_a_hung_renewal() -> None:
    leases = Leases()
    elector = leader(leases)
    leases.hang.set()  # the next renewal hangs inside its replace
    assert leases.hung.wait(5)
    started = time.monotonic()
    stopping = threading.Thread(target=elector.stop)
    stopping.start()
    deadline = time.monotonic() + 3
    while time.monotonic() < deadline:
        with leases.lock:
            assert leases.lease is not None
            if leases.lease.spec.holder_identity is None:
                break
        time.sleep(0.01)
    released = time.monotonic() - started
    assert leases.lease.spec.holder_identity is None and released < 1.0
    assert not elector.is_leader
    leases.go.set()  # the hung renewal lands now: stale, refused
    stopping.join(5)
    assert not stopping.is_alive()
    assert leases.lease.spec.holder_identity is None


def test_a_stop_without_release_leaves_the_lease_held_whatever_the_thread_does() -> None:
    """``stop(release=False)`` (a replica stopped as if killed): neither ``stop`` nor the
    campaign's thread, once its renewal lands, releases the Lease; it expires."""
    leases = Leases()
    elector = leader(leases)
    leases.hang.set()
    assert leases.hung.wait(5)
    stopping = threading.Thread(target=elector.stop, kwargs={"release": False})
    stopping.start()
    time.sleep(0.3)
    leases.go.set()  # the renewal lands (its resourceVersion is still current)
    stopping.join(5)
    assert not stopping.is_alive() and not elector.is_leader
    assert leases.lease is not None and leases.lease.spec.holder_identity == "a"
