"""What the API refuses on a live tenant before queuing anything (issues #18, #22): another
Odoo series (update, fleet upgrade; rollback: tests/unit/test_guards.py) and operators'
overrides that break the chart's schema."""

from __future__ import annotations

import uuid

import pytest
from flask import Flask

from saasodoo.core.spec import TENANT_LABEL
from tests.api.conftest import Api, operator, services_of, sign_up

pytestmark = pytest.mark.cluster


def _refused(res: object, field: str, says: str) -> None:
    body = res.get_json()  # type: ignore[attr-defined]
    assert res.status_code == 422, body  # type: ignore[attr-defined]
    assert [f["field"] for f in body["fields"]][:1] == [field], body
    assert says in body["fields"][0]["message"], body


def test_another_series_and_bad_overrides_answer_422_with_nothing_written(
    cluster_app: Flask, delete_after: object
) -> None:
    client = cluster_app.test_client()
    alice: Api = sign_up(client, f"alice-{uuid.uuid4().hex[:6]}@example.com")
    ops = operator(client)
    objects = services_of(cluster_app).objects
    tid = f"apiref{uuid.uuid4().hex[:6]}"
    delete_after(tid)  # type: ignore[operator]
    body = {"id": tid, "admin_email": "a@x.io", "odoo_version": "18.0"}
    assert alice.wait_tenant(alice.call("POST", "/api/tenants", json=body))["ready"] == "True"
    last = objects.read(tid)["metadata"]["resourceVersion"]

    # Issue #22 point 2: no change of series, newer or older.
    supported = "upgrade service"
    for version in ("19.0", "17.0"):
        res = alice.call("PATCH", f"/api/tenants/{tid}", json={"odoo_version": version})
        _refused(res, "odoo_version", f"cannot change from Odoo 18.0 to {version}")
        _refused(res, "odoo_version", supported)

    # A fleet upgrade is the CLI's (it refuses another series per tenant, tests/cluster).
    selector = f"{TENANT_LABEL}={tid}"
    res = ops.call(
        "POST", "/api/admin/fleet/upgrade", json={"odoo_version": "19.0", "selector": selector}
    )
    assert res.status_code == 409 and "saasodoo fleet upgrade" in res.get_json()["message"]

    # Operators' overrides: the chart's schema decides, before anything is written.
    for overrides, path in [
        ({"odoo": {"replicas": "two"}}, "values.odoo.replicas"),
        ({"odoo": {"colour": "red"}}, "values.odoo"),
    ]:
        res = ops.call("PATCH", f"/api/tenants/{tid}", json={"overrides": overrides})
        assert res.status_code == 422, res.get_json()
        assert res.get_json()["fields"][0]["field"] == path, res.get_json()
    assert objects.read(tid)["metadata"]["resourceVersion"] == last  # nothing written
    tenant = alice.call("GET", f"/api/tenants/{tid}").get_json()
    assert tenant["odoo_version"] == "18.0" and tenant["revision"] == 1, tenant
