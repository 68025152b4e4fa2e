"""Which replicas a restore gives Odoo back (``replicas_before``): the Deployment's own, or the
note a failed restore left when it kept Odoo stopped, if nothing changed the Deployment since."""

from __future__ import annotations

import pytest

from saasodoo.adapters.kube import Deployment
from saasodoo.backups.restore import REPLICAS_ANNOTATION, replicas_before

pytestmark = pytest.mark.unit


def deployment(replicas: int, generation: int, note: str | None = None) -> Deployment:
    annotations = {REPLICAS_ANNOTATION: note} if note is not None else {}
    return Deployment("odoo", replicas, generation, annotations)


@pytest.mark.parametrize(
    ("replicas", "generation", "note", "expected"),
    [
        (2, 5, None, 2),  # no note: as it is
        (0, 5, None, 0),  # suspended, no note: stays at zero
        (0, 5, "3@5", 3),  # left stopped by a failed restore, untouched since: back to 3
        (0, 6, "3@5", 0),  # changed since (helm upgrade, resume, suspend): the note is stale
        (1, 5, "3@5", 1),  # running: its own count wins
        (0, 5, "three@5", 0),  # a note saasodoo did not write
        (0, 5, "3", 0),  # no generation: not trusted
    ],
)
def test_replicas_to_give_back(replicas: int, generation: int, note: str | None,
                               expected: int) -> None:  # fmt: skip
    assert replicas_before(deployment(replicas, generation, note)) == expected
