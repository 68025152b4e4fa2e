"""`Backups.stage_import` never overwrites a stored backup: names are the UTC second, so an
import takes the next free second when this one's name is stored already, and one stored by
someone else meanwhile is refused (Conflict), the stored one left as it was (a restore pending
on it would otherwise restore other data)."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path
from typing import Any

import pytest

from saasodoo.adapters.storage import DirectoryStore
from saasodoo.backups import importing
from saasodoo.backups.service import Backups
from saasodoo.errors import Conflict
from saasodoo.settings import Settings
from tests.api.zips import odoo_zip

pytestmark = pytest.mark.unit

NAME = "20261206T080000Z-on-demand.zip"


class Staging(Backups):
    """Backups with the tenant's CronJob, storage and series given (no cluster)."""

    def __init__(self, store: DirectoryStore) -> None:
        super().__init__(Settings(kubeconfig=Path("/nonexistent")))
        self.dir_store = store

    def cronjob(self, tenant_id: str) -> dict[str, Any]:
        return {"metadata": {"namespace": f"tenant-{tenant_id}"}}

    def store(self, tenant_id: str, cronjob: dict[str, Any] | None = None) -> Any:
        return self.dir_store

    def recorded_odoo_version(self, namespace: str, tenant_id: str) -> str:
        return "18.0"


def fake_prepare(source: Path, work: Path, **_: Any) -> importing.Prepared:
    """What the import worker makes of ``source``: always the same second's name."""
    (work / NAME).write_bytes(source.read_bytes())
    (work / "manifest.json").write_text(f'{{"from": "{source.name}"}}')
    return importing.Prepared(NAME, work / NAME, work / "manifest.json", "copy")


def test_an_import_of_the_same_second_is_refused_and_the_first_kept(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(importing, "prepare", fake_prepare)
    root = tmp_path / "store"
    root.mkdir()
    backups = Staging(DirectoryStore(root))
    first, second = tmp_path / "first.zip", tmp_path / "second.zip"
    first.write_bytes(b"first")
    second.write_bytes(b"second")
    assert backups.stage_import("acme", first) == NAME
    with pytest.raises(Conflict, match="already exists.*try again"):
        backups.stage_import("acme", second)
    assert (root / NAME).read_bytes() == b"first"
    assert "first.zip" in (root / (NAME + ".json")).read_text()


def test_imports_staged_back_to_back_get_names_of_their_own(tmp_path: Path) -> None:
    """CI caught two imports of one tenant staged within one second: the second was refused
    (409 through the API). It now waits for the next free second, as the backup program
    does, and both are stored (the real worker: the name and manifest come from it)."""
    root = tmp_path / "store"
    root.mkdir()
    backups = Staging(DirectoryStore(root))
    names = [
        backups.stage_import("acme", odoo_zip(tmp_path / f"{i}.zip", db_name=f"customer{i}"))
        for i in range(3)
    ]
    assert len(set(names)) == 3, names
    for name in names:
        stored = json.loads((root / (name + ".json")).read_text())
        assert name == f"{stored['timestamp'].replace('-', '').replace(':', '')}-on-demand.zip"
        with zipfile.ZipFile(root / name) as zf:
            assert json.loads(zf.read("manifest.json"))["timestamp"] == stored["timestamp"]
    assert sorted(p.name for p in root.iterdir()) == sorted([*names, *(n + ".json" for n in names)])
