"""Issue 22, point 16: the address of a tenant carries the ingress's scheme and port.

The demo's Traefik listens on 8443; the CLI, the API and the web UI showed
``https://<id>.odoo.localhost``, a link that leads nowhere. One setting,
``SAASODOO_PUBLIC_URL``, gives the public URL of the ingress (scheme, host, port) and every
address shown comes from it (``Tenants.url_for``, the ``url`` of ``Tenant.to_dict``)."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from saasodoo.context import Context
from saasodoo.settings import Settings
from saasodoo.tenants import Tenants

pytestmark = pytest.mark.unit


def test_the_address_carries_the_ingress_port(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SAASODOO_PUBLIC_URL", "https://{host}:8443")
    settings = Settings(base_domain="odoo.localhost")
    assert Tenants(Context(settings)).url_for("demo") == "https://demo.odoo.localhost:8443"
    assert settings.tenant_url("erp.acme.example") == "https://erp.acme.example:8443"


def test_default_is_https_on_its_own_port() -> None:
    settings = Settings(base_domain="odoo.example.com")
    assert Tenants(Context(settings)).url_for("acme") == "https://acme.odoo.example.com"
    plain = Settings(base_domain="odoo.localhost", public_url="http://{host}:8080")
    assert Tenants(Context(plain)).url_for("acme") == "http://acme.odoo.localhost:8080"


@pytest.mark.parametrize(
    "bad",
    [
        "https://odoo.example.com",  # no {host}
        "ftp://{host}",
        "https://{host}:99999",
        "https://{host}/web",  # a path: the address is the host's root
        "https://x.{host}",
        "{host}:8443",
    ],
)
def test_bad_public_urls_are_refused_naming_the_rule(bad: str) -> None:
    with pytest.raises(ValidationError) as exc:
        Settings(public_url=bad)
    assert "public_url" in str(exc.value)
