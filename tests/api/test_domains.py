"""Custom domains through the API on the simulated cluster (helm 4), with the operator (its
own ``saasodoo operator run`` process and system namespace): 422 at once for a platform
name, a refusal by the operator for another customer's proven host (never naming it),
racing creates, and the DNS proof (a real DNS server on 127.0.0.1) looked for by the
operator before a domain is routed, with a per-user limit on asking. Users sign up in the
real GoTrue.

The API checks what it can without the cluster (the rules: 422 naming the field) and writes
the OdooTenant; whether another tenant proved a host is the operator's to find (its claims
are in the cluster): the change is refused there, ``Ready`` False with the reason. A
verification is a reconcile asked of the OdooTenant; ``GET .../domains`` shows each
domain's state and the operator's last check."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask

from saasodoo.app import create_app
from saasodoo.core.crd import RECONCILE_REQUESTED_AT
from saasodoo.errors import NotFound
from saasodoo.settings import Settings
from scripts.gotrue import GoTrue
from tests.api.conftest import Api, csrf_token, services_of, sign_up, supabase_settings
from tests.dns_server import Zone, dns_server
from tests.operator_process import OperatorProcess, delete_tenants, running_operator, wait_for
from tests.support import Cluster

pytestmark = pytest.mark.cluster

BASE = "odoo.localhost"
NAMESPACE = "saasodoo-api-domains"
#: Seconds the operator may take to settle a tenant or check a domain.
SETTLE = 180
#: The Ready reasons of a change the operator refused.
REFUSED = ("InstallFailed", "UpgradeFailed", "InvalidSpec", "RetriesExceeded")


@pytest.fixture(scope="module")
def zone() -> Iterator[Zone]:
    with dns_server() as z:
        yield z


@pytest.fixture(scope="module")
def operator(
    kube: Cluster, zone: Zone, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[OperatorProcess]:
    """The operator of this module: the DNS look-ups are its (bounded: 3 s a try)."""
    logs: Path = tmp_path_factory.mktemp("api-domains")
    with running_operator(kube, logs, "api-domains", system_namespace=NAMESPACE,
                          base_domain=BASE, dns_nameserver="127.0.0.1",
                          dns_port=str(zone.port), dns_timeout="3",
                          operator_workers="2") as op:  # fmt: skip
        wait_for(lambda: "leads" in op.output(), 60, "the operator to lead", op)
        yield op
        delete_tenants(kube, NAMESPACE)
    kube.kubectl("delete", "namespace", NAMESPACE, "--timeout=120s")


def _settings(kube: Cluster) -> Settings:
    return Settings(kubeconfig=kube.kubeconfig, helm_binary=str(kube.tools.helm(4)),
                    base_domain=BASE, system_namespace=NAMESPACE)  # fmt: skip


@pytest.fixture(scope="module")
def app(kube: Cluster, gotrue: GoTrue, operator: OperatorProcess) -> Flask:
    return create_app(supabase_settings(gotrue), _settings(kube))


@pytest.fixture
def created(app: Flask) -> Iterator[list[str]]:
    ids: list[str] = []
    yield ids
    svc = services_of(app)
    for tid in ids:
        try:
            # Not waiting for the operator (~10 s a tenant): the ids are never reused.
            svc.objects.delete(tid, final_backup=False)
        except NotFound:
            pass


def _create(user: Api, tid: str, *domains: str) -> Any:
    body = {"id": tid, "admin_email": f"a@{tid}.example", "custom_domains": list(domains)}
    return user.call("POST", "/api/tenants", json=body)


def _domains(user: Api, tid: str) -> list[dict[str, Any]]:
    res = user.call("GET", f"/api/tenants/{tid}/domains")
    assert res.status_code == 200, res.get_json()
    found: list[dict[str, Any]] = res.get_json()["domains"]
    return found


def _checked(user: Api, tid: str, op: OperatorProcess, state: str | None = None) -> dict[str, Any]:
    """The tenant's only domain once the operator checked it (and it is in ``state``)."""

    def seen() -> dict[str, Any] | None:
        (d,) = _domains(user, tid)
        return d if d["checked_at"] and (state is None or d["state"] == state) else None

    found: dict[str, Any] = wait_for(seen, SETTLE, f"the operator to check {tid}'s domain", op)
    return found


def _handled(app: Flask, user: Api, tid: str, op: OperatorProcess) -> dict[str, Any]:
    """The tenant's only domain once the operator handled the reconcile the last
    verification asked for (its token, the annotation, echoed in the status)."""
    objects = services_of(app).objects

    def handled() -> bool:
        obj = objects.read(tid)
        token = (obj["metadata"].get("annotations") or {}).get(RECONCILE_REQUESTED_AT)
        return bool(token) and (obj.get("status") or {}).get("lastHandledReconcileAt") == token

    wait_for(handled, SETTLE, f"the operator to handle {tid}'s verification", op)
    (d,) = _domains(user, tid)
    return d


