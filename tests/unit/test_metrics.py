"""The operator's and the API's Prometheus metrics (saasodoo/adapters/metrics.py): what the
tenant gauges say for a set of OdooTenants, and that tenants gone lose their series."""

from __future__ import annotations

from typing import Any

import pytest

from saasodoo.adapters.metrics import ApiMetrics, OperatorMetrics

pytestmark = pytest.mark.unit


def tenant(name: str, *, ready: bool, generation: int = 1, backup: str | None = None) -> Any:
    status: dict[str, Any] = {
        "observedGeneration": generation,
        "conditions": [
            {
                "type": "Ready",
                "status": "True" if ready else "False",
                "reason": "R",
                "message": "",
                "observedGeneration": generation,
                "lastTransitionTime": "2026-12-06T07:00:00Z",
            },
        ],  # fmt: skip
    }
    if backup:
        status["lastBackup"] = {"name": "b.zip", "outcome": "succeeded", "time": backup}
    return {"metadata": {"name": name, "generation": generation}, "status": status}


def test_tenant_gauges_follow_the_objects() -> None:
    m = OperatorMetrics()
    m.observe_tenants([
        tenant("acme", ready=True, backup="2026-12-06T03:00:00Z"),
        tenant("globex", ready=False),
    ])  # fmt: skip
    get = m.registry.get_sample_value
    assert get("saasodoo_tenant_ready", {"tenant": "acme"}) == 1.0
    assert get("saasodoo_tenant_ready", {"tenant": "globex"}) == 0.0
    assert get("saasodoo_tenants", {"condition": "Ready", "status": "True"}) == 1.0
    assert get("saasodoo_tenants", {"condition": "Ready", "status": "False"}) == 1.0
    when = get("saasodoo_tenant_last_backup_success_timestamp_seconds", {"tenant": "acme"})
    assert when == 1796526000.0  # 2026-12-06T03:00:00Z
    assert (
        get("saasodoo_tenant_last_backup_success_timestamp_seconds", {"tenant": "globex"}) is None
    )
    assert get("saasodoo_reconciles_total", {"result": "failure"}) == 0.0  # present from the start

    m.observe_tenants([tenant("globex", ready=True, generation=2)])
    assert get("saasodoo_tenant_ready", {"tenant": "acme"}) is None  # deleted: no series left
    assert get("saasodoo_tenant_ready", {"tenant": "globex"}) == 1.0
    assert get("saasodoo_tenants", {"condition": "Ready", "status": "False"}) is None


def test_a_failed_backup_shows_and_the_last_good_one_still_counts() -> None:
    """#24 point 7: a failed backup shows in the gauges; the age of the last good backup
    stays measurable (the 26-hour alert fires on it), not absent."""
    m = OperatorMetrics()
    obj = tenant("acme", ready=True)
    obj["status"]["lastBackup"] = {
        "name": "n2",
        "outcome": "failed",
        "time": "2026-12-07T01:00:00Z",
    }
    obj["status"]["lastSuccessfulBackup"] = {"name": "n1", "outcome": "succeeded",
                                             "time": "2026-12-06T03:00:00Z"}  # fmt: skip
    m.observe_tenants([obj])
    get = m.registry.get_sample_value
    assert get("saasodoo_tenant_last_backup_succeeded", {"tenant": "acme"}) == 0.0
    when = get("saasodoo_tenant_last_backup_success_timestamp_seconds", {"tenant": "acme"})
    assert when == 1796526000.0  # the last good one, 2026-12-06T03:00:00Z
    m.observe_tenants([tenant("acme", ready=True, backup="2026-12-08T03:00:00Z")])
    assert get("saasodoo_tenant_last_backup_succeeded", {"tenant": "acme"}) == 1.0


def test_a_ready_of_an_older_generation_is_not_ready() -> None:
    m = OperatorMetrics()
    obj = tenant("acme", ready=True)
    obj["metadata"]["generation"] = 2  # the spec changed since Ready was set
    m.observe_tenants([obj])
    assert m.registry.get_sample_value("saasodoo_tenant_ready", {"tenant": "acme"}) == 0.0


def test_api_requests_are_counted_by_route_not_path() -> None:
    m = ApiMetrics()
    m.observe("GET", "/api/tenants/<tenant_id>", 200, 0.012)
    m.observe("GET", "/api/tenants/<tenant_id>", 404, 0.003)
    get = m.registry.get_sample_value
    labels = {"method": "GET", "route": "/api/tenants/<tenant_id>"}
    assert get("saasodoo_api_requests_total", {**labels, "status": "200"}) == 1.0
    assert get("saasodoo_api_request_duration_seconds_count", labels) == 2.0


def test_a_made_up_method_makes_no_series_of_its_own() -> None:
    m = ApiMetrics()
    for method in ("FOO1", "FOO2", "XYZ"):
        m.observe(method, "unmatched", 405, 0.001)
    get = m.registry.get_sample_value
    assert get("saasodoo_api_requests_total",
               {"method": "other", "route": "unmatched", "status": "405"}) == 3.0  # fmt: skip
    assert get("saasodoo_api_requests_total",
               {"method": "FOO1", "route": "unmatched", "status": "405"}) is None  # fmt: skip
