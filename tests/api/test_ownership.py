"""Ownership through the API on the simulated cluster, with the operator (``cluster_app``):
B never sees or changes A's tenant (nor its backups, nor its operations); A backs up, rolls
back and deletes through resources the operator runs."""

from __future__ import annotations

import uuid

import pytest
from flask import Flask

from tests.api.conftest import Api, operator, sign_up
from tests.support import eventually

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
    tenant = alice.wait_tenant(created)
    assert tenant["owner"] == alice.user_id and tenant["ready"] == "True", tenant
    assert (tenant["status"], tenant["revision"]) == ("Current", 1), tenant
    again = alice.call("POST", "/api/tenants", json={"id": tenant_id, "admin_email": "a@x.io"})
    assert again.status_code == 409

    backup = _backups(alice, tenant_id)
    _bob_sees_nothing(bob, tenant_id, backup)
    _operator_sees_everything(ops, tenant_id)

    ids = [t["id"] for t in alice.call("GET", "/api/tenants").get_json()["tenants"]]
    assert tenant_id in ids
    suspended = alice.wait_tenant(alice.call("POST", f"/api/tenants/{tenant_id}/suspend"))
    assert suspended["suspended"] is True and suspended["revision"] == 2, suspended
    resumed = alice.wait_tenant(alice.call("POST", f"/api/tenants/{tenant_id}/resume"))
    assert resumed["suspended"] is False and resumed["revision"] == 3, resumed
    history = alice.call("GET", f"/api/tenants/{tenant_id}/history").get_json()["revisions"]
    assert [r["revision"] for r in history] == [1, 2, 3]
    missing = alice.call("POST", f"/api/tenants/{tenant_id}/rollback", json={"revision": 99})
    assert missing.status_code == 404
    rolled = alice.wait_operation(
        alice.call("POST", f"/api/tenants/{tenant_id}/rollback", json={"revision": 1})
    )
    assert (rolled["phase"], rolled["revision"]) == ("Succeeded", 4), rolled

    # No container runs on the simulated cluster: no final backup can be proven, and the
    # operator holds the deletion (FinalBackupFailed) until it is asked without one.
    held = alice.call("DELETE", f"/api/tenants/{tenant_id}")
    assert held.status_code == 202, held.get_json()

    def final_backup_failed() -> bool:
        seen = alice.call("GET", f"/api/tenants/{tenant_id}").get_json()
        return seen.get("reason") == "FinalBackupFailed"

    eventually(final_backup_failed, timeout=180, what="the final backup to be refused")
    deleted = alice.call("DELETE", f"/api/tenants/{tenant_id}?final_backup=false")
    assert alice.wait_tenant(deleted) == {}
    assert alice.call("GET", f"/api/tenants/{tenant_id}").status_code == 404


def _bob_sees_nothing(bob: Api, tenant_id: str, operation_url: str) -> None:
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
        ("GET", f"/api/tenants/{tenant_id}/operations", None),
        ("GET", f"/api/tenants/{tenant_id}/backups", None),
        ("POST", f"/api/tenants/{tenant_id}/backups", None),
        ("POST", f"/api/tenants/{tenant_id}/backups/restore", {}),
        ("POST", f"/api/tenants/{tenant_id}/backups/verify", {"backup": NO_SUCH_BACKUP}),
    ]:
        res = bob.call(method, path, json=body)
        assert res.status_code == 404, (method, path, res.get_json())
        assert res.get_json() == {**ghost, "message": f"tenant '{tenant_id}' not found"}
    assert bob.call("GET", operation_url).status_code == 404
    assert bob.call("GET", "/api/admin/fleet").status_code == 403


def _operator_sees_everything(ops: Api, tenant_id: str) -> None:
    assert tenant_id in [t["id"] for t in ops.call("GET", "/api/tenants").get_json()["tenants"]]
    assert ops.call("GET", f"/api/tenants/{tenant_id}").status_code == 200
    fleet = ops.call("GET", "/api/admin/fleet").get_json()
    assert tenant_id in [t["id"] for t in fleet["tenants"]] and fleet["total"] >= 1
    assert ops.call("GET", "/api/admin/distribution").status_code == 501  # no nodes read


def _backups(alice: Api, tenant_id: str) -> str:
    """On the simulated cluster the backup Job completes but no container runs: no zip.
    Returns the backup request's URL."""
    base = f"/api/tenants/{tenant_id}/backups"
    listed = alice.call("GET", base)
    assert listed.status_code == 200, listed.get_json()
    assert listed.get_json() == {"tenant_id": tenant_id, "backups": []}

    started = alice.call("POST", base)
    assert started.headers["Location"] == started.get_json()["status_url"]
    done = alice.wait_operation(started)
    assert (done["kind"], done["phase"]) == ("OdooTenantBackup", "Succeeded"), done
    assert done["tenant_id"] == tenant_id
    listed_ops = alice.call("GET", f"/api/tenants/{tenant_id}/operations").get_json()
    assert [o["name"] for o in listed_ops["operations"]] == [done["name"]]

    # A restore names its backup; the API's account reads no tenant storage, so whether it
    # exists is checked where the storage is read: by restore.py in the restore Job (on a
    # backup volume), which runs no container on the simulated cluster.
    asked = alice.call("POST", f"{base}/restore", json={"backup": NO_SUCH_BACKUP})
    assert asked.status_code == 202, asked.get_json()
    restore = asked.get_json()["operation"]
    assert (restore["kind"], restore["spec"]["backup"]) == ("OdooTenantRestore", NO_SUCH_BACKUP)
    alice.wait_operation(asked)  # in the tenant's turn, before the next change
    unknown = alice.call("GET", f"{base}/{NO_SUCH_BACKUP}")
    assert unknown.status_code == 404, unknown.get_json()  # not listed: no download
    return str(started.headers["Location"])
