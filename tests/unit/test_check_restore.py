"""Backups.check_restore: what a restore or a verify refuses before its first write (the CLI
through restore/verify, the API before it queues the job)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from saasodoo.adapters.storage import DirectoryStore, StorageUnavailable
from saasodoo.backups import Backups
from saasodoo.errors import InvalidInput, NotFound
from saasodoo.settings import Settings

pytestmark = pytest.mark.unit

CRONJOB: dict[str, Any] = {"metadata": {"name": "acme-backup", "namespace": "tenant-acme"}}


class OneTenant(Backups):
    """The tenant's CronJob and store without a cluster: a folder, or a PVC not reachable."""

    def __init__(self, root: Path | None, unreachable: bool = False) -> None:
        def factory(tenant_id: str, cronjob: dict[str, Any]) -> DirectoryStore:
            if root is None:
                raise InvalidInput("the backup PVC is not reachable from here")
            if unreachable:
                raise StorageUnavailable("s3://backups: connection refused")
            return DirectoryStore(root)

        super().__init__(Settings(), store_factory=factory)

    def cronjob(self, tenant_id: str) -> dict[str, Any]:
        if tenant_id != "acme":
            raise NotFound(f"tenant '{tenant_id}' not found")
        return CRONJOB


ZIP = "20261130T120000Z-on-demand.zip"


def test_a_complete_backup_and_the_newest_are_accepted(tmp_path: Path) -> None:
    (tmp_path / ZIP).write_bytes(b"zip")
    (tmp_path / (ZIP + ".json")).write_text("{}")
    backups = OneTenant(tmp_path)
    assert backups.check_restore("acme", ZIP) is CRONJOB
    assert backups.check_restore("acme", None) is CRONJOB


def test_no_backup_yet_is_refused_before_any_job(tmp_path: Path) -> None:
    with pytest.raises(NotFound, match="tenant 'acme' has no backups yet"):
        OneTenant(tmp_path).check_restore("acme", None)


@pytest.mark.parametrize("present", [(), (ZIP,), (ZIP + ".json",)])
def test_a_missing_or_incomplete_backup_is_refused_naming_it(
    tmp_path: Path, present: tuple[str, ...]
) -> None:
    for name in present:
        (tmp_path / name).write_text("x")
    with pytest.raises(NotFound, match=f"tenant 'acme' has no complete backup {ZIP}"):
        OneTenant(tmp_path).check_restore("acme", ZIP)


def test_a_pvc_not_reachable_from_here_is_left_to_restore_py() -> None:
    assert OneTenant(None).check_restore("acme", ZIP) is CRONJOB


def test_a_bucket_reachable_only_from_the_cluster_is_left_to_restore_py(tmp_path: Path) -> None:
    assert OneTenant(tmp_path, unreachable=True).check_restore("acme", None) is CRONJOB


def test_an_unknown_tenant_is_not_found() -> None:
    with pytest.raises(NotFound, match="tenant 'nobody' not found"):
        OneTenant(None).check_restore("nobody", None)


class Tenant18(OneTenant):
    def recorded_odoo_version(self, namespace: str, tenant_id: str) -> str:
        return "18.0"


@pytest.mark.parametrize("newest", [True, False])
def test_a_backup_of_another_odoo_series_is_refused_naming_both(
    tmp_path: Path, newest: bool
) -> None:
    """Issue #22 point 5: a 17.0 backup (a pre-update backup after an upgrade) is refused for
    a restore into an 18.0 tenant before anything is touched; verifying it only reads."""
    (tmp_path / ZIP).write_bytes(b"zip")
    (tmp_path / (ZIP + ".json")).write_text(
        '{"major_version": "17.0", "odoo_version": "17.0", "version": "17.0"}'
    )
    backups = Tenant18(tmp_path)
    with pytest.raises(InvalidInput) as refused:
        backups.check_restore("acme", None if newest else ZIP)
    assert refused.value.message.startswith(
        f"backup {ZIP} is of Odoo 17.0; tenant 'acme' runs Odoo 18.0. A backup restores only "
        "into its own series"
    )
    assert backups.check_restore("acme", ZIP, series=False) is CRONJOB
    (tmp_path / (ZIP + ".json")).write_text('{"major_version": "18.0"}')
    assert backups.check_restore("acme", ZIP) is CRONJOB
