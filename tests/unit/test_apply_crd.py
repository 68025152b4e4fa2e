"""apply_crd waits for Established, reading the CRD as the API server answers it right after
its creation: ``status.conditions`` null until the controllers have looked at it."""

from __future__ import annotations

from typing import Any

import pytest

from saasodoo.adapters.resources import apply_crd
from saasodoo.core.crd import crd_manifest

pytestmark = pytest.mark.unit


class ApiServer:
    """Answers the apply, then the CRD's reads in order (the last one repeats)."""

    def __init__(self, *reads: dict[str, Any]) -> None:
        self.reads = list(reads)
        self.calls: list[str] = []

    def call_json(self, method: str, path: str, *_: Any) -> dict[str, Any]:
        self.calls.append(method)
        return {}

    def get_json(self, path: str, *_: Any) -> dict[str, Any]:
        self.calls.append("GET")
        return self.reads.pop(0) if len(self.reads) > 1 else self.reads[0]


def test_a_new_crd_with_null_conditions_is_waited_for_until_established() -> None:
    established = {"status": {"conditions": [{"type": "Established", "status": "True"}]}}
    server = ApiServer({"status": {"conditions": None}}, {"status": None}, established)
    apply_crd(server, crd_manifest(), timeout=10)  # type: ignore[arg-type]
    assert server.calls == ["PATCH", "GET", "GET", "GET"]
