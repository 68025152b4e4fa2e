"""The OdooTenant CRD on a real API server: what it accepts, defaults and refuses (with a
message naming the field), status through the subresource only, printer columns, and
``kubectl wait --for=condition=Ready`` never returning on a previous generation's Ready.

Everything goes through the pinned kubectl, as a user would (``kubectl apply`` validates
strictly by default). The CRD stays installed (applied server-side, idempotent); the
test's namespace and objects are removed.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

from saasodoo.core import conditions as c
from saasodoo.core import crd
from saasodoo.core.spec import TenantSpec
from tests.support import ROOT, Cluster

pytestmark = pytest.mark.cluster

MANIFEST = ROOT / "saasodoo" / "crds" / f"{crd.CRD_NAME}.yaml"
NAMESPACE = "saasodoo-crd-test"
NOW = datetime(2026, 12, 5, 10, 0, 0, tzinfo=UTC)


def kubectl(
    kube: Cluster, *args: str, input_: str | None = None, check: bool = True
) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(
        [str(kube.tools.kubectl), *args],
        env=kube.env(),
        input=input_,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    if check and proc.returncode != 0:
        raise AssertionError(f"kubectl {' '.join(args)} failed ({proc.returncode}):\n{proc.stderr}")
    return proc


def resource(name: str, spec: dict[str, Any]) -> str:
    return json.dumps(
        {
            "apiVersion": crd.API_VERSION,
            "kind": crd.KIND,
            "metadata": {"name": name, "namespace": NAMESPACE},
            "spec": spec,
        }
    )


def apply(kube: Cluster, name: str, spec: dict[str, Any], check: bool = True) -> str:
    proc = kubectl(kube, "apply", "-f", "-", input_=resource(name, spec), check=check)
    return proc.stdout + proc.stderr


def get(kube: Cluster, name: str) -> dict[str, Any]:
    out = kubectl(kube, "get", f"{crd.PLURAL}.{crd.GROUP}", name, "-n", NAMESPACE, "-o", "json")
    obj: dict[str, Any] = json.loads(out.stdout)
    return obj


def exists(kube: Cluster, name: str) -> bool:
    proc = kubectl(kube, "get", crd.SHORT_NAME, name, "-n", NAMESPACE, check=False)
    return proc.returncode == 0


def write_status(kube: Cluster, name: str, status: dict[str, Any]) -> None:
    kubectl(
        kube, "patch", crd.SHORT_NAME, name, "-n", NAMESPACE, "--subresource=status",
        "--type=merge", "-p", json.dumps({"status": status}),
    )  # fmt: skip


def delete(kube: Cluster, name: str) -> None:
    kubectl(kube, "delete", crd.SHORT_NAME, name, "-n", NAMESPACE, "--ignore-not-found", "--wait")


def crd_namespace(kube: Cluster, namespace: str) -> None:
    """The CRD applied (server-side, so a second run or another version is just an update)
    and Established, and ``namespace`` holding no OdooTenant."""
    kubectl(
        kube, "apply", "--server-side", "--force-conflicts", "--field-manager=saasodoo-tests",
        "-f", str(MANIFEST),
    )  # fmt: skip
    kubectl(kube, "wait", "--for=condition=Established", f"crd/{crd.CRD_NAME}", "--timeout=60s")
    if kubectl(kube, "get", "namespace", namespace, check=False).returncode == 0:
        kubectl(kube, "delete", crd.SHORT_NAME, "--all", "-n", namespace, "--wait")
    else:
        kubectl(kube, "create", "namespace", namespace)


def drop_namespace(kube: Cluster, namespace: str) -> None:
    kubectl(kube, "delete", crd.SHORT_NAME, "--all", "-n", namespace, "--wait")
    kubectl(kube, "delete", "namespace", namespace, "--wait", "--timeout=120s")


@pytest.fixture(scope="module")
def crd_kube(kube: Cluster) -> Iterator[Cluster]:
    """The CRD, and an empty namespace for the test's objects."""
    crd_namespace(kube, NAMESPACE)
    yield kube
    drop_namespace(kube, NAMESPACE)


def test_crd_is_established_as_generated(crd_kube: Cluster) -> None:
    served = json.loads(kubectl(crd_kube, "get", "crd", crd.CRD_NAME, "-o", "json").stdout)
    conditions = {x["type"]: x["status"] for x in served["status"]["conditions"]}
    assert conditions["Established"] == "True"
    assert conditions["NamesAccepted"] == "True"
    assert served["status"]["acceptedNames"]["shortNames"] == ["ot"]
    assert served["status"]["acceptedNames"]["categories"] == ["saasodoo"]
    # The API server kept the schema as generated (nothing dropped as non-structural).
    (version,) = served["spec"]["versions"]
    (generated,) = crd.crd_manifest()["spec"]["versions"]
    assert version["schema"] == generated["schema"]
    assert version["additionalPrinterColumns"] == generated["additionalPrinterColumns"]


