"""Whether an operator leads, judged from its Lease as another process reads it (the API's
``/api/health``): pure, the Lease given as the API server's JSON.

The operator's replicas elect a leader on the Lease ``Settings.operator_lease`` in the
system namespace (``saasodoo.operator.election``). A reader that is no candidate cannot
measure renewals on its own clock as the candidates do; it compares the Lease's
``renewTime`` with its own clock instead, allowing ``SKEW`` seconds between the two. What
it says is a report for people, never a decision: nothing waits on it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from saasodoo.core.conditions import parse_time

#: Seconds of clock difference allowed between the operator's host and the reader's.
SKEW = 5.0


@dataclass(frozen=True)
class Leader:
    """What the Lease says: ``leading`` when a holder renewed it within its duration."""

    leading: bool
    holder: str | None
    message: str

    def to_dict(self) -> dict[str, Any]:
        return {"leading": self.leading, "holder": self.holder, "message": self.message}


def leader_of(
    lease: dict[str, Any] | None, now: datetime, where: str, *, skew: float = SKEW
) -> Leader:
    """The leader the Lease ``where`` (``namespace/name``) names at ``now``: none when the
    Lease is absent (``lease`` None: no operator ever ran against this namespace), has no
    holder (released by a graceful stop) or was last renewed longer than its
    ``leaseDurationSeconds`` (+ ``skew``) ago (the holder died or lost the API server)."""
    if lease is None:
        return Leader(False, None, f"no operator has run: no Lease {where}")
    spec = lease.get("spec") or {}
    holder = spec.get("holderIdentity") or None
    if holder is None:
        return Leader(False, None, f"no operator leads: the Lease {where} was released")
    renewed = parse_time(spec.get("renewTime")) or parse_time(spec.get("acquireTime"))
    duration = spec.get("leaseDurationSeconds")
    if renewed is None or not isinstance(duration, int | float):
        return Leader(False, holder, f"no operator leads: the Lease {where} has no renewal")
    age = (now - renewed).total_seconds()
    if age > duration + skew:
        return Leader(False, holder, f"no operator leads: {holder} last renewed the Lease "
                      f"{where} {age:.0f} s ago (it holds {duration} s)")  # fmt: skip
    return Leader(True, holder, f"{holder} leads (Lease {where})")
