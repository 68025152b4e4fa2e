"""Kubernetes objects saasodoo reads and writes, as small types and as the ``KubeObjects``
part of the ``Kube`` adapter: namespaces, volume claims and volumes, ConfigMaps, Secrets,
workloads and pods, Jobs and CronJobs, nodes and pod metrics.

Fleet reads are list calls with label selectors (a constant number per fleet, never one per
tenant), served as raw JSON (``KubeTransport.get_json``).
"""

from __future__ import annotations

import base64
import contextlib
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

from kubernetes import client

from saasodoo.adapters.kube.transport import KubeTransport, translate
from saasodoo.core.spec import MANAGED_BY, MANAGED_BY_LABEL, TENANT_LABEL
from saasodoo.core.status import SetPod, StatefulSetPods, Workload, add_workloads
from saasodoo.errors import Conflict, FieldError, InvalidInput, NotFound, TransientClusterError


@dataclass(frozen=True)
class Namespace:
    """What saasodoo reads of a namespace."""

    name: str
    labels: Mapping[str, str] = field(default_factory=dict)
    annotations: Mapping[str, str] = field(default_factory=dict)
    #: Active or Terminating.
    phase: str | None = None
    uid: str = ""
    #: The tenant record's entries (``saasodoo.core.record``), wherever they are kept:
    #: filled by ``saasodoo.adapters.records``, empty as read here.
    record: Mapping[str, str] = field(default_factory=dict)
    #: Whether ``record`` is its OdooTenant's ``status.record`` (where it stays from then
    #: on), not annotations of the namespace: filled there too.
    record_held: bool = False

    @classmethod
    def from_json(cls, obj: dict[str, Any]) -> Namespace:
        meta = obj.get("metadata") or {}
        return cls(
            name=meta.get("name", ""),
            labels=meta.get("labels") or {},
            annotations=meta.get("annotations") or {},
            phase=(obj.get("status") or {}).get("phase"),
            uid=meta.get("uid", ""),
        )


@dataclass(frozen=True)
class ConfigMap:
    """What saasodoo reads of a ConfigMap (the platform's own records, e.g. domain claims)."""

    name: str
    uid: str
    labels: Mapping[str, str] = field(default_factory=dict)
    data: Mapping[str, str] = field(default_factory=dict)
    #: uids of the objects owning it (ownerReferences).
    owners: tuple[str, ...] = ()
    created: datetime | None = None

    @classmethod
    def from_json(cls, obj: dict[str, Any]) -> ConfigMap:
        meta = obj.get("metadata") or {}
        return cls(
            name=meta.get("name", ""),
            uid=meta.get("uid", ""),
            labels=meta.get("labels") or {},
            data=obj.get("data") or {},
            owners=tuple(str(o.get("uid", "")) for o in meta.get("ownerReferences") or []),
            created=_timestamp(meta.get("creationTimestamp")),
        )


@dataclass(frozen=True)
class Node:
    """What saasodoo reads of a node."""

    name: str
    labels: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def from_json(cls, obj: dict[str, Any]) -> Node:
        meta = obj.get("metadata") or {}
        return cls(name=meta.get("name", ""), labels=meta.get("labels") or {})


@dataclass(frozen=True)
class Pod:
    """What saasodoo reads of a pod."""

    name: str
    namespace: str
    labels: Mapping[str, str] = field(default_factory=dict)
    #: Pending, Running, Succeeded, Failed or Unknown.
    phase: str = ""
    #: The node it is bound to ("" while unscheduled).
    node: str = ""
    #: Its address on the pod network ("" before it has one).
    ip: str = ""
    #: Its Ready condition is True.
    ready: bool = False

    @property
    def finished(self) -> bool:
        return self.phase in ("Succeeded", "Failed")

    @classmethod
    def from_json(cls, obj: dict[str, Any]) -> Pod:
        meta = obj.get("metadata") or {}
        return cls(
            name=meta.get("name", ""),
            namespace=meta.get("namespace", ""),
            labels=meta.get("labels") or {},
            phase=(obj.get("status") or {}).get("phase") or "",
            node=(obj.get("spec") or {}).get("nodeName") or "",
            ip=(obj.get("status") or {}).get("podIP") or "",
            ready=any(
                c.get("type") == "Ready" and c.get("status") == "True"
                for c in (obj.get("status") or {}).get("conditions") or []
            ),
        )