def _refused(user: Api, response: Any, op: OperatorProcess) -> dict[str, Any]:
    """The tenant of a 202 once the operator refused that generation (``Ready`` False with
    a failure's reason)."""
    assert response.status_code == 202, response.get_json()
    url, asked = response.headers["Location"], response.get_json()["tenant"]

    def refused() -> dict[str, Any] | None:
        seen: dict[str, Any] = user.call("GET", url).get_json()
        done = seen["observed_generation"] == asked["generation"] and seen["ready"] == "False"
        return seen if done and seen["reason"] in REFUSED else None

    found: dict[str, Any] = wait_for(refused, SETTLE, f"the operator to refuse {url}", op)
    return found


def test_takeover_refused_and_domain_verified(
    app: Flask, zone: Zone, created: list[str], operator: OperatorProcess
) -> None:
    client = app.test_client()
    suffix = uuid.uuid4().hex[:6]
    alice = sign_up(client, f"alice-{suffix}@example.com")
    bob = sign_up(client, f"bob-{suffix}@example.com")
    a, b = f"doma{suffix}", f"domb{suffix}"
    shop = f"shop-{uuid.uuid4().hex[:8]}.example"  # names nothing of Alice's
    created += [a, b]
    assert alice.wait_tenant(_create(alice, a, shop))["ready"] == "True"
    assert bob.wait_tenant(_create(bob, b))["ready"] == "True"

    # Alice's domain is pending until the record exists.
    domain = _checked(alice, a, operator, state="pending")
    assert domain["host"] == shop
    record = domain["record"]
    assert record["txt_name"] == f"_saasodoo-challenge.{shop}"
    assert record["cname_target"].endswith(f".{a}.{BASE}")  # the tenant's own target
    # Asked before the record exists: 202 with the tenant; the operator's check says what
    # is missing.
    res = alice.call("POST", f"/api/tenants/{a}/domains/verify", json={"domain": shop})
    assert res.status_code == 202, res.get_json()
    assert res.get_json()["tenant"]["id"] == a and res.headers["Location"] == f"/api/tenants/{a}"
    checked = _handled(app, alice, a, operator)
    assert checked["state"] == "pending" and "not verified yet" in checked["message"], checked
    assert record["txt_value"] in checked["message"]
    res = alice.call("POST", f"/api/tenants/{a}/domains/verify", json={"domain": "no.example"})
    assert res.status_code == 404
    res = alice.call("POST", f"/api/tenants/{a}/domains/verify", json={"domain": "*.x.example"})
    assert res.status_code == 422 and res.get_json()["fields"][0]["field"] == "domain"

    # The web UI's tenant page shows the pending domain and the record to create; its
    # Verify button asks the operator, whose check the page then shows.
    web = app.test_client()
    token = csrf_token(web.get("/login").get_data(as_text=True))
    res = web.post(
        "/login",
        data={
            "email": f"alice-{suffix}@example.com",
            "password": "correct-horse-1",
            "csrf_token": token,
        },
    )
    assert res.status_code == 302, res.get_data(as_text=True)
    page = web.get(f"/tenants/{a}").get_data(as_text=True)
    assert f'data-domain="{shop}"' in page and record["txt_name"] in page
    assert record["txt_value"] in page and "pending" in page
    res = web.post(
        f"/tenants/{a}/verify-domain",
        data={"domain": shop, "csrf_token": csrf_token(page)},
        follow_redirects=True,
    )
    assert res.status_code == 200
    assert "not verified yet" in _handled(app, alice, a, operator)["message"]
    assert "not verified yet" in web.get(f"/tenants/{a}").get_data(as_text=True)

    zone.set(record["txt_name"], "TXT", record["txt_value"])
    res = alice.call("POST", f"/api/tenants/{a}/domains/verify", json={"domain": shop})
    assert res.status_code == 202, res.get_json()
    done = _checked(alice, a, operator, state="verified")
    assert "routed" in done["message"], done
    ingress = services_of(app).tenants.ctx.kube.get_json(
        f"/apis/networking.k8s.io/v1/namespaces/tenant-{a}/ingresses"
    )["items"][0]
    assert shop in {r["host"] for r in ingress["spec"]["rules"]}

    # Bob tries every form of the takeover of Alice's proven domain, on create and update:
    # a platform name is refused by the API at once (422 naming the field); Alice's host
    # (the API cannot see the claims) by the operator, naming the field, never Alice.
    forms = [
        (f"{a}.{BASE}", "api"),  # A's subdomain
        (f"API.{BASE}.", "api"),  # the API's host
        (BASE, "api"),  # the base domain
        (f"*.{BASE}", "api"),  # a wildcard
        (shop, "operator"),  # A's custom domain
        (shop.upper() + ".", "operator"),  # the same, spelled otherwise
    ]
    for n, (host, refused_by) in enumerate(forms):
        c = f"domc{n}{suffix}"
        for tid, field in [(c, "custom_domains[1]"), (b, "custom_domains[0]")]:
            if tid == c:
                res = _create(bob, c, "fine.example", host)
            else:
                res = bob.call("PATCH", f"/api/tenants/{b}", json={"custom_domains": [host]})
            body = res.get_json()
            if refused_by == "api":
                assert res.status_code == 422, (host, body)
                assert [f["field"] for f in body["fields"]] == [field], body
                continue
            if tid == c:
                created.append(c)
            refused = _refused(bob, res, operator)
            message = refused["message"]
            assert field in message and "belongs to another tenant" in message, refused
            assert a not in message
            if tid == b:  # Bob takes his change back: his tenant is Ready again
                back = bob.call("PATCH", f"/api/tenants/{b}", json={"custom_domains": []})
                assert bob.wait_tenant(back)["ready"] == "True"
        assert bob.call("GET", f"/api/tenants/{c}").status_code == (
            404 if refused_by == "api" else 200
        )
    assert bob.call("GET", f"/api/tenants/{b}").get_json()["custom_domains"] == []
    ingress = services_of(app).tenants.ctx.kube.get_json(
        f"/apis/networking.k8s.io/v1/namespaces/tenant-{a}/ingresses"
    )["items"][0]
    assert shop in {r["host"] for r in ingress["spec"]["rules"]}  # still Alice's
    assert bob.call("GET", f"/api/tenants/{a}/domains").status_code == 404
    res = bob.call("POST", f"/api/tenants/{a}/domains/verify", json={"domain": shop})
    assert res.status_code == 404


