"""Pure rules of issues #18 and #22: input bounds, a tenant keeps its Odoo series, failed
reasons."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from click.testing import CliRunner

from saasodoo.cli import cli
from saasodoo.core.limits import MAX_DEPTH, LimitExceeded, check_depth, depth, load_json
from saasodoo.core.spec import TenantSpec
from saasodoo.core.status import Observation, ReleaseInfo, classify
from saasodoo.core.versions import check_version_change, odoo_series, parse_series
from saasodoo.errors import InvalidInput
from saasodoo.fleet import FleetTarget, check_fleet_target

pytestmark = pytest.mark.unit


# -- bounds ------------------------------------------------------------------------------------


def test_depth_is_counted_without_recursion() -> None:
    assert depth(1) == 0 and depth([]) == 1 and depth({"a": [1, {"b": 2}]}) == 3
    deep: list[object] = []
    node = deep
    for _ in range(100_000):  # far beyond Python's recursion limit
        child: list[object] = []
        node.append(child)
        node = child
    assert depth(deep) == MAX_DEPTH + 1  # stops counting past the limit
    with pytest.raises(LimitExceeded, match="nests deeper than 32 levels"):
        check_depth(deep, "x")


@pytest.mark.parametrize(
    "raw",
    ["[" * 1000 + "]" * 1000, "[" * 100_000, '{"a":' * 33 + "1" + "}" * 33, b"[" * 5000],
)
def test_load_json_refuses_deep_documents_with_a_value_error(raw: str | bytes) -> None:
    with pytest.raises(LimitExceeded, match="nests deeper than 32 levels"):
        load_json(raw, "the body")


def test_load_json_accepts_up_to_the_limit_and_names_other_faults() -> None:
    assert load_json("[" * 32 + "]" * 32) is not None
    assert load_json('{"a": [1, 2.5, "x", null, true]}') == {"a": [1, 2.5, "x", None, True]}
    for bad in ("{not json", b"\xff\xfe", "[1,]", "NaN"):
        with pytest.raises(LimitExceeded, match="the body is not valid JSON"):
            load_json(bad, "the body")
    assert issubclass(LimitExceeded, ValueError)


def test_overrides_are_bounded_in_the_spec() -> None:
    deep: dict[str, object] = {}
    node = deep
    for _ in range(40):
        node["a"] = {}
        node = node["a"]  # type: ignore[assignment]
    with pytest.raises(InvalidInput) as err:
        TenantSpec.parse({"id": "acme", "admin_email": "a@example.com", "overrides": deep})
    assert err.value.fields[0].field == "overrides"
    assert "nests deeper than 32 levels" in err.value.fields[0].message


@pytest.mark.parametrize(
    ("value", "says"),
    [
        ("a.b=" + "[" * 2000 + "]" * 2000, "deeper than"),
        ("a=" + "[" * 40 + "]" * 40, "deeper than"),
        ("a=" + "x" * 5000, "longer than 4096"),
        ("a=[&x [1,2], *x, *x]", "aliases"),
        ("a={b: [", "not valid YAML"),
        ("a..b=1", "not key=value"),
        ("=1", "not key=value"),
        ("." * 40 + "=1", "not key=value"),
        ("a." * 40 + "b=1", "deeper than"),
    ],
)
def test_set_values_are_bounded_and_refused_with_exit_code_2(value: str, says: str) -> None:
    result = CliRunner().invoke(
        cli, ["tenant", "create", "acme", "--email", "a@example.com", "--set", value]
    )
    assert result.exit_code == 2, result.output
    assert says in result.stderr and "Traceback" not in result.output


def test_set_refuses_a_key_below_a_value() -> None:
    result = CliRunner().invoke(
        cli,
        ["tenant", "create", "acme", "--email", "a@example.com", "--set", "a=1", "--set", "a.b=2"],
    )
    assert result.exit_code == 2 and "already a value" in result.stderr


# -- a tenant keeps its Odoo series (issue #22 point 2) -----------------------------------------


def _spec(version: str = "18.0", tag: str | None = None) -> TenantSpec:
    overrides = {"odoo": {"image": {"tag": tag}}} if tag else {}
    return TenantSpec.parse(
        {"id": "acme", "admin_email": "a@example.com", "odoo_version": version,
         "overrides": overrides}
    )  # fmt: skip


def test_series_of_versions_and_image_tags() -> None:
    assert parse_series("17.0") == (17, 0)
    assert parse_series("18.0-20250218") == (18, 0)
    assert parse_series("latest") is None and parse_series("170") is None
    assert odoo_series(_spec("19.0")) == (19, 0)
    assert odoo_series(_spec("19.0", tag="17.0-20240101")) == (17, 0)  # the tag runs
    assert odoo_series(_spec("18.0", tag="nightly")) == (18, 0)
    assert parse_series("9.0") < parse_series("10.0")  # type: ignore[operator]  # numeric


@pytest.mark.parametrize(
    ("before", "after"),
    [
        (_spec("18.0"), _spec("18.0")),
        (_spec("18.0"), _spec("18.0", tag="18.0-20250218")),
        (_spec("18.0", tag="18.0-20250218"), _spec("18.0", tag="18.0-20250301")),
        (_spec("18.0", tag="nightly"), _spec("18.0")),
        (_spec("18.0", tag="18.0-20250218"), _spec("17.0", tag="18.0-20250218")),  # 18.0 runs
    ],
)
def test_the_same_series_is_allowed(before: TenantSpec, after: TenantSpec) -> None:
    check_version_change(before, after)


@pytest.mark.parametrize(
    ("before", "after", "field"),
    [
        (_spec("18.0"), _spec("19.0"), "odoo_version"),  # up: Odoo does not migrate majors
        (_spec("17.0"), _spec("18.0"), "odoo_version"),
        (_spec("19.0"), _spec("17.0"), "odoo_version"),
        (_spec("19.0"), _spec("18.0"), "odoo_version"),
        (_spec("18.0"), _spec("18.0", tag="17.0-20240101"), "overrides"),
        (_spec("18.0"), _spec("18.0", tag="19.0-20250918"), "overrides"),
    ],
)
def test_a_change_of_series_is_refused_naming_both_and_the_supported_path(
    before: TenantSpec, after: TenantSpec, field: str
) -> None:
    with pytest.raises(InvalidInput) as err:
        check_version_change(before, after)
    assert err.value.exit_code == 2 and err.value.http_status == 422
    [problem] = err.value.fields
    assert problem.field == field
    was, to = (".".join(map(str, odoo_series(s))) for s in (before, after))
    assert f"cannot change from Odoo {was} to {to}" in problem.message
    assert f"({was} -> {to})" in err.value.message
    for step in ("backup create", "upgrade service", "OpenUpgrade", "backup import",
                 f"odoo_version {to}"):  # fmt: skip
        assert step in problem.message, problem.message


def test_a_rollback_names_the_revision() -> None:
    with pytest.raises(InvalidInput) as err:
        check_version_change(_spec("19.0"), _spec("18.0"), field="revision")
    assert err.value.fields[0].field == "revision"


def test_a_fleet_upgrade_is_refused_as_a_whole_when_one_tenant_would_change_series() -> None:
    specs = [_spec("18.0"), _spec("18.0").model_copy(update={"id": "other"})]
    check_fleet_target(FleetTarget(odoo_version="18.0"), specs)
    check_fleet_target(FleetTarget(overrides={"odoo": {"image": {"tag": "18.0-2025"}}}), specs)
    for version in ("19.0", "17.0"):
        with pytest.raises(InvalidInput) as err:
            check_fleet_target(FleetTarget(odoo_version=version), specs)
        assert err.value.fields[0].field == "odoo_version" and "other" in err.value.message
        assert f"18.0 to {version}" in err.value.fields[0].message
    for tag in ("17.0-20240101", "19.0-20250918"):
        with pytest.raises(InvalidInput) as err:
            check_fleet_target(FleetTarget(overrides={"odoo": {"image": {"tag": tag}}}), specs)
        assert err.value.fields[0].field == "image_tag"


# -- the reason of a failed tenant ---------------------------------------------------------------


def test_a_failed_release_without_description_has_no_dangling_colon() -> None:
    now = datetime.now(UTC)
    bare = classify(Observation("acme", "Active", ReleaseInfo(2, "failed")), now)
    assert bare.reason == "UpgradeFailed" and bare.message == "revision 2 failed"
    told = ReleaseInfo(2, "failed", description='Upgrade "acme" failed: timed out')
    assert classify(Observation("acme", "Active", told), now).message == (
        'revision 2 failed: Upgrade "acme" failed: timed out'
    )
