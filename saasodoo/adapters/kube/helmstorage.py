"""Helm's storage records: the ``sh.helm.release.v1.<release>.v<revision>`` Secrets Helm
keeps a release's revisions in, read and edited through the Kubernetes API where Helm offers
no command (every release's head in one request; why a revision failed; marking a revision
left pending by a dead operation failed, as Flux's helm-controller does).

A record's ``release`` key is base64 (the Secret's) of base64 of gzipped JSON; its labels
carry name, version (revision), status and modifiedAt, so heads are read as metadata only.
"""

from __future__ import annotations

import base64
import contextlib
import gzip
import json
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

from saasodoo.adapters.kube.transport import PARTIAL_METADATA, KubeTransport, translate
from saasodoo.core.status import ReleaseInfo
from saasodoo.core.versions import revision_odoo
from saasodoo.errors import SaasodooError


class HelmStorage(KubeTransport):
    """Helm's release records, from their storage Secrets."""

    def list_release_heads(
        self, namespace: str | None = None, *, explain_failed: bool = False
    ) -> dict[tuple[str, str], ReleaseInfo]:
        """Newest revision of every Helm release, from the labels of Helm's storage Secrets.

        Reads metadata only (PartialObjectMetadataList): one request for the whole
        cluster, whatever the number of releases and revisions. ``explain_failed``: a failed
        head gets the description its record gives (why it failed: one read per failed head).
        """
        path = f"/api/v1/namespaces/{quote(namespace)}/secrets" if namespace else "/api/v1/secrets"
        with translate("list helm release records"):
            doc = self.get_json(path, [("labelSelector", "owner=helm")], PARTIAL_METADATA)
        heads: dict[tuple[str, str], ReleaseInfo] = {}
        for item in doc.get("items") or []:
            meta = item.get("metadata", {})
            labels = meta.get("labels", {})
            try:
                version = int(labels["version"])
                key = (meta["namespace"], labels["name"])
            except (KeyError, ValueError):
                continue
            if key in heads and heads[key].revision >= version:
                continue
            heads[key] = ReleaseInfo(
                revision=version,
                status=labels.get("status", "unknown"),
                updated=_modified_at(labels, meta),
            )
        if explain_failed:
            for (ns, name), head in heads.items():
                if head.status == "failed" and not head.description:
                    why = self.release_description(ns, name, head.revision)
                    heads[(ns, name)] = replace(head, description=why)
        return heads

    def release_revisions(self, namespace: str, release: str) -> list[ReleaseInfo]:
        """Every revision Helm keeps of ``release`` (revision, status, modifiedAt), oldest
        first, from its storage Secrets' labels: one metadata-only list request."""
        path = f"/api/v1/namespaces/{quote(namespace)}/secrets"
        with translate(f"list helm release records of {namespace}/{release}"):
            doc = self.get_json(path, [("labelSelector", f"owner=helm,name={release}")],
                                PARTIAL_METADATA)  # fmt: skip
        found = []
        for item in doc.get("items") or []:
            meta = item.get("metadata", {})
            labels = meta.get("labels", {})
            try:
                version = int(labels["version"])
            except (KeyError, ValueError):
                continue
            found.append(ReleaseInfo(version, labels.get("status", "unknown"),
                                     _modified_at(labels, meta)))  # fmt: skip
        return sorted(found, key=lambda r: r.revision)

    def release_revision(self, namespace: str, release: str, revision: int) -> ReleaseInfo | None:
        """One revision as its storage Secret records it: status, last deployed, description
        (why it failed, for a failed one), chart (``<name>-<version>``, as ``helm history``
        shows it), app version, and the Odoo series and image it runs (its values over its
        chart's, ``core.versions.revision_odoo``); None when it cannot be read."""
        doc = self._record(namespace, release, revision)
        if doc is None:
            return None
        info, chart = doc.get("info") or {}, (doc.get("chart") or {}).get("metadata") or {}
        updated = None
        with contextlib.suppress(ValueError, TypeError):
            updated = datetime.fromisoformat(str(info.get("last_deployed")).replace("Z", "+00:00"))
        name = f"{chart.get('name')}-{chart.get('version')}" if chart.get("name") else ""
        config, defaults = doc.get("config"), (doc.get("chart") or {}).get("values")
        series, image = revision_odoo(config if isinstance(config, dict) else {},
                                      defaults if isinstance(defaults, dict) else None)  # fmt: skip
        return ReleaseInfo(revision, str(info.get("status") or "unknown"), updated,
                           str(info.get("description") or ""), name,
                           str(chart.get("appVersion") or ""), series, image)  # fmt: skip

    def release_values(self, namespace: str, release: str, revision: int) -> dict[str, Any] | None:
        """The values one revision was given (its record's ``config``: what ``helm get
        values --revision N`` prints, without the chart's defaults), read from its storage
        Secret without a helm process; None when the record cannot be read."""
        doc = self._record(namespace, release, revision)
        if doc is None:
            return None
        config = doc.get("config")
        return dict(config) if isinstance(config, dict) else {}

    def release_head(self, namespace: str, release: str) -> ReleaseInfo | None:
        """The newest revision of ``release`` as ``list_release_heads`` reads it (its storage
        Secrets' labels, one metadata-only list), with the recorded description of a failed
        one (why it failed: one more read); None when there is no release. What ``helm
        status`` answers, without a helm process."""
        heads = self.list_release_heads(namespace, explain_failed=True)
        return heads.get((namespace, release))

    def release_description(self, namespace: str, release: str, revision: int) -> str:
        """The description Helm recorded for one revision (why it failed, for a failed one),
        from its storage Secret; "" when it cannot be read."""
        doc = self._record(namespace, release, revision)
        return str(((doc or {}).get("info") or {}).get("description") or "")

    def _record(self, namespace: str, release: str, revision: int) -> dict[str, Any] | None:
        """The decoded release record of one revision; None when it cannot be read."""
        name = f"sh.helm.release.v1.{release}.v{revision}"
        try:
            with translate(f"read helm release record {namespace}/{name}"):
                path = f"/api/v1/namespaces/{quote(namespace)}/secrets/{quote(name)}"
                secret = self.get_json(path)
            raw = base64.b64decode(base64.b64decode((secret.get("data") or {})["release"]))
            doc = json.loads(gzip.decompress(raw) if raw[:2] == b"\x1f\x8b" else raw)
        except (SaasodooError, KeyError, ValueError, OSError):
            return None
        return doc if isinstance(doc, dict) else None

    def unlock_release(self, namespace: str, release: str, revision: int, reason: str) -> str:
        """Mark a revision stuck in pending-* as failed, as Flux's helm-controller does.

        Edits Helm's storage Secret (``sh.helm.release.v1.<name>.v<revision>``): the
        release record (base64 of gzipped JSON) and its ``status`` label. Returns the
        status it had. Only for a pending revision whose operator is gone: Helm itself
        offers no command for it.
        """
        name = f"sh.helm.release.v1.{release}.v{revision}"
        self.count_request()
        with translate(f"read helm release record {namespace}/{name}"):
            secret = self.core.read_namespaced_secret(
                name, namespace, _request_timeout=self.timeout
            )
        raw = base64.b64decode(base64.b64decode(secret.data["release"]))
        gzipped = raw[:2] == b"\x1f\x8b"
        doc = json.loads(gzip.decompress(raw) if gzipped else raw)
        before = str(doc.get("info", {}).get("status", ""))
        doc.setdefault("info", {})["status"] = "failed"
        doc["info"]["description"] = reason
        encoded = json.dumps(doc).encode()
        if gzipped:
            encoded = gzip.compress(encoded)
        secret.data["release"] = base64.b64encode(base64.b64encode(encoded)).decode()
        secret.metadata.labels = {**(secret.metadata.labels or {}), "status": "failed"}
        self.count_request()
        with translate(f"unlock helm release record {namespace}/{name}"):
            self.core.replace_namespaced_secret(
                name, namespace, secret, _request_timeout=self.timeout
            )
        return before


def _modified_at(labels: dict[str, str], meta: dict[str, Any]) -> datetime | None:
    if "modifiedAt" in labels:
        with contextlib.suppress(ValueError):
            return datetime.fromtimestamp(int(labels["modifiedAt"]), tz=UTC)
    created = meta.get("creationTimestamp")
    if created:
        with contextlib.suppress(ValueError):
            return datetime.fromisoformat(str(created).replace("Z", "+00:00"))
    return None
