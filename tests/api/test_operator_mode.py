"""The API with the operator (``SAASODOO_OPERATOR=1``), as real processes: waitress serving
``saasodoo.app:create_app`` on loopback ports, users in the real GoTrue (``gotrue``), the
operator a ``saasodoo operator run`` process on the simulated cluster, in a system namespace
of these tests' own.

A tenant's create, update, suspend, resume and delete write its OdooTenant and answer 202
with the tenant; its status is read back from the object. A rollback or a backup writes a
request resource (OdooTenantRollback, OdooTenantBackup) and answers 202 with it, followed at
``GET /api/operations/<name>`` while the operator runs it in the tenant's turn. Nothing
lives in an API process's memory, so a second process follows what the first started, and a
process killed right after its 202 loses nothing.
"""

from __future__ import annotations

import json
import re
import signal
import socket
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import jsonschema
import pytest

from saasodoo.api.openapi import document
from scripts.gotrue import GoTrue
from tests.operator_process import (
    OperatorProcess,
    delete_tenants,
    operator_env,
    run_cli,
    running_operator,
    wait_for,
)
from tests.support import Cluster

pytestmark = pytest.mark.cluster

NAMESPACE = "saasodoo-api-op"
#: Seconds a tenant may take to become Ready (or gone) on the simulated cluster.
SETTLE = 180


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class ApiProcess(OperatorProcess):
    """One API process (waitress) in its own process group: ``kill`` is a SIGKILL (a crash,
    a node lost), ``stop`` a SIGTERM."""

    url: str


@pytest.fixture(scope="module")
def logs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("api-operator")


@pytest.fixture(scope="module")
def operator(kube: Cluster, logs: Path) -> Iterator[OperatorProcess]:
    with running_operator(
        kube, logs, "api-op", system_namespace=NAMESPACE, operator_workers="2"
    ) as op:
        wait_for(lambda: "leads" in op.output(), 60, "the operator to lead", op)
        yield op
        delete_tenants(kube, NAMESPACE)
    kube.kubectl("delete", "namespace", NAMESPACE, "--timeout=120s")


@pytest.fixture(scope="module")
def start_api(
    kube: Cluster, gotrue: GoTrue, operator: OperatorProcess, logs: Path
) -> Iterator[Callable[[str], ApiProcess]]:
    """Start an API process named ``name`` (a fresh loopback port); all stopped at the end."""
    started: list[ApiProcess] = []
    env = {
        **operator_env(kube, system_namespace=NAMESPACE, operator="1"),
        **gotrue.api_env(),
        "SAASODOO_API_COOKIE_SECURE": "false",
    }

    def start(name: str) -> ApiProcess:
        port = free_port()
        log = logs / f"api-{name}-{port}.log"
        args = [sys.executable, "-m", "waitress", "--host", "127.0.0.1", f"--port={port}",
                "--threads", "4", "--call", "saasodoo.app:create_app"]  # fmt: skip
        with log.open("wb") as sink:
            proc = subprocess.Popen(
                args, env=env, stdout=sink, stderr=subprocess.STDOUT, start_new_session=True
            )
        api = ApiProcess(proc, log, name, f"http://127.0.0.1:{port}")
        started.append(api)

        def healthy() -> bool:
            if proc.poll() is not None:
                raise AssertionError(f"API process {name} exited:\n{api.output()[-3000:]}")
            try:
                return httpx.get(f"{api.url}/api/health", timeout=2).status_code == 200
            except httpx.TransportError:
                return False

        wait_for(healthy, 60, f"API process {name} to answer")
        return api

    yield start
    for api in started:
        api.stop()


@dataclass
class Client:
    """A signed-in user calling one API process or another (``at``)."""

    token: str
    user_id: str

    def call(self, api: ApiProcess, method: str, path: str, **kwargs: Any) -> httpx.Response:
        headers = {"Authorization": f"Bearer {self.token}"}
        return httpx.request(method, f"{api.url}{path}", headers=headers, timeout=60, **kwargs)


def sign_up(api: ApiProcess, email: str) -> Client:
    res = httpx.post(f"{api.url}/api/auth/register", timeout=30,
                     json={"email": email, "password": "correct-horse-1"})  # fmt: skip
    assert res.status_code == 201, res.text
    body = res.json()
    return Client(body["session"]["access_token"], body["user"]["id"])


