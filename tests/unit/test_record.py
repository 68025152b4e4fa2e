"""The tenant record's codec (saasodoo.core.record): what is written is read back; what
cannot be read is None, never an exception, except a missing spec (NotFound)."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from saasodoo.core import record
from saasodoo.core.reconcile import Applied, OperationLock, Unfinished
from saasodoo.core.spec import PLAN_LABEL, TENANT_LABEL, TenantSpec
from saasodoo.errors import NotFound, SaasodooError

pytestmark = pytest.mark.unit

SPEC = TenantSpec.parse({"id": "acme", "admin_email": "admin@acme.example", "plan": "starter"})
LOCK = OperationLock("host:42", "update", "d-new", datetime(2026, 1, 1, 12, 5, tzinfo=UTC))


def written(patch: dict[str, str | None]) -> dict[str, str]:
    """The annotations a patch leaves on an empty namespace (None removes a key)."""
    return {k: v for k, v in patch.items() if v is not None}


def test_a_spec_is_read_back_as_written() -> None:
    labels, patch = record.spec_patch(SPEC, suspended=True)
    annotations = written(patch)
    assert labels == {PLAN_LABEL: "starter"}
    assert record.spec_of(annotations, {TENANT_LABEL: "acme"}, "tenant-acme") == SPEC
    assert record.suspended_of(annotations) is True
    assert record.suspended_of(written(record.spec_patch(SPEC, suspended=False)[1])) is False


def test_a_namespace_without_spec_is_not_found_naming_tenant_and_namespace() -> None:
    with pytest.raises(NotFound, match="tenant 'acme': namespace tenant-acme has no spec"):
        record.spec_of({}, {TENANT_LABEL: "acme"}, "tenant-acme")


def test_a_spec_that_is_not_json_is_an_error_naming_the_namespace() -> None:
    with pytest.raises(SaasodooError, match="namespace tenant-acme .* not JSON"):
        record.spec_of({record.SPEC_ANNOTATION: "{not json"}, {}, "tenant-acme")


def test_the_lock_round_trips_and_its_liveness_comes_from_the_caller() -> None:
    annotations = {record.OPERATION_ANNOTATION: record.encode_lock(LOCK)}
    assert record.lock_of(annotations) == LOCK
    assert record.lock_of(annotations, lambda holder: holder == "host:42") == OperationLock(
        "host:42", "update", "d-new", LOCK.expires, alive=True
    )


@pytest.mark.parametrize(
    "raw",
    ["", "not json", json.dumps({"operation": "x"}), json.dumps({"holder": "h", "expires": "x"})],
)
def test_an_unreadable_lock_is_no_lock(raw: str) -> None:
    assert record.lock_of({record.OPERATION_ANNOTATION: raw}) is None


def test_applied_round_trips_and_an_unreadable_one_is_none() -> None:
    applied = Applied("d1", 3)
    assert record.applied_of({record.APPLIED_ANNOTATION: record.encode_applied(applied)}) == applied
    assert record.applied_of({}) is None
    assert record.applied_of({record.APPLIED_ANNOTATION: '{"digest": "d"}'}) is None
    assert (
        record.applied_of({record.APPLIED_ANNOTATION: '{"digest": "d", "revision": "x"}'}) is None
    )


def test_recording_what_was_applied_releases_the_lock_and_sets_or_clears_the_failed_digest() -> (
    None
):
    _, patch = record.spec_patch(SPEC, False, applied=Applied("d2", 4), failed_digest="d-bad")
    assert patch[record.OPERATION_ANNOTATION] is None
    assert patch[record.FAILED_DIGEST_ANNOTATION] == "d-bad"
    assert record.applied_of(written(patch)) == Applied("d2", 4)
    outcome = record.outcome_patch(Applied("d2", 4), None)
    assert outcome == {
        record.APPLIED_ANNOTATION: record.encode_applied(Applied("d2", 4)),
        record.FAILED_DIGEST_ANNOTATION: None,
        record.UNFINISHED_ANNOTATION: None,
        record.OPERATION_ANNOTATION: None,
    }
    assert record.SPEC_ANNOTATION not in outcome  # the spec is left as it is


def test_the_lock_is_set_released_or_left_alone_with_the_spec() -> None:
    assert record.spec_patch(SPEC, False, lock=LOCK)[1][record.OPERATION_ANNOTATION] == (
        record.encode_lock(LOCK)
    )
    assert record.spec_patch(SPEC, False, lock=None)[1][record.OPERATION_ANNOTATION] is None
    assert record.OPERATION_ANNOTATION not in record.spec_patch(SPEC, False)[1]
    assert record.unlock_patch() == {record.OPERATION_ANNOTATION: None}


def test_a_new_tenant_has_its_spec_its_lock_and_its_owner_if_any() -> None:
    annotations = record.new_tenant_record(SPEC, LOCK, "user-1")
    assert record.spec_of(annotations, {}, "tenant-acme") == SPEC
    assert record.lock_of(annotations) == LOCK
    assert record.owner_of(annotations) == "user-1"
    assert record.owner_of(record.new_tenant_record(SPEC, LOCK, None)) is None


def test_the_unfinished_revision_round_trips_and_an_unreadable_one_is_none() -> None:
    left = Unfinished(5, "rollback to 3", "d1")
    patch = record.failure_patch(left)
    assert patch[record.OPERATION_ANNOTATION] is None  # the lock is released
    assert record.unfinished_of(written(patch)) == left
    assert record.failure_patch(None) == {record.OPERATION_ANNOTATION: None}
    assert record.unfinished_of({record.UNFINISHED_ANNOTATION: '{"revision": 2}'}) is None
    # Recording an outcome forgets it.
    assert record.outcome_patch(Applied("d", 6), None)[record.UNFINISHED_ANNOTATION] is None
