"""Small fakes of the Kube and Helm adapters for unit tests of the lifecycle, the reconciler
and the fleet: in memory, only what those call, each write recorded in ``calls``. They
subclass the adapters, so a signature that drifts from the adapter's fails mypy (and a
method not faked fails loudly: no client is ever built).

A fake keeps the state a test asserts on (namespaces with their labels and annotations,
ConfigMaps, Secrets; releases as lists of revisions with their values) and fails on demand:
``FakeHelm.fail_next`` raises the given error from the next install/upgrade (or rollback).
"""

from __future__ import annotations

import copy
import itertools
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from kubernetes.client.exceptions import ApiException

from saasodoo.adapters.dns import Resolver
from saasodoo.adapters.helm import Helm, Revision, local_chart_schema
from saasodoo.adapters.kube import ConfigMap, Kube, Namespace, Pod
from saasodoo.core.spec import MANAGED_BY, MANAGED_BY_LABEL, TENANT_LABEL
from saasodoo.core.status import ReleaseInfo, StatefulSetPods, Workload
from saasodoo.errors import Conflict, HelmFailure, SaasodooError
from saasodoo.settings import Settings

CHART_VERSION = "1.0.0"
_UIDS = itertools.count(1)


@dataclass
class FakeKube(Kube):
    """Namespaces, ConfigMaps and Secrets in dicts; ``calls`` names every write."""

    namespaces: dict[str, Namespace] = field(default_factory=dict)
    configmaps: dict[tuple[str, str], ConfigMap] = field(default_factory=dict)
    secrets: dict[tuple[str, str], dict[str, str]] = field(default_factory=dict)
    calls: list[str] = field(default_factory=list)
    #: Raised by the next ``patch_namespace`` (then cleared).
    fail_patch: SaasodooError | None = None
    #: The releases' storage (helm keeps them in Secrets): heads listed and unlocked here.
    helm: FakeHelm | None = None
    #: CronJobs by namespace, as the API serves them (plain JSON).
    cronjobs: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    #: PersistentVolumeClaims by (namespace, name) and PersistentVolumes by name (plain JSON).
    claims: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    volumes: dict[str, dict[str, Any]] = field(default_factory=dict)

    def list_pods(self, namespace: str, selector: str) -> list[Pod]:
        return []

    #: StatefulSets with their pods, by namespace (``statefulset_pods``).
    stateful_sets: dict[str, list[StatefulSetPods]] = field(default_factory=dict)

    def read_namespace(self, name: str) -> Namespace | None:
        return self.namespaces.get(name)

    def create_tenant_namespace(
        self, name: str, tenant_id: str, labels: dict[str, str], annotations: dict[str, str]
    ) -> None:
        if name in self.namespaces:
            raise Conflict(f"namespace {name} exists")
        self.calls.append(f"create namespace {name}")
        self.namespaces[name] = Namespace(
            name,
            {TENANT_LABEL: tenant_id, MANAGED_BY_LABEL: MANAGED_BY, **labels},
            dict(annotations),
            "Active",
            uid=f"uid-{name}-{next(_UIDS)}",  # each life of a name has its own, as in Kubernetes
        )

    def patch_namespace(
        self,
        name: str,
        *,
        labels: dict[str, str | None] | None = None,
        annotations: dict[str, str | None] | None = None,
    ) -> None:
        if self.fail_patch is not None:
            error, self.fail_patch = self.fail_patch, None
            raise error
        ns = self.namespaces[name]
        self.calls.append(f"patch namespace {name}")
        self.namespaces[name] = Namespace(
            name, _merged(ns.labels, labels), _merged(ns.annotations, annotations), ns.phase, ns.uid
        )

    def delete_namespace(self, name: str) -> bool:
        self.calls.append(f"delete namespace {name}")
        return self.namespaces.pop(name, None) is not None

    def wait_namespace_gone(self, name: str, timeout: float) -> None:
        assert name not in self.namespaces

    def list_tenant_namespaces(self, selector: str | None = None) -> list[Namespace]:
        return [n for n in self.namespaces.values() if TENANT_LABEL in n.labels]

    def list_release_heads(
        self, namespace: str | None = None, *, explain_failed: bool = False
    ) -> dict[tuple[str, str], ReleaseInfo]:
        if self.helm is None:
            return {}
        return {key: self.helm.head(key) for key, revs in self.helm.releases.items() if revs}

    def release_revisions(self, namespace: str, release: str) -> list[ReleaseInfo]:
        revisions = (self.helm.releases if self.helm else {}).get((namespace, release), [])
        return [ReleaseInfo(f.revision.revision, f.revision.status, f.revision.updated)
                for f in revisions]  # fmt: skip

    def _fake_revision(self, namespace: str, release: str, revision: int) -> FakeRevision | None:
        revisions = (self.helm.releases if self.helm else {}).get((namespace, release), [])
        return revisions[revision - 1] if 0 < revision <= len(revisions) else None

    def release_description(self, namespace: str, release: str, revision: int) -> str:
        found = self._fake_revision(namespace, release, revision)
        return found.revision.description if found else ""

    def release_values(self, namespace: str, release: str, revision: int) -> dict[str, Any] | None:
        found = self._fake_revision(namespace, release, revision)
        return copy.deepcopy(found.values) if found else None

    def create_secret_if_absent(
        self, namespace: str, name: str, data: dict[str, str], labels: dict[str, str]
    ) -> bool:
        if (namespace, name) in self.secrets:
            return False
        self.calls.append(f"create secret {namespace}/{name}")
        self.secrets[(namespace, name)] = dict(data)
        return True

    def list_workloads(self, namespace: str | None = None) -> dict[str, list[Workload]]:
        return {}

    def mend_replicas_ownership(self, namespace: str) -> list[str]:
        return []

    def claim_sizes(self, namespace: str) -> dict[str, str]:
        return {}

    def list_cronjobs(self, namespace: str, selector: str) -> list[dict[str, Any]]:
        return copy.deepcopy(self.cronjobs.get(namespace, []))

    def read_claim(self, namespace: str, name: str) -> dict[str, Any] | None:
        return copy.deepcopy(self.claims.get((namespace, name)))

    def list_claims(self, namespace: str, selector: str) -> list[dict[str, Any]]:
        return [
            copy.deepcopy(c)
            for (ns, _), c in self.claims.items()
            if ns == namespace and selector in (c["metadata"].get("labels") or {})
        ]

    def create_claim(self, namespace: str, body: dict[str, Any]) -> None:
        name = body["metadata"]["name"]
        if (namespace, name) in self.claims:
            raise Conflict(f"claim {namespace}/{name} exists")
        self.calls.append(f"create claim {namespace}/{name}")
        claim = copy.deepcopy(body)
        claim["metadata"].update(namespace=namespace, uid=f"uid-{name}")
        self.claims[(namespace, name)] = claim

    def delete_claim(self, namespace: str, name: str) -> bool:
        self.calls.append(f"delete claim {namespace}/{name}")
        return self.claims.pop((namespace, name), None) is not None

    def read_volume(self, name: str) -> dict[str, Any] | None:
        return copy.deepcopy(self.volumes.get(name))

    def list_volumes(self, selector: str) -> list[dict[str, Any]]:
        return [
            copy.deepcopy(v)
            for v in self.volumes.values()
            if selector in (v["metadata"].get("labels") or {})
        ]

    def patch_volume(self, name: str, body: dict[str, Any]) -> dict[str, Any]:
        self.calls.append(f"patch volume {name}")
        self.volumes[name] = _merge_patch(self.volumes[name], body)
        return copy.deepcopy(self.volumes[name])

    def retain_volumes(self, namespace: str, tenant_id: str) -> list[str]:
        self.calls.append(f"retain volumes {namespace}")
        return []

    def statefulset_pods(self, namespace: str) -> list[StatefulSetPods]:
        return list(self.stateful_sets.get(namespace, []))

    def delete_pod(self, namespace: str, name: str) -> bool:
        self.calls.append(f"delete pod {namespace}/{name}")
        return True

    def unlock_release(self, namespace: str, release: str, revision: int, reason: str) -> str:
        self.calls.append(f"unlock release {namespace}/{release} {revision}")
        assert self.helm is not None
        found = self.helm.releases[(namespace, release)][revision - 1]
        before = found.revision.status
        found.revision = _with_status(found.revision, "failed")
        return before

    def create_configmap(
        self,
        namespace: str,
        name: str,
        *,
        labels: dict[str, str],
        data: dict[str, str],
        owner: Namespace | None = None,
    ) -> ConfigMap:
        if (namespace, name) in self.configmaps:
            raise Conflict(f"configmap {namespace}/{name} exists")
        owners = (owner.uid,) if owner is not None else ()
        cm = ConfigMap(name, f"uid-{name}", dict(labels), dict(data), owners, datetime.now(UTC))
        self.configmaps[(namespace, name)] = cm
        return cm

    def create_namespace_if_absent(self, name: str) -> None:
        return None

    def read_configmap(self, namespace: str, name: str) -> ConfigMap | None:
        return self.configmaps.get((namespace, name))

    def list_configmaps(self, namespace: str, selector: str) -> list[ConfigMap]:
        wanted = dict(kv.split("=", 1) for kv in selector.split(","))
        return [
            cm
            for (ns, _), cm in self.configmaps.items()
            if ns == namespace and all(cm.labels.get(k) == v for k, v in wanted.items())
        ]

    def delete_configmap(self, namespace: str, name: str, uid: str | None = None) -> bool:
        return self.configmaps.pop((namespace, name), None) is not None

    #: OdooTenants by name (the platform namespace's), as the API serves them: what the
    #: tenant record's store (``saasodoo.adapters.records``) reads and writes through
    #: ``call_json``. None of them: every tenant's record is on its namespace.
    odootenants: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: Raised by the next PATCH of an OdooTenant's status (then cleared).
    fail_status: SaasodooError | None = None
    #: An OdooTenant CRD older than ``status.record``: a status patch loses it.
    old_crd: bool = False

    def call_json(
        self,
        method: str,
        path: str,
        query: list[tuple[str, str]],
        headers: dict[str, str],
        body: Any = None,
    ) -> Any:
        """The OdooTenants' paths (GET one or the list, PATCH of the status) and the list
        of Services (none: the sweep's); any other request fails the test."""
        if method == "GET" and path == "/api/v1/services":
            return {"items": []}
        base, found, rest = path.partition("/odootenants")
        if not found or not base.startswith("/apis/saasodoo.dev/"):
            raise AssertionError(f"not faked: {method} {path}")
        name, _, sub = rest.strip("/").partition("/")
        if not name and method == "GET":
            return {"items": [copy.deepcopy(o) for o in self.odootenants.values()]}
        obj = self.odootenants.get(name)
        if obj is None:
            raise ApiException(status=404, reason="Not Found")
        if method == "GET":
            return copy.deepcopy(obj)
        if method == "PATCH" and sub == "status":
            if self.fail_status is not None:
                error, self.fail_status = self.fail_status, None
                raise error
            self.calls.append(f"patch odootenant {name} status")
            obj["status"] = _merge_patch(obj.get("status") or {}, body["status"])
            if self.old_crd:  # a CRD without status.record: the API server prunes it
                obj["status"].pop("record", None)
            return copy.deepcopy(obj)
        raise AssertionError(f"not faked: {method} {path}")


