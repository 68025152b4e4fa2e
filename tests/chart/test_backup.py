"""Backup CronJob: schedule, history and retention from values, never concurrent, its own
component label and narrow NetworkPolicy (database, DNS, and the S3 endpoint when backups go
there), on the Odoo pod's node (RWO filestore), writing to its own volume or to a bucket."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.chart.helpers import (
    CHART,
    container,
    env,
    find,
    one,
    pod_template,
    render,
    render_error,
)

pytestmark = pytest.mark.chart

NAME = "acme-odoo-tenant-backup"


def test_cronjob_schedule_concurrency_and_history(helm3: Path) -> None:
    docs = render(
        helm3,
        "--set", "backup.schedule=0 2 * * *",
        "--set", "backup.timeZone=Europe/Brussels",
        "--set", "backup.successfulJobsHistoryLimit=5",
        "--set", "backup.keep=14",
    )  # fmt: skip
    cron = one(docs, "CronJob", NAME)
    spec = cron["spec"]
    assert spec["schedule"] == "0 2 * * *"
    assert spec["timeZone"] == "Europe/Brussels"
    assert spec["concurrencyPolicy"] == "Forbid"
    assert (spec["successfulJobsHistoryLimit"], spec["failedJobsHistoryLimit"]) == (5, 1)
    assert spec["startingDeadlineSeconds"] == 3600
    job = spec["jobTemplate"]["spec"]
    assert job["backoffLimit"] == 1 and job["activeDeadlineSeconds"] == 3600
    pod = pod_template(cron)
    assert pod["metadata"]["labels"]["app.kubernetes.io/component"] == "backup"
    assert pod["spec"]["restartPolicy"] == "Never"
    backup = container(pod["spec"], "backup")
    assert "--keep=14" in backup["command"]
    assert {"--keep-weekly=4", "--keep-monthly=3", "--keep-pre-update=3"} <= set(backup["command"])


def test_on_demand_retention_and_the_kept_previous_data_are_values(helm3: Path) -> None:
    """#22 points 15(a) and 15(b): on-demand backups have their own count and age, and a
    restore keeps the data it replaced a bounded time, pruned by an init step of every backup
    pod (the only step writing to the filestore; the backup itself reads it)."""
    docs = render(
        helm3,
        "--set", "backup.keepOnDemand=2",
        "--set", "backup.keepOnDemandDays=10",
        "--set", "backup.keepPreviousHours=24",
    )  # fmt: skip
    spec = pod_template(one(docs, "CronJob", NAME))["spec"]
    backup = container(spec, "backup")
    assert {"--keep-on-demand=2", "--keep-on-demand-days=10"} <= set(backup["command"])
    assert env(backup)["SAASODOO_KEEP_PREVIOUS_HOURS"] == "24"
    [pg_client, prune] = spec["initContainers"]
    assert pg_client["name"] == "pg-client" and prune["name"] == "prune-previous"
    assert prune["command"] == [
        "python3", "/opt/odoo-tenant/restore.py", "--prune-previous",
        "--filestore=/var/lib/odoo/filestore",
    ]  # fmt: skip
    assert env(prune)["SAASODOO_KEEP_PREVIOUS_HOURS"] == "24"
    mounts = {m["name"]: m for m in prune["volumeMounts"]}
    assert not mounts["filestore"].get("readOnly")
    assert {m["name"]: m.get("readOnly") for m in backup["volumeMounts"]}["filestore"] is True
    for bad in ("backup.keepOnDemand=-1", "backup.keepPreviousHours=9000"):
        assert "keep" in render_error(helm3, "--set", bad)


def test_backup_dumps_its_database_and_filestore_to_its_volume(
    default_docs: list[dict[str, Any]],
) -> None:
    spec = pod_template(one(default_docs, "CronJob", NAME))["spec"]
    backup = container(spec, "backup")
    assert backup["command"][:2] == ["python3", "/opt/odoo-tenant/backup.py"]
    assert "--dest=/backups" in backup["command"]
    assert "--filestore=/var/lib/odoo/filestore" in backup["command"]
    variables = env(backup)
    assert variables["PGHOST"] == "acme-odoo-tenant-postgresql-rw"
    assert variables["PGDATABASE"] == "odoo"
    assert variables["PGPASSWORD"] == {"secret": "acme-odoo-tenant-postgresql", "key": "password"}
    volumes = {v["name"]: v for v in spec["volumes"]}
    assert volumes["backups"]["persistentVolumeClaim"]["claimName"] == NAME
    # Read-only in the container, read-write at the pod level (tests/chart/test_real_images.py:
    # a volume gets its fsGroup only from a read-write attachment).
    assert volumes["filestore"]["persistentVolumeClaim"] == {
        "claimName": "acme-odoo-tenant-filestore"
    }
    mounts = {m["name"]: m for m in backup["volumeMounts"]}
    assert mounts["filestore"]["readOnly"] is True
    pvc = one(default_docs, "PersistentVolumeClaim", NAME)
    assert pvc["spec"]["resources"]["requests"]["storage"] == "10Gi"
    assert pvc["metadata"]["labels"]["app.kubernetes.io/component"] == "backup"
    # Its own ConfigMap: backup.py and restore.py (saasodoo's restore and verify Jobs swap the
    # command of this pod template) and the modules both import, exactly as in files/; the
    # Odoo pod's scripts ConfigMap holds none of them.
    scripts = one(default_docs, "ConfigMap", "acme-odoo-tenant-backup-scripts")["data"]
    programs = ("backup.py", "restore.py", "retention.py", "dumpformat.py")
    for name in programs:
        assert scripts[name] == (CHART / "files" / name).read_text()
    odoo_scripts = one(default_docs, "ConfigMap", "acme-odoo-tenant-scripts")["data"]
    assert "odoo-init.py" in odoo_scripts and not set(programs) & set(odoo_scripts)
    assert volumes["scripts"]["configMap"] == {"name": "acme-odoo-tenant-backup-scripts"}
    assert "--tenant=acme" in backup["command"] and "--dest=/backups" in backup["command"]
    assert variables["BACKUP_KIND"] == "scheduled"
    assert not {k for k in variables if k.startswith(("S3_", "AWS_"))}
    # Same user and group as Odoo: reads the filestore, no ownership change on it.
    assert spec["securityContext"]["fsGroup"] == 101


def test_backup_pod_runs_on_the_odoo_pods_node(default_docs: list[dict[str, Any]]) -> None:
    spec = pod_template(one(default_docs, "CronJob", NAME))["spec"]
    [term] = spec["affinity"]["podAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
    assert term["topologyKey"] == "kubernetes.io/hostname"
    web = one(default_docs, "Deployment", "acme-odoo-tenant")
    assert term["labelSelector"]["matchLabels"] == web["spec"]["selector"]["matchLabels"]
    # The web pod mounts the backup volume (read-only in its container), so the PVC binds
    # (WaitForFirstConsumer) at install, on that node.
    web_volumes = {v["name"]: v for v in pod_template(web)["spec"]["volumes"]}
    assert web_volumes["backups"]["persistentVolumeClaim"] == {"claimName": NAME}


def test_no_node_constraint_when_suspended_or_shared_storage(helm3: Path) -> None:
    for args in (
        ("--set", "odoo.replicas=0"),
        ("--set", "odoo.persistence.accessModes={ReadWriteMany}"),
    ):
        spec = pod_template(one(render(helm3, *args), "CronJob", NAME))["spec"]
        assert "affinity" not in spec, args


def test_own_network_policy_egress_to_postgresql_and_dns_only(
    default_docs: list[dict[str, Any]],
) -> None:
    policy = one(default_docs, "NetworkPolicy", NAME)
    spec = policy["spec"]
    assert spec["podSelector"]["matchLabels"]["app.kubernetes.io/component"] == "backup"
    assert spec["policyTypes"] == ["Ingress", "Egress"]
    assert "ingress" not in spec
    to_pg, to_dns = spec["egress"]
    assert to_pg["ports"] == [{"port": 5432, "protocol": "TCP"}]
    assert (
        to_pg["to"][0]["podSelector"]["matchLabels"]["app.kubernetes.io/component"] == "postgresql"
    )
    assert {p["port"] for p in to_dns["ports"]} == {53}


def test_backup_to_an_external_database(helm3: Path) -> None:
    docs = render(helm3, "--values", str(CHART / "ci" / "external-db-values.yaml"))
    to_db = one(docs, "NetworkPolicy", NAME)["spec"]["egress"][0]
    assert to_db["ports"] == [{"port": 5432, "protocol": "TCP"}]
    assert to_db["to"][0]["namespaceSelector"]["matchLabels"] == {
        "kubernetes.io/metadata.name": "shared-db"
    }


def test_backup_without_a_volume_uses_an_empty_dir(helm3: Path) -> None:
    docs = render(helm3, "--set", "backup.persistence.enabled=false")
    assert not find(docs, "PersistentVolumeClaim", NAME)
    volumes = {v["name"]: v for v in pod_template(one(docs, "CronJob", NAME))["spec"]["volumes"]}
    assert "emptyDir" in volumes["backups"]
    web = pod_template(one(docs, "Deployment", "acme-odoo-tenant"))["spec"]
    assert "backups" not in {v["name"] for v in web["volumes"]}


def test_disabled_backup_renders_nothing_of_it(helm3: Path) -> None:
    docs = render(helm3, "--values", str(CHART / "ci" / "backup-disabled-values.yaml"))
    assert not find(docs, "CronJob")
    assert not find(docs, "PersistentVolumeClaim", NAME)
    assert not find(docs, "NetworkPolicy", NAME)
    assert not find(docs, "ConfigMap", "acme-odoo-tenant-backup-scripts")
    assert "backup.py" not in one(docs, "ConfigMap", "acme-odoo-tenant-scripts")["data"]
    # PostgreSQL's policy does not change with backups: it still admits the backup
    # component label (harmless: no such pod runs).
    pg_policy = one(docs, "NetworkPolicy", "acme-odoo-tenant-postgresql")
    (rule,) = pg_policy["spec"]["ingress"][0]["from"][0]["podSelector"]["matchExpressions"]
    assert rule["key"] == "app.kubernetes.io/component" and "backup" in rule["values"]


def test_schedule_is_validated(helm3: Path) -> None:
    error = render_error(helm3, "--set", "backup.schedule=every day")
    assert "/backup/schedule" in error


S3 = (
    "--set", "backup.storage=s3",
    "--set", "backup.s3.endpoint=https://s3.example.com",
    "--set", "backup.s3.bucket=tenant-backups",
    "--set", "backup.s3.existingSecret=backup-s3",
)  # fmt: skip


def test_s3_storage_credentials_from_a_secret(helm3: Path) -> None:
    docs = render(helm3, *S3, "--set", "backup.s3.prefix=prod")
    backup = container(pod_template(one(docs, "CronJob", NAME))["spec"], "backup")
    assert "--s3" in backup["command"] and "--work=/backups" in backup["command"]
    assert "--dest=/backups" not in backup["command"]
    variables = env(backup)
    assert variables["S3_ENDPOINT"] == "https://s3.example.com"
    assert (variables["S3_BUCKET"], variables["S3_PREFIX"]) == ("tenant-backups", "prod")
    assert variables["AWS_ACCESS_KEY_ID"] == {"secret": "backup-s3", "key": "access-key-id"}
    assert variables["AWS_SECRET_ACCESS_KEY"] == {
        "secret": "backup-s3",
        "key": "secret-access-key",
    }


@pytest.mark.parametrize(
    ("endpoint", "port"),
    [("https://s3.example.com", 443), ("http://minio.storage.svc:9000", 9000),
     ("http://s3.example.com", 80)],
)  # fmt: skip
def test_network_policy_adds_only_the_storage_endpoints_port(
    helm3: Path, endpoint: str, port: int
) -> None:
    docs = render(helm3, *S3, "--set", f"backup.s3.endpoint={endpoint}")
    spec = one(docs, "NetworkPolicy", NAME)["spec"]
    assert "ingress" not in spec
    to_pg, to_dns, to_s3 = spec["egress"]
    assert to_pg["ports"] == [{"port": 5432, "protocol": "TCP"}]
    assert {p["port"] for p in to_dns["ports"]} == {53}
    assert to_s3 == {"ports": [{"port": port, "protocol": "TCP"}]}


def test_network_policy_narrows_the_storage_endpoint_to_given_peers(helm3: Path) -> None:
    docs = render(helm3, *S3, "--set", "backup.s3.egressTo[0].ipBlock.cidr=203.0.113.0/24")
    to_s3 = one(docs, "NetworkPolicy", NAME)["spec"]["egress"][2]
    assert to_s3["to"] == [{"ipBlock": {"cidr": "203.0.113.0/24"}}]


@pytest.mark.parametrize("missing", ["endpoint", "bucket", "existingSecret"])
def test_s3_storage_needs_endpoint_bucket_and_secret(helm3: Path, missing: str) -> None:
    args = [a for a in S3 if a != "--set" and not a.startswith(f"backup.s3.{missing}=")]
    error = render_error(helm3, *(x for a in args for x in ("--set", a)))
    assert f"backup.s3.{missing} is required" in error


def test_storage_is_validated(helm3: Path) -> None:
    assert "/backup/storage" in render_error(helm3, "--set", "backup.storage=ftp")
