"""GitOps export: a tenant's ``OdooTenant`` (what a GitOps repository keeps when saasodoo's
operator applies it), its computed values file, and a Flux ``HelmRelease`` for its release
(so that Flux can take over from saasodoo instead)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from saasodoo.context import Context
from saasodoo.core.crd import API_VERSION, KIND, from_tenant_spec, owner_labels
from saasodoo.core.spec import TENANT_LABEL, TenantSpec
from saasodoo.errors import InvalidInput
from saasodoo.settings import REPO_ROOT
from saasodoo.tenants import Tenants


@dataclass(frozen=True)
class FluxSource:
    """Where Flux finds the chart: a GitRepository (chart path) or a HelmRepository."""

    kind: str = "GitRepository"
    name: str = "saasodoo"
    namespace: str = "flux-system"
    interval: str = "10m"


async def export(
    ctx: Context,
    tenant_id: str,
    *,
    flux: bool = False,
    odootenant: bool = False,
    source: FluxSource | None = None,
) -> dict[str, str]:
    """The tenant's computed values file, with ``odootenant`` its OdooTenant, and with
    ``flux`` a Flux HelmRelease.

    Returns file name -> YAML text. Both come from the recorded spec, exactly as saasodoo
    computes them; the values hold no secret (the admin password stays in its Secret,
    referenced by name). The HelmRelease manages the same release (name, namespace,
    chart, values), so Flux can take over from saasodoo.
    """
    tenants = Tenants(ctx)
    ns = ctx.record.namespace(tenant_id)
    spec = await tenants.settled(ns)
    values, digest = await tenants.desired(spec, suspended=ctx.record.suspended(ns))
    chart_version = await ctx.helm.digest_chart_version()
    header = (
        f"# Values of tenant {spec.id} (release {spec.release} in namespace {spec.namespace}),\n"
        f"# computed by saasodoo for chart version {chart_version}; digest {digest}.\n"
    )
    files = {f"{spec.id}.values.yaml": header + yaml.safe_dump(values.values, sort_keys=False)}
    if odootenant:
        doc = odootenant_manifest(
            spec, suspended=ctx.record.suspended(ns), owner=ctx.record.owner(ns),
            namespace=ctx.settings.system_namespace,
        )  # fmt: skip
        files[f"{spec.id}.odootenant.yaml"] = yaml.safe_dump(doc, sort_keys=False)
    if flux:
        doc = helm_release(ctx, spec, values.values, chart_version, source or FluxSource())
        files[f"{spec.id}.helmrelease.yaml"] = yaml.safe_dump(doc, sort_keys=False)
    return files


def odootenant_manifest(
    spec: TenantSpec, *, suspended: bool, owner: str | None, namespace: str
) -> dict[str, Any]:
    """The ``saasodoo.dev/v1alpha1`` OdooTenant of ``spec`` in the platform's ``namespace``
    (no status, no secret: the admin password stays in the tenant's Secret). Applied to a
    cluster whose operator already runs the tenant, it changes nothing (the adoption's
    spec)."""
    body_spec = from_tenant_spec(spec, suspended=suspended, owner=owner)
    meta: dict[str, Any] = {"name": spec.id, "namespace": namespace}
    if owner_labels(body_spec):
        meta["labels"] = owner_labels(body_spec)
    return {"apiVersion": API_VERSION, "kind": KIND, "metadata": meta, "spec": body_spec}


def helm_release(
    ctx: Context,
    spec: TenantSpec,
    values: dict[str, Any],
    chart_version: str,
    source: FluxSource,
) -> dict[str, Any]:
    """A ``helm.toolkit.fluxcd.io/v2`` HelmRelease for the tenant's release."""
    ref = ctx.settings.chart
    if ref.startswith(("oci://", "http://", "https://")):
        chart = ref.rstrip("/").rsplit("/", 1)[-1]
    else:
        path = Path(ref).resolve()
        try:
            chart = "./" + str(path.relative_to(REPO_ROOT))
        except ValueError:
            chart = str(path)
    if source.kind not in ("GitRepository", "HelmRepository", "Bucket"):
        raise InvalidInput(f"unknown Flux source kind {source.kind!r}")
    return {
        "apiVersion": "helm.toolkit.fluxcd.io/v2",
        "kind": "HelmRelease",
        "metadata": {
            "name": spec.release,
            "namespace": spec.namespace,
            "labels": {TENANT_LABEL: spec.id, "app.kubernetes.io/managed-by": "flux"},
        },
        "spec": {
            "releaseName": spec.release,
            "storageNamespace": spec.namespace,
            "interval": source.interval,
            "chart": {
                "spec": {
                    "chart": chart,
                    "version": chart_version,
                    "sourceRef": {
                        "kind": source.kind,
                        "name": source.name,
                        "namespace": source.namespace,
                    },
                }
            },
            "install": {"createNamespace": False, "remediation": {"retries": 3}},
            "upgrade": {"remediation": {"retries": 3, "remediateLastFailure": True}},
            "values": values,
        },
    }
