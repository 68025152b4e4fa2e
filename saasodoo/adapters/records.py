"""Where each tenant's record is kept, and reading and writing it there (the codec is
``saasodoo.core.record``; the lock and its holder are ``saasodoo.record``).

One place per tenant, chosen when it is read or written:

- ``OdooTenantStore``: the tenant has an OdooTenant (in the platform's namespace, named by
  its id). The record is its ``status.record``, written by merge patches of the status
  subresource naming only the record's fields, so the controller's condition writes and
  these never undo each other. The namespace carries its labels and no record.
- ``NamespaceStore``: the tenant has no OdooTenant (``--local`` on a cluster without the
  operator or without the CRD; a tenant not adopted yet). The record is annotations of its
  namespace ``tenant-<id>``, under the entries' own keys.

A tenant that has an OdooTenant whose status holds no record yet, and a record on its
namespace (adopted by a version that kept it there), has it moved (``RecordStore.move``:
the OdooTenant written first, the namespace's annotations removed last, so a rerun after a
crash between the two converges) before anything else is written; until then it is read
from the namespace. Reads return the namespace with ``Namespace.record`` filled.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any, Protocol

from saasodoo.adapters.kube import Kube, Namespace
from saasodoo.adapters.resources import TenantResources
from saasodoo.core import record as codec
from saasodoo.core.spec import NAMESPACE_PREFIX, TENANT_LABEL, namespace_for
from saasodoo.errors import NotFound, SaasodooError

log = logging.getLogger(__name__)


def held_by(obj: Mapping[str, Any] | None) -> Mapping[str, Any] | None:
    """The record an OdooTenant holds (its ``status.record`` when it names a spec), else
    None."""
    found = ((obj or {}).get("status") or {}).get(codec.STATUS_RECORD)
    return found if isinstance(found, dict) and found.get("spec") else None


def tenant_of(namespace: str) -> str:
    return namespace.removeprefix(NAMESPACE_PREFIX)


@dataclass
class StatusRider:
    """The operator's status of a tenant riding on the writes of its record during one
    operation, so each takes one request instead of two (on a fleet upgrade, the status
    writes of whole OdooTenants were the operator's largest cost). ``status`` (made from
    ``previous``, the status as read: a merge patch that drops what ``status`` lacks) is
    written in the same request as the next write of the record, then cleared;
    ``written`` is the OdooTenant as the last record write carrying this answered it (None:
    none did), for the caller to go on with without reading it again. A tenant whose
    record is on its namespace has ``status`` written in a request of its own."""

    status: dict[str, Any] | None = None
    previous: dict[str, Any] | None = None
    written: dict[str, Any] | None = None


class Store(Protocol):
    """One place where a tenant's record is kept."""

    def write(self, namespace: str, patch: codec.Patch, rider: StatusRider | None = None) -> None:
        """Apply ``patch`` (entries set, or removed with None) to the tenant's record, and
        the status ``rider`` carries (``StatusRider``)."""

    def create(
        self, namespace: str, tenant_id: str, labels: dict[str, str], entries: dict[str, str]
    ) -> None:
        """Make the tenant's namespace (``labels``) with its record exactly ``entries``."""


class NamespaceStore:
    """The record in annotations of the tenant's namespace."""

    def __init__(self, kube: Kube, tenants: TenantResources) -> None:
        self.kube = kube
        self.tenants = tenants

    def write(self, namespace: str, patch: codec.Patch, rider: StatusRider | None = None) -> None:
        self.kube.patch_namespace(namespace, annotations=patch)
        if rider is not None and rider.status is not None:
            # No record on the OdooTenant: its status in a request of its own.
            rider.written = self.tenants.patch_status(tenant_of(namespace), rider.status,
                                                      rider.previous or {})  # fmt: skip
            rider.status, rider.previous = None, None

    def create(
        self, namespace: str, tenant_id: str, labels: dict[str, str], entries: dict[str, str]
    ) -> None:
        # The record is taken with the namespace, in one request.
        self.kube.create_tenant_namespace(namespace, tenant_id, labels, annotations=entries)


