"""Tenant CPU and memory from the metrics.k8s.io API (metrics-server, usage simulated by kwok)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator

import pytest
from click.testing import CliRunner

from saasodoo.cli.fleet import usage
from saasodoo.context import Context
from saasodoo.core.spec import TenantSpec
from saasodoo.errors import NotFound
from saasodoo.settings import Settings
from saasodoo.tenants import Tenants
from saasodoo.usage import TenantUsage, tenant_usage
from tests.support import Cluster, eventually

pytestmark = pytest.mark.cluster

TID = "use-metrics"


@pytest.fixture
def tenants(kube: Cluster) -> Iterator[Tenants]:
    t = Tenants(
        Context(
            Settings(
                kubeconfig=kube.kubeconfig, helm_binary=str(kube.tools.helm(4)), helm_timeout="5m"
            )
        )
    )

    def cleanup(wait: bool) -> None:
        try:
            asyncio.run(t.delete(TID, final_backup=False, wait=wait))
        except NotFound:
            pass

    cleanup(True)
    yield t
    cleanup(False)


def test_usage_of_a_tenant_from_metrics_api(kube: Cluster, tenants: Tenants) -> None:
    asyncio.run(tenants.create(TenantSpec.parse({"id": TID, "admin_email": "a@use.example"})))

    def measured() -> TenantUsage | None:
        (u,) = tenant_usage(tenants.ctx.kube, TID)
        components = {p.component for p in u.pods}
        complete = {"odoo", "postgresql"} <= components
        return u if complete and all(p.cpu_millicores > 0 for p in u.pods) else None

    # metrics-server scrapes every 15 s and needs two samples for a CPU rate.
    found = eventually(measured, timeout=150, interval=3, what="pod metrics of the tenant")
    assert found.tenant_id == TID
    assert found.cpu_millicores > 0 and found.memory_bytes > 0
    assert all(p.namespace == f"tenant-{TID}" for p in found.pods)

    # The fleet call lists it too, from one request.
    before = tenants.ctx.kube.requests
    everyone = {u.tenant_id: u for u in tenant_usage(tenants.ctx.kube)}
    assert tenants.ctx.kube.requests - before == 1
    assert everyone[TID].memory_bytes > 0

    result = CliRunner().invoke(usage, [TID, "-o", "json"], obj=tenants.ctx.settings)
    assert result.exit_code == 0, result.output
    (doc,) = json.loads(result.output)
    assert doc["id"] == TID and doc["cpu_millicores"] > 0 and doc["memory_bytes"] > 0
