"""The operator's runtime against the real API server: the informer follows ConfigMaps and a
throw-away custom resource (``widgets.test.saasodoo.dev``, removed after), re-lists on a real
410 Gone, reconnects after its inactivity timeout and resyncs at a constant request cost;
leader election on a real Lease hands over on stop, on death and on a take-over.

How the 410 is had for real: a custom resource's watch cache starts when its CRD becomes
Established, and the API server answers a watch from an older resourceVersion with an ERROR
event ``410 Expired: too old resource version``. The informer's first list answer has its
resourceVersion replaced by "1" (a list whose version was compacted meanwhile); the real
server then refuses the watch and the informer must re-list.
"""

from __future__ import annotations

import functools
import json
import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from kubernetes import client, config, watch
from kubernetes.client.rest import ApiException

from saasodoo.adapters.kube.informer import Informer, object_key
from saasodoo.operator.election import LeaderElector, micro_now
from tests.support import Cluster, eventually

pytestmark = pytest.mark.cluster

GROUP = "test.saasodoo.dev"
VERSION = "v1"
PLURAL = "widgets"
CRD_NAME = f"{PLURAL}.{GROUP}"
LABEL = "saasodoo.dev/test=operator-runtime"


@pytest.fixture(scope="module")
def namespace(kube: Cluster) -> Iterator[str]:
    name = f"op-runtime-{uuid.uuid4().hex[:6]}"
    kube.core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name)))
    yield name
    kube.core.delete_namespace(name)


@pytest.fixture(scope="module")
def widgets(kube: Cluster) -> Iterator[str]:
    """A throw-away namespaced CRD of our own test group, Established; deleted after."""
    ext = client.ApiextensionsV1Api(kube.api)
    body = {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": CRD_NAME},
        "spec": {
            "group": GROUP,
            "scope": "Namespaced",
            "names": {"plural": PLURAL, "singular": "widget", "kind": "Widget"},
            "versions": [
                {
                    "name": VERSION,
                    "served": True,
                    "storage": True,
                    "schema": {
                        "openAPIV3Schema": {
                            "type": "object",
                            "x-kubernetes-preserve-unknown-fields": True,
                        }
                    },
                }
            ],
        },
    }
    try:
        ext.create_custom_resource_definition(body)
    except ApiException as exc:
        if exc.status != 409:  # a leftover of an interrupted run is reused
            raise

    def established() -> bool:
        crd = ext.read_custom_resource_definition(CRD_NAME)
        return any(
            c.type == "Established" and c.status == "True" for c in crd.status.conditions or []
        )

    eventually(established, timeout=30, interval=0.2, what=f"CRD {CRD_NAME} Established")
    yield CRD_NAME
    ext.delete_custom_resource_definition(CRD_NAME)


class Recorder:
    def __init__(self) -> None:
        self.events: list[tuple[str, str, dict[str, Any]]] = []
        self.lock = threading.Lock()

    def __call__(self, kind: str, obj: dict[str, Any]) -> None:
        with self.lock:
            self.events.append((kind, object_key(obj), obj))

    def seen(self, kind: str, key: str) -> bool:
        with self.lock:
            return any(k == kind and o == key for k, o, _ in self.events)

    def count(self, kind: str) -> int:
        with self.lock:
            return sum(1 for k, _, _ in self.events if k == kind)


def widget(name: str, size: int) -> dict[str, Any]:
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "Widget",
        "metadata": {"name": name, "labels": {"saasodoo.dev/test": "operator-runtime"}},
        "spec": {"size": size},
    }


