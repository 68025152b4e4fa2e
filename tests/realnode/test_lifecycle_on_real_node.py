"""A running tenant on the real node through its lifecycle, with the CLI a user runs.

Each step is checked on what really runs: the Odoo process answering through Traefik, the
PostgreSQL data, the backup zip the Job wrote. The steps depend on each other and run in order.
"""

from __future__ import annotations

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
    assert doc["status"] == "ready" and doc["plan"] == "standard", doc
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
    assert doc["status"] == "ready", doc
    assert wait_login(tenant.host)[0] == 200


def test_rollback_returns_to_the_first_revision(kube: Cluster, tenant) -> None:  # type: ignore[no-untyped-def]
    history = cli_json(kube, "tenant", "history", tenant.id)
    assert len(history) >= 4, history  # create, update, suspend, resume
    doc = cli_json(kube, "tenant", "rollback", tenant.id, "1")
    assert doc["status"] == "ready" and doc["plan"] == "starter", doc
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
    db = tenant_db(kube)
    assert psql(kube, tenant, "SELECT name FROM res_company WHERE id = 1", db) == "Before Backup"
    assert wait_login(tenant.host)[0] == 200


def test_delete_removes_the_tenant_and_its_volumes(kube: Cluster, tenant) -> None:  # type: ignore[no-untyped-def]
    pvs = {
        pv.metadata.name: pv.spec.local.path
        for pv in kube.core.list_persistent_volume().items
        if pv.spec.claim_ref
        and pv.spec.claim_ref.namespace == tenant.namespace
        and pv.spec.local is not None
    }
    assert pvs, "the tenant's volumes are not local volumes on the real node"
    result = run_cli(kube, "tenant", "delete", tenant.id, "--yes")
    assert result.returncode == 0, result.stdout + result.stderr

    def gone() -> bool:
        names = {pv.metadata.name for pv in kube.core.list_persistent_volume().items}
        return not (set(pvs) & names)

    eventually(gone, timeout=180, what="the tenant's PersistentVolumes deleted")
    # The provisioner removed their directories (this test runs on the real node's machine).
    eventually(
        lambda: not any(os.path.exists(p) for p in pvs.values()), timeout=30, what="volume dirs"
    )
    assert wait_login(tenant.host, want=404, timeout=60)[0] == 404
