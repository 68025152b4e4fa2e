"""The host takeover of issue 18, point 1, as helpers any layer's tests can call.

Customer B tried to route a host of A's (A's subdomain, A's custom domain) or of the
platform (the base domain, ``api.<base>``) to B's tenant through ``custom_domains``.
``takeover_hosts`` gives every form; ``attempt_takeover`` tries one through saasodoo's
library, on create and on update, and returns the two refusals. The cluster tests check
that nothing was created or changed; the real-node test (Traefik in front) can call the
same two functions, then send requests for each host through Traefik and check that B's
Odoo never answers them.
"""

from __future__ import annotations

import asyncio

from kubernetes import client

from saasodoo.core.spec import TenantSpec
from saasodoo.errors import SaasodooError
from saasodoo.tenants import Tenants
from tests.support import Cluster

#: The forms, in the order of the issue (plus spellings and a wildcard).
TAKEOVER_FORMS = (
    "subdomain",
    "custom-domain",
    "custom-domain-respelled",
    "base-domain",
    "api",
    "wildcard",
)


def takeover_hosts(victim_id: str, victim_domain: str, base: str) -> dict[str, str]:
    """Each form of the takeover against a victim tenant with a custom domain."""
    return {
        "subdomain": f"{victim_id}.{base}",
        "custom-domain": victim_domain,
        "custom-domain-respelled": victim_domain.upper() + ".",
        "base-domain": base,
        "api": f"api.{base}",
        "wildcard": f"*.{base}",
    }


def attempt_takeover(
    tenants: Tenants, attacker: str, new_tenant: str, host: str
) -> tuple[SaasodooError | None, SaasodooError | None]:
    """Try ``host`` as a custom domain of a new tenant ``new_tenant`` and of the existing
    ``attacker``; returns what each attempt raised (None: it was accepted)."""
    results: list[SaasodooError | None] = []

    async def create() -> object:
        spec = TenantSpec.parse(
            {
                "id": new_tenant,
                "admin_email": f"admin@{new_tenant}.example",
                "custom_domains": ["ok.takeover.example", host],
            }
        )
        return await tenants.create(spec, wait=False)

    async def update() -> object:
        return await tenants.update(attacker, custom_domains=[host], wait=False)

    for attempt in (create, update):
        try:
            asyncio.run(attempt())
            results.append(None)
        except SaasodooError as exc:
            results.append(exc)
    return results[0], results[1]


def routed_hosts(kube: Cluster) -> dict[str, set[str]]:
    """Every host in an Ingress rule or TLS entry, by namespace."""
    out: dict[str, set[str]] = {}
    for ing in client.NetworkingV1Api(kube.api).list_ingress_for_all_namespaces().items:
        hosts = out.setdefault(ing.metadata.namespace, set())
        hosts.update(r.host for r in ing.spec.rules or [] if r.host)
        for tls in ing.spec.tls or []:
            hosts.update(tls.hosts or [])
    return out


def owners_of(kube: Cluster, host: str) -> list[str]:
    """The namespaces whose Ingress routes ``host`` (at most one, always)."""
    return [ns for ns, hosts in routed_hosts(kube).items() if host.lower().rstrip(".") in hosts]
