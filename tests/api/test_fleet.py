"""Fleet operations and usage through the API on the simulated cluster: an operator
reconciles (and upgrades) only the test's tenant; its owner reads its usage, nobody else."""

from __future__ import annotations

import uuid

import pytest
from flask import Flask

from saasodoo.core.spec import TENANT_LABEL
from tests.api.conftest import operator, sign_up

pytestmark = pytest.mark.cluster


def test_fleet_ensure_upgrade_and_usage(cluster_app: Flask, delete_after: object) -> None:
    client = cluster_app.test_client()
    alice = sign_up(client, f"alice-{uuid.uuid4().hex[:6]}@example.com")
    bob = sign_up(client, f"bob-{uuid.uuid4().hex[:6]}@example.com")
    ops = operator(client)
    tenant_id = f"apif{uuid.uuid4().hex[:6]}"
    delete_after(tenant_id)  # type: ignore[operator]
    job = alice.wait_job(
        alice.call("POST", "/api/tenants", json={"id": tenant_id, "admin_email": "a@x.io"})
    )
    assert job["state"] == "succeeded", job
    only_mine = f"{TENANT_LABEL}={tenant_id}"

    assert alice.call("POST", "/api/admin/fleet/ensure", json={}).status_code == 403
    started = ops.call("POST", "/api/admin/fleet/ensure", json={"selector": only_mine})
    assert started.headers["Location"] == started.get_json()["status_url"]
    assert started.get_json()["job"]["tenant_id"] is None
    job = ops.wait_job(started)
    assert job["state"] == "succeeded", job
    assert job["kind"] == "fleet-ensure" and job["result"]["stopped"] is None
    assert [r["id"] for r in job["result"]["results"]] == [tenant_id]
    assert job["result"]["counts"] == {"unchanged": 1}, job["result"]

    bad = ops.call("POST", "/api/admin/fleet/ensure", json={"selector": "a b c"})
    assert bad.status_code == 422 and bad.get_json()["fields"][0]["field"] == "selector"

    body = {"odoo_version": "18.0", "canaries": 0, "selector": only_mine}
    job = ops.wait_job(ops.call("POST", "/api/admin/fleet/upgrade", json=body))
    assert job["state"] == "succeeded", job
    assert [r["id"] for r in job["result"]["results"]] == [tenant_id], job["result"]

    # Usage: zeros until metrics-server has sampled the new pods; the shape holds anyway.
    for who in (alice, ops):
        res = who.call("GET", f"/api/tenants/{tenant_id}/usage")
        assert res.status_code == 200, res.get_json()
        usage = res.get_json()
        assert usage["id"] == tenant_id
        assert isinstance(usage["cpu_millicores"], (int, float)) and usage["cpu_millicores"] >= 0
        assert isinstance(usage["memory_bytes"], int) and usage["memory_bytes"] >= 0
        assert all(p["namespace"] == f"tenant-{tenant_id}" for p in usage["pods"])
    assert bob.call("GET", f"/api/tenants/{tenant_id}/usage").status_code == 404
