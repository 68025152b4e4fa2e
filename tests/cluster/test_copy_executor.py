"""The operator's staging-copy executor on the simulated cluster (issue 25 point 1): the
copy's reconcile, called step by step as the work queue would, against the real API server
and real helm. The source keeps its backups in S3 (a PVC source is refused: unit-tested in
tests/unit/test_copies.py). No request controller runs here: the test plays its part for
the source's OdooTenantBackup (marks it Succeeded, naming a backup); the Jobs complete by
themselves (kwok runs no container: restore.py and odoo-init.py are tested on real
PostgreSQL and Odoo in tests/backups/test_copies.py and tests/odoo/test_neutralize.py)."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from saasodoo.adapters.resources import CustomResources, TenantResources, apply_crd
from saasodoo.context import Context
from saasodoo.core import copies
from saasodoo.core import operations as ops
from saasodoo.core.conditions import get_condition
from saasodoo.core.crd import COPY_OF_LABEL, crd_manifest
from saasodoo.core.status import OperationLock
from saasodoo.operator.controller import Result, TenantController
from saasodoo.settings import Settings
from saasodoo.tenants import Tenants
from tests.support import Cluster, namespace_record

pytestmark = pytest.mark.cluster

NAMESPACE = "saasodoo-copyexec"
S3 = {
    "backup": {
        "storage": "s3",
        "s3": {"endpoint": "http://s3.invalid:9000", "bucket": "backups", "existingSecret": "keys"},
    }
}
BACKUP = "20261206T120000Z-on-demand.zip"


def controller_in(kube: Cluster, namespace: str) -> Iterator[TenantController]:
    """A TenantController of the OdooTenants in ``namespace`` (the CRDs applied); what a
    test left is removed after."""
    settings = Settings(kubeconfig=kube.kubeconfig, helm_binary=str(kube.tools.helm(4)),
                        base_domain="odoo.test", helm_timeout="5m",
                        system_namespace=namespace)  # fmt: skip
    tenants = Tenants(Context(settings))
    apply_crd(tenants.ctx.kube, crd_manifest())
    for op in ops.KINDS.values():
        apply_crd(tenants.ctx.kube, ops.crd_manifest(op))
    tenants.ctx.kube.create_namespace_if_absent(namespace)
    ctl = TenantController(tenants.ctx, TenantResources(tenants.ctx.kube, namespace))
    yield ctl
    for item in ctl.resources.list().get("items") or []:  # what a failed test left
        remove(ctl, item["metadata"]["name"])
    kube.kubectl("delete", "namespace", namespace, "--wait=false")


@pytest.fixture(scope="module")
def ctl(kube: Cluster) -> Iterator[TenantController]:
    yield from controller_in(kube, NAMESPACE)


def turn(ctl: TenantController, name: str) -> Result:
    return asyncio.run(ctl.reconcile(name))


def converge(ctl: TenantController, name: str, *, limit: float = 180) -> Result:
    deadline = time.monotonic() + limit
    while True:
        result = turn(ctl, name)
        if not result.failed and (result.requeue_after is None or result.requeue_after > 600):
            return result
        assert time.monotonic() < deadline, f"{name} did not converge: {status(ctl, name)}"
        time.sleep(min(result.requeue_after or 1.0, 2.0))


def status(ctl: TenantController, name: str) -> dict[str, Any]:
    obj = ctl.resources.get(name)
    assert obj is not None
    return dict(obj.get("status") or {})


def remove(ctl: TenantController, name: str) -> None:
    if ctl.resources.get(name) is None:
        return
    ctl.resources.patch(name, {"spec": {"finalBackup": False}})
    ctl.resources.delete(name)
    converge(ctl, name)
    assert ctl.resources.get(name) is None


def values_of(kube: Cluster, name: str) -> dict[str, Any]:
    out = kube.helm(4, "get", "values", name, "-n", f"tenant-{name}", "-o", "json").stdout
    return dict(json.loads(out))


def job_command(ctl: TenantController, namespace: str, name: str) -> list[str]:
    path = f"/apis/batch/v1/namespaces/{namespace}/jobs/{name}"
    job = ctl.ctx.kube.get_json(path)
    return list(job["spec"]["template"]["spec"]["containers"][0]["command"])


def condition(ctl: TenantController, name: str, type_: str) -> dict[str, Any]:
    return get_condition(status(ctl, name).get("conditions") or [], type_) or {}


def step_of(ctl: TenantController, name: str) -> str:
    return str((status(ctl, name).get("copy") or {}).get("step"))


def test_a_copy_is_backed_up_installed_stopped_restored_neutralized_and_started(
    ctl: TenantController, kube: Cluster
) -> None:
    source, copy = "cpx-src", "cpx-stg"
    requests = CustomResources(ctl.ctx.kube, NAMESPACE, ops.BACKUP.plural, ops.BACKUP.kind)
    expires = (datetime.now(UTC) + timedelta(days=7)).strftime("%Y-%m-%dT%H:%M:%SZ")
    try:
        ctl.resources.create({"metadata": {"name": source}, "spec": {
            "adminEmail": "boss@cpx.example", "finalBackup": False, "overrides": S3}})  # fmt: skip
        converge(ctl, source)
        assert condition(ctl, source, "Ready")["status"] == "True", status(ctl, source)
        # the source's S3 key pair, by hand as for any tenant (tests/realnode: s3_tenant)
        ctl.ctx.kube.create_secret_if_absent(
            f"tenant-{source}", "keys", {"access-key-id": "id", "secret-access-key": "sk"}, {}
        )
        source_revisions = [r["revision"] for r in json.loads(kube.helm(
            4, "history", source, "-n", f"tenant-{source}", "-o", "json").stdout)]  # fmt: skip
        obj = ctl.resources.create({
            "metadata": {"name": copy, "labels": {COPY_OF_LABEL: source}},
            "spec": {"adminEmail": "boss@cpx.example", "finalBackup": True, "overrides": S3,
                     "copyOf": {"tenant": source}, "expiresAt": expires},
        })  # fmt: skip
        names = copies.work_names(copy, obj["metadata"]["uid"])

        # 1-2: the source checked, a fresh backup asked of it as an OdooTenantBackup
        result = turn(ctl, copy)
        assert result.requeue_after == 5.0, result
        request = requests.get(names[copies.BACKUP_SOURCE])
        assert request is not None and request["spec"] == {"tenant": source}
        assert request["metadata"]["labels"][COPY_OF_LABEL] == source
        assert step_of(ctl, copy) == copies.BACKUP_SOURCE
        reconciling = condition(ctl, copy, "Reconciling")
        assert (reconciling["status"], reconciling["reason"]) == ("True", "CopyBackingUpSource")
        assert ctl.ctx.kube.read_namespace(f"tenant-{copy}") is None  # nothing installed
        # while the request runs the copy only waits (a requeue, no second request)
        turn(ctl, copy)
        mine = [r for r in requests.list().get("items") or [] if r["spec"]["tenant"] == source]
        assert len(mine) == 1
        # the request controller's part: the backup taken
        requests.patch_status(names[copies.BACKUP_SOURCE],
                              {"phase": "Succeeded", "backup": BACKUP})  # fmt: skip

        # 3-4: the release installed with Odoo at zero and the copy's values; restore Job
        turn(ctl, copy)
        st = status(ctl, copy)
        assert st["copy"]["backup"] == BACKUP, st
        assert st["copy"]["backupRequest"] == names[copies.BACKUP_SOURCE]
        assert st["copy"]["step"] == copies.RESTORE, st
        values = values_of(kube, copy)
        assert values["tenant"]["copyOf"] == source
        assert values["odoo"]["replicas"] == 0
        assert values["odoo"]["smtp"]["enabled"] is False
        assert values["networkPolicy"]["egress"]["smtp"]["enabled"] is False
        namespace = ctl.ctx.kube.read_namespace(f"tenant-{copy}")
        assert namespace is not None and namespace.labels[COPY_OF_LABEL] == source
        # the key pair the restore Job reads the source's prefix with, copied beside it
        shared = ctl.ctx.kube.read_secret_value(f"tenant-{copy}", "keys", "secret-access-key")
        assert shared == "sk"
        command = job_command(ctl, f"tenant-{copy}", names[copies.RESTORE])
        assert command[:2] == ["python3", "/opt/odoo-tenant/restore.py"], command
        assert {"--s3", f"--source-tenant={source}", f"--backup={BACKUP}",
                f"--tenant={copy}"} <= set(command)  # fmt: skip

        # 5: once the restore Job completed, the neutralize Job from the web pod template
        deadline = time.monotonic() + 120
        while step_of(ctl, copy) == copies.RESTORE:
            assert time.monotonic() < deadline, status(ctl, copy)
            time.sleep(1)
            turn(ctl, copy)
        assert step_of(ctl, copy) == copies.NEUTRALIZE, status(ctl, copy)
        assert condition(ctl, copy, "Reconciling")["reason"] == "CopyNeutralizing"
        command = job_command(ctl, f"tenant-{copy}", names[copies.NEUTRALIZE])
        assert command[:2] == ["python3", "/opt/odoo-tenant/odoo-init.py"], command
        assert command[-1] == "--neutralize" and "--initialize" not in command

        # 6: started with the normal values, Ready
        converge(ctl, copy)
        st = status(ctl, copy)
        assert st["copy"]["step"] == copies.COPIED and st["copy"]["finishedAt"], st
        ready = condition(ctl, copy, "Ready")
        assert ready["status"] == "True", st
        values = values_of(kube, copy)
        assert "replicas" not in values.get("odoo", {}) or values["odoo"]["replicas"] > 0
        assert values["tenant"]["copyOf"] == source
        events = ctl.ctx.kube.list_items(
            "events", f"/api/v1/namespaces/{NAMESPACE}/events",
            "")  # fmt: skip
        notes = [
            e.get("note") or e.get("message") or ""
            for e in events
            if (e.get("regarding") or e.get("involvedObject") or {}).get("name") == copy
        ]
        assert any("restoring the source's backup" in n for n in notes), notes
        # its record on its OdooTenant, none on its namespace
        assert namespace_record(kube, copy) == {}
        assert status(ctl, copy)["record"]["applied"]["revision"] >= 1
        # the source untouched: no helm operation on it, its own values
        after = [r["revision"] for r in json.loads(kube.helm(
            4, "history", source, "-n", f"tenant-{source}", "-o", "json").stdout)]  # fmt: skip
        assert after == source_revisions
        assert "copyOf" not in values_of(kube, source).get("tenant", {})

        # 7: expiry: deleted without a final backup
        ctl.resources.patch(copy, {"spec": {"expiresAt": "2020-01-01T00:00:00Z"}})
        turn(ctl, copy)
        gone = ctl.resources.get(copy)
        assert gone is None or gone["spec"]["finalBackup"] is False
        converge(ctl, copy)
        assert ctl.resources.get(copy) is None
    finally:
        remove(ctl, copy)
        remove(ctl, source)


def test_a_copy_of_a_missing_source_stalls_and_installs_nothing(ctl: TenantController) -> None:
    name = "cpx-orphan"
    try:
        ctl.resources.create({"metadata": {"name": name}, "spec": {
            "adminEmail": "boss@cpx.example", "finalBackup": False,
            "copyOf": {"tenant": "cpx-nobody"}}})  # fmt: skip
        assert turn(ctl, name) == Result()
        stalled = condition(ctl, name, "Stalled")
        assert (stalled["status"], stalled["reason"]) == ("True", "InvalidSpec")
        assert "cpx-nobody" in stalled["message"] and "does not exist" in stalled["message"]
        assert ctl.ctx.kube.read_namespace(f"tenant-{name}") is None
    finally:
        remove(ctl, name)


def source_and_copy(
    ctl: TenantController, source: str, copy: str, overrides: dict[str, Any]
) -> tuple[dict[str, Any], dict[str, str]]:
    """``source`` made (its backups where ``overrides`` say), then ``copy`` of it written and
    turned once (the source's backup asked for): the copy's object and its work names."""
    common = {"adminEmail": "boss@cpx.example", "finalBackup": False, "overrides": overrides}
    ctl.resources.create({"metadata": {"name": source}, "spec": common})
    converge(ctl, source)
    obj = ctl.resources.create(
        {"metadata": {"name": copy}, "spec": {**common, "copyOf": {"tenant": source}}}
    )
    turn(ctl, copy)
    return obj, copies.work_names(copy, obj["metadata"]["uid"])


def test_a_failed_source_backup_stalls_the_copy_with_the_step_s_reason(
    ctl: TenantController,
) -> None:
    source, copy = "cpx-src2", "cpx-stg2"
    requests = CustomResources(ctl.ctx.kube, NAMESPACE, ops.BACKUP.plural, ops.BACKUP.kind)
    try:
        _, names = source_and_copy(ctl, source, copy, S3)
        requests.patch_status(names[copies.BACKUP_SOURCE],
                              {"phase": "Failed", "message": "the backup Job failed"})  # fmt: skip
        assert turn(ctl, copy) == Result()
        stalled = condition(ctl, copy, "Stalled")
        assert (stalled["status"], stalled["reason"]) == ("True", "CopySourceBackupFailed")
        assert "the backup Job failed" in stalled["message"], stalled
        assert condition(ctl, copy, "Ready")["status"] == "False"
        progress = status(ctl, copy)["copy"]
        assert (progress["step"], progress["failedStep"]) == ("failed", copies.BACKUP_SOURCE)
        assert progress["finishedAt"]
        assert ctl.ctx.kube.read_namespace(f"tenant-{copy}") is None  # nothing installed
        # looked at again, it stays so (no new request, no write)
        version = (ctl.resources.get(copy) or {})["metadata"]["resourceVersion"]
        assert turn(ctl, copy) == Result()
        assert (ctl.resources.get(copy) or {})["metadata"]["resourceVersion"] == version
        mine = [r for r in requests.list().get("items") or [] if r["spec"]["tenant"] == source]
        assert len(mine) == 1
    finally:
        remove(ctl, copy)
        remove(ctl, source)


def test_a_copy_whose_install_was_interrupted_stalls_instead_of_waiting(
    ctl: TenantController,
) -> None:
    """An operator stopped mid-helm leaves the copy's namespace with its create lock and no
    release: nobody else finishes a copy's install, so the copy fails with the reason."""
    source, copy = "cpx-src3", "cpx-stg3"
    requests = CustomResources(ctl.ctx.kube, NAMESPACE, ops.BACKUP.plural, ops.BACKUP.kind)
    try:
        obj, names = source_and_copy(ctl, source, copy, S3)
        requests.patch_status(names[copies.BACKUP_SOURCE],
                              {"phase": "Succeeded", "backup": BACKUP})  # fmt: skip
        # What a create stopped mid-helm leaves: the record with a lock whose time is up
        # (its operator gone) on the OdooTenant, the namespace, no release.
        spec = ctl.desired_spec(obj, None)
        gone = OperationLock("op-gone:1", "create", "d0", datetime.now(UTC) - timedelta(minutes=1))
        ctl.ctx.record.create(spec, labels={}, lock=gone, owner=None)
        assert status(ctl, copy)["record"]["operation"]["holder"] == "op-gone:1"
        assert turn(ctl, copy) == Result()
        stalled = condition(ctl, copy, "Stalled")
        assert (stalled["status"], stalled["reason"]) == ("True", "CopyInstallFailed"), stalled
        assert "helm install was interrupted (operation 'create' expired at" in stalled["message"]
        progress = status(ctl, copy)["copy"]
        assert (progress["step"], progress["failedStep"]) == ("failed", copies.INSTALL)
    finally:
        remove(ctl, copy)
        remove(ctl, source)


def test_a_copy_of_a_source_keeping_backups_on_its_volume_carries_the_backup_over(
    ctl: TenantController, kube: Cluster
) -> None:
    """A source with the default backup storage (its PVC, which no other namespace mounts):
    the transfer Job pair, a reader pod in the source's namespace admitting the copy's
    namespace only and the copy's fetch Job allowed to reach that pod only; the restore then
    reads the copy's own storage. (The bytes: tests/backups, the real node.)"""
    source, copy = "cpx-srcp", "cpx-stgp"
    requests = CustomResources(ctl.ctx.kube, NAMESPACE, ops.BACKUP.plural, ops.BACKUP.kind)
    try:
        _, names = source_and_copy(ctl, source, copy, {})  # backups on its volume
        requests.patch_status(names[copies.BACKUP_SOURCE],
                              {"phase": "Succeeded", "backup": BACKUP})  # fmt: skip
        turn(ctl, copy)  # installed, then the transfer started
        assert step_of(ctl, copy) == copies.TRANSFER, status(ctl, copy)
        src_ns, copy_ns = f"tenant-{source}", f"tenant-{copy}"
        readers = kube.kubectl("-n", src_ns, "get", "jobs", "-l", "saasodoo.dev/backup-job=serve",
                               "-o", "json")  # fmt: skip
        [reader] = json.loads(readers)["items"]
        command = reader["spec"]["template"]["spec"]["containers"][0]["command"]
        assert "--serve" in command and f"--backup={BACKUP}" in command
        admits = json.loads(kube.kubectl("-n", src_ns, "get", "networkpolicy",
                                         reader["metadata"]["name"], "-o", "json"))  # fmt: skip
        assert admits["spec"]["ingress"][0]["from"] == [{  # the copy's fetch pod, only
            "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": copy_ns}},
            "podSelector": {"matchLabels": {"job-name": names[copies.TRANSFER]}},
        }]  # fmt: skip
        [reader_pod] = reader["spec"]["template"]["spec"]["containers"]
        assert not [e for e in reader_pod.get("env") or [] if "valueFrom" in e]  # no Secret
        assert "initContainers" not in reader["spec"]["template"]["spec"]
        fetch = json.loads(kube.kubectl("-n", copy_ns, "get", "job", names[copies.TRANSFER],
                                        "-o", "json"))  # fmt: skip
        [container] = fetch["spec"]["template"]["spec"]["containers"]
        fetching = [a for a in container["command"] if a.startswith("--fetch=")]
        assert len(fetching) == 1 and fetching[0].endswith(":8070"), container["command"]
        env = {e["name"]: e for e in container["env"]}
        assert env["SAASODOO_FETCH_TOKEN"]["valueFrom"]["secretKeyRef"] == {
            "name": names[copies.TRANSFER], "key": "token"}  # fmt: skip
        secret = ctl.ctx.kube.core.read_namespaced_secret(names[copies.TRANSFER], copy_ns)
        assert secret.metadata.owner_references[0].uid == fetch["metadata"]["uid"]
        assert fetch["spec"]["ttlSecondsAfterFinished"] == 3600
        reaches = json.loads(kube.kubectl("-n", copy_ns, "get", "networkpolicy",
                                          names[copies.TRANSFER], "-o", "json"))  # fmt: skip
        assert reaches["spec"]["policyTypes"] == ["Egress"]
        assert reaches["spec"]["egress"][0]["to"] == [{
            "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": src_ns}},
            "podSelector": {"matchLabels": {
                "job-name": reader["metadata"]["name"]}},
        }]  # fmt: skip
        # the fetch Job completed: the restore reads the copy's own storage
        deadline = time.monotonic() + 120
        while step_of(ctl, copy) == copies.TRANSFER:
            assert time.monotonic() < deadline, status(ctl, copy)
            time.sleep(1)
            turn(ctl, copy)
        command = job_command(ctl, copy_ns, names[copies.RESTORE])
        assert f"--backup={BACKUP}" in command and "--as-copy" in command, command
        assert not any(a.startswith("--source-tenant") for a in command), command
        converge(ctl, copy)
        assert status(ctl, copy)["copy"]["step"] == copies.COPIED, status(ctl, copy)
    finally:
        remove(ctl, copy)
        remove(ctl, source)
