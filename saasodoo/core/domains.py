"""Custom domains: canonical host names, the platform's own names, and the proof of control.

Pure rules, no I/O. Who holds a host platform-wide is recorded in the cluster
(``saasodoo.domains``: one claim object per host, created if absent, so the API server
arbitrates races); the DNS records are read by ``saasodoo.adapters.dns``.

- **Canonical form.** Hosts are compared as IDNA 2008 A-labels (UTS #46 mapping: lower
  case, full-width dots, unicode to punycode), without the trailing dot. ``ERP.Acme.example.``
  and ``erp.acme.example`` are one host; ``bücher.example`` is ``xn--bcher-kva.example``.
- **No wildcards.** ``*`` is refused: a wildcard host would route every name under it.
- **The platform's names are never a custom domain.** The base domain and every name under
  it (``api.<base>``, other tenants' ``<id>.<base>``, the tenant's own ``<id>.<base>``, which
  is routed anyway) and every domain in ``reserved`` (e.g. the API's host when it lives
  elsewhere).
- **Proof of control.** A custom domain is routed (rendered into the Ingress) only once its
  owner published either ``TXT _saasodoo-challenge.<host> = "saasodoo-verify=<token>"`` or
  ``<host> CNAME <id>.<base>``. The token is derived from the tenant, the host and the claim's
  uid, so it changes when the host is released and claimed again (an old record left in DNS
  proves nothing for a new claim).
"""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import idna

from saasodoo.errors import FieldError, InvalidInput

#: Label under the custom domain where the TXT proof lives.
CHALLENGE_LABEL = "_saasodoo-challenge"
#: Prefix of the TXT record's value.
TOKEN_PREFIX = "saasodoo-verify="
#: Prefix of the claim objects' names (followed by a hash of the canonical host).
CLAIM_PREFIX = "domain-"

_HOSTNAME = re.compile(
    r"^(?=.{1,253}$)([a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?\.)+[a-z]([-a-z0-9]{0,61}[a-z0-9])?$"
)


def canonical_host(value: str) -> str:
    """``value`` in canonical form (see the module docstring); ValueError names the rule."""
    if not isinstance(value, str):
        raise ValueError("must be a host name (a string)")
    text = value.strip()
    if "*" in text:
        raise ValueError(f"'{text}': wildcards are not supported, give each host name")
    if text.endswith("."):
        text = text[:-1]
    if not text:
        raise ValueError("must be a host name, got an empty string")
    try:
        ascii_host = idna.encode(text, uts46=True, transitional=False).decode("ascii")
    except (idna.IDNAError, UnicodeError) as exc:
        raise ValueError(f"'{text}' is not a valid host name ({exc})") from None
    ascii_host = ascii_host.lower()
    if not _HOSTNAME.match(ascii_host):
        raise ValueError(
            f"'{text}' is not a valid host name (labels of letters, digits and '-', "
            "at least two labels, the last one starting with a letter)"
        )
    return ascii_host


def _domain(value: str) -> str:
    """A platform domain from the settings, canonical as far as it goes (``localhost`` is
    fine here, unlike in a custom domain)."""
    text = value.strip().rstrip(".")
    try:
        return idna.encode(text, uts46=True, transitional=False).decode("ascii").lower()
    except (idna.IDNAError, UnicodeError):
        return text.lower()


def platform_rule(
    host: str, tenant_id: str, base_domain: str, reserved: Iterable[str] = ()
) -> str | None:
    """Why ``host`` (canonical) can never be a custom domain of ``tenant_id``; None if it can."""
    base = _domain(base_domain)
    own = f"{tenant_id}.{base}"
    if host == own:
        return f"is the tenant's own host ({own}), which is always routed"
    for domain in (base, *(_domain(r) for r in reserved)):
        if host == domain or host.endswith("." + domain):
            return (
                f"belongs to the platform: {domain} and every name under it are never "
                "a custom domain"
            )
    return None


def check_custom_domains(
    tenant_id: str, domains: Sequence[str], base_domain: str, reserved: Iterable[str] = ()
) -> None:
    """Raise InvalidInput naming each ``custom_domains[i]`` that is a platform name."""
    reserved = tuple(reserved)
    fields = []
    for i, host in enumerate(domains):
        rule = platform_rule(host, tenant_id, base_domain, reserved)
        if rule:
            fields.append(FieldError(f"custom_domains[{i}]", f"'{host}' {rule}"))
    if fields:
        raise InvalidInput("invalid tenant", fields)


def claim_name(host: str) -> str:
    """Name of the cluster object that claims ``host`` (canonical) platform-wide."""
    return CLAIM_PREFIX + hashlib.sha256(host.encode("ascii")).hexdigest()[:40]


@dataclass(frozen=True)
class Challenge:
    """The DNS records that prove control of ``host`` for a tenant (either one suffices)."""

    host: str
    #: TXT record: name and the value it must hold.
    txt_name: str
    txt_value: str
    #: Or: ``host`` CNAME this target (not possible at a zone apex).
    cname_target: str

    def to_dict(self) -> dict[str, str]:
        return {
            "txt_name": self.txt_name,
            "txt_value": self.txt_value,
            "cname_target": self.cname_target,
        }


def challenge(tenant_id: str, host: str, nonce: str, base_domain: str) -> Challenge:
    """The proof expected for ``host`` claimed by ``tenant_id``; ``nonce`` is the claim's uid."""
    digest = hashlib.sha256(f"{tenant_id}\n{host}\n{nonce}".encode()).digest()[:20]
    token = base64.b32encode(digest).decode("ascii").lower()
    return Challenge(
        host=host,
        txt_name=f"{CHALLENGE_LABEL}.{host}",
        txt_value=TOKEN_PREFIX + token,
        cname_target=f"{tenant_id}.{_domain(base_domain)}",
    )


def proven(expected: Challenge, txt_values: Iterable[str], cname: str | None) -> bool:
    """Whether the records found prove control: the exact TXT value, or the CNAME."""
    if any(value.strip() == expected.txt_value for value in txt_values):
        return True
    if cname:
        try:
            return canonical_host(cname) == expected.cname_target
        except ValueError:
            return False
    return False


def live_domains(custom_domains: Sequence[str], verified: Iterable[str]) -> list[str]:
    """The custom domains that are routed: the verified ones, in the spec's order."""
    done = set(verified)
    return [d for d in custom_domains if d in done]
