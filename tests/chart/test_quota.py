"""ResourceQuota and LimitRange per tenant: from values, and large enough for everything the
release itself runs at once (init containers, cron, backup and test pods included)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from tests.chart.helpers import (
    SCENARIO_IDS,
    SCENARIOS,
    find,
    one,
    pod_template,
    render,
    render_error,
    scenario_args,
)

pytestmark = pytest.mark.chart

UNITS = {
    "": 1,
    "m": 1e-3,
    "k": 1e3,
    "M": 1e6,
    "G": 1e9,
    "T": 1e12,
    "Ki": 2**10,
    "Mi": 2**20,
    "Gi": 2**30,
    "Ti": 2**40,
}


def quantity(value: str | int | float) -> float:
    match = re.fullmatch(r"([0-9]*\.?[0-9]+)([a-zA-Z]*)", str(value))
    assert match, value
    return float(match[1]) * UNITS[match[2]]


def pod_need(spec: dict[str, Any]) -> dict[str, float]:
    """What one pod counts in a quota: max(largest init container, sum of containers)."""
    need = {}
    for kind in ("requests", "limits"):
        for res in ("cpu", "memory"):
            total = sum(quantity(c["resources"][kind][res]) for c in spec["containers"])
            init = max(
                (quantity(c["resources"][kind][res]) for c in spec.get("initContainers", [])),
                default=0,
            )
            need[f"{kind}.{res}"] = max(total, init)
    return need


def release_need(docs: list[dict[str, Any]]) -> dict[str, float]:
    """What the rendered release may run at once, computed independently of the chart's helper."""
    total = {
        "requests.cpu": 0.0,
        "requests.memory": 0.0,
        "limits.cpu": 0.0,
        "limits.memory": 0.0,
        "pods": 0.0,
    }
    for doc in docs:
        kind = doc["kind"]
        if kind == "Deployment":
            count = doc["spec"]["replicas"]
            if count and doc["spec"]["strategy"]["type"] == "RollingUpdate":
                count += doc["spec"]["strategy"]["rollingUpdate"]["maxSurge"]
        elif kind == "StatefulSet":
            count = doc["spec"]["replicas"]
        elif kind == "CronJob":
            assert doc["spec"]["concurrencyPolicy"] == "Forbid"
            count = 1
        elif kind == "Job":  # the helm test hook
            count = 1
        else:
            continue
        for key, value in pod_need(pod_template(doc)["spec"]).items():
            total[key] += count * value
        total["pods"] += count
    storage = [
        quantity(d["spec"]["resources"]["requests"]["storage"])
        for d in find(docs, "PersistentVolumeClaim")
    ] + [
        quantity(t["spec"]["resources"]["requests"]["storage"])
        for d in find(docs, "StatefulSet")
        for t in d["spec"].get("volumeClaimTemplates", [])
    ]
    total["requests.storage"] = sum(storage)
    total["persistentvolumeclaims"] = len(storage)
    return total


@pytest.mark.parametrize("scenario", SCENARIOS, ids=SCENARIO_IDS)
def test_quota_covers_everything_the_release_runs_at_once(helm3: Path, scenario: Path) -> None:
    docs = render(helm3, *scenario_args(scenario))
    hard = one(docs, "ResourceQuota")["spec"]["hard"]
    for key, need in release_need(docs).items():
        assert need <= quantity(hard[key]), f"{key}: need {need}, quota {hard[key]}"


def test_quota_and_limit_range_from_values(helm3: Path) -> None:
    docs = render(
        helm3,
        "--set", "quota.hard.requests\\.cpu=3",
        "--set", "quota.hard.count/jobs\\.batch=20",
        "--set", "limitRange.max.cpu=2",
        "--set", "limitRange.default.memory=1Gi",
    )  # fmt: skip
    hard = one(docs, "ResourceQuota", "acme-odoo-tenant")["spec"]["hard"]
    assert hard["requests.cpu"] == "3"
    assert hard["count/jobs.batch"] == "20"
    assert hard["services.loadbalancers"] == "0"
    [limits] = one(docs, "LimitRange", "acme-odoo-tenant")["spec"]["limits"]
    assert limits["type"] == "Container"
    assert limits["default"] == {"cpu": "500m", "memory": "1Gi"}
    assert limits["defaultRequest"] == {"cpu": "50m", "memory": "128Mi"}
    assert limits["max"] == {"cpu": 2}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ("--set", "quota.hard.limits\\.memory=3Gi"),
            "quota.hard.limits.memory=3Gi is below the 4992Mi",  # /dev/shm included
        ),
        (
            ("--set", "quota.hard.requests\\.cpu=400m"),
            "quota.hard.requests.cpu=400m is below the 460m",
        ),
        (("--set", "quota.hard.pods=3"), "quota.hard.pods=3 is below the 4"),
        (
            ("--set", "quota.hard.requests\\.storage=10Gi"),
            "quota.hard.requests.storage=10Gi is below the 20480Mi",
        ),
        # The dedicated cron pod counts too.
        (
            ("--set", "odoo.cron.dedicated=true", "--set", "quota.hard.limits\\.memory=4Gi"),
            "quota.hard.limits.memory=4Gi is below the 8064Mi",
        ),
    ],
)
def test_a_quota_too_small_for_the_release_fails_early_and_says_why(
    helm3: Path, args: tuple[str, ...], message: str
) -> None:
    error = render_error(helm3, *args)
    assert message in error
    assert "raise the quota or lower the resources" in error


def test_the_chart_check_agrees_with_the_independent_computation(helm3: Path) -> None:
    docs = render(helm3, "--set", "quota.enabled=false")
    need = release_need(docs)
    assert need["limits.memory"] == 4992 * 2**20  # PostgreSQL's limit includes its 256Mi /dev/shm
    assert need["requests.cpu"] == pytest.approx(0.46)
    assert need["pods"] == 4


def test_quota_and_limit_range_can_be_disabled(helm3: Path) -> None:
    docs = render(helm3, "--set", "quota.enabled=false", "--set", "limitRange.enabled=false")
    assert not find(docs, "ResourceQuota") and not find(docs, "LimitRange")


def test_a_limit_range_max_below_the_charts_containers_fails_early(helm3: Path) -> None:
    error = render_error(helm3, "--set", "limitRange.max.memory=1Gi")
    assert "odoo.dbInit.resources.limits.memory=1536Mi is above limitRange.max.memory=1Gi" in error
