"""The client of the one-shot operations' request resources (``saasodoo.operation_requests``)
on small in-memory fakes: checks before any write, the body it writes, reading by name, the
import's clean-up, and how ``wait`` ends (the cluster side: tests/api/test_operator_mode.py)."""

from __future__ import annotations

import asyncio
import itertools
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from saasodoo.cli import cli
from saasodoo.context import Context
from saasodoo.core.operations import (
    BACKUP,
    FAILED,
    KINDS,
    REASON_INVALID,
    REASON_TENANT_NOT_FOUND,
    RESTORE,
    ROLLBACK,
    RUNNING,
    SUCCEEDED,
    VERIFY,
    OperationKind,
    transition,
)
from saasodoo.core.reconcile import parse_duration
from saasodoo.errors import Conflict, InvalidInput, NotFound, SaasodooError
from saasodoo.operation_requests import (
    OperationRequests,
    RequestFailed,
    RequestView,
    operation_of,
)
from saasodoo.settings import Settings
from tests.fakes import FakeResources

pytestmark = pytest.mark.unit

NOW = datetime(2026, 12, 6, 8, 0, tzinfo=UTC)


class FakeTenantObjects:
    """OdooTenants whose status records ``releases`` (helm revisions, oldest first)."""

    def __init__(
        self, *names: str, deleting: tuple[str, ...] = (), releases: tuple[int, ...] = (1, 2)
    ) -> None:
        recorded = [{"revision": r, "status": "superseded"} for r in reversed(releases)]
        self.objs = {n: {"metadata": {"name": n}, "status": {"releases": recorded}}
                     for n in names}  # fmt: skip
        for n in deleting:
            self.objs[n] = {"metadata": {"name": n, "deletionTimestamp": "2026-12-06T08:00:00Z"}}

    def get(self, name: str) -> dict[str, Any] | None:
        return self.objs.get(name)


class FakeBackups:
    """What the client asks of ``Backups``: the checks and the import's two halves."""

    def __init__(self, calls: list[str], refuse: Exception | None = None) -> None:
        self.calls, self.refuse = calls, refuse

    def _check(self, call: str) -> None:
        self.calls.append(call)
        if self.refuse is not None:
            raise self.refuse

    def cronjob(self, tenant_id: str) -> dict[str, Any]:
        self._check(f"cronjob {tenant_id}")
        return {"spec": {"jobTemplate": {"spec": {"activeDeadlineSeconds": 1800}}}}

    def check_restore(self, tenant_id: str, backup: str | None, *, series: bool) -> None:
        self._check(f"check_restore {tenant_id} {backup} series={series}")

    def stage_import(self, tenant_id: str, source: Path, **kwargs: Any) -> str:
        self._check(f"stage {tenant_id} {source.name} {sorted(kwargs.items())}")
        return "20261206T080000Z-on-demand.zip"

    def discard(self, tenant_id: str, name: str) -> None:
        self.calls.append(f"discard {tenant_id} {name}")


class FakeTenants:
    def __init__(self, calls: list[str], refuse: Exception | None = None) -> None:
        self.calls, self.refuse = calls, refuse

    async def check_rollback(
        self, tenant_id: str, revision: int | None
    ) -> tuple[None, int, dict[str, Any], None]:
        """As Tenants.check_rollback: the revision it returns to (here the previous of 2)."""
        self.calls.append(f"check_rollback {tenant_id} {revision}")
        if self.refuse is not None:
            raise self.refuse
        return None, revision or 1, {}, None


def client(
    *tenants: str,
    deleting: tuple[str, ...] = (),
    releases: tuple[int, ...] = (1, 2),
    backups_refuse: Exception | None = None,
    rollback_refuse: Exception | None = None,
) -> tuple[OperationRequests, dict[str, FakeResources], list[str]]:
    calls: list[str] = []
    clock = itertools.count(1)
    kinds = {op.kind: FakeResources(op.kind, calls=calls, clock=clock) for op in KINDS.values()}
    requests = OperationRequests(
        Context(Settings()),
        tenants=FakeTenants(calls, rollback_refuse),  # type: ignore[arg-type]
        backups=FakeBackups(calls, backups_refuse),  # type: ignore[arg-type]
        objects=lambda op: kinds[op.kind],  # type: ignore[arg-type,return-value]
        tenant_objects=FakeTenantObjects(*tenants, deleting=deleting, releases=releases),  # type: ignore[arg-type]
    )
    return requests, kinds, calls


