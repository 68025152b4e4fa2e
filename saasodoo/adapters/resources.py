"""saasodoo's own custom resources (``saasodoo.dev/v1alpha1``) and their Events, through the
Kubernetes API.

Spec and status are written apart, as the status subresource requires (a write to the
object ignores ``.status``; a write to ``/status`` ignores everything else), and only by
merge patches naming saasodoo as the field manager. Finalizers change with a JSON patch
that first tests the ``resourceVersion`` it was computed from, as kopf does: a concurrent
writer makes it fail with 409/422 (``Conflict``) instead of dropping its change. Events go
through ``events.k8s.io/v1``. Errors are translated as in ``saasodoo.adapters.kube``.
"""

from __future__ import annotations

import builtins
import logging
import secrets
import time
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

from saasodoo.adapters.kube import FIELD_MANAGER, MERGE_PATCH, Kube, translate
from saasodoo.core.crd import GROUP, KIND, PLURAL, VERSION
from saasodoo.core.record import STATUS_RECORD
from saasodoo.errors import TransientClusterError

log = logging.getLogger(__name__)

JSON_PATCH = "application/json-patch+json"
#: A list answered as ``kubectl get`` prints it (server-side printing).
TABLE = "application/json;as=Table;g=meta.k8s.io;v=v1"
#: The ``reportingController`` of saasodoo's Events.
CONTROLLER = "saasodoo.dev/operator"


