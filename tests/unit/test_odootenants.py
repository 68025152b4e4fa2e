"""``TenantView``: a tenant as its OdooTenant shows it (what the CLI and the API answer)."""

from __future__ import annotations

from typing import Any

import pytest

from saasodoo.odootenants import TenantView

pytestmark = pytest.mark.unit

SPEC = {"adminEmail": "a@acme.example", "plan": "starter", "odooVersion": "18.0",
        "customDomains": ["erp.acme.example"], "owner": "u1"}  # fmt: skip


def obj(status: dict[str, Any] | None = None, **meta: Any) -> dict[str, Any]:
    return {"metadata": {"name": "acme", "generation": 1, **meta}, "spec": SPEC,
            "status": status}  # fmt: skip


def ready(generation: int) -> dict[str, Any]:
    return {"type": "Ready", "status": "True", "reason": "InstallSucceeded",
            "message": "installed", "observedGeneration": generation,
            "lastTransitionTime": "2026-12-05T10:00:00Z"}  # fmt: skip


def test_a_tenant_the_operator_has_not_reconciled_yet_is_in_progress_not_current() -> None:
    # kstatus' generic rules call a resource without conditions Current.
    view = TenantView.of(obj())
    assert (view.kstatus, view.ready, view.observed_generation) == ("InProgress", "", None)
    assert view.to_dict()["status"] == "InProgress"


def test_a_reconciled_tenant_reads_its_ready_condition_and_spec() -> None:
    view = TenantView.of(obj({"observedGeneration": 1, "conditions": [ready(1)], "revision": 1}))
    assert (view.kstatus, view.ready, view.reason) == ("Current", "True", "InstallSucceeded")
    d = view.to_dict()
    assert (d["admin_email"], d["custom_domains"], d["owner"]) == (
        "a@acme.example",
        ["erp.acme.example"],
        "u1",
    )


def test_a_new_generation_is_in_progress_and_a_deletion_terminating() -> None:
    newer = obj({"observedGeneration": 1, "conditions": [ready(1)]}, generation=2)
    assert TenantView.of(newer).kstatus == "InProgress"
    deleting = obj(None, deletionTimestamp="2026-12-05T10:00:00Z")
    assert TenantView.of(deleting).kstatus == "Terminating"
