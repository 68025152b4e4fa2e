"""Reading and writing the tenant record (``saasodoo.core.record`` is the codec): the one
place that writes it, takes and releases the operation lock and tells whether a lock's
holder still runs. Where a tenant's record is kept (its OdooTenant's ``status.record``, or
annotations of its namespace for a tenant without one) is ``saasodoo.adapters.records``'
choice, per tenant; nothing here or above it branches on it."""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any, Literal

from saasodoo.adapters.kube import Kube, Namespace
from saasodoo.adapters.records import RecordStore, StatusRider
from saasodoo.core import record as codec
from saasodoo.core.reconcile import Applied, OperationLock, Unfinished, parse_duration
from saasodoo.core.spec import TENANT_LABEL, TenantSpec, check_tenant_id, namespace_for
from saasodoo.core.status import ReleaseInfo
from saasodoo.errors import NotFound
from saasodoo.settings import Settings

log = logging.getLogger(__name__)


class TenantRecord:
    """The tenant record of every tenant of one cluster. ``kube`` is called on first use
    (the context, ``saasodoo.context``, builds its Kube lazily). Every reader takes the
    namespace as ``read``, ``namespace`` or ``list`` return it (``Namespace.record``
    filled); a namespace read otherwise has an empty record."""

    #: Who takes the operation lock: ``host:pid`` by default; the operator sets its Lease
    #: identity (``operator:<identity>``) and ``alive`` (a lock of another operator identity
    #: is dead once this one holds the Lease, whatever host it ran on).
    holder: str | None = None
    alive: Callable[[str], bool | None] | None = None

    def __init__(self, settings: Settings, kube: Callable[[], Kube]) -> None:
        self.settings = settings
        self._kube = kube
        #: Where each tenant's record is kept (``saasodoo.adapters.records``).
        self.store = RecordStore(kube, settings.system_namespace)

    @property
    def kube(self) -> Kube:
        return self._kube()

    # -- reading ------------------------------------------------------------------------

    def read(self, namespace: str) -> Namespace | None:
        """The namespace ``namespace`` with its record; None when it does not exist."""
        return self.store.read(namespace)

    def list(self, selector: str | None = None) -> list[Namespace]:
        """Every tenant namespace (``selector``: a label selector) with its record."""
        return self.store.list(selector)

    def of(self, tenant_id: str, obj: Mapping[str, Any] | None) -> Namespace | None:
        """The namespace of the tenant whose OdooTenant is ``obj`` (as just read; None: it
        has none) with its record, None without a namespace. A record still on the
        namespace (a tenant adopted by an earlier version) is moved onto ``obj`` first
        (``RecordStore.move``, no helm call). One request when nothing moves."""
        raw = self.kube.read_namespace(namespace_for(tenant_id))
        if raw is None:
            return None
        if obj is not None and codec.entries_of_annotations(raw.annotations):
            self.store.move(tenant_id, obj, raw)
            return self.read(raw.name)
        return self.store.attach(raw, obj)

    def attach(self, ns: Namespace, obj: Mapping[str, Any] | None) -> Namespace:
        """``ns`` with the record of the tenant's OdooTenant ``obj`` as just read (None: it
        has none; ``RecordStore.attach``). No request."""
        return self.store.attach(ns, obj)

    def namespace(self, tenant_id: str) -> Namespace:
        """The namespace of ``tenant_id`` (the id checked first) with its record; NotFound
        when there is none or it is not labelled as that tenant's."""
        check_tenant_id(tenant_id)
        ns = self.read(namespace_for(tenant_id))
        if ns is None or ns.labels.get(TENANT_LABEL) != tenant_id:
            raise NotFound(f"tenant '{tenant_id}' not found")
        return ns

    @staticmethod
    def has_spec(ns: Namespace) -> bool:
        """Whether ``ns`` has a recorded spec (a saasodoo tenant's namespace)."""
        return codec.SPEC_ANNOTATION in ns.record

    @staticmethod
    def spec(ns: Namespace) -> TenantSpec:
        """The recorded (desired) spec; NotFound when there is none."""
        return codec.spec_of(ns.record, ns.labels, ns.name)

    @staticmethod
    def suspended(ns: Namespace) -> bool:
        return codec.suspended_of(ns.record)

    @staticmethod
    def owner(ns: Namespace) -> str | None:
        return codec.owner_of(ns.record)

    @staticmethod
    def applied(ns: Namespace) -> Applied | None:
        return codec.applied_of(ns.record)

    @staticmethod
    def failed_digest(ns: Namespace) -> str | None:
        return codec.failed_digest_of(ns.record)

    @staticmethod
    def unfinished(ns: Namespace) -> Unfinished | None:
        return codec.unfinished_of(ns.record)

    @staticmethod
    def revisions(ns: Namespace) -> tuple[int, ...]:
        """The revisions saasodoo knows it made: the one it last applied and one its failed
        operation left (``Observation.saasodoo_revisions``); empty when none is recorded."""
        applied, unfinished = codec.applied_of(ns.record), codec.unfinished_of(ns.record)
        return tuple(r.revision for r in (applied, unfinished) if r is not None)

    def lock(self, ns: Namespace) -> OperationLock | None:
        """The operation lock, with whether its holder still runs (``holder_alive``)."""
        return codec.lock_of(ns.record, self.alive or holder_alive)

    # -- writing ------------------------------------------------------------------------

    def lock_for(self, operation: str, digest: str) -> OperationLock:
        """A lock held by this process for ``operation``, expiring after the helm timeout
        plus a margin."""
        timeout = parse_duration(self.settings.helm_timeout)
        return OperationLock(
            holder=self.holder or f"{socket.gethostname()}:{os.getpid()}",
            operation=operation,
            digest=digest,
            expires=datetime.now(UTC) + timeout + codec.LOCK_MARGIN,
        )

    def write(
        self,
        spec: TenantSpec,
        suspended: bool,
        *,
        applied: Applied | None = None,
        failed_digest: str | None = None,
        lock: OperationLock | None | Literal[False] = False,
        known: Namespace | None = None,
        rider: StatusRider | None = None,
    ) -> None:
        """Record the spec and, with ``applied``, what was applied (which releases the lock);
        ``lock`` sets (an OperationLock) or releases (None) the operation lock in the same
        request. ``known``: the tenant's namespace as read with its record, when no write
        since changed its labels (``RecordStore.write``: fewer requests). ``rider``: the
        operator's status of the tenant, written in the same request (``StatusRider``)."""
        labels, entries = codec.spec_patch(
            spec, suspended, applied=applied, failed_digest=failed_digest, lock=lock
        )
        self.store.write(spec.namespace, entries, labels, known, rider)

    def write_spec(self, spec: TenantSpec) -> None:
        """Record ``spec`` alone (suspension, outcome and lock left as they are)."""
        self.store.write(spec.namespace, {codec.SPEC_ANNOTATION: spec.model_dump_json()})

    def write_owner(self, namespace: str, owner: str) -> None:
        """Record ``owner`` as the tenant's owner."""
        self.store.write(namespace, {codec.OWNER_ANNOTATION: owner})

    def write_outcome(self, namespace: str, applied: Applied, failed_digest: str | None) -> None:
        """Record what an operation applied (the spec left as it is); releases the lock."""
        self.store.write(namespace, codec.outcome_patch(applied, failed_digest))

    def create(
        self, spec: TenantSpec, labels: dict[str, str], lock: OperationLock, owner: str | None
    ) -> None:
        """Make a new tenant's namespace (``labels``) and its record (its spec, the create's
        operation lock, its owner; nothing else): the lock is taken with the namespace, so
        a crash from there on is recoverable."""
        entries = codec.new_tenant_record(spec, lock, owner)
        self.store.create(spec.namespace, spec.id, labels, entries)

    def move(self, tenant_id: str) -> bool:
        """Move a record left on the tenant's namespace onto its OdooTenant
        (``RecordStore.move``); True when something moved."""
        return self.store.move(tenant_id)

    def unlock(self, namespace: str) -> None:
        """Remove the operation lock."""
        self.store.write(namespace, codec.unlock_patch())

    def unlock_quietly(self, namespace: str) -> None:
        """Remove the operation lock on an error path: a failure to do so is logged, since
        the original error matters more."""
        try:
            self.unlock(namespace)
        except Exception:  # noqa: BLE001 - the original error matters more
            log.warning("could not release the operation lock on %s", namespace)

    def head(self, spec: TenantSpec) -> ReleaseInfo | None:
        """The newest revision of the tenant's release (None: none), from the labels of
        Helm's storage Secrets (one request)."""
        return self.kube.list_release_heads(spec.namespace).get((spec.namespace, spec.release))

    def head_revision(self, spec: TenantSpec) -> int:
        """The newest revision of the tenant's release (0: none), from Helm's storage
        Secrets (one request): taken before a helm call, so a failure can tell whether
        that call left a revision."""
        head = self.head(spec)
        return head.revision if head else 0

    def failed(self, spec: TenantSpec, operation: str, digest: str, base: int) -> None:
        """Release the lock of an operation whose helm call failed, recording the revision
        it left failed or pending (newer than ``base``, the head before the call) as
        saasodoo's (``saasodoo.dev/unfinished``): ensure remediates that one and leaves any
        other failed or pending revision, a hand change, alone. On an error path: a
        failure to record is logged, since the original error matters more."""
        try:
            heads = self.kube.list_release_heads(spec.namespace)
            head = heads.get((spec.namespace, spec.release))
            left = None
            if head is not None and head.revision > base and head.status != "deployed":
                left = Unfinished(head.revision, operation, digest)
            self.store.write(spec.namespace, codec.failure_patch(left))
        except Exception:  # noqa: BLE001 - the original error matters more
            log.warning("could not record the failed %s on %s", operation, spec.namespace)
            self.unlock_quietly(spec.namespace)

    @asynccontextmanager
    async def locked(self, spec: TenantSpec, operation: str, digest: str) -> AsyncIterator[None]:
        """Hold the operation lock around a helm call; an error (not a crash) releases it,
        recording the revision the call left (``failed``). Success leaves it held: the
        caller's ``write(applied=...)`` releases it."""
        base = self.head_revision(spec)
        lock = self.lock_for(operation, digest)
        self.store.write(spec.namespace, {codec.OPERATION_ANNOTATION: codec.encode_lock(lock)})
        try:
            yield
        except BaseException:
            self.failed(spec, operation, digest, base)
            raise


def holder_alive(holder: str) -> bool | None:
    """Whether the process ``host:pid`` runs; None when it is on another host (cannot tell)."""
    host, _, pid = holder.rpartition(":")
    if host != socket.gethostname() or not pid.isdigit():
        return None
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
