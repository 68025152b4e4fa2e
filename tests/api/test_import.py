"""Import of an uploaded backup zip through the API and the web UI, on the simulated cluster,
users in the real GoTrue, the operator a process of its own (``cluster_app``): the owner's
(and an operator's) upload is checked and rewritten in the request, stored in our format
beside the tenant's backups (its PVC, mounted at ``backup_pvc_root``) and requested as an
OdooTenantRestore with ``discardOnFailure``, which the operator runs; another user gets 404;
too large is 413 naming the limit; not a zip, truncated, not an Odoo backup, another Odoo
version, a dump asking for a role are 422 before anything is stored. Every refusal leaves
the storage and the spool directory empty. (Zips of the real Odoo server:
tests/odoo/test_import.py.)"""

from __future__ import annotations

import json
import re
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
    tenant = alice.wait_tenant(
        alice.call("POST", "/api/tenants", json={"id": tenant_id, "admin_email": "a@x.io"})
    )
    assert tenant["ready"] == "True", tenant
    alice.tenant_id = tenant_id
    yield alice
    try:
        # Not waiting for the operator (~10 s): the id is never reused.
        services_of(cluster_app).objects.delete(tenant_id, final_backup=False)
    except NotFound:
        pass


@pytest.fixture
def spool(cluster_app: Flask, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The app's spool directory for this test (empty after every refusal and every
    import)."""
    path = tmp_path / "spool"
    monkeypatch.setattr(services_of(cluster_app).settings, "import_dir", path)
    return path


def storage(app: Flask, tenant_id: str) -> Path:
    """The tenant's backup folder as the API reaches it (``backup_pvc_root``)."""
    root = services_of(app).backups.pvc_root
    assert root is not None
    return root / tenant_id


def stored(app: Flask, tenant_id: str) -> list[str]:
    folder = storage(app, tenant_id)
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

    # The dump is read in the request (every byte of it, by the import worker) before
    # anything is stored: refused with the rule, as a 422.
    role = odoo_zip(tmp_path / "role.zip", dump=DUMP + b"CREATE ROLE customer_admin;\n")
    res = upload(owner, role)
    assert res.status_code == 422, res.get_json()
    assert "may not do: line 6 creates a role" in res.get_json()["message"]

    # No refusal wrote a request for the operator, none stored anything.
    assert (
        owner.call("GET", f"/api/tenants/{owner.tenant_id}/operations").get_json()["operations"]
        == []
    )
    assert stored(cluster_app, owner.tenant_id) == before
    assert list(spool.iterdir()) == []


def test_owner_and_operator_imports_are_stored_and_restored(
    owner: Api, cluster_app: Flask, spool: Path, tmp_path: Path
) -> None:
    before = stored(cluster_app, owner.tenant_id)
    res = upload(owner, odoo_zip(tmp_path / "customer.zip"))
    assert res.status_code == 202, res.get_json()
    assert res.headers["Location"] == res.get_json()["status_url"]
    asked = res.get_json()["operation"]
    assert (asked["kind"], asked["tenant_id"]) == ("OdooTenantRestore", owner.tenant_id)
    assert asked["spec"]["discardOnFailure"] is True, asked
    name = asked["spec"]["backup"]
    # Staged in our format beside the tenant's backups before the 202: the zip and its
    # manifest, which says where it came from.
    assert sorted(set(stored(cluster_app, owner.tenant_id)) - set(before)) == [
        name,
        name + ".json",
    ]
    manifest = json.loads((storage(cluster_app, owner.tenant_id) / (name + ".json")).read_text())
    assert (manifest["imported_from"], manifest["identity"]) == ("customer.zip", "copy")
    # The operator restores it in the tenant's turn (on the simulated cluster the restore
    # Job completes without a container).
    done = owner.wait_operation(res)
    assert (done["phase"], done["backup"]) == ("Succeeded", name), done
    assert f"restored {name}" in done["message"], done
    assert name in stored(cluster_app, owner.tenant_id)  # kept: it succeeded

    ops = operator(cluster_app.test_client())
    ops.tenant_id = owner.tenant_id
    res = upload(ops, odoo_zip(tmp_path / "x.zip"), raw=True,
                 query="?filename=moving%20in.zip&drop_previous=true&moved=true")  # fmt: skip
    done = ops.wait_operation(res)
    assert done["phase"] == "Succeeded", done
    assert done["spec"]["dropPrevious"] is True, done
    manifest = json.loads(
        (storage(cluster_app, owner.tenant_id) / (done["backup"] + ".json")).read_text()
    )
    assert (manifest["imported_from"], manifest["identity"]) == ("moving_in.zip", "moved")
    assert list(spool.iterdir()) == []


def test_web_upload_form(
    owner: Api,
    cluster_app: Flask,
    live_server: LiveServer,
    browser: Browser,  # noqa: F811
    tmp_path: Path,
) -> None:
    """The owner's tenant page: a refused zip is flashed with the rule, an accepted one shows
    its restore request until the operator finished it."""
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
        expect(last).to_have_text("restore: succeeded", timeout=120_000)
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
