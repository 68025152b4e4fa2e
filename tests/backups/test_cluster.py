"""The Kubernetes side of backups, on the (simulated) cluster: Jobs made from the tenant's
backup CronJob, followed to completion; Odoo scaled around a restore; the backup NetworkPolicy;
listing and pruning the tenant's folder in the S3 server.

On the simulated cluster no container runs: the Jobs complete without backup.py or restore.py
having run, so no zip appears from them. The programs are proven in test_programs.py; here the
zips the listing and restore need are written into the tenant's S3 folder by the real backup.py
run from the test, against the local PostgreSQL server."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import time
import uuid
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client

from saasodoo.backups import Backups, JobOutcome, Policy
from saasodoo.backups.jobs import JOB_LABEL
from saasodoo.backups.restore import REPLICAS_ANNOTATION
from saasodoo.context import Context
from saasodoo.core.spec import TenantSpec
from saasodoo.errors import Conflict, InvalidInput, NotFound, SaasodooError
from saasodoo.settings import Settings
from saasodoo.tenants import Tenants
from tests.backups.helpers import (
    S3_KEY,
    S3_SECRET,
    PgServer,
    S3Server,
    make_tenant_data,
    run_script,
)
from tests.support import Cluster

pytestmark = pytest.mark.cluster


@dataclass
class Tenant:
    id: str
    namespace: str
    bucket: str
    backups: Backups


@pytest.fixture(scope="module")
def tenant(kube: Cluster, s3_server: S3Server) -> Iterator[Tenant]:
    """One tenant whose backups go to the local S3 server (helm 4)."""
    settings = Settings(
        kubeconfig=kube.kubeconfig,
        helm_binary=str(kube.tools.helm(4)),
        base_domain="odoo.test",
        helm_timeout="5m",
    )
    tenants = Tenants(Context(settings))
    tid = f"bak{uuid.uuid4().hex[:6]}"
    bucket = f"bak-{tid}"
    s3_server.client().create_bucket(Bucket=bucket)
    overrides = {
        "backup": {
            "storage": "s3",
            "s3": {
                "endpoint": s3_server.endpoint,
                "bucket": bucket,
                "prefix": "tenants",
                "existingSecret": "backup-s3",
            },  # fmt: skip
        }
    }
    spec = TenantSpec.parse({"id": tid, "admin_email": "owner@bak.example", "overrides": overrides})
    try:
        asyncio.run(tenants.create(spec))
        kube.core.create_namespaced_secret(
            spec.namespace,
            client.V1Secret(
                metadata=client.V1ObjectMeta(name="backup-s3"),
                string_data={"access-key-id": S3_KEY, "secret-access-key": S3_SECRET},
            ),
        )
        yield Tenant(tid, spec.namespace, bucket, Backups(settings, poll_seconds=0.5))
    finally:
        try:
            asyncio.run(tenants.delete(tid, final_backup=False, wait=False))
        except NotFound:
            pass


def _pod_spec(obj: dict[str, Any]) -> dict[str, Any]:
    spec: dict[str, Any] = obj["spec"]["template"]["spec"]
    return spec


def test_on_demand_backup_is_a_job_from_the_cronjob_followed_to_completion(
    tenant: Tenant, kube: Cluster
) -> None:
    cronjob = tenant.backups.cronjob(tenant.id)
    result = tenant.backups.create(tenant.id, kind="on-demand", timeout=120)
    assert result.job.succeeded and result.kind == "on-demand"
    # No container ran (simulated cluster): the Job completed but wrote nothing.
    assert result.backup is None

    job = kube.api.sanitize_for_serialization(
        client.BatchV1Api(kube.api).read_namespaced_job(result.job.name, tenant.namespace)
    )
    assert job["metadata"]["annotations"]["cronjob.kubernetes.io/instantiate"] == "manual"
    [owner] = job["metadata"]["ownerReferences"]
    assert (owner["kind"], owner["name"]) == ("CronJob", cronjob["metadata"]["name"])
    assert not owner.get("controller")  # as kubectl's: owned, not controlled
    assert job["status"]["succeeded"] == 1
    # The CronJob's pod template, with only the backup kind set.
    template = cronjob["spec"]["jobTemplate"]["spec"]["template"]
    ours = job["spec"]["template"]
    want, got = _pod_spec({"spec": {"template": template}}), ours["spec"]
    [want_c] = want["containers"]
    [got_c] = got["containers"]
    assert got_c["image"] == want_c["image"] and got_c["command"] == want_c["command"]
    assert {e["name"]: e.get("value") for e in got_c["env"]}["BACKUP_KIND"] == "on-demand"
    assert [e for e in got_c["env"] if e["name"] != "BACKUP_KIND"] == [
        e for e in want_c["env"] if e["name"] != "BACKUP_KIND"
    ]
    assert got["volumes"] == want["volumes"] and got.get("affinity") == want.get("affinity")
    assert got["securityContext"] == want["securityContext"]
    labels = ours["metadata"]["labels"]
    assert labels["app.kubernetes.io/component"] == "backup"
    # It ran where the Odoo pod runs (the RWO filestore).
    pods = kube.core.list_namespaced_pod(
        tenant.namespace, label_selector=f"job-name={result.job.name}"
    ).items
    odoo = kube.core.list_namespaced_pod(
        tenant.namespace, label_selector="app.kubernetes.io/component=odoo"
    ).items
    assert pods and odoo and {p.spec.node_name for p in pods} == {odoo[0].spec.node_name}


def test_backup_network_policy_allows_only_postgresql_dns_and_the_storage_endpoint(
    tenant: Tenant, kube: Cluster, s3_server: S3Server
) -> None:
    policies = (
        client.NetworkingV1Api(kube.api)
        .list_namespaced_network_policy(
            tenant.namespace, label_selector="app.kubernetes.io/component=backup"
        )
        .items
    )
    [policy] = [kube.api.sanitize_for_serialization(p) for p in policies]
    spec = policy["spec"]
    assert spec["policyTypes"] == ["Ingress", "Egress"] and not spec.get("ingress")
    ports = sorted((p["port"], p["protocol"]) for rule in spec["egress"] for p in rule["ports"])
    s3_port = int(s3_server.endpoint.rsplit(":", 1)[1])
    assert ports == sorted([(5432, "TCP"), (53, "UDP"), (53, "TCP"), (s3_port, "TCP")])
    to_pg = next(r for r in spec["egress"] if r["ports"][0]["port"] == 5432)
    assert to_pg["to"][0]["podSelector"]["matchLabels"]["app.kubernetes.io/component"] == (
        "postgresql"
    )


def _real_backup(
    pg_server: PgServer, s3_server: S3Server, database: str, tmp: Path, tenant: Tenant
) -> str:
    """The real backup.py, writing into the tenant's S3 folder as its CronJob would."""
    root = tmp / "filestore"
    make_tenant_data(pg_server, database, root)
    env = {**pg_server.env(database), **s3_server.env(tenant.bucket, prefix="tenants"),
           "ODOO_VERSION": "18.0"}  # fmt: skip
    args = ["--s3", f"--tenant={tenant.id}", f"--filestore={root}", f"--work={tmp}"]
    done = run_script("backup.py", args, env)
    assert done.returncode == 0, done.stdout + done.stderr
    [name] = [ln.split()[2] for ln in done.stdout.splitlines() if " wrote " in ln]
    return name


