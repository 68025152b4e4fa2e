"""The one-shot operations' request CRDs (OdooTenantBackup, OdooTenantRestore,
OdooTenantVerify, OdooTenantRollback) on a real API server: created with ``kubectl create``
and a generated name, refused with a message naming the field (a bad tenant name, an
unknown field, revision 0), the spec immutable, status through the subresource only, and
the printer columns of ``kubectl get otb,otr,otv,otrb``.

Through the pinned kubectl, as a user would. The CRDs stay installed (applied server-side,
idempotent); the test's namespace is removed.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from typing import Any

import pytest

from saasodoo.core import operations as ops
from tests.support import ROOT, Cluster

pytestmark = pytest.mark.cluster

NAMESPACE = "saasodoo-otcrd-test"


def kubectl(
    kube: Cluster, *args: str, input_: str | None = None, check: bool = True
) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(
        [str(kube.tools.kubectl), *args], env=kube.env(), input=input_, capture_output=True,
        text=True, check=False, timeout=120,
    )  # fmt: skip
    if check and proc.returncode != 0:
        raise AssertionError(f"kubectl {' '.join(args)} failed ({proc.returncode}):\n{proc.stderr}")
    return proc


def create(kube: Cluster, kind: str, spec: dict[str, Any], check: bool = True) -> str:
    """``kubectl create -f -`` of a request named from ``x-``; its name (or the error)."""
    body = {"apiVersion": "saasodoo.dev/v1alpha1", "kind": kind,
            "metadata": {"generateName": "x-", "namespace": NAMESPACE}, "spec": spec}  # fmt: skip
    proc = kubectl(kube, "create", "-f", "-", "-o", "name", input_=json.dumps(body), check=check)
    return proc.stdout.strip().rsplit("/", 1)[-1] if proc.returncode == 0 else proc.stderr


@pytest.fixture(scope="module")
def crds(kube: Cluster) -> Iterator[Cluster]:
    files = [str(ROOT / "saasodoo" / "crds" / f"{op.crd_name}.yaml") for op in ops.KINDS.values()]
    kubectl(kube, "apply", "--server-side", "--force-conflicts",
            "--field-manager=saasodoo-tests", *(a for f in files for a in ("-f", f)))  # fmt: skip
    for op in ops.KINDS.values():
        kubectl(kube, "wait", "--for=condition=Established", f"crd/{op.crd_name}",
                "--timeout=60s")  # fmt: skip
    if kubectl(kube, "get", "namespace", NAMESPACE, check=False).returncode != 0:
        kubectl(kube, "create", "namespace", NAMESPACE)
    yield kube
    kubectl(kube, "delete", "namespace", NAMESPACE, "--wait=false")


def test_a_request_is_created_with_a_generated_name_and_its_defaults(crds: Cluster) -> None:
    name = create(crds, "OdooTenantRestore", {"tenant": "acme", "backup": "acme-b.zip"})
    assert name.startswith("x-")
    obj = json.loads(kubectl(crds, "get", "otr", name, "-n", NAMESPACE, "-o", "json").stdout)
    assert obj["spec"] == {"tenant": "acme", "backup": "acme-b.zip", "dropPrevious": False,
                           "discardOnFailure": False}  # fmt: skip
    assert "status" not in obj


@pytest.mark.parametrize(
    ("kind", "spec", "field"),
    [
        ("OdooTenantBackup", {"tenant": "Acme_1"}, "spec.tenant"),
        ("OdooTenantVerify", {"tenant": "acme", "bakup": "x.zip"}, "bakup"),
        ("OdooTenantRollback", {"tenant": "acme", "revision": 0}, "spec.revision"),
        ("OdooTenantRestore", {}, "spec.tenant"),
    ],
)
def test_the_api_server_refuses_a_bad_request_naming_the_field(
    crds: Cluster, kind: str, spec: dict[str, Any], field: str
) -> None:
    error = create(crds, kind, spec, check=False)
    assert field in error, error


def test_a_requests_spec_cannot_change_and_status_is_a_subresource(crds: Cluster) -> None:
    name = create(crds, "OdooTenantRollback", {"tenant": "acme", "revision": 2})
    proc = kubectl(crds, "patch", "otrb", name, "-n", NAMESPACE, "--type=merge",
                   "-p", '{"spec":{"revision":1}}', check=False)  # fmt: skip
    assert proc.returncode != 0
    assert "a request's spec cannot change: create a new request" in proc.stderr, proc.stderr
    # A write to the object ignores .status; the subresource takes it.
    kubectl(crds, "patch", "otrb", name, "-n", NAMESPACE, "--type=merge",
            "-p", '{"status":{"phase":"Failed"}}')  # fmt: skip
    got = json.loads(kubectl(crds, "get", "otrb", name, "-n", NAMESPACE, "-o", "json").stdout)
    assert "status" not in got
    status = {"phase": "Succeeded", "revision": 3, "message": "rolled back"}
    kubectl(crds, "patch", "otrb", name, "-n", NAMESPACE, "--subresource=status",
            "--type=merge", "-p", json.dumps({"status": status}))  # fmt: skip
    bad = kubectl(crds, "patch", "otrb", name, "-n", NAMESPACE, "--subresource=status",
                  "--type=merge", "-p", '{"status":{"phase":"Done"}}', check=False)  # fmt: skip
    assert bad.returncode != 0 and "status.phase" in bad.stderr, bad.stderr
    table = kubectl(crds, "get", "otb,otr,otv,otrb", "-n", NAMESPACE, "-o", "wide").stdout
    header = table.splitlines()[0].split()
    assert header[:3] == ["NAME", "TENANT", "PHASE"], table
    row = next(line.split() for line in table.splitlines() if name in line)
    assert row[1:4] == ["acme", "Succeeded", "3"], table
    listed = kubectl(crds, "get", "saasodoo", "-n", NAMESPACE, "-o", "name").stdout
    assert f"odootenantrollback.saasodoo.dev/{name}" in listed
