"""Templated creates on the real node (issue #25 points 3 and 4), by the operator's
controllers (in process, one turn at a time as the work queue runs them), with backups in
the real node's S3 server (scripts/s3.sh), where the templates are kept too.

The first tenant of an image finds no template: it is created with Odoo's `-i base`, then
its namespace hosts the template's build (a Job: `-i base` into a scratch database of its
PostgreSQL, stored under templates/<key> by backup.py, the scratch database dropped). The
next tenant of that image is made from it: restored beside the install while its web pod
waits, then personalized from the create request: it has the requested company, language,
country, time zone and admin login, a database.uuid of its own, and its admin signs in
through Traefik."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator

import pytest

from saasodoo.adapters.resources import apply_crd
from saasodoo.core import operations as ops
from saasodoo.core import templates as tpl
from saasodoo.core.crd import crd_manifest
from saasodoo.core.spec import TenantSpec
from saasodoo.settings import Settings
from tests.realnode.helpers import (
    BASE_DOMAIN,
    NODE_POOL,
    RealTenant,
    pod,
    psql,
    real_nodes,
    tenant_db,
    wait_login,
)
from tests.realnode.operator_turns import Operator
from tests.realnode.test_s3_backups_on_real_node import s3_env
from tests.support import Cluster

pytestmark = pytest.mark.realnode

NAMESPACE = "saasodoo-rntpl"
FIRST = RealTenant("rntpla", "tenant-rntpla")
SECOND = RealTenant("rntplb", "tenant-rntplb")
CREDENTIALS = "backup-s3"
PARAM = "SELECT value FROM ir_config_parameter WHERE key = '{}'"
PERSONAL = {
    "adminLogin": "chef@rntplb.example",
    "companyName": "Tarte & Tatin SARL",
    "language": "fr_FR",
    "country": "FR",
    "timezone": "Europe/Paris",
}


@pytest.fixture
def operator(kube: Cluster) -> Iterator[Operator]:
    assert real_nodes(kube), "no real node in the cluster: scripts/cluster.sh up starts one"
    env = s3_env(kube)
    settings = Settings(kubeconfig=kube.kubeconfig, helm_binary=str(kube.tools.helm(4)),
                        base_domain=BASE_DOMAIN, node_pool=NODE_POOL, system_namespace=NAMESPACE,
                        backup_s3_endpoint=env["SAASODOO_BACKUP_S3_ENDPOINT"],
                        backup_s3_secret=env["SAASODOO_S3_SECRET"])  # fmt: skip
    op = Operator(settings, NAMESPACE)
    apply_crd(op.ctx.kube, crd_manifest())
    for kind in ops.KINDS.values():
        apply_crd(op.ctx.kube, ops.crd_manifest(kind))
    op.ctx.kube.create_namespace_if_absent(NAMESPACE)
    try:
        yield op
    finally:
        op.remove(SECOND.id)
        op.remove(FIRST.id)


def s3_overrides(kube: Cluster) -> dict[str, object]:
    env = s3_env(kube)
    peers = [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "s3"}},
              "podSelector": {"matchLabels": {"app.kubernetes.io/name": "versitygw"}}}]  # fmt: skip
    return {"backup": {"storage": "s3", "s3": {
        "endpoint": env["SAASODOO_S3_ENDPOINT"], "bucket": env["SAASODOO_S3_BUCKET"],
        "region": env["SAASODOO_S3_REGION"], "existingSecret": CREDENTIALS, "egressTo": peers,
    }}}  # fmt: skip


def test_the_first_tenant_builds_the_template_and_the_next_is_made_from_it(
    kube: Cluster, operator: Operator
) -> None:
    overrides = s3_overrides(kube)
    res = operator.controller.resources
    creates = operator.controller.templates
    # No template of this image yet: the first tenant takes the -i base path and builds it.
    first_spec = {"id": FIRST.id, "admin_email": "a@rntpla.example", "overrides": overrides}
    plan = creates.plan(TenantSpec.parse(first_spec))
    assert plan is not None, "templates apply to a tenant keeping its backups in S3"
    store = creates.backups.platform_store(tpl.template_folder(plan.key), plan.where)
    for name in store.names():
        store.delete(name)
    creates._listed.clear()

    res.create({"metadata": {"name": FIRST.id}, "spec": {"adminEmail": "boss@rntpla.example",
                                                        "finalBackup": False,
                                                        "overrides": overrides}})  # fmt: skip
    operator.run_until(lambda: operator.ready(FIRST.id), [FIRST.id], 600, "first not Ready")
    first = operator.status(FIRST.id)["template"]
    assert first["key"] == plan.key and first["state"] == tpl.BUILDING, first
    operator.run_until(
        lambda: operator.status(FIRST.id)["template"]["state"] != tpl.BUILDING,
        [FIRST.id], 900, "template not built",
    )  # fmt: skip
    built = operator.status(FIRST.id)["template"]
    assert built["state"] == tpl.BUILT, built
    stored = [n for n in store.names() if n.endswith(".zip")]
    assert len(stored) == 1, stored
    # The scratch database and the build's own role are gone, the first tenant's own
    # database untouched and serving.
    assert "_tpl_" not in psql(kube, FIRST, "SELECT string_agg(datname, ' ') FROM pg_database")
    assert "_tpl_" not in psql(kube, FIRST, "SELECT string_agg(rolname, ' ') FROM pg_roles")
    assert wait_login(FIRST.host)[0] == 200
    first_uuid = psql(kube, FIRST, PARAM.format("database.uuid"), tenant_db(kube, FIRST))

    # The next tenant of the image is made from it, personalized from its create request.
    begin = time.monotonic()
    res.create({"metadata": {"name": SECOND.id}, "spec": {
        "adminEmail": "owner@rntplb.example", "finalBackup": False, "overrides": overrides,
        **PERSONAL}})  # fmt: skip
    operator.run_until(lambda: operator.ready(SECOND.id), [SECOND.id], 600, "second not Ready")
    ready = time.monotonic() - begin
    assert wait_login(SECOND.host)[0] == 200
    print(f"templated create: Ready after {ready:.1f} s (operator turns every 2 s here)")
    operator.run_until(
        lambda: operator.status(SECOND.id)["template"]["state"] != tpl.RESTORING,
        [SECOND.id], 120, "restore not followed",
    )  # fmt: skip
    second = operator.status(SECOND.id)["template"]
    assert second["state"] == tpl.RESTORED and second["backup"] == stored[0], second
    init_log = kube.kubectl("logs", "-n", SECOND.namespace,
                            pod(kube, SECOND.namespace, "odoo"), "-c", "odoo-init")  # fmt: skip
    assert f"template {plan.key} restored into" in init_log, init_log
    assert "-i base" not in init_log, init_log

    db = tenant_db(kube, SECOND)
    q = psql
    assert q(kube, SECOND, "SELECT name FROM res_company WHERE id = 1", db) == (
        "Tarte & Tatin SARL"
    )
    country = ("SELECT c.code FROM res_company co JOIN res_partner p ON p.id = co.partner_id"
               " JOIN res_country c ON c.id = p.country_id WHERE co.id = 1")  # fmt: skip
    assert q(kube, SECOND, country, db) == "FR"
    admin = ("SELECT login, tz FROM res_users u JOIN res_partner p ON p.id = u.partner_id"
             " WHERE u.id = 2")  # fmt: skip
    assert q(kube, SECOND, admin, db) == "chef@rntplb.example|Europe/Paris"
    active = q(kube, SECOND, "SELECT string_agg(code, ' ' ORDER BY code) FROM res_lang "
               "WHERE active", db)  # fmt: skip
    assert "fr_FR" in active.split(), active
    uuid = q(kube, SECOND, PARAM.format("database.uuid"), db)
    template_uuid = q(kube, SECOND, PARAM.format("saasodoo.template_uuid"), db)
    assert uuid and template_uuid and len({uuid, template_uuid, first_uuid}) == 3

    # Its admin signs in (the chart's helm test: JSON-RPC through the Service, then /web).
    spec = asyncio.run(operator.tenants.get(SECOND.id)).spec
    asyncio.run(operator.tenants.check_ready(spec))
