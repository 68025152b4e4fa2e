"""Custom domains through the API on the simulated cluster (helm 4): 422 for a platform name,
409 for another customer's proven host (never naming it), racing creates, and the DNS proof
(a real DNS server on 127.0.0.1) checked by a job before a domain is routed, with a per-user
limit. Users sign up in the real GoTrue."""

from __future__ import annotations

import asyncio
import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from flask import Flask

from saasodoo.app import create_app
from saasodoo.errors import NotFound
from saasodoo.settings import Settings
from scripts.gotrue import GoTrue
from tests.api.conftest import Api, services_of, sign_up, supabase_settings
from tests.dns_server import Zone, dns_server
from tests.support import Cluster

pytestmark = pytest.mark.cluster

BASE = "odoo.localhost"


@pytest.fixture(scope="module")
def zone() -> Iterator[Zone]:
    with dns_server() as z:
        yield z


@pytest.fixture(scope="module")
def app(kube: Cluster, zone: Zone, gotrue: GoTrue) -> Iterator[Flask]:
    settings = Settings(
        kubeconfig=kube.kubeconfig,
        helm_binary=str(kube.tools.helm(4)),
        base_domain=BASE,
        dns_nameserver="127.0.0.1",
        dns_port=zone.port,
        dns_timeout=3,
    )
    flask_app = create_app(supabase_settings(gotrue), settings)
    yield flask_app
    svc = services_of(flask_app)
    svc.jobs.wait_idle(300)
    svc.jobs.shutdown()


@pytest.fixture
def created(app: Flask) -> Iterator[list[str]]:
    ids: list[str] = []
    yield ids
    svc = services_of(app)
    svc.jobs.wait_idle(300)
    for tid in ids:
        try:
            # Not waiting for the namespace (~10 s a tenant): the ids are never reused.
            asyncio.run(svc.tenants.delete(tid, final_backup=False, wait=False))
        except NotFound:
            pass


def _csrf(page: str) -> str:
    return page.split('name="csrf_token" value="')[1].split('"')[0]


def _create(user: Api, tid: str, *domains: str) -> Any:
    body = {"id": tid, "admin_email": f"a@{tid}.example", "custom_domains": list(domains)}
    return user.call("POST", "/api/tenants", json=body)


def test_takeover_refused_and_domain_verified(app: Flask, zone: Zone, created: list[str]) -> None:
    client = app.test_client()
    suffix = uuid.uuid4().hex[:6]
    alice = sign_up(client, f"alice-{suffix}@example.com")
    bob = sign_up(client, f"bob-{suffix}@example.com")
    a, b = f"doma{suffix}", f"domb{suffix}"
    shop = f"shop-{uuid.uuid4().hex[:8]}.example"  # names nothing of Alice's
    created += [a, b]
    assert alice.wait_job(_create(alice, a, shop))["state"] == "succeeded"
    assert bob.wait_job(_create(bob, b))["state"] == "succeeded"

    # Alice's domain is pending until the record exists.
    listed = alice.call("GET", f"/api/tenants/{a}/domains").get_json()
    (domain,) = listed["domains"]
    assert domain["host"] == shop and domain["state"] == "pending"
    record = domain["record"]
    assert record["txt_name"] == f"_saasodoo-challenge.{shop}"
    assert record["cname_target"].endswith(f".{a}.{BASE}")  # the tenant's own target
    job = alice.wait_job(
        alice.call("POST", f"/api/tenants/{a}/domains/verify", json={"domain": shop})
    )
    assert job["state"] == "failed" and job["error"]["status_code"] == 409, job
    assert record["txt_value"] in job["error"]["message"]
    res = alice.call("POST", f"/api/tenants/{a}/domains/verify", json={"domain": "no.example"})
    assert res.status_code == 404
    res = alice.call("POST", f"/api/tenants/{a}/domains/verify", json={"domain": "*.x.example"})
    assert res.status_code == 422 and res.get_json()["fields"][0]["field"] == "domain"

    # The web UI's tenant page shows the pending domain and the record to create; its
    # Verify button says what is missing.
    web = app.test_client()
    token = _csrf(web.get("/login").get_data(as_text=True))
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
        data={"domain": shop, "csrf_token": _csrf(page)},
        follow_redirects=True,
    )
    assert res.status_code == 200
    assert services_of(app).jobs.wait_idle(60)
    assert "not verified yet" in web.get(f"/tenants/{a}").get_data(as_text=True)

    zone.set(record["txt_name"], "TXT", record["txt_value"])
    job = alice.wait_job(
        alice.call("POST", f"/api/tenants/{a}/domains/verify", json={"domain": shop})
    )
    assert job["state"] == "succeeded", job
    listed = alice.call("GET", f"/api/tenants/{a}/domains").get_json()
    assert [d["state"] for d in listed["domains"]] == ["verified"]
    ingress = services_of(app).tenants.ctx.kube.get_json(
        f"/apis/networking.k8s.io/v1/namespaces/tenant-{a}/ingresses"
    )["items"][0]
    assert shop in {r["host"] for r in ingress["spec"]["rules"]}

    # Bob tries every form of the takeover of Alice's proven domain, on create and update.
    for host, status in [
        (f"{a}.{BASE}", 422),  # A's subdomain
        (f"API.{BASE}.", 422),  # the API's host
        (BASE, 422),  # the base domain
        (f"*.{BASE}", 422),  # a wildcard
        (shop, 409),  # A's custom domain
        (shop.upper() + ".", 409),  # the same, spelled otherwise
    ]:
        attempts = [
            (_create(bob, f"domc{suffix}", "fine.example", host), "custom_domains[1]"),
            (
                bob.call("PATCH", f"/api/tenants/{b}", json={"custom_domains": [host]}),
                "custom_domains[0]",
            ),
        ]
        for res, field in attempts:
            body = res.get_json()
            assert res.status_code == status, (host, body)
            if status == 422:
                assert [f["field"] for f in body["fields"]] == [field], body
            else:
                assert field in body["message"] and "belongs to another tenant" in body["message"]
                assert a not in body["message"]
    assert bob.call("GET", f"/api/tenants/domc{suffix}").status_code == 404
    assert bob.call("GET", f"/api/tenants/{b}").get_json()["custom_domains"] == []
    assert bob.call("GET", f"/api/tenants/{a}/domains").status_code == 404
    res = bob.call("POST", f"/api/tenants/{a}/domains/verify", json={"domain": shop})
    assert res.status_code == 404


