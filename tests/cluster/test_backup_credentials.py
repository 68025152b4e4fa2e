"""Issue 24, points 1 and 6, against the cluster with real helm: a platform whose tenants keep
their backups in S3 names its bucket in SAASODOO_TENANT_VALUES and its access key pair by a
Secret (SAASODOO_BACKUP_S3_SECRET, the platform chart's `tenants.backupS3Secret`). A new
tenant's namespace gets the keys under the name its values give before helm runs, the values
and the release carry no key, a rotation reaches the tenant at its next upgrade, and a
platform Secret without a key refuses the create, naming the setting, leaving nothing."""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import Iterator
from typing import Any

import pytest
from kubernetes import client

from saasodoo.context import Context
from saasodoo.core.spec import TenantSpec
from saasodoo.errors import InvalidInput, NotFound
from saasodoo.settings import Settings
from saasodoo.tenants import Tenants
from tests.support import Cluster

pytestmark = pytest.mark.cluster

MAJOR = 4
SOURCE_NS = "saasodoo-bcred"
SOURCE = "platform-backup-s3"
TENANT_SECRET = "saasodoo-backup-s3"
TENANT_VALUES: dict[str, Any] = {
    "backup": {
        "storage": "s3",
        "s3": {
            "endpoint": "http://s3.bcred.example:7070",
            "bucket": "saasodoo-backups",
            "existingSecret": TENANT_SECRET,
        },
    }
}
KEYS = {"access-key-id": "AKIDBCRED", "secret-access-key": "not-in-any-value-0001"}


def settings(kube: Cluster) -> Settings:
    return Settings(
        kubeconfig=kube.kubeconfig, helm_binary=str(kube.tools.helm(MAJOR)), helm_timeout="5m",
        backup_s3_secret=f"{SOURCE_NS}/{SOURCE}", tenant_values=TENANT_VALUES,
    )  # fmt: skip


def put_source(core: client.CoreV1Api, data: dict[str, str]) -> None:
    body = client.V1Secret(metadata=client.V1ObjectMeta(name=SOURCE), string_data=data)
    try:
        core.create_namespaced_secret(SOURCE_NS, body)
    except client.ApiException as exc:
        assert exc.status == 409, exc
        body.data, body.string_data = {}, data  # replace: exactly these keys
        core.replace_namespaced_secret(SOURCE, SOURCE_NS, body)


def tenant_keys(core: client.CoreV1Api, namespace: str) -> dict[str, str]:
    secret = core.read_namespaced_secret(TENANT_SECRET, namespace)
    return {k: base64.b64decode(v).decode() for k, v in (secret.data or {}).items()}


def delete(tenants: Tenants, tid: str) -> None:
    try:
        asyncio.run(tenants.delete(tid, final_backup=False, wait=True))
    except NotFound:
        pass


@pytest.fixture(scope="module")
def core(kube: Cluster) -> Iterator[client.CoreV1Api]:
    api = client.CoreV1Api(kube.api)
    try:
        api.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=SOURCE_NS)))
    except client.ApiException as exc:
        assert exc.status == 409, exc
    yield api
    api.delete_namespace(SOURCE_NS)


def test_a_tenant_gets_the_platform_s_keys_and_its_values_none(
    kube: Cluster, core: client.CoreV1Api
) -> None:
    put_source(core, KEYS)
    tenants = Tenants(Context(settings(kube)))
    spec = TenantSpec.parse({"id": "bcred-a", "admin_email": "a@bcred.example"})
    delete(tenants, spec.id)
    try:
        asyncio.run(tenants.create(spec, wait=False))
        assert tenant_keys(core, spec.namespace) == KEYS
        values = json.loads(
            kube.helm(
                MAJOR, "get", "values", spec.release, "-n", spec.namespace, "-o", "json"
            ).stdout
        )
        assert values["backup"]["storage"] == "s3"
        assert values["backup"]["s3"]["existingSecret"] == TENANT_SECRET
        assert values["backup"]["s3"]["bucket"] == "saasodoo-backups"
        manifest = kube.helm(MAJOR, "get", "all", spec.release, "-n", spec.namespace).stdout
        assert KEYS["secret-access-key"] not in json.dumps(values) + manifest
        cron = json.loads(kube.kubectl("get", "cronjob", "-n", spec.namespace, "-o", "json"))
        pods = [c["spec"]["jobTemplate"]["spec"]["template"]["spec"] for c in cron["items"]]
        env = {e["name"]: e for pod in pods for e in pod["containers"][0]["env"]}
        assert env["AWS_SECRET_ACCESS_KEY"]["valueFrom"]["secretKeyRef"]["name"] == TENANT_SECRET

        # A rotation of the platform's keys reaches the tenant at its next upgrade.
        rotated = {**KEYS, "secret-access-key": "rotated-0002"}
        put_source(core, rotated)
        asyncio.run(tenants.suspend(spec.id, wait=False))
        assert tenant_keys(core, spec.namespace) == rotated
    finally:
        delete(tenants, spec.id)


def test_a_platform_secret_without_a_key_refuses_the_create_and_leaves_nothing(
    kube: Cluster, core: client.CoreV1Api
) -> None:
    put_source(core, {"access-key-id": "AKIDBCRED"})
    tenants = Tenants(Context(settings(kube)))
    spec = TenantSpec.parse({"id": "bcred-b", "admin_email": "b@bcred.example"})
    delete(tenants, spec.id)
    with pytest.raises(InvalidInput) as err:
        asyncio.run(tenants.create(spec, wait=False))
    assert "secret-access-key" in str(err.value)
    assert [f.field for f in err.value.fields] == ["backup_s3_secret"]
    # Checked before the namespace is made: never made (no create-and-remove on each retry).
    assert not core.list_namespace(field_selector=f"metadata.name={spec.namespace}").items
    assert not [r for r in kube.helm_releases(MAJOR) if r["namespace"] == spec.namespace]
