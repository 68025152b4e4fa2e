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


class Listing:
    """A list request's answer, counted."""

    def __init__(self, items: list[dict[str, Any]]) -> None:
        self.items, self.lists = items, 0

    def list(self, selector: str | None = None) -> dict[str, Any]:
        self.lists += 1
        return {"items": self.items}


class Watched:
    """A watch cache that has (or has not yet) listed."""

    def __init__(self, items: list[dict[str, Any]], synced: bool) -> None:
        self.items, self.synced = items, synced

    def has_synced(self) -> bool:
        return self.synced

    def list(self) -> list[dict[str, Any]]:
        return self.items


def test_lists_come_from_the_watch_cache_once_it_has_listed() -> None:
    """The API's tenant lists (issue #23: 1,000 tenants, p50 under 100 ms): from the watch
    cache, no request; a list request while it has not listed yet. The cache keeps what a
    TenantView reads (``listed``: not the record, the backups' inventory, the history), and
    the view is the same either way; another owner's tenant is never shown."""
    from saasodoo.odootenants import OdooTenants, listed
    from saasodoo.settings import Settings

    whole = obj({"observedGeneration": 1, "conditions": [ready(1)], "revision": 3,
                 "url": "https://acme.example", "backups": [{"name": "b.zip"}] * 30,
                 "record": {"spec": "{}"}, "history": [{"operation": "create"}]},
                resourceVersion="7", managedFields=[{"manager": "x"}])  # fmt: skip
    other = obj({"observedGeneration": 1}, resourceVersion="8")
    other = {**other, "metadata": {**other["metadata"], "name": "beta"},
             "spec": {**SPEC, "owner": "u2"}}  # fmt: skip
    slim = listed(whole)
    assert set(slim["status"]) == {"conditions", "observedGeneration", "revision", "url"}
    assert "managedFields" not in slim["metadata"] and slim["metadata"]["resourceVersion"] == "7"
    assert TenantView.of(slim) == TenantView.of(whole)
    objects = OdooTenants(Settings())
    requests = Listing([whole, other])
    objects.resources = requests  # type: ignore[assignment]
    objects._cache = Watched([listed(other), slim], synced=False)  # type: ignore[assignment]
    assert [v.id for v in objects.list()] == ["acme", "beta"] and requests.lists == 1
    objects._cache.synced = True  # type: ignore[union-attr]
    assert [v.id for v in objects.list()] == ["acme", "beta"] and requests.lists == 1
    assert [v.id for v in objects.list(owner="u2")] == ["beta"] and requests.lists == 1
