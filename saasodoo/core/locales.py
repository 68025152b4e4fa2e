"""What Odoo 18 knows of languages, countries and time zones: the lists a tenant's create
request is checked against (``saasodoo.core.spec``), so a bad value is refused before anything
is created instead of failing inside Odoo.

Sources (Odoo 18.0, ``odoo/addons/base``): ``data/res.lang.csv`` (column ``code``: every
language Odoo ships, active or not), ``data/res_country_data.xml`` (``res.country`` ``code``,
ISO 3166-1 alpha-2, stored upper-case), ``models/res_partner.py`` ``_tz_get`` (pytz's
``all_timezones``: the IANA names; here the standard library's ``zoneinfo`` list without its
two non-zones ``Factory`` and ``localtime``, which pytz does not have).
"""

from __future__ import annotations

import functools
import zoneinfo

#: Odoo 18's language codes (``res.lang.code``), e.g. ``fr_FR``, ``es_419``, ``sr@latin``.
ODOO_LANGUAGES: frozenset[str] = frozenset((
    "am_ET", "ar_001", "ar_SY", "az_AZ", "be_BY", "bg_BG", "bn_IN", "bs_BA", "ca_ES", "cs_CZ",
    "da_DK", "de_CH", "de_DE", "el_GR", "en_AU", "en_CA", "en_GB", "en_IN", "en_NZ", "en_US",
    "es_419", "es_AR", "es_BO", "es_CL", "es_CO", "es_CR", "es_DO", "es_EC", "es_ES", "es_GT",
    "es_MX", "es_PA", "es_PE", "es_PY", "es_UY", "es_VE", "et_EE", "eu_ES", "fa_IR", "fi_FI",
    "fr_BE", "fr_CA", "fr_CH", "fr_FR", "gl_ES", "gu_IN", "he_IL", "hi_IN", "hr_HR", "hu_HU",
    "id_ID", "it_IT", "ja_JP", "ka_GE", "kab_DZ", "km_KH", "ko_KP", "ko_KR", "lb_LU", "lo_LA",
    "lt_LT", "lv_LV", "mk_MK", "ml_IN", "mn_MN", "ms_MY", "my_MM", "nb_NO", "nl_BE", "nl_NL",
    "pl_PL", "pt_AO", "pt_BR", "pt_PT", "ro_RO", "ru_RU", "sk_SK", "sl_SI", "sq_AL", "sr@Cyrl",
    "sr@latin", "sv_SE", "sw", "te_IN", "th_TH", "tl_PH", "tr_TR", "uk_UA", "vi_VN", "zh_CN",
    "zh_HK", "zh_TW",
))  # fmt: skip

#: Odoo 18's country codes (``res.country.code``, ISO 3166-1 alpha-2, with Kosovo's ``XK``).
ODOO_COUNTRIES: frozenset[str] = frozenset((
    "AD", "AE", "AF", "AG", "AI", "AL", "AM", "AO", "AQ", "AR", "AS", "AT", "AU", "AW", "AX",
    "AZ", "BA", "BB", "BD", "BE", "BF", "BG", "BH", "BI", "BJ", "BL", "BM", "BN", "BO", "BQ",
    "BR", "BS", "BT", "BV", "BW", "BY", "BZ", "CA", "CC", "CD", "CF", "CG", "CH", "CI", "CK",
    "CL", "CM", "CN", "CO", "CR", "CU", "CV", "CW", "CX", "CY", "CZ", "DE", "DJ", "DK", "DM",
    "DO", "DZ", "EC", "EE", "EG", "EH", "ER", "ES", "ET", "FI", "FJ", "FK", "FM", "FO", "FR",
    "GA", "GB", "GD", "GE", "GF", "GG", "GH", "GI", "GL", "GM", "GN", "GP", "GQ", "GR", "GS",
    "GT", "GU", "GW", "GY", "HK", "HM", "HN", "HR", "HT", "HU", "ID", "IE", "IL", "IM", "IN",
    "IO", "IQ", "IR", "IS", "IT", "JE", "JM", "JO", "JP", "KE", "KG", "KH", "KI", "KM", "KN",
    "KP", "KR", "KW", "KY", "KZ", "LA", "LB", "LC", "LI", "LK", "LR", "LS", "LT", "LU", "LV",
    "LY", "MA", "MC", "MD", "ME", "MF", "MG", "MH", "MK", "ML", "MM", "MN", "MO", "MP", "MQ",
    "MR", "MS", "MT", "MU", "MV", "MW", "MX", "MY", "MZ", "NA", "NC", "NE", "NF", "NG", "NI",
    "NL", "NO", "NP", "NR", "NU", "NZ", "OM", "PA", "PE", "PF", "PG", "PH", "PK", "PL", "PM",
    "PN", "PR", "PS", "PT", "PW", "PY", "QA", "RE", "RO", "RS", "RU", "RW", "SA", "SB", "SC",
    "SD", "SE", "SG", "SH", "SI", "SJ", "SK", "SL", "SM", "SN", "SO", "SR", "SS", "ST", "SV",
    "SX", "SY", "SZ", "TC", "TD", "TF", "TG", "TH", "TJ", "TK", "TL", "TM", "TN", "TO", "TR",
    "TT", "TV", "TW", "TZ", "UA", "UG", "UM", "US", "UY", "UZ", "VA", "VC", "VE", "VG", "VI",
    "VN", "VU", "WF", "WS", "XK", "YE", "YT", "ZA", "ZM", "ZW",
))  # fmt: skip

#: Names ``zoneinfo`` lists that are no IANA zone (and not in pytz, Odoo's list).
_NOT_ZONES = frozenset({"Factory", "localtime"})


@functools.cache
def timezones() -> frozenset[str]:
    """The IANA time zone names Odoo accepts for ``res.users.tz`` (``Europe/Paris``, ``UTC``)."""
    return frozenset(zoneinfo.available_timezones() - _NOT_ZONES)
