"""Which Deployment events queue a tenant (saasodoo.operator.workloads)."""

from __future__ import annotations

from typing import Any

import pytest

from saasodoo.core.spec import COMPONENT_LABEL, TENANT_LABEL
from saasodoo.operator.workloads import WorkloadWatch, readiness, slim

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
    assert watch.observe("MODIFIED", slim(deployment(ready=1))) == "acme"  # Ready now
    assert watch.observe("RESYNC", slim(deployment(ready=1))) is None
    assert watch.observe("MODIFIED", slim(deployment(ready=1, generation=2))) == "acme"
    assert watch.observe("DELETED", slim(deployment(ready=1, generation=2))) == "acme"
    # Created again (by the reconcile): a new Deployment after the first list queues.
    assert watch.observe("ADDED", slim(deployment())) == "acme"


def test_a_deployment_without_the_tenant_label_queues_nothing() -> None:
    obj = deployment()
    del obj["metadata"]["labels"][TENANT_LABEL]
    assert WorkloadWatch().observe("DELETED", slim(obj)) is None
