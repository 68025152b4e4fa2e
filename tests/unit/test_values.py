"""Values are merged as Helm merges them: base < plan < tenant < overrides."""

from __future__ import annotations

import json

import pytest

from saasodoo.adapters.catalog import load_catalog
from saasodoo.core.plans import Catalog, parse_catalog
from saasodoo.core.spec import TenantSpec
from saasodoo.core.values import (
    ADMIN_SECRET_NAME,
    Platform,
    backup_schedule,
    compute_values,
    helm_merge,
)
from saasodoo.errors import InvalidInput
from tests.support import ROOT

pytestmark = pytest.mark.unit

PLATFORM = Platform(base_domain="odoo.example.com", storage_class="fast")


def catalog() -> Catalog:
    return parse_catalog(
        {
            "odoo": {"config": {"workers": 1, "proxyMode": True}},
            "ingress": {"annotations": {"a": "1"}},
        },
        {
            "small": {"description": "s", "values": {"odoo": {"config": {"workers": 2}}}},
            "big": {
                "values": {
                    "odoo": {"config": {"workers": 8}},
                    "backup": {"schedule": "0 1 * * *"},
                    "networkPolicy": {"egress": {"extra": [{"to": []}]}},
                }
            },
        },
    )


def spec(**kw: object) -> TenantSpec:
    return TenantSpec.parse({"id": "acme", "admin_email": "a@acme.example", "plan": "small", **kw})


def test_helm_merge_semantics() -> None:
    base = {"a": {"b": 1, "c": [1, 2]}, "d": 1, "keep": {"x": 1}}
    over = {"a": {"c": [3], "e": 2}, "d": None, "keep": {}}
    assert helm_merge(base, over) == {"a": {"b": 1, "c": [3], "e": 2}, "keep": {"x": 1}}
    assert base["a"]["c"] == [1, 2]  # inputs untouched


def test_layers_in_order() -> None:
    v = compute_values(spec(), catalog(), PLATFORM).values
    assert v["odoo"]["config"] == {"workers": 2, "proxyMode": True}  # plan over base
    assert v["ingress"]["annotations"] == {"a": "1"}  # base kept
    assert v["ingress"]["subdomain"] == "acme"
    assert v["ingress"]["baseDomain"] == "odoo.example.com"
    assert v["tenant"]["id"] == "acme"
    assert v["odoo"]["version"] == "18.0"
    assert v["odoo"]["persistence"]["storageClass"] == "fast"


def test_overrides_win() -> None:
    s = spec(overrides={"odoo": {"config": {"workers": 3}}, "ingress": {"annotations": None}})
    v = compute_values(s, catalog(), PLATFORM).values
    assert v["odoo"]["config"]["workers"] == 3
    assert "annotations" not in v["ingress"]


def test_admin_password_is_only_referenced() -> None:
    v = compute_values(spec(), catalog(), PLATFORM).values
    assert v["odoo"]["admin"] == {
        "email": "a@acme.example",
        "existingSecret": ADMIN_SECRET_NAME,
        "existingSecretKey": "admin-password",
    }
    assert "password" not in str(v).replace("existingSecret", "").replace("admin-password", "")


def test_backup_schedule_spread_unless_plan_sets_it() -> None:
    v = compute_values(spec(), catalog(), PLATFORM).values
    assert v["backup"]["schedule"] == backup_schedule("acme")
    big = compute_values(spec(plan="big"), catalog(), PLATFORM).values
    assert big["backup"]["schedule"] == "0 1 * * *"


def test_backup_schedules_are_spread_inside_the_window() -> None:
    schedules = {backup_schedule(f"tenant{i}") for i in range(200)}
    assert len(schedules) > 120  # 200 tenants over 240 minutes (random hashing collides)
    for s in schedules:
        minute, hour, *_ = s.split()
        assert 0 <= int(minute) < 60 and 1 <= int(hour) < 5


def test_unknown_plan_names_field() -> None:
    with pytest.raises(InvalidInput) as exc:
        compute_values(spec(plan="gold"), catalog(), PLATFORM)
    assert exc.value.fields[0].field == "plan"
    assert "big, small" in exc.value.message


def test_digest_changes_with_values_and_chart() -> None:
    a = compute_values(spec(), catalog(), PLATFORM)
    b = compute_values(spec(odoo_version="19.0"), catalog(), PLATFORM)
    assert a.digest("1.0.0") == compute_values(spec(), catalog(), PLATFORM).digest("1.0.0")
    assert a.digest("1.0.0") != b.digest("1.0.0")
    assert a.digest("1.0.0") != a.digest("1.0.1")


def test_bad_plan_documents() -> None:
    with pytest.raises(InvalidInput, match="plan 'x'"):
        parse_catalog({}, {"x": {"values": [], "descrption": "typo"}})
    with pytest.raises(InvalidInput, match="no plan"):
        parse_catalog({}, {})


def test_repository_plans_load() -> None:
    cat = load_catalog(ROOT / "values")
    assert {"starter", "standard", "premium"} <= set(cat.plans)
    for plan in cat.plans.values():
        assert plan.description


def test_spec_rides_along_in_values() -> None:
    v = compute_values(spec(custom_domains=["erp.acme.example"]), catalog(), PLATFORM).values
    assert v["tenant"]["spec"]["plan"] == "small"
    assert TenantSpec.model_validate(v["tenant"]["spec"]) == spec(
        custom_domains=["erp.acme.example"]
    )


