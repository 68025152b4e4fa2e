"""An OdooTenant applied with kubectl, run for real on the real node by the operator process:
Ready only once Odoo serves, its login page through Traefik; deleted through the finalizer,
which keeps a readable final backup before the release goes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.operator_process import running_operator, wait_for
from tests.realnode.helpers import NODE_POOL, cli_json, real_nodes, wait_login
from tests.support import Cluster

pytestmark = pytest.mark.realnode

NAMESPACE = "saasodoo-system"


def odootenant(kube: Cluster, name: str) -> dict | None:  # type: ignore[type-arg]
    try:
        return json.loads(kube.kubectl("-n", NAMESPACE, "get", "odootenant", name, "-o", "json"))
    except Exception:  # noqa: BLE001 - kubectl exits 1 for NotFound
        return None


def test_kubectl_apply_runs_odoo_for_real_and_delete_keeps_a_final_backup(
    kube: Cluster, tmp_path: Path
) -> None:
    assert real_nodes(kube), "no real node in the cluster"
    name = "opreal"
    with running_operator(kube, tmp_path, "op-real", node_pool=NODE_POOL,
                          system_namespace=NAMESPACE) as op:  # fmt: skip
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

        kube.kubectl("-n", NAMESPACE, "delete", "odootenant", name, "--wait=false")
        wait_for(lambda: odootenant(kube, name) is None, 420, f"{name} deleted", op)
        listed = cli_json(kube, "backup", "finals")
        mine = [k for k in listed["kept"] if k["tenant"] == name]
        assert len(mine) == 1, listed
        events = kube.kubectl("-n", NAMESPACE, "get", "events", "-o", "json")
        notes = [e.get("note", "") for e in json.loads(events)["items"]
                 if e.get("regarding", {}).get("name") == name]  # fmt: skip
        assert any("final backup kept" in n and mine[0]["zip"] in n for n in notes), notes
        # Clean up as the pruning does once the time is up: the volume goes with its claim.
        claim_ns, claim = mine[0]["claim"].split("/", 1)
        kube.core.patch_persistent_volume(
            mine[0]["volume"], {"spec": {"persistentVolumeReclaimPolicy": "Delete"}}
        )
        kube.core.delete_namespaced_persistent_volume_claim(claim, claim_ns)