def conforms(body: Any, model: str) -> None:
    """``body`` is what the OpenAPI document says of ``model`` (a component schema)."""
    schema = {"$ref": f"#/components/schemas/{model}", "components": document()["components"]}
    jsonschema.Draft202012Validator(schema).validate(body)


def follow(user: Client, api: ApiProcess, location: str, op: OperatorProcess) -> dict[str, Any]:
    """GET the tenant until the operator observed its generation and it is Ready."""

    def settled() -> dict[str, Any] | None:
        res = user.call(api, "GET", location)
        assert res.status_code == 200, res.text
        t: dict[str, Any] = res.json()
        done = t["observed_generation"] == t["generation"] and t["ready"] == "True"
        return t if done else None

    found: dict[str, Any] = wait_for(settled, SETTLE, f"{location} Ready", op)
    return found


def follow_gone(user: Client, api: ApiProcess, location: str, op: OperatorProcess) -> None:
    wait_for(lambda: user.call(api, "GET", location).status_code == 404, SETTLE,
             f"{location} gone", op)  # fmt: skip


def delete(user: Client, api: ApiProcess, tenant_id: str, op: OperatorProcess) -> None:
    """Delete without a final backup (the simulated cluster runs no backup Job) and follow."""
    res = user.call(api, "DELETE", f"/api/tenants/{tenant_id}?final_backup=false")
    assert res.status_code == 202, res.text
    assert res.headers["Location"] == f"/api/tenants/{tenant_id}"
    follow_gone(user, api, res.headers["Location"], op)


def follow_operation(
    user: Client, api: ApiProcess, location: str, op: OperatorProcess
) -> dict[str, Any]:
    """GET the request until its phase is final."""

    def ended() -> dict[str, Any] | None:
        res = user.call(api, "GET", location)
        assert res.status_code == 200, res.text
        found: dict[str, Any] = res.json()
        return found if found["phase"] in ("Succeeded", "Failed") else None

    done: dict[str, Any] = wait_for(ended, SETTLE, f"{location} to end", op)
    conforms(done, "OperationOut")
    return done


def accepted_operation(res: httpx.Response, kind: str, tenant_id: str) -> dict[str, Any]:
    """The 202 of a one-shot operation: its request resource, no job."""
    assert res.status_code == 202, res.text
    body = res.json()
    conforms(body, "OperationAccepted")
    assert "job" not in body
    found: dict[str, Any] = body["operation"]
    assert (found["kind"], found["tenant_id"], found["phase"]) == (kind, tenant_id, "Pending")
    assert found["name"].startswith(f"{tenant_id}-{found['operation']}-")
    assert res.headers["Location"] == body["status_url"] == f"/api/operations/{found['name']}"
    return found


