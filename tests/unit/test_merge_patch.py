"""The merge patch the operator writes its status with (RFC 7396)."""

from __future__ import annotations

import pytest

from saasodoo.adapters.resources import merge_patch

pytestmark = pytest.mark.unit


def apply(doc: object, patch: object) -> object:
    """RFC 7396's MergePatch, to check the patch does what it says."""
    if not isinstance(patch, dict):
        return patch
    out = dict(doc) if isinstance(doc, dict) else {}
    for k, v in patch.items():
        if v is None:
            out.pop(k, None)
        else:
            out[k] = apply(out.get(k), v)
    return out


def test_a_dropped_status_field_is_sent_as_null() -> None:
    old = {"failures": 2, "upgradeFailures": 2, "conditions": [{"type": "Ready"}], "url": "u"}
    new = {"conditions": [{"type": "Ready", "status": "True"}], "url": "u"}
    patch = merge_patch(old, new)
    assert patch == {"failures": None, "upgradeFailures": None,
                     "conditions": [{"type": "Ready", "status": "True"}]}  # fmt: skip
    assert apply(old, patch) == new


def test_nested_maps_are_patched_key_by_key_and_equal_ones_left_out() -> None:
    old = {"lastBackup": {"name": "a", "outcome": "failed"}, "revision": 3}
    new = {"lastBackup": {"name": "b", "outcome": "failed"}, "revision": 3}
    assert merge_patch(old, new) == {"lastBackup": {"name": "b"}}
    assert apply(old, merge_patch(old, new)) == new
    assert merge_patch(new, new) == {}
