"""The operator's controllers in process, for the real-node tests of what the operator does
(copies, templated creates): one turn of a tenant at a time, as the work queue runs them."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from saasodoo.adapters.resources import CustomResources, TenantResources, apply_crd
from saasodoo.context import Context
from saasodoo.core import operations as ops
from saasodoo.core.conditions import get_condition
from saasodoo.core.crd import crd_manifest
from saasodoo.operator.controller import TenantController
from saasodoo.operator.requests import RequestController, RequestIndex
from saasodoo.settings import Settings


class Operator:
    """The operator's controllers in process: a turn of a tenant is its oldest request, or
    its reconcile (saasodoo.operator.requests)."""

    def __init__(self, settings: Settings, namespace: str) -> None:
        self.settings = settings
        self.namespace = namespace
        self.ctx = Context(settings)
        self.controller = TenantController(self.ctx, TenantResources(self.ctx.kube, namespace))
        self.tenants = self.controller.tenants
        self.index = RequestIndex()
        self.requests = RequestController(self.controller, self.index)
        self.kinds = {op.kind: CustomResources(self.ctx.kube, namespace, op.plural, op.kind)
                      for op in (ops.BACKUP, ops.REFRESH)}  # fmt: skip
        self.backups = self.kinds[ops.BACKUP.kind]

    def install(self) -> Operator:
        """The CRDs applied and the platform namespace made, as the operator's start does."""
        apply_crd(self.ctx.kube, crd_manifest())
        for kind in ops.KINDS.values():
            apply_crd(self.ctx.kube, ops.crd_manifest(kind))
        self.ctx.kube.create_namespace_if_absent(self.namespace)
        return self

    def turn(self, name: str) -> float | None:
        for kind, objects in self.kinds.items():  # the request informers' part
            for item in objects.list().get("items") or []:
                self.index.update(kind, {"kind": kind, **item})
        result = asyncio.run(self.requests.reconcile(name))
        return result.requeue_after

    def ready(self, name: str) -> bool:
        obj = self.controller.resources.get(name) or {}
        ready = get_condition((obj.get("status") or {}).get("conditions") or [], "Ready") or {}
        return ready.get("status") == "True"

    def status(self, name: str) -> dict[str, Any]:
        return dict((self.controller.resources.get(name) or {}).get("status") or {})

    def run_until(self, done: Any, names: list[str], limit: float, what: str) -> None:
        deadline = time.monotonic() + limit
        while not done():
            assert time.monotonic() < deadline, f"{what}: {[self.status(n) for n in names]}"
            for name in names:
                self.turn(name)
            time.sleep(2)

    def remove(self, name: str) -> None:
        res = self.controller.resources
        if res.get(name) is None:
            return
        res.patch(name, {"spec": {"finalBackup": False}})
        res.delete(name)
        self.run_until(lambda: res.get(name) is None, [name], 300, f"{name} not deleted")