def test_tenant_changes_answer_202_with_the_tenant_and_are_followed_on_it(
    start_api: Callable[[str], ApiProcess], operator: OperatorProcess
) -> None:
    api = start_api("a")
    owner, other = sign_up(api, "owner-a@example.com"), sign_up(api, "other-a@example.com")

    res = owner.call(api, "POST", "/api/tenants",
                     json={"id": "apiop-a", "admin_email": "admin@apiop-a.example"})  # fmt: skip
    assert res.status_code == 202, res.text
    body = res.json()
    conforms(body, "TenantAccepted")
    assert body["status"] == "accepted" and "job" not in body
    assert res.headers["Location"] == body["status_url"] == "/api/tenants/apiop-a"
    tenant = body["tenant"]
    assert (tenant["id"], tenant["plan"], tenant["owner"]) == ("apiop-a", "starter", owner.user_id)
    assert tenant["generation"] == 1 and tenant["observed_generation"] is None
    assert tenant["status"] == "InProgress"  # not yet reconciled: not kstatus' Current

    ready = follow(owner, api, res.headers["Location"], operator)
    conforms(ready, "TenantResourceOut")
    assert ready["status"] == "Current" and ready["revision"] == 1, ready
    assert ready["url"] and ready["admin_email"] == "admin@apiop-a.example"
    assert any(c["type"] == "Ready" for c in ready["conditions"])

    # Another user: 404 like a missing tenant, on every route; not in their list.
    for method, path in (("GET", "/api/tenants/apiop-a"), ("PATCH", "/api/tenants/apiop-a"),
                         ("POST", "/api/tenants/apiop-a/suspend"),
                         ("DELETE", "/api/tenants/apiop-a?final_backup=false")):  # fmt: skip
        kwargs = {"json": {"plan": "standard"}} if method == "PATCH" else {}
        assert other.call(api, method, path, **kwargs).status_code == 404, (method, path)
    assert other.call(api, "GET", "/api/tenants").json() == {"tenants": []}
    mine = owner.call(api, "GET", "/api/tenants").json()
    conforms(mine, "TenantResourceList")
    assert [t["id"] for t in mine["tenants"]] == ["apiop-a"]

    # A refused change is the same 422 naming the field as without the operator, and
    # writes nothing (the generation stays).
    refused = owner.call(api, "PATCH", "/api/tenants/apiop-a", json={"plan": "gold"})
    assert refused.status_code == 422, refused.text
    conforms(refused.json(), "ErrorOut")
    assert [f["field"] for f in refused.json()["fields"]] == ["plan"]
    series = owner.call(api, "PATCH", "/api/tenants/apiop-a", json={"odoo_version": "17.0"})
    assert series.status_code == 422 and "odoo_version" in series.text, series.text
    assert owner.call(api, "GET", "/api/tenants/apiop-a").json()["generation"] == 1
    keep = owner.call(api, "DELETE", "/api/tenants/apiop-a?keep_volumes=true")
    assert keep.status_code == 422 and "keep_volumes" in keep.text, keep.text

    patched = owner.call(api, "PATCH", "/api/tenants/apiop-a", json={"plan": "standard"})
    assert patched.status_code == 202, patched.text
    assert patched.json()["tenant"]["generation"] == 2
    assert patched.json()["tenant"]["plan"] == "standard"
    upgraded = follow(owner, api, patched.headers["Location"], operator)
    assert upgraded["observed_generation"] == 2 and upgraded["revision"] == 2, upgraded

    suspended = owner.call(api, "POST", "/api/tenants/apiop-a/suspend")
    assert suspended.status_code == 202 and suspended.json()["tenant"]["suspended"] is True
    assert follow(owner, api, "/api/tenants/apiop-a", operator)["suspended"] is True
    resumed = owner.call(api, "POST", "/api/tenants/apiop-a/resume")
    assert resumed.status_code == 202 and resumed.json()["tenant"]["suspended"] is False
    assert follow(owner, api, "/api/tenants/apiop-a", operator)["observed_generation"] == 4

    delete(owner, api, "apiop-a", operator)


def test_an_operation_started_through_one_process_is_followed_through_another(
    start_api: Callable[[str], ApiProcess], operator: OperatorProcess, kube: Cluster
) -> None:
    one, two = start_api("one"), start_api("two")
    owner = sign_up(one, "owner-b@example.com")
    res = owner.call(one, "POST", "/api/tenants",
                     json={"id": "apiop-b", "admin_email": "admin@apiop-b.example"})  # fmt: skip
    assert res.status_code == 202, res.text
    ready = follow(owner, two, res.headers["Location"], operator)
    assert ready["owner"] == owner.user_id
    assert [t["id"] for t in owner.call(two, "GET", "/api/tenants").json()["tenants"]] == [
        "apiop-b"
    ]
    # No revision before the first: refused at once, nothing written.
    refused = owner.call(one, "POST", "/api/tenants/apiop-b/rollback")
    assert refused.status_code == 409 and "no previous revision" in refused.text, refused.text
    # A change through the second, followed through the first; the deletion likewise.
    patched = owner.call(two, "PATCH", "/api/tenants/apiop-b", json={"plan": "standard"})
    assert patched.status_code == 202, patched.text
    assert follow(owner, one, patched.headers["Location"], operator)["plan"] == "standard"

    # A rollback: an OdooTenantRollback written through the second process, its request
    # followed through the first. Refusals first: a revision helm does not have, and 0.
    missing = owner.call(two, "POST", "/api/tenants/apiop-b/rollback", json={"revision": 9})
    assert missing.status_code == 404 and "no revision 9" in missing.text, missing.text
    zero = owner.call(two, "POST", "/api/tenants/apiop-b/rollback", json={"revision": 0})
    assert zero.status_code == 422, zero.text
    assert [f["field"] for f in zero.json()["fields"]] == ["revision"]
    asked = accepted_operation(
        owner.call(two, "POST", "/api/tenants/apiop-b/rollback", json={"revision": 1}),
        "OdooTenantRollback", "apiop-b",
    )  # fmt: skip
    assert asked["spec"] == {"revision": 1}
    location = f"/api/operations/{asked['name']}"
    other = sign_up(two, "other-b@example.com")
    for method, path in (("GET", location), ("GET", "/api/tenants/apiop-b/operations"),
                         ("POST", "/api/tenants/apiop-b/rollback"),
                         ("POST", "/api/tenants/apiop-b/backups")):  # fmt: skip
        assert other.call(one, method, path).status_code == 404, (method, path)
    assert owner.call(one, "GET", "/api/operations/No_Such").status_code == 422
    assert owner.call(one, "GET", "/api/operations/apiop-b-backup-zzzzz").status_code == 404
    done = follow_operation(owner, one, location, operator)
    assert (done["phase"], done["revision"], done["reason"]) == ("Succeeded", 3, "Succeeded")
    # The operator rolled back and made revision 1's spec the OdooTenant's: the next
    # reconcile found it in sync (helm history gains the rollback only).
    back = follow(owner, one, "/api/tenants/apiop-b", operator)
    assert (back["plan"], back["revision"]) == ("starter", 3), back
    revisions = json.loads(kube.helm(4, "history", "apiop-b", "-n", "tenant-apiop-b",
                                     "-o", "json").stdout)  # fmt: skip
    assert [r["revision"] for r in revisions] == [1, 2, 3], revisions
    listed = owner.call(one, "GET", "/api/tenants/apiop-b/operations")
    assert listed.status_code == 200, listed.text
    conforms(listed.json(), "OperationList")
    assert [o["name"] for o in listed.json()["operations"]] == [asked["name"]]
    res = owner.call(one, "DELETE", "/api/tenants/apiop-b?final_backup=false")
    assert res.status_code == 202, res.text
    follow_gone(owner, two, res.headers["Location"], operator)