def test_racing_creates_for_one_host(
    app: Flask, created: list[str], operator: OperatorProcess
) -> None:
    """Two customers create tenants with the same new host at once: both tenants are
    created, exactly one claims the host (pending), the other sees it contested (claimed
    without proof: its own DNS proof would win it); neither routes it."""
    client = app.test_client()
    suffix = uuid.uuid4().hex[:6]
    users = [sign_up(client, f"racer{i}-{suffix}@example.com") for i in range(2)]
    ids = [f"domrace{i}{suffix}" for i in range(2)]
    created += ids
    host = f"contested-{suffix}.example"
    start = threading.Barrier(2)
    settled: dict[str, dict[str, Any]] = {}

    def create(user: Api, tid: str) -> None:
        start.wait()
        res = _create(user, tid, host)
        settled[tid] = user.wait_tenant(res) if res.status_code == 202 else res.get_json()

    threads = [threading.Thread(target=create, args=pair) for pair in zip(users, ids, strict=True)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(300)
    assert sorted(s.get("ready", "refused") for s in settled.values()) == ["True"] * 2, settled
    states = sorted(
        _checked(user, tid, operator)["state"] for user, tid in zip(users, ids, strict=True)
    )
    assert states == ["contested", "pending"]


def test_verification_runs_off_the_request_path_and_is_limited(
    kube: Cluster, zone: Zone, gotrue: GoTrue, app: Flask, created: list[str],
    operator: OperatorProcess,
) -> None:  # fmt: skip
    """Issue 22, point 6 (c): ``POST .../domains/verify`` ran the DNS look-ups (and cluster
    writes) in the request thread, so a slow nameserver held a thread for seconds, without
    limit. Now the request only asks the operator for a reconcile (202 at once: the
    operator looks, bounded by its DNS timeout) and each user may ask
    ``domain_verify_limit`` verifications per window; more answer 429 with Retry-After."""
    limited = create_app(
        supabase_settings(gotrue, domain_verify_limit=2, domain_verify_window=600),
        _settings(kube),
    )
    client = limited.test_client()
    suffix = uuid.uuid4().hex[:6]
    user = sign_up(client, f"slow-{suffix}@example.com")
    tid, host = f"domslow{suffix}", f"slow-{suffix}.example"
    created.append(tid)
    try:
        assert user.wait_tenant(_create(user, tid, host))["ready"] == "True"
        _checked(user, tid, operator)
        zone.delay = 2.5  # each look-up (TXT, CNAME) waits 2.5 s
        started = time.monotonic()
        res = user.call("POST", f"/api/tenants/{tid}/domains/verify", json={"domain": host})
        elapsed = time.monotonic() - started
        assert res.status_code == 202, res.get_json()
        # Answered before a single look-up could (the request still reads the OdooTenant and
        # confirms the session with GoTrue; on main it waited for both look-ups, 5 s).
        assert elapsed < zone.delay, f"the request waited {elapsed:.1f}s for the nameserver"
        # The operator waited instead, and says what it found: no proof (or DNS timed out).
        slow = _handled(app, user, tid, operator)
        assert slow["state"] == "pending" and slow["next_check_at"], slow
        assert "not verified yet" in slow["message"] or "DNS" in slow["message"], slow
        zone.delay = 0
        again = user.call("POST", f"/api/tenants/{tid}/domains/verify", json={"domain": host})
        assert again.status_code == 202, again.get_json()
        refused = user.call("POST", f"/api/tenants/{tid}/domains/verify", json={"domain": host})
        assert refused.status_code == 429, refused.get_json()
        assert 1 <= int(refused.headers["Retry-After"]) <= 600
        assert "at most 2" in refused.get_json()["message"]
        # Another user is not limited by this one.
        other = sign_up(client, f"other-{suffix}@example.com")
        res = other.call("POST", f"/api/tenants/{tid}/domains/verify", json={"domain": host})
        assert res.status_code == 404  # not theirs, but not 429
    finally:
        zone.delay = 0
