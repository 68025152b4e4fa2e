"""The operator runs the one-shot operation requests in the tenant's turn, in-process on the
simulated cluster with real helm: a rollback request end to end (the OdooTenant's spec made
the revision's, so helm history gains exactly the rollback's revision), a request for a
tenant that does not exist, a request interrupted by the operator's stop (started again
once, then ``Interrupted``), and finished requests deleted by the sweep after their TTL.

Backups, restores and verifications run Jobs that need a real node: the real-node test
(tests/realnode/test_platform_on_real_node.py) chains them on one tenant, run by the
operator in the cluster.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from saasodoo.adapters.resources import CustomResources, TenantResources, apply_crd
from saasodoo.context import Context
from saasodoo.core import operations as ops
from saasodoo.core.conditions import get_condition, ready_for
from saasodoo.errors import InvalidInput
from saasodoo.operator.run import Operator
from saasodoo.settings import Settings
from tests.support import Cluster, eventually, namespace_record

pytestmark = pytest.mark.cluster

NAMESPACE = "saasodoo-optest-rq"
TENANT = "rq-roll"


def settings(kube: Cluster) -> Settings:
    return Settings(
        kubeconfig=kube.kubeconfig, helm_binary=str(kube.tools.helm(4)),
        base_domain="odoo.test", helm_timeout="5m", system_namespace=NAMESPACE,
        operator_workers=2, operator_lease="rq-test", operator_request_ttl_seconds=3600,
    )  # fmt: skip


@contextmanager
def operating(kube: Cluster) -> Iterator[Operator]:
    """An operator running in this process (its own thread) until the block ends; then
    stopped gracefully (the Lease released)."""
    op = Operator(Context(settings(kube)))
    done = threading.Event()
    thread = threading.Thread(target=op.run, kwargs={"until": done.is_set}, daemon=True)
    thread.start()
    try:
        eventually(lambda: op.elector.is_leader and op.workers, timeout=60, interval=0.1,
                   what="the operator to lead")  # fmt: skip
        yield op
    finally:
        done.set()
        thread.join(timeout=120)


def kinds(kube: Cluster) -> dict[str, CustomResources]:
    from saasodoo.adapters.kube import Kube

    k = Kube(settings(kube))
    return {op.kind: CustomResources(k, NAMESPACE, op.plural, op.kind)
            for op in ops.KINDS.values()}  # fmt: skip


@pytest.fixture(scope="module")
def tenants(kube: Cluster) -> Iterator[TenantResources]:
    """The CRDs installed; OdooTenant ``rq-roll`` at two helm revisions (plan starter, then
    standard), applied by an operator; deleted through an operator at the end."""
    from saasodoo.adapters.kube import Kube

    k = Kube(settings(kube))
    for manifest in ops.crd_manifests():
        apply_crd(k, manifest)
    k.create_namespace_if_absent(NAMESPACE)
    res = TenantResources(k, NAMESPACE)
    with operating(kube):
        if res.get(TENANT) is None:
            spec = {"adminEmail": "admin@rq.example", "plan": "starter", "finalBackup": False}
            res.create({"metadata": {"name": TENANT}, "spec": spec})
            converged(res)
            res.patch(TENANT, {"spec": {"plan": "standard"}})
            converged(res)
    yield res
    with operating(kube):
        res.patch(TENANT, {"spec": {"finalBackup": False}})
        res.delete(TENANT)
        eventually(lambda: res.get(TENANT) is None, timeout=180, what=f"{TENANT} deleted")
    kube.kubectl("delete", "namespace", NAMESPACE, "--wait=false")


def converged(res: TenantResources) -> dict[str, Any]:
    return eventually(lambda: (o := res.get(TENANT)) and ready_for(o) and o, timeout=180,
                      interval=0.2, what=f"{TENANT} Ready for its generation")  # fmt: skip


def helm_history(kube: Cluster) -> list[int]:
    out = kube.helm(4, "history", TENANT, "-n", f"tenant-{TENANT}", "-o", "json").stdout
    return [r["revision"] for r in json.loads(out)]


def ask(kube: Cluster, op: ops.OperationKind, tenant: str, **spec: Any) -> dict[str, Any]:
    body = ops.request_body(op, NAMESPACE, tenant, **spec)
    return kinds(kube)[op.kind].create(body)


def finished(kube: Cluster, req: dict[str, Any], timeout: float = 180) -> dict[str, Any]:
    res = kinds(kube)[req["kind"]]
    name = req["metadata"]["name"]
    return eventually(lambda: (o := res.get(name)) and ops.is_terminal(o) and o,
                      timeout=timeout, interval=0.2, what=f"{name} finished")  # fmt: skip


def events_about(kube: Cluster, name: str) -> list[str]:
    out = kube.kubectl("-n", NAMESPACE, "get", "events.events.k8s.io", "-o", "json")
    return [e.get("note", "") for e in json.loads(out)["items"]
            if (e.get("regarding") or {}).get("name") == name]  # fmt: skip


def test_a_rollback_request_returns_the_release_and_the_spec_without_another_helm_call(
    kube: Cluster, tenants: TenantResources
) -> None:
    before = helm_history(kube)
    tenant = tenants.get(TENANT)
    assert tenant is not None and tenant["spec"]["plan"] == "standard"
    with operating(kube) as op:
        req = ask(kube, ops.ROLLBACK, TENANT, revision=before[-2])
        done = finished(kube, req)
        st = done["status"]
        assert st["phase"] == "Succeeded", st
        assert st["attempts"] == 1 and st["revision"] == before[-1] + 1
        assert st["result"]["plan"] == "starter" and st["result"]["revision"] == st["revision"]
        assert get_condition(st["conditions"], "Ready")["status"] == "True"
        assert done["metadata"]["ownerReferences"] == [ops.owner_reference(tenant)]
        # The OdooTenant now asks for the revision's spec, and is in sync with it: its next
        # reconcile runs no helm.
        after = converged(tenants)
        assert after["spec"]["plan"] == "starter"
        # The rollback's record: on the OdooTenant (the revision's spec, what it applied),
        # none on the namespace.
        assert namespace_record(kube, TENANT) == {}
        record = after["status"]["record"]
        assert json.loads(record["spec"])["plan"] == "starter", record
        assert record["applied"]["revision"] == st["revision"] and "operation" not in record
        assert after["metadata"]["generation"] == tenant["metadata"]["generation"] + 1
        calls = op.ctx.helm.calls
        assert helm_history(kube) == [*before, before[-1] + 1]
        eventually(lambda: not op.queue.processing() and len(op.queue) == 0, timeout=30,
                   interval=0.1, what="the queue idle")  # fmt: skip
        assert op.ctx.helm.calls == calls and helm_history(kube) == [
            *before,
            before[-1] + 1,
        ]
    name = req["metadata"]["name"]
    notes = events_about(kube, name)
    assert any("rollback of rq-roll" in n for n in notes) and any("rolled back" in n for n in notes)
    assert any(name in n for n in events_about(kube, TENANT))


def test_a_request_for_a_tenant_that_does_not_exist_fails(
    kube: Cluster, tenants: TenantResources
) -> None:
    with operating(kube):
        done = finished(kube, ask(kube, ops.BACKUP, "rq-nosuch"))
    st = done["status"]
    assert st["phase"] == "Failed" and "rq-nosuch" in st["message"], st
    stalled = get_condition(st["conditions"], "Stalled")
    assert stalled and stalled["reason"] == ops.REASON_TENANT_NOT_FOUND
    assert "attempts" not in st  # never started


def test_a_request_interrupted_by_the_operators_stop_starts_again_once(
    kube: Cluster, tenants: TenantResources
) -> None:
    """Found Running when its turn comes (written here as the stopped operator left it):
    started again while attempts < MAX_ATTEMPTS, else Failed/Interrupted."""
    res = kinds(kube)[ops.ROLLBACK.kind]
    revision = helm_history(kube)[-1]
    stamp = datetime.now(UTC)
    left = []
    for attempts in (1, ops.MAX_ATTEMPTS):
        req = ask(kube, ops.ROLLBACK, TENANT, revision=revision)
        status = ops.transition(None, ops.RUNNING, generation=1, now=stamp,
                                message="rollback of rq-roll")  # fmt: skip
        left.append(res.patch_status(req["metadata"]["name"], {**status, "attempts": attempts}))
    with operating(kube):
        again, gave_up = (finished(kube, r) for r in left)
        converged(tenants)
    assert again["status"]["phase"] == "Succeeded", again["status"]
    assert again["status"]["attempts"] == 2
    assert "started again (attempt 2" in " ".join(events_about(kube, again["metadata"]["name"]))
    st = gave_up["status"]
    assert st["phase"] == "Failed" and st["attempts"] == ops.MAX_ATTEMPTS, st
    assert get_condition(st["conditions"], "Stalled")["reason"] == ops.REASON_INTERRUPTED


def test_the_sweep_deletes_finished_requests_after_their_ttl(
    kube: Cluster, tenants: TenantResources
) -> None:
    res = kinds(kube)[ops.BACKUP.kind]
    with operating(kube) as op:
        old, recent = (finished(kube, ask(kube, ops.BACKUP, "rq-gone")) for _ in range(2))
        past = datetime.now(UTC) - timedelta(
            seconds=op.ctx.settings.operator_request_ttl_seconds + 60
        )
        name = old["metadata"]["name"]
        res.patch_status(name, {"completedAt": past.strftime("%Y-%m-%dT%H:%M:%SZ")})
        informer = op.request_informers[ops.BACKUP.kind]
        ttl = op.ctx.settings.operator_request_ttl_seconds
        cached = f"{NAMESPACE}/{name}"
        eventually(lambda: ops.expired(informer.get(cached) or {}, datetime.now(UTC), ttl),
                   timeout=30, interval=0.1, what="the old completedAt cached")  # fmt: skip
        op.sweep()
        assert res.get(name) is None
        assert res.get(recent["metadata"]["name"]) is not None
        assert op.stats.requests_expired == 1


def test_a_download_request_starts_a_reader_pod_the_platform_alone_may_reach(
    kube: Cluster, tenants: TenantResources
) -> None:
    """#24 point 6: a backup kept on the tenant's volume, which no platform process mounts,
    is served once by a short-lived reader pod the operator starts (the bytes themselves are
    tested on the real node and in tests/backups: kwok runs no container)."""
    digest = hashlib.sha256(b"the-api-keeps-this").hexdigest()
    backup = "20261206T120000Z-on-demand.zip"
    with pytest.raises(InvalidInput) as refused:  # the API server checks the spec itself
        ask(kube, ops.DOWNLOAD, TENANT, backup=backup, token_sha256="not-a-digest")
    assert "spec.tokenSha256" in refused.value.message, refused.value.message
    with operating(kube):
        done = finished(kube, ask(kube, ops.DOWNLOAD, TENANT, backup=backup,
                                  token_sha256=digest))  # fmt: skip
    status = done["status"]
    assert status["phase"] == ops.SUCCEEDED, status
    served = status["result"]
    assert served["address"].endswith(":8070") and served["expiresAt"], served
    namespace = f"tenant-{TENANT}"
    job = json.loads(kube.kubectl("-n", namespace, "get", "job", served["job"], "-o", "json"))
    [container] = job["spec"]["template"]["spec"]["containers"]
    assert "--serve" in container["command"] and f"--backup={backup}" in container["command"]
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["SAASODOO_SERVE_TOKEN_SHA256"] == digest  # the token itself is nowhere
    assert job["spec"]["activeDeadlineSeconds"] and job["spec"]["ttlSecondsAfterFinished"]
    policy = json.loads(kube.kubectl("-n", namespace, "get", "networkpolicy", served["job"],
                                     "-o", "json"))  # fmt: skip
    assert policy["metadata"]["ownerReferences"][0]["uid"] == job["metadata"]["uid"]
    assert policy["spec"]["podSelector"] == {"matchLabels": {"job-name": served["job"]}}
    [rule] = policy["spec"]["ingress"]
    assert rule["from"] == [
        {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": NAMESPACE}}}
    ]
    assert rule["ports"] == [{"port": 8070, "protocol": "TCP"}]
