"""The operator as a process on the simulated cluster: `kubectl apply` and the CLI write
OdooTenants, the operator (the only caller of helm) applies them; two replicas elect one
leader on a Lease, and the standby finishes what a killed leader started."""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from saasodoo.adapters.kube import Kube
from saasodoo.core.conditions import get_condition
from saasodoo.core.crd import OWNER_LABEL
from saasodoo.odootenants import OdooTenants
from saasodoo.settings import Settings
from tests.operator_process import (
    OperatorProcess,
    run_cli,
    running_operator,
    wait_for,
)
from tests.support import Cluster

pytestmark = pytest.mark.cluster

NAMESPACE = "saasodoo-optest-p"
#: Short Lease timings so a takeover is seen in seconds (client-go's are 15 s / 10 s / 2 s).
LEASE = {"operator_lease_seconds": "8", "operator_renew_seconds": "6",
         "operator_retry_seconds": "1"}  # fmt: skip


def settings(**extra: str) -> dict[str, str]:
    return {"system_namespace": NAMESPACE, "operator_workers": "2", **LEASE, **extra}


@pytest.fixture(scope="module")
def logs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("operator")


def obj(kube: Cluster, name: str) -> dict[str, Any] | None:
    proc = subprocess.run(
        [str(kube.tools.kubectl), "-n", NAMESPACE, "get", "odootenant", name, "-o", "json"],
        env=kube.env(), capture_output=True, text=True, check=False,
    )  # fmt: skip
    return json.loads(proc.stdout) if proc.returncode == 0 else None


def ready(o: dict[str, Any] | None) -> bool:
    if not o:
        return False
    st = o.get("status") or {}
    cond = get_condition(st.get("conditions") or [], "Ready") or {}
    gen = o["metadata"]["generation"]
    return (cond.get("status") == "True" and st.get("observedGeneration") == gen
            and cond.get("observedGeneration") == gen)  # fmt: skip


def history(kube: Cluster, name: str) -> list[dict[str, Any]]:
    out = kube.helm(4, "history", name, "-n", f"tenant-{name}", "-o", "json", check=False)
    return list(json.loads(out.stdout)) if out.returncode == 0 else []


def cli_run(kube: Cluster, *args: str) -> subprocess.CompletedProcess[str]:
    return run_cli(kube, settings(), *args)


@pytest.fixture(scope="module")
def operator(kube: Cluster, logs: Path) -> Iterator[OperatorProcess]:
    with running_operator(kube, logs, "op-a", **settings()) as op:
        wait_for(lambda: "leads" in op.output(), 60, "op-a to lead", op)
        yield op
    # What a failed test left: deleted through an operator (their finalizers), then the
    # namespace (an OdooTenant whose finalizer no operator runs would hold it for ever).
    with running_operator(kube, logs, "op-cleanup", install_crds=False, **settings()) as op:
        for item in json.loads(kube.kubectl("-n", NAMESPACE, "get", "ot", "-o", "json"))["items"]:
            name = item["metadata"]["name"]
            kube.kubectl("-n", NAMESPACE, "patch", "ot", name, "--type", "merge",
                         "-p", '{"spec":{"finalBackup":false}}')  # fmt: skip
            kube.kubectl("-n", NAMESPACE, "delete", "ot", name, "--timeout=180s")
    kube.kubectl("delete", "namespace", NAMESPACE, "--wait=false")


def test_kubectl_apply_makes_a_ready_tenant_through_reconciling(
    kube: Cluster, operator: OperatorProcess, tmp_path: Path
) -> None:
    name = "op-apply"
    manifest = tmp_path / "t.yaml"
    manifest.write_text(
        "apiVersion: saasodoo.dev/v1alpha1\nkind: OdooTenant\n"
        f"metadata:\n  name: {name}\n  namespace: {NAMESPACE}\n"
        "spec:\n  adminEmail: admin@op-apply.example\n  plan: starter\n  finalBackup: false\n"
    )
    kube.kubectl("apply", "-f", str(manifest))
    seen: set[str] = set()

    def reconciled() -> bool:
        o = obj(kube, name)
        for c in ((o or {}).get("status") or {}).get("conditions") or []:
            if c["status"] == "True":
                seen.add(c["type"])
        return ready(o)

    wait_for(reconciled, 120, f"{name} Ready", operator)
    kube.kubectl("-n", NAMESPACE, "wait", "--for=condition=Ready", f"odootenant/{name}",
                 "--timeout=5s")  # fmt: skip
    assert "Reconciling" in seen, seen  # the install was shown as in progress
    table = kube.kubectl("-n", NAMESPACE, "get", "ot", name)
    assert "starter" in table and "True" in table, table
    kube.kubectl("-n", NAMESPACE, "delete", "odootenant", name, "--timeout=120s")
    assert obj(kube, name) is None
    assert history(kube, name) == []


