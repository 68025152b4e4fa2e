"""Each revision's Odoo series in ``status.releases`` (#23): read from the revision's values
in Helm's storage record (no helm process), and a rollback to a revision of another series
refused before any request is written, with the rule the operator's own check states."""

from __future__ import annotations

import base64
import gzip
import json
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any

import pytest

from saasodoo.adapters.kube import HelmStorage
from saasodoo.core.crd import OdooTenantStatus
from saasodoo.core.status import ReleaseInfo
from saasodoo.core.versions import check_rollback_series, revision_odoo
from saasodoo.errors import InvalidInput, NotFound
from saasodoo.operation_requests import rollback_target
from saasodoo.operator.controller import TenantController, release_entries

pytestmark = pytest.mark.unit

IMAGE = {"registry": "docker.io", "repository": "library/odoo", "tag": ""}
CHART = {"odoo": {"version": "18.0", "image": IMAGE}}


@pytest.mark.parametrize(
    ("config", "chart", "expected"),
    [
        pytest.param({"odoo": {"version": "17.0"}}, CHART, ("17.0", "docker.io/library/odoo:17.0"),
                     id="odoo.version over the chart's"),
        pytest.param({}, CHART, ("18.0", "docker.io/library/odoo:18.0"), id="the chart's default"),
        pytest.param({"odoo": {"version": "18.0", "image": {"tag": "19.0-20251201"}}}, CHART,
                     ("19.0", "docker.io/library/odoo:19.0-20251201"), id="a pinned tag leads"),
        pytest.param({"odoo": {"image": {"tag": "latest", "digest": "sha256:" + "a" * 64}}},
                     CHART, ("18.0", "docker.io/library/odoo:latest@sha256:" + "a" * 64),
                     id="a tag without a series: odoo.version"),
        pytest.param({"tenant": {"spec": {"odoo_version": "17.0"}}}, None, ("17.0", ""),
                     id="only the recorded spec"),
        pytest.param({}, None, ("", ""), id="nothing says"),
    ],
)  # fmt: skip
def test_the_series_and_image_a_revision_runs(
    config: dict[str, Any], chart: dict[str, Any] | None, expected: tuple[str, str]
) -> None:
    assert revision_odoo(config, chart) == expected


def secret(doc: dict[str, Any]) -> dict[str, Any]:
    """A Helm storage Secret as the API server returns it (data: base64 of Helm's own
    base64 of the gzipped record)."""
    helm = base64.b64encode(gzip.compress(json.dumps(doc).encode()))
    return {"data": {"release": base64.b64encode(helm).decode()}}


def test_a_storage_record_gives_the_revisions_series_without_helm() -> None:
    record = {
        "info": {"status": "superseded", "description": "Upgrade complete",
                 "last_deployed": "2026-12-06T08:00:00Z"},
        "chart": {"metadata": {"name": "odoo-tenant", "version": "0.4.0", "appVersion": "18.0"},
                  "values": CHART},
        "config": {"odoo": {"version": "17.0"}, "tenant": {"spec": {"odoo_version": "17.0"}}},
    }  # fmt: skip
    storage = HelmStorage.__new__(HelmStorage)
    read: list[str] = []

    def get_json(path: str, *args: Any) -> dict[str, Any]:
        read.append(path)
        return secret(record)

    storage.get_json = get_json  # type: ignore[method-assign]
    info = storage.release_revision("tenant-acme", "acme", 3)
    assert info is not None
    assert read == ["/api/v1/namespaces/tenant-acme/secrets/sh.helm.release.v1.acme.v3"]
    assert (info.chart, info.app_version) == ("odoo-tenant-0.4.0", "18.0")  # the chart's
    assert (info.odoo_series, info.odoo_image) == ("17.0", "docker.io/library/odoo:17.0")
    (entry,) = release_entries([info])
    assert (entry["odooSeries"], entry["odooImage"]) == ("17.0", "docker.io/library/odoo:17.0")
    OdooTenantStatus.model_validate({"releases": [entry]})  # the CRD's schema holds them


class FakeStorage:
    """Helm's storage records of one release: labels listed, records read (counted)."""

    def __init__(self, *revisions: ReleaseInfo) -> None:
        self.revisions = revisions
        self.read: list[int] = []

    def release_revisions(self, namespace: str, release: str) -> list[ReleaseInfo]:
        return [ReleaseInfo(r.revision, r.status, r.updated) for r in self.revisions]

    def release_revision(self, namespace: str, release: str, revision: int) -> ReleaseInfo:
        self.read.append(revision)
        return next(r for r in self.revisions if r.revision == revision)