def test_informer_follows_configmaps(kube: Cluster, namespace: str) -> None:
    rec = Recorder()
    lister = functools.partial(
        kube.core.list_namespaced_config_map, namespace, label_selector=LABEL
    )
    informer = Informer(lister, on_event=rec, name="configmaps", resync_period=None)
    meta = client.V1ObjectMeta(name="before", labels={"saasodoo.dev/test": "operator-runtime"})
    kube.core.create_namespaced_config_map(namespace, client.V1ConfigMap(metadata=meta))
    informer.start()
    try:
        assert informer.wait_for_sync(10)
        assert rec.seen("ADDED", f"{namespace}/before")
        meta = client.V1ObjectMeta(name="cm1", labels={"saasodoo.dev/test": "operator-runtime"})
        kube.core.create_namespaced_config_map(
            namespace, client.V1ConfigMap(metadata=meta, data={"v": "1"})
        )
        eventually(lambda: rec.seen("ADDED", f"{namespace}/cm1"), timeout=5, interval=0.05,
                   what="ADDED")  # fmt: skip
        kube.core.patch_namespaced_config_map("cm1", namespace, {"data": {"v": "2"}})
        eventually(lambda: rec.seen("MODIFIED", f"{namespace}/cm1"), timeout=5, interval=0.05,
                   what="MODIFIED")  # fmt: skip
        assert (informer.get(f"{namespace}/cm1") or {}).get("data") == {"v": "2"}
        kube.core.delete_namespaced_config_map("cm1", namespace)
        eventually(lambda: rec.seen("DELETED", f"{namespace}/cm1"), timeout=5, interval=0.05,
                   what="DELETED")  # fmt: skip
        assert informer.get(f"{namespace}/cm1") is None
        assert informer.keys() == [f"{namespace}/before"]
        assert informer.stats.lists == 1 and informer.stats.errors == 0
        begun = time.monotonic()
        informer.stop()  # closes the open stream: no waiting for the server or the timeout
        assert time.monotonic() - begun < 2.0
    finally:
        informer.stop()
    assert not informer.running


def test_informer_follows_a_custom_resource(kube: Cluster, namespace: str, widgets: str) -> None:
    custom = client.CustomObjectsApi(kube.api)
    rec = Recorder()
    informer = Informer.for_custom_objects(
        kube.api, GROUP, VERSION, PLURAL, namespace, label_selector=LABEL, on_event=rec,
        resync_period=None,
    )  # fmt: skip
    informer.start()
    try:
        assert informer.wait_for_sync(10)
        custom.create_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, widget("w1", 1))
        key = f"{namespace}/w1"
        eventually(lambda: rec.seen("ADDED", key), timeout=5, interval=0.05, what="ADDED")
        custom.patch_namespaced_custom_object(
            GROUP, VERSION, namespace, PLURAL, "w1", {"spec": {"size": 2}}
        )
        eventually(lambda: rec.seen("MODIFIED", key), timeout=5, interval=0.05, what="MODIFIED")
        assert (informer.get(key) or {}).get("spec") == {"size": 2}
        custom.delete_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, "w1")
        eventually(lambda: rec.seen("DELETED", key), timeout=5, interval=0.05, what="DELETED")
        assert informer.get(key) is None
    finally:
        informer.stop()


def test_a_real_410_gone_makes_the_informer_re_list(
    kube: Cluster, namespace: str, widgets: str
) -> None:
    custom = client.CustomObjectsApi(kube.api)
    real = functools.partial(
        custom.list_namespaced_custom_object, GROUP, VERSION, namespace, PLURAL
    )
    # The server itself: a watch from "1" is older than the CRD's watch cache.
    with pytest.raises(ApiException) as gone:
        for _ in watch.Watch(return_type="object").stream(
            real, resource_version="1", timeout_seconds=5, _request_timeout=(5, 10)
        ):
            pass
    assert gone.value.status == 410, gone.value

    watched: list[str | None] = []
    lists: list[str] = []

    class Stale:
        """The first list answer claims resourceVersion "1"."""

        def __init__(self, resp: Any) -> None:
            doc = json.loads(resp.data)
            resp.release_conn()
            lists.append(doc["metadata"]["resourceVersion"])
            if len(lists) == 1:
                doc["metadata"]["resourceVersion"] = "1"
            self.data = json.dumps(doc).encode()

        def release_conn(self) -> None:
            pass

    def lister(**kwargs: Any) -> Any:
        if kwargs.get("watch"):
            watched.append(kwargs.get("resource_version"))
            return real(**kwargs)
        return Stale(real(**kwargs))

    custom.create_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, widget("w410", 1))
    rec = Recorder()
    informer = Informer(lister, on_event=rec, name="stale", resync_period=None)
    informer.start()
    try:
        assert informer.wait_for_sync(10)
        eventually(lambda: informer.stats.relists_410 == 1 and len(watched) >= 2, timeout=10,
                   interval=0.05, what="a re-list after 410")  # fmt: skip
        assert watched[0] == "1" and watched[1] == lists[1], (watched, lists)
        assert "1" not in watched[1:]  # never re-watched from the stale version
        assert informer.stats.lists == 2 and informer.stats.errors == 0
        # The informer then follows the resource normally.
        custom.patch_namespaced_custom_object(
            GROUP, VERSION, namespace, PLURAL, "w410", {"spec": {"size": 5}}
        )
        key = f"{namespace}/w410"
        eventually(lambda: (informer.get(key) or {}).get("spec") == {"size": 5}, timeout=5,
                   interval=0.05, what="the change after the re-list")  # fmt: skip
    finally:
        informer.stop()
        custom.delete_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, "w410")