def test_a_good_tenant_is_accepted_and_defaulted(crd_kube: Cluster) -> None:
    apply(crd_kube, "acme-defaults", {"adminEmail": "boss@acme.example"})
    try:
        obj = get(crd_kube, "acme-defaults")
        # The API server's defaults are TenantSpec's (one source).
        expected = crd.from_tenant_spec(
            TenantSpec(id="acme-defaults", admin_email="boss@acme.example"),
            suspended=False,
            owner=None,
        )
        assert obj["spec"] == expected
        assert obj["metadata"]["generation"] == 1
        assert crd.to_tenant_spec("acme-defaults", obj["spec"]).plan == "starter"
        # Also through the category: `kubectl get saasodoo`.
        listed = kubectl(crd_kube, "get", "saasodoo", "-n", NAMESPACE, "-o", "name").stdout
        assert "odootenant.saasodoo.dev/acme-defaults" in listed
    finally:
        delete(crd_kube, "acme-defaults")


GOOD = {"adminEmail": "boss@acme.example"}


@pytest.mark.parametrize(
    ("name", "spec", "field", "words"),
    [
        ("Bad_Id", GOOD, "metadata.name", "the tenant id must be a DNS label"),
        ("ab", GOOD, "metadata.name", "the tenant id must be 3 to 30 characters long"),
        ("a" * 31, GOOD, "metadata.name", "3 to 30 characters"),
        ("9abc", GOOD, "metadata.name", "starts with a letter"),
        ("ab--cd", GOOD, "metadata.name", "positions 3-4"),
        ("a.b.cd", GOOD, "metadata.name", "DNS label"),
        ("acme-bad", {**GOOD, "plann": "pro"}, "spec.plann", "unknown field"),
        ("acme-bad", {**GOOD, "odooVersion": "16.0"}, "spec.odooVersion", "Unsupported value"),
        ("acme-bad", {"plan": "pro"}, "spec.adminEmail", "Required value"),
        ("acme-bad", {**GOOD, "suspended": "maybe"}, "spec.suspended", "boolean"),
        ("acme-bad", {**GOOD, "customDomains": "x.example"}, "spec.customDomains", "array"),
        ("acme-bad", {**GOOD, "plan": ""}, "spec.plan", "at least 1"),
    ],
)
def test_the_api_server_refuses_naming_the_field(
    crd_kube: Cluster, name: str, spec: dict[str, Any], field: str, words: str
) -> None:
    out = apply(crd_kube, name, spec, check=False)
    assert field in out and words in out, out
    assert not exists(crd_kube, name)


def test_reserved_ids_pass_the_api_server(crd_kube: Cluster) -> None:
    """Reserved ids are saasodoo's rule (the operator refuses them as InvalidSpec): the
    list may change, so the CRD does not carry it."""
    apply(crd_kube, "www", GOOD)
    delete(crd_kube, "www")


@pytest.mark.parametrize(
    ("new", "words"),
    [
        ("17.0", ["18.0 to 17.0", "cannot be downgraded"]),
        ("19.0", ["18.0 to 19.0", "upgrade service", "OpenUpgrade", "import it into a new tenant"]),
    ],
)
def test_the_odoo_series_cannot_change(crd_kube: Cluster, new: str, words: list[str]) -> None:
    apply(crd_kube, "acme-series", {**GOOD, "odooVersion": "18.0"})
    try:
        out = apply(crd_kube, "acme-series", {**GOOD, "odooVersion": new}, check=False)
        assert "spec.odooVersion" in out, out
        for word in words:
            assert word in out, out
        assert get(crd_kube, "acme-series")["spec"]["odooVersion"] == "18.0"
        # Dropping the field defaults it to 18.0 again: no change, accepted.
        apply(crd_kube, "acme-series", {**GOOD, "plan": "pro"})
        obj = get(crd_kube, "acme-series")
        assert (obj["spec"]["odooVersion"], obj["spec"]["plan"]) == ("18.0", "pro")
    finally:
        delete(crd_kube, "acme-series")