def test_a_process_killed_after_its_202_loses_nothing(
    start_api: Callable[[str], ApiProcess], operator: OperatorProcess, kube: Cluster
) -> None:
    first = start_api("killed")
    owner = sign_up(first, "owner-c@example.com")
    res = owner.call(first, "POST", "/api/tenants",
                     json={"id": "apiop-c", "admin_email": "admin@apiop-c.example"})  # fmt: skip
    assert res.status_code == 202, res.text
    first.kill()
    assert first.proc.returncode == -signal.SIGKILL
    again = start_api("restarted")
    ready = follow(owner, again, res.headers["Location"], operator)
    assert ready["id"] == "apiop-c" and ready["owner"] == owner.user_id
    listed = owner.call(again, "GET", "/api/tenants").json()["tenants"]
    assert [t["id"] for t in listed] == ["apiop-c"]

    # A backup asked through a process killed right after its 202: the request is on the
    # cluster, and the next process follows it to its end.
    asked = accepted_operation(owner.call(again, "POST", "/api/tenants/apiop-c/backups"),
                               "OdooTenantBackup", "apiop-c")  # fmt: skip
    again.kill()
    third = start_api("third")
    location = f"/api/operations/{asked['name']}"
    assert owner.call(third, "GET", location).json()["name"] == asked["name"]
    done = follow_operation(owner, third, location, operator)
    assert done["phase"] == "Succeeded", done  # no container runs here: the Job completes
    operations = owner.call(third, "GET", "/api/tenants/apiop-c/operations").json()
    assert [o["name"] for o in operations["operations"]] == [asked["name"]]

    # The CLI writes the same requests, follows them (progress on stderr) and lists them.
    made = cli_run(kube, "backup", "create", "apiop-c", "-o", "json")
    assert made.returncode == 0, made.stderr + operator.output()[-3000:]
    second = json.loads(made.stdout)
    assert (second["kind"], second["phase"]) == ("OdooTenantBackup", "Succeeded"), second
    assert f"{second['name']}: Succeeded" in made.stderr, made.stderr
    listed = cli_run(kube, "tenant", "operations", "apiop-c", "-o", "json")
    assert [o["name"] for o in json.loads(listed.stdout)] == [asked["name"], second["name"]]
    asked_only = cli_run(kube, "backup", "verify", "apiop-c", "--no-wait", "-o", "json")
    assert asked_only.returncode == 0, asked_only.stderr
    assert json.loads(asked_only.stdout)["phase"] == "Pending"
    missing = cli_run(kube, "tenant", "rollback", "apiop-zz", "2")
    assert missing.returncode == 3 and "apiop-zz" in missing.stderr, missing.stderr
    delete(owner, third, "apiop-c", operator)