def _merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386 JSON merge patch: objects merged, ``None`` removes, anything else replaces."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    out = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            out.pop(key, None)
        else:
            out[key] = _merge_patch(out.get(key), value)
    return out


def _merged(old: Any, patch: dict[str, str | None] | None) -> dict[str, str]:
    out = dict(old)
    for key, value in (patch or {}).items():
        if value is None:
            out.pop(key, None)
        else:
            out[key] = value
    return out


@dataclass
class FakeRevision:
    revision: Revision
    values: dict[str, Any]


@dataclass
class FakeHelm(Helm):
    """Releases by (namespace, name), each a list of revisions with the values applied;
    ``commands`` names each helm command that changes a release.
    The schema check uses the real chart's values.schema.json (``local_schema``)."""

    settings: Settings = field(default_factory=Settings)
    releases: dict[tuple[str, str], list[FakeRevision]] = field(default_factory=dict)
    #: ``install`` of each install_or_upgrade call (False: a plain ``helm upgrade``)
    installs: list[bool] = field(default_factory=list)
    commands: list[str] = field(default_factory=list)
    #: Raised by the next install/upgrade or rollback (then cleared); the failed upgrade
    #: leaves a failed revision, as helm does.
    fail_next: SaasodooError | None = None
    #: Raised by every install/upgrade of these releases (by name).
    failing: dict[str, SaasodooError] = field(default_factory=dict)
    #: Raised by every ``helm test`` of these releases (by name).
    failing_tests: dict[str, SaasodooError] = field(default_factory=dict)

    def head(self, key: tuple[str, str]) -> ReleaseInfo:
        r = self.releases[key][-1].revision
        return ReleaseInfo(r.revision, r.status, r.updated, r.description, r.chart)

    def add_revision(
        self, namespace: str, release: str, status: str, values: dict[str, Any], why: str
    ) -> Revision:
        """A revision made outside saasodoo (by hand, or by a process that died)."""
        return self._add((namespace, release), status, values, why)

    def local_schema(self) -> tuple[dict[str, Any], dict[str, Any]] | None:
        return local_chart_schema(self.settings.chart)

    async def digest_chart_version(self) -> str:
        return CHART_VERSION

    def _add(self, key: tuple[str, str], status: str, values: dict[str, Any], why: str) -> Revision:
        revisions = self.releases.setdefault(key, [])
        for old in revisions if status == "deployed" else ():
            if old.revision.status == "deployed":
                old.revision = _with_status(old.revision, "superseded")
        rev = Revision(
            len(revisions) + 1, status, datetime.now(UTC), why, f"odoo-tenant-{CHART_VERSION}"
        )
        revisions.append(FakeRevision(rev, copy.deepcopy(values)))
        return rev

    def _fail(self, key: tuple[str, str], values: dict[str, Any], why: str) -> None:
        error = self.failing.get(key[1])
        if error is None and self.fail_next is not None:
            error, self.fail_next = self.fail_next, None
        if error is not None:
            if key in self.releases or isinstance(error, HelmRan):
                self._add(key, "failed", values, why)
            raise error

    async def install_or_upgrade(
        self,
        release: str,
        namespace: str,
        values: dict[str, Any],
        *,
        description: str,
        wait: bool = True,
        timeout: str | None = None,
        install: bool = True,
    ) -> Revision:
        self.commands.append(f"upgrade {namespace}/{release}")
        self.installs.append(install)
        if not install and not self.releases.get((namespace, release)):
            # helm upgrade without --install of a release with no revision
            raise HelmFailure(f'helm upgrade {release}: "{release}" has no deployed releases')
        self._fail((namespace, release), values, description)
        return self._add((namespace, release), "deployed", values, description)

    async def status(self, release: str, namespace: str) -> ReleaseInfo | None:
        if not self.releases.get((namespace, release)):
            return None
        return self.head((namespace, release))

    async def history(self, release: str, namespace: str) -> list[Revision]:
        return [r.revision for r in self.releases.get((namespace, release), [])]

    async def get_values(
        self, release: str, namespace: str, revision: int | None = None
    ) -> dict[str, Any]:
        revisions = self.releases.get((namespace, release), [])
        found = revisions[-1] if revision is None else revisions[revision - 1]
        return copy.deepcopy(found.values)

    async def get_manifest(
        self, release: str, namespace: str, revision: int | None = None
    ) -> list[dict[str, Any]]:
        """Nothing, or the PostgreSQL StatefulSet with its image when the revision's values
        set ``postgresql.image.tag``."""
        revisions = self.releases.get((namespace, release), [])
        found = revisions[-1] if revision is None else revisions[revision - 1]
        tag = (found.values.get("postgresql") or {}).get("image", {}).get("tag")
        if not tag:
            return []
        container = {"name": "postgresql", "image": f"docker.io/library/postgres:{tag}"}
        return [{"kind": "StatefulSet", "metadata": {"name": f"{release}-odoo-tenant-postgresql"},
                 "spec": {"template": {"spec": {"containers": [container]}}}}]  # fmt: skip

    async def rollback(
        self, release: str, namespace: str, revision: int | None, *, wait: bool = True
    ) -> None:
        self.commands.append(f"rollback {namespace}/{release} to {revision}")
        key = (namespace, release)
        revision = revision or len(self.releases[key]) - 1
        values = self.releases[key][revision - 1].values
        self._fail(key, values, f"Rollback to {revision}")
        self._add(key, "deployed", values, f"Rollback to {revision}")

    async def test(self, release: str, namespace: str, *, timeout: str | None = None) -> None:
        self.commands.append(f"test {namespace}/{release}")
        error = self.failing_tests.get(release)
        if error is not None:
            raise error

    async def uninstall(self, release: str, namespace: str, *, wait: bool = True) -> bool:
        self.commands.append(f"uninstall {namespace}/{release}")
        return self.releases.pop((namespace, release), None) is not None

    async def template(self, release: str, namespace: str, values: dict[str, Any]) -> str:
        return ""