def test_list_restore_and_verify(
    tenant: Tenant,
    kube: Cluster,
    pg_server: PgServer,
    s3_server: S3Server,
    database: str,
    tmp_path: Path,
) -> None:
    name = _real_backup(pg_server, s3_server, database, tmp_path, tenant)
    [listed] = tenant.backups.list_backups(tenant.id)
    assert listed.name == name and listed.tenant == tenant.id and listed.kind == "scheduled"
    assert listed.odoo_version == "18.0" and listed.sizes["filestore_files"] == 3
    assert listed.to_dict()["tables"] == 3

    apps = kube.apps
    before = {
        d.metadata.name: d.spec.replicas
        for d in apps.list_namespaced_deployment(
            tenant.namespace, label_selector="app.kubernetes.io/component=odoo"
        ).items
    }
    restored = tenant.backups.restore(tenant.id, name, timeout=120)
    assert restored.ok and restored.scaled_back == before
    after = {
        d.metadata.name: d.spec.replicas
        for d in apps.list_namespaced_deployment(
            tenant.namespace, label_selector="app.kubernetes.io/component=odoo"
        ).items
    }
    assert after == before
    job = kube.api.sanitize_for_serialization(
        client.BatchV1Api(kube.api).read_namespaced_job(restored.job.name, tenant.namespace)
    )
    pod = job["spec"]["template"]["spec"]
    [container] = pod["containers"]
    assert container["command"][:2] == ["python3", "/opt/odoo-tenant/restore.py"]
    assert "--s3" in container["command"] and f"--backup={name}" in container["command"]
    env = {e["name"]: e for e in container["env"]}
    assert env["PGADMINUSER"]["value"] == "postgres"
    assert env["PGADMINPASSWORD"]["valueFrom"]["secretKeyRef"]["key"] == "postgres-password"
    filestore = next(v for v in pod["volumes"] if v["name"] == "filestore")
    assert not filestore["persistentVolumeClaim"].get("readOnly")
    assert "affinity" not in pod  # Odoo is scaled down: nothing to be next to
    assert job["spec"]["backoffLimit"] == 0

    verified = tenant.backups.verify(tenant.id, timeout=120)
    assert verified.ok and verified.verify_only
    vjob = client.BatchV1Api(kube.api).read_namespaced_job(verified.job.name, tenant.namespace)
    [vc] = vjob.spec.template.spec.containers
    assert "--verify-only" in vc.command
    assert any(m.name == "filestore" and m.read_only for m in vc.volume_mounts)

    with pytest.raises(NotFound):
        tenant.backups.restore(tenant.id, "20200101T000000Z-scheduled.zip")