class CustomResources:
    """The objects of one of saasodoo's custom resources (``plural`` of the group
    ``saasodoo.dev``, kind ``kind``) in one namespace (the platform's)."""

    def __init__(self, kube: Kube, namespace: str, plural: str, kind: str) -> None:
        self.kube = kube
        self.namespace = namespace
        self.plural = plural
        self.kind = kind

    def path(self, name: str | None = None, sub: str = "") -> str:
        base = f"/apis/{GROUP}/{VERSION}/namespaces/{quote(self.namespace)}/{self.plural}"
        if name is None:
            return base
        return f"{base}/{quote(name)}" + (f"/{sub}" if sub else "")

    def _send(self, method: str, path: str, body: Any = None, content: str = "") -> Any:
        headers = {"Accept": "application/json"}
        query: list[tuple[str, str]] = []
        if content:
            headers["Content-Type"] = content
        if method in ("PATCH", "POST", "PUT"):
            query.append(("fieldManager", FIELD_MANAGER))
        return self.kube.call_json(method, path, query, headers, body)

    def get(self, name: str) -> dict[str, Any] | None:
        """The object named ``name``, None when there is none."""
        with translate(f"read {self.kind} {name}"):
            try:
                return dict(self.kube.get_json(self.path(name)))
            except Exception as exc:  # noqa: BLE001 - 404 means absent, the rest is translated
                if getattr(exc, "status", None) == 404:
                    return None
                raise

    def list(self, selector: str | None = None) -> dict[str, Any]:
        """The list document (``items`` and ``metadata.resourceVersion``)."""
        query = [("labelSelector", selector)] if selector else []
        with translate(f"list {self.plural}"):
            return dict(self.kube.get_json(self.path(), query))

    def table(self, selector: str | None = None) -> dict[str, Any]:
        """The objects as the API server prints them: a ``meta.k8s.io/v1`` Table of the
        CRD's printer columns (``columnDefinitions``, ``rows`` with ``cells`` and each
        object's partial metadata), what ``kubectl get`` reads. A fraction of ``list``'s
        size for objects with a large status."""
        query = [("includeObject", "Metadata")]
        if selector:
            query.append(("labelSelector", selector))
        with translate(f"list {self.plural}"):
            return dict(self.kube.get_json(self.path(), query, TABLE))

    def create(self, body: dict[str, Any]) -> dict[str, Any]:
        """Create the object ``body`` (kind and apiVersion are filled in)."""
        body = {"apiVersion": f"{GROUP}/{VERSION}", "kind": self.kind, **body}
        meta = body.get("metadata", {})
        name = meta.get("name") or meta.get("generateName", "")
        with translate(f"create {self.kind} {name}"):
            return dict(self._send("POST", self.path(), body, "application/json"))

    def patch(self, name: str, patch: dict[str, Any]) -> dict[str, Any]:
        """A merge patch of the object (spec, labels, annotations); ``.status`` is ignored
        by the API server here."""
        with translate(f"patch {self.kind} {name}"):
            return dict(self._send("PATCH", self.path(name), patch, MERGE_PATCH))

    def patch_status(
        self, name: str, status: dict[str, Any], previous: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        """Make the status ``status`` through the status subresource: a merge patch from
        ``previous`` (the status as read), so a field ``status`` drops is removed (sent as
        null) rather than kept; lists such as ``conditions`` are replaced whole."""
        body = {"status": merge_patch(previous or {}, status)}
        with translate(f"write the status of {self.kind} {name}"):
            return dict(self._send("PATCH", self.path(name, "status"), body, MERGE_PATCH))

    def delete(self, name: str) -> bool:
        """Ask for deletion (finalizers run first); False when there was no such object."""
        with translate(f"delete {self.kind} {name}"):
            try:
                self._send("DELETE", self.path(name))
            except Exception as exc:  # noqa: BLE001 - 404 means absent
                if getattr(exc, "status", None) == 404:
                    return False
                raise
        return True

    def set_finalizer(self, obj: dict[str, Any], finalizer: str, present: bool) -> dict[str, Any]:
        """Add or remove ``finalizer`` on ``obj`` as read (its resourceVersion is tested
        first: Conflict when the object changed since)."""
        meta = obj["metadata"]
        current = list(meta.get("finalizers") or [])
        if (finalizer in current) == present:
            return obj
        wanted = [*current, finalizer] if present else [f for f in current if f != finalizer]
        ops = [
            {"op": "test", "path": "/metadata/resourceVersion", "value": meta["resourceVersion"]},
            {"op": "replace" if current else "add", "path": "/metadata/finalizers",
             "value": wanted},
        ]  # fmt: skip
        with translate(f"{'add' if present else 'remove'} the finalizer of {meta['name']}"):
            return dict(self._send("PATCH", self.path(meta["name"]), ops, JSON_PATCH))

    def set_owner_references(
        self, obj: dict[str, Any], references: builtins.list[dict[str, Any]]
    ) -> dict[str, Any]:
        """Make ``metadata.ownerReferences`` of ``obj`` (as read) ``references``; its
        resourceVersion is tested first (Conflict when the object changed since)."""
        meta = obj["metadata"]
        ops = [
            {"op": "test", "path": "/metadata/resourceVersion", "value": meta["resourceVersion"]},
            {"op": "add", "path": "/metadata/ownerReferences", "value": references},
        ]
        with translate(f"set the owner of {self.kind} {meta['name']}"):
            return dict(self._send("PATCH", self.path(meta["name"]), ops, JSON_PATCH))

    def event(self, obj: dict[str, Any], kind: str, reason: str, note: str, action: str) -> None:
        """An ``events.k8s.io/v1`` Event about ``obj``: ``kind`` Normal or Warning,
        ``reason`` in UpperCamelCase, ``note`` at most 1 kB. Best effort: an Event that
        cannot be written is not worth failing a reconcile for."""
        meta = obj["metadata"]
        now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        body = {
            "apiVersion": "events.k8s.io/v1",
            "kind": "Event",
            "metadata": {
                "name": f"{meta['name']}.{secrets.token_hex(8)}",
                "namespace": self.namespace,
            },
            "eventTime": now,
            "type": kind,
            "reason": reason,
            "note": note[:1024],
            "action": action,
            "reportingController": CONTROLLER,
            "reportingInstance": CONTROLLER,
            "regarding": {
                "apiVersion": f"{GROUP}/{VERSION}",
                "kind": obj.get("kind") or self.kind,
                "name": meta["name"],
                "namespace": self.namespace,
                "uid": meta.get("uid"),
                "resourceVersion": meta.get("resourceVersion"),
            },
        }
        path = f"/apis/events.k8s.io/v1/namespaces/{quote(self.namespace)}/events"
        try:
            self._send("POST", path, body, "application/json")
        except Exception:  # noqa: BLE001 - best effort
            log.debug("could not write an Event", exc_info=True)


class TenantResources(CustomResources):
    """The OdooTenant objects of one namespace (the platform's, ``system_namespace``)."""

    def __init__(self, kube: Kube, namespace: str) -> None:
        super().__init__(kube, namespace, PLURAL, KIND)

    def patch_status(
        self,
        name: str,
        status: dict[str, Any],
        previous: dict[str, Any] | None = None,
        *,
        record: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """As ``CustomResources.patch_status``; a status made from ``previous`` (the
        controller's conditions, backups, ...) never names ``status.record``, the tenant's
        record, which only ``saasodoo.adapters.records`` writes (``previous`` None, the
        record's fields alone; or ``record``, the record's fields written in the same
        request as the controller's ``status``): neither undoes the other's writes."""
        if previous is not None or record is not None:
            status = {k: v for k, v in status.items() if k != STATUS_RECORD}
            previous = {k: v for k, v in (previous or {}).items() if k != STATUS_RECORD}
        if record is None:
            return super().patch_status(name, status, previous)
        body = {"status": {**merge_patch(previous or {}, status), STATUS_RECORD: record}}
        with translate(f"write the status of {self.kind} {name}"):
            return dict(self._send("PATCH", self.path(name, "status"), body, MERGE_PATCH))


def merge_patch(old: Any, new: Any) -> Any:
    """The JSON merge patch (RFC 7396) that turns ``old`` into ``new``: keys ``new`` lacks
    are null, maps are patched key by key, anything else (lists included) is replaced."""
    if not isinstance(old, dict) or not isinstance(new, dict):
        return new
    patch: dict[str, Any] = {k: None for k in old if k not in new}
    for k, v in new.items():
        if k not in old or old[k] != v:
            patch[k] = merge_patch(old.get(k), v)
    return patch


def apply_crd(kube: Kube, manifest: dict[str, Any], *, timeout: float = 60.0) -> None:
    """Create or update the CustomResourceDefinition ``manifest`` (server-side apply, field
    manager saasodoo) and wait until the API server serves it (condition Established).
    TransientClusterError when it is not Established within ``timeout`` seconds."""
    name = manifest["metadata"]["name"]
    path = f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{quote(name)}"
    headers = {"Accept": "application/json", "Content-Type": "application/apply-patch+yaml"}
    query = [("fieldManager", FIELD_MANAGER), ("force", "true")]
    with translate(f"apply the CustomResourceDefinition {name}"):
        kube.call_json("PATCH", path, query, headers, manifest)
    deadline = time.monotonic() + timeout
    while True:
        with translate(f"read the CustomResourceDefinition {name}"):
            crd = kube.get_json(path)
        found = (crd.get("status") or {}).get("conditions") or []  # null on a new CRD
        conditions = {c["type"]: c["status"] for c in found}
        if conditions.get("Established") == "True":
            return
        if time.monotonic() > deadline:
            raise TransientClusterError(f"CustomResourceDefinition {name} not Established "
                                        f"after {timeout:.0f}s")  # fmt: skip
        time.sleep(0.2)
