"""A staging copy's release (`tenant.copyOf`, issue 25 point 1): its Odoo pods neutralize the
database before Odoo starts (odoo-init --copy: the web pod neutralizes, the cron pod waits for
it), and it cannot be given outgoing mail."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.chart.helpers import CHART, container, one, pod_template, render, render_error

pytestmark = pytest.mark.chart

WEB = "acme-odoo-tenant"
CRON = "acme-odoo-tenant-cron"
SPLIT = ("--values", str(CHART / "ci" / "cron-split-values.yaml"))


def init_command(docs: list, name: str) -> list[str]:
    return list(
        container(pod_template(one(docs, "Deployment", name))["spec"], "odoo-init")["command"]
    )


def test_a_copy_s_pods_neutralize_before_odoo_starts(helm3: Path) -> None:
    docs = render(helm3, *SPLIT, "--set", "tenant.copyOf=prod-acme")
    web, cron = init_command(docs, WEB), init_command(docs, CRON)
    assert "--initialize" in web and "--copy" in web
    assert "--wait" in cron and "--copy" in cron
    plain = render(helm3, *SPLIT)
    assert "--copy" not in init_command(plain, WEB) + init_command(plain, CRON)


@pytest.mark.parametrize(
    ("value", "words"),
    [
        (
            "odoo.smtp.enabled=true,odoo.smtp.host=smtp.example.com",
            "odoo.smtp.enabled must be false",
        ),
        (
            "networkPolicy.egress.smtp.enabled=true",
            "networkPolicy.egress.smtp.enabled must be false",
        ),
    ],
)
def test_a_copy_sends_no_mail(helm3: Path, value: str, words: str) -> None:
    error = render_error(helm3, "--set", "tenant.copyOf=prod-acme", "--set", value)
    assert words in error and "staging copy of prod-acme (tenant.copyOf)" in error, error
    render(helm3, "--set", value)  # not a copy: allowed


def test_copy_of_is_a_tenant_id(helm3: Path) -> None:
    error = render_error(helm3, "--set", "tenant.copyOf=Not_An_Id")
    assert "copyOf" in error, error
