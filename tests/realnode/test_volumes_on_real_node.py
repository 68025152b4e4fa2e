"""Volumes whose directories are root:root 0755 on the real node: fsGroup must do the work (#14).

scripts/kwok_provisioner.py makes its local volumes 0777, which hides a missing or ignored
fsGroup: any uid can write there. Here the tenant's three volumes are PersistentVolumes made
by the test beforehand, pre-bound to the chart's PVCs, on directories owned by root with mode
0755, as an administrator's local volumes are. The kubelet applies fsGroup once, at a
volume's first read-write mount on the node (a later pod sharing the mount gets no change),
so the chart must attach each volume read-write in the first pod that mounts it. Then Odoo
(uid 100) initializes its filestore, PostgreSQL (uid 999) its data directory, and the backup
Job (uid 100) writes its zip.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.realnode.helpers import RealTenant, real_nodes, run_cli, wait_login
from tests.support import Cluster, eventually

pytestmark = pytest.mark.realnode

TENANT = RealTenant("rnv", "tenant-rnv")
#: PVC suffix -> the fsGroup of the pods that mount it.
VOLUMES = {"filestore": 101, "backup": 101, "postgresql-data": 999}


def pv_name(suffix: str) -> str:
    return f"{TENANT.id}-test-{suffix}"


def delete_pvs(kube: Cluster) -> None:
    for suffix in VOLUMES:
        kube.kubectl("delete", "pv", pv_name(suffix), "--ignore-not-found", "--wait=true")


@pytest.fixture(scope="module")
def volumes(kube: Cluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Path]]:
    nodes = real_nodes(kube)
    assert nodes, "no real node in the cluster: scripts/cluster.sh up starts one"
    run_cli(kube, "tenant", "delete", TENANT.id, "--yes", "--no-final-backup")
    delete_pvs(kube)
    root = tmp_path_factory.mktemp("root-0755-volumes")
    dirs = {}
    try:
        for suffix in VOLUMES:
            path = root / suffix
            path.mkdir(mode=0o755)
            path.chmod(0o755)
            shutil.chown(path, 0, 0)
            dirs[suffix] = path
            pv: dict[str, Any] = {
                "apiVersion": "v1",
                "kind": "PersistentVolume",
                "metadata": {"name": pv_name(suffix)},
                "spec": {
                    "capacity": {"storage": "300Gi"},
                    "accessModes": ["ReadWriteOnce"],
                    "storageClassName": "standard",
                    "persistentVolumeReclaimPolicy": "Retain",
                    "volumeMode": "Filesystem",
                    "local": {"path": str(path)},
                    "claimRef": {
                        "namespace": TENANT.namespace,
                        "name": f"{TENANT.id}-odoo-tenant-{suffix}",
                    },
                    "nodeAffinity": {
                        "required": {
                            "nodeSelectorTerms": [
                                {
                                    "matchExpressions": [
                                        {
                                            "key": "kubernetes.io/hostname",
                                            "operator": "In",
                                            "values": [nodes[0]],
                                        }
                                    ]
                                }
                            ]
                        }
                    },
                },
            }
            kube.core.create_persistent_volume(pv)
        yield dirs
    finally:
        run_cli(kube, "tenant", "delete", TENANT.id, "--yes", "--no-final-backup")
        delete_pvs(kube)
        shutil.rmtree(root, ignore_errors=True)


def test_tenant_runs_and_backs_up_on_root_owned_0755_volumes(kube: Cluster, volumes) -> None:  # type: ignore[no-untyped-def]
    for path in volumes.values():
        st = path.stat()
        assert (st.st_uid, st.st_gid, st.st_mode & 0o7777) == (0, 0, 0o755), path
    result = run_cli(
        kube, "tenant", "create", TENANT.id, "--email", "admin@rnv.example", "-o", "json"
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert json.loads(result.stdout)["ready"] == "True", result.stdout
    # The tenant's PVCs are bound to the test's volumes, not to provisioned ones.
    for suffix in VOLUMES:
        pvc = kube.core.read_namespaced_persistent_volume_claim(
            f"{TENANT.id}-odoo-tenant-{suffix}", TENANT.namespace
        )
        assert pvc.spec.volume_name == pv_name(suffix), pvc.spec
    # fsGroup was applied at the first mount: group of the pods, group-writable, setgid.
    for suffix, gid in VOLUMES.items():
        st = volumes[suffix].stat()
        assert st.st_gid == gid and st.st_mode & 0o2070 == 0o2070, (suffix, oct(st.st_mode))
    # Odoo initialized its filestore as uid 100; PostgreSQL its data as uid 999.
    assert any(p.stat().st_uid == 100 for p in volumes["filestore"].rglob("*")), "no filestore"
    assert (volumes["postgresql-data"] / "pgdata").stat().st_uid == 999
    assert wait_login(TENANT.host)[0] == 200

    result = run_cli(kube, "backup", "create", TENANT.id, "-o", "json")
    assert result.returncode == 0, result.stdout + result.stderr
    assert json.loads(result.stdout)["job"]["succeeded"], result.stdout
    zips = eventually(lambda: list(volumes["backup"].glob("*.zip")), timeout=30, what="zip")
    (zipped,) = zips
    assert (zipped.stat().st_uid, zipped.stat().st_gid) == (100, 101), zipped.stat()
