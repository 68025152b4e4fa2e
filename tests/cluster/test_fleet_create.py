"""Many tenants at once: all become ready and are spread over the nodes."""

from __future__ import annotations

import asyncio

import pytest

from saasodoo.context import Context
from saasodoo.core.spec import TenantSpec
from saasodoo.errors import NotFound
from saasodoo.settings import Settings
from saasodoo.tenants import Tenant, Tenants
from tests.support import Cluster

pytestmark = pytest.mark.cluster

COUNT = 20


def test_twenty_tenants_created_concurrently_are_ready_and_spread(kube: Cluster) -> None:
    settings = Settings(
        kubeconfig=kube.kubeconfig, helm_binary=str(kube.tools.helm(4)), helm_timeout="5m"
    )
    tenants = Tenants(Context(settings))
    ids = [f"fleet{i:02d}" for i in range(COUNT)]

    async def cleanup() -> None:
        async def one(tid: str) -> None:
            try:
                await tenants.delete(tid, final_backup=False, wait=False)
            except NotFound:
                pass

        await asyncio.gather(*(one(t) for t in ids))

    async def create_all() -> list[Tenant]:
        specs = [TenantSpec.parse({"id": t, "admin_email": f"a@{t}.example"}) for t in ids]
        return await asyncio.gather(*(tenants.create(s) for s in specs))

    asyncio.run(cleanup())
    for tid in ids:
        kube_ns = f"tenant-{tid}"
        if kube.core.list_namespace(field_selector=f"metadata.name={kube_ns}").items:
            tenants.ctx.kube.wait_namespace_gone(kube_ns, timeout=120)
    try:
        created = asyncio.run(create_all())
        assert [t.status.reason for t in created] == ["InstallSucceeded"] * COUNT

        listed = {t.spec.id: t for t in tenants.list_tenants()}
        assert all(listed[t].status.reason in ("InstallSucceeded", "UpgradeSucceeded") for t in ids)

        distribution = tenants.distribution()
        # Nodes tenants may use: not the tainted real nodes (only a node_pool tolerates them).
        nodes = [
            n.metadata.name
            for n in kube.core.list_node().items
            if not [t for t in n.spec.taints or [] if t.effect == "NoSchedule"]
        ]
        per_node = {n: len(set(distribution.get(n, [])) & set(ids)) for n in nodes}
        # Every node carries tenants and none carries (a pod of) nearly all of them: a tenant's
        # Odoo and PostgreSQL pods may sit on two nodes, so counts add up to more than COUNT.
        assert all(count > 0 for count in per_node.values()), per_node
        assert max(per_node.values()) <= 0.8 * COUNT, per_node
    finally:
        asyncio.run(cleanup())