def test_a_rollback_to_a_revision_of_another_odoo_series_is_refused_at_once(
    start_api: Callable[[str], ApiProcess], operator: OperatorProcess, kube: Cluster
) -> None:
    """The operator records each revision's Odoo series in ``status.releases`` (from its
    values in Helm's storage record): the API and the CLI refuse a rollback to a revision of
    another series before any request is written (422 / exit code 2, naming ``revision``).
    And ``tenant status`` says the same in both CLI modes (#23 points 4, 5)."""
    api = start_api("series")
    owner = sign_up(api, "owner-s@example.com")
    tid, ns = "apiop-s", "tenant-apiop-s"
    res = owner.call(api, "POST", "/api/tenants",
                     json={"id": tid, "admin_email": f"admin@{tid}.example"})  # fmt: skip
    assert res.status_code == 202, res.text
    follow(owner, api, res.headers["Location"], operator)
    history = owner.call(api, "GET", f"/api/tenants/{tid}/history").json()["revisions"]
    assert [(r["revision"], r["odoo_series"]) for r in history] == [(1, "18.0")], history
    assert history[0]["odoo_image"] == "docker.io/library/odoo:18.0", history
    # An SRE runs Odoo 17.0 by hand: the chart refuses another series than the one its
    # ConfigMap records, so that record is edited first.
    names = kube.kubectl("-n", ns, "get", "configmap", "-o", "name").split()
    (record,) = [n for n in names if n.endswith("-odoo-series")]
    kube.kubectl("-n", ns, "patch", record, "--type", "merge", "-p", '{"data":{"series":"17.0"}}')
    chart = str(Path(__file__).resolve().parents[2] / "charts" / "odoo-tenant")
    kube.helm(4, "upgrade", tid, chart, "-n", ns, "--reuse-values", "--set", "odoo.version=17.0")
    kube.kubectl("-n", NAMESPACE, "annotate", "odootenant", tid, "--overwrite",
                 "saasodoo.dev/reconcile-requested-at=series")  # fmt: skip

    def recorded() -> list[dict[str, Any]] | None:
        found = owner.call(api, "GET", f"/api/tenants/{tid}/history").json()["revisions"]
        return found if len(found) == 2 else None

    history = wait_for(recorded, SETTLE, "the hand revision in the history", operator)
    assert [(r["revision"], r["odoo_series"]) for r in history] == [(1, "18.0"), (2, "17.0")]
    assert history[1]["app_version"] == history[0]["app_version"]  # the chart's: no help
    refused = owner.call(api, "POST", f"/api/tenants/{tid}/rollback", json={"revision": 2})
    assert refused.status_code == 422, refused.text
    (field,) = refused.json()["fields"]
    assert field["field"] == "revision", field
    assert "revision 2 runs Odoo 17.0; the tenant's database (its PostgreSQL data) is of " \
        "Odoo 18.0" in field["message"], field  # fmt: skip
    cli = cli_run(kube, "tenant", "rollback", tid, "2")
    assert cli.returncode == 2 and field["message"] in " ".join(cli.stderr.split()), cli.stderr
    operations = owner.call(api, "GET", f"/api/tenants/{tid}/operations").json()
    assert operations["operations"] == [], operations  # nothing written
    # The hand revision, as the operator reports it and as --local computes it: Drifted.
    shown = json.loads(cli_run(kube, "tenant", "status", tid, "-o", "json").stdout)
    local = json.loads(cli_run(kube, "tenant", "--local", "status", tid, "-o", "json").stdout)
    assert list(local) == list(shown)
    assert (shown["ready"], shown["reason"]) == ("False", "Unmanaged"), shown
    assert (local["ready"], local["reason"], local["revision"]) == ("False", "Unmanaged", 2)
    drifted = [c for c in local["conditions"] if c["type"] == "Drifted"]
    assert drifted and drifted[0]["status"] == "True", local["conditions"]
    table = cli_run(kube, "tenant", "--local", "list").stdout.splitlines()
    assert table[0].split() == cli_run(kube, "tenant", "list").stdout.splitlines()[0].split()
    delete(owner, api, tid, operator)


