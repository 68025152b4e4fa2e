"""Ingress: <subdomain>.<baseDomain> on IngressClass traefik, /websocket to 8072, TLS from a
Secret, the controller's default certificate or cert-manager, and custom domains."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.chart.helpers import CHART, find, one, render, render_error

pytestmark = pytest.mark.chart


def paths(rule: dict[str, Any]) -> dict[str, tuple[str, str]]:
    return {
        p["path"]: (p["backend"]["service"]["name"], p["backend"]["service"]["port"]["name"])
        for p in rule["http"]["paths"]
    }


def test_default_host_class_and_websocket_routing(default_docs: list[dict[str, Any]]) -> None:
    ingress = one(default_docs, "Ingress", "acme-odoo-tenant")
    assert ingress["spec"]["ingressClassName"] == "traefik"
    [rule] = ingress["spec"]["rules"]
    assert rule["host"] == "acme.example.com"
    assert paths(rule) == {
        "/websocket": ("acme-odoo-tenant", "websocket"),
        "/": ("acme-odoo-tenant", "http"),
    }
    assert all(p["pathType"] == "Prefix" for p in rule["http"]["paths"])
    # TLS with the controller's default certificate (e.g. Traefik's wildcard).
    assert ingress["spec"]["tls"] == [{"hosts": ["acme.example.com"]}]


def test_no_websocket_route_without_workers(helm3: Path) -> None:
    docs = render(helm3, "--set", "odoo.config.workers=0")
    [rule] = one(docs, "Ingress")["spec"]["rules"]
    assert paths(rule) == {"/": ("acme-odoo-tenant", "http")}


def test_tenant_id_subdomain_base_domain_class_and_annotations(helm3: Path) -> None:
    docs = render(
        helm3,
        "--set", "tenant.id=t-42",
        "--set", "ingress.baseDomain=erp.example.net",
        "--set", "ingress.className=traefik-internal",
        "--set", "ingress.annotations.traefik\\.ingress\\.kubernetes\\.io/router\\.middlewares=x",
    )  # fmt: skip
    ingress = one(docs, "Ingress")
    assert ingress["spec"]["rules"][0]["host"] == "t-42.erp.example.net"
    assert ingress["spec"]["ingressClassName"] == "traefik-internal"
    assert ingress["metadata"]["annotations"] == {
        "traefik.ingress.kubernetes.io/router.middlewares": "x"
    }
    docs = render(helm3, "--set", "tenant.id=t-42", "--set", "ingress.subdomain=shop")
    assert one(docs, "Ingress")["spec"]["rules"][0]["host"] == "shop.example.com"


def test_tls_from_an_existing_secret(helm3: Path) -> None:
    docs = render(helm3, "--set", "ingress.tls.secretName=wildcard-example-com")
    assert one(docs, "Ingress")["spec"]["tls"] == [
        {"hosts": ["acme.example.com"], "secretName": "wildcard-example-com"}
    ]


def test_cert_manager_and_custom_domains(helm3: Path) -> None:
    docs = render(helm3, "--values", str(CHART / "ci" / "tls-custom-domains-values.yaml"))
    ingress = one(docs, "Ingress")
    annotations = ingress["metadata"]["annotations"]
    assert annotations["cert-manager.io/cluster-issuer"] == "letsencrypt-prod"
    assert annotations["traefik.ingress.kubernetes.io/router.entrypoints"] == "websecure"
    hosts = ["acme.saas.example.org", "erp.acme.example", "www.acme.example"]
    assert [r["host"] for r in ingress["spec"]["rules"]] == hosts
    for rule in ingress["spec"]["rules"]:
        assert set(paths(rule)) == {"/websocket", "/"}
    assert ingress["spec"]["tls"] == [
        {"hosts": ["acme.saas.example.org"], "secretName": "acme-odoo-tenant-tls"},
        {"hosts": ["erp.acme.example"], "secretName": "erp.acme.example-tls"},
        {"hosts": ["www.acme.example"], "secretName": "www.acme.example-tls"},
    ]


def test_namespaced_issuer(helm3: Path) -> None:
    docs = render(
        helm3,
        "--set", "ingress.tls.certManager.issuerName=tenant-issuer",
        "--set", "ingress.tls.certManager.issuerKind=Issuer",
    )  # fmt: skip
    annotations = one(docs, "Ingress")["metadata"]["annotations"]
    assert annotations == {"cert-manager.io/issuer": "tenant-issuer"}


def test_plain_http_without_tls(helm3: Path) -> None:
    docs = render(helm3, "--set", "ingress.tls.enabled=false")
    assert "tls" not in one(docs, "Ingress")["spec"]


def test_ingress_can_be_disabled(helm3: Path) -> None:
    assert not find(render(helm3, "--set", "ingress.enabled=false"), "Ingress")


def test_a_custom_domain_cannot_repeat_the_main_host(helm3: Path) -> None:
    error = render_error(helm3, "--set", "ingress.customDomains={acme.example.com}")
    assert "ingress.customDomains" in error and "repeats a host" in error


@pytest.mark.parametrize("host", ["example.com", "api.example.com", "other.example.com"])
def test_a_custom_domain_is_never_a_platform_name(helm3: Path, host: str) -> None:
    error = render_error(helm3, "--set", f"ingress.customDomains={{{host}}}")
    assert "ingress.customDomains" in error and "never a custom domain" in error


def test_host_names_are_validated(helm3: Path) -> None:
    error = render_error(helm3, "--set", "ingress.customDomains={Not_A_Host}")
    assert "/ingress/customDomains/0" in error
