"""Server-side-apply field ownership: saasodoo's one write to an object of a release (a
restore scales Odoo's Deployment) and the hand-back of ``.spec.replicas`` to Helm, so that
Helm 4, which applies server-side without forcing conflicts, can change the release again
(``scale_deployment``, ``mend_replicas_ownership``; the pure ``hand_back_field`` edits
managedFields).
"""

from __future__ import annotations

import copy
from typing import Any
from urllib.parse import quote

from kubernetes.client.rest import ApiException

from saasodoo.adapters.kube.transport import FIELD_MANAGER, KubeTransport, translate
from saasodoo.errors import Conflict

LEGACY_MANAGERS = frozenset({"OpenAPI-Generator"})
#: ``.spec.replicas`` in managedFields' fieldsV1 notation.
REPLICAS_FIELD = ("f:spec", "f:replicas")
TEMPLATE_FIELD = ("f:spec", "f:template")


class FieldOwnership(KubeTransport):
    """Writes to Helm's objects that leave the fields Helm owns to Helm."""

    def scale_deployment(
        self,
        namespace: str,
        name: str,
        replicas: int,
        annotations: dict[str, str | None] | None = None,
    ) -> None:
        """Set the replicas (and annotations) of a Deployment that Helm manages, and leave
        ``.spec.replicas`` owned by whoever owned it before: Helm.

        The only write saasodoo makes to an object of a release (a restore stops Odoo and
        starts it again). Any write takes ownership of the fields it changes, and Helm 4
        applies server-side without forcing conflicts: a later ``helm upgrade`` that
        changes the replicas (suspend, resume) then fails with "conflict with <writer> ...
        .spec.replicas", whoever wrote, through a patch or through the scale subresource
        (on Kubernetes 1.36 a scale takes the field from helm and, from the second write
        on, records its writer as owner, ``subresource: scale``: "conflict with "kubectl"
        with subresource "scale""). Having helm
        carry the change instead would add two release revisions per restore that ensure
        would see as drift. So the write is a plain merge patch as field manager
        ``saasodoo``, then a second patch that changes nothing but managedFields and hands
        the field back to its previous owners (the API lets clients edit managedFields;
        one that changes no value takes no ownership), each guarded by resourceVersion.
        Helm 4 then owns the replicas again and its next apply sets them without a
        conflict; Helm 3's three-way merge never looked at ownership and sets them to
        the chart's value as before. Ownership left by saasodoo versions that wrote as
        "OpenAPI-Generator" is cleared the same way, here and by
        ``mend_replicas_ownership`` before saasodoo runs helm on a release.
        """
        path = f"/apis/apps/v1/namespaces/{quote(namespace)}/deployments/{quote(name)}"
        what = f"scale deployment {namespace}/{name} to {replicas}"
        for _ in range(5):
            with translate(what):
                live = self.get_json(path)
            meta = live.get("metadata") or {}
            before = list(meta.get("managedFields") or [])
            body: dict[str, Any] = {
                "metadata": {"resourceVersion": meta.get("resourceVersion")},
                "spec": {"replicas": replicas},
            }
            if annotations:
                body["metadata"]["annotations"] = annotations
            try:
                written = self.merge_patch(path, body)
            except ApiException as exc:
                if exc.status == 409:
                    continue  # changed since read: read again
                with translate(what):
                    raise
            self._hand_back(path, written, before, what)
            return
        raise Conflict(f"{what}: the Deployment kept changing; try again")

    def mend_replicas_ownership(self, namespace: str) -> list[str]:
        """Hand ``.spec.replicas`` back to Helm wherever saasodoo (or an earlier saasodoo
        writing as "OpenAPI-Generator") still owns it: one list request, a patch only per
        Deployment to mend. Run before helm changes a release, so a tenant a restore left
        un-upgradable under helm 4 (before ``scale_deployment``) is upgraded again. Returns
        the Deployments mended."""
        where = f"/apis/apps/v1/namespaces/{quote(namespace)}/deployments"
        with translate(f"list deployments of {namespace}"):
            items = self.get_json(where).get("items") or []
        ours = {FIELD_MANAGER, *LEGACY_MANAGERS}
        mended = []
        for obj in items:
            entries = (obj.get("metadata") or {}).get("managedFields") or []
            if not any(
                e.get("manager") in ours and _has_field(e.get("fieldsV1") or {}, REPLICAS_FIELD)
                for e in entries
            ):
                continue
            name = obj["metadata"]["name"]
            self._hand_back(
                f"{where}/{quote(name)}", obj, entries, f"hand {namespace}/{name}'s replicas back"
            )
            mended.append(name)
        return mended

    def _hand_back(self, path: str, written: Any, before: list[Any], what: str) -> None:
        """Give ``.spec.replicas`` back to its owners in ``before`` (see scale_deployment)."""
        for _ in range(5):
            meta = written.get("metadata") or {}
            entries = list(meta.get("managedFields") or [])
            fields = hand_back_field(entries, before, REPLICAS_FIELD, FIELD_MANAGER)
            if fields == entries:
                return
            body = {"metadata": {"resourceVersion": meta.get("resourceVersion"),
                                 "managedFields": fields}}  # fmt: skip
            try:
                self.merge_patch(path, body)
                return
            except ApiException as exc:
                if exc.status != 409:
                    with translate(f"{what} (field ownership)"):
                        raise
            with translate(what):
                written = self.get_json(path)
        raise Conflict(f"{what}: the Deployment kept changing; try again")