def test_inactivity_timeout_reconnects_from_the_last_version(kube: Cluster, namespace: str) -> None:
    """No ConfigMap carries this label: the stream stays silent, so the client drops it."""
    lister = functools.partial(
        kube.core.list_namespaced_config_map, namespace, label_selector="nothing=here"
    )
    informer = Informer(lister, name="silent", resync_period=None, inactivity_timeout=1.0)
    informer.start()
    try:
        assert informer.wait_for_sync(10)
        eventually(lambda: informer.stats.inactivity_reconnects >= 2, timeout=15, interval=0.1,
                   what="two inactivity reconnects")  # fmt: skip
        assert informer.stats.lists == 1 and informer.stats.errors == 0
        assert informer.stats.watches >= 3
    finally:
        informer.stop()


def test_resync_hands_out_every_object_without_a_list(kube: Cluster, namespace: str) -> None:
    label = {"saasodoo.dev/test": "resync"}
    for i in range(30):
        meta = client.V1ObjectMeta(name=f"rs{i}", labels=label)
        kube.core.create_namespaced_config_map(namespace, client.V1ConfigMap(metadata=meta))
    rec = Recorder()
    lister = functools.partial(
        kube.core.list_namespaced_config_map, namespace, label_selector="saasodoo.dev/test=resync"
    )
    informer = Informer(lister, on_event=rec, name="resync", resync_period=1.0)
    informer.start()
    try:
        assert informer.wait_for_sync(10)
        eventually(lambda: informer.stats.resyncs >= 3, timeout=15, interval=0.1,
                   what="three resyncs")  # fmt: skip
        informer.stop()
        stats = informer.stats
        assert rec.count("ADDED") == 30
        assert rec.count("RESYNC") == 30 * stats.resyncs
        # client-go's resync: the cache replayed, the first list the only one; one watch
        # (re-opened from the last resourceVersion) per resync, whatever the number of objects.
        assert stats.lists == 1
        assert stats.resyncs <= stats.watches <= stats.resyncs + 1 and stats.errors == 0
    finally:
        informer.stop()
        kube.core.delete_collection_namespaced_config_map(
            namespace, label_selector="saasodoo.dev/test=resync"
        )


# -- leader election ------------------------------------------------------------------

SHORT = {"lease_duration": 3, "renew_deadline": 2.0, "retry_period": 0.5}


def elector(api: client.ApiClient, lease: str, namespace: str, identity: str,
            **kwargs: Any) -> LeaderElector:  # fmt: skip
    return LeaderElector(api, lease, namespace, identity=identity, **SHORT, **kwargs)


def read_lease(kube: Cluster, lease: str, namespace: str) -> Any:
    return client.CoordinationV1Api(kube.api).read_namespaced_lease(lease, namespace)


