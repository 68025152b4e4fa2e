"""Guards once (#16): the CLI and the HTTP API refuse the same bad input with the same
error, because both call the lifecycle's own checks (``Tenants.check_create``,
``plan_update``; the API through ``OdooTenants`` and ``OperationRequests``, which call them
before writing a resource): exit code and HTTP status of one error kind, the same field and
message. Against small fakes of Kube, Helm and the resources (tests/fakes.py)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from click.testing import CliRunner
from flask import Flask

import saasodoo.cli as cli_module
from saasodoo.api.config import ApiSettings
from saasodoo.app import create_app
from saasodoo.cli import cli
from saasodoo.context import Context
from saasodoo.core.spec import TenantSpec
from saasodoo.errors import Conflict, InvalidInput, NotFound, SaasodooError
from saasodoo.settings import Settings
from saasodoo.tenants import Tenants
from tests.api.conftest import Api, fake_resources, odoo_tenant, sign_up
from tests.fakes import FakeHelm, FakeKube, FakeResources

pytestmark = pytest.mark.unit

SETTINGS = Settings(base_domain="odoo.test")


@dataclass
class Both:
    """One fake cluster seen through the CLI and through the API (as a signed-in user who
    owns the tenant ``acme``, at Odoo 19.0, revision 2: revision 1 ran 18.0, revision 2 was
    made by a lower layer than the checks, as an SRE's or an older saasodoo's could be)."""

    tenants: Tenants
    api: Api
    app: Flask
    helm: FakeHelm
    kube: FakeKube
    resources: dict[str, FakeResources]


@pytest.fixture
def both(monkeypatch: pytest.MonkeyPatch) -> Iterator[Both]:
    kube, helm = FakeKube(), FakeHelm(SETTINGS)
    tenants = Tenants(Context(SETTINGS, helm=helm, kube=kube))
    monkeypatch.setattr(cli_module, "tenants_of", lambda ctx: tenants)
    app: Flask = create_app(ApiSettings(cookie_secure=False), tenants=tenants)
    resources = fake_resources(app)
    api = sign_up(app.test_client(), "owner@example.com")
    spec = TenantSpec.parse({"id": "acme", "admin_email": "a@acme.example", "odoo_version": "18.0"})
    asyncio.run(tenants.create(spec, owner=api.user_id))
    spec = tenants.ctx.record.spec(tenants.ctx.record.namespace("acme"))  # with its creation facts
    on_19 = spec.model_copy(update={"odoo_version": "19.0"})
    asyncio.run(tenants.upgrade_to(on_19, False, (spec, False), "update", "by hand", wait=True))
    # Its OdooTenant as the operator keeps it: the spec, the release history in the status.
    obj = odoo_tenant("acme", api.user_id, odooVersion="19.0", adminEmail="a@acme.example")
    obj["status"] = {"releases": [{"revision": 2, "status": "deployed", "odooSeries": "19.0"},
                                  {"revision": 1, "status": "superseded",
                                   "odooSeries": "18.0"}]}  # fmt: skip
    resources["OdooTenant"].objs["acme"] = obj
    yield Both(tenants, api, app, helm, kube, resources)


def _cli(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    return result.exit_code, result.stderr


CASES: list[tuple[str, tuple[str, ...], tuple[str, str, dict[str, Any]], type[SaasodooError]]] = [
    (
        "unknown plan",
        ("tenant", "create", "beta", "--email", "a@b.example", "--plan", "gold"),
        ("POST", "/api/tenants", {"id": "beta", "admin_email": "a@b.example", "plan": "gold"}),
        InvalidInput,
    ),
    (
        "id starting with a digit (Services are DNS-1035 labels)",
        ("tenant", "create", "1acme", "--email", "a@b.example"),
        ("POST", "/api/tenants", {"id": "1acme", "admin_email": "a@b.example"}),
        InvalidInput,
    ),
    (
        "existing tenant",
        ("tenant", "create", "acme", "--email", "a@acme.example"),
        ("POST", "/api/tenants", {"id": "acme", "admin_email": "a@acme.example"}),
        Conflict,
    ),
    (
        "platform domain",
        ("tenant", "create", "beta", "--email", "a@b.example", "--domain", "shop.odoo.test"),
        ("POST", "/api/tenants",
         {"id": "beta", "admin_email": "a@b.example", "custom_domains": ["shop.odoo.test"]}),
        InvalidInput,
    ),
    (
        "Odoo series change",
        ("tenant", "update", "acme", "--odoo-version", "18.0"),
        ("PATCH", "/api/tenants/acme", {"odoo_version": "18.0"}),
        InvalidInput,
    ),
    (
        "nothing to update",
        ("tenant", "update", "acme"),
        ("PATCH", "/api/tenants/acme", {}),
        InvalidInput,
    ),
    (
        "rollback to a revision of another Odoo series",
        ("tenant", "rollback", "acme", "1"),
        ("POST", "/api/tenants/acme/rollback", {"revision": 1}),
        InvalidInput,
    ),
    (
        "rollback to a missing revision",
        ("tenant", "rollback", "acme", "7"),
        ("POST", "/api/tenants/acme/rollback", {"revision": 7}),
        NotFound,
    ),
]  # fmt: skip


@pytest.mark.parametrize(
    ("args", "request_", "kind"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_the_cli_and_the_api_refuse_alike_and_change_nothing(
    both: Both,
    args: tuple[str, ...],
    request_: tuple[str, str, dict[str, Any]],
    kind: type[SaasodooError],
) -> None:
    before = (dict(both.kube.namespaces), {k: list(v) for k, v in both.helm.releases.items()})
    resources = {kind: repr(r.objs) for kind, r in both.resources.items()}

    code, stderr = _cli(*args)
    method, path, body = request_
    res = both.api.call(method, path, json=body)
    answer = res.get_json()

    assert (code, res.status_code) == (kind.exit_code, kind.http_status), (stderr, answer)
    assert answer["message"] in stderr, (stderr, answer)
    if kind is InvalidInput:
        assert answer["fields"], answer
        for f in answer["fields"]:
            assert f"{f['field']}: {f['message']}" in stderr
    # Nothing changed, nothing written.
    assert (both.kube.namespaces, both.helm.releases) == before
    assert {kind: repr(r.objs) for kind, r in both.resources.items()} == resources


def test_a_rollback_across_an_odoo_upgrade_is_refused_at_once_with_one_rule(
    both: Both,
) -> None:
    """The operator records each revision's Odoo series in ``status.releases`` (read from
    the revision's values in Helm's storage): the API and the CLI refuse a rollback to a
    revision of another series before any request is written (422 / exit code 2, naming
    ``revision``), with the words of the operator's own check (``Tenants.check_rollback``)."""
    code, stderr = _cli("tenant", "rollback", "acme")
    assert code == InvalidInput.exit_code and "19.0" in stderr and "18.0" in stderr, stderr
    res = both.api.call("POST", "/api/tenants/acme/rollback", json={})
    answer = res.get_json()
    assert res.status_code == 422, answer
    (field,) = answer["fields"]
    assert field["field"] == "revision", answer
    assert (
        "revision 1 runs Odoo 18.0; the tenant's database (its PostgreSQL data) is of Odoo 19.0"
        in field["message"]
        and "an older Odoo cannot run on a newer" in field["message"]
    )
    assert not both.resources["OdooTenantRollback"].objs  # nothing written
    with pytest.raises(InvalidInput) as refused:
        asyncio.run(both.tenants.check_rollback("acme", 1))
    assert refused.value.message == answer["message"] and refused.value.message in stderr
    assert refused.value.fields[0].message == field["message"]


def test_a_history_recorded_before_the_series_leaves_the_refusal_to_the_operator(
    both: Both,
) -> None:
    """Entries of ``status.releases`` written by an earlier operator carry no series: the
    request is written and the operator refuses it when it runs it (``InvalidSpec``,
    through ``Tenants.check_rollback``) before helm runs; its next read of the history
    records the series."""
    for entry in both.resources["OdooTenant"].objs["acme"]["status"]["releases"]:
        del entry["odooSeries"]
    res = both.api.call("POST", "/api/tenants/acme/rollback", json={})
    assert res.status_code == 202, res.get_json()
    assert res.get_json()["operation"]["spec"] == {"revision": 1}
    with pytest.raises(InvalidInput):
        asyncio.run(both.tenants.check_rollback("acme", 1))
