"""Fleet operations and usage through the API on the simulated cluster, with the operator
(``cluster_app``): an operator asks a reconcile of only the test's tenant and the operator
handles it; a fleet upgrade is the CLI's (409); usage is not the API's to read (501), and
nobody else learns the tenant exists (404)."""

from __future__ import annotations

import uuid

import pytest
from flask import Flask

from tests.api.conftest import API_NAMESPACE, operator, services_of, sign_up
from tests.support import Cluster, eventually

pytestmark = pytest.mark.cluster


def test_fleet_ensure_upgrade_and_usage(
    cluster_app: Flask, delete_after: object, kube: Cluster
) -> None:
    client = cluster_app.test_client()
    alice = sign_up(client, f"alice-{uuid.uuid4().hex[:6]}@example.com")
    bob = sign_up(client, f"bob-{uuid.uuid4().hex[:6]}@example.com")
    ops = operator(client)
    tenant_id = f"apif{uuid.uuid4().hex[:6]}"
    delete_after(tenant_id)  # type: ignore[operator]
    ready = alice.wait_tenant(
        alice.call("POST", "/api/tenants", json={"id": tenant_id, "admin_email": "a@x.io"})
    )
    assert ready["ready"] == "True" and ready["revision"] == 1, ready
    # The fleet is the OdooTenants: the selector is over their labels (an SRE's here).
    kube.kubectl("-n", API_NAMESPACE, "label", "odootenant", tenant_id, f"apitest={tenant_id}")
    only_mine = f"apitest={tenant_id}"

    assert alice.call("POST", "/api/admin/fleet/ensure", json={}).status_code == 403
    started = ops.call("POST", "/api/admin/fleet/ensure", json={"selector": only_mine})
    assert started.status_code == 202, started.get_json()
    assert started.headers["Location"] == "/api/admin/fleet"
    asked = started.get_json()
    assert asked["tenants"] == [tenant_id] and asked["force"] is False
    objects = services_of(cluster_app).objects

    def handled() -> bool:
        status = objects.read(tenant_id).get("status") or {}
        return status.get("lastHandledReconcileAt") == asked["requested_at"]

    eventually(handled, timeout=120, what=f"the operator to handle the reconcile of {tenant_id}")
    tenant = ops.call("GET", f"/api/tenants/{tenant_id}").get_json()
    assert tenant["ready"] == "True" and tenant["revision"] == 1, tenant  # nothing to change

    bad = ops.call("POST", "/api/admin/fleet/ensure", json={"selector": "a b c"})
    assert bad.status_code == 422 and bad.get_json()["fields"][0]["field"] == "selector"

    body = {"odoo_version": "18.0", "canaries": 0, "selector": only_mine}
    upgrade = ops.call("POST", "/api/admin/fleet/upgrade", json=body)
    assert upgrade.status_code == 409 and "saasodoo fleet upgrade" in upgrade.get_json()["message"]

    # Usage: the API's account reads no pod metrics (501); another's tenant: 404.
    for who in (alice, ops):
        res = who.call("GET", f"/api/tenants/{tenant_id}/usage")
        assert res.status_code == 501, res.get_json()
        assert f"kubectl top pods -n tenant-{tenant_id}" in res.get_json()["message"]
    assert bob.call("GET", f"/api/tenants/{tenant_id}/usage").status_code == 404