def only_one_leads(electors: list[LeaderElector], seconds: float) -> LeaderElector:
    """Sample for ``seconds``: never two leaders; the leader at the end."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        leaders = [e for e in electors if e.is_leader]
        assert len(leaders) <= 1, [e.identity for e in leaders]
        time.sleep(0.02)
    leaders = [e for e in electors if e.is_leader]
    assert len(leaders) == 1
    return leaders[0]


def test_two_electors_one_leads_and_a_graceful_stop_hands_over_within_a_retry(
    kube: Cluster, namespace: str
) -> None:
    lease = "runtime-handover"
    a = elector(kube.api, lease, namespace, "replica-a")
    b = elector(kube.api, lease, namespace, "replica-b")
    a.start()
    b.start()
    try:
        eventually(lambda: a.is_leader or b.is_leader, timeout=10, interval=0.05, what="a leader")
        leader = only_one_leads([a, b], 2.0)
        standby = b if leader is a else a
        assert read_lease(kube, lease, namespace).spec.holder_identity == leader.identity
        assert standby.holder() == leader.identity and leader.holder() == leader.identity
        before = read_lease(kube, lease, namespace).spec.lease_transitions

        leader.stop()  # graceful: released
        stopped = time.monotonic()
        eventually(lambda: standby.is_leader, timeout=5, interval=0.02, what="the standby")
        takeover = time.monotonic() - stopped
        assert takeover < SHORT["retry_period"] + 0.75, takeover  # ~1 retry, not the lease
        spec = read_lease(kube, lease, namespace).spec
        assert spec.holder_identity == standby.identity
        assert spec.lease_transitions == before + 1  # one change of holder (client-go's count)
        assert standby.transitions == before + 1
        assert not leader.is_leader
    finally:
        a.stop()
        b.stop()
    assert read_lease(kube, lease, namespace).spec.holder_identity is None


def test_release_clears_the_holder_as_client_go_does(kube: Cluster, namespace: str) -> None:
    lease = "runtime-release"
    a = elector(kube.api, lease, namespace, "replica-a")
    a.start()
    eventually(lambda: a.is_leader, timeout=10, interval=0.05, what="leading")
    a.stop()
    spec = read_lease(kube, lease, namespace).spec
    assert spec.holder_identity is None and spec.lease_duration_seconds == 1
    assert abs((micro_now() - spec.renew_time).total_seconds()) < 5


def test_a_dead_leader_is_replaced_after_the_lease_duration(kube: Cluster, namespace: str) -> None:
    lease = "runtime-death"
    a = elector(kube.api, lease, namespace, "replica-a")
    a.start()
    eventually(lambda: a.is_leader, timeout=10, interval=0.05, what="a leading")
    b = elector(kube.api, lease, namespace, "replica-b")
    b.start()
    try:
        time.sleep(1.0)
        assert not b.is_leader  # a renews: b waits
        a.stop(release=False)  # its renewals stop, no release: as after a SIGKILL
        died = time.monotonic()
        assert read_lease(kube, lease, namespace).spec.holder_identity == "replica-a"
        eventually(lambda: b.is_leader, timeout=10, interval=0.02, what="b taking over")
        takeover = time.monotonic() - died
        duration, retry = SHORT["lease_duration"], SHORT["retry_period"]
        # Not before the lease expired on b's clock (it saw a's last renewal up to one retry
        # before the death), and soon after.
        assert duration - 2 * retry <= takeover <= duration + 3 * retry, takeover
        assert read_lease(kube, lease, namespace).spec.holder_identity == "replica-b"
    finally:
        b.stop()


def test_a_take_over_stops_the_work_at_once(kube: Cluster, namespace: str) -> None:
    lease = "runtime-steal"
    work_ended = threading.Event()
    stopped_called = threading.Event()

    def work(term: threading.Event) -> None:
        while not term.wait(0.05):
            pass  # a reconcile loop checking its term
        work_ended.set()

    a = elector(kube.api, lease, namespace, "replica-a", on_started_leading=work,
                on_stopped_leading=stopped_called.set)  # fmt: skip
    a.start()
    try:
        eventually(lambda: a.is_leader, timeout=10, interval=0.05, what="a leading")
        term = a.term
        assert term is not None and not term.is_set()
        coordination = client.CoordinationV1Api(kube.api)
        current = coordination.read_namespaced_lease(lease, namespace)
        now = micro_now()
        current.spec.holder_identity = "thief"
        current.spec.acquire_time = now
        current.spec.renew_time = now
        current.spec.lease_duration_seconds = 30
        current.spec.lease_transitions = (current.spec.lease_transitions or 0) + 1
        coordination.replace_namespaced_lease(lease, namespace, current)
        stolen = time.monotonic()
        assert term.wait(5), "the term did not end"
        lost_after = time.monotonic() - stolen
        assert lost_after < SHORT["retry_period"] + 0.75, lost_after  # at the next read
        assert work_ended.wait(2) and stopped_called.wait(2)
        assert not a.is_leader and a.holder() == "thief"
        time.sleep(1.0)
        assert not a.is_leader  # the thief's lease is valid: no grabbing it back
    finally:
        a.stop()
    assert read_lease(kube, lease, namespace).spec.holder_identity == "thief"  # not ours


def test_failing_renewals_end_the_term_within_the_renew_deadline(
    kube: Cluster, namespace: str
) -> None:
    lease = "runtime-deadline"
    api = config.new_client_from_config(config_file=str(kube.kubeconfig))
    a = elector(api, lease, namespace, "replica-a")
    a.start()
    try:
        eventually(lambda: a.is_leader, timeout=10, interval=0.05, what="a leading")
        term = a.term
        assert term is not None
        api.configuration.host = "https://127.0.0.1:9"  # the API server is unreachable now
        cut = time.monotonic()
        assert term.wait(10)
        lost_after = time.monotonic() - cut
        # Within the renew deadline of the last renewal: before the lease expires for others.
        assert lost_after <= SHORT["renew_deadline"] + 0.3, lost_after
        assert lost_after < SHORT["lease_duration"]
        assert not a.is_leader
    finally:
        a.stop(release=False)
