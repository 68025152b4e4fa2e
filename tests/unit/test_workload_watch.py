"""Which workload events queue a tenant, and the sweep's workloads from the informers'
caches (saasodoo.operator.workloads)."""

from __future__ import annotations

from typing import Any

import pytest

from saasodoo.core.spec import COMPONENT_LABEL, TENANT_LABEL
from saasodoo.core.status import Workload, add_workloads
from saasodoo.operator.workloads import WorkloadWatch, readiness, ready_in, slim, workloads_of

pytestmark = pytest.mark.unit


def deployment(ready: int = 0, generation: int = 1, **extra_status: Any) -> dict[str, Any]:
    return {
        "metadata": {
            "name": "acme-odoo-tenant", "namespace": "tenant-acme", "resourceVersion": "7",
            "generation": generation, "uid": "u", "managedFields": [{"manager": "helm"}],
            "labels": {TENANT_LABEL: "acme", COMPONENT_LABEL: "odoo", "helm.sh/chart": "x"},
        },
        "spec": {"replicas": 1, "template": {"spec": {"containers": [{"name": "odoo"}]}}},
        "status": {"observedGeneration": generation, "replicas": 1, "readyReplicas": ready,
                   "conditions": [{"type": "Available", "lastUpdateTime": "t"}],
                   **extra_status},
    }  # fmt: skip


def ready(obj: dict[str, Any]) -> dict[str, Any]:
    """``obj`` with its pods of the current generation (``updatedReplicas``)."""
    obj["status"]["updatedReplicas"] = obj["spec"]["replicas"]
    return obj


def test_the_cache_keeps_only_what_readiness_reads() -> None:
    small = slim(deployment(ready=1))
    assert small == {
        "metadata": {"name": "acme-odoo-tenant", "namespace": "tenant-acme",
                     "resourceVersion": "7", "generation": 1,
                     "labels": {TENANT_LABEL: "acme", COMPONENT_LABEL: "odoo"}},
        "spec": {"replicas": 1},
        "status": {"observedGeneration": 1, "replicas": 1, "readyReplicas": 1},
    }  # fmt: skip
    assert readiness(small) == readiness(deployment(ready=1))


def test_a_readiness_change_or_a_deletion_queues_the_tenant_other_changes_do_not() -> None:
    watch = WorkloadWatch()
    # The first list: a new term queues every tenant itself.
    assert watch.observe("ADDED", slim(deployment()), first_list=True) is None
    # A heartbeat of a condition only: nothing readiness reads changed.
    assert watch.observe("MODIFIED", slim(deployment())) is None
    assert watch.observe("MODIFIED", slim(ready(deployment(ready=1)))) == "acme"  # Ready now
    assert watch.observe("RESYNC", slim(ready(deployment(ready=1)))) is None
    # A rolling update: the new generation not observed yet (its pods not updated) ...
    rolling = ready(deployment(generation=2))
    rolling["status"]["observedGeneration"] = 1
    assert watch.observe("MODIFIED", slim(rolling)) == "acme"
    # ... its intermediate counts (observed, a surge pod, then the old one's end) queue nothing
    assert watch.observe("MODIFIED", slim(deployment(ready=1, generation=2))) is None
    assert watch.observe("MODIFIED", slim(ready(deployment(ready=2, generation=2)))) == "acme"
    assert watch.observe("MODIFIED", slim(ready(deployment(ready=1, generation=2)))) is None
    # scaled to zero (suspended): the wanted replicas changed
    suspended = ready(deployment(ready=0, generation=3))
    suspended["spec"]["replicas"] = 0
    assert watch.observe("MODIFIED", slim(suspended)) == "acme"
    assert watch.observe("DELETED", slim(suspended)) == "acme"
    # Created again (by the reconcile): a new Deployment after the first list queues.
    assert watch.observe("ADDED", slim(deployment())) == "acme"


def test_readiness_is_what_the_tenant_s_status_is_judged_on() -> None:
    for obj in (deployment(), ready(deployment()), ready(deployment(ready=2, generation=3))):
        (workload,) = add_workloads({}, "Deployment", [obj])["acme"]
        assert readiness(slim(obj)) == (workload.desired, workload.is_ready)


def test_a_deployment_without_the_tenant_label_queues_nothing() -> None:
    obj = deployment()
    del obj["metadata"]["labels"][TENANT_LABEL]
    assert WorkloadWatch().observe("DELETED", slim(obj)) is None


def test_a_statefulset_and_a_deployment_of_one_name_are_watched_apart() -> None:
    watch = WorkloadWatch()
    assert watch.observe("ADDED", slim(ready(deployment(ready=1))), first_list=True) is None
    assert watch.observe("ADDED", slim(deployment()), first_list=True,
                         workload="StatefulSet") is None  # fmt: skip
    # The Deployment's readiness is unchanged; the StatefulSet's own entry changes.
    assert watch.observe("MODIFIED", slim(ready(deployment(ready=1)))) is None
    assert watch.observe("MODIFIED", slim(ready(deployment(ready=1))),
                         workload="StatefulSet") == "acme"  # fmt: skip


def test_the_sweeps_workloads_from_the_slim_caches_equal_those_of_whole_objects() -> None:
    whole_deployments = [deployment(ready=1, updatedReplicas=1), deployment(generation=3)]
    whole_sets = [deployment(ready=1, updatedReplicas=1)]
    whole_sets[0]["metadata"]["labels"][COMPONENT_LABEL] = "postgresql"
    whole_deployments[1]["status"]["observedGeneration"] = 2  # a rollout not observed yet
    expected: dict[str, list[Workload]] = {}
    add_workloads(expected, "Deployment", whole_deployments)
    add_workloads(expected, "StatefulSet", whole_sets)
    got = workloads_of([slim(d) for d in whole_deployments], [slim(s) for s in whole_sets])
    assert got == expected
    assert [(w.kind, w.component, w.is_ready) for w in got["acme"]] == [
        ("Deployment", "odoo", True), ("Deployment", "odoo", False),
        ("StatefulSet", "postgresql", True),
    ]  # fmt: skip
    assert got["acme"][1].updated == 0


def test_a_readiness_change_during_the_tenants_turn_is_left_to_the_turns_end() -> None:
    """The rollout of a turn's own helm upgrade: its readiness changes do not queue the
    tenant while the turn runs; ``end`` says one came. A deletion queues it still."""
    watch = WorkloadWatch()
    watch.observe("ADDED", slim(ready(deployment(ready=1))), first_list=True)
    watch.begin("acme")
    assert watch.observe("MODIFIED", slim(deployment(ready=0, generation=2))) is None
    assert watch.observe("MODIFIED", slim(ready(deployment(ready=1, generation=2)))) is None
    assert watch.observe("DELETED", slim(deployment())) == "acme"
    assert watch.end("acme") is True
    assert watch.end("acme") is False  # said once
    # After the turn, a change queues again.
    watch.observe("ADDED", slim(ready(deployment(ready=1))))
    assert watch.observe("MODIFIED", slim(deployment(ready=0, generation=2))) == "acme"
    watch.begin("acme")
    assert watch.end("acme") is False  # nothing came during this one


def test_ready_in_reads_one_tenants_workloads() -> None:
    other = ready(deployment(ready=1))
    other["metadata"].update(namespace="tenant-beta", labels={TENANT_LABEL: "beta"})
    mine = slim(ready(deployment(ready=1)))
    assert ready_in("acme", [mine, slim(other)], []) is True
    assert ready_in("acme", [slim(deployment(ready=0)), slim(other)], []) is False
    assert ready_in("gamma", [mine], []) is None
