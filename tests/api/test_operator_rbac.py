"""The API with the operator, as the platform chart's API ServiceAccount (#23 point 4, #24
point 2): the chart's own RBAC for the API (its Role, RoleBinding and ServiceAccount, rendered
by `helm template` and applied), a token of that account from the TokenRequest API, and a
waitress process serving ``saasodoo.app:create_app`` with a kubeconfig of that token alone.
The operator is a host process with the admin kubeconfig (as in development).

One tenant through HTTP: create, a change, a backup, its history, a rollback to the
previous revision, deletion. Every answer is the one the route documents: the API's
checks read only OdooTenants and their requests (and the operator's status on them), so
the cluster never refuses it anything (a refusal would reach the client as a 500 naming
it)."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from tests.api.test_operator_mode import (
    ApiProcess,
    Client,
    accepted_operation,
    follow,
    follow_gone,
    follow_operation,
    free_port,
    sign_up,
)
from tests.operator_process import (
    OperatorProcess,
    delete_tenants,
    operator_env,
    running_operator,
    wait_for,
)
from tests.support import ROOT, Cluster

pytestmark = pytest.mark.cluster

NAMESPACE = "saasodoo-api-rbac"
RELEASE = "rbac"
ACCOUNT = f"{RELEASE}-saasodoo-api"
SHOP = "shop.rbac-a.example"


def chart_api_rbac(kube: Cluster) -> list[dict[str, Any]]:
    """The platform chart's objects for the API's rights, as `helm template` renders them."""
    rendered = subprocess.run(
        [str(kube.tools.helm(4)), "template", RELEASE,
         str(ROOT / "charts" / "saasodoo"), "--namespace", NAMESPACE,
         "--show-only", "templates/rbac.yaml", "--show-only", "templates/serviceaccounts.yaml",
         "--set", "api.ingress.host=saas.example.com",
         "--set", "api.supabase.url=https://project.supabase.co",
         "--set", "api.supabase.existingSecret=saasodoo-supabase",
         "--set", "api.session.existingSecret=saasodoo-session"],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    docs = [d for d in yaml.safe_load_all(rendered) if d]
    mine = [d for d in docs if d["metadata"]["name"] == ACCOUNT]
    assert sorted(d["kind"] for d in mine) == ["Role", "RoleBinding", "ServiceAccount"], mine
    return mine


def account_kubeconfig(kube: Cluster, path: Path) -> Path:
    """A kubeconfig of the API's ServiceAccount alone: a TokenRequest's token, the admin
    kubeconfig's server and CA."""
    token = kube.kubectl("-n", NAMESPACE, "create", "token", ACCOUNT,
                         "--duration=2h").strip()  # fmt: skip
    admin = yaml.safe_load(kube.kubeconfig.read_text())
    cluster = admin["clusters"][0]
    config = {
        "apiVersion": "v1", "kind": "Config",
        "clusters": [cluster],
        "users": [{"name": "api", "user": {"token": token}}],
        "contexts": [{"name": "api", "context": {"cluster": cluster["name"], "user": "api"}}],
        "current-context": "api",
    }  # fmt: skip
    path.write_text(yaml.safe_dump(config))
    return path


@pytest.fixture(scope="module")
def logs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("api-rbac")


@pytest.fixture(scope="module")
def operator(kube: Cluster, logs: Path) -> Iterator[OperatorProcess]:
    # DNS at a port where nothing answers: the custom domain's checks fail fast.
    with running_operator(kube, logs, "api-rbac", system_namespace=NAMESPACE,
                          dns_nameserver="127.0.0.1", dns_port=str(free_port()),
                          dns_timeout="1") as op:  # fmt: skip
        wait_for(lambda: "leads" in op.output(), 60, "the operator to lead", op)
        yield op
        delete_tenants(kube, NAMESPACE)
    kube.kubectl("delete", "namespace", NAMESPACE, "--timeout=120s")