def writes(calls: list[str]) -> list[str]:
    return [c for c in calls if c.startswith(("create", "discard", "stage"))]


def status(obj: dict[str, Any], phase: str, message: str, **fields: Any) -> None:
    obj["status"] = transition(obj.get("status"), phase, generation=1, now=NOW,
                               message=message, **fields)  # fmt: skip


@pytest.mark.parametrize(
    ("operation", "spec", "body"),
    [
        ("backup", {}, {"tenant": "acme"}),
        ("restore", {"backup": "b.zip", "drop_previous": True},
         {"tenant": "acme", "backup": "b.zip", "dropPrevious": True, "discardOnFailure": False}),
        ("verify", {}, {"tenant": "acme"}),
        ("rollback", {"revision": 2}, {"tenant": "acme", "revision": 2}),
    ],
)  # fmt: skip
def test_a_request_is_written_after_checks_that_read_only_the_resources(
    operation: str, spec: dict[str, Any], body: dict[str, Any]
) -> None:
    """No CronJob, storage, namespace or helm read: the API's ServiceAccount may read none
    (the operator checks those when it runs the request)."""
    requests, kinds, calls = client("acme")
    view = asyncio.run(requests.create(operation, "acme", **spec))
    op = requests.kind(operation)
    assert calls == [f"create {op.kind} {view.name}"]
    assert view.name.startswith(f"acme-{operation}-") and view.phase == "Pending"
    obj = kinds[op.kind].objs[view.name]
    assert obj["spec"] == body
    assert obj["metadata"]["labels"] == {"saasodoo.dev/tenant": "acme"}
    assert obj["metadata"]["namespace"] == "saasodoo-system"


@pytest.mark.parametrize(
    ("tenants", "deleting", "operation", "spec", "error", "field"),
    [
        ((), (), "backup", {}, NotFound, None),
        ((), ("acme",), "backup", {}, NotFound, None),
        (("acme",), (), "rollback", {"revision": 0}, InvalidInput, "spec.revision"),
        (("acme",), (), "restore", {"backup": ""}, InvalidInput, "spec.backup"),
        (("acme",), (), "import", {}, InvalidInput, "operation"),
    ],
)
def test_a_refused_request_names_why_and_writes_nothing(
    tenants: tuple[str, ...],
    deleting: tuple[str, ...],
    operation: str,
    spec: dict[str, Any],
    error: type[Exception],
    field: str | None,
) -> None:
    requests, _, calls = client(*tenants, deleting=deleting)
    with pytest.raises(error) as raised:
        asyncio.run(requests.create(operation, "acme", **spec))
    if field is not None:
        assert [f.field for f in raised.value.fields] == [field]  # type: ignore[attr-defined]
    else:
        assert "tenant 'acme' not found" in str(raised.value)
    assert writes(calls) == []


@pytest.mark.parametrize(
    ("releases", "revision", "error", "message"),
    [
        ((1,), None, Conflict, "no previous revision to roll back to"),
        ((1, 2), 7, NotFound, "no revision 7 (known: 1, 2)"),
        ((), None, Conflict, "release history is not recorded yet"),
    ],
)
def test_a_rollback_is_checked_against_the_history_the_operator_records(
    releases: tuple[int, ...], revision: int | None, error: type[Exception], message: str
) -> None:
    requests, _, calls = client("acme", releases=releases)
    with pytest.raises(error, match=re.escape(message)):
        asyncio.run(requests.create("rollback", "acme", revision=revision))
    assert writes(calls) == []
    # A named revision before the operator recorded any history: its to check.
    requests, kinds, _ = client("acme", releases=())
    view = asyncio.run(requests.create("rollback", "acme", revision=3))
    assert kinds[ROLLBACK.kind].objs[view.name]["spec"] == {"tenant": "acme", "revision": 3}