def test_a_deployment_deleted_by_hand_is_put_back_at_once(
    kube: Cluster, operator: OperatorProcess
) -> None:
    """The operator watches the tenants' Odoo Deployments: one deleted by hand queues its
    tenant now, not at the next resync (300 s by default, this operator's too), and the
    reconcile puts it back."""
    name = "op-gone-p"
    created = cli_run(kube, "tenant", "create", name, "--email", "a@op-gone-p.example",
                      "-o", "json")  # fmt: skip
    assert created.returncode == 0, created.stdout + created.stderr + operator.output()[-3000:]
    ns = f"tenant-{name}"
    (dep,) = kube.apps.list_namespaced_deployment(
        ns, label_selector="app.kubernetes.io/component=odoo"
    ).items
    uid = dep.metadata.uid
    kube.kubectl("delete", "deployment", "-n", ns, dep.metadata.name, "--wait=true")
    started = time.monotonic()

    def back() -> bool:
        found = kube.apps.list_namespaced_deployment(
            ns, label_selector="app.kubernetes.io/component=odoo"
        ).items
        return bool(found) and found[0].metadata.uid != uid

    wait_for(back, 60, f"{name}'s Deployment put back", operator)
    assert time.monotonic() - started < 60  # the resync is 300 s away
    wait_for(lambda: ready(obj(kube, name)), 60, f"{name} Ready again", operator)
    gone = cli_run(kube, "tenant", "delete", name, "--yes", "--no-final-backup")
    assert gone.returncode == 0, gone.stderr


def test_the_cli_writes_odootenants_and_follows_their_status(
    kube: Cluster, operator: OperatorProcess
) -> None:
    name = "op-cli"
    created = cli_run(kube, "tenant", "create", name, "--email", "a@op-cli.example",
                      "-o", "json")  # fmt: skip
    assert created.returncode == 0, created.stdout + created.stderr + operator.output()[-3000:]
    doc = json.loads(created.stdout)
    assert doc["ready"] == "True" and doc["status"] == "Current", doc
    listed = cli_run(kube, "tenant", "list", "-o", "json")
    assert name in [t["id"] for t in json.loads(listed.stdout)]
    # The table: the printer columns the API server computes (a Table, not the objects).
    table = cli_run(kube, "tenant", "list")
    row = next(line.split() for line in table.stdout.splitlines() if line.startswith(name))
    revision = str((obj(kube, name) or {})["status"]["revision"])
    assert row[:6] == [name, "True", "Current", "starter", doc["odoo_version"], revision], row
    # An owner set by hand: the operator labels the object, and the owner's list (by that
    # label, as the API reads it) finds it.
    owner = "6f1c2a9e-4b7d-4f0e-9a51-0c3d2e1f4a5b"
    kube.kubectl("-n", NAMESPACE, "patch", "odootenant", name, "--type=merge",
                 "-p", json.dumps({"spec": {"owner": owner}}))  # fmt: skip

    def labelled() -> bool:
        labels = (obj(kube, name) or {})["metadata"].get("labels") or {}
        return bool(labels.get(OWNER_LABEL) == owner)

    wait_for(labelled, 60, f"{name} labelled with its owner", operator)
    objects = OdooTenants(Settings(kubeconfig=kube.kubeconfig, system_namespace=NAMESPACE))
    assert [v.id for v in objects.list(owner=owner)] == [name]
    assert objects.list(owner="someone-else") == []
    wait_for(lambda: ready(obj(kube, name)), 60, f"{name} Ready after the owner change", operator)
    updated = cli_run(kube, "tenant", "update", name, "--plan", "standard", "-o", "json")
    assert updated.returncode == 0, updated.stderr
    assert json.loads(updated.stdout)["plan"] == "standard"
    assert json.loads(updated.stdout)["observed_generation"] == 3
    # What the operator reads from Helm's storage instead of running helm (one helm process
    # per spec change: the upgrade): the values of a revision and the head, as helm says.
    helm, ns = str(kube.tools.helm(4)), f"tenant-{name}"
    storage = Kube(Settings(kubeconfig=kube.kubeconfig))
    for revision in (1, 2):
        said = subprocess.run([helm, "get", "values", name, "-n", ns, "--revision",
                               str(revision), "-o", "json"], env=kube.env(), capture_output=True,
                              text=True, check=True)  # fmt: skip
        assert storage.release_values(ns, name, revision) == json.loads(said.stdout)
    status = json.loads(subprocess.run([helm, "status", name, "-n", ns, "-o", "json"],
                                       env=kube.env(), capture_output=True, text=True,
                                       check=True).stdout)  # fmt: skip
    head = storage.release_head(ns, name)
    assert head is not None
    assert (head.revision, head.status) == (status["version"], status["info"]["status"])
    refused = cli_run(kube, "tenant", "update", name, "--plan", "gold")
    assert refused.returncode == 2 and "plan" in refused.stderr, refused.stderr
    assert (obj(kube, name) or {})["metadata"]["generation"] == 3  # nothing written
    gone = cli_run(kube, "tenant", "delete", name, "--yes", "--no-final-backup")
    assert gone.returncode == 0, gone.stderr
    assert obj(kube, name) is None
    # Only the operator ran helm: each revision's description is the operator's.
    assert history(kube, name) == []