class HelmRan(SaasodooError):
    """A helm failure that leaves a failed revision even on a first install."""

    exit_code = 6


def _with_status(rev: Revision, status: str) -> Revision:
    return Revision(rev.revision, status, rev.updated, rev.description, rev.chart, rev.app_version)


@dataclass
class FakeResolver(Resolver):
    """DNS answers from ``records``: (name, "TXT" or "CNAME") -> values; ``looked_up`` lists
    every question asked."""

    records: dict[tuple[str, str], list[str]] = field(default_factory=dict)
    looked_up: list[str] = field(default_factory=list)

    def txt(self, name: str) -> list[str]:
        self.looked_up.append(f"TXT {name}")
        return list(self.records.get((name, "TXT"), []))

    def cname(self, name: str) -> str | None:
        self.looked_up.append(f"CNAME {name}")
        values = self.records.get((name, "CNAME"), [])
        return values[0] if values else None


@dataclass
class FakeResources:
    """saasodoo's custom resources of one kind in a dict (OdooTenants, requests): what
    ``TenantResources`` offers its readers and writers; ``create`` names an object from
    ``generateName`` as the API server does (a counter for the random suffix)."""

    kind: str = "OdooTenant"
    objs: dict[str, dict[str, Any]] = field(default_factory=dict)
    calls: list[str] = field(default_factory=list)
    clock: Any = field(default_factory=lambda: itertools.count(1))
    #: Raised by the next ``create`` (then cleared).
    fail_create: SaasodooError | None = None

    def get(self, name: str) -> dict[str, Any] | None:
        self.calls.append(f"get {self.kind} {name}")
        found = self.objs.get(name)
        return copy.deepcopy(found) if found is not None else None

    def list(self, selector: str | None = None) -> dict[str, Any]:
        self.calls.append(f"list {self.kind} {selector}")
        key, _, value = (selector or "").partition("=")
        labels = [(o, o["metadata"].get("labels") or {}) for o in self.objs.values()]
        found = [copy.deepcopy(o) for o, mine in labels if not selector or mine.get(key) == value]
        return {"items": found}

    def create(self, body: dict[str, Any]) -> dict[str, Any]:
        if self.fail_create is not None:
            error, self.fail_create = self.fail_create, None
            raise error
        meta = dict(body["metadata"])
        tick = next(self.clock)
        if "generateName" in meta:
            meta["name"] = meta.pop("generateName") + f"x{tick:04d}"
        elif meta["name"] in self.objs:  # the API server's AlreadyExists
            raise Conflict(f"create {self.kind} {meta['name']}: already exists")
        meta.update(
            generation=1, creationTimestamp=f"2026-12-06T08:{tick // 60:02d}:{tick % 60:02d}Z"
        )
        obj = {"kind": self.kind, **body, "metadata": meta}
        self.objs[meta["name"]] = obj
        self.calls.append(f"create {self.kind} {meta['name']}")
        return copy.deepcopy(obj)

    def delete(self, name: str) -> bool:
        self.calls.append(f"delete {self.kind} {name}")
        return self.objs.pop(name, None) is not None