def test_a_failed_restore_job_is_recovered_before_odoo_starts(
    tenant: Tenant, kube: Cluster, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The restore Job dies (here: reported failed without a RESULT line, as a killed pod's Job
    is): saasodoo runs `restore.py --recover` as a Job of its own, once the dead pod is gone,
    before scaling Odoo back; if that fails too, Odoo is left stopped rather than started on
    data that may be half switched, and the next restore gives Odoo its replicas back."""
    backups = tenant.backups
    real_run_job = backups.run_job
    ran: list[tuple[str, list[str], bool]] = []
    fail = {"restore": True, "recover": False}

    def odoo_replicas() -> dict[str, int]:
        items = kube.apps.list_namespaced_deployment(
            tenant.namespace, label_selector="app.kubernetes.io/component=odoo"
        ).items
        return {d.metadata.name: d.spec.replicas for d in items}

    def run_job(body: dict[str, Any], *, timeout: float) -> JobOutcome:
        outcome = real_run_job(body, timeout=timeout)
        purpose = body["metadata"]["labels"][JOB_LABEL]
        [container] = body["spec"]["template"]["spec"]["containers"]
        stopped = all(n == 0 for n in odoo_replicas().values())
        ran.append((purpose, container["command"], stopped))
        if fail.get(purpose):
            return replace(outcome, succeeded=False, reason="BackoffLimitExceeded: pod killed")
        return outcome

    monkeypatch.setattr(backups, "run_job", run_job)
    before = odoo_replicas()
    assert before and all(n > 0 for n in before.values())

    with pytest.raises(SaasodooError, match="recovered by job .*Odoo started again"):
        backups.restore(tenant.id, timeout=120)
    assert [(purpose, stopped) for purpose, _, stopped in ran] == [
        ("restore", True), ("recover", True),  # Odoo stopped during both
    ]  # fmt: skip
    recover_cmd = ran[1][1]
    assert recover_cmd[:3] == ["python3", "/opt/odoo-tenant/restore.py", "--s3"]
    assert "--recover" in recover_cmd and not any(a.startswith("--backup") for a in recover_cmd)
    assert odoo_replicas() == before  # started again, on consistent data

    ran.clear()
    fail["recover"] = True
    with pytest.raises(SaasodooError, match="Odoo is left stopped") as err:
        backups.restore(tenant.id, timeout=120)
    assert f"saasodoo tenant resume {tenant.id}" in str(err.value)
    assert [purpose for purpose, _, _ in ran] == ["restore", "recover"]
    assert set(odoo_replicas().values()) == {0}

    # The next restore (it recovers first) gives Odoo the replicas it had, not zero.
    fail.update(restore=False, recover=False)
    restored = backups.restore(tenant.id, timeout=120)
    assert restored.ok and restored.scaled_back == before and odoo_replicas() == before
    notes = [
        (d.metadata.annotations or {}).get(REPLICAS_ANNOTATION)
        for d in kube.apps.list_namespaced_deployment(tenant.namespace).items
    ]
    assert notes and not any(notes)
    # Helm still upgrades the Deployment saasodoo scaled (no field ownership conflict).
    asyncio.run(Tenants(Context(backups.settings)).resume(tenant.id, wait=False))
    assert odoo_replicas() == before


def tenant_data_dump(pg_server: PgServer, database: str, root: Path) -> bytes:
    """A tenant's data (make_tenant_data: database and filestore under ROOT), then the plain
    SQL dump of its database, as Odoo's database manager puts in a zip."""
    make_tenant_data(pg_server, database, root)
    return subprocess.run(
        ["pg_dump", "--no-owner", "--dbname", database],
        env={**os.environ, **pg_server.env(database)},
        capture_output=True,
        check=True,
    ).stdout


def test_prune_applies_the_tenants_retention_to_its_s3_folder(
    tenant: Tenant, s3_server: S3Server
) -> None:
    s3 = s3_server.client()
    for day in range(1, 29):
        key = f"tenants/{tenant.id}/202602{day:02d}T031700Z-scheduled.zip"
        s3.put_object(Bucket=tenant.bucket, Key=key, Body=b"zip")
        s3.put_object(Bucket=tenant.bucket, Key=key + ".json", Body=b'{"kind": "scheduled"}')
    assert tenant.backups.policy(tenant.id) == Policy(daily=7, weekly=4, monthly=3, pre_update=3)
    before = tenant.backups.list_backups(tenant.id)
    dry = tenant.backups.prune(tenant.id, Policy(daily=2, weekly=1, monthly=0), dry_run=True)
    assert dry.deleted and tenant.backups.list_backups(tenant.id) == before
    done = tenant.backups.prune(tenant.id, Policy(daily=2, weekly=1, monthly=0))
    left = [b.name for b in tenant.backups.list_backups(tenant.id)]
    assert sorted(done.kept) == sorted(left) and len(left) == 3
    assert all(n + ".json" not in left for n in done.deleted)


def test_import_checks_the_zip_stores_it_and_restores_it(
    tenant: Tenant, s3_server: S3Server, pg_server: PgServer, database: str, tmp_path: Path
) -> None:
    """`saasodoo backup import`: the tenant's Odoo version comes from its recorded spec, a
    refused zip leaves the storage untouched, an accepted one is stored in our format beside
    the tenant's backups and restored by a restore Job. (Zips of the real Odoo server and the
    restore itself: tests/odoo/test_import.py.)"""
    root = tmp_path / "filestore"
    dump = tenant_data_dump(pg_server, database, root)
    manifest = {"odoo_dump": "1", "db_name": database, "version": "18.0",
                "major_version": "18.0", "version_info": [18, 0, 0, "final", 0, ""],
                "pg_version": "15.0", "modules": {"base": "18.0.1.3"}}  # fmt: skip

    def odoo_zip(path: Path, **changes: object) -> Path:
        with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
            zf.writestr("dump.sql", dump)
            for f in sorted((root / database).rglob("*")):
                if f.is_file():
                    zf.write(f, "filestore/" + f.relative_to(root / database).as_posix())
            zf.writestr("manifest.json", json.dumps({**manifest, **changes}))
        return path

    s3 = s3_server.client()
    folder = f"tenants/{tenant.id}/"

    def stored() -> list[str]:
        listing = s3.list_objects_v2(Bucket=tenant.bucket, Prefix=folder)
        return sorted(o["Key"] for o in listing.get("Contents", []))

    before = stored()
    old = odoo_zip(tmp_path / "v17.zip", version="17.0", major_version="17.0")
    with pytest.raises(InvalidInput, match="a dump of Odoo 17.0; tenant '.*' runs Odoo 18.0"):
        tenant.backups.import_zip(tenant.id, old, timeout=120)
    assert stored() == before

    result = tenant.backups.import_zip(tenant.id, odoo_zip(tmp_path / "moving-in.zip"), timeout=120)
    assert result.ok and result.backup
    assert sorted(set(stored()) - set(before)) == [
        folder + result.backup,
        folder + result.backup + ".json",
    ]
    ours = json.loads(s3.get_object(Bucket=tenant.bucket, Key=folder + result.backup + ".json")
                      ["Body"].read())  # fmt: skip
    assert ours["imported_from"] == "moving-in.zip" and ours["tenant"] == tenant.id
    assert ours["sizes"]["filestore_files"] == 3 and ours["tables"]
    job = client.BatchV1Api(tenant.backups.kube.api).read_namespaced_job(
        result.job.name, tenant.namespace
    )
    assert f"--backup={result.backup}" in job.spec.template.spec.containers[0].command


def test_an_import_whose_restore_fails_stores_nothing(
    tenant: Tenant,
    s3_server: S3Server,
    pg_server: PgServer,
    database: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A dump that passes the checks but that psql refuses (a GRANT to a role that does not
    exist): the restore Job fails, the live data stays, and the zip and its manifest stored
    for the restore are deleted again (retention never sees a failed import)."""
    root = tmp_path / "filestore"
    dump = tenant_data_dump(pg_server, database, root)
    dump += b"GRANT SELECT ON public.res_partner TO no_such_role_anywhere;\n"
    manifest = {"odoo_dump": "1", "db_name": database, "version": "18.0",
                "major_version": "18.0", "version_info": [18, 0, 0, "final", 0, ""]}  # fmt: skip
    bad = tmp_path / "grant.zip"
    with zipfile.ZipFile(bad, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("dump.sql", dump)
        zf.writestr("manifest.json", json.dumps(manifest))

    # No container runs on the simulated cluster: the restore Job's program, restore.py, runs
    # here instead, on the zip saasodoo stored in the tenant's S3 folder (as the pod would).
    real_run_job = tenant.backups.run_job
    restores: list[subprocess.CompletedProcess[str]] = []

    def run_job(body: dict[str, Any], *, timeout: float) -> JobOutcome:
        outcome = real_run_job(body, timeout=timeout)
        if body["metadata"]["labels"][JOB_LABEL] != "restore":
            return outcome
        [container] = body["spec"]["template"]["spec"]["containers"]
        [backup] = [a for a in container["command"] if a.startswith("--backup=")]
        # The tenant's Odoo series, as the chart gives it to the pod (restore.py compares it
        # with the backup's: the fake data's own series is not the tenant's).
        series = {e["name"]: e.get("value") for e in container.get("env", [])}
        env = {**pg_server.env(database), **s3_server.env(tenant.bucket, prefix="tenants"),
               "PGADMINUSER": "postgres",
               "SAASODOO_ODOO_VERSION": series.get("SAASODOO_ODOO_VERSION") or "18.0"}  # fmt: skip
        args = [
            "--s3",
            f"--tenant={tenant.id}",
            backup,
            f"--filestore={root}",
            f"--work={tmp_path}",
        ]
        done = run_script("restore.py", args, env)
        restores.append(done)
        [line] = [ln for ln in done.stdout.splitlines() if ln.startswith("RESULT ")]
        result = json.loads(line.removeprefix("RESULT "))
        return replace(outcome, succeeded=done.returncode == 0, result=result,
                       reason="" if done.returncode == 0 else "Failed")  # fmt: skip

    monkeypatch.setattr(tenant.backups, "run_job", run_job)
    s3 = s3_server.client()
    folder = f"tenants/{tenant.id}/"

    def stored() -> list[str]:
        listing = s3.list_objects_v2(Bucket=tenant.bucket, Prefix=folder)
        return sorted(o["Key"] for o in listing.get("Contents", []))

    before = stored()
    live = pg_server.snapshot(database)
    with pytest.raises(
        SaasodooError, match="(?s)no_such_role_anywhere.*previous data is still live"
    ):
        tenant.backups.import_zip(tenant.id, bad, timeout=120)
    [done] = restores
    assert done.returncode == 1 and "loading dump.sql failed" in done.stdout, done.stdout
    assert stored() == before
    assert pg_server.snapshot(database) == live


def test_the_cronjobs_history_limits_never_delete_saasodoos_jobs(
    tenant: Tenant,
    kube: Cluster,
    pg_server: PgServer,
    s3_server: S3Server,
    database: str,
    tmp_path: Path,
) -> None:
    """#22 point 10: with `controller: true` the CronJob controller counted saasodoo's Jobs
    as its own, and its history limits (0 is allowed) deleted them as soon as they finished,
    while saasodoo still followed them (a restore then left Odoo at zero). Owned without the
    controller flag, they stay; the CronJob's own history is unaffected."""
    batch = client.BatchV1Api(kube.api)
    cronjob = tenant.backups.cronjob(tenant.id)
    name = cronjob["metadata"]["name"]
    limits = {k: cronjob["spec"][k] for k in ("successfulJobsHistoryLimit",
                                               "failedJobsHistoryLimit")}  # fmt: skip
    batch.patch_namespaced_cron_job(
        name, tenant.namespace,
        {"spec": {"successfulJobsHistoryLimit": 0, "failedJobsHistoryLimit": 0}},
    )  # fmt: skip
    name_zip = _real_backup(pg_server, s3_server, database, tmp_path, tenant)
    replicas = {
        d.metadata.name: d.spec.replicas
        for d in kube.apps.list_namespaced_deployment(
            tenant.namespace, label_selector="app.kubernetes.io/component=odoo"
        ).items
    }
    try:
        # A restore: on main its Job vanished under the poll and Odoo stayed at zero.
        restored = tenant.backups.restore(tenant.id, name_zip, timeout=120)
        assert restored.ok and restored.scaled_back == replicas
        backup = tenant.backups.create(tenant.id, kind="on-demand", timeout=120)
        check = tenant.backups.check(tenant.id, name_zip, timeout=120)
        assert backup.job.succeeded and check.succeeded
        # The controller syncs the CronJob when a Job it controls changes: give it the time.
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            left = {j.metadata.name for j in batch.list_namespaced_job(tenant.namespace).items}
            assert {restored.job.name, backup.job.name, check.name} <= left, left
            time.sleep(1)
    finally:
        batch.patch_namespaced_cron_job(name, tenant.namespace, {"spec": limits})


def test_a_final_backup_that_cannot_be_proven_refuses_the_deletion(
    tenant: Tenant, kube: Cluster
) -> None:
    """#22 point 1: on the simulated cluster no container runs, so the final backup's Job
    completes without writing or reporting anything: the deletion is refused, naming
    `--no-final-backup`, and nothing is deleted (main deleted the tenant, backup-less)."""
    tenants = Tenants(Context(tenant.backups.settings))
    with pytest.raises(Conflict, match="cannot be verified.*--no-final-backup"):
        asyncio.run(tenants.delete(tenant.id, wait=False))
    assert kube.core.read_namespace(tenant.namespace).status.phase == "Active"
    assert tenant.id in {r["name"] for r in kube.helm_releases(4)}
    assert tenant.backups.cronjob(tenant.id)