def test_the_operator_reads_the_series_of_entries_recorded_without_it_once() -> None:
    when = datetime(2026, 12, 6, tzinfo=UTC)
    one = ReleaseInfo(1, "superseded", when, "Install complete", "odoo-tenant-0.4.0", "18.0",
                      "17.0", "docker.io/library/odoo:17.0")  # fmt: skip
    two = ReleaseInfo(2, "deployed", when, "Upgrade complete", "odoo-tenant-0.4.0", "18.0",
                      "18.0", "docker.io/library/odoo:18.0")  # fmt: skip
    storage = FakeStorage(one, two)
    controller = TenantController.__new__(TenantController)
    controller.ctx = SimpleNamespace(kube=storage)  # type: ignore[assignment]
    # An earlier operator's entries: no series.
    old = [{"revision": 2, "status": "deployed", "chart": "odoo-tenant-0.4.0"},
           {"revision": 1, "status": "superseded", "chart": "odoo-tenant-0.4.0"}]  # fmt: skip
    obj: dict[str, Any] = {"metadata": {"name": "acme"}, "status": {"releases": old}}
    entries = controller.releases(obj, two)
    assert entries is not None and storage.read == [2, 1]
    assert [(e["revision"], e["odooSeries"]) for e in entries] == [(2, "18.0"), (1, "17.0")]
    # Then nothing is read again while the head stays.
    obj["status"]["releases"] = entries
    assert controller.releases(obj, two) is None and storage.read == [2, 1]
    # A new head: only it is read; the others keep what they recorded.
    three = ReleaseInfo(3, "deployed", when, "Rollback to 1", "odoo-tenant-0.4.0", "18.0",
                        "17.0", "docker.io/library/odoo:17.0")  # fmt: skip
    storage.revisions = (one, ReleaseInfo(2, "superseded", when), three)
    entries = controller.releases(obj, three)
    assert entries is not None and storage.read == [2, 1, 3]
    assert [(e["revision"], e["status"], e["odooSeries"]) for e in entries] == [
        (3, "deployed", "17.0"), (2, "superseded", "18.0"), (1, "superseded", "17.0")]  # fmt: skip


def tenant(series: dict[int, str], **spec: Any) -> dict[str, Any]:
    releases = [{"revision": r, "status": "superseded", **({"odooSeries": s} if s else {})}
                for r, s in sorted(series.items(), reverse=True)]  # fmt: skip
    return {
        "metadata": {"name": "acme"},
        "spec": {"adminEmail": "a@acme.example", "odooVersion": "18.0", **spec},
        "status": {"releases": releases},
    }


@pytest.mark.parametrize(
    ("series", "revision", "spec", "refused"),
    [
        pytest.param({1: "17.0", 2: "18.0", 3: "18.0"}, None, {}, False, id="previous: same"),
        pytest.param({1: "17.0", 2: "18.0"}, None, {}, True, id="previous: older series"),
        pytest.param({1: "19.0", 2: "18.0"}, 1, {}, True, id="named: newer series"),
        pytest.param({1: "", 2: "18.0"}, 1, {}, False, id="not recorded: the operator's"),
        pytest.param({1: "17.0", 2: "17.0"}, 1,
                     {"overrides": {"odoo": {"image": {"tag": "17.0-20250218"}}}}, False,
                     id="a pinned tag is the tenant's series"),
    ],
)  # fmt: skip
def test_a_rollback_target_of_another_series_is_refused_naming_revision(
    series: dict[int, str], revision: int | None, spec: dict[str, Any], refused: bool
) -> None:
    obj = tenant(series, **spec)
    if not refused:
        assert rollback_target(obj, revision) == (revision or sorted(series)[-2])
        return
    with pytest.raises(InvalidInput) as error:
        rollback_target(obj, revision)
    (field,) = error.value.fields
    target = revision or sorted(series)[-2]
    assert field.field == "revision" and f"revision {target} runs Odoo {series[target]}" in (
        field.message), field.message  # fmt: skip
    assert "PostgreSQL data of one Odoo series cannot be rolled back to another" in field.message


def test_a_missing_revision_is_still_not_found() -> None:
    with pytest.raises(NotFound):
        rollback_target(tenant({1: "17.0", 2: "18.0"}), 7)


def test_the_rule_says_which_way_is_refused() -> None:
    check_rollback_series("acme", 1, (18, 0), (18, 0))  # same series: fine
    with pytest.raises(InvalidInput) as older:
        check_rollback_series("acme", 1, (18, 0), (17, 0))
    assert "an older Odoo cannot run on a newer series' database" in older.value.fields[0].message
    assert older.value.message.startswith("rollback refused for tenant 'acme': Odoo 18.0 -> 17.0")
    with pytest.raises(InvalidInput) as newer:
        check_rollback_series("acme", 1, (17, 0), (18, 0))
    assert "a newer Odoo does not migrate" in newer.value.fields[0].message
