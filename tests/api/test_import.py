"""Import of an uploaded backup zip through the API and the web UI, on the simulated cluster,
users in the real GoTrue: the owner's (and an operator's) upload becomes an `import` job that
stores the zip in our format beside the tenant's backups (its PVC, mounted at
``backup_pvc_root``) and restores it; another user gets 404; too large is 413 naming the
limit; not a zip, truncated, not an Odoo backup, another Odoo version are 422 before any job;
a dump asking for a role fails the job with 422. Every refusal leaves the storage and the
spool directory empty. (Zips of the real Odoo server: tests/odoo/test_import.py.)"""

from __future__ import annotations

import asyncio
import re
import threading
import uuid
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from playwright.sync_api import Browser, expect

from saasodoo.errors import NotFound
from tests.api.conftest import Api, LiveServer, operator, services_of, sign_up
from tests.api.test_web import _shot, browser  # noqa: F401  (the module's Chromium)
from tests.api.zips import DUMP, odoo_zip

pytestmark = pytest.mark.cluster


@pytest.fixture(scope="module")
def owner(cluster_app: Flask) -> Iterator[Api]:
    """A user owning one ready tenant (PVC backups, mounted at ``backup_pvc_root``)."""
    alice = sign_up(cluster_app.test_client(), f"imp-{uuid.uuid4().hex[:6]}@example.com")
    tenant_id = f"apiimp{uuid.uuid4().hex[:6]}"
    job = alice.wait_job(
        alice.call("POST", "/api/tenants", json={"id": tenant_id, "admin_email": "a@x.io"})
    )
    assert job["state"] == "succeeded", job
    alice.tenant_id = tenant_id
    yield alice
    svc = services_of(cluster_app)
    svc.jobs.wait_idle(300)
    try:
        # Not waiting for the namespace (~10 s): the id is never reused.
        asyncio.run(svc.tenants.delete(tenant_id, final_backup=False, wait=False))
    except NotFound:
        pass