def test_an_import_stages_then_requests_a_restore_that_discards_on_failure(tmp_path: Path) -> None:
    requests, kinds, calls = client("acme")
    zip_path = tmp_path / "db.zip"
    staged = requests.stage_import("acme", zip_path, moved=True)
    view = asyncio.run(requests.request_import("acme", staged, drop_previous=True))
    spec = kinds[RESTORE.kind].objs[view.name]["spec"]
    assert spec == {"tenant": "acme", "backup": staged, "dropPrevious": True,
                    "discardOnFailure": True}  # fmt: skip
    # The staged zip is in storage already: no check of it before the request.
    assert writes(calls) == [
        "stage acme db.zip [('moved', True), ('work_dir', None)]",
        f"create OdooTenantRestore {view.name}",
    ]
    assert not any(c.startswith("check_restore") for c in calls)


def test_an_import_whose_request_cannot_be_written_deletes_the_staged_zip() -> None:
    requests, _, calls = client()  # the tenant went away meanwhile
    with pytest.raises(NotFound):
        asyncio.run(requests.request_import("acme", "20261206T080000Z-on-demand.zip"))
    assert writes(calls) == ["discard acme 20261206T080000Z-on-demand.zip"]


def test_a_request_is_found_by_its_name_reading_the_kind_it_names_first() -> None:
    assert operation_of("acme-backup-x0001") is BACKUP
    assert operation_of("my-shop-rollback-abcde") is ROLLBACK
    assert operation_of("nightly") is None
    requests, kinds, calls = client("my-shop")
    view = asyncio.run(requests.create("rollback", "my-shop"))
    calls.clear()
    assert requests.get(view.name).kind == "OdooTenantRollback"
    assert calls == [f"get OdooTenantRollback {view.name}"]
    # kubectl create -f with a name of one's own: every kind is read.
    kinds[VERIFY.kind].objs["check-it"] = {
        "kind": VERIFY.kind, "metadata": {"name": "check-it"}, "spec": {"tenant": "my-shop"}
    }  # fmt: skip
    assert requests.get("check-it").operation == "verify"
    with pytest.raises(NotFound, match="operation 'absent' not found"):
        requests.get("absent")
    for bad in ("../etc", "Upper", "café", "-x", "x" * 254):
        with pytest.raises(InvalidInput, match="name"):
            requests.get(bad)


def test_a_tenants_requests_are_listed_oldest_first_from_one_list_per_kind() -> None:
    requests, _, calls = client("acme", "other")
    first = asyncio.run(requests.create("rollback", "acme"))
    asyncio.run(requests.create("backup", "other"))
    second = asyncio.run(requests.create("backup", "acme"))
    calls.clear()
    assert [v.name for v in requests.list("acme")] == [first.name, second.name]
    assert sorted(calls) == sorted(f"list {k} saasodoo.dev/tenant=acme" for k in KINDS)
    assert len(requests.list()) == 3


def test_the_view_reads_phase_outcome_and_what_was_asked() -> None:
    requests, kinds, _ = client("acme")
    view = asyncio.run(requests.create("restore", "acme", backup="b.zip"))
    obj = kinds[RESTORE.kind].objs[view.name]
    assert RequestView.of(obj).phase == "Pending" and RequestView.of(obj).reason == ""
    status(obj, RUNNING, "restoring b.zip")
    running = RequestView.of(obj)
    assert (running.phase, running.reason, running.attempts) == ("Running", "Progressing", 1)
    status(obj, SUCCEEDED, "restored", backup="b.zip", result={"tenant": "acme"})
    done = RequestView.of(obj).to_dict()
    assert done["phase"] == "Succeeded" and done["backup"] == "b.zip"
    assert done["spec"] == {"backup": "b.zip", "dropPrevious": False, "discardOnFailure": False}
    assert done["tenant_id"] == "acme" and done["result"] == {"tenant": "acme"}
    assert done["completed_at"] and done["operation"] == "restore"


Step = tuple[str, str, str | None]


