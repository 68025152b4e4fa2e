"""When the operator looks again for an unproven custom domain's DNS proof
(``saasodoo.core.domains``: back-off, a request looks at once)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from saasodoo.core.domains import domain_check_due, next_domain_check

pytestmark = pytest.mark.unit

NOW = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)


def test_the_wait_doubles_per_check_that_found_nothing_up_to_an_hour() -> None:
    waits = [(next_domain_check(n, NOW) - NOW).total_seconds() for n in (1, 2, 3, 6, 7, 40)]
    assert waits == [60, 120, 240, 1920, 3600, 3600]


def test_a_check_is_due_when_asked_never_made_or_its_time_has_come() -> None:
    later = {"nextCheckAt": (NOW + timedelta(minutes=5)).isoformat().replace("+00:00", "Z")}
    assert not domain_check_due(later, NOW, requested=False)
    assert domain_check_due(later, NOW, requested=True)
    assert domain_check_due(later, NOW + timedelta(minutes=5), requested=False)
    assert domain_check_due(None, NOW, requested=False)
    assert domain_check_due({"nextCheckAt": "garbage"}, NOW, requested=False)
    assert domain_check_due({"host": "x.example"}, NOW, requested=False)
