"""The spec saasodoo records on a tenant's namespace, read back (``core.record.spec_of``,
which ``record.TenantRecord.spec`` uses), by the tenants and by an import (the tenant's Odoo
version): absent, not JSON, not a valid spec each give an error naming the namespace, never a
KeyError."""

from __future__ import annotations

from typing import Any

import pytest

from saasodoo.adapters.kube import Namespace
from saasodoo.backups.service import Backups
from saasodoo.core.record import SPEC_ANNOTATION, spec_of
from saasodoo.core.spec import TENANT_LABEL, TenantSpec
from saasodoo.errors import NotFound, SaasodooError
from saasodoo.settings import Settings
from tests.fakes import FakeKube

pytestmark = pytest.mark.unit

GOOD = TenantSpec.parse({"id": "acme", "admin_email": "a@example.com", "odoo_version": "17.0"})


def namespace(raw: str | None) -> Namespace:
    annotations = {SPEC_ANNOTATION: raw} if raw is not None else {}
    return Namespace("tenant-acme", labels={TENANT_LABEL: "acme"}, annotations=annotations)


def recorded_spec(ns: Namespace) -> TenantSpec:
    return spec_of(ns.annotations, ns.labels, ns.name)


def odoo_version(ns: Namespace | None, odootenant: dict[str, Any] | None = None) -> str:
    kube = FakeKube(namespaces={ns.name: ns} if ns is not None else {})
    if odootenant is not None:
        kube.odootenants["acme"] = odootenant
    backups = Backups(Settings(), kube=kube)
    return backups.recorded_odoo_version("tenant-acme", "acme")


def test_the_recorded_spec_is_read_back() -> None:
    assert recorded_spec(namespace(GOOD.model_dump_json())) == GOOD
    assert odoo_version(namespace(GOOD.model_dump_json())) == "17.0"


def test_an_import_reads_the_spec_an_odootenant_records() -> None:
    """A tenant with an OdooTenant: its record is the OdooTenant's status.record, its
    namespace carries none."""
    held = {"metadata": {"name": "acme"}, "status": {"record": {"spec": GOOD.model_dump_json()}}}
    assert odoo_version(namespace(None), held) == "17.0"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("{not json", "is not valid: not JSON"),
        ('{"id": "acme"}', "is not valid: admin_email: Field required"),
        ('{"id": "acme", "admin_email": "a@example.com", "odoo_version": 17}', "odoo_version"),
        ("[]", "is not valid: (spec):"),
    ],
)
def test_a_bad_spec_is_a_clear_error(raw: str, expected: str) -> None:
    for read in (recorded_spec, odoo_version):
        with pytest.raises(SaasodooError) as caught:
            read(namespace(raw))
        message = str(caught.value)
        assert not isinstance(caught.value, NotFound)
        assert message.startswith(
            f"tenant 'acme': the spec recorded on namespace tenant-acme ({SPEC_ANNOTATION})"
        ), message
        assert expected in message, message


@pytest.mark.parametrize("ns", [namespace(None), namespace(""), None])
def test_no_spec_is_not_found(ns: Any) -> None:
    with pytest.raises(NotFound, match="tenant 'acme': "):
        odoo_version(ns)
