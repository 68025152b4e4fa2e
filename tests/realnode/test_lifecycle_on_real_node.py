"""A running tenant on the real node through its lifecycle, with the CLI a user runs.

Each step is checked on what really runs: the Odoo process answering through Traefik, the
PostgreSQL data, the backup zip the Job wrote. The steps depend on each other and run in order.
"""

from __future__ import annotations

import hashlib
import json
import os
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.realnode.helpers import (
    RealTenant,
    cli_json,
    pod,
    psql,
    run_cli,
    running_tenant,
    wait_login,
)
from tests.support import Cluster, eventually

pytestmark = pytest.mark.realnode

TENANT = RealTenant("rnl", "tenant-rnl")


def odoo_pods(kube: Cluster) -> list[str]:
    pods = kube.core.list_namespaced_pod(
        TENANT.namespace, label_selector="app.kubernetes.io/component=odoo"
    ).items
    return [p.metadata.name for p in pods if p.metadata.deletion_timestamp is None]


def tenant_db(kube: Cluster) -> str:
    dbs = psql(kube, TENANT, "SELECT datname FROM pg_database WHERE NOT datistemplate").split()
    return next(d for d in dbs if d != "postgres" and not d.startswith("odoo_p"))


@pytest.fixture(scope="module")
def tenant(kube: Cluster) -> Iterator[RealTenant]:
    with running_tenant(kube, TENANT, "admin@rnl.example") as t:
        yield t


def test_update_plan_restarts_odoo_with_the_new_config(kube: Cluster, tenant) -> None:  # type: ignore[no-untyped-def]
    before = odoo_pods(kube)
    doc = cli_json(kube, "tenant", "update", tenant.id, "--plan", "standard")
    assert doc["ready"] == "True" and doc["plan"] == "standard", doc
    after = odoo_pods(kube)
    assert after and not set(after) & set(before), (before, after)  # a new Odoo pod
    conf = kube.kubectl(
        "exec", "-n", tenant.namespace, pod(kube, tenant.namespace, "odoo"), "-c", "odoo",
        "--", "cat", "/run/odoo/odoo.conf",
    )  # fmt: skip
    assert "workers = 4" in conf  # the standard plan's
    assert wait_login(tenant.host)[0] == 200


def test_suspend_stops_odoo_and_resume_serves_again(kube: Cluster, tenant) -> None:  # type: ignore[no-untyped-def]
    cli_json(kube, "tenant", "suspend", tenant.id)
    eventually(lambda: not odoo_pods(kube), timeout=120, what="Odoo pods gone")
    status, _ = wait_login(tenant.host, want=404, timeout=60)
    assert status in (404, 503), status  # Traefik: no backend left
    # The database stays up and keeps the data.
    assert psql(kube, tenant, "SELECT 1") == "1"
    doc = cli_json(kube, "tenant", "resume", tenant.id)
    assert doc["ready"] == "True", doc
    assert wait_login(tenant.host)[0] == 200


def test_rollback_returns_to_the_first_revision(kube: Cluster, tenant) -> None:  # type: ignore[no-untyped-def]
    history = cli_json(kube, "tenant", "history", tenant.id)
    assert len(history) >= 4, history  # create, update, suspend, resume
    doc = cli_json(kube, "tenant", "rollback", tenant.id, "1")
    assert doc["ready"] == "True" and doc["plan"] == "starter", doc
    conf = kube.kubectl(
        "exec", "-n", tenant.namespace, pod(kube, tenant.namespace, "odoo"), "-c", "odoo",
        "--", "cat", "/run/odoo/odoo.conf",
    )  # fmt: skip
    assert "workers = 2" in conf
    assert wait_login(tenant.host)[0] == 200


def backup_dir(kube: Cluster) -> Path:
    """The backup PVC's volume: a local directory on the real node (this machine)."""
    for pvc in kube.core.list_namespaced_persistent_volume_claim(TENANT.namespace).items:
        if "backup" in pvc.metadata.name and pvc.spec.volume_name:
            pv = kube.core.read_persistent_volume(pvc.spec.volume_name)
            assert pv.spec.local is not None, pv.spec
            return Path(pv.spec.local.path)
    raise AssertionError(f"no bound backup PVC in {TENANT.namespace}")