@pytest.fixture
def spool(cluster_app: Flask, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The app's spool directory for this test (empty after every refusal and every job)."""
    path = tmp_path / "spool"
    monkeypatch.setattr(services_of(cluster_app).settings, "import_dir", path)
    return path


def stored(app: Flask, tenant_id: str) -> list[str]:
    root = services_of(app).backups.pvc_root
    assert root is not None
    folder = root / tenant_id
    return sorted(p.name for p in folder.iterdir()) if folder.is_dir() else []


def upload(api: Api, path: Path, *, raw: bool = False, query: str = "") -> Any:
    url = f"/api/tenants/{api.tenant_id}/backups/import{query}"
    if raw:
        with path.open("rb") as fh:
            return api.call("POST", url, data=fh, content_type="application/zip")
    with path.open("rb") as fh:
        return api.call(
            "POST", url, data={"zip": (fh, path.name)}, content_type="multipart/form-data"
        )


def test_refusals_store_nothing(
    owner: Api, cluster_app: Flask, spool: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    good = odoo_zip(tmp_path / "customer.zip")
    before = stored(cluster_app, owner.tenant_id)

    bob = sign_up(cluster_app.test_client(), f"bob-{uuid.uuid4().hex[:6]}@example.com")
    bob.tenant_id = owner.tenant_id
    ghost = bob.call("GET", "/api/tenants/apinobody").get_json()
    for raw in (False, True):
        res = upload(bob, good, raw=raw)
        assert res.status_code == 404, res.get_json()
        assert res.get_json() == {**ghost, "message": f"tenant '{owner.tenant_id}' not found"}

    monkeypatch.setattr(services_of(cluster_app).settings, "import_max_bytes", 64 * 1024)
    big = odoo_zip(tmp_path / "big.zip", big=200 * 1024)
    for raw in (False, True):
        res = upload(owner, big, raw=raw)
        assert res.status_code == 413, res.get_json()
        assert "larger than the limit of 65536 bytes (64.0 KiB)" in res.get_json()["message"]
    monkeypatch.setattr(services_of(cluster_app).settings, "import_max_bytes", 1024**3)

    not_zip = tmp_path / "notes.zip"
    not_zip.write_bytes(b"%PDF-1.4 a customer's invoice, not a backup")
    truncated = tmp_path / "cut.zip"
    truncated.write_bytes(good.read_bytes()[:-40])
    no_manifest = tmp_path / "plain.zip"
    with zipfile.ZipFile(no_manifest, "w") as zf:
        zf.writestr("dump.sql", DUMP)
    old = odoo_zip(tmp_path / "v17.zip", version="17.0", major_version="17.0",
                   version_info=[17, 0, 0, "final", 0, ""])  # fmt: skip
    for path, expected in [
        (not_zip, "zip: notes.zip is corrupt or truncated"),
        (truncated, "zip: cut.zip is corrupt or truncated"),
        (no_manifest, "zip: plain.zip is not an Odoo backup (no manifest.json)"),
        (old, f"is a dump of Odoo 17.0; tenant '{owner.tenant_id}' runs Odoo 18.0"),
    ]:
        res = upload(owner, path)
        assert res.status_code == 422, (path.name, res.get_json())
        assert expected in res.get_json()["message"], res.get_json()
    res = owner.call("POST", f"/api/tenants/{owner.tenant_id}/backups/import", json={"zip": "x"})
    assert res.status_code == 422 and res.get_json()["fields"][0]["field"] == "(body)"

    # the dump is read in the job (every byte of it): refused there, with the rule, as a 422
    role = odoo_zip(tmp_path / "role.zip", dump=DUMP + b"CREATE ROLE customer_admin;\n")
    job = owner.wait_job(upload(owner, role))
    assert job["state"] == "failed" and job["kind"] == "import", job
    assert job["error"]["status_code"] == 422
    assert "may not do: line 6 creates a role" in job["error"]["message"]

    release = threading.Event()

    async def hold() -> None:
        release.wait(30)

    services_of(cluster_app).jobs.submit("hold", owner.user_id, owner.tenant_id, hold)
    try:
        busy = upload(owner, good)
        assert busy.status_code == 409 and "in progress" in busy.get_json()["message"]
    finally:
        release.set()
    services_of(cluster_app).jobs.wait_idle(60)
    assert stored(cluster_app, owner.tenant_id) == before
    assert list(spool.iterdir()) == []


def test_owner_and_operator_imports_are_stored_and_restored(
    owner: Api, cluster_app: Flask, spool: Path, tmp_path: Path
) -> None:
    before = stored(cluster_app, owner.tenant_id)
    res = upload(owner, odoo_zip(tmp_path / "customer.zip"))
    assert res.headers["Location"] == res.get_json()["status_url"]
    job = owner.wait_job(res)
    assert job["state"] == "succeeded" and job["kind"] == "import", job
    result = job["result"]
    assert result["imported_from"] == "customer.zip" and result["mode"] == "restore"
    assert result["ok"] is True and result["job"]["succeeded"] is True
    name = result["backup"]
    assert sorted(set(stored(cluster_app, owner.tenant_id)) - set(before)) == [
        name,
        name + ".json",
    ]
    listed = owner.call("GET", f"/api/tenants/{owner.tenant_id}/backups").get_json()["backups"]
    assert [b["imported_from"] for b in listed if b["name"] == name] == ["customer.zip"]

    ops = operator(cluster_app.test_client())
    ops.tenant_id = owner.tenant_id
    res = upload(ops, odoo_zip(tmp_path / "x.zip"), raw=True,
                 query="?filename=moving%20in.zip&drop_previous=true")  # fmt: skip
    job = ops.wait_job(res)
    assert job["state"] == "succeeded", job
    assert job["result"]["imported_from"] == "moving_in.zip"
    assert list(spool.iterdir()) == []


def test_web_upload_form(
    owner: Api,
    cluster_app: Flask,
    live_server: LiveServer,
    browser: Browser,  # noqa: F811
    tmp_path: Path,
) -> None:
    """The owner's tenant page: a refused zip is flashed with the rule, an accepted one shows
    the import job until it succeeded."""
    email = f"web-imp-{uuid.uuid4().hex[:6]}@example.com"
    page = browser.new_page(base_url=live_server.url)
    page.set_default_timeout(30_000)
    try:
        page.goto("/signup")
        page.fill("#email", email)
        page.fill("#password", "correct-horse-1")
        page.get_by_role("button", name="Sign up").click()
        expect(page).to_have_url(f"{live_server.url}/dashboard")
        # the page of someone else's tenant: 404, no form
        assert page.goto(f"/tenants/{owner.tenant_id}").status == 404  # type: ignore[union-attr]

        owner_page = browser.new_page(base_url=live_server.url)
        owner_page.set_default_timeout(30_000)
        _log_in_as(owner_page, owner)
        owner_page.goto(f"/tenants/{owner.tenant_id}")
        expect(owner_page.locator("#import-form")).to_contain_text("up to 1.0 GiB")
        # the owner's own session, but no form of this site: no CSRF token, nothing stored
        before = stored(cluster_app, owner.tenant_id)
        good = odoo_zip(tmp_path / "customer.zip")
        forged = owner_page.request.post(
            f"/tenants/{owner.tenant_id}/import",
            multipart={"zip": {"name": "customer.zip", "mimeType": "application/zip",
                               "buffer": good.read_bytes()}},
        )  # fmt: skip
        assert forged.status == 400 and "form expired" in forged.text()
        assert stored(cluster_app, owner.tenant_id) == before
        owner_page.on("dialog", lambda dialog: dialog.accept())
        old = odoo_zip(tmp_path / "v17.zip", version="17.0", major_version="17.0")
        owner_page.set_input_files("#import-zip", str(old))
        owner_page.locator("#import").click()
        expect(owner_page.locator(".flash")).to_contain_text(
            "Import refused: zip: v17.zip is a dump of Odoo 17.0"
        )
        _shot(owner_page, "import-01-refused")
        owner_page.set_input_files("#import-zip", str(good))
        owner_page.locator("#import").click()
        expect(owner_page.locator(".flash")).to_contain_text(f"Import of {owner.tenant_id}")
        last = owner_page.locator("#tenant [data-field=last_job]")
        expect(last).to_have_text("import: succeeded", timeout=120_000)
        owner_page.reload()  # the page's list shows the imported backup
        expect(owner_page.locator("#backups tbody")).to_contain_text("imported (customer.zip)")
        _shot(owner_page, "import-02-succeeded")
        owner_page.close()
    finally:
        page.close()


def _log_in_as(page: Any, api: Api) -> None:
    """The owner signs in through the log-in form (its password is sign_up's default)."""
    me = api.call("GET", "/api/auth/me").get_json()
    page.goto("/login")
    page.fill("#email", me["email"])
    page.fill("#password", "correct-horse-1")
    page.get_by_role("button", name="Log in").click()
    expect(page).to_have_url(re.compile(r"/dashboard$"))
