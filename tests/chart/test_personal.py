"""The create request's personalization (issue #25 point 3) reaches the web pod's odoo-init
as environment (ODOO_ADMIN_LOGIN, ODOO_COMPANY_NAME, ODOO_COUNTRY, ODOO_TIMEZONE), only when
set: a tenant created without it renders the same pods as before; the schema refuses values
Odoo would not take."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from saasodoo.core.spec import TenantSpec
from saasodoo.core.values import personal_values
from tests.chart.helpers import container, one, pod_template, render, render_error

pytestmark = pytest.mark.chart

WEB = "acme-odoo-tenant"
NAMES = ("ODOO_ADMIN_LOGIN", "ODOO_COMPANY_NAME", "ODOO_COUNTRY", "ODOO_TIMEZONE")


def init_env(docs: list[dict[str, Any]]) -> dict[str, str]:
    init = container(pod_template(one(docs, "Deployment", WEB))["spec"], "odoo-init")
    return {e["name"]: e.get("value", "") for e in init["env"]}


def test_set_fields_reach_odoo_init_and_unset_ones_render_nothing(helm3: Path) -> None:
    plain = init_env(render(helm3))
    assert not set(NAMES) & set(plain)
    spec = TenantSpec(id="acme", admin_email="owner@acme.example", admin_login="chef@acme.example",
                      company_name='Acme "Ünïcode" & Co', language="es_419", country="AR",
                      timezone="America/Argentina/Buenos_Aires")  # fmt: skip
    values = personal_values(spec)["odoo"]
    sets = [
        f"odoo.admin.login={values['admin']['login']}",
        f"odoo.company.country={values['company']['country']}",
        f"odoo.timezone={values['timezone']}",
        f"odoo.language={values['language']}",
    ]
    docs = render(helm3, "--set", ",".join(sets), "--set-string",
                  f"odoo.company.name={values['company']['name']}")  # fmt: skip
    env = init_env(docs)
    assert {k: env[k] for k in (*NAMES, "ODOO_LANGUAGE")} == {
        "ODOO_ADMIN_LOGIN": "chef@acme.example", "ODOO_COMPANY_NAME": 'Acme "Ünïcode" & Co',
        "ODOO_COUNTRY": "AR", "ODOO_TIMEZONE": "America/Argentina/Buenos_Aires",
        "ODOO_LANGUAGE": "es_419",
    }  # fmt: skip


@pytest.mark.parametrize(
    ("value", "path"),
    [
        ("odoo.company.country=fr", "company/country"),
        ("odoo.timezone=Europe/../etc", "timezone"),
        ("odoo.admin.login=admin", "admin/login"),
    ],
)
def test_the_schema_refuses_what_odoo_would_not_take(helm3: Path, value: str, path: str) -> None:
    assert path in render_error(helm3, "--set", value)
