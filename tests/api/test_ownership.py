"""Ownership through the API on the simulated cluster: B never sees or changes A's tenant
(nor its backups); A backs up, and restoring a backup that does not exist is refused."""

from __future__ import annotations

import threading
import uuid

import pytest
from flask import Flask

from tests.api.conftest import Api, operator, services_of, sign_up

pytestmark = pytest.mark.cluster

NO_SUCH_BACKUP = "20000101T000000Z-on-demand.zip"


def test_tenant_lifecycle_and_ownership(cluster_app: Flask, delete_after: object) -> None:
    client = cluster_app.test_client()
    alice = sign_up(client, f"alice-{uuid.uuid4().hex[:6]}@example.com")
    bob = sign_up(client, f"bob-{uuid.uuid4().hex[:6]}@example.com")
    ops = operator(client)
    tenant_id = f"apiown{uuid.uuid4().hex[:6]}"
    delete_after(tenant_id)  # type: ignore[operator]

    created = alice.call("POST", "/api/tenants", json={"id": tenant_id, "admin_email": "a@x.io"})
    assert created.headers["Location"] == created.get_json()["status_url"]
    job = alice.wait_job(created)
    assert job["state"] == "succeeded", job
    assert job["result"]["owner"] == alice.user_id and job["result"]["status"] == "ready"
    again = alice.call("POST", "/api/tenants", json={"id": tenant_id, "admin_email": "a@x.io"})
    assert again.status_code == 409

    _bob_sees_nothing(bob, tenant_id, created.get_json()["status_url"])
    _operator_sees_everything(ops, tenant_id)
    _backups(alice, cluster_app, tenant_id)

    ids = [t["id"] for t in alice.call("GET", "/api/tenants").get_json()["tenants"]]
    assert tenant_id in ids
    assert (
        alice.wait_job(alice.call("POST", f"/api/tenants/{tenant_id}/suspend"))["result"]["status"]
        == "suspended"
    )
    assert (
        alice.wait_job(alice.call("POST", f"/api/tenants/{tenant_id}/resume"))["result"]["status"]
        == "ready"
    )
    history = alice.call("GET", f"/api/tenants/{tenant_id}/history").get_json()["revisions"]
    assert [r["revision"] for r in history] == [1, 2, 3]
    missing = alice.call("POST", f"/api/tenants/{tenant_id}/rollback", json={"revision": 99})
    assert missing.status_code == 404
    rolled = alice.wait_job(
        alice.call("POST", f"/api/tenants/{tenant_id}/rollback", json={"revision": 1})
    )
    assert rolled["state"] == "succeeded" and rolled["result"]["revision"] == 4

    # No container runs on the simulated cluster: no final backup can be proven (409).
    refused = alice.wait_job(alice.call("DELETE", f"/api/tenants/{tenant_id}"))
    assert refused["state"] == "failed" and "--no-final-backup" in str(refused), refused
    deleted = alice.wait_job(alice.call("DELETE", f"/api/tenants/{tenant_id}?final_backup=false"))
    assert deleted["result"] == {
        "id": tenant_id, "deleted": True, "kept_volumes": False, "final_backup": None,
    }  # fmt: skip
    assert alice.call("GET", f"/api/tenants/{tenant_id}").status_code == 404


def _bob_sees_nothing(bob: Api, tenant_id: str, job_url: str) -> None:
    ghost = bob.call("GET", "/api/tenants/apinobody").get_json()
    assert tenant_id not in [t["id"] for t in bob.call("GET", "/api/tenants").get_json()["tenants"]]
    for method, path, body in [
        ("GET", f"/api/tenants/{tenant_id}", None),
        ("PATCH", f"/api/tenants/{tenant_id}", {"plan": "starter"}),
        ("POST", f"/api/tenants/{tenant_id}/suspend", None),
        ("POST", f"/api/tenants/{tenant_id}/resume", None),
        ("GET", f"/api/tenants/{tenant_id}/history", None),
        ("POST", f"/api/tenants/{tenant_id}/rollback", {}),
        ("DELETE", f"/api/tenants/{tenant_id}", None),
        ("GET", f"/api/tenants/{tenant_id}/backups", None),
        ("POST", f"/api/tenants/{tenant_id}/backups", None),
        ("POST", f"/api/tenants/{tenant_id}/backups/restore", {}),
        ("POST", f"/api/tenants/{tenant_id}/backups/verify", {"backup": NO_SUCH_BACKUP}),
    ]:
        res = bob.call(method, path, json=body)
        assert res.status_code == 404, (method, path, res.get_json())
        assert res.get_json() == {**ghost, "message": f"tenant '{tenant_id}' not found"}
    assert bob.call("GET", job_url).status_code == 404
    assert bob.call("GET", "/api/admin/fleet").status_code == 403


def _operator_sees_everything(ops: Api, tenant_id: str) -> None:
    assert tenant_id in [t["id"] for t in ops.call("GET", "/api/tenants").get_json()["tenants"]]
    assert ops.call("GET", f"/api/tenants/{tenant_id}").status_code == 200
    fleet = ops.call("GET", "/api/admin/fleet").get_json()
    assert tenant_id in [t["id"] for t in fleet["tenants"]] and fleet["total"] >= 1
    nodes = ops.call("GET", "/api/admin/distribution").get_json()["nodes"]
    assert any(tenant_id in ids for ids in nodes.values())


def _backups(alice: Api, app: Flask, tenant_id: str) -> None:
    """On the simulated cluster the backup Job completes but no container runs: no zip."""
    base = f"/api/tenants/{tenant_id}/backups"
    listed = alice.call("GET", base)
    assert listed.status_code == 200, listed.get_json()
    assert listed.get_json()["tenant_id"] == tenant_id
    assert isinstance(listed.get_json()["backups"], list)

    started = alice.call("POST", base)
    assert started.headers["Location"] == started.get_json()["status_url"]
    job = alice.wait_job(started)
    assert job["state"] == "succeeded" and job["kind"] == "backup", job
    assert job["result"]["tenant"] == tenant_id and job["result"]["kind"] == "on-demand"
    assert job["result"]["job"]["succeeded"] is True

    for body in ({"backup": NO_SUCH_BACKUP}, {}):  # a missing one; the newest of none
        refused = alice.call("POST", f"{base}/restore", json=body)
        assert refused.status_code == 404, refused.get_json()
        assert tenant_id in refused.get_json()["message"]
    assert alice.call("POST", f"{base}/verify", json={"backup": NO_SUCH_BACKUP}).status_code == 404

    release = threading.Event()

    async def hold() -> None:
        release.wait(30)

    services_of(app).jobs.submit("hold", alice.user_id, tenant_id, hold)
    try:
        busy = alice.call("POST", base)
        assert busy.status_code == 409 and "in progress" in busy.get_json()["message"]
    finally:
        release.set()
    services_of(app).jobs.wait_idle(60)