@pytest.fixture(scope="module")
def api(kube: Cluster, operator: OperatorProcess, logs: Path) -> Iterator[ApiProcess]:
    """The API as the chart's API ServiceAccount (local auth: no Supabase needed here)."""
    objects = chart_api_rbac(kube)
    subprocess.run([str(kube.tools.kubectl), "apply", "-f", "-"], env=kube.env(), check=True,
                   input=yaml.safe_dump_all(objects), text=True, capture_output=True)  # fmt: skip
    config = account_kubeconfig(kube, logs / "api-kubeconfig.yaml")
    # The account is what the chart says: not even the tenants' namespaces are readable.
    refused = subprocess.run(
        [str(kube.tools.kubectl), "--kubeconfig", str(config), "auth", "can-i", "get",
         "namespaces"], capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert refused.stdout.strip() == "no", refused.stdout + refused.stderr
    env = {
        **operator_env(kube, system_namespace=NAMESPACE, operator="1"),
        "KUBECONFIG": str(config),
        "SAASODOO_KUBECONFIG": str(config),
        "SAASODOO_API_COOKIE_SECURE": "false",
    }
    port = free_port()
    log = logs / "api.log"
    args = [sys.executable, "-m", "waitress", "--host", "127.0.0.1", f"--port={port}",
            "--threads", "4", "--call", "saasodoo.app:create_app"]  # fmt: skip
    with log.open("wb") as sink:
        proc = subprocess.Popen(args, env=env, stdout=sink, stderr=subprocess.STDOUT,
                                start_new_session=True)  # fmt: skip
    process = ApiProcess(proc, log, "rbac", f"http://127.0.0.1:{port}")

    def healthy() -> bool:
        if proc.poll() is not None:
            raise AssertionError(f"the API exited:\n{process.output()[-3000:]}")
        try:
            return httpx.get(f"{process.url}/api/health", timeout=2).status_code == 200
        except httpx.TransportError:
            return False

    try:
        wait_for(healthy, 60, "the API to answer")
        yield process
    finally:
        process.stop()


def answered(res: httpx.Response, status: int) -> httpx.Response:
    assert res.status_code == status, f"{res.request.method} {res.request.url}: {res.text}"
    return res


def test_the_api_runs_create_backup_rollback_delete_with_the_charts_rights_alone(
    api: ApiProcess, operator: OperatorProcess
) -> None:
    owner: Client = sign_up(api, "owner@rbac.example.com")
    created = answered(owner.call(api, "POST", "/api/tenants",
                                  json={"id": "rbac-a", "admin_email": "admin@rbac.example",
                                        "custom_domains": [SHOP]}), 202)  # fmt: skip
    follow(owner, api, created.headers["Location"], operator)
    # Its custom domain: the states the operator writes, a verification asked of it.
    (pending,) = wait_for(lambda: [d for d in answered(owner.call(
        api, "GET", "/api/tenants/rbac-a/domains"), 200).json()["domains"]
        if d["checked_at"]], 60, "the domain to be checked", operator)  # fmt: skip
    assert pending["state"] == "pending" and pending["record"]["txt_value"], pending
    answered(owner.call(api, "POST", "/api/tenants/rbac-a/domains/verify",
                        json={"domain": SHOP}), 202)  # fmt: skip
    listed = answered(owner.call(api, "GET", "/api/tenants"), 200).json()["tenants"]
    assert [t["id"] for t in listed] == ["rbac-a"]
    # A refused change: the same 422 naming the field, checked without the cluster.
    refused = answered(owner.call(api, "PATCH", "/api/tenants/rbac-a", json={"plan": "gold"}), 422)
    assert [f["field"] for f in refused.json()["fields"]] == ["plan"]
    changed = answered(owner.call(api, "PATCH", "/api/tenants/rbac-a",
                                  json={"plan": "standard"}), 202)  # fmt: skip
    assert follow(owner, api, changed.headers["Location"], operator)["revision"] == 2

    backup = accepted_operation(answered(owner.call(api, "POST", "/api/tenants/rbac-a/backups"),
                                         202), "OdooTenantBackup", "rbac-a")  # fmt: skip
    done = follow_operation(owner, api, f"/api/operations/{backup['name']}", operator)
    assert done["phase"] == "Succeeded", done

    # The history is the operator's record on the OdooTenant (helm's are Secrets).
    revisions = answered(owner.call(api, "GET", "/api/tenants/rbac-a/history"), 200).json()
    assert [r["revision"] for r in revisions["revisions"]] == [1, 2], revisions
    newest = revisions["revisions"][-1]
    assert newest["status"] == "deployed" and newest["description"], newest
    assert newest["chart"].startswith("odoo-tenant-") and newest["updated"], newest
    assert revisions["revisions"][0]["status"] == "superseded", revisions
    missing = answered(owner.call(api, "POST", "/api/tenants/rbac-a/rollback",
                                  json={"revision": 7}), 404)  # fmt: skip
    assert "no revision 7 (known: 1, 2)" in missing.text
    back = accepted_operation(answered(owner.call(api, "POST", "/api/tenants/rbac-a/rollback"),
                                       202), "OdooTenantRollback", "rbac-a")  # fmt: skip
    assert back["spec"] == {"revision": 1}  # "the previous one", named when asked
    rolled = follow_operation(owner, api, f"/api/operations/{back['name']}", operator)
    assert (rolled["phase"], rolled["revision"]) == ("Succeeded", 3), rolled
    assert follow(owner, api, "/api/tenants/rbac-a", operator)["plan"] == "starter"
    wait_for(
        lambda: len(owner.call(api, "GET", "/api/tenants/rbac-a/history").json()["revisions"]) == 3,
        60,
        "the history to show revision 3",
        operator,
    )
    operations = answered(owner.call(api, "GET", "/api/tenants/rbac-a/operations"), 200).json()
    assert [o["name"] for o in operations["operations"]] == [backup["name"], back["name"]]

    gone = answered(owner.call(api, "DELETE", "/api/tenants/rbac-a?final_backup=false"), 202)
    follow_gone(owner, api, gone.headers["Location"], operator)
    assert "refused the request" not in api.output(), api.output()[-3000:]
