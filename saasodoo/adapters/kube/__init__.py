"""The Kubernetes API, through the official client, with errors translated: the ``Kube``
adapter and the types it returns.

``Kube`` is one facade over four concerns, each in its own module of this package:
``transport`` (the ApiClient, raw-JSON calls, request counting, ``translate``), ``objects``
(namespaces, volumes, ConfigMaps, Secrets, workloads, pods, Jobs, nodes, metrics),
``ownership`` (server-side-apply field ownership handed back to Helm) and ``helmstorage``
(Helm's release records in their storage Secrets). Every name is importable from here.
"""

from __future__ import annotations

from saasodoo.adapters.kube.helmstorage import HelmStorage
from saasodoo.adapters.kube.objects import (
    ConfigMap,
    Deployment,
    Job,
    JobCondition,
    KubeObjects,
    Namespace,
    Node,
    Pod,
)
from saasodoo.adapters.kube.ownership import (
    LEGACY_MANAGERS,
    REPLICAS_FIELD,
    TEMPLATE_FIELD,
    FieldOwnership,
    hand_back_field,
)
from saasodoo.adapters.kube.transport import (
    FIELD_MANAGER,
    MERGE_PATCH,
    PARTIAL_METADATA,
    KubeTransport,
    translate,
)

__all__ = [
    "FIELD_MANAGER",
    "LEGACY_MANAGERS",
    "MERGE_PATCH",
    "PARTIAL_METADATA",
    "REPLICAS_FIELD",
    "TEMPLATE_FIELD",
    "ConfigMap",
    "Deployment",
    "FieldOwnership",
    "HelmStorage",
    "Job",
    "JobCondition",
    "Kube",
    "KubeObjects",
    "KubeTransport",
    "Namespace",
    "Node",
    "Pod",
    "hand_back_field",
    "translate",
]


class Kube(KubeObjects, FieldOwnership, HelmStorage):
    """Typed access to the few API calls saasodoo makes (one ApiClient, see the modules of
    this package for each concern)."""
