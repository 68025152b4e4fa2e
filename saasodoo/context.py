"""The context: what every operation on tenants runs with, built once by an entry point.

A ``Context`` holds the ``Settings``, the plans ``Catalog`` (read when it is built) and
the values' ``Platform``, and builds the adapters on first use: ``kube`` (the cluster),
``helm`` (the helm binary), ``domains`` (the claims of custom domains); ``record`` (each
tenant's record, on its OdooTenant or its namespace) and ``release`` (every helm call that
changes a release) are made at once but reach the cluster and helm only when called. So
``render`` needs no cluster and ``list`` no helm.

Who builds it: the entry points (the CLI, the API app, the operator's run, the bench), then
pass it down to the lifecycle (``saasodoo.tenants.Tenants``), the reconciler, the fleet,
gitops, the OdooTenants and operation requests and the operator. Tests build it with fakes
(``helm``, ``kube``, ``catalog``).

What it is not: no business logic. It decides nothing and checks nothing; it only builds
(``.importlinter`` keeps it from importing the rules of the core).
"""

from __future__ import annotations

from datetime import timedelta
from functools import cached_property

from saasodoo.adapters.catalog import load_catalog
from saasodoo.adapters.helm import Helm
from saasodoo.adapters.kube import Kube
from saasodoo.core.plans import Catalog
from saasodoo.core.record import stale_after
from saasodoo.core.values import Platform
from saasodoo.domains import Domains
from saasodoo.record import TenantRecord
from saasodoo.release import TenantRelease
from saasodoo.settings import Settings


class Context:
    """Settings, plans catalog and platform of one cluster, and its adapters (lazy)."""

    def __init__(
        self,
        settings: Settings,
        *,
        helm: Helm | None = None,
        kube: Kube | None = None,
        catalog: Catalog | None = None,
    ) -> None:
        """``helm``, ``kube``, ``catalog``: given (tests' fakes, adapters shared with
        another context) or built from ``settings`` (the catalog at once, the adapters on
        first use)."""
        self.settings = settings
        self._helm = helm
        self._kube = kube
        self.catalog = catalog or load_catalog(settings.plans_dir, settings.tenant_values)
        #: Each tenant's record (spec, owner, applied, operation lock), kept on its
        #: OdooTenant or, for a tenant without one, on its namespace.
        self.record = TenantRecord(settings, lambda: self.kube)
        #: Every helm call that changes a release, with its lock and record steps.
        self.release = TenantRelease(
            self.record,
            helm=lambda: self.helm,
            kube=lambda: self.kube,
            domains=lambda: self.domains,
        )
        self.platform = Platform(
            base_domain=settings.base_domain,
            ingress_class=settings.ingress_class,
            storage_class=settings.storage_class,
            node_pool=settings.node_pool,
        )

    @property
    def helm(self) -> Helm:
        if self._helm is None:
            self._helm = Helm(self.settings)
        return self._helm

    @property
    def built_helm(self) -> Helm | None:
        """The Helm adapter if given or built already, else None (none is built)."""
        return self._helm

    @property
    def kube(self) -> Kube:
        if self._kube is None:
            self._kube = Kube(self.settings)
        return self._kube

    @cached_property
    def domains(self) -> Domains:
        """Platform-wide claims of custom domains and their proof (``saasodoo.domains``)."""
        return Domains(self.settings, lambda: self.kube)

    @property
    def stale_after(self) -> timedelta:
        """How long an operation may run: the helm timeout plus the lock's margin. A pending
        release older than that, with no live lock, is locked, not in progress."""
        return stale_after(self.settings.helm_timeout)
