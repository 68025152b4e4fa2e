"""Staging copies on a real API server: `saasodoo tenant copy` writes the copy's OdooTenant
(spec.copyOf, label saasodoo.dev/copy-of, the source's admin, series and overrides, its own
plan and expiry) and refuses bad requests naming the field, writing nothing; the API server
itself refuses a copy of itself and any change of copyOf, and an expiry on a tenant that is
no copy. No operator runs here: the objects are only written and read."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from click.testing import CliRunner, Result

from saasodoo.adapters.resources import TenantResources
from saasodoo.cli import cli
from saasodoo.context import Context
from saasodoo.core import copies, crd
from saasodoo.core.conditions import get_condition
from saasodoo.core.crd import COPY_OF_LABEL
from saasodoo.operator.controller import TenantController
from saasodoo.settings import Settings
from saasodoo.tenants import Tenants
from tests.cluster.test_crd import crd_namespace, drop_namespace, kubectl
from tests.support import Cluster

pytestmark = pytest.mark.cluster

NAMESPACE = "saasodoo-copy-test"
SOURCE = {
    "adminEmail": "boss@acme.example",
    "plan": "starter",
    "odooVersion": "18.0",
    "customDomains": ["erp.acme.example"],
    "overrides": {"odoo": {"config": {"workers": 3}}},
    "owner": "user-1",
}


def resource(name: str, spec: dict[str, Any], labels: dict[str, str] | None = None) -> str:
    meta: dict[str, Any] = {"name": name, "namespace": NAMESPACE}
    if labels:
        meta["labels"] = labels
    return json.dumps({"apiVersion": crd.API_VERSION, "kind": crd.KIND, "metadata": meta,
                       "spec": spec})  # fmt: skip


def apply(kube: Cluster, name: str, spec: dict[str, Any], check: bool = True) -> str:
    proc = kubectl(kube, "apply", "-f", "-", input_=resource(name, spec), check=check)
    return proc.stdout + proc.stderr


def get(kube: Cluster, name: str) -> dict[str, Any] | None:
    proc = kubectl(kube, "get", crd.SHORT_NAME, name, "-n", NAMESPACE, "-o", "json", check=False)
    return json.loads(proc.stdout) if proc.returncode == 0 else None


@pytest.fixture(scope="module")
def copy_kube(kube: Cluster) -> Iterator[Cluster]:
    """The CRD, an empty platform namespace, and the source `acme-src`."""
    crd_namespace(kube, NAMESPACE)
    apply(kube, "acme-src", SOURCE)
    yield kube
    drop_namespace(kube, NAMESPACE)


@pytest.fixture
def run(copy_kube: Cluster, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    monkeypatch.setenv("SAASODOO_KUBECONFIG", str(copy_kube.kubeconfig))
    monkeypatch.setenv("SAASODOO_HELM_BINARY", str(copy_kube.tools.helm(4)))
    monkeypatch.setenv("SAASODOO_BASE_DOMAIN", "odoo.test")
    monkeypatch.setenv("SAASODOO_SYSTEM_NAMESPACE", NAMESPACE)
    monkeypatch.setenv("SAASODOO_OPERATOR", "1")
    monkeypatch.delenv("SAASODOO_NODE_POOL", raising=False)
    runner = CliRunner()

    def invoke(*args: str) -> Result:
        return runner.invoke(cli, list(args), catch_exceptions=False)

    return invoke


def test_tenant_copy_writes_the_copy_s_odootenant(run, copy_kube: Cluster) -> None:  # type: ignore[no-untyped-def]
    start = datetime.now(UTC).replace(microsecond=0)
    result = run("tenant", "copy", "acme-src", "--to", "acme-stg", "--plan", "standard",
                 "--expires-in", "7d", "--no-wait", "-o", "json")  # fmt: skip
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["copy_of"] == "acme-src"
    obj = get(copy_kube, "acme-stg")
    assert obj is not None
    # Marked a copy of its source, and labelled with the owner it keeps (the API lists by it).
    assert obj["metadata"]["labels"] == {"saasodoo.dev/copy-of": "acme-src",
                                         "saasodoo.dev/owner": "user-1"}  # fmt: skip
    spec = obj["spec"]
    expires = datetime.fromisoformat(spec.pop("expiresAt"))
    assert start + timedelta(days=7) <= expires <= datetime.now(UTC) + timedelta(days=7)
    # What the core computes (its content: tests/unit/test_copies.py), as the server keeps it.
    assert spec == copies.copy_spec("acme-src", SOURCE, "acme-stg", plan="standard")
    assert (spec["copyOf"], spec["customDomains"]) == ({"tenant": "acme-src"}, [])
    listed = kubectl(copy_kube, "get", crd.SHORT_NAME, "-n", NAMESPACE, "-l",
                     "saasodoo.dev/copy-of=acme-src", "-o", "name").stdout.split()  # fmt: skip
    assert listed == ["odootenant.saasodoo.dev/acme-stg"]
    # A named backup, no expiry, the source's plan.
    named = run("tenant", "copy", "acme-src", "--to", "acme-stg2", "--backup",
                "20261206T010203Z-scheduled.zip", "--no-wait")  # fmt: skip
    assert named.exit_code == 0, named.output
    spec2 = (get(copy_kube, "acme-stg2") or {})["spec"]
    assert spec2["copyOf"] == {"tenant": "acme-src", "backup": "20261206T010203Z-scheduled.zip"}
    assert (spec2["plan"], "expiresAt" in spec2) == ("starter", False)


@pytest.mark.parametrize(
    ("args", "code", "text"),
    [
        (("nosuch", "--to", "acme-new"), 3, "source tenant 'nosuch' not found"),
        (("acme-src", "--to", "acme-src"), 2, "to: a tenant cannot be a copy of itself"),
        (("acme-src", "--to", "acme-new", "--expires-in", "0d"), 2, "expires_in: must be longer"),
        (("acme-src", "--to", "acme-new", "--expires-in", "soon"), 2, "expires_in: 'soon' is not"),
        (("acme-src", "--to", "acme-new", "--backup", "../b/x.zip"), 2, "spec.copyOf.backup"),
        (("acme-src", "--to", "acme-new", "--plan", "gold"), 2, "plan"),
        (("acme-src", "--to", "www"), 2, "'www' is reserved"),
    ],
)
def test_refusals_name_the_field_and_write_nothing(  # type: ignore[no-untyped-def]
    run, copy_kube: Cluster, args: tuple[str, ...], code: int, text: str
) -> None:
    result = run("tenant", "copy", *args, "--no-wait")
    assert result.exit_code == code, result.output
    assert text in result.stderr and "Traceback" not in result.output
    assert len(result.stderr.strip().splitlines()) == 1
    assert get(copy_kube, "acme-new") is None


def test_a_taken_id_and_no_operator_are_refused(run, copy_kube: Cluster, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    apply(copy_kube, "acme-taken", {"adminEmail": "x@y.example"})
    taken = run("tenant", "copy", "acme-src", "--to", "acme-taken", "--no-wait")
    assert taken.exit_code == 4, taken.output
    assert "tenant 'acme-taken' already exists" in taken.stderr
    assert (get(copy_kube, "acme-taken") or {})["spec"].get("copyOf") is None
    monkeypatch.delenv("SAASODOO_OPERATOR")
    local = run("tenant", "copy", "acme-src", "--to", "acme-new", "--no-wait")
    assert local.exit_code == 2, local.output
    assert "staging copies are made by the operator: set SAASODOO_OPERATOR=1" in local.stderr
    assert get(copy_kube, "acme-new") is None


@pytest.mark.parametrize(
    ("name", "spec", "field", "words"),
    [
        ("acme-self", {**SOURCE, "copyOf": {"tenant": "acme-self"}}, "spec.copyOf.tenant",
         "a tenant cannot be a copy of itself"),
        ("acme-bad", {**SOURCE, "expiresAt": "2030-01-01T00:00:00Z"}, "spec.expiresAt",
         "only for a staging copy"),
        ("acme-bad", {**SOURCE, "copyOf": {"tenant": "Acme"}}, "spec.copyOf.tenant",
         "should match"),
        ("acme-bad", {**SOURCE, "copyOf": {"tenant": "acme-src", "backup": "x/../y.zip"}},
         "spec.copyOf.backup", "should match"),
    ],
)  # fmt: skip
def test_the_api_server_refuses_bad_copies(
    copy_kube: Cluster, name: str, spec: dict[str, Any], field: str, words: str
) -> None:
    out = apply(copy_kube, name, spec, check=False)
    assert field in out and words in out, out
    assert get(copy_kube, name) is None


def test_copy_of_is_fixed_and_expiry_may_move(copy_kube: Cluster) -> None:
    copy_spec = {**SOURCE, "copyOf": {"tenant": "acme-src"}, "expiresAt": "2030-01-01T00:00:00Z"}
    apply(copy_kube, "acme-fixed", copy_spec)
    for changed in (
        {**copy_spec, "copyOf": {"tenant": "other-src"}},
        {**copy_spec, "copyOf": {"tenant": "acme-src", "backup": "20261206T010203Z-final.zip"}},
        {k: v for k, v in copy_spec.items() if k not in ("copyOf", "expiresAt")},
    ):
        out = apply(copy_kube, "acme-fixed", changed, check=False)
        assert "copyOf is set when the tenant is created" in out, out
    # A tenant that is no copy cannot become one.
    out = apply(copy_kube, "acme-src", {**SOURCE, "copyOf": {"tenant": "acme-fixed"}}, check=False)
    assert "spec.copyOf" in out and "copyOf is set when the tenant is created" in out, out
    # The expiry moves.
    apply(copy_kube, "acme-fixed", {**copy_spec, "expiresAt": "2031-01-01T00:00:00Z"})
    obj = get(copy_kube, "acme-fixed") or {}
    assert obj["spec"]["expiresAt"] == "2031-01-01T00:00:00Z"
    assert obj["spec"]["copyOf"] == {"tenant": "acme-src"}


def test_the_operator_waits_for_a_source_not_installed_rather_than_install_an_empty_tenant(
    copy_kube: Cluster,
) -> None:
    """The copy executor checks the source first: a copy of a tenant whose OdooTenant exists
    but is not installed yet waits for it (Reconciling, CopyWaitingForSource), and nothing is
    installed (the executor's steps: tests/cluster/test_copy_executor.py)."""
    settings = Settings(kubeconfig=copy_kube.kubeconfig, helm_binary=str(copy_kube.tools.helm(4)),
                        base_domain="odoo.test", system_namespace=NAMESPACE)  # fmt: skip
    tenants = Tenants(Context(settings))
    ctl = TenantController(tenants.ctx, TenantResources(tenants.ctx.kube, NAMESPACE))
    ctl.resources.create({"metadata": {"name": "acme-early", "labels": {COPY_OF_LABEL: "acme-src"}},
                          "spec": {**SOURCE, "copyOf": {"tenant": "acme-src"},
                                   "finalBackup": False}})  # fmt: skip
    try:
        asyncio.run(ctl.reconcile("acme-early"))
        status = (ctl.resources.get("acme-early") or {}).get("status") or {}
        waiting = get_condition(status.get("conditions") or [], "Reconciling") or {}
        assert (waiting.get("status"), waiting.get("reason")) == ("True", "CopyWaitingForSource")
        assert "waiting for the source acme-src to be installed" in waiting["message"], status
        assert tenants.ctx.kube.read_namespace("tenant-acme-early") is None
    finally:
        ctl.resources.delete("acme-early")
        for _ in range(30):
            if ctl.resources.get("acme-early") is None:
                break
            asyncio.run(ctl.reconcile("acme-early"))
        assert ctl.resources.get("acme-early") is None