def test_status_only_through_the_subresource(crd_kube: Cluster) -> None:
    apply(crd_kube, "acme-status", GOOD)
    try:
        status = c.next_status(
            {},
            c.ReconcileReport(
                generation=1, outcome="installed", operation="install", revision=1,
                chart_version="0.9.0", digest="abc", url="https://acme-status.example",
                started_at=NOW, reconcile_requested_at="now", workloads_ready=True,
                backup=c.BackupReport(name="acme-status-1.zip", succeeded=True, time=NOW),
            ),
            NOW,
        )  # fmt: skip
        write_status(crd_kube, "acme-status", status)
        obj = get(crd_kube, "acme-status")
        # Every field the status builder writes is declared: nothing pruned.
        assert obj["status"] == status
        assert obj["metadata"]["generation"] == 1  # a status write is no spec change
        # A spec patch carrying status changes the spec only.
        kubectl(
            crd_kube, "patch", crd.SHORT_NAME, "acme-status", "-n", NAMESPACE, "--type=merge",
            "-p", json.dumps({"spec": {"plan": "pro"}, "status": {"url": "https://evil.example"}}),
        )  # fmt: skip
        obj = get(crd_kube, "acme-status")
        assert obj["spec"]["plan"] == "pro"
        assert obj["metadata"]["generation"] == 2
        assert obj["status"] == status
        # ... and a status write carrying spec changes the status only.
        kubectl(
            crd_kube, "patch", crd.SHORT_NAME, "acme-status", "-n", NAMESPACE,
            "--subresource=status", "--type=merge",
            "-p", json.dumps({"spec": {"plan": "enterprise"}, "status": {"url": "https://x.example"}}),
        )  # fmt: skip
        obj = get(crd_kube, "acme-status")
        assert (obj["spec"]["plan"], obj["status"]["url"]) == ("pro", "https://x.example")
        assert obj["metadata"]["generation"] == 2
        # An undeclared status field would be pruned (kubectl patch warns): why the schema
        # declares every field the operator writes.
        proc = kubectl(
            crd_kube, "patch", crd.SHORT_NAME, "acme-status", "-n", NAMESPACE,
            "--subresource=status", "--type=merge", "-p", '{"status": {"phase": "ready"}}',
        )  # fmt: skip
        assert 'unknown field "status.phase"' in proc.stderr, proc.stderr
        assert "phase" not in get(crd_kube, "acme-status")["status"]
    finally:
        delete(crd_kube, "acme-status")


def test_printer_columns(crd_kube: Cluster) -> None:
    apply(crd_kube, "acme-cols", {**GOOD, "plan": "pro", "odooVersion": "17.0"})
    try:
        status = c.next_status(
            {},
            c.ReconcileReport(generation=1, outcome="upgraded", operation="upgrade", revision=2,
                              chart_version="0.9.0", url="https://acme-cols.example"),
            NOW,
        )  # fmt: skip
        write_status(crd_kube, "acme-cols", status)
        table = kubectl(crd_kube, "get", "ot", "acme-cols", "-n", NAMESPACE).stdout.splitlines()
        assert table[0].split() == ["NAME", "PLAN", "VERSION", "READY", "URL", "AGE"]
        assert table[1].split()[:5] == [
            "acme-cols", "pro", "17.0", "True", "https://acme-cols.example",
        ]  # fmt: skip
        wide = kubectl(crd_kube, "get", "ot", "acme-cols", "-n", NAMESPACE, "-o", "wide").stdout
        header, row = wide.splitlines()
        assert header.split() == ["NAME", "PLAN", "VERSION", "READY", "STATUS", "URL", "AGE",
                                  "REVISION", "RECONCILING", "STALLED", "OBSERVED"]  # fmt: skip
        assert "Helm upgrade succeeded (revision 2, chart 0.9.0)" in row
        # Revision 2, Reconciling and Stalled empty (absent conditions), generation 1 observed.
        assert row.split()[-2:] == ["2", "1"], row
    finally:
        delete(crd_kube, "acme-cols")


def wait_ready(kube: Cluster, name: str) -> subprocess.CompletedProcess[str]:
    return kubectl(
        kube, "wait", "--for=condition=Ready", f"odootenant/{name}", "-n", NAMESPACE,
        "--timeout=5s", check=False,
    )  # fmt: skip


def test_kubectl_wait_never_returns_on_a_previous_generations_ready(crd_kube: Cluster) -> None:
    apply(crd_kube, "acme-wait", GOOD)
    try:
        ready = c.ReconcileReport(
            generation=1, outcome="installed", operation="install", revision=1
        )
        write_status(crd_kube, "acme-wait", c.next_status({}, ready, NOW))
        assert wait_ready(crd_kube, "acme-wait").returncode == 0  # Ready for generation 1
        obj = get(crd_kube, "acme-wait")
        assert c.ready_for(obj) and c.kstatus(obj) == "Current"

        apply(crd_kube, "acme-wait", {**GOOD, "plan": "pro"})  # generation 2
        obj = get(crd_kube, "acme-wait")
        assert obj["metadata"]["generation"] == 2
        assert c.get_condition(obj["status"]["conditions"], "Ready")["status"] == "True"  # type: ignore[index]
        proc = wait_ready(crd_kube, "acme-wait")
        assert proc.returncode != 0, "kubectl wait returned on generation 1's Ready"
        assert "timed out" in proc.stderr, proc.stderr
        assert not c.ready_for(obj) and c.kstatus(obj) == "InProgress"

        # The operator reconciles generation 2: now it returns.
        upgraded = c.ReconcileReport(
            generation=2, outcome="upgraded", operation="upgrade", revision=2
        )
        write_status(crd_kube, "acme-wait", c.next_status(obj["status"], upgraded, NOW))
        assert wait_ready(crd_kube, "acme-wait").returncode == 0
        obj = get(crd_kube, "acme-wait")
        assert c.ready_for(obj) and c.kstatus(obj) == "Current"
    finally:
        delete(crd_kube, "acme-wait")
