"""The adapter's own small types, read from the API's JSON (``adapters.kube``): what the
backups and the placement read of Jobs, Deployments, pods and nodes."""

from __future__ import annotations

import pytest

from saasodoo.adapters.kube import Deployment, Job, JobCondition, Node, Pod

pytestmark = pytest.mark.unit


def test_a_job_reads_its_conditions_and_whether_it_still_runs() -> None:
    running = Job.from_json({"metadata": {"name": "r", "labels": {"a": "b"}}, "status": {}})
    assert running == Job("r", {"a": "b"}) and running.active
    failed = Job.from_json({
        "metadata": {"name": "f"},
        "status": {"failed": 1, "conditions": [
            {"type": "Failed", "status": "True", "reason": "BackoffLimitExceeded",
             "message": "Job has reached the specified backoff limit"},
        ]},
    })  # fmt: skip
    assert failed.conditions == (
        JobCondition("Failed", "True", "BackoffLimitExceeded",
                     "Job has reached the specified backoff limit"),
    )  # fmt: skip
    assert failed.failed == 1 and not failed.active
    done = Job.from_json(
        {"metadata": {"name": "d"}, "status": {"completionTime": "2026-01-01T00:00:00Z"}}
    )
    assert done.completed and not done.active


@pytest.mark.parametrize(
    ("spec", "replicas"), [({"replicas": 3}, 3), ({"replicas": 0}, 0), ({}, 1)]
)
def test_a_deployment_reads_replicas_as_the_api_defaults_them(
    spec: dict[str, int], replicas: int
) -> None:
    doc = {"metadata": {"name": "odoo", "generation": 4, "annotations": {"k": "v"}}, "spec": spec}
    assert Deployment.from_json(doc) == Deployment("odoo", replicas, 4, {"k": "v"})


def test_pods_and_nodes() -> None:
    pod = Pod.from_json({
        "metadata": {"name": "p", "namespace": "tenant-a", "labels": {"x": "y"}},
        "spec": {"nodeName": "n1"}, "status": {"phase": "Running"},
    })  # fmt: skip
    assert pod == Pod("p", "tenant-a", {"x": "y"}, "Running", "n1") and not pod.finished
    assert Pod.from_json({"metadata": {"name": "q"}, "status": {"phase": "Failed"}}).finished
    assert Pod.from_json({"metadata": {"name": "u"}}).node == ""
    assert Node.from_json({"metadata": {"name": "n1", "labels": {"z": "1"}}}) == Node(
        "n1", {"z": "1"}
    )