@dataclass(frozen=True)
class Deployment:
    """What saasodoo reads of a Deployment (a restore scales Odoo's)."""

    name: str
    #: ``.spec.replicas`` (the API's default, 1, when unset).
    replicas: int
    generation: int
    annotations: Mapping[str, str] = field(default_factory=dict)
    #: ``.status.readyReplicas``, ``.status.updatedReplicas``, ``.status.observedGeneration``.
    ready_replicas: int = 0
    updated_replicas: int = 0
    observed_generation: int = 0

    @property
    def ready(self) -> bool:
        """The controller saw the latest spec and every wanted pod of it passes its readiness
        probe (what ``kubectl rollout status`` waits for, old pods aside)."""
        return (
            self.observed_generation >= self.generation
            and self.updated_replicas >= self.replicas
            and self.ready_replicas >= self.replicas
        )

    @classmethod
    def from_json(cls, obj: dict[str, Any]) -> Deployment:
        meta, spec = obj.get("metadata") or {}, obj.get("spec") or {}
        status = obj.get("status") or {}
        return cls(
            name=meta.get("name", ""),
            replicas=int(spec.get("replicas", 1) or 0),
            generation=int(meta.get("generation") or 0),
            annotations=meta.get("annotations") or {},
            ready_replicas=int(status.get("readyReplicas") or 0),
            updated_replicas=int(status.get("updatedReplicas") or 0),
            observed_generation=int(status.get("observedGeneration") or 0),
        )


@dataclass(frozen=True)
class JobCondition:
    """One of a Job's ``.status.conditions`` (type Complete, Failed, SuccessCriteriaMet...)."""

    type: str
    status: str
    reason: str = ""
    message: str = ""


@dataclass(frozen=True)
class Job:
    """What saasodoo reads of a Job it ran."""

    name: str
    labels: Mapping[str, str] = field(default_factory=dict)
    conditions: tuple[JobCondition, ...] = ()
    #: ``.status.completionTime`` is set (it succeeded).
    completed: bool = False
    #: Pods that failed (``.status.failed``).
    failed: int = 0

    @property
    def active(self) -> bool:
        """Neither completed nor with a failed pod."""
        return not self.completed and not self.failed

    @classmethod
    def from_json(cls, obj: dict[str, Any]) -> Job:
        meta, status = obj.get("metadata") or {}, obj.get("status") or {}
        return cls(
            name=meta.get("name", ""),
            labels=meta.get("labels") or {},
            conditions=tuple(
                JobCondition(
                    type=str(c.get("type", "")),
                    status=str(c.get("status", "")),
                    reason=str(c.get("reason") or ""),
                    message=str(c.get("message") or ""),
                )
                for c in status.get("conditions") or []
            ),
            completed=bool(status.get("completionTime")),
            failed=int(status.get("failed") or 0),
        )