class OdooTenantStore:
    """The record in the tenant's OdooTenant's ``status.record``."""

    def __init__(self, kube: Kube, tenants: TenantResources) -> None:
        self.kube = kube
        self.tenants = tenants

    def write(self, namespace: str, patch: codec.Patch, rider: StatusRider | None = None) -> None:
        """The record's fields of ``patch`` written to ``status.record`` (with the status
        ``rider`` carries, in the same request); SaasodooError when the API server did not
        keep them: an OdooTenant CRD older than this saasodoo (no ``status.record`` in its
        schema) prunes the field silently, and a record moved there would then be lost with
        the namespace's annotations removed after it."""
        fields = codec.status_patch(patch)
        name = tenant_of(namespace)
        # A status once written is not sent again: a merge patch of nothing from its
        # ``previous`` would drop every field.
        status, previous = (
            (rider.status, rider.previous or {})
            if rider is not None and rider.status is not None
            else ({}, {})
        )
        written = self.tenants.patch_status(name, status, previous, record=fields)
        if rider is not None:
            rider.status, rider.previous, rider.written = None, None, written
        kept = ((written.get("status") or {}).get(codec.STATUS_RECORD)) or {}
        lost = sorted(k for k, v in fields.items() if v is not None and k not in kept)
        if lost:
            raise SaasodooError(
                f"OdooTenant {name}: the API server dropped status.record "
                f"({', '.join(lost)}): the OdooTenant CRD in the cluster is older than this "
                "saasodoo. Apply this version's CRDs first (saasodoo operator run "
                "--install-crds, or upgrade the platform chart); nothing was moved"
            )

    def create(
        self, namespace: str, tenant_id: str, labels: dict[str, str], entries: dict[str, str]
    ) -> None:
        # The record (with the create's lock) first: a crash before the namespace is made
        # leaves a record no view reads (there is no namespace) and the next create
        # replaces whole.
        self.write(namespace, codec.moved_patch(entries))
        self.kube.create_tenant_namespace(namespace, tenant_id, labels, annotations={})