def test_racing_creates_for_one_host(app: Flask, created: list[str]) -> None:
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
    jobs: dict[str, dict[str, Any]] = {}

    def create(user: Api, tid: str) -> None:
        start.wait()
        res = _create(user, tid, host)
        jobs[tid] = user.wait_job(res) if res.status_code == 202 else res.get_json()

    threads = [threading.Thread(target=create, args=pair) for pair in zip(users, ids, strict=True)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(300)
    assert sorted(j.get("state", "refused") for j in jobs.values()) == ["succeeded"] * 2, jobs
    states = sorted(
        user.call("GET", f"/api/tenants/{tid}/domains").get_json()["domains"][0]["state"]
        for user, tid in zip(users, ids, strict=True)
    )
    assert states == ["contested", "pending"]


def test_verification_runs_off_the_request_path_and_is_limited(
    kube: Cluster, zone: Zone, gotrue: GoTrue, app: Flask, created: list[str]
) -> None:
    """Issue 22, point 6 (c): ``POST .../domains/verify`` ran the DNS look-ups (and cluster
    writes) in the request thread, so a slow nameserver held a thread for seconds, without
    limit. Now the request only queues a job (202 at once) and each user may start
    ``domain_verify_limit`` verifications per window; more answer 429 with Retry-After."""
    settings = services_of(app).tenants.ctx.settings
    limited = create_app(
        supabase_settings(gotrue, domain_verify_limit=2, domain_verify_window=600), settings
    )
    client = limited.test_client()
    suffix = uuid.uuid4().hex[:6]
    user = sign_up(client, f"slow-{suffix}@example.com")
    tid, host = f"domslow{suffix}", f"slow-{suffix}.example"
    created.append(tid)
    try:
        assert user.wait_job(_create(user, tid, host))["state"] == "succeeded"
        zone.delay = 2.5  # each look-up (TXT, CNAME) waits 2.5 s
        started = time.monotonic()
        res = user.call("POST", f"/api/tenants/{tid}/domains/verify", json={"domain": host})
        elapsed = time.monotonic() - started
        assert res.status_code == 202, res.get_json()
        # Answered before a single look-up could (the request still reads the cluster and
        # confirms the session with GoTrue; on main it waited for both look-ups, 5 s).
        assert elapsed < zone.delay, f"the request waited {elapsed:.1f}s for the nameserver"
        job = user.wait_job(res)  # the job waited instead: 503 (a try timed out) or 409
        assert job["state"] == "failed" and job["error"]["status_code"] in (409, 503), job
        zone.delay = 0
        assert (
            user.wait_job(
                user.call("POST", f"/api/tenants/{tid}/domains/verify", json={"domain": host})
            )["state"]
            == "failed"
        )
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
        svc = services_of(limited)
        svc.jobs.wait_idle(120)
        svc.jobs.shutdown()