def test_volume_floors_for_rollback() -> None:
    from saasodoo.core.values import floor_volume_sizes, parse_size, shrinking_claims

    assert parse_size("5Gi") == 5 * 2**30
    assert parse_size("500M") == 500 * 10**6
    with pytest.raises(ValueError):
        parse_size("5 apples")
    target = {"fs": ("odoo", "5Gi"), "db": ("postgresql", "20Gi"), "bk": ("backup", "10Gi")}
    current = {"fs": "20Gi", "db": "20Gi", "bk": "10Gi"}
    assert shrinking_claims(target, current) == ["fs"]
    values = {"odoo": {"persistence": {"size": "5Gi"}, "replicas": 1}}
    floored = floor_volume_sizes(values, target, current)
    assert floored == {
        "odoo": {"persistence": {"size": "20Gi"}, "replicas": 1},
        "quota": {"hard": {"requests.storage": "50Gi"}},  # 20 + 20 + 10: the volumes as they are
    }
    roomy = {**values, "quota": {"hard": {"requests.storage": "100Gi"}}}
    kept = floor_volume_sizes(roomy, target, current)["quota"]["hard"]
    assert kept["requests.storage"] == "100Gi"
    assert floor_volume_sizes(values, target, {"fs": "5Gi"}) == values


def test_schema_validation_names_the_values() -> None:

    from saasodoo.core.values import validate_against_schema

    schema = json.loads((ROOT / "charts/odoo-tenant/values.schema.json").read_text())
    import yaml

    defaults = yaml.safe_load((ROOT / "charts/odoo-tenant/values.yaml").read_text())
    good = compute_values(spec(plan="starter"), load_catalog(ROOT / "values"), PLATFORM)
    validate_against_schema(schema, defaults, good.values)
    with pytest.raises(InvalidInput) as exc:
        validate_against_schema(
            schema, defaults, {"odoo": {"replcas": 2, "config": {"workers": "many"}}}
        )
    fields = {f.field: f.message for f in exc.value.fields}
    assert "values.odoo" in fields and "replcas" in fields["values.odoo"]
    assert "values.odoo.config.workers" in fields


def test_node_pool_selects_and_tolerates_its_nodes() -> None:
    pool = Platform(base_domain="odoo.example.com", node_pool="saasodoo.dev/real-node=true")
    v = compute_values(spec(), catalog(), pool).values
    assert v["nodeSelector"] == {"saasodoo.dev/real-node": "true"}
    assert v["tolerations"] == [
        {
            "key": "saasodoo.dev/real-node",
            "operator": "Equal",
            "value": "true",
            "effect": "NoSchedule",
        }
    ]
    # No pool: no placement values at all (the chart's defaults: any node).
    plain = compute_values(spec(), catalog(), PLATFORM).values
    assert "nodeSelector" not in plain and "tolerations" not in plain
    # The tenant's own overrides still win.
    over = compute_values(spec(overrides={"nodeSelector": {"pool": "b"}}), catalog(), pool).values
    assert over["nodeSelector"] == {"saasodoo.dev/real-node": "true", "pool": "b"}


@pytest.mark.parametrize("bad", ["real-node", "=true", "a b=c", "x/=y", "k=v w"])
def test_node_pool_setting_must_be_a_label(bad: str) -> None:
    from pydantic import ValidationError

    from saasodoo.settings import Settings

    with pytest.raises(ValidationError, match="node_pool"):
        Settings(node_pool=bad)
    assert Settings(node_pool="saasodoo.dev/real-node=true").node_pool


def test_platform_tenant_values_are_a_layer_under_every_plan(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from saasodoo.settings import Settings

    layer = {"backup": {"storage": "s3", "s3": {"bucket": "b", "existingSecret": "k"}}}
    monkeypatch.setenv(
        "SAASODOO_TENANT_VALUES",
        '{"backup": {"storage": "s3", "s3": {"bucket": "b", "existingSecret": "k"}}}',
    )
    assert Settings().tenant_values == layer  # JSON from the environment
    cat = load_catalog(ROOT / "values", layer)
    values = compute_values(spec(plan="starter"), cat, PLATFORM).values
    assert values["backup"]["storage"] == "s3" and values["backup"]["s3"]["bucket"] == "b"
    assert values["backup"]["keep"] == 7  # base.yaml's, merged key by key
    # The tenant's overrides still win over the platform's layer.
    over = compute_values(
        spec(plan="starter", overrides={"backup": {"storage": "pvc"}}), cat, PLATFORM
    ).values
    assert over["backup"]["storage"] == "pvc"


@pytest.mark.parametrize("bad", ["backup-s3", "ns/", "/name", "NS/name", "a/b/c"])
def test_backup_s3_secret_setting_is_namespace_slash_name(bad: str) -> None:
    from pydantic import ValidationError

    from saasodoo.settings import Settings

    with pytest.raises(ValidationError, match="backup_s3_secret"):
        Settings(backup_s3_secret=bad)
    assert Settings(backup_s3_secret="saasodoo-system/backup-s3").backup_s3_secret


def test_backup_storage_follows_the_values_and_the_chart_s_defaults() -> None:
    import yaml

    from saasodoo.core.values import S3_CHART_DEFAULTS, backup_storage

    chart = yaml.safe_load((ROOT / "charts" / "odoo-tenant" / "values.yaml").read_text())
    assert {k: chart["backup"]["s3"][k] for k in S3_CHART_DEFAULTS} == S3_CHART_DEFAULTS
    assert backup_storage({}) == {"type": "pvc"}
    s3 = {"backup": {"storage": "s3", "s3": {"endpoint": "http://s3:7070", "bucket": "b"}}}
    assert backup_storage(s3) == {"type": "s3", "endpoint": "http://s3:7070", "bucket": "b",
                                  "prefix": "saasodoo", "region": "us-east-1"}  # fmt: skip
