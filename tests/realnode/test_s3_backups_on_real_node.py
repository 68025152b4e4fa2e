"""A tenant keeping its backups in the real node's S3 server (scripts/s3.sh: versitygw built
from source, in namespace s3), end to end with the CLI a user runs: the backup Job writes the
zip into the bucket through its NetworkPolicy, the control plane on this machine lists it at
the Service's ClusterIP (SAASODOO_BACKUP_S3_ENDPOINT, as `scripts/s3.sh env` prints it), the
object is in the bucket, and a restore from the bucket brings the data back."""

from __future__ import annotations

import base64
import json
import subprocess
from collections.abc import Iterator

import boto3
import pytest
from botocore.config import Config

from tests.realnode.helpers import RealTenant, cli_json, psql, real_nodes, run_cli, wait_login
from tests.support import ROOT, Cluster

pytestmark = pytest.mark.realnode

TENANT = RealTenant("rns3", "tenant-rns3")
CREDENTIALS = "backup-s3"  # the copy of the server's key pair in the tenant namespace


def s3_env(kube: Cluster) -> dict[str, str]:
    """`scripts/s3.sh env`: KEY=VALUE lines, parsed."""
    out = subprocess.run(["bash", str(ROOT / "scripts" / "s3.sh"), "env"], env=kube.env(),
                         capture_output=True, text=True, check=True).stdout  # fmt: skip
    return dict(line.split("=", 1) for line in out.splitlines() if "=" in line)


def key_pair(kube: Cluster, env: dict[str, str]) -> dict[str, str]:
    namespace, name = env["SAASODOO_S3_SECRET"].split("/", 1)
    data = kube.core.read_namespaced_secret(name, namespace).data
    return {k: base64.b64decode(v).decode() for k, v in data.items()}


def tenant_db(kube: Cluster) -> str:
    dbs = psql(kube, TENANT, "SELECT datname FROM pg_database WHERE NOT datistemplate").split()
    return next(d for d in dbs if d != "postgres" and not d.startswith("odoo_p"))


@pytest.fixture
def s3_tenant(kube: Cluster, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, str]]:
    """TENANT created with backup.storage=s3 in the real node's bucket, its key pair copied
    into its namespace; the control plane reaches the bucket at the ClusterIP; deleted after."""
    assert real_nodes(kube), "no real node in the cluster: scripts/cluster.sh up starts one"
    env = s3_env(kube)
    monkeypatch.setenv("SAASODOO_BACKUP_S3_ENDPOINT", env["SAASODOO_BACKUP_S3_ENDPOINT"])
    # Only the S3 server's pods, on the endpoint's port (the chart adds DNS and PostgreSQL).
    peers = [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "s3"}},
              "podSelector": {"matchLabels": {"app.kubernetes.io/name": "versitygw"}}}]  # fmt: skip
    sets = [
        "backup.storage=s3",
        f"backup.s3.endpoint={env['SAASODOO_S3_ENDPOINT']}",
        f"backup.s3.bucket={env['SAASODOO_S3_BUCKET']}",
        f"backup.s3.region={env['SAASODOO_S3_REGION']}",
        f"backup.s3.existingSecret={CREDENTIALS}",
        f"backup.s3.egressTo={json.dumps(peers)}",
    ]
    run_cli(kube, "tenant", "delete", TENANT.id, "--yes", "--no-final-backup")
    doc = cli_json(kube, "tenant", "create", TENANT.id, "--email", "admin@rns3.example",
                   *[a for s in sets for a in ("--set", s)])  # fmt: skip
    assert doc["ready"] == "True", doc
    try:
        pair = key_pair(kube, env)
        kube.core.create_namespaced_secret(TENANT.namespace, {
            "metadata": {"name": CREDENTIALS},
            "stringData": {k: pair[k] for k in ("access-key-id", "secret-access-key")},
        })  # fmt: skip
        yield {**env, **pair}
    finally:
        run_cli(kube, "tenant", "delete", TENANT.id, "--yes", "--no-final-backup")


def test_backup_goes_to_the_s3_server_is_listed_from_here_and_restores(
    kube: Cluster, s3_tenant: dict[str, str]
) -> None:
    db = tenant_db(kube)
    psql(kube, TENANT, "UPDATE res_company SET name = 'Before S3 Backup' WHERE id = 1", db)

    created = cli_json(kube, "backup", "create", TENANT.id)
    assert created["job"]["succeeded"], created
    # Found in the bucket by the control plane (not from the Job's log): it reads the bucket.
    name = created["backup"]["name"]
    listed = cli_json(kube, "backup", "list", TENANT.id)
    assert [b["name"] for b in listed] == [name], listed
    assert listed[0]["kind"] == "on-demand" and listed[0]["db_name"] == db, listed

    # The objects, seen with the server's own key pair: the zip and its manifest.
    bucket = boto3.client(
        "s3", endpoint_url=s3_tenant["SAASODOO_BACKUP_S3_ENDPOINT"],
        aws_access_key_id=s3_tenant["access-key-id"],
        aws_secret_access_key=s3_tenant["secret-access-key"],
        region_name=s3_tenant["SAASODOO_S3_REGION"], config=Config(s3={"addressing_style": "path"}),
    )  # fmt: skip
    objects = bucket.list_objects_v2(Bucket=s3_tenant["SAASODOO_S3_BUCKET"],
                                     Prefix=f"saasodoo/{TENANT.id}/")  # fmt: skip
    sizes = {o["Key"]: o["Size"] for o in objects.get("Contents", [])}
    key = f"saasodoo/{TENANT.id}/{name}"
    assert set(sizes) == {key, f"{key}.json"}, sizes
    assert sizes[key] == listed[0]["sizes"]["zip"], (sizes, listed[0]["sizes"])

    # Proven readable where it is stored (the zip fetched from the bucket, checksums checked).
    verified = cli_json(kube, "backup", "verify", TENANT.id, name)
    assert verified["ok"], verified

    # Changed, then restored from the bucket: the change is gone, Odoo serves again.
    psql(kube, TENANT, "UPDATE res_company SET name = 'After S3 Backup' WHERE id = 1", db)
    restored = cli_json(kube, "backup", "restore", TENANT.id, name, "--yes")
    assert restored["ok"] and restored["backup"] == name, restored
    assert psql(kube, TENANT, "SELECT name FROM res_company WHERE id = 1", db) == "Before S3 Backup"
    assert wait_login(TENANT.host)[0] == 200
