"""Final backups kept on their volume after a tenant's deletion (saasodoo.backups.finals,
#22 point 1): the volume retained before the deletion, bound afterwards to a claim of the
platform's namespace, listed, and deleted once its time is up; against tests/fakes.py."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from saasodoo.backups.finals import (
    FINAL_LABEL,
    KEEP_UNTIL_ANNOTATION,
    FinalBackup,
    KeptFinals,
    storage_of,
)
from saasodoo.errors import TransientClusterError
from saasodoo.settings import Settings
from tests.fakes import FakeKube

pytestmark = pytest.mark.unit

SETTINGS = Settings(system_namespace="platform", final_backup_days=30)
NOW = datetime(2026, 12, 5, 23, 0, tzinfo=UTC)
ZIP = "20261205T225900Z-final.zip"


def tenant_volume(kube: FakeKube) -> None:
    """acme's backup claim, bound to the volume pv-1 (local, on one node)."""
    kube.claims[("tenant-acme", "acme-backup")] = {
        "metadata": {"name": "acme-backup", "namespace": "tenant-acme", "uid": "c-1"},
        "spec": {"volumeName": "pv-1"},
    }
    kube.volumes["pv-1"] = {
        "metadata": {"name": "pv-1"},
        "spec": {
            "capacity": {"storage": "10Gi"},
            "accessModes": ["ReadWriteOnce"],
            "storageClassName": "standard",
            "persistentVolumeReclaimPolicy": "Delete",
            "claimRef": {
                "namespace": "tenant-acme",
                "name": "acme-backup",
                "uid": "c-1",
                "resourceVersion": "7",
            },
        },  # fmt: skip
        "status": {"phase": "Bound"},
    }


def test_the_volume_outlives_the_tenant_under_a_platform_claim() -> None:
    kube = FakeKube()
    tenant_volume(kube)
    kept = KeptFinals(SETTINGS, kube, poll_seconds=0.01)
    final = FinalBackup("acme", ZIP, "pvc", ZIP, volume=kept.volume_of("acme", "acme-backup"))
    final = kept.retain(final, NOW)
    assert final.kept_until == NOW + timedelta(days=30)
    pv = kube.volumes["pv-1"]
    assert pv["spec"]["persistentVolumeReclaimPolicy"] == "Retain"
    assert pv["metadata"]["labels"] == {FINAL_LABEL: "acme"}
    # While the tenant's claim is there, nothing is adopted (bounded wait).
    with pytest.raises(TransientClusterError, match="still exists"):
        kept.adopt("pv-1", timeout=0.05)
    del kube.claims[("tenant-acme", "acme-backup")]  # the namespace is gone
    pv["status"]["phase"] = "Released"
    claim = kept.adopt("pv-1")
    assert claim == "final-acme-20261205t230000"
    ref = kube.volumes["pv-1"]["spec"]["claimRef"]
    assert ref == {"apiVersion": "v1", "kind": "PersistentVolumeClaim", "namespace": "platform",
                   "name": claim}  # the old claim's uid and version dropped  # fmt: skip
    body = kube.claims[("platform", claim)]
    assert body["spec"]["volumeName"] == "pv-1"
    assert body["spec"]["storageClassName"] == "standard"
    assert body["spec"]["resources"] == {"requests": {"storage": "10Gi"}}
    assert body["metadata"]["annotations"][KEEP_UNTIL_ANNOTATION] == "2027-01-04T23:00:00Z"
    assert kept.adopt("pv-1") == claim  # once only
    [listed] = kept.list_kept()
    assert (listed["tenant"], listed["zip"], listed["claim"]) == ("acme", ZIP, f"platform/{claim}")


def test_an_interrupted_deletion_is_kept_by_the_next_listing_and_pruned_in_time() -> None:
    kube = FakeKube()
    tenant_volume(kube)
    kept = KeptFinals(SETTINGS, kube, poll_seconds=0.01)
    kept.retain(FinalBackup("acme", ZIP, "pvc", ZIP, volume="pv-1"), NOW)
    del kube.claims[("tenant-acme", "acme-backup")]  # deleted; the process died before adopting
    kube.volumes["pv-1"]["status"]["phase"] = "Released"
    [listed] = kept.list_kept()
    assert listed["volume"] == "pv-1"
    assert kept.prune_kept(NOW + timedelta(days=29)) == []
    assert kept.prune_kept(NOW + timedelta(days=31), dry_run=True) == [listed["claim"]]
    assert ("platform", listed["claim"].split("/")[1]) in kube.claims
    assert kept.prune_kept(NOW + timedelta(days=31)) == [listed["claim"]]
    # The volume goes with its claim (reclaim policy Delete again), nothing else is touched.
    assert kube.volumes["pv-1"]["spec"]["persistentVolumeReclaimPolicy"] == "Delete"
    assert kube.claims == {} and kept.list_kept() == []


@pytest.mark.parametrize(
    ("command", "volume", "expected"),
    [
        (["--s3", "--work=/backups"], {"emptyDir": {}}, ("s3", None)),
        (["--dest=/backups"], {"persistentVolumeClaim": {"claimName": "b"}}, ("pvc", "b")),
        (["--dest=/backups"], {"emptyDir": {}}, ("emptyDir", None)),
    ],
)
def test_where_the_backups_go(
    command: list[str], volume: dict[str, object], expected: tuple[str, str | None]
) -> None:
    pod = {
        "containers": [{"name": "backup", "command": ["python3", "backup.py", *command]}],
        "volumes": [{"name": "backups", **volume}],
    }
    cronjob = {"spec": {"jobTemplate": {"spec": {"template": {"spec": pod}}}}}
    assert storage_of(cronjob) == expected
