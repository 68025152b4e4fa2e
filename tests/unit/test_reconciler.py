"""The reconciler's dispatch (saasodoo.reconciler): every action next_action can choose has
its executor, and the loop's outcome names what was done."""

from __future__ import annotations

import pytest

from saasodoo.core.reconcile import Action, State, next_action
from saasodoo.reconciler import EXECUTORS, Outcome, outcome_of

pytestmark = pytest.mark.unit

#: What the loop handles itself: nothing to do, come back later, a human decides.
NOT_ACTING = {Action.NONE, Action.WAIT, Action.REPORT}


def test_every_chosen_action_has_an_executor_and_no_executor_is_idle() -> None:
    chosen = {next_action(s, force=f) for s in State for f in (False, True)}
    assert chosen - NOT_ACTING == set(EXECUTORS)
    assert set(Action) - NOT_ACTING == set(EXECUTORS)


@pytest.mark.parametrize(
    ("actions", "outcome"),
    [
        ([], Outcome.UNCHANGED),
        ([Action.INSTALL], Outcome.INSTALLED),
        ([Action.UPGRADE], Outcome.UPGRADED),
        ([Action.UPGRADE, Action.ROLLBACK], Outcome.ROLLED_BACK),
        ([Action.UNLOCK, Action.ROLLBACK, Action.UPGRADE], Outcome.RECOVERED),
        ([Action.ADOPT], Outcome.RECOVERED),
        ([Action.REINSTALL], Outcome.RECOVERED),
    ],
)
def test_the_outcome_names_what_was_done(actions: list[Action], outcome: Outcome) -> None:
    assert outcome_of(actions) is outcome