class KubeObjects(KubeTransport):
    """Namespaces, volumes, ConfigMaps, Secrets, workloads, pods, Jobs, nodes, metrics."""

    # -- namespaces ---------------------------------------------------------------

    def read_namespace(self, name: str) -> Namespace | None:
        try:
            with translate(f"read namespace {name}"):
                return Namespace.from_json(self.get_json(f"/api/v1/namespaces/{quote(name)}"))
        except NotFound:
            return None

    def create_tenant_namespace(
        self, name: str, tenant_id: str, labels: dict[str, str], annotations: dict[str, str]
    ) -> None:
        body = client.V1Namespace(
            metadata=client.V1ObjectMeta(
                name=name,
                labels={TENANT_LABEL: tenant_id, MANAGED_BY_LABEL: MANAGED_BY, **labels},
                annotations=annotations,
            )
        )
        self.count_request()
        with translate(f"create namespace {name}"):
            self.core.create_namespace(body, _request_timeout=self.timeout)

    def patch_namespace(
        self,
        name: str,
        *,
        labels: dict[str, str | None] | None = None,
        annotations: dict[str, str | None] | None = None,
    ) -> None:
        """Merge-patch labels/annotations (a None value removes the key)."""
        meta: dict[str, Any] = {}
        if labels:
            meta["labels"] = labels
        if annotations:
            meta["annotations"] = annotations
        self.count_request()
        with translate(f"update namespace {name}"):
            self.core.patch_namespace(name, {"metadata": meta}, _request_timeout=self.timeout)

    def claim_sizes(self, namespace: str) -> dict[str, str]:
        """Requested size of every PVC in ``namespace`` (what a rollback may not go below)."""
        self.count_request()
        with translate(f"list volumes of {namespace}"):
            claims = self.core.list_namespaced_persistent_volume_claim(
                namespace, _request_timeout=self.timeout
            ).items
        return {
            c.metadata.name: str(c.spec.resources.requests.get("storage", "0"))
            for c in claims
            if c.spec.resources and c.spec.resources.requests
        }

    def retain_volumes(self, namespace: str, tenant_id: str) -> list[str]:
        """Switch the PVs bound in ``namespace`` to reclaim policy Retain, so deleting the
        namespace keeps the data; each PV is labelled with the tenant id."""
        self.count_request()
        with translate(f"list volumes of {namespace}"):
            claims = self.core.list_namespaced_persistent_volume_claim(
                namespace, _request_timeout=self.timeout
            ).items
        kept = []
        for pvc in claims:
            if not pvc.spec.volume_name:
                continue
            patch = {
                "metadata": {"labels": {TENANT_LABEL: tenant_id}},
                "spec": {"persistentVolumeReclaimPolicy": "Retain"},
            }
            self.count_request()
            with translate(f"retain volume {pvc.spec.volume_name}"):
                self.core.patch_persistent_volume(
                    pvc.spec.volume_name, patch, _request_timeout=self.timeout
                )
            kept.append(pvc.spec.volume_name)
        return kept

    # -- volumes (the final backups kept after a tenant's deletion) ------------------

    def read_claim(self, namespace: str, name: str) -> dict[str, Any] | None:
        """A PersistentVolumeClaim as plain JSON, or None if there is none."""
        try:
            with translate(f"read volume claim {namespace}/{name}"):
                path = f"/api/v1/namespaces/{quote(namespace)}/persistentvolumeclaims/{quote(name)}"
                doc: dict[str, Any] = self.get_json(path)
                return doc
        except NotFound:
            return None

    def list_claims(self, namespace: str, selector: str) -> list[dict[str, Any]]:
        """PersistentVolumeClaims of ``namespace`` matching ``selector``, as plain JSON."""
        path = f"/api/v1/namespaces/{quote(namespace)}/persistentvolumeclaims"
        return self.list_items(f"list volume claims of {namespace}", path, selector)

    def create_claim(self, namespace: str, body: dict[str, Any]) -> None:
        """Create the PersistentVolumeClaim ``body`` (plain JSON) in ``namespace``."""
        self.count_request()
        with translate(f"create volume claim {namespace}/{body['metadata']['name']}"):
            self.core.create_namespaced_persistent_volume_claim(
                namespace, body, _request_timeout=self.timeout
            )

    def delete_claim(self, namespace: str, name: str) -> bool:
        """Delete a PersistentVolumeClaim; False if it was gone."""
        self.count_request()
        try:
            with translate(f"delete volume claim {namespace}/{name}"):
                self.core.delete_namespaced_persistent_volume_claim(
                    name, namespace, _request_timeout=self.timeout
                )
        except NotFound:
            return False
        return True

    def read_volume(self, name: str) -> dict[str, Any] | None:
        """A PersistentVolume as plain JSON, or None if there is none."""
        try:
            with translate(f"read volume {name}"):
                doc: dict[str, Any] = self.get_json(f"/api/v1/persistentvolumes/{quote(name)}")
                return doc
        except NotFound:
            return None

    def list_volumes(self, selector: str) -> list[dict[str, Any]]:
        """PersistentVolumes matching the label selector ``selector``, as plain JSON."""
        return self.list_items("list volumes", "/api/v1/persistentvolumes", selector)

    def patch_volume(self, name: str, body: dict[str, Any]) -> dict[str, Any]:
        """A JSON merge patch of a PersistentVolume (``None`` values remove fields); the
        volume as written."""
        with translate(f"update volume {name}"):
            doc: dict[str, Any] = self.merge_patch(f"/api/v1/persistentvolumes/{quote(name)}", body)
            return doc

    def list_tenant_namespaces(self, selector: str | None = None) -> list[Namespace]:
        """Tenant namespaces; ``selector`` (a label selector) narrows them down."""
        label_selector = f"{TENANT_LABEL},{selector}" if selector else TENANT_LABEL
        with translate("list tenant namespaces"):
            doc = self.get_json("/api/v1/namespaces", [("labelSelector", label_selector)])
        return [Namespace.from_json(item) for item in doc.get("items") or []]

    def delete_namespace(self, name: str) -> bool:
        self.count_request()
        try:
            with translate(f"delete namespace {name}"):
                self.core.delete_namespace(name, _request_timeout=self.timeout)
        except NotFound:
            return False
        return True

    def wait_namespace_gone(self, name: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while self.read_namespace(name) is not None:
            if time.monotonic() > deadline:
                raise TransientClusterError(
                    f"namespace {name} still terminating after {timeout:.0f}s"
                )
            time.sleep(0.5)

    # -- configmaps (the platform's own records) ----------------------------------

    def create_configmap(
        self,
        namespace: str,
        name: str,
        *,
        labels: dict[str, str],
        data: dict[str, str],
        owner: Namespace | None = None,
    ) -> ConfigMap:
        """Create a ConfigMap; Conflict if one of that name exists (an atomic claim: the
        API server lets exactly one of two racing creates succeed). ``owner``: a namespace
        whose deletion garbage-collects it. The namespace ``namespace`` is created if absent."""
        meta: dict[str, Any] = {"name": name, "labels": labels}
        if owner is not None and owner.uid:
            meta["ownerReferences"] = [
                {"apiVersion": "v1", "kind": "Namespace", "name": owner.name, "uid": owner.uid}
            ]
        body = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta, "data": data}
        for attempt in range(2):
            self.count_request()
            try:
                with translate(f"create configmap {namespace}/{name}"):
                    created = self.core.create_namespaced_config_map(
                        namespace, body, _request_timeout=self.timeout
                    )
                break
            except NotFound:
                if attempt:
                    raise
                self.create_namespace_if_absent(namespace)
        return ConfigMap.from_json(self.api.sanitize_for_serialization(created))

    def create_namespace_if_absent(self, name: str) -> None:
        body = {
            "apiVersion": "v1",
            "kind": "Namespace",
            "metadata": {"name": name, "labels": {MANAGED_BY_LABEL: MANAGED_BY}},
        }
        self.count_request()
        with contextlib.suppress(Conflict), translate(f"create namespace {name}"):
            self.core.create_namespace(body, _request_timeout=self.timeout)

    def read_configmap(self, namespace: str, name: str) -> ConfigMap | None:
        try:
            with translate(f"read configmap {namespace}/{name}"):
                path = f"/api/v1/namespaces/{quote(namespace)}/configmaps/{quote(name)}"
                return ConfigMap.from_json(self.get_json(path))
        except NotFound:
            return None

    def list_configmaps(self, namespace: str, selector: str) -> list[ConfigMap]:
        path = f"/api/v1/namespaces/{quote(namespace)}/configmaps"
        items = self.list_items(f"list configmaps in {namespace}", path, selector)
        return [ConfigMap.from_json(item) for item in items]

    def delete_configmap(self, namespace: str, name: str, uid: str | None = None) -> bool:
        """Delete it (only if its uid is still ``uid``, when given); False if it was gone
        or had been replaced."""
        body = (
            client.V1DeleteOptions(preconditions=client.V1Preconditions(uid=uid)) if uid else None
        )
        self.count_request()
        try:
            with translate(f"delete configmap {namespace}/{name}"):
                self.core.delete_namespaced_config_map(
                    name, namespace, body=body, _request_timeout=self.timeout
                )
        except (NotFound, Conflict):  # a failed uid precondition answers 409
            return False
        return True

    # -- secrets ------------------------------------------------------------------

    def create_secret_if_absent(
        self, namespace: str, name: str, data: dict[str, str], labels: dict[str, str]
    ) -> bool:
        """Create an Opaque Secret unless one exists (it is never overwritten)."""
        body = _opaque_secret(name, data, labels)
        self.count_request()
        try:
            with translate(f"create secret {namespace}/{name}"):
                self.core.create_namespaced_secret(namespace, body, _request_timeout=self.timeout)
        except Conflict:
            return False
        return True

    def put_secret(
        self, namespace: str, name: str, data: dict[str, str], labels: dict[str, str]
    ) -> None:
        """Make the Opaque Secret ``namespace/name`` hold exactly ``data`` (created, or
        replaced when it exists: a one-time token written again by a later attempt)."""
        body = _opaque_secret(name, data, labels)
        self.count_request()
        try:
            with translate(f"create secret {namespace}/{name}"):
                self.core.create_namespaced_secret(namespace, body, _request_timeout=self.timeout)
            return
        except Conflict:
            pass
        self.count_request()
        with translate(f"replace secret {namespace}/{name}"):
            self.core.replace_namespaced_secret(
                name, namespace, body, _request_timeout=self.timeout
            )

    def own_secret(self, namespace: str, name: str, owner: dict[str, str]) -> None:
        """Make ``owner`` (an ownerReference: ``apiVersion``, ``kind``, ``name``, ``uid``, in
        the same namespace) the Secret's owner: the garbage collector deletes it with it."""
        self.count_request()
        with translate(f"patch secret {namespace}/{name}"):
            self.core.patch_namespaced_secret(
                name, namespace, {"metadata": {"ownerReferences": [owner]}},
                _request_timeout=self.timeout,
            )  # fmt: skip

    def check_secret_keys(self, source: tuple[str, str], keys: set[str]) -> dict[str, str]:
        """The data of Secret ``source`` (namespace, name; base64 values as the API gives
        them), which must hold ``keys``: NotFound when it is missing, InvalidInput naming
        the missing keys (field ``backup_s3_secret``)."""
        data = self.secret_data(*source)
        missing = sorted(keys - set(data))
        if missing:
            raise InvalidInput(
                f"secret {source[0]}/{source[1]} has no key {', '.join(missing)}",
                [FieldError("backup_s3_secret", f"needs the keys {', '.join(sorted(keys))}")],
            )
        return data

    def copy_secret_keys(
        self,
        source: tuple[str, str],
        namespace: str,
        name: str,
        keys: Mapping[str, str],
        labels: dict[str, str],
    ) -> bool:
        """Make Secret ``namespace/name`` hold exactly ``keys`` (its key -> the source's key)
        of Secret ``source`` (namespace, name): created, or replaced when its data differs;
        values are copied as the API gives them (base64) and never decoded here. NotFound
        when the source is missing, InvalidInput naming a missing key. True when something
        was written."""
        data = self.check_secret_keys(source, set(keys.values()))
        want = {mine: data[theirs] for mine, theirs in keys.items()}
        body = client.V1Secret(
            metadata=client.V1ObjectMeta(name=name, labels=labels), type="Opaque", data=want
        )
        try:
            current = self.secret_data(namespace, name)
        except NotFound:
            self.count_request()
            with translate(f"create secret {namespace}/{name}"):
                self.core.create_namespaced_secret(namespace, body, _request_timeout=self.timeout)
            return True
        if current == want:
            return False
        self.count_request()
        with translate(f"replace secret {namespace}/{name}"):
            self.core.replace_namespaced_secret(
                name, namespace, body, _request_timeout=self.timeout
            )
        return True

    def read_secret_value(self, namespace: str, name: str, key: str) -> str | None:
        """The decoded value of ``key`` in Secret ``namespace/name``; None when the Secret
        has no such key; NotFound when there is no such Secret. Never logged."""
        raw = self.secret_data(namespace, name).get(key)
        return None if raw is None else base64.b64decode(raw).decode()

    def secret_has_key(self, namespace: str, name: str, key: str) -> bool:
        """Whether Secret ``namespace/name`` has ``key`` (its value is not decoded);
        NotFound when there is no such Secret."""
        return key in self.secret_data(namespace, name)

    def secret_data(self, namespace: str, name: str) -> dict[str, str]:
        """The Secret's ``data``: key -> base64 text, as the API gives it. Never logged."""
        with translate(f"read secret {namespace}/{name}"):
            path = f"/api/v1/namespaces/{quote(namespace)}/secrets/{quote(name)}"
            secret = self.get_json(path)
        return dict(secret.get("data") or {})

    # -- workloads ----------------------------------------------------------------

    def list_workloads(self, namespace: str | None = None) -> dict[str, list[Workload]]:
        """Deployments and StatefulSets of tenants, by tenant id (raw JSON, one list request
        per kind and per 500 objects: each page is reduced to ``Workload`` before the next
        is read, so 3,000 full objects never sit in memory at once)."""
        out: dict[str, list[Workload]] = {}
        where = f"/apis/apps/v1/namespaces/{quote(namespace)}" if namespace else "/apis/apps/v1"
        query = [("labelSelector", TENANT_LABEL)]
        with translate("list tenant workloads"):
            for kind, plural in (("Deployment", "deployments"), ("StatefulSet", "statefulsets")):
                for items in self.list_pages(f"{where}/{plural}", query):
                    add_workloads(out, kind, items)
        return out

    def statefulset_pods(self, namespace: str) -> list[StatefulSetPods]:
        """The tenant's StatefulSets in ``namespace`` with their pods (two list calls, raw
        JSON): what ``core.status.stuck_pods`` decides from."""
        base = quote(namespace)
        sets = self.list_items(
            f"list statefulsets of {namespace}",
            f"/apis/apps/v1/namespaces/{base}/statefulsets",
            TENANT_LABEL,
        )
        pods = self.list_items(
            f"list pods of {namespace}", f"/api/v1/namespaces/{base}/pods", TENANT_LABEL
        )
        owned: dict[str, list[SetPod]] = {}
        for pod in pods:
            meta, status = pod.get("metadata") or {}, pod.get("status") or {}
            owner = next(
                (o.get("name", "") for o in meta.get("ownerReferences") or []
                 if o.get("kind") == "StatefulSet"),
                "",
            )  # fmt: skip
            ready = any(
                c.get("type") == "Ready" and c.get("status") == "True"
                for c in status.get("conditions") or []
            )
            owned.setdefault(owner, []).append(
                SetPod(
                    name=meta.get("name", ""),
                    revision=(meta.get("labels") or {}).get("controller-revision-hash", ""),
                    ready=ready,
                    deleting=bool(meta.get("deletionTimestamp")),
                )
            )
        out = []
        for sts in sets:
            meta, spec, status = sts["metadata"], sts.get("spec", {}), sts.get("status", {})
            strategy = (spec.get("updateStrategy") or {}).get("type", "RollingUpdate")
            policy = spec.get("podManagementPolicy", "OrderedReady")
            out.append(
                StatefulSetPods(
                    name=meta["name"],
                    update_revision=str(status.get("updateRevision") or ""),
                    observed=int(status.get("observedGeneration") or 0)
                    >= int(meta.get("generation") or 0),
                    ordered_rolling=strategy == "RollingUpdate" and policy == "OrderedReady",
                    pods=tuple(owned.get(meta["name"], [])),
                )
            )
        return out

    def delete_pod(self, namespace: str, name: str) -> bool:
        """Delete a pod (its controller makes a new one); False when it was gone already."""
        self.count_request()
        try:
            with translate(f"delete pod {namespace}/{name}"):
                self.core.delete_namespaced_pod(name, namespace, _request_timeout=self.timeout)
        except NotFound:
            return False
        return True

    # -- metrics --------------------------------------------------------------------

    def list_pod_metrics(self, namespace: str | None = None) -> list[dict[str, Any]]:
        """PodMetrics (metrics.k8s.io/v1beta1) of tenant pods: one request for all."""
        kw: dict[str, Any] = {"label_selector": TENANT_LABEL, "_request_timeout": self.timeout}
        self.count_request()
        with translate("list pod metrics (metrics.k8s.io)"):
            if namespace:
                doc = self.custom.list_namespaced_custom_object(
                    "metrics.k8s.io", "v1beta1", namespace, "pods", **kw
                )
            else:
                doc = self.custom.list_cluster_custom_object(
                    "metrics.k8s.io", "v1beta1", "pods", **kw
                )
        return list(doc.get("items") or [])

    # -- nodes and pods -------------------------------------------------------------

    def list_nodes(self) -> list[Node]:
        with translate("list nodes"):
            doc = self.get_json("/api/v1/nodes")
        return [Node.from_json(item) for item in doc.get("items") or []]

    def list_tenant_pods(self) -> list[Pod]:
        """Pods of every tenant (labelled with a tenant id), in every namespace."""
        items = self.list_items("list tenant pods", "/api/v1/pods", TENANT_LABEL)
        return [Pod.from_json(item) for item in items]

    def list_pods(self, namespace: str, selector: str) -> list[Pod]:
        """Pods of ``namespace`` matching the label selector ``selector``."""
        path = f"/api/v1/namespaces/{quote(namespace)}/pods"
        items = self.list_items(f"list pods of {namespace} ({selector})", path, selector)
        return [Pod.from_json(item) for item in items]

    def pod_log(self, namespace: str, pod: str, container: str) -> str:
        """The log of one container of a pod, as text."""
        self.count_request()
        with translate(f"read log of pod {namespace}/{pod}"):
            text = self.core.read_namespaced_pod_log(
                pod, namespace, container=container, _request_timeout=self.timeout
            )
        return str(text)

    def job_pod_logs(self, namespace: str, job: str, container: str) -> list[str]:
        """The logs of ``container`` in each pod of Job ``job`` (selected by its
        ``job-name`` label)."""
        return [
            self.pod_log(namespace, pod.name, container)
            for pod in self.list_pods(namespace, f"job-name={job}")
        ]

    # -- deployments ----------------------------------------------------------------

    def list_deployments(self, namespace: str, selector: str) -> list[Deployment]:
        """Deployments of ``namespace`` matching the label selector ``selector``."""
        path = f"/apis/apps/v1/namespaces/{quote(namespace)}/deployments"
        items = self.list_items(f"list deployments of {namespace} ({selector})", path, selector)
        return [Deployment.from_json(item) for item in items]

    # -- cronjobs and jobs ------------------------------------------------------------

    def list_cronjobs(self, namespace: str, selector: str) -> list[dict[str, Any]]:
        """CronJobs of ``namespace`` matching ``selector``, as plain JSON objects (camelCase,
        as the API serves them): the backups clone their Job template whole."""
        path = f"/apis/batch/v1/namespaces/{quote(namespace)}/cronjobs"
        return self.list_items(f"list CronJobs of {namespace} ({selector})", path, selector)

    def create_job(self, body: dict[str, Any]) -> str:
        """Create the Job ``body`` (a plain JSON object) in its ``metadata.namespace``;
        returns its uid."""
        namespace, name = body["metadata"]["namespace"], body["metadata"]["name"]
        self.count_request()
        with translate(f"create job {namespace}/{name}"):
            made = client.BatchV1Api(self.api).create_namespaced_job(
                namespace, body, _request_timeout=self.timeout
            )
        return str(made.metadata.uid)

    def create_network_policy(self, body: dict[str, Any]) -> None:
        """Create the NetworkPolicy ``body`` (a plain JSON object) in its namespace."""
        namespace, name = body["metadata"]["namespace"], body["metadata"]["name"]
        self.count_request()
        with translate(f"create network policy {namespace}/{name}"):
            client.NetworkingV1Api(self.api).create_namespaced_network_policy(
                namespace, body, _request_timeout=self.timeout
            )

    def read_job(self, namespace: str, name: str) -> Job:
        """A Job's name, labels and status; NotFound if it is gone."""
        with translate(f"read job {namespace}/{name}"):
            path = f"/apis/batch/v1/namespaces/{quote(namespace)}/jobs/{quote(name)}"
            return Job.from_json(self.get_json(path))

    def list_jobs(self, namespace: str, selector: str) -> list[Job]:
        """Jobs of ``namespace`` matching the label selector ``selector``."""
        path = f"/apis/batch/v1/namespaces/{quote(namespace)}/jobs"
        items = self.list_items(f"list jobs of {namespace} ({selector})", path, selector)
        return [Job.from_json(item) for item in items]


def _opaque_secret(name: str, data: dict[str, str], labels: dict[str, str]) -> client.V1Secret:
    """An Opaque Secret's body from ``data`` as text (``stringData``)."""
    return client.V1Secret(
        metadata=client.V1ObjectMeta(name=name, labels=labels), type="Opaque", string_data=data
    )


def _timestamp(value: Any) -> datetime | None:
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if isinstance(value, str) and value:
        with contextlib.suppress(ValueError):
            return datetime.fromisoformat(value.replace("Z", "+00:00"))
    return None
