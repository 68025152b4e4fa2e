"""The owner label of OdooTenants: what the API selects a user's tenants by."""

from __future__ import annotations

import re

import pytest

from saasodoo.core.crd import OWNER_LABEL, owner_label, owner_labels

pytestmark = pytest.mark.unit

#: A label value (Kubernetes' validation: 63 characters at most, alphanumerics at both ends).
LABEL_VALUE = re.compile(r"[A-Za-z0-9]([A-Za-z0-9._-]{0,61}[A-Za-z0-9])?")


def test_a_label_safe_owner_id_is_its_own_label() -> None:
    uid = "6f1c2a9e-4b7d-4f0e-9a51-0c3d2e1f4a5b"  # a Supabase user id
    assert owner_label(uid) == uid
    assert owner_labels({"owner": uid, "plan": "starter"}) == {OWNER_LABEL: uid}


@pytest.mark.parametrize(
    "owner", ["alice@example.com", "x" * 64, "-starts-with-a-dash", "ends.", "a b", "é"]
)
def test_other_owner_ids_get_a_stable_hashed_label(owner: str) -> None:
    value = owner_label(owner)
    assert value is not None and LABEL_VALUE.fullmatch(value) and value.startswith("h.")
    assert owner_label(owner) == value  # the API computes the same selector
    assert owner_label(owner + "!") != value


def test_no_owner_no_label() -> None:
    assert owner_label(None) is None and owner_label("") is None
    assert owner_labels({"plan": "starter"}) == {}
