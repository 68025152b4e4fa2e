"""DNS look-ups for the proof of control of custom domains, through dnspython.

The nameserver is a setting (``SAASODOO_DNS_NAMESERVER`` / ``SAASODOO_DNS_PORT``); without it
the system's resolver configuration is used. Names are always absolute (no search list).
A name that does not exist or has no such record answers "nothing found"; a nameserver
that cannot be reached or does not answer in time raises ``DnsUnavailable`` (retry later).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import dns.exception
import dns.name
import dns.resolver

from saasodoo.errors import TransientClusterError
from saasodoo.settings import Settings


class DnsUnavailable(TransientClusterError):
    """The nameserver could not be reached or did not answer in time (exit code 5, 503)."""


@contextlib.contextmanager
def _translate(what: str) -> Iterator[None]:
    try:
        yield
    except (dns.resolver.NoNameservers, dns.exception.Timeout) as exc:
        raise DnsUnavailable(f"DNS look-up of {what}: {exc}") from None


class Resolver:
    """The two look-ups a verification needs: TXT values and the CNAME target of a name."""

    def __init__(self, settings: Settings) -> None:
        if settings.dns_nameserver:
            resolver = dns.resolver.Resolver(configure=False)
            resolver.nameservers = [settings.dns_nameserver]
            resolver.port = settings.dns_port
        else:
            resolver = dns.resolver.Resolver()
        resolver.lifetime = settings.dns_timeout
        resolver.timeout = min(settings.dns_timeout, 2.0)
        resolver.cache = None
        self._resolver = resolver

    def _answer(self, name: str, rdtype: str) -> dns.resolver.Answer | None:
        try:
            with _translate(f"{name} {rdtype}"):
                return self._resolver.resolve(
                    dns.name.from_text(name), rdtype, search=False, raise_on_no_answer=True
                )
        except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer, dns.resolver.YXDOMAIN):
            return None

    def txt(self, name: str) -> list[str]:
        """The TXT values at ``name`` (each record's strings joined); [] when there is none."""
        answer = self._answer(name, "TXT")
        if answer is None:
            return []
        return [b"".join(rdata.strings).decode("utf-8", "replace") for rdata in answer]

    def cname(self, name: str) -> str | None:
        """The CNAME target of ``name`` (no trailing dot), or None."""
        answer = self._answer(name, "CNAME")
        if answer is None:
            return None
        for rdata in answer:
            return str(rdata.target.to_text(omit_final_dot=True))
        return None
