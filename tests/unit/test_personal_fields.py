"""The create request's personalization fields (issue #25 point 3): company name, language,
country, time zone and admin login, each checked against what Odoo 18 accepts, each refusal
naming its field and rule; left out, the tenant is as before (no field in its values)."""

from __future__ import annotations

import pytest

from saasodoo.core.locales import ODOO_COUNTRIES, ODOO_LANGUAGES, timezones
from saasodoo.core.spec import PERSONAL_FIELDS, TenantSpec
from saasodoo.core.values import spec_record
from saasodoo.errors import InvalidInput

pytestmark = pytest.mark.unit

GOOD = {"id": "acme", "admin_email": "boss@acme.example"}


def test_left_out_they_are_none_and_absent_from_the_values() -> None:
    spec = TenantSpec.parse(GOOD)
    assert all(getattr(spec, name) is None for name in PERSONAL_FIELDS)
    assert set(spec_record(spec)).isdisjoint(PERSONAL_FIELDS)


def test_given_they_are_kept_normalized_and_recorded() -> None:
    spec = TenantSpec.parse(
        {
            **GOOD,
            "admin_login": "Chef@ACME.example",
            "company_name": "  Société Générale d'Essai  ",
            "language": "fr_FR",
            "country": "fr",
            "timezone": "Europe/Paris",
        }
    )
    assert (spec.admin_login, spec.company_name, spec.language, spec.country, spec.timezone) == (
        "Chef@acme.example", "Société Générale d'Essai", "fr_FR", "FR", "Europe/Paris"
    )  # fmt: skip
    record = spec_record(spec)
    assert {k: record[k] for k in PERSONAL_FIELDS} == {
        "admin_login": "Chef@acme.example", "company_name": "Société Générale d'Essai",
        "language": "fr_FR", "country": "FR", "timezone": "Europe/Paris",
    }  # fmt: skip


@pytest.mark.parametrize(
    ("field", "value", "rule"),
    [
        ("company_name", "", "1 to 128 characters"),
        ("company_name", "   ", "1 to 128 characters"),
        ("company_name", "x" * 129, "1 to 128 characters"),
        ("company_name", "Acme\nInc", "control characters"),
        ("company_name", "Acme\tInc", "control characters"),
        ("language", "fr", "not a language code of Odoo"),
        ("language", "fr_fr", "not a language code of Odoo"),
        ("language", "FR_FR", "not a language code of Odoo"),
        ("language", "xx_YY", "not a language code of Odoo"),
        ("country", "FRA", "alpha-2"),
        ("country", "F", "alpha-2"),
        ("country", "F1", "alpha-2"),
        ("country", "ÉÉ", "alpha-2"),
        ("country", "ZZ", "not a country code Odoo knows"),
        ("timezone", "Paris", "not an IANA time zone"),
        ("timezone", "europe/paris", "not an IANA time zone"),
        ("timezone", "Factory", "not an IANA time zone"),
        ("timezone", "localtime", "not an IANA time zone"),
        ("admin_login", "admin", "e-mail address"),
        ("admin_login", "a b@acme.example", "e-mail address"),
    ],
)
def test_a_bad_value_is_refused_naming_the_field_and_the_rule(
    field: str, value: str, rule: str
) -> None:
    with pytest.raises(InvalidInput) as exc:
        TenantSpec.parse({**GOOD, field: value})
    assert [f.field for f in exc.value.fields] == [field]
    assert rule in exc.value.message, exc.value.message


@pytest.mark.parametrize("code", ["en_US", "fr_FR", "es_419", "sr@latin", "zh_CN", "sw"])
def test_odoo_s_language_codes_are_accepted(code: str) -> None:
    assert TenantSpec.parse({**GOOD, "language": code}).language == code


def test_the_lists_are_odoo_18_s() -> None:
    # base/data/res.lang.csv and res_country_data.xml of Odoo 18.0; pytz's zone names.
    assert len(ODOO_LANGUAGES) == 92 and {"en_US", "kab_DZ", "sr@Cyrl"} <= ODOO_LANGUAGES
    assert len(ODOO_COUNTRIES) == 250 and {"FR", "US", "XK", "GB"} <= ODOO_COUNTRIES
    assert {"UTC", "Europe/Paris", "America/Argentina/Buenos_Aires"} <= timezones()


def test_an_odootenant_carries_them_and_names_a_bad_one_by_its_resource_field() -> None:
    from saasodoo.core.crd import from_tenant_spec, to_tenant_spec

    spec = TenantSpec.parse({**GOOD, "company_name": "Acme SA", "language": "de_CH",
                             "country": "CH", "timezone": "Europe/Zurich"})  # fmt: skip
    resource = from_tenant_spec(spec, suspended=False, owner=None)
    assert (resource["companyName"], resource["language"], resource["country"]) == (
        "Acme SA", "de_CH", "CH"
    )  # fmt: skip
    assert "adminLogin" not in resource  # unset: absent, not null
    assert to_tenant_spec("acme", resource) == spec
    with pytest.raises(InvalidInput) as exc:
        to_tenant_spec("acme", {**resource, "country": "XX"})
    assert [f.field for f in exc.value.fields] == ["spec.country"]
    assert "not a country code Odoo knows" in exc.value.message


def test_they_become_chart_values_only_when_set() -> None:
    from saasodoo.core.values import personal_values

    assert personal_values(TenantSpec.parse(GOOD)) == {}
    spec = TenantSpec.parse({**GOOD, "company_name": "Acme", "country": "be", "language": "nl_BE"})
    assert personal_values(spec) == {
        "odoo": {"language": "nl_BE", "company": {"name": "Acme", "country": "BE"}}
    }
