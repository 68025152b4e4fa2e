"""An OdooTenant applied with kubectl, run for real on the real node by the operator process:
Ready only once Odoo serves, its login page through Traefik; backed up, the backup verified
and restored through request resources (OdooTenantBackup, OdooTenantVerify,
OdooTenantRestore) run by the operator; deleted through the finalizer, which keeps a
readable final backup before the release goes."""

from __future__ import annotations

import json
import socket
from pathlib import Path
from typing import Any

import pytest

from saasodoo.core.conditions import get_condition, parse_time
from tests.operator_process import OperatorProcess, metric, running_operator, wait_for
from tests.realnode.helpers import NODE_POOL, cli_json, real_nodes, wait_login
from tests.support import Cluster

pytestmark = pytest.mark.realnode

NAMESPACE = "saasodoo-system"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def request(kube: Cluster, op: OperatorProcess, kind: str, spec: dict[str, Any]) -> dict[str, Any]:
    """``kubectl create`` a request of ``kind``, then wait until the operator finished it."""
    body = {"apiVersion": "saasodoo.dev/v1alpha1", "kind": kind,
            "metadata": {"generateName": f"{spec['tenant']}-", "namespace": NAMESPACE},
            "spec": spec}  # fmt: skip
    source = Path(op.log.parent / f"{kind}.json")
    source.write_text(json.dumps(body))
    name = kube.kubectl("create", "-f", str(source), "-o", "name").strip()

    def done() -> dict[str, Any] | None:
        got: dict[str, Any] = json.loads(kube.kubectl("-n", NAMESPACE, "get", name, "-o", "json"))
        return got if (got.get("status") or {}).get("phase") in ("Succeeded", "Failed") else None

    found: dict[str, Any] = wait_for(done, 600, f"{name} finished", op, interval=2)
    return found


def odootenant(kube: Cluster, name: str) -> dict | None:  # type: ignore[type-arg]
    try:
        return json.loads(kube.kubectl("-n", NAMESPACE, "get", "odootenant", name, "-o", "json"))
    except Exception:  # noqa: BLE001 - kubectl exits 1 for NotFound
        return None


def test_kubectl_apply_runs_odoo_backup_verify_restore_requests_and_delete_keeps_a_final_backup(
    kube: Cluster, tmp_path: Path
) -> None:
    assert real_nodes(kube), "no real node in the cluster"
    name = "opreal"
    port = free_port()
    with running_operator(kube, tmp_path, "op-real", node_pool=NODE_POOL,
                          system_namespace=NAMESPACE, metrics_port=str(port)) as op:  # fmt: skip
        manifest = tmp_path / "t.yaml"
        manifest.write_text(
            "apiVersion: saasodoo.dev/v1alpha1\nkind: OdooTenant\n"
            f"metadata:\n  name: {name}\n  namespace: {NAMESPACE}\n"
            "spec:\n  adminEmail: admin@opreal.example\n  plan: starter\n"
        )
        wait_for(lambda: "leads" in op.output(), 60, "the operator to lead", op)
        kube.kubectl("apply", "-f", str(manifest))
        seen: set[str] = set()

        def ready() -> bool:
            o = odootenant(kube, name) or {}
            conds = (o.get("status") or {}).get("conditions") or []
            seen.update(c["type"] for c in conds if c["status"] == "True")
            return any(c["type"] == "Ready" and c["status"] == "True"
                       and c.get("observedGeneration") == o["metadata"]["generation"]
                       for c in conds)  # fmt: skip

        wait_for(ready, 420, f"{name} Ready", op)
        assert "Reconciling" in seen, seen
        status, body = wait_login(f"{name}.odoo.test", timeout=60)
        assert status == 200 and "login" in body.lower(), (status, body[:300])
        pods = kube.core.list_namespaced_pod(f"tenant-{name}").items
        assert {p.spec.node_name for p in pods if p.status.phase == "Running"} <= set(
            real_nodes(kube)
        )

        # One-shot operations as request resources, in the tenant's turn: a backup, that
        # backup verified, then restored; the tenant Ready and serving again.
        taken = request(kube, op, "OdooTenantBackup", {"tenant": name})["status"]
        assert taken["phase"] == "Succeeded" and taken["backup"], taken
        backup = taken["backup"]
        status = (odootenant(kube, name) or {}).get("status") or {}
        assert status["lastBackup"]["name"] == backup, status
        assert get_condition(status["conditions"], "BackupSucceeded")["status"] == "True"
        # Its metrics follow (#24 point 7), read with the client library's parser.
        wait_for(lambda: metric(port, "saasodoo_tenant_last_backup_succeeded", tenant=name)
                 == 1.0, 30, "the backup gauge", op)  # fmt: skip
        stamp = metric(port, "saasodoo_tenant_last_backup_success_timestamp_seconds", tenant=name)
        assert stamp == parse_time(status["lastBackup"]["time"]).timestamp()  # type: ignore[union-attr]
        # The backup PVC is not readable from the control plane: listed by a Job (#24 p6).
        listed = cli_json(kube, "backup", "list", name)
        assert [b["name"] for b in listed] == [backup], listed
        assert listed[0]["kind"] == "on-demand" and listed[0]["tables"] > 0, listed
        verified = request(kube, op, "OdooTenantVerify", {"tenant": name, "backup": backup})
        assert verified["status"]["phase"] == "Succeeded", verified["status"]
        assert verified["status"]["result"]["ok"] is True
        restored = request(kube, op, "OdooTenantRestore", {"tenant": name, "backup": backup})
        assert restored["status"]["phase"] == "Succeeded", restored["status"]
        assert restored["status"]["backup"] == backup
        wait_for(ready, 120, f"{name} Ready after the restore", op)
        status, body = wait_login(f"{name}.odoo.test", timeout=120)
        assert status == 200 and "login" in body.lower(), (status, body[:300])

        kube.kubectl("-n", NAMESPACE, "delete", "odootenant", name, "--wait=false")
        wait_for(lambda: odootenant(kube, name) is None, 420, f"{name} deleted", op)
        listed = cli_json(kube, "backup", "finals")
        mine = [k for k in listed["kept"] if k["tenant"] == name]
        assert len(mine) == 1, listed
        events = kube.kubectl("-n", NAMESPACE, "get", "events.events.k8s.io", "-o", "json")
        notes = [e.get("note", "") for e in json.loads(events)["items"]
                 if e.get("regarding", {}).get("name") == name]  # fmt: skip
        assert any("final backup kept" in n and mine[0]["claim"] in n for n in notes), notes
        # Clean up as the pruning does once the time is up: the volume goes with its claim.
        claim_ns, claim = mine[0]["claim"].split("/", 1)
        kube.core.patch_persistent_volume(
            mine[0]["volume"], {"spec": {"persistentVolumeReclaimPolicy": "Delete"}}
        )
        kube.core.delete_namespaced_persistent_volume_claim(claim, claim_ns)
