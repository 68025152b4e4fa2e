"""Updates through ``odoo -u`` on the real node (issue 25, points 2 and 4), made by the
operator's controllers (run here in process, one turn at a time as the work queue runs them):
a tenant runs a derived Odoo image carrying the test module ``saasodoo_update_probe`` 1.0
(tests/realnode/probe_images.py, tests/odoo/probe.py), installed and holding a record. A new
image of the series with the module at 1.1 is a good update: stop, pre-update backup, ``odoo
-u``, rollout, signed-in check; the module's migration ran over the record. Then an image with
1.2, whose migration raises: the update fails, the pre-update backup is restored, the release
rolled back, the tenant Stalled with ModuleUpdateFailed and the backup named, and it serves its
previous data again (signed in through Traefik, the record written before the failing update
still there, the module at 1.1). The failing image comes as a fleet upgrade whose canary is
that tenant: the fleet stops before the other tenant (suspended, so cheap to keep)."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from saasodoo.core import updates as up
from saasodoo.core.conditions import get_condition
from saasodoo.fleet import FleetTarget, ResourceFleet
from saasodoo.odootenants import OdooTenants
from saasodoo.reconciler import Outcome
from saasodoo.settings import Settings
from tests.odoo.probe import BAD, BAD_MESSAGE, GOOD, MODEL, NAME
from tests.realnode.helpers import (
    BASE_DOMAIN,
    NODE_POOL,
    RealTenant,
    psql,
    real_nodes,
    wait_login,
)
from tests.realnode.operator_turns import Operator
from tests.realnode.probe_images import ADDONS_PATH, import_into_nodes
from tests.realnode.test_pdf_and_maintenance_on_real_node import call_kw, sign_in
from tests.support import Cluster

pytestmark = pytest.mark.realnode

NAMESPACE = "saasodoo-rnupd"
TENANT = RealTenant("rnupd", "tenant-rnupd")
OTHER = RealTenant("rnupd2", "tenant-rnupd2")  # the fleet's second tenant, suspended


def overrides(image_tag: str) -> dict[str, Any]:
    return {"odoo": {"image": {"tag": image_tag},
                     "config": {"extraOptions": {"addons_path": ADDONS_PATH}}}}  # fmt: skip


@pytest.fixture(scope="module")
def operator(kube: Cluster) -> Iterator[Operator]:
    assert real_nodes(kube), "no real node in the cluster: scripts/cluster.sh up starts one"
    tags = {v: import_into_nodes(v) for v in ("1.0", GOOD, BAD)}
    settings = Settings(kubeconfig=kube.kubeconfig, helm_binary=str(kube.tools.helm(4)),
                        base_domain=BASE_DOMAIN, node_pool=NODE_POOL,
                        system_namespace=NAMESPACE)  # fmt: skip
    op = Operator(settings, NAMESPACE).install()
    op.tags = tags  # type: ignore[attr-defined]
    try:
        yield op
    finally:  # what the test leaves, or left after a failure
        for tenant in (TENANT, OTHER):
            op.remove(tenant.id)


def update_of(op: Operator) -> dict[str, Any]:
    return dict(op.status(TENANT.id).get("update") or {})


def condition(op: Operator, type_: str) -> dict[str, Any]:
    return get_condition(op.status(TENANT.id).get("conditions") or [], type_) or {}


def records(kube: Cluster) -> list[dict[str, Any]]:
    cookie = sign_in(kube, TENANT)
    return list(call_kw(TENANT, cookie, MODEL, "search_read", [], ["name", "note"]))


def history(kube: Cluster, t: RealTenant = TENANT) -> list[dict[str, Any]]:
    out = kube.helm(4, "history", t.id, "-n", t.namespace, "-o", "json").stdout
    return list(json.loads(out))


def fleet_upgrade(op: Operator, target: FleetTarget) -> Any:
    """``fleet upgrade`` through the operator (ResourceFleet: spec changes followed until
    Ready or Stalled), the operator's turns running beside it in a thread."""
    stop = threading.Event()

    def turns() -> None:
        while not stop.is_set():
            for name in (TENANT.id, OTHER.id):
                op.turn(name)
            stop.wait(2)

    thread = threading.Thread(target=turns, daemon=True)
    thread.start()
    try:
        fleet = ResourceFleet(OdooTenants(op.settings, ctx=op.ctx))
        return asyncio.run(fleet.upgrade(target, [TENANT.id, OTHER.id], canaries=1,
                                         timeout=900))  # fmt: skip
    finally:
        stop.set()
        thread.join(timeout=120)


