"""values.schema.json is strict: a misspelled key or a wrong type fails the install with a
message naming it, in helm 3 and helm 4."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.chart.helpers import CHART, render, render_error

pytestmark = pytest.mark.chart

SCHEMA = json.loads((CHART / "values.schema.json").read_text())


def objects(node: Any, path: str = "") -> Iterator[tuple[str, dict[str, Any]]]:
    """Every object schema with its JSON pointer."""
    if isinstance(node, dict):
        if node.get("type") == "object" or "properties" in node:
            yield path, node
        for key, value in node.items():
            yield from objects(value, f"{path}/{key}")
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from objects(value, f"{path}/{index}")


def test_every_object_is_closed() -> None:
    open_maps = {
        # maps whose keys are free by nature; their values are typed
        "/definitions/stringMap",
        "/definitions/labelMap",
        "/properties/global",
        "/properties/odoo/properties/config/properties/extraOptions",
        "/properties/postgresql/properties/parameters",
        # saasodoo's record of the tenant spec, kept per revision, unused by templates
        "/properties/tenant/properties/spec",
    }
    for path, node in objects(SCHEMA):
        if path in open_maps:
            assert path == "/properties/global" or "additionalProperties" in node, path
            continue
        assert node.get("additionalProperties") is False, f"{path} accepts unknown keys"


def test_schema_describes_every_key_of_values_yaml() -> None:
    values = yaml.safe_load((CHART / "values.yaml").read_text())

    def walk(value: Any, schema: dict[str, Any], path: str) -> None:
        if "$ref" in schema:
            schema = SCHEMA["definitions"][schema["$ref"].rsplit("/", 1)[1]]
        if isinstance(value, dict) and "properties" in schema:
            for key, child in value.items():
                assert key in schema["properties"], f"{path}.{key} missing from the schema"
                walk(child, schema["properties"][key], f"{path}.{key}")

    walk(values, SCHEMA, "")


@pytest.mark.parametrize(
    ("setting", "where", "what"),
    [
        ("odoo.replica=2", "at '/odoo'", "additional properties 'replica' not allowed"),
        ("odoo.confg.workers=2", "at '/odoo'", "'confg'"),
        ("postgresql.persistance.size=1Gi", "at '/postgresql'", "'persistance'"),
        ("ingres.enabled=false", "at ''", "'ingres'"),
        ("networkPolicy.egress.smtp.enable=true", "at '/networkPolicy/egress/smtp'", "'enable'"),
        ("quota.hard.request\\.cpu=2", "at '/quota/hard'", "'request.cpu'"),
    ],
)
def test_a_misspelled_key_is_rejected_naming_it(
    helm: Path, setting: str, where: str, what: str
) -> None:
    error = render_error(helm, "--set", setting)
    assert "values don't meet the specifications of the schema" in error
    assert where in error and what in error, error


@pytest.mark.parametrize(
    ("setting", "where"),
    [
        ("odoo.replicas=two", "at '/odoo/replicas': got string, want integer"),
        ("odoo.config.workers=-1", "at '/odoo/config/workers'"),
        ("odoo.version=16.0", "at '/odoo/version'"),
        ("odoo.resources.requests.cpu=lots", "at '/odoo/resources/requests/cpu'"),
        ("backup.enabled=maybe", "at '/backup/enabled': got string, want boolean"),
        ("tenant.id=Acme_Corp", "at '/tenant/id'"),
        (
            "ingress.customDomains=shop.example.com",
            "at '/ingress/customDomains': got string, want array",
        ),
        ("odoo.admin.email=nobody", "at '/odoo/admin/email'"),
        ("odoo.image.pullPolicy=Sometimes", "at '/odoo/image/pullPolicy'"),
    ],
)
def test_a_wrong_type_or_value_is_rejected_naming_the_key(
    helm: Path, setting: str, where: str
) -> None:
    error = render_error(helm, "--set-string" if "=two" in setting else "--set", setting)
    assert where in error, error


def test_a_password_cannot_be_given_as_a_value(helm3: Path) -> None:
    error = render_error(helm3, "--set", "odoo.admin.password=hunter2")
    assert "additional properties 'password' not allowed" in error


def test_the_orchestrators_per_tenant_values_are_accepted(helm: Path, tmp_path: Path) -> None:
    """What the control plane sets per tenant (base < plan < tenant) validates and renders."""
    values = {
        "tenant": {"id": "acme"},
        "odoo": {
            "version": "19.0",
            "image": {"tag": "19.0-20260118"},
            "replicas": 0,
            "admin": {"email": "owner@acme.example", "existingSecret": "acme-admin"},
            "config": {"workers": 3, "maxCronThreads": 1},
            "resources": {
                "requests": {"cpu": "500m", "memory": "1Gi"},
                "limits": {"cpu": 2, "memory": "3Gi"},
            },
            "persistence": {"size": "10Gi", "storageClass": "standard"},
        },
        "postgresql": {"persistence": {"size": "8Gi", "storageClass": "standard"}},
        "ingress": {"baseDomain": "saas.example.com", "customDomains": ["erp.acme.example"]},
        "backup": {"schedule": "30 1 * * *"},
        "quota": {
            "hard": {"requests.cpu": "4", "limits.memory": "12Gi", "requests.storage": "50Gi"}
        },
    }
    path = tmp_path / "tenant.yaml"
    path.write_text(yaml.safe_dump(values))
    docs = render(helm, "--values", str(path))
    assert any(d["kind"] == "Deployment" and d["spec"]["replicas"] == 0 for d in docs)


def test_extra_labels_cannot_override_the_charts_own(helm3: Path) -> None:
    error = render_error(helm3, "--set", "odoo.podLabels.app\\.kubernetes\\.io/component=web")
    assert "odoo.podLabels.app.kubernetes.io/component: the chart sets this label itself" in error
    docs = render(helm3, "--set", "commonLabels.team=billing", "--set", "odoo.podLabels.tier=web")
    web = next(d for d in docs if d["kind"] == "Deployment")
    assert web["metadata"]["labels"]["team"] == "billing"
    assert web["spec"]["template"]["metadata"]["labels"]["tier"] == "web"


@pytest.mark.parametrize(
    ("setting", "message"),
    [
        (
            "odoo.config.extraOptions.Bad-Name=1",
            'odoo.config.extraOptions: "Bad-Name" is not an option',
        ),
        ("postgresql.parameters.x\\ y=1", 'postgresql.parameters: "x y" is not an option name'),
        ("odoo.config.extraOptions.limit_request=1\nlist_db = True", "must be a single line"),
    ],
)
def test_free_form_options_are_checked(helm3: Path, setting: str, message: str) -> None:
    assert message in render_error(helm3, "--set-string", setting)
