"""What the API refuses on a live tenant before queuing anything (issue #18): an older Odoo
(update, rollback, fleet upgrade) and operators' overrides that break the chart's schema."""

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


def test_older_odoo_and_bad_overrides_answer_422_with_nothing_queued(
    cluster_app: Flask, delete_after: object
) -> None:
    client = cluster_app.test_client()
    alice: Api = sign_up(client, f"alice-{uuid.uuid4().hex[:6]}@example.com")
    ops = operator(client)
    jobs = services_of(cluster_app).jobs
    tid = f"apiref{uuid.uuid4().hex[:6]}"
    delete_after(tid)  # type: ignore[operator]
    body = {"id": tid, "admin_email": "a@x.io", "odoo_version": "18.0"}
    assert alice.wait_job(alice.call("POST", "/api/tenants", json=body))["state"] == "succeeded"
    up = alice.wait_job(alice.call("PATCH", f"/api/tenants/{tid}", json={"odoo_version": "19.0"}))
    assert up["state"] == "succeeded" and up["result"]["odoo_version"] == "19.0", up
    last = jobs.latest_for(tid)

    way_back = "restore a backup taken before the upgrade"
    for version in ("17.0", "18.0"):
        res = alice.call("PATCH", f"/api/tenants/{tid}", json={"odoo_version": version})
        _refused(res, "odoo_version", f"cannot go from Odoo 19.0 back to {version}")
        _refused(res, "odoo_version", way_back)
    for rollback in ({"revision": 1}, {}):
        res = alice.call("POST", f"/api/tenants/{tid}/rollback", json=rollback)
        _refused(res, "revision", "cannot go from Odoo 19.0 back to 18.0")

    selector = f"{TENANT_LABEL}={tid}"
    res = ops.call(
        "POST", "/api/admin/fleet/upgrade", json={"odoo_version": "17.0", "selector": selector}
    )
    _refused(res, "odoo_version", f"{tid}: cannot go from Odoo 19.0 back to 17.0")
    res = ops.call(
        "POST",
        "/api/admin/fleet/upgrade",
        json={"image_tag": "18.0-20250218", "selector": selector},
    )
    _refused(res, "image_tag", way_back)

    # Operators' overrides: the chart's schema decides, before any job.
    for overrides, path in [
        ({"odoo": {"replicas": "two"}}, "values.odoo.replicas"),
        ({"odoo": {"colour": "red"}}, "values.odoo"),
    ]:
        res = ops.call("PATCH", f"/api/tenants/{tid}", json={"overrides": overrides})
        assert res.status_code == 422, res.get_json()
        assert res.get_json()["fields"][0]["field"] == path, res.get_json()
    assert jobs.latest_for(tid) is last  # nothing was queued by any refusal
    tenant = alice.call("GET", f"/api/tenants/{tid}").get_json()
    assert tenant["odoo_version"] == "19.0" and tenant["revision"] == 2, tenant
