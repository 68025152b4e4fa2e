"""A stored backup's record (saasodoo/backups/results.py BackupInfo) in its three forms: read
from its manifest, from restore.py --list's summary, and from an OdooTenant's status.backups
(what the API shows with the operator): the same thing to the API in each."""

from __future__ import annotations

import jsonschema
import pytest

from saasodoo.backups.results import BackupInfo
from saasodoo.core.crd import crd_manifest

pytestmark = pytest.mark.unit

MANIFEST = {
    "tenant": "acme",
    "kind": "on-demand",
    "odoo_version": "18.0",
    "db_name": "acme",
    "sizes": {"zip": 12345, "dump.sql": 67890, "filestore_files": 3},
    "checksums": {"dump.sql": "ab" * 32, "filestore": {"a": "b"}},
    "modules": {"base": "18.0.1.3", "web": "18.0.1.0"},
    "tables": {"res_partner": {"rows": 3}},
    "imported_from": "customer.zip",
}
NAME = "20261206T031500Z-on-demand.zip"


def test_the_three_forms_say_the_same() -> None:
    read = BackupInfo.from_manifest(NAME, MANIFEST)
    summary = BackupInfo.from_summary(read.to_dict())
    stored = BackupInfo.from_status("acme", read.to_status())
    assert read.to_dict() == summary.to_dict() == stored.to_dict()
    assert read.to_dict()["modules"] == 2 and read.to_dict()["tables"] == 1
    assert read.to_status()["time"] == "2026-12-06T03:15:00Z"


def test_a_status_entry_fits_the_crd() -> None:
    schema = crd_manifest()["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    entry = schema["properties"]["status"]["properties"]["backups"]["items"]
    jsonschema.validate(BackupInfo.from_manifest(NAME, MANIFEST).to_status(), entry)
    with pytest.raises(ValueError):
        BackupInfo.from_summary({"kind": "scheduled"})  # no name
