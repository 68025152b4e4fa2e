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
  ``<host> CNAME <token>.<id>.<base>``. The token is derived from the tenant id, the host and
  the uid of the tenant's namespace, so each tenant (each life of an id) has its own: when a
  tenant is deleted and another customer creates the same id, the CNAME or TXT record the
  first customer left in their DNS proves nothing for the new tenant (the dangling-CNAME
  takeover). Both records are per claimant, as Heroku's per-domain DNS targets
  (``<random>.herokudns.com``) and Vercel's/GitHub Pages' TXT verification are; the CNAME
  target resolves through the platform's wildcard ``*.<base>`` record like ``<id>.<base>``.
  The token needs no claim, so a tenant can prove a host another tenant claimed without
  proof (``Standing``: a valid proof beats an unproven claim).
- **Pending time.** A claim without proof may be taken by another tenant once it is older
  than ``Settings.domain_pending_hours``. The time counts from the tenant's first claim of
  the host, remembered on its namespace (``FIRST_CLAIMS_ANNOTATION``) for
  ``FIRST_CLAIM_MEMORY_DAYS``: dropping and re-adding a host does not restart it.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

import idna

from saasodoo.errors import FieldError, InvalidInput

#: Label under the custom domain where the TXT proof lives.
CHALLENGE_LABEL = "_saasodoo-challenge"
#: Prefix of the TXT record's value.
TOKEN_PREFIX = "saasodoo-verify="
#: Prefix of the claim objects' names (followed by a hash of the canonical host).
CLAIM_PREFIX = "domain-"
#: Annotation of a tenant's namespace: JSON ``{host: ISO 8601 time}``, when the tenant first
#: claimed each host (the pending time counts from there, whatever drops and re-adds).
FIRST_CLAIMS_ANNOTATION = "saasodoo.dev/domain-first-claims"
#: How long a first claim is remembered (days), and for how many hosts at most (the oldest
#: are forgotten first; an annotation is bounded in size).
FIRST_CLAIM_MEMORY_DAYS = 30
FIRST_CLAIM_MEMORY_MAX = 200

#: Where another tenant's claim of a host stands: ``verified`` (its holder proved it: never
#: taken over), ``pending`` (no proof yet: a valid proof of another tenant replaces it),
#: ``stale`` (its tenant is gone, or it stayed unproven past the pending time: anyone may
#: replace it).
Standing = Literal["verified", "pending", "stale"]

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
    """The proof expected for ``host`` claimed by ``tenant_id``; ``nonce`` is the uid of the
    tenant's namespace (one per life of the id). The token is 32 base32 characters (160 bits),
    the TXT value's tail and the first label of the CNAME target."""
    digest = hashlib.sha256(f"{tenant_id}\n{host}\n{nonce}".encode()).digest()[:20]
    token = base64.b32encode(digest).decode("ascii").lower()
    return Challenge(
        host=host,
        txt_name=f"{CHALLENGE_LABEL}.{host}",
        txt_value=TOKEN_PREFIX + token,
        cname_target=f"{token}.{tenant_id}.{_domain(base_domain)}",
    )


def proven(expected: Challenge, txt_values: Iterable[str], cname: str | None) -> bool:
    """Whether the records found prove control: the exact TXT value, or the CNAME to the
    claimant's own target (``<id>.<base>`` alone proves nothing: any later tenant of that id
    would inherit it)."""
    if any(value.strip() == expected.txt_value for value in txt_values):
        return True
    if cname:
        try:
            return canonical_host(cname) == expected.cname_target
        except ValueError:
            return False
    return False


def standing(
    *, holder_alive: bool, verified_by_holder: bool, since: datetime, now: datetime,
    pending_hours: float,
) -> Standing:  # fmt: skip
    """Where a claim stands (see ``Standing``): ``holder_alive`` is False when the tenant that
    claimed is gone (no namespace, or a new namespace of the same id); ``since`` is when that
    tenant first claimed the host."""
    if not holder_alive:
        return "stale"
    if verified_by_holder:
        return "verified"
    if now - since >= timedelta(hours=pending_hours):
        return "stale"
    return "pending"


def first_claims(raw: str | None) -> dict[str, str]:
    """The ``FIRST_CLAIMS_ANNOTATION`` value as ``{host: ISO time}`` ({} when absent or bad)."""
    if not raw:
        return {}
    try:
        value = json.loads(raw)
    except ValueError:
        return {}
    if not isinstance(value, dict):
        return {}
    return {str(k): str(v) for k, v in value.items() if isinstance(v, str)}


def first_claim_since(history: Mapping[str, str], host: str, now: datetime) -> datetime:
    """When the tenant first claimed ``host``: the remembered time if it is younger than
    ``FIRST_CLAIM_MEMORY_DAYS``, else ``now`` (a new claim)."""
    try:
        since = datetime.fromisoformat(history[host])
    except (KeyError, ValueError):
        return now
    if since.tzinfo is None or since > now:
        return now
    if now - since > timedelta(days=FIRST_CLAIM_MEMORY_DAYS):
        return now
    return since


def remember_first_claim(
    history: Mapping[str, str], host: str, since: datetime, now: datetime
) -> dict[str, str] | None:
    """``history`` with ``host`` claimed first at ``since`` and forgotten entries dropped
    (older than ``FIRST_CLAIM_MEMORY_DAYS``; beyond ``FIRST_CLAIM_MEMORY_MAX`` hosts, the
    oldest); None when nothing changes."""
    kept: dict[str, datetime] = {}
    for name, raw in history.items():
        try:
            when = datetime.fromisoformat(raw)
        except ValueError:
            continue
        if when.tzinfo is not None and now - when <= timedelta(days=FIRST_CLAIM_MEMORY_DAYS):
            kept[name] = when
    kept[host] = since
    newest = sorted(kept.items(), key=lambda item: item[1], reverse=True)
    out = {name: when.isoformat() for name, when in newest[:FIRST_CLAIM_MEMORY_MAX]}
    return None if out == dict(history) else out


def live_domains(custom_domains: Sequence[str], verified: Iterable[str]) -> list[str]:
    """The custom domains that are routed: the verified ones, in the spec's order."""
    done = set(verified)
    return [d for d in custom_domains if d in done]


#: First wait (seconds) before the operator looks again for an unproven custom domain's DNS
#: record; doubled after each check that found none, at most ``DOMAIN_CHECK_MAX_SECONDS``.
DOMAIN_CHECK_SECONDS = 60.0
DOMAIN_CHECK_MAX_SECONDS = 3600.0


def next_domain_check(failed_checks: int, now: datetime) -> datetime:
    """When to look again after ``failed_checks`` (>= 1) checks found no proof: 1, 2, 4...
    minutes, at most an hour (a published record is seen within that; asking for a reconcile
    looks at once)."""
    wait = DOMAIN_CHECK_SECONDS * 2 ** max(failed_checks - 1, 0)
    return now + timedelta(seconds=min(wait, DOMAIN_CHECK_MAX_SECONDS))


def domain_check_due(entry: Mapping[str, object] | None, now: datetime, requested: bool) -> bool:
    """Whether an unproven domain's DNS proof is to be looked for now: asked for (a reconcile
    request not handled yet), never checked, or its ``nextCheckAt`` (ISO 8601) has come."""
    if requested or not entry:
        return True
    raw = entry.get("nextCheckAt")
    if not isinstance(raw, str) or not raw:
        return True
    try:
        when = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        return True
    return when.tzinfo is None or now >= when