class RecordStore:
    """The tenant records of one cluster: read with the namespace they describe, written
    where each tenant's is kept (module docstring). ``kube`` is called on first use;
    OdooTenants are looked for in ``system_namespace``."""

    def __init__(self, kube: Callable[[], Kube], system_namespace: str) -> None:
        self._kube = kube
        self.system_namespace = system_namespace

    @property
    def kube(self) -> Kube:
        return self._kube()

    @property
    def tenants(self) -> TenantResources:
        return TenantResources(self.kube, self.system_namespace)

    # -- reading ------------------------------------------------------------------------

    def odootenant(self, tenant_id: str) -> dict[str, Any] | None:
        """The tenant's OdooTenant; None when it has none or the cluster has no such
        resource (its CRD is not installed: the API server answers 404 alike)."""
        return self.tenants.get(tenant_id)

    @staticmethod
    def attach(ns: Namespace, obj: Mapping[str, Any] | None) -> Namespace:
        """``ns`` with its record, given the tenant's OdooTenant ``obj`` as read (None: it
        has none): the OdooTenant's when it holds one, else the namespace's annotations'.
        No request."""
        held = held_by(obj)
        if held is not None:
            return replace(ns, record=codec.entries_of_status(held), record_held=True)
        return replace(ns, record=codec.entries_of_annotations(ns.annotations), record_held=False)

    def read(self, namespace: str) -> Namespace | None:
        """The namespace ``namespace`` with its record (None when it does not exist): two
        requests for a tenant namespace, one otherwise."""
        ns = self.kube.read_namespace(namespace)
        if ns is None:
            return None
        tenant_id = ns.labels.get(TENANT_LABEL)
        return self.attach(ns, self.odootenant(tenant_id) if tenant_id else None)

    def list(self, selector: str | None = None) -> list[Namespace]:
        """The tenant namespaces (``selector`` narrows them down) with their records: two
        list requests whatever their number."""
        namespaces = self.kube.list_tenant_namespaces(selector)
        objects = self.list_odootenants()
        return [self.attach(ns, objects.get(ns.labels.get(TENANT_LABEL, ""))) for ns in namespaces]

    def list_odootenants(self) -> dict[str, dict[str, Any]]:
        """Every OdooTenant by name ({} when the cluster has no such resource)."""
        try:
            items = self.tenants.list().get("items") or []
        except NotFound:  # no such resource: the CRD is not installed
            return {}
        return {obj["metadata"]["name"]: obj for obj in items}

    # -- where to write -----------------------------------------------------------------

    def store(self, namespace: str, known: Namespace | None = None) -> Store:
        """Where the record of the tenant of ``namespace`` is kept now: its OdooTenant's
        status when it has one (a record still on the namespace is moved there first),
        else the namespace. ``known``: the namespace as read with its record (``read``,
        ``attach``); one whose record its OdooTenant held is answered without a request (a
        record never leaves its OdooTenant), else the OdooTenant is read."""
        if known is not None and known.record_held:
            return OdooTenantStore(self.kube, self.tenants)
        tenant_id = tenant_of(namespace)
        obj = self.odootenant(tenant_id)
        if obj is None:
            return NamespaceStore(self.kube, self.tenants)
        if held_by(obj) is None:
            self.move(tenant_id, obj)
        return OdooTenantStore(self.kube, self.tenants)

    def write(
        self,
        namespace: str,
        patch: codec.Patch,
        labels: codec.Patch | None = None,
        known: Namespace | None = None,
        rider: StatusRider | None = None,
    ) -> None:
        """Apply ``patch`` to the tenant's record where it is kept, and ``labels`` to the
        namespace (in the same request when the record is on it). ``known``: the namespace
        as read with its record, when nothing changed its labels since: where the record is
        kept is then known (``store``), and labels it has already are not written again.
        ``rider``: the operator's status to write with it (``StatusRider``)."""
        where = self.store(namespace, known)
        if isinstance(where, NamespaceStore) and labels and rider is None:
            self.kube.patch_namespace(namespace, labels=labels, annotations=patch)
            return
        where.write(namespace, patch, rider)
        if labels and (known is None or any(known.labels.get(k) != v for k, v in labels.items())):
            self.kube.patch_namespace(namespace, labels=labels)

    def create(
        self, namespace: str, tenant_id: str, labels: dict[str, str], entries: dict[str, str]
    ) -> None:
        """Make the tenant's namespace with its record (``entries``) where it is kept."""
        obj = self.odootenant(tenant_id)
        where: Store = (
            NamespaceStore(self.kube, self.tenants)
            if obj is None
            else OdooTenantStore(self.kube, self.tenants)
        )
        where.create(namespace, tenant_id, labels, entries)

    # -- moving a record onto its OdooTenant --------------------------------------------

    def move(
        self,
        tenant_id: str,
        obj: Mapping[str, Any] | None = None,
        ns: Namespace | None = None,
    ) -> bool:
        """Move the record on the tenant's namespace onto its OdooTenant (``obj``, ``ns``:
        as read, when the caller has them): the OdooTenant's status written first (unless
        it holds a record already: a move interrupted after it), the namespace's
        annotations removed last; no helm call. True when something was moved or removed;
        False when there is nothing to move (no namespace record, no namespace, no
        OdooTenant)."""
        if ns is None:
            ns = self.kube.read_namespace(namespace_for(tenant_id))
        if obj is None:
            obj = self.odootenant(tenant_id)
        if ns is None or obj is None:
            return False
        entries = codec.entries_of_annotations(ns.annotations)
        if not entries:
            return False
        if held_by(obj) is None:
            if codec.SPEC_ANNOTATION not in entries:
                return False  # no spec: not a saasodoo record to move
            OdooTenantStore(self.kube, self.tenants).write(ns.name, codec.moved_patch(entries))
            log.info("tenant %s: its record moved from namespace %s to its OdooTenant",
                     tenant_id, ns.name)  # fmt: skip
        self.kube.patch_namespace(ns.name, annotations=codec.removal_patch())
        return True
