"""Staging copies in the pure core: the OdooTenant's copyOf/expiresAt fields (pydantic and
the CRD's CEL rules), the copy's spec, its expiry, and the steps that make it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from saasodoo.core import copies, crd
from saasodoo.errors import Conflict, InvalidInput, NotFound

pytestmark = pytest.mark.unit

NOW = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)
SOURCE = {
    "adminEmail": "boss@acme.example",
    "plan": "standard",
    "odooVersion": "18.0",
    "customDomains": ["erp.acme.example"],
    "overrides": {"odoo": {"config": {"workers": 3}}},
    "owner": "user-1",
}


def copy_of(**extra: Any) -> dict[str, Any]:
    return copies.copy_spec("acme", SOURCE, "acme-staging", **extra)


# --- the fields -----------------------------------------------------------------------


def test_copy_spec_takes_the_source_s_series_plan_admin_and_overrides_not_its_hosts() -> None:
    spec = copy_of(expires_at=NOW + timedelta(days=7))
    assert spec == {
        "adminEmail": "boss@acme.example",
        "plan": "standard",
        "odooVersion": "18.0",
        "customDomains": [],
        "overrides": {"odoo": {"config": {"workers": 3}}},
        "suspended": False,
        "owner": "user-1",
        "finalBackup": True,
        "copyOf": {"tenant": "acme"},
        "expiresAt": "2026-12-13T12:00:00Z",
    }
    named = copy_of(backup="20261206T010203Z-scheduled.zip", plan="starter", owner="user-2")
    assert named["copyOf"] == {"tenant": "acme", "backup": "20261206T010203Z-scheduled.zip"}
    assert (named["plan"], named["owner"]) == ("starter", "user-2")
    assert "expiresAt" not in named
    assert copies.copy_labels("acme") == {"saasodoo.dev/copy-of": "acme"}


@pytest.mark.parametrize(
    ("spec", "field", "words"),
    [
        ({"copyOf": {"tenant": "Acme"}}, "spec.copyOf.tenant", "pattern"),
        ({"copyOf": {"tenant": "ab"}}, "spec.copyOf.tenant", "at least 3"),
        ({"copyOf": {}}, "spec.copyOf.tenant", "Field required"),
        ({"copyOf": {"tenant": "acme", "backup": "../other/x.zip"}}, "spec.copyOf.backup",
         "pattern"),
        ({"copyOf": {"tenant": "acme", "backup": "x.tar"}}, "spec.copyOf.backup", "pattern"),
        ({"copyOf": {"tenant": "acme", "from": "x"}}, "spec.copyOf.from", "Extra inputs"),
        ({"expiresAt": "2026-12-13T12:00:00Z"}, "spec.expiresAt", "only for a staging copy"),
        ({"copyOf": {"tenant": "acme"}, "expiresAt": "soon"}, "spec.expiresAt", "datetime"),
    ],
)  # fmt: skip
def test_bad_copy_fields_are_refused_naming_the_field(
    spec: dict[str, Any], field: str, words: str
) -> None:
    with pytest.raises(InvalidInput) as caught:
        crd.parse_spec({"adminEmail": "a@b.example", **spec})
    assert f"{field}:" in caught.value.message and words in caught.value.message


def test_a_copy_takes_no_outgoing_mail_from_the_source_s_overrides() -> None:
    mail = {
        "odoo": {"smtp": {"enabled": True, "host": "smtp.acme.example"}, "config": {"x": 1}},
        "networkPolicy": {"egress": {"smtp": {"enabled": True}}},
    }
    spec = copies.copy_spec("acme", {**SOURCE, "overrides": mail}, "acme-staging")
    assert spec["overrides"] == {"odoo": {"config": {"x": 1}}}
    assert mail["odoo"]["smtp"]["enabled"] is True  # the source's spec is left as it was
    assert copies.without_mail({"odoo": {"smtp": {}}}) == {}


def test_a_copy_of_itself_is_refused() -> None:
    with pytest.raises(InvalidInput, match=r"^invalid copy: to: a tenant cannot be a copy of"):
        copies.copy_spec("acme", SOURCE, "acme")
    with pytest.raises(InvalidInput, match=r"spec\.copyOf\.tenant: a tenant cannot be a copy"):
        crd.to_tenant_spec("acme", {**SOURCE, "copyOf": {"tenant": "acme"}}, copies=True)


def test_an_operator_without_copies_refuses_one_rather_than_install_an_empty_tenant() -> None:
    spec = copy_of()
    with pytest.raises(InvalidInput, match=r"spec\.copyOf: this operator does not make"):
        crd.to_tenant_spec("acme-staging", spec)
    made = crd.to_tenant_spec("acme-staging", spec, copies=True)
    assert (made.id, made.plan, made.custom_domains) == ("acme-staging", "standard", ())
    # A tenant that is not a copy converts as before.
    assert crd.to_tenant_spec("acme", SOURCE).custom_domains == ("erp.acme.example",)


def test_the_crd_carries_the_copy_rules() -> None:
    root = crd.crd_manifest()["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    spec = root["properties"]["spec"]
    rules = {r["rule"]: r for r in root["x-kubernetes-validations"]}
    self_copy = rules["!has(self.spec.copyOf) || self.spec.copyOf.tenant != self.metadata.name"]
    assert self_copy["fieldPath"] == ".spec.copyOf.tenant"
    spec_rules = {r["rule"]: r["fieldPath"] for r in spec["x-kubernetes-validations"]}
    assert spec_rules == {
        "has(self.copyOf) == has(oldSelf.copyOf)": ".copyOf",
        "!has(self.expiresAt) || has(self.copyOf)": ".expiresAt",
    }
    source = spec["properties"]["copyOf"]
    assert source["x-kubernetes-validations"][0]["rule"] == "self == oldSelf"
    assert source["required"] == ["tenant"]
    assert source["properties"]["tenant"]["pattern"] == "^[a-z]([-a-z0-9]*[a-z0-9])?$"
    assert spec["properties"]["expiresAt"]["format"] == "date-time"


# --- expiry ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "delta"),
    [("7d", timedelta(days=7)), ("12h", timedelta(hours=12)), ("90m", timedelta(minutes=90)),
     ("1d12h", timedelta(hours=36)), ("365d", timedelta(days=365))],
)  # fmt: skip
def test_expires_in(text: str, delta: timedelta) -> None:
    assert copies.parse_expires_in(text) == delta


@pytest.mark.parametrize(
    ("text", "words"),
    [("", "not a duration"), ("7", "not a duration"), ("7w", "not a duration"),
     ("-1d", "not a duration"), ("0d", "longer than zero"), ("366d", "at most 365d"),
     ("1d 2h", "not a duration"), ("8761h", "at most 365d"), ("999999d", "at most 365d"),
     ("9" * 40 + "d", "not a duration")],
)  # fmt: skip
def test_bad_expires_in_names_the_field(text: str, words: str) -> None:
    with pytest.raises(InvalidInput, match=f"expires_in: .*{words}"):
        copies.parse_expires_in(text)


def test_expiry_in_the_past_is_the_client_s_check_and_expired_reads_the_spec() -> None:
    with pytest.raises(InvalidInput, match="expiresAt: 2026-12-06T12:00:00Z is not in the future"):
        copies.check_expires_at(NOW, NOW)
    copies.check_expires_at(NOW + timedelta(seconds=1), NOW)
    spec = copy_of(expires_at=NOW + timedelta(hours=1))
    assert not copies.expired(spec, NOW)
    assert copies.expired(spec, NOW + timedelta(hours=1))
    assert not copies.expired(copy_of(), NOW + timedelta(days=3650))
    assert copies.seconds_to_expiry(spec, NOW) == 3600
    assert copies.seconds_to_expiry(spec, NOW + timedelta(hours=2)) == -3600
    assert copies.seconds_to_expiry(copy_of(), NOW) is None


# --- the plan -------------------------------------------------------------------------


def facts(**kw: Any) -> copies.SourceFacts:
    return copies.SourceFacts(**{"name": "acme", "exists": True, "odoo_version": "18.0",
                                 "storage": copies.S3, **kw})  # fmt: skip


def test_plan_from_a_fresh_backup_on_s3() -> None:
    assert copies.copy_plan(facts(), copy_of()) == [
        "backup-source", "install-stopped", "restore", "neutralize", "start",
    ]  # fmt: skip


def test_plan_from_a_named_backup_takes_none() -> None:
    spec = copy_of(backup="20261206T010203Z-scheduled.zip")
    assert copies.copy_plan(facts(), spec) == ["install-stopped", "restore", "neutralize", "start"]


def test_plan_from_a_pvc_carries_the_backup_over_first() -> None:
    steps = copies.copy_plan(facts(storage=copies.PVC), copy_of())
    assert steps == ["backup-source", "install-stopped", "transfer", "restore", "neutralize",
                     "start"]  # fmt: skip


@pytest.mark.parametrize(
    ("kw", "error", "words"),
    [
        ({"exists": False}, NotFound, "'acme' of the copy does not exist"),
        ({"deleting": True}, Conflict, "being deleted"),
        ({"odoo_version": "17.0"}, InvalidInput, "spec.odooVersion: 18.0 differs from the "
                                                  "source's 17.0"),
        ({"storage": ""}, InvalidInput, "spec.copyOf.tenant: 'acme' keeps no backups"),
    ],
)  # fmt: skip
def test_plan_refusals(kw: dict[str, Any], error: type[Exception], words: str) -> None:
    with pytest.raises(error) as caught:
        copies.copy_plan(facts(**kw), copy_of())
    assert words in str(caught.value)


def test_plan_of_a_tenant_that_is_no_copy() -> None:
    with pytest.raises(InvalidInput, match=r"spec\.copyOf: is not set"):
        copies.copy_plan(facts(), SOURCE)


# --- the copy's restore Job -----------------------------------------------------------


class _NoAdminSecret:
    def secret_has_key(self, namespace: str, name: str, key: str) -> bool:
        return False


def test_the_copy_s_restore_job_reads_the_source_s_folder() -> None:
    """JobRunner.restore_job(source_tenant=...): restore.py --source-tenant in the copy's
    namespace, with the copy's own storage settings, database and filestore."""
    from saasodoo.backups.jobs import JobRunner

    backup = {
        "name": "backup",
        "command": [
            "python3",
            "/opt/odoo-tenant/backup.py",
            "--s3",
            "--tenant=acme-stg",
            "--filestore=/odoo/filestore",
        ],
    }
    cronjob = {
        "metadata": {"namespace": "tenant-acme-stg", "name": "acme-stg-backup", "uid": "u"},
        "spec": {"jobTemplate": {"spec": {"template": {"spec": {"containers": [backup]}}}}},
    }  # fmt: skip
    runner = JobRunner(_NoAdminSecret())  # type: ignore[arg-type]
    job = runner.restore_job("acme-stg", cronjob, "20261206T010203Z-on-demand.zip",
                             mode="restore", source_tenant="acme")  # fmt: skip
    (container,) = job["spec"]["template"]["spec"]["containers"]
    assert container["command"][2:] == [
        "--s3", "--tenant=acme-stg", "--work=/backups", "--filestore=/odoo/filestore",
        "--source-tenant=acme", "--backup=20261206T010203Z-on-demand.zip",
    ]  # fmt: skip
    plain = runner.restore_job("acme-stg", cronjob, None, mode="restore")
    assert not any("--source-tenant" in a for a in plain["spec"]["template"]["spec"]
                   ["containers"][0]["command"])  # fmt: skip


def test_a_refresh_is_of_a_copy_made_and_copies_its_own_source() -> None:
    made = {"metadata": {"name": "acme-stg"}, "spec": {"copyOf": {"tenant": "acme"}},
            "status": {"copy": {"source": "acme", "step": copies.COPIED}}}  # fmt: skip
    assert copies.refresh_source(made) == "acme"
    with pytest.raises(InvalidInput) as no_copy:
        copies.refresh_source({"metadata": {"name": "acme"}, "spec": {}})
    assert [f.field for f in no_copy.value.fields] == ["tenant"]
    making = {**made, "status": {"copy": {"source": "acme", "step": copies.RESTORE}}}
    with pytest.raises(Conflict, match="not made yet \\(step restore\\)"):
        copies.refresh_source(making)