def cli_run(kube: Cluster, *args: str) -> subprocess.CompletedProcess[str]:
    return run_cli(kube, {"system_namespace": NAMESPACE}, *args)


def csrf_of(page: httpx.Response) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert found, page.text[:2000]
    return found.group(1)


def test_the_web_ui_creates_shows_suspends_and_deletes_through_the_objects(
    start_api: Callable[[str], ApiProcess], operator: OperatorProcess, kube: Cluster
) -> None:
    api = start_api("web")
    sign_up(api, "owner-d@example.com")
    with httpx.Client(base_url=api.url, timeout=60) as web:
        signed_in = web.post("/login", data={"email": "owner-d@example.com",
                                             "password": "correct-horse-1",
                                             "csrf_token": csrf_of(web.get("/login"))})  # fmt: skip
        assert signed_in.status_code == 302, signed_in.text
        form = {"id": "apiop-d", "admin_email": "admin@apiop-d.example", "plan": "starter",
                "odoo_version": "18.0", "csrf_token": csrf_of(web.get("/tenants/new"))}  # fmt: skip
        created = web.post("/tenants/new", data=form)
        assert created.status_code == 302, created.text
        assert created.headers["Location"] == "/tenants/apiop-d"

        def status() -> dict[str, Any]:
            res = web.get("/tenants/apiop-d/status.json")
            assert res.status_code == 200, res.text
            found: dict[str, Any] = res.json()
            return found

        wait_for(lambda: status()["status"] == "Current", SETTLE, "the page to say Current",
                 operator)  # fmt: skip
        page = web.get("/tenants/apiop-d")
        assert page.status_code == 200 and 'id="suspend"' in page.text, page.text
        assert "Plan starter" in page.text and "admin@apiop-d.example" in page.text
        dashboard = web.get("/dashboard")
        row = dashboard.text[dashboard.text.find('data-tenant="apiop-d"') :]
        assert 'data-field="status">Current<' in row, dashboard.text
        assert web.get("/dashboard/status.json").json()["tenants"]["apiop-d"]["status"] == "Current"

        # "Back up now": an OdooTenantBackup, shown as the page's operation, no job.
        backup = web.post("/tenants/apiop-d/backup", data={"csrf_token": csrf_of(page)})
        assert backup.status_code == 302, backup.text
        shown = status()
        asked = shown["job"] or shown["last_job"]  # pending, running, or done already
        assert asked["kind"] == "backup" and asked["name"].startswith("apiop-d-backup-"), shown
        wait_for(lambda: status()["job"] is None, SETTLE, "the backup to end", operator)
        assert status()["last_job"]["state"] == "succeeded", status()
        assert status()["last_job"]["name"] == asked["name"]
        assert "backup: succeeded" in web.get("/tenants/apiop-d").text

        suspend = web.post("/tenants/apiop-d/suspend", data={"csrf_token": csrf_of(page)})
        assert suspend.status_code == 302, suspend.text

        def resumable() -> bool:
            shown = 'id="resume"' in web.get("/tenants/apiop-d").text
            return shown and status()["status"] == "Current"

        wait_for(resumable, SETTLE, "a Resume button", operator)
        assert "suspended" in status()["reason"], status()

        # "Roll back" (to the previous revision: not suspended): an OdooTenantRollback.
        page = web.get("/tenants/apiop-d")
        assert 'id="rollback"' in page.text, page.text
        back = web.post("/tenants/apiop-d/rollback", data={"csrf_token": csrf_of(page)})
        assert back.status_code == 302, back.text
        wait_for(lambda: (status()["last_job"] or {}).get("kind") == "rollback"
                 and status()["job"] is None, SETTLE, "the rollback to end", operator)  # fmt: skip
        assert status()["last_job"]["state"] == "succeeded", status()
        wait_for(lambda: 'id="suspend"' in web.get("/tenants/apiop-d").text, SETTLE,
                 "a Suspend button again", operator)  # fmt: skip

        gone = web.post("/tenants/apiop-d/delete", data={"csrf_token": csrf_of(page),
                                                         "confirm": "apiop-d",
                                                         "no_final_backup": "1"})  # fmt: skip
        assert gone.status_code == 302 and gone.headers["Location"] == "/dashboard", gone.text
        wait_for(lambda: status()["status"] == "deleted", SETTLE, "the page to say deleted",
                 operator)  # fmt: skip
        assert 'data-tenant="apiop-d"' not in web.get("/dashboard").text
