"""A staging copy made by the operator on the real node (issue 25, points 1 and 4): the
source keeps its backups in the real node's S3 server (scripts/s3.sh), or on its PVC (the
default: carried over by the transfer Job pair); its copy is an
OdooTenant with spec.copyOf, made by the operator's controllers (run here in process, one
turn at a time as the work queue runs them): a fresh online backup of the source through an
OdooTenantBackup, the copy installed with Odoo at zero, the backup restored into it from the
source's S3 prefix, neutralized, started. The copy serves the source's data through
Traefik, neutralized (only the dummy mail server and the autovacuum active), with its own
database.uuid; the source keeps its data, its uuid and its helm history."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from saasodoo.adapters.resources import apply_crd
from saasodoo.core import copies
from saasodoo.core import operations as ops
from saasodoo.core.crd import COPY_OF_LABEL, crd_manifest
from saasodoo.settings import Settings
from tests.realnode.helpers import (
    BASE_DOMAIN,
    NODE_POOL,
    RealTenant,
    psql,
    real_nodes,
    tenant_db,
    wait_login,
)
from tests.realnode.operator_turns import Operator
from tests.realnode.test_s3_backups_on_real_node import key_pair, s3_env
from tests.support import Cluster

pytestmark = pytest.mark.realnode

NAMESPACE = "saasodoo-rncopy"
SOURCE = RealTenant("rnsrc", "tenant-rnsrc")
COPY = RealTenant("rnstg", "tenant-rnstg")
CREDENTIALS = "backup-s3"
PARAM = "SELECT value FROM ir_config_parameter WHERE key = '{}'"


@pytest.fixture
def operator(kube: Cluster) -> Iterator[Operator]:
    assert real_nodes(kube), "no real node in the cluster: scripts/cluster.sh up starts one"
    env = s3_env(kube)
    settings = Settings(kubeconfig=kube.kubeconfig, helm_binary=str(kube.tools.helm(4)),
                        base_domain=BASE_DOMAIN, node_pool=NODE_POOL, system_namespace=NAMESPACE,
                        backup_s3_endpoint=env["SAASODOO_BACKUP_S3_ENDPOINT"])  # fmt: skip
    op = Operator(settings, NAMESPACE)
    apply_crd(op.ctx.kube, crd_manifest())
    for kind in ops.KINDS.values():
        apply_crd(op.ctx.kube, ops.crd_manifest(kind))
    op.ctx.kube.create_namespace_if_absent(NAMESPACE)
    try:
        yield op
    finally:
        op.remove(COPY.id)
        op.remove(SOURCE.id)


@pytest.mark.parametrize("storage", ["s3", "pvc"])
def test_a_copy_serves_the_source_s_data_neutralized_with_its_own_identity(
    kube: Cluster, operator: Operator, storage: str
) -> None:
    """``storage``: where the source keeps its backups (its PVC: the default, carried over
    by the transfer Job pair, a reader pod in the source's namespace and the copy's fetch
    Job, through the NetworkPolicies they get)."""
    env = s3_env(kube)
    peers = [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "s3"}},
              "podSelector": {"matchLabels": {"app.kubernetes.io/name": "versitygw"}}}]  # fmt: skip
    s3 = {"backup": {"storage": "s3", "s3": {
        "endpoint": env["SAASODOO_S3_ENDPOINT"], "bucket": env["SAASODOO_S3_BUCKET"],
        "region": env["SAASODOO_S3_REGION"], "existingSecret": CREDENTIALS, "egressTo": peers,
    }}}  # fmt: skip
    res = operator.controller.resources
    overrides = s3 if storage == "s3" else {}
    res.create({"metadata": {"name": SOURCE.id}, "spec": {"adminEmail": "boss@rnsrc.example",
                                                         "finalBackup": False,
                                                         "overrides": overrides}})  # fmt: skip
    if storage == "s3":
        # The source's key pair in its namespace (by hand, as for any tenant), once it exists.
        operator.run_until(
            lambda: operator.ctx.kube.read_namespace(SOURCE.namespace) is not None,
            [SOURCE.id], 120, "the source's namespace",
        )  # fmt: skip
        pair = key_pair(kube, env)
        operator.ctx.kube.create_secret_if_absent(SOURCE.namespace, CREDENTIALS, {
            k: pair[k] for k in ("access-key-id", "secret-access-key")}, {})  # fmt: skip
    operator.run_until(lambda: operator.ready(SOURCE.id), [SOURCE.id], 600, "source not Ready")
    db = tenant_db(kube, SOURCE)
    psql(kube, SOURCE, "UPDATE res_company SET name = 'Copied Company' WHERE id = 1", db)
    source_uuid = psql(kube, SOURCE, PARAM.format("database.uuid"), db)
    history = kube.helm(4, "history", SOURCE.id, "-n", SOURCE.namespace, "-o", "json").stdout

    spec = copies.copy_spec(SOURCE.id, res.get(SOURCE.id)["spec"], COPY.id)  # type: ignore[index]
    res.create({"metadata": {"name": COPY.id, "labels": copies.copy_labels(SOURCE.id)},
                "spec": {**spec, "finalBackup": False}})  # fmt: skip
    operator.run_until(lambda: operator.ready(COPY.id), [COPY.id, SOURCE.id], 900,
                       "copy not Ready")  # fmt: skip

    progress = operator.status(COPY.id)["copy"]
    assert progress["step"] == copies.COPIED and progress["backup"].endswith(".zip"), progress
    if storage == "pvc":  # carried over by the fetch Job, which completed
        fetched = operator.ctx.kube.list_jobs(COPY.namespace, "saasodoo.dev/copy-job=transfer")
        assert [j.completed for j in fetched] == [True], fetched
    assert progress["neutralized"]["ok"] is True, progress
    request = operator.backups.get(progress["backupRequest"]) or {}
    assert request["spec"] == {"tenant": SOURCE.id}
    assert request["status"]["phase"] == "Succeeded", request
    namespace = operator.ctx.kube.read_namespace(COPY.namespace)
    assert namespace is not None and namespace.labels[COPY_OF_LABEL] == SOURCE.id

    # The copy serves the source's data through Traefik, neutralized, with its own identity.
    assert wait_login(COPY.host)[0] == 200
    copy_db = tenant_db(kube, COPY)
    assert psql(kube, COPY, "SELECT name FROM res_company WHERE id = 1", copy_db) == (
        "Copied Company"
    )
    copy_uuid = psql(kube, COPY, PARAM.format("database.uuid"), copy_db)
    assert copy_uuid and copy_uuid != source_uuid
    assert psql(kube, COPY, "SELECT name, smtp_host FROM ir_mail_server WHERE active",
                copy_db) == "neutralization - disable emails|invalid"  # fmt: skip
    crons = ("SELECT d.name FROM ir_cron c JOIN ir_model_data d ON d.res_id = c.id"
             " AND d.model = 'ir.cron' WHERE c.active")  # fmt: skip
    assert psql(kube, COPY, crons, copy_db) == "autovacuum_job"
    assert psql(kube, COPY, PARAM.format("database.is_neutralized"), copy_db) == "true"
    values = json.loads(kube.helm(4, "get", "values", COPY.id, "-n", COPY.namespace, "-o",
                                  "json").stdout)  # fmt: skip
    assert values["tenant"]["copyOf"] == SOURCE.id
    assert values["odoo"]["smtp"]["enabled"] is False

    # The source untouched: its data, its identity, its release.
    assert psql(kube, SOURCE, "SELECT name FROM res_company WHERE id = 1", db) == "Copied Company"
    assert psql(kube, SOURCE, PARAM.format("database.uuid"), db) == source_uuid
    assert psql(kube, SOURCE, PARAM.format("database.is_neutralized"), db) in ("", "false")
    after = kube.helm(4, "history", SOURCE.id, "-n", SOURCE.namespace, "-o", "json").stdout
    assert json.loads(after) == json.loads(history)
    assert wait_login(SOURCE.host)[0] == 200

    # Refreshed from production: the source's newer data in the copy, neutralized again
    # (its pods' odoo-init before Odoo starts), an identity of its own again.
    psql(kube, SOURCE, "UPDATE res_company SET name = 'Refreshed Company' WHERE id = 1", db)
    refreshes = operator.kinds[ops.REFRESH.kind]
    asked = refreshes.create(ops.request_body(ops.REFRESH, NAMESPACE, COPY.id))
    name = asked["metadata"]["name"]

    def refreshed() -> bool:
        return ops.is_terminal(refreshes.get(name) or {})

    operator.run_until(refreshed, [COPY.id, SOURCE.id], 900, "refresh not finished")
    done = refreshes.get(name) or {}
    assert done["status"]["phase"] == "Succeeded", done["status"]
    assert (
        done["status"]["backup"].endswith(".zip") and done["status"]["backup"] != progress["backup"]
    )
    assert wait_login(COPY.host)[0] == 200
    copy_db = tenant_db(kube, COPY)
    assert psql(kube, COPY, "SELECT name FROM res_company WHERE id = 1", copy_db) == (
        "Refreshed Company"
    )
    renewed = psql(kube, COPY, PARAM.format("database.uuid"), copy_db)
    assert renewed and renewed not in (source_uuid, copy_uuid)
    assert psql(kube, COPY, PARAM.format("database.is_neutralized"), copy_db) == "true"
    assert psql(kube, COPY, "SELECT name, smtp_host FROM ir_mail_server WHERE active",
                copy_db) == "neutralization - disable emails|invalid"  # fmt: skip
    assert psql(kube, COPY, crons, copy_db) == "autovacuum_job"