def test_fleet_ensure_and_upgrade_through_the_operator(
    kube: Cluster, operator: OperatorProcess
) -> None:
    names = ["op-fleet-a", "op-fleet-b"]
    for name in names:
        created = cli_run(kube, "tenant", "create", name, "--email", f"a@{name}.example")
        assert created.returncode == 0, created.stderr
    try:
        ensured = cli_run(kube, "fleet", "ensure", *names, "-o", "json")
        assert ensured.returncode == 0, ensured.stdout + ensured.stderr
        outcomes = {r["id"]: r["outcome"] for r in json.loads(ensured.stdout)["results"]}
        assert outcomes == dict.fromkeys(names, "unchanged"), outcomes
        for name in names:  # the request was echoed, no helm call made
            assert (obj(kube, name) or {})["status"]["lastHandledReconcileAt"]
            assert len(history(kube, name)) == 1
        # A new image is an update through odoo -u (saasodoo.operator.updates). On kwok no
        # pre-update backup can be named (no storage reachable from here, no pod logs): the
        # canary's update stops there, its release is rolled back, it is Stalled, and the
        # fleet stops before the other tenant. A good update runs on the real node
        # (tests/realnode/test_update_on_real_node.py).
        upgraded = cli_run(kube, "fleet", "upgrade", *names, "--odoo-image-tag",
                           "18.0-20251201", "--canaries", "1", "-o", "json")  # fmt: skip
        assert upgraded.returncode == 1, upgraded.stdout + upgraded.stderr
        doc = json.loads(upgraded.stdout)
        outcomes = {r["id"]: r["outcome"] for r in doc["results"]}
        assert outcomes == {names[0]: "stalled", names[1]: "skipped"}, doc
        assert doc["stopped"] == "a canary failed", doc
        canary = (obj(kube, names[0]) or {})["status"]["update"]
        assert canary["failedStep"] == "pre-update-backup" and canary["reverted"] is True
        descriptions = [r["description"] for r in history(kube, names[0])]
        assert "update stop" in descriptions[1] and descriptions[2] == "Rollback to 1"
        assert len(history(kube, names[1])) == 1
    finally:
        for name in names:
            cli_run(kube, "tenant", "delete", name, "--yes", "--no-final-backup")


def test_the_standby_takes_the_lease_and_finishes_a_killed_leaders_upgrade(
    kube: Cluster, operator: OperatorProcess, logs: Path
) -> None:
    name = "op-ha"
    created = cli_run(kube, "tenant", "create", name, "--email", "a@op-ha.example")
    assert created.returncode == 0, created.stderr
    with running_operator(kube, logs, "op-b", install_crds=False, **settings()) as standby:
        wait_for(lambda: "standing by" in standby.output(),
                 30, "op-b to stand by", standby)  # fmt: skip
        lease = json.loads(kube.kubectl("-n", NAMESPACE, "get", "lease", "saasodoo-operator",
                                        "-o", "json"))  # fmt: skip
        assert lease["spec"]["holderIdentity"] == "op-a"
        # A spec change, and the leader killed while it runs helm on it.
        cli_run(kube, "tenant", "update", name, "--plan", "standard", "--no-wait")

        def operating() -> bool:  # the operation lock is taken right before helm runs
            if (((obj(kube, name) or {}).get("status") or {}).get("record") or {}).get("operation"):
                return True
            # On kwok an upgrade may end between two looks: then the kill below tests the
            # takeover alone (the end state is checked the same way).
            return len(history(kube, name)) > 1

        wait_for(operating, 60, "the upgrade to start", operator, interval=0.05)
        operator.kill()
        wait_for(
            lambda: (
                json.loads(
                    kube.kubectl("-n", NAMESPACE, "get", "lease", "saasodoo-operator", "-o", "json")
                )["spec"].get("holderIdentity")
                == "op-b"
            ),
            30,
            "op-b to take the Lease",
            standby,
        )
        wait_for(lambda: ready(obj(kube, name)), 180, f"{name} Ready again", standby)
        revs = history(kube, name)
        assert not [r for r in revs if r["status"].startswith("pending")], revs
        assert revs[-1]["status"] == "deployed", revs
        values = json.loads(kube.helm(4, "get", "values", name, "-n", f"tenant-{name}",
                                      "-o", "json").stdout)  # fmt: skip
        assert values["tenant"]["spec"]["plan"] == "standard"
        deleted = cli_run(kube, "tenant", "delete", name, "--yes", "--no-final-backup")
        assert deleted.returncode == 0, deleted.stderr + standby.output()[-3000:]
        assert standby.stop() == 0  # a graceful stop releases the Lease
        lease = json.loads(kube.kubectl("-n", NAMESPACE, "get", "lease", "saasodoo-operator",
                                        "-o", "json"))  # fmt: skip
        assert not lease["spec"].get("holderIdentity"), lease["spec"]