def _has_field(fields: dict[str, Any], path: tuple[str, ...]) -> bool:
    node: Any = fields
    for part in path:
        if not isinstance(node, dict) or part not in node:
            return False
        node = node[part]
    return True


def _with_field(fields: dict[str, Any], path: tuple[str, ...], present: bool) -> dict[str, Any]:
    """A copy of a fieldsV1 set with ``path`` added or removed (empty parents pruned)."""
    out = copy.deepcopy(fields)
    if present:
        node = out
        for part in path:
            node = node.setdefault(part, {})
        return out
    chain = [out]
    for part in path[:-1]:
        nxt = chain[-1].get(part)
        if not isinstance(nxt, dict):
            return out
        chain.append(nxt)
    chain[-1].pop(path[-1], None)
    for depth in range(len(path) - 1, 0, -1):
        if not chain[depth]:
            chain[depth - 1].pop(path[depth - 1], None)
        else:
            break
    return out


def _entry_key(entry: dict[str, Any]) -> tuple[str, str, str, str]:
    return (
        str(entry.get("manager", "")),
        str(entry.get("operation", "")),
        str(entry.get("subresource", "")),
        str(entry.get("apiVersion", "")),
    )


def hand_back_field(
    entries: list[dict[str, Any]],
    before: list[dict[str, Any]],
    path: tuple[str, ...],
    writer: str,
) -> list[dict[str, Any]]:
    """managedFields after ``writer`` wrote the field at ``path``, with that field owned
    again by those who owned it in ``before`` (the writer and saasodoo's former manager
    name excluded), or, when nobody else did, by the managers of the pod template (the
    object's applier: Helm). Entries left with no field are dropped."""
    ours = {writer, *LEGACY_MANAGERS}
    owners = [
        e for e in before
        if _has_field(e.get("fieldsV1") or {}, path) and e.get("manager") not in ours
    ]  # fmt: skip
    if not owners:
        owners = [
            e for e in entries
            if _has_field(e.get("fieldsV1") or {}, TEMPLATE_FIELD) and e.get("manager") not in ours
        ]  # fmt: skip
    keys = {_entry_key(e) for e in owners}
    out, seen = [], set()
    for entry in entries:
        fields = entry.get("fieldsV1") or {}
        key = _entry_key(entry)
        if key in keys:
            seen.add(key)
            if not _has_field(fields, path):
                fields = _with_field(fields, path, True)
        elif entry.get("manager") in ours and _has_field(fields, path):
            fields = _with_field(fields, path, False)
        if fields:
            out.append({**entry, "fieldsV1": fields} if fields is not entry.get("fieldsV1")
                       else entry)  # fmt: skip
    for owner in owners:  # an owner whose only field it was lost its entry
        if _entry_key(owner) not in seen:
            out.append({**owner, "fieldsV1": _with_field({}, path, True)})
    return out