def test_a_good_update_then_a_failing_one_undone(kube: Cluster, operator: Operator) -> None:
    op, tags = operator, operator.tags  # type: ignore[attr-defined]
    res = op.controller.resources
    res.create({"metadata": {"name": TENANT.id}, "spec": {
        "adminEmail": f"admin@{TENANT.id}.example", "finalBackup": False,
        "overrides": overrides(tags["1.0"])}})  # fmt: skip
    res.create({"metadata": {"name": OTHER.id}, "spec": {
        "adminEmail": f"admin@{OTHER.id}.example", "finalBackup": False, "suspended": True,
        "overrides": overrides(tags["1.0"])}})  # fmt: skip
    op.run_until(lambda: op.ready(TENANT.id) and op.ready(OTHER.id), [TENANT.id, OTHER.id],
                 600, "tenants not Ready")  # fmt: skip
    assert wait_login(TENANT.host)[0] == 200
    cookie = sign_in(kube, TENANT)
    call_kw(TENANT, cookie, "ir.module.module", "update_list")
    found = call_kw(TENANT, cookie, "ir.module.module", "search", [["name", "=", NAME]])
    call_kw(TENANT, cookie, "ir.module.module", "button_immediate_install", found)
    cookie = sign_in(kube, TENANT)
    call_kw(TENANT, cookie, MODEL, "create", [{"name": "written before the updates"}])

    # A good update: the new image of the series brings the module at 1.1.
    res.patch(TENANT.id, {"spec": {"overrides": overrides(tags[GOOD])}})
    op.run_until(lambda: update_of(op).get("step") in (up.DONE, up.STALLED), [TENANT.id], 900,
                 "good update not over")  # fmt: skip
    progress = update_of(op)
    assert progress["step"] == up.DONE, progress
    assert progress["result"]["changed"][NAME] == ["18.0.1.0", "18.0.1.1"], progress
    assert progress["backup"].endswith("-pre-update.zip"), progress
    op.run_until(lambda: op.ready(TENANT.id), [TENANT.id], 300, "not Ready after the update")
    assert wait_login(TENANT.host)[0] == 200
    assert records(kube) == [{"id": 1, "name": "written before the updates",
                              "note": "migrated from 18.0.1.0"}]  # fmt: skip
    cookie = sign_in(kube, TENANT)
    call_kw(TENANT, cookie, MODEL, "create", [{"name": "written before the failing update"}])
    good_revisions = len(history(kube))

    # A failing update: 1.2's migration raises during odoo -u; it comes as a fleet upgrade
    # whose canary is this tenant, and the fleet stops before the other one.
    other_spec = res.get(OTHER.id)["spec"]  # type: ignore[index]
    summary = fleet_upgrade(op, FleetTarget(overrides=overrides(tags[BAD])))
    outcomes = [(r.tenant_id, r.outcome) for r in summary.results]
    assert outcomes == [(TENANT.id, Outcome.STALLED), (OTHER.id, Outcome.SKIPPED)], summary
    assert summary.stopped == "a canary failed"
    assert res.get(OTHER.id)["spec"] == other_spec  # type: ignore[index]
    # Its release never got the failing image (its own suspension may have made a revision).
    values = json.loads(kube.helm(4, "get", "values", OTHER.id, "-n", OTHER.namespace, "-o",
                                  "json").stdout)  # fmt: skip
    assert values["odoo"]["image"]["tag"] == tags["1.0"], values
    assert not [r for r in history(kube, OTHER) if "update" in r["description"]]
    progress = update_of(op)
    assert progress["step"] == up.STALLED and progress["failedStep"] == up.UPDATE, progress
    assert progress["reverted"] is True, progress
    assert BAD_MESSAGE in progress["message"], progress
    stalled = condition(op, "Stalled")
    assert stalled["status"] == "True" and stalled["reason"] == "ModuleUpdateFailed", stalled
    assert f"pre-update backup {progress['backup']} restored" in stalled["message"]
    # The database as the failed -u left it is kept (restore.py), named in the message.
    kept = progress["previousData"]
    assert f"kept as {kept['database']} (and its filestore) until " in stalled["message"]
    assert psql(kube, TENANT, f"SELECT count(*) FROM pg_database WHERE datname = "
                f"'{kept['database']}'") == "1"  # fmt: skip
    revisions = history(kube)
    assert len(revisions) == good_revisions + 2  # the stop, then the rollback
    assert revisions[-1]["description"] == f"Rollback to {progress['fromRevision']}"
    # The tenant serves its previous data: signed in through Traefik, both records, 1.1.
    assert wait_login(TENANT.host, timeout=300)[0] == 200
    names = [(r["name"], r["note"]) for r in records(kube)]
    assert names == [("written before the updates", "migrated from 18.0.1.0"),
                     ("written before the failing update", False)], names  # fmt: skip
    cookie = sign_in(kube, TENANT)
    module = call_kw(TENANT, cookie, "ir.module.module", "search_read", [["name", "=", NAME]],
                     ["latest_version", "state"])  # fmt: skip
    assert (module[0]["latest_version"], module[0]["state"]) == ("18.0.1.1", "installed")
    # Held: later turns change nothing.
    op.turn(TENANT.id)
    assert len(history(kube)) == len(revisions)
