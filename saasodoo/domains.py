"""Custom domains platform-wide: one claim per host in the cluster, and the proof of control.

A host belongs to at most one tenant. The claim is a ConfigMap in the platform's namespace
(``Settings.system_namespace``, default ``saasodoo-system``) named after a hash of the
canonical host (``saasodoo.core.domains.claim_name``), labelled with the tenant and owned
by the tenant's namespace (``ownerReferences``: deleting the namespace, even by hand, lets
the garbage collector drop its claims). It is created with a plain create, which the API
server lets succeed exactly once: of two requests racing for one host, one wins and the
other gets a 409. Claims are taken before any helm install/upgrade that could route the
host and released after the release stopped routing it (a domain dropped by an update, a
deleted tenant). A claim whose tenant namespace is gone (or is a new namespace of the same
id) is stale and replaced.

Another tenant's claim of a host refuses it (HostTaken) only when that tenant proved the
host (it is in its ``verified_domains``). An unproven claim does not block: the host may be
added to another tenant's spec (state ``contested``), and whichever tenant publishes its
own DNS proof first wins the claim (``prove``): a squatter cannot keep a host its owner
proves. Unproven claims expire after ``Settings.domain_pending_hours`` counted from the
tenant's first claim of the host (``core.domains.FIRST_CLAIMS_ANNOTATION``).

The rules that need no cluster (canonical form, the platform's own names, the proof) are in
``saasodoo.core.domains``; a claimed domain is only routed once proven through DNS
(``Domains.prove``), then it joins the spec's ``verified_domains``.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cached_property
from typing import Any, Literal

from saasodoo.adapters.dns import Resolver
from saasodoo.adapters.kube import ConfigMap, Kube, Namespace
from saasodoo.adapters.records import RecordStore
from saasodoo.core.domains import (
    FIRST_CLAIMS_ANNOTATION,
    Challenge,
    Standing,
    challenge,
    check_custom_domains,
    claim_name,
    first_claim_since,
    first_claims,
    proven,
    remember_first_claim,
    standing,
)
from saasodoo.core.record import SPEC_ANNOTATION
from saasodoo.core.spec import (
    COMPONENT_LABEL,
    MANAGED_BY,
    MANAGED_BY_LABEL,
    TENANT_LABEL,
    TenantSpec,
    namespace_for,
)
from saasodoo.errors import Conflict, NotFound, SaasodooError
from saasodoo.settings import Settings

log = logging.getLogger(__name__)

#: Label that marks the platform's domain claims.
CLAIM_COMPONENT = "domain-claim"

State = Literal["verified", "pending", "contested", "unclaimed", "taken"]


class HostTaken(Conflict):
    """The host is claimed by another tenant (which is never named). Exit code 4, 409."""


class NotVerified(Conflict):
    """The DNS records that prove control of a domain were not found. Exit code 4, 409."""


@dataclass(frozen=True)
class DomainState:
    """One custom domain of a tenant: routed (verified), or what proves control of it."""

    host: str
    state: State
    challenge: Challenge | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "host": self.host,
            "state": self.state,
            "record": self.challenge.to_dict() if self.challenge else None,
        }


class Domains:
    """Claims of custom domains in one cluster, and their verification through DNS."""

    def __init__(
        self,
        settings: Settings,
        kube: Kube | Callable[[], Kube],
        resolver: Resolver | None = None,
    ) -> None:
        """``kube``: the adapter, or a function that builds it on first use (the pure
        rules need no cluster)."""
        self.settings = settings
        self._kube = kube
        self._resolver = resolver
        self.namespace = settings.system_namespace

    @property
    def kube(self) -> Kube:
        if not isinstance(self._kube, Kube):
            self._kube = self._kube()
        return self._kube

    @cached_property
    def resolver(self) -> Resolver:
        return self._resolver or Resolver(self.settings)

    # -- rules and reads -----------------------------------------------------------------

    def check_rules(self, spec: TenantSpec) -> None:
        """InvalidInput naming ``custom_domains[i]`` for a platform name (no cluster call)."""
        check_custom_domains(
            spec.id, spec.custom_domains, self.settings.base_domain, self.settings.reserved_domains
        )

    def check(self, spec: TenantSpec) -> None:
        """The rules, then whether another tenant proved one of the hosts (HostTaken), or
        holds one this spec routes already (verified here, e.g. by a rollback), without
        changing anything: the early answer of the API. The claim itself decides races."""
        self.check_rules(spec)
        for i, host in enumerate(spec.custom_domains):
            claim = self.kube.read_configmap(self.namespace, claim_name(host))
            if claim is None or _holder(claim) == spec.id:
                continue
            held = self._standing(claim)
            if held == "verified" or (held == "pending" and host in spec.verified_domains):
                raise _taken(i, host)

    def claims_of(self, tenant_id: str) -> dict[str, ConfigMap]:
        """The tenant's claims by host (one list request)."""
        selector = f"{TENANT_LABEL}={tenant_id},{COMPONENT_LABEL}={CLAIM_COMPONENT}"
        return {
            c.data.get("host", ""): c for c in self.kube.list_configmaps(self.namespace, selector)
        }

    def states(self, spec: TenantSpec) -> list[DomainState]:
        """Each custom domain of ``spec``: verified (routed), pending (claimed, with the
        record to create), contested (another tenant claimed it without proof: the record
        wins it over), unclaimed (not claimed yet, e.g. a tenant from before claims existed:
        the next update or ensure claims it) or taken (another tenant proved it: drop it)."""
        if not spec.custom_domains:
            return []
        claims = self.claims_of(spec.id)
        owner = self.kube.read_namespace(namespace_for(spec.id))
        nonce = owner.uid if owner is not None else ""
        out = []
        for host in spec.custom_domains:
            expected = challenge(spec.id, host, nonce, self.settings.base_domain)
            if host in spec.verified_domains:
                out.append(DomainState(host, "verified", expected))
            elif host in claims:
                out.append(DomainState(host, "pending", expected))
            else:
                held = self._held_by_other(spec.id, host)
                if held == "verified":
                    out.append(DomainState(host, "taken"))
                elif held == "pending":
                    out.append(DomainState(host, "contested", expected))
                else:
                    out.append(DomainState(host, "unclaimed", expected))
        return out

    def _held_by_other(self, tenant_id: str, host: str) -> Standing | None:
        claim = self.kube.read_configmap(self.namespace, claim_name(host))
        if claim is None or _holder(claim) == tenant_id:
            return None
        return self._standing(claim)

    # -- claiming and releasing ------------------------------------------------------------

    def claim(
        self,
        tenant_id: str,
        hosts: Sequence[str],
        *,
        routed: Iterable[str] = (),
        proven: Iterable[str] = (),
    ) -> list[str]:
        """Claim ``hosts`` for ``tenant_id`` (whose namespace must exist); returns the hosts
        newly claimed. A platform name raises InvalidInput. A host another tenant proved, or
        one in ``routed`` (hosts the caller is about to route) that another tenant claims at
        all, releases the new claims again and raises HostTaken, both naming
        ``custom_domains[i]``. Another tenant's unproven claim is left alone (the host stays
        contested) unless the host is in ``proven`` (this tenant's proof was just found in
        DNS): then it is replaced."""
        if not hosts:
            return []
        check_custom_domains(
            tenant_id, hosts, self.settings.base_domain, self.settings.reserved_domains
        )
        owner = self.kube.read_namespace(namespace_for(tenant_id))
        if owner is None:
            raise NotFound(f"tenant '{tenant_id}' not found")
        routed, proven = set(routed), set(proven)
        history = first_claims(owner.annotations.get(FIRST_CLAIMS_ANNOTATION))
        created: list[str] = []
        try:
            for i, host in enumerate(hosts):
                outcome = self._claim_one(tenant_id, host, owner, history, proven=host in proven)
                if outcome == "taken" or (outcome == "contested" and host in routed):
                    raise _taken(i, host)
                if outcome == "created":
                    created.append(host)
        except BaseException:
            self.release(tenant_id, created)
            raise
        return created

    def _claim_one(
        self,
        tenant_id: str,
        host: str,
        owner: Namespace,
        history: dict[str, str],
        *,
        proven: bool = False,
    ) -> Literal["created", "held", "contested", "taken"]:
        """One host: created, held already, contested (another tenant's unproven claim
        stays) or taken (another tenant proved it). ``history``: the tenant's first claims
        (``FIRST_CLAIMS_ANNOTATION``), updated in place when a new one is recorded."""
        name = claim_name(host)
        labels = {
            TENANT_LABEL: tenant_id,
            COMPONENT_LABEL: CLAIM_COMPONENT,
            MANAGED_BY_LABEL: MANAGED_BY,
        }
        now = datetime.now(UTC)
        since = first_claim_since(history, host, now)
        for _ in range(3):
            try:
                self.kube.create_configmap(
                    self.namespace,
                    name,
                    labels=labels,
                    data={"host": host, "tenant": tenant_id, "since": since.isoformat()},
                    owner=owner,
                )
            except Conflict:
                pass
            else:
                self._remember(owner, history, host, since, now)
                return "created"
            claim = self.kube.read_configmap(self.namespace, name)
            if claim is None:
                continue  # released meanwhile: try again
            if _holder(claim) == tenant_id and (not claim.owners or owner.uid in claim.owners):
                return "held"
            held = "stale" if _holder(claim) == tenant_id else self._standing(claim)
            if held == "stale" or (held == "pending" and proven):
                # Left by a deleted tenant (or an earlier tenant of the same id), pending for
                # too long, or unproven while this tenant's proof was found: replace it,
                # unless someone replaced it first (uid precondition).
                log.warning("replacing the %s claim of %s (tenant %s)", held, host, _holder(claim))
                self.kube.delete_configmap(self.namespace, name, uid=claim.uid)
                continue
            return "taken" if held == "verified" else "contested"
        raise Conflict(f"'{host}': its claim keeps changing; try again")

    def _remember(
        self, owner: Namespace, history: dict[str, str], host: str, since: datetime, now: datetime
    ) -> None:
        """Record on the tenant's namespace when it first claimed ``host`` (best effort: the
        claim itself carries the time too)."""
        updated = remember_first_claim(history, host, since, now)
        if updated is None:
            return
        try:
            self.kube.patch_namespace(
                owner.name, annotations={FIRST_CLAIMS_ANNOTATION: json.dumps(updated)}
            )
        except SaasodooError:
            log.warning("could not record the first claim of %s on %s", host, owner.name)
        history.clear()
        history.update(updated)

    def _standing(self, claim: ConfigMap) -> Standing:
        """Where another tenant's claim stands (``core.domains.standing``): its tenant gone
        (no namespace, or another namespace than the one that claimed) is stale; proved by
        its tenant, verified; else pending until ``Settings.domain_pending_hours`` after its
        tenant first claimed the host."""
        ns = RecordStore(lambda: self.kube, self.namespace).read(namespace_for(_holder(claim)))
        alive = ns is not None and not (claim.owners and ns.uid not in claim.owners)
        verified = False
        if ns is not None:
            raw = ns.record.get(SPEC_ANNOTATION)
            try:
                verified = claim.data.get("host") in (
                    (json.loads(raw).get("verified_domains") or []) if raw else []
                )
            except (ValueError, AttributeError, TypeError):
                verified = True  # unreadable: never take over what may be routed
        now = datetime.now(UTC)
        since = _since(claim) or now
        return standing(
            holder_alive=alive,
            verified_by_holder=verified,
            since=since,
            now=now,
            pending_hours=self.settings.domain_pending_hours,
        )

    def release(self, tenant_id: str, hosts: Iterable[str]) -> None:
        """Drop ``tenant_id``'s claims of ``hosts`` (other tenants' claims are left alone)."""
        for host in hosts:
            claim = self.kube.read_configmap(self.namespace, claim_name(host))
            if claim is not None and _holder(claim) == tenant_id:
                self.kube.delete_configmap(self.namespace, claim.name, uid=claim.uid)

    def release_except(self, tenant_id: str, keep: Iterable[str]) -> list[str]:
        """Drop the tenant's claims of every host not in ``keep``; returns the hosts dropped."""
        kept = set(keep)
        dropped = []
        for host, claim in self.claims_of(tenant_id).items():
            if host not in kept:
                self.kube.delete_configmap(self.namespace, claim.name, uid=claim.uid)
                dropped.append(host)
        return dropped

    # -- proof of control -----------------------------------------------------------------------

    def challenge_for(self, tenant_id: str, host: str) -> Challenge:
        """The records that prove ``host`` for the tenant (NotFound without its namespace)."""
        owner = self.kube.read_namespace(namespace_for(tenant_id))
        if owner is None:
            raise NotFound(f"tenant '{tenant_id}' not found")
        return challenge(tenant_id, host, owner.uid, self.settings.base_domain)

    def prove(self, spec: TenantSpec, host: str) -> Challenge:
        """Look for the tenant's proof of ``host`` in DNS, then claim it (replacing another
        tenant's unproven claim); raises NotVerified naming the records to create when
        neither is there, HostTaken when another tenant proved the host first."""
        if host not in spec.custom_domains:
            raise NotFound(f"tenant '{spec.id}' has no custom domain '{host}'")
        expected = self.challenge_for(spec.id, host)
        txt = self.resolver.txt(expected.txt_name)
        cname = self.resolver.cname(host)
        if not proven(expected, txt, cname):
            raise NotVerified(
                f"custom domain '{host}' is not verified yet: create the TXT record "
                f'{expected.txt_name} with the value "{expected.txt_value}" (or make {host} '
                f"a CNAME of {expected.cname_target}), then verify again"
            )
        self.claim(spec.id, [host], proven=[host])
        claim = self.kube.read_configmap(self.namespace, claim_name(host))
        if claim is None or _holder(claim) != spec.id:
            raise Conflict(f"'{host}': its claim changed meanwhile; try again")
        return expected


def _since(claim: ConfigMap) -> datetime | None:
    """When the claim's tenant first claimed the host (older claims: their creation)."""
    raw = claim.data.get("since")
    if raw:
        try:
            since = datetime.fromisoformat(raw)
        except ValueError:
            since = None
        if since is not None and since.tzinfo is not None:
            return since
    return claim.created


def _holder(claim: ConfigMap) -> str:
    return str(claim.labels.get(TENANT_LABEL, ""))


def _taken(index: int, host: str) -> HostTaken:
    return HostTaken(f"custom_domains[{index}]: '{host}' belongs to another tenant")