def follow(
    requests: OperationRequests, obj: dict[str, Any], steps: list[Step], timeout: float = 5
) -> tuple[list[tuple[str, str]], RequestView | Exception]:
    """Follow ``obj`` while each poll moves it one step on (phase, message, reason)."""
    seen: list[tuple[str, str]] = []
    pending = list(steps)

    def step(view: RequestView) -> None:
        seen.append((view.phase, view.message))

    original = requests.get

    def get(name: str) -> RequestView:
        if pending:
            phase, message, reason = pending.pop(0)
            status(obj, phase, message, **({"reason": reason} if reason else {}))
        return original(name)

    requests.get = get  # type: ignore[method-assign]
    try:
        result: RequestView | Exception = requests.wait(
            obj["metadata"]["name"], timeout=timeout, on_progress=step, poll_seconds=0
        )
    except SaasodooError as exc:
        result = exc
    return seen, result


def new(requests: OperationRequests, kinds: dict[str, FakeResources], op: OperationKind
        ) -> dict[str, Any]:  # fmt: skip
    view = asyncio.run(requests.create(op.operation, "acme", checked=True))
    return kinds[op.kind].objs[view.name]


def test_wait_shows_each_new_phase_or_message_and_returns_a_success() -> None:
    requests, kinds, _ = client("acme")
    obj = new(requests, kinds, BACKUP)
    steps: list[Step] = [
        (RUNNING, "backup job started", None),
        (RUNNING, "backup job started", None),
        (RUNNING, "backup job running", None),
        (SUCCEEDED, "backup b.zip taken", None),
    ]
    seen, result = follow(requests, obj, steps)
    assert seen == [("Running", "backup job started"), ("Running", "backup job running"),
                    ("Succeeded", "backup b.zip taken")]  # fmt: skip
    assert isinstance(result, RequestView) and result.phase == "Succeeded"


@pytest.mark.parametrize(
    ("reason", "error", "exit_code"),
    [(None, RequestFailed, 1), (REASON_TENANT_NOT_FOUND, NotFound, 3),
     (REASON_INVALID, InvalidInput, 2), ("Interrupted", RequestFailed, 1)],
)  # fmt: skip
def test_a_failed_request_is_raised_with_its_message_and_the_exit_code_of_its_reason(
    reason: str | None, error: type[SaasodooError], exit_code: int
) -> None:
    requests, kinds, _ = client("acme")
    obj = new(requests, kinds, VERIFY)
    _, result = follow(requests, obj, [(FAILED, "checksum of dump.sql differs", reason)])
    assert type(result) is error and result.exit_code == exit_code  # type: ignore[union-attr]
    assert "checksum of dump.sql differs" in str(result) and obj["metadata"]["name"] in str(result)


def test_wait_gives_up_after_its_timeout_saying_what_it_saw() -> None:
    requests, kinds, _ = client("acme")
    obj = new(requests, kinds, BACKUP)
    _, result = follow(requests, obj, [], timeout=0)
    assert isinstance(result, SaasodooError) and not isinstance(result, RequestFailed)
    assert "not finished after 0s (Pending)" in str(result)
    assert "is the operator running?" in str(result)


def test_the_default_wait_is_the_operations_own_bound_plus_a_margin() -> None:
    requests, _, _ = client("acme")
    assert requests.default_timeout("backup", "acme") == 1800 + 120
    assert requests.default_timeout("restore", "acme") == 1800 + 600 + 120
    helm = parse_duration(Settings().helm_timeout).total_seconds()
    assert requests.default_timeout("rollback", "acme") == helm + 120


def test_the_cli_refuses_a_backup_kind_the_operator_does_not_take(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SAASODOO_OPERATOR", "1")
    result = CliRunner().invoke(cli, ["backup", "create", "acme", "--kind", "pre-update"])
    assert result.exit_code == 2, result.output
    assert "--kind" in result.output and "--local" in result.output


def test_a_rollback_to_the_previous_revision_names_it_when_asked() -> None:
    """Resolved at the check, not when the operator runs it: a second click or a restarted
    request never rolls the first rollback back (review of #23)."""
    requests, objects, _ = client("acme")
    view = asyncio.run(requests.create("rollback", "acme"))
    assert view.to_dict()["spec"]["revision"] == 1
