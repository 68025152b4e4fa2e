"""``RequestController``'s branches with small fakes (the API server's objects in a dict, the
backups service a stub): what reaches a request's status and its OdooTenant's for a backup,
a verification that fails, an import's restore that fails (the staged zip discarded), and a
turn whose pending request the API server shows finished already. The cluster tests run it
against the real API server and helm; the real-node test runs the Jobs."""

from __future__ import annotations

import asyncio
import copy
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any

import pytest

from saasodoo.backups.results import BackupInfo, BackupResult, JobOutcome, RestoreResult
from saasodoo.core import operations as ops
from saasodoo.core.conditions import get_condition
from saasodoo.errors import Conflict, SaasodooError
from saasodoo.operator.controller import Result
from saasodoo.operator.requests import AGAIN, RequestController, RequestIndex

pytestmark = pytest.mark.unit

NOW = datetime(2026, 12, 6, 8, 0, tzinfo=UTC)


class Objects:
    """One kind's objects as the API server keeps them (what RequestController uses)."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self.namespace = "saasodoo-system"
        self.items: dict[str, dict[str, Any]] = {}
        self.events: list[tuple[str, str, str]] = []

    def add(self, obj: dict[str, Any]) -> None:
        self.items[obj["metadata"]["name"]] = obj

    def get(self, name: str) -> dict[str, Any] | None:
        found = self.items.get(name)
        return copy.deepcopy(found) if found else None

    def patch_status(self, name: str, status: dict[str, Any], previous: Any = None) -> Any:
        self.items[name]["status"] = copy.deepcopy(status)
        return self.get(name)

    def patch(self, name: str, patch: dict[str, Any]) -> Any:
        self.items[name]["spec"].update(patch.get("spec") or {})
        return self.get(name)

    def set_owner_references(self, obj: dict[str, Any], refs: list[dict[str, Any]]) -> Any:
        self.items[obj["metadata"]["name"]]["metadata"]["ownerReferences"] = refs
        return self.get(obj["metadata"]["name"])

    def event(self, obj: dict[str, Any], kind: str, reason: str, note: str, action: str) -> None:
        self.events.append((kind, reason, note))


class StubBackups:
    def __init__(self) -> None:
        self.discarded: list[tuple[str, str]] = []
        self.restore_error: str | None = None
        self.restore_conflict: str | None = None
        self.verify_ok = True

    def job(self, succeeded: bool, **result: Any) -> JobOutcome:
        reason = "" if succeeded else "BackoffLimitExceeded"
        return JobOutcome("job-1", succeeded, reason, NOW, NOW, result)

    def create(self, tenant: str, *, kind: str) -> BackupResult:
        info = BackupInfo.from_manifest("acme-20261206-080000-on-demand.zip", {"tenant": tenant})
        return BackupResult(tenant, kind, self.job(True), info)

    def verify(self, tenant: str, backup: str | None) -> RestoreResult:
        if self.verify_ok:
            job = self.job(True, ok=True, backup=backup)
        else:
            job = self.job(False, ok=False, error="checksum of dump.sql differs")
        return RestoreResult(tenant, backup, job, {}, verify_only=True)

    def restore(self, tenant: str, backup: str | None, *, drop_previous: bool) -> RestoreResult:
        if self.restore_conflict:
            raise Conflict(self.restore_conflict)
        if self.restore_error:
            raise SaasodooError(self.restore_error)
        return RestoreResult(tenant, backup, self.job(True, ok=True), {"odoo": 1})

    def discard(self, tenant: str, name: str) -> None:
        self.discarded.append((tenant, name))

    def list_backups(self, tenant: str) -> list[BackupInfo]:
        return [self.create(tenant, kind="on-demand").backup]  # type: ignore[list-item]

    def location(self, tenant: str) -> dict[str, str]:
        return {"type": "pvc"}


class StubController:
    def __init__(self, tenants: Objects) -> None:
        self.resources = tenants
        self.tenants = SimpleNamespace()
        self.ctx = SimpleNamespace(settings=None, kube=None)
        self.reconciled: list[str] = []

    async def reconcile(self, name: str) -> Result:
        self.reconciled.append(name)
        return Result()


def setup() -> tuple[RequestController, StubBackups, Objects, StubController]:
    tenants = Objects("OdooTenant")
    tenants.add({"kind": "OdooTenant", "metadata": {"name": "acme", "uid": "u-1",
                 "generation": 2}, "spec": {"plan": "starter"},
                 "status": {"observedGeneration": 2, "conditions": []}})  # fmt: skip
    backups = StubBackups()
    stub = StubController(tenants)
    index = RequestIndex()
    ctl = RequestController(stub, index, backups=backups)  # type: ignore[arg-type]
    ctl.requests = {k: Objects(k) for k in ops.KINDS}  # type: ignore[misc]
    return ctl, backups, tenants, stub


def ask(ctl: RequestController, op: ops.OperationKind, name: str, **spec: Any) -> None:
    meta = {"name": name, "generation": 1, "creationTimestamp": "2026-12-06T08:00:00Z"}
    obj = {"kind": op.kind, "metadata": meta, "spec": {"tenant": "acme", **spec}}
    ctl.requests[op.kind].add(obj)  # type: ignore[attr-defined]
    ctl.index.update(op.kind, obj)


def status(ctl: RequestController, op: ops.OperationKind, name: str) -> dict[str, Any]:
    obj = ctl.requests[op.kind].get(name)
    assert obj is not None
    return dict(obj["status"])


def test_a_backup_request_records_the_backup_on_the_request_and_the_tenant() -> None:
    ctl, _, tenants, stub = setup()
    ask(ctl, ops.BACKUP, "acme-backup-1")
    assert asyncio.run(ctl.reconcile("acme")) == AGAIN
    st = status(ctl, ops.BACKUP, "acme-backup-1")
    assert st["phase"] == "Succeeded" and st["backup"].endswith("on-demand.zip"), st
    assert st["result"]["backup"]["name"] == st["backup"]
    tenant = tenants.items["acme"]
    assert tenant["status"]["lastBackup"]["name"] == st["backup"]
    # The tenant's backups listed into its status for the API (#24 point 6).
    assert [b["name"] for b in tenant["status"]["backups"]] == [st["backup"]]
    assert tenant["status"]["backupStorage"] == {"type": "pvc"}
    cond = get_condition(tenant["status"]["conditions"], "BackupSucceeded")
    assert cond["status"] == "True" and cond["observedGeneration"] == 2
    owner = ctl.requests[ops.BACKUP.kind].items["acme-backup-1"]  # type: ignore[attr-defined]
    assert owner["metadata"]["ownerReferences"][0]["uid"] == "u-1"
    assert [e[1] for e in tenants.events] == ["Progressing", "Succeeded"]
    assert stub.reconciled == []  # the request took the turn
    # Next turn: the index still shows it (the informer lags), the API server says done.
    assert asyncio.run(ctl.reconcile("acme")) == Result()
    assert stub.reconciled == ["acme"]


def test_a_verification_that_fails_is_a_failed_request_saying_why() -> None:
    ctl, backups, _, _ = setup()
    backups.verify_ok = False
    ask(ctl, ops.VERIFY, "acme-verify-1", backup="b.zip")
    asyncio.run(ctl.reconcile("acme"))
    st = status(ctl, ops.VERIFY, "acme-verify-1")
    assert st["phase"] == "Failed" and "checksum of dump.sql differs" in st["message"], st
    assert st["result"]["ok"] is False and st["backup"] == "b.zip"


def test_a_failed_import_restore_discards_the_staged_backup() -> None:
    ctl, backups, _, _ = setup()
    backups.restore_error = (
        "restore of 'acme' failed (job r-1): bad zip; the previous data is still live"
    )
    ask(ctl, ops.RESTORE, "acme-restore-1", backup="acme-import.zip", discardOnFailure=True)
    ask(ctl, ops.RESTORE, "acme-restore-2", backup="acme-old.zip")
    asyncio.run(ctl.reconcile("acme"))
    asyncio.run(ctl.reconcile("acme"))
    first = status(ctl, ops.RESTORE, "acme-restore-1")
    assert first["phase"] == "Failed" and "acme-import.zip was deleted" in first["message"]
    second = status(ctl, ops.RESTORE, "acme-restore-2")
    assert second["phase"] == "Failed" and "deleted" not in second["message"]
    assert backups.discarded == [("acme", "acme-import.zip")]  # only with discardOnFailure


def test_a_request_for_a_tenant_being_deleted_fails_without_starting() -> None:
    ctl, backups, tenants, stub = setup()
    tenants.items["acme"]["metadata"]["deletionTimestamp"] = "2026-12-06T08:00:00Z"
    ask(ctl, ops.BACKUP, "acme-backup-1")
    asyncio.run(ctl.reconcile("acme"))
    st = status(ctl, ops.BACKUP, "acme-backup-1")
    assert st["phase"] == "Failed" and "is being deleted" in st["message"]
    assert get_condition(st["conditions"], "Stalled")["reason"] == "TenantNotFound"
    assert "attempts" not in st and stub.reconciled == []
    asyncio.run(ctl.reconcile("acme"))
    assert stub.reconciled == ["acme"]  # then the finalizer's turn


def test_a_restore_refused_because_another_runs_discards_nothing() -> None:
    """A restarted import's restore finds its first attempt's Job still restoring from the
    staged zip: the zip stays (review of #23)."""
    ctl, backups, _, _ = setup()
    backups.restore_conflict = "a restore of 'acme' is already running (job r-1)"
    ask(ctl, ops.RESTORE, "acme-restore-1", backup="acme-import.zip", discardOnFailure=True)
    asyncio.run(ctl.reconcile("acme"))
    st = status(ctl, ops.RESTORE, "acme-restore-1")
    assert st["phase"] == "Failed" and "already running" in st["message"], st
    assert backups.discarded == []


def test_a_restarted_rollback_to_the_previous_revision_is_not_run_again() -> None:
    ctl, _, _, _ = setup()
    ask(ctl, ops.ROLLBACK, "acme-rollback-1")
    obj = ctl.requests[ops.ROLLBACK.kind].items["acme-rollback-1"]  # type: ignore[attr-defined]
    obj["status"] = ops.transition(None, ops.RUNNING, generation=1, now=NOW, message="rollback")
    asyncio.run(ctl.reconcile("acme"))
    st = status(ctl, ops.ROLLBACK, "acme-rollback-1")
    assert st["phase"] == "Failed" and st["conditions"][0]["reason"] == "Interrupted", st
    assert "naming spec.revision" in st["message"]


@pytest.mark.parametrize(
    ("case", "running", "kept"),
    [("tenant-gone", [], False), ("invalid", [], False), ("interrupted", [], False),
     ("interrupted", ["acme-restore-r1"], True)],
)  # fmt: skip
def test_an_import_restore_failing_before_it_runs_discards_the_staged_zip(
    case: str, running: list[str], kept: bool
) -> None:
    """Review of #23 (e): a staged import is not left behind when its restore fails
    TenantNotFound, InvalidSpec or Interrupted, unless a restore Job still reads it."""
    ctl, backups, tenants, _ = setup()
    ctl.restores_running = lambda tenant_id: running  # type: ignore[method-assign]
    extra: dict[str, Any] = {"bogus": 1} if case == "invalid" else {}
    ask(ctl, ops.RESTORE, "acme-restore-1", backup="acme-import.zip", discardOnFailure=True,
        **extra)  # fmt: skip
    if case == "tenant-gone":
        del tenants.items["acme"]
    if case == "interrupted":
        obj = ctl.requests[ops.RESTORE.kind].items["acme-restore-1"]  # type: ignore[attr-defined]
        status_ = None
        for _ in range(ops.MAX_ATTEMPTS):
            status_ = ops.transition(status_, ops.RUNNING, generation=1, now=NOW,
                                     message="restoring", restart=status_ is not None)  # fmt: skip
        obj["status"] = status_
    asyncio.run(ctl.reconcile("acme"))
    st = status(ctl, ops.RESTORE, "acme-restore-1")
    reason = {"tenant-gone": "TenantNotFound", "invalid": "InvalidSpec",
              "interrupted": "Interrupted"}[case]  # fmt: skip
    assert (
        st["phase"] == "Failed" and get_condition(st["conditions"], "Stalled")["reason"] == reason
    )
    if kept:
        assert backups.discarded == [] and "still runs" in st["message"], st
    else:
        assert backups.discarded == [("acme", "acme-import.zip")], st
        assert "acme-import.zip was deleted" in st["message"]


def test_a_plain_restore_failing_before_it_runs_discards_nothing() -> None:
    ctl, backups, tenants, _ = setup()
    ask(ctl, ops.RESTORE, "acme-restore-1", backup="acme-old.zip")
    del tenants.items["acme"]
    asyncio.run(ctl.reconcile("acme"))
    assert status(ctl, ops.RESTORE, "acme-restore-1")["phase"] == "Failed"
    assert backups.discarded == []
