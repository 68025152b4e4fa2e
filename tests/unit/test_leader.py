"""Whether an operator leads, from its Lease as another process reads it
(``saasodoo.core.leader``): absent, released, renewed in time, expired, unreadable."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from saasodoo.core.leader import SKEW, leader_of

pytestmark = pytest.mark.unit

NOW = datetime(2026, 12, 6, 8, 0, 0, tzinfo=UTC)
WHERE = "saasodoo-system/saasodoo-operator"


def lease(holder: str | None = "op-0", renewed: float | None = 3, duration: Any = 15) -> dict:
    """A Lease last renewed ``renewed`` seconds before ``NOW`` (MicroTime, as written)."""
    spec: dict[str, Any] = {"holderIdentity": holder, "leaseDurationSeconds": duration}
    if renewed is not None:
        spec["renewTime"] = (NOW - timedelta(seconds=renewed)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return {"metadata": {"name": "saasodoo-operator"}, "spec": spec}


@pytest.mark.parametrize(
    ("found", "leading", "holder", "says"),
    [
        (None, False, None, "no operator has run: no Lease saasodoo-system/saasodoo-operator"),
        (lease(), True, "op-0", "op-0 leads"),
        (lease(renewed=15 + SKEW), True, "op-0", "op-0 leads"),
        (lease(renewed=15 + SKEW + 1), False, "op-0", "op-0 last renewed the Lease"),
        (lease(renewed=-2), True, "op-0", "op-0 leads"),  # its clock a little ahead
        (lease(holder=None), False, None, "was released"),
        (lease(holder=""), False, None, "was released"),
        (lease(renewed=None), False, "op-0", "has no renewal"),
        (lease(duration=None), False, "op-0", "has no renewal"),
        ({"spec": {"holderIdentity": "op-0", "renewTime": "yesterday",
                   "leaseDurationSeconds": 15}}, False, "op-0", "has no renewal"),
    ],
    ids=["absent", "renewed", "at-the-limit", "expired", "skewed", "released", "empty-holder",
         "never-renewed", "no-duration", "unreadable-time"],
)  # fmt: skip
def test_the_lease_says_who_leads(
    found: dict[str, Any] | None, leading: bool, holder: str | None, says: str
) -> None:
    state = leader_of(found, NOW, WHERE)
    assert (state.leading, state.holder) == (leading, holder)
    assert says in state.message
    assert state.to_dict() == {"leading": leading, "holder": holder, "message": state.message}


def test_the_acquire_time_stands_for_a_renewal_not_yet_written() -> None:
    found = lease(renewed=None)
    found["spec"]["acquireTime"] = (NOW - timedelta(seconds=1)).isoformat()
    assert leader_of(found, NOW, WHERE).leading