def test_backup_job_writes_a_zip_and_restore_brings_the_data_back(kube: Cluster, tenant) -> None:  # type: ignore[no-untyped-def]
    db = tenant_db(kube)
    psql(kube, tenant, "UPDATE res_company SET name = 'Before Backup' WHERE id = 1", db)
    before = set(backup_dir(kube).glob("*.zip"))
    backup = cli_json(kube, "backup", "create", tenant.id)
    assert backup["job"]["succeeded"], backup
    new = set(backup_dir(kube).glob("*.zip")) - before
    assert len(new) == 1, (before, new)
    with zipfile.ZipFile(new.pop()) as z:
        assert z.testzip() is None
        names = set(z.namelist())
        assert {"dump.sql", "manifest.json"} <= names, names
        manifest = json.loads(z.read("manifest.json"))
        dump = z.read("dump.sql").decode()
    assert "PostgreSQL database dump" in dump and "res_company" in dump
    assert "18.0" in json.dumps(manifest), manifest  # ODOO_VERSION of the image
    # Change the data, then restore the newest backup: the change is gone.
    psql(kube, tenant, "UPDATE res_company SET name = 'After Backup' WHERE id = 1", db)
    restored = cli_json(kube, "backup", "restore", tenant.id, "--yes")
    assert restored["job"]["succeeded"], restored
    # The replaced data is kept for backup.keepPreviousHours, and the result says so (#22).
    previous = restored["previous"]
    assert previous and previous["database"].startswith("odoo_p") and previous["bytes"] > 0
    assert previous["kept_until"].endswith("Z"), previous
    db = tenant_db(kube)
    assert psql(kube, tenant, "SELECT name FROM res_company WHERE id = 1", db) == "Before Backup"
    assert wait_login(tenant.host)[0] == 200


def checked_zip(path: Path) -> dict[str, object]:
    """The zip's manifest, once every checksum in it matched (what restore.py checks)."""
    with zipfile.ZipFile(path) as z:
        assert z.testzip() is None
        manifest = json.loads(z.read("manifest.json"))
        sums = manifest["checksums"]
        assert hashlib.sha256(z.read("dump.sql")).hexdigest() == sums["dump.sql"]
        for name, meta in sums["filestore"].items():
            assert hashlib.sha256(z.read("filestore/" + name)).hexdigest() == meta["sha256"]
        manifest["dump"] = z.read("dump.sql").decode()
    return dict(manifest)


def test_delete_keeps_a_readable_final_backup_and_removes_the_rest(kube: Cluster, tenant) -> None:  # type: ignore[no-untyped-def]
    """#22 point 1: the final backup was written to the tenant's backup volume and deleted
    with it. Now it is proven readable first, and the volume outlives the tenant under a
    claim in the platform's namespace, named in the delete's result."""
    pvs = {
        pv.metadata.name: (pv.spec.claim_ref.name, pv.spec.local.path)
        for pv in kube.core.list_persistent_volume().items
        if pv.spec.claim_ref
        and pv.spec.claim_ref.namespace == tenant.namespace
        and pv.spec.local is not None
    }
    assert pvs, "the tenant's volumes are not local volumes on the real node"
    [backup_pv] = [name for name, (claim, _) in pvs.items() if claim.endswith("-backup")]
    result = run_cli(kube, "tenant", "delete", tenant.id, "--yes", "-o", "json")
    assert result.returncode == 0, result.stdout + result.stderr
    doc = json.loads(result.stdout)
    final = doc["final_backup"]
    assert final["storage"] == "pvc" and final["name"].endswith("-final.zip"), doc
    assert final["volume"] == backup_pv and final["claim"].startswith("saasodoo-system/final-")
    assert final["kept_until"] and final["name"] in final["location"]
    namespace, claim = final["claim"].split("/")

    def gone() -> bool:
        names = {pv.metadata.name for pv in kube.core.list_persistent_volume().items}
        return not ((set(pvs) - {backup_pv}) & names)

    eventually(gone, timeout=180, what="the tenant's other PersistentVolumes deleted")
    # The provisioner removed their directories (this test runs on the real node's machine).
    eventually(
        lambda: not any(os.path.exists(p) for n, (_, p) in pvs.items() if n != backup_pv),
        timeout=30,
        what="volume dirs",
    )
    assert wait_login(tenant.host, want=404, timeout=60)[0] == 404
    # The backup volume: bound to the platform's claim, the final zip on it, readable, with
    # the tenant's last data (what the restore above brought back).
    kept = eventually(
        lambda: (
            (c := kube.core.read_namespaced_persistent_volume_claim(claim, namespace))
            and c.status.phase == "Bound"
            and c
        ),
        timeout=60,
        what="the kept claim bound",
    )
    assert kept.spec.volume_name == backup_pv
    zipped = Path(pvs[backup_pv][1]) / final["name"]
    assert hashlib.sha256(zipped.read_bytes()).hexdigest() == final["sha256"]
    manifest = checked_zip(zipped)
    assert manifest["kind"] == "final" and manifest["tenant"] == tenant.id
    assert "Before Backup" in str(manifest["dump"])
    listed = cli_json(kube, "backup", "finals")
    assert any(k["claim"] == final["claim"] and k["zip"] == final["name"]
               for k in listed["kept"]), listed  # fmt: skip
    # Clean up as the pruning does once the time is up: the volume goes with its claim.
    kube.core.patch_persistent_volume(
        backup_pv, {"spec": {"persistentVolumeReclaimPolicy": "Delete"}}
    )
    kube.core.delete_namespaced_persistent_volume_claim(claim, namespace)
    eventually(
        lambda: (
            backup_pv not in {v.metadata.name for v in kube.core.list_persistent_volume().items}
        ),
        timeout=120,
        what="the kept volume deleted with its claim",
    )
