"""Custom-domain verification with the operator (#23 point 4): no job. The operator looks
for the DNS proof of each unproven domain while it reconciles (a real DNS server on
127.0.0.1, bounded timeouts, back-off written to the OdooTenant's ``status.domains``) and
routes the proven ones (claim, helm upgrade); ``POST .../domains/verify`` only asks for a
reconcile (the ``saasodoo.dev/reconcile-requested-at`` annotation) and answers 202 with the
tenant, within the per-user limit; ``GET .../domains`` reads the status.

The API runs in this process (Flask's test client, local auth); the operator is a
``saasodoo operator run`` process on the simulated cluster."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask

from saasodoo.api.config import ApiSettings
from saasodoo.app import create_app
from saasodoo.core.crd import RECONCILE_REQUESTED_AT
from saasodoo.settings import Settings
from tests.api.conftest import Api, sign_up
from tests.dns_server import Zone, dns_server
from tests.operator_process import OperatorProcess, delete_tenants, running_operator, wait_for
from tests.support import Cluster

pytestmark = pytest.mark.cluster

NAMESPACE = "saasodoo-api-dom"
SHOP = "shop.dom-a.example"
SETTLE = 180


@pytest.fixture(scope="module")
def zone() -> Iterator[Zone]:
    with dns_server() as z:
        yield z


@pytest.fixture(scope="module")
def operator(
    kube: Cluster, zone: Zone, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[OperatorProcess]:
    logs: Path = tmp_path_factory.mktemp("api-dom")
    with running_operator(kube, logs, "api-dom", system_namespace=NAMESPACE,
                          dns_nameserver="127.0.0.1", dns_port=str(zone.port),
                          dns_timeout="3") as op:  # fmt: skip
        wait_for(lambda: "leads" in op.output(), 60, "the operator to lead", op)
        yield op
        delete_tenants(kube, NAMESPACE)
    kube.kubectl("delete", "namespace", NAMESPACE, "--timeout=120s")


@pytest.fixture(scope="module")
def app(kube: Cluster, operator: OperatorProcess) -> Flask:
    settings = Settings(kubeconfig=kube.kubeconfig, helm_binary=str(kube.tools.helm(4)),
                        base_domain="odoo.test", operator=True,
                        system_namespace=NAMESPACE)  # fmt: skip
    api = ApiSettings(auth_mode="local", cookie_secure=False, domain_verify_limit=3)
    return create_app(api, settings)


def domains(user: Api) -> list[dict[str, Any]]:
    res = user.call("GET", "/api/tenants/dom-a/domains")
    assert res.status_code == 200, res.get_json()
    found: list[dict[str, Any]] = res.get_json()["domains"]
    return found


def tenant(user: Api) -> dict[str, Any]:
    res = user.call("GET", "/api/tenants/dom-a")
    assert res.status_code == 200, res.get_json()
    found: dict[str, Any] = res.get_json()
    return found


def test_the_operator_verifies_and_routes_a_domain_the_api_asked_it_to_look_at(
    app: Flask, zone: Zone, kube: Cluster, operator: OperatorProcess
) -> None:
    client = app.test_client()
    owner = sign_up(client, "owner@dom.example.com")
    res = owner.call("POST", "/api/tenants", json={"id": "dom-a", "admin_email": "a@dom.example",
                                                   "custom_domains": [SHOP]})  # fmt: skip
    assert res.status_code == 202, res.get_json()

    # Once reconciled, the domain is pending with the record to create, checked once.
    def pending() -> dict[str, Any] | None:
        (d,) = domains(owner)
        return d if d["state"] == "pending" and d["checked_at"] else None

    first = wait_for(pending, SETTLE, "the domain to be checked once", operator)
    record = first["record"]
    assert record["txt_name"] == f"_saasodoo-challenge.{SHOP}"
    assert record["cname_target"].endswith(".dom-a.odoo.test")
    assert "not verified yet" in first["message"] and record["txt_value"] in first["message"]
    assert first["next_check_at"] > first["checked_at"]  # back-off: not looked at again yet
    revision = tenant(owner)["revision"]

    # Refusals at once: another host, a bad one, another user's tenant.
    assert owner.call("POST", "/api/tenants/dom-a/domains/verify",
                      json={"domain": "no.example"}).status_code == 404  # fmt: skip
    bad = owner.call("POST", "/api/tenants/dom-a/domains/verify", json={"domain": "*.x.example"})
    assert bad.status_code == 422 and bad.get_json()["fields"][0]["field"] == "domain"
    other = sign_up(client, "other@dom.example.com")
    assert other.call("POST", "/api/tenants/dom-a/domains/verify",
                      json={"domain": SHOP}).status_code == 404  # fmt: skip

    # The record published, a verification asked for: 202 with the tenant, no job.
    zone.set(record["txt_name"], "TXT", record["txt_value"])
    asked = owner.call("POST", "/api/tenants/dom-a/domains/verify", json={"domain": SHOP})
    assert asked.status_code == 202, asked.get_json()
    body = asked.get_json()
    assert "job" not in body and body["tenant"]["id"] == "dom-a"
    assert asked.headers["Location"] == "/api/tenants/dom-a"
    obj = json.loads(kube.kubectl("-n", NAMESPACE, "get", "odootenant", "dom-a", "-o", "json"))
    assert obj["metadata"]["annotations"][RECONCILE_REQUESTED_AT]

    def verified() -> dict[str, Any] | None:
        (d,) = domains(owner)
        return d if d["state"] == "verified" else None

    done = wait_for(verified, SETTLE, "the domain to be verified", operator)
    assert done["next_check_at"] is None and "routed" in done["message"]
    ingress = json.loads(kube.kubectl("-n", "tenant-dom-a", "get", "ingress", "-o", "json"))
    assert SHOP in {r["host"] for i in ingress["items"] for r in i["spec"]["rules"]}
    after = wait_for(lambda: (t := tenant(owner))["revision"] > revision and t, SETTLE,
                     "the upgrade that routes it", operator)  # fmt: skip
    assert after["ready"] == "True"

    # The per-user limit (3 per window here): the fourth answer is 429.
    for _ in range(2):
        owner.call("POST", "/api/tenants/dom-a/domains/verify", json={"domain": SHOP})
    limited = owner.call("POST", "/api/tenants/dom-a/domains/verify", json={"domain": SHOP})
    assert limited.status_code == 429 and limited.headers["Retry-After"]

    gone = owner.call("DELETE", "/api/tenants/dom-a?final_backup=false")
    assert gone.status_code == 202, gone.get_json()
    deadline = time.monotonic() + SETTLE
    while owner.call("GET", "/api/tenants/dom-a").status_code != 404:
        assert time.monotonic() < deadline, "dom-a not deleted"
        time.sleep(1)


def test_fleet_ensure_asks_each_odootenant_and_fleet_upgrade_points_to_the_cli(
    app: Flask, kube: Cluster, operator: OperatorProcess
) -> None:
    """#23 point 4: the fleet endpoints without a job (same module: its operator)."""
    client = app.test_client()
    admin, user = sign_up(client, "admin@fleet.example.com"), sign_up(client, "u@fleet.example")
    app.extensions["saasodoo"].settings.admins.append(admin.user_id)
    res = user.call("POST", "/api/tenants", json={"id": "fleet-b", "admin_email": "a@b.example"})
    assert res.status_code == 202, res.get_json()
    wait_for(lambda: user.call("GET", "/api/tenants/fleet-b").get_json()["status"] == "Current",
             SETTLE, "fleet-b Ready", operator)  # fmt: skip

    assert user.call("POST", "/api/admin/fleet/ensure", json={}).status_code == 403
    asked = admin.call("POST", "/api/admin/fleet/ensure", json={"force": False})
    assert asked.status_code == 202, asked.get_json()
    body = asked.get_json()
    assert body["tenants"] == ["fleet-b"] and "job" not in body
    assert asked.headers["Location"] == "/api/admin/fleet"

    def handled() -> bool:
        obj = json.loads(kube.kubectl("-n", NAMESPACE, "get", "odootenant", "fleet-b",
                                      "-o", "json"))  # fmt: skip
        return bool((obj.get("status") or {}).get("lastHandledReconcileAt") == body["requested_at"])

    wait_for(handled, SETTLE, "the reconcile request to be handled", operator)
    fleet = admin.call("GET", "/api/admin/fleet").get_json()
    assert (fleet["total"], fleet["statuses"]) == (1, {"Current": 1}), fleet
    none = admin.call("POST", "/api/admin/fleet/ensure", json={"selector": "tier=gold"})
    assert none.status_code == 202 and none.get_json()["tenants"] == []
    bad = admin.call("POST", "/api/admin/fleet/ensure", json={"selector": "a b c"})
    assert bad.status_code == 422 and bad.get_json()["fields"][0]["field"] == "selector"

    upgrade = admin.call("POST", "/api/admin/fleet/upgrade", json={"odoo_version": "18.0"})
    assert upgrade.status_code == 409 and "saasodoo fleet upgrade" in upgrade.get_json()["message"]
    assert admin.call("GET", "/api/admin/distribution").status_code == 501
    assert user.call("GET", "/api/tenants/fleet-b/usage").status_code == 501
    assert user.call("DELETE", "/api/tenants/fleet-b?final_backup=false").status_code == 202
