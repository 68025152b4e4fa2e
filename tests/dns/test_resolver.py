"""saasodoo's DNS adapter (dnspython) against a real DNS server on 127.0.0.1 (dnslib)."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator

import pytest

from saasodoo.adapters.dns import DnsUnavailable, Resolver
from saasodoo.settings import Settings
from tests.dns_server import Zone, dns_server

pytestmark = pytest.mark.dns


@pytest.fixture(scope="module")
def zone() -> Iterator[Zone]:
    with dns_server() as z:
        yield z


def resolver(port: int, timeout: float = 3) -> Resolver:
    return Resolver(Settings(dns_nameserver="127.0.0.1", dns_port=port, dns_timeout=timeout))


def test_txt_and_cname_answers(zone: Zone) -> None:
    zone.set("_saasodoo-challenge.shop.example", "TXT", "saasodoo-verify=abc", "v=spf1 -all")
    zone.set("www.shop.example", "CNAME", "bravo.odoo.test.")
    r = resolver(zone.port)
    assert sorted(r.txt("_saasodoo-challenge.shop.example")) == [
        "saasodoo-verify=abc",
        "v=spf1 -all",
    ]
    assert r.cname("www.shop.example") == "bravo.odoo.test"


def test_missing_records_are_nothing_found(zone: Zone) -> None:
    zone.set("www.shop.example", "CNAME", "bravo.odoo.test")
    r = resolver(zone.port)
    assert r.txt("nothing.example") == []  # NXDOMAIN
    assert r.txt("www.shop.example") == []  # the name exists, no TXT
    assert r.cname("nothing.example") is None


def test_unreachable_nameserver_is_retryable() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as silent:  # bound, never answers
        silent.bind(("127.0.0.1", 0))
        r = resolver(silent.getsockname()[1], timeout=1)
        started = time.monotonic()
        with pytest.raises(DnsUnavailable) as exc:
            r.txt("_saasodoo-challenge.shop.example")
    assert time.monotonic() - started < 5
    assert exc.value.retryable and exc.value.exit_code == 5
