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

The rules that need no cluster (canonical form, the platform's own names) are in
``saasodoo.core.domains``; a claimed domain is only routed once proven through DNS
(``Domains.prove``), then it joins the spec's ``verified_domains``.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cached_property
from typing import Any, Literal

from saasodoo.adapters.dns import Resolver
from saasodoo.adapters.kube import ConfigMap, Kube, Namespace
from saasodoo.core.domains import (
    Challenge,
    challenge,
    check_custom_domains,
    claim_name,
    proven,
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
from saasodoo.errors import Conflict, NotFound
from saasodoo.settings import Settings

log = logging.getLogger(__name__)

#: Label that marks the platform's domain claims.
CLAIM_COMPONENT = "domain-claim"

State = Literal["verified", "pending", "unclaimed", "taken"]


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
        """The rules, then whether another tenant holds one of the hosts (HostTaken), without
        changing anything: the early answer of the API. The claim itself decides races."""
        self.check_rules(spec)
        for i, host in enumerate(spec.custom_domains):
            claim = self.kube.read_configmap(self.namespace, claim_name(host))
            if claim is not None and _holder(claim) != spec.id and not self._stale(claim):
                raise _taken(i, host)

    def claims_of(self, tenant_id: str) -> dict[str, ConfigMap]:
        """The tenant's claims by host (one list request)."""
        selector = f"{TENANT_LABEL}={tenant_id},{COMPONENT_LABEL}={CLAIM_COMPONENT}"
        return {
            c.data.get("host", ""): c for c in self.kube.list_configmaps(self.namespace, selector)
        }

    def states(self, spec: TenantSpec) -> list[DomainState]:
        """Each custom domain of ``spec``: verified (routed), pending with the record to
        create, unclaimed (a tenant from before claims existed; the next update or ensure
        claims it) or taken (another tenant claimed it since: drop it)."""
        claims = self.claims_of(spec.id) if spec.custom_domains else {}
        out = []
        for host in spec.custom_domains:
            claim = claims.get(host)
            expected = self._challenge(spec.id, host, claim) if claim else None
            if host in spec.verified_domains:
                out.append(DomainState(host, "verified", expected))
            elif claim is not None:
                out.append(DomainState(host, "pending", expected))
            elif self._held_by_other(spec.id, host):
                out.append(DomainState(host, "taken"))
            else:
                out.append(DomainState(host, "unclaimed"))
        return out

    def _held_by_other(self, tenant_id: str, host: str) -> bool:
        claim = self.kube.read_configmap(self.namespace, claim_name(host))
        return claim is not None and _holder(claim) != tenant_id

    # -- claiming and releasing ------------------------------------------------------------

    def claim(self, tenant_id: str, hosts: Sequence[str]) -> list[str]:
        """Claim ``hosts`` for ``tenant_id`` (whose namespace must exist); returns the hosts
        newly claimed. A platform name raises InvalidInput; a host of another tenant releases
        the new claims again and raises HostTaken, both naming ``custom_domains[i]``."""
        if not hosts:
            return []
        check_custom_domains(
            tenant_id, hosts, self.settings.base_domain, self.settings.reserved_domains
        )
        owner = self.kube.read_namespace(namespace_for(tenant_id))
        if owner is None:
            raise NotFound(f"tenant '{tenant_id}' not found")
        created: list[str] = []
        try:
            for i, host in enumerate(hosts):
                outcome = self._claim_one(tenant_id, host, owner)
                if outcome == "taken":
                    raise _taken(i, host)
                if outcome == "created":
                    created.append(host)
        except BaseException:
            self.release(tenant_id, created)
            raise
        return created

    def _claim_one(
        self, tenant_id: str, host: str, owner: Namespace
    ) -> Literal["created", "held", "taken"]:
        name = claim_name(host)
        labels = {
            TENANT_LABEL: tenant_id,
            COMPONENT_LABEL: CLAIM_COMPONENT,
            MANAGED_BY_LABEL: MANAGED_BY,
        }
        for _ in range(3):
            try:
                self.kube.create_configmap(
                    self.namespace,
                    name,
                    labels=labels,
                    data={"host": host, "tenant": tenant_id},
                    owner=owner,
                )
                return "created"
            except Conflict:
                pass
            claim = self.kube.read_configmap(self.namespace, name)
            if claim is None:
                continue  # released meanwhile: try again
            if _holder(claim) == tenant_id and (not claim.owners or owner.uid in claim.owners):
                return "held"
            if _holder(claim) == tenant_id or self._stale(claim):
                # Left by a deleted tenant (or an earlier tenant of the same id), or pending
                # for too long: replace it, unless someone replaced it first (uid precondition).
                log.warning("replacing the stale claim of %s (tenant %s)", host, _holder(claim))
                self.kube.delete_configmap(self.namespace, name, uid=claim.uid)
                continue
            return "taken"
        raise Conflict(f"'{host}': its claim keeps changing; try again")

    def _stale(self, claim: ConfigMap) -> bool:
        """Whether the claim may be replaced: its tenant is gone (no namespace, or another
        namespace than the one that claimed), or it never proved control of the host within
        ``Settings.domain_pending_hours`` (an abandoned or squatted claim)."""
        ns = self.kube.read_namespace(namespace_for(_holder(claim)))
        if ns is None:
            return True
        if claim.owners and ns.uid not in claim.owners:
            return True
        return self._expired(claim, ns)

    def _expired(self, claim: ConfigMap, holder: Namespace) -> bool:
        if claim.created is None:
            return False
        age = datetime.now(UTC) - claim.created
        if age < timedelta(hours=self.settings.domain_pending_hours):
            return False
        raw = holder.annotations.get(SPEC_ANNOTATION)
        try:
            verified = json.loads(raw).get("verified_domains") or [] if raw else []
        except (ValueError, AttributeError):
            return False
        return claim.data.get("host") not in verified

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

    def _challenge(self, tenant_id: str, host: str, claim: ConfigMap) -> Challenge:
        return challenge(tenant_id, host, claim.uid, self.settings.base_domain)

    def prove(self, spec: TenantSpec, host: str) -> Challenge:
        """Claim ``host`` for the tenant if needed, then look for the proof in DNS; raises
        NotVerified naming the records to create when neither is there."""
        if host not in spec.custom_domains:
            raise NotFound(f"tenant '{spec.id}' has no custom domain '{host}'")
        self.claim(spec.id, spec.custom_domains)  # held already, normally: no change
        claim = self.kube.read_configmap(self.namespace, claim_name(host))
        if claim is None or _holder(claim) != spec.id:
            raise Conflict(f"'{host}': its claim changed meanwhile; try again")
        expected = self._challenge(spec.id, host, claim)
        txt = self.resolver.txt(expected.txt_name)
        cname = self.resolver.cname(host)
        if not proven(expected, txt, cname):
            raise NotVerified(
                f"custom domain '{host}' is not verified yet: create the TXT record "
                f'{expected.txt_name} with the value "{expected.txt_value}" (or make {host} '
                f"a CNAME of {expected.cname_target}), then verify again"
            )
        return expected


def _holder(claim: ConfigMap) -> str:
    return str(claim.labels.get(TENANT_LABEL, ""))


def _taken(index: int, host: str) -> HostTaken:
    return HostTaken(f"custom_domains[{index}]: '{host}' belongs to another tenant")
