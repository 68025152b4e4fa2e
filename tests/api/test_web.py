"""The web UI in headless Chromium (Debian's, driven by playwright), its users in the real
GoTrue, the operator a process of its own (``cluster_app``): sign up, create a tenant (with a
field error first), watch its OdooTenant become Current, back it up (a request the operator
runs), delete it with confirmation, log out (the old session cookie no longer signs in).

Screenshots are kept in build/test-artifacts/web/ (gitignored); the path is printed.
"""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright

from saasodoo.errors import NotFound
from tests.api.conftest import LiveServer, services_of
from tests.support import ROOT

pytestmark = pytest.mark.cluster

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
ARTIFACTS = ROOT / "build" / "test-artifacts" / "web"


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


def _shot(page: Page, name: str) -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


def test_sign_up_create_watch_ready_delete(live_server: LiveServer, browser: Browser) -> None:
    tenant_id = f"apiweb{uuid.uuid4().hex[:6]}"
    email = f"web-{uuid.uuid4().hex[:6]}@example.com"
    page = browser.new_page(base_url=live_server.url)
    page.set_default_timeout(30_000)
    try:
        page.goto("/")
        expect(page.get_by_role("heading", level=1)).to_contain_text("Your own Odoo")
        _shot(page, "01-landing")
        page.get_by_role("link", name="Sign up").first.click()
        page.fill("#email", email)
        page.fill("#password", "correct-horse-1")
        page.get_by_role("button", name="Sign up").click()
        expect(page).to_have_url(f"{live_server.url}/dashboard")
        expect(page.locator("#no-tenants")).to_be_visible()
        _shot(page, "02-dashboard-empty")

        page.get_by_role("link", name="New Odoo").first.click()
        expect(page.locator("#admin_email")).to_have_value(email)
        page.fill("#id", "Not Valid!")
        page.get_by_role("button", name="Create").click()
        expect(page.locator("#id-error")).to_contain_text("DNS label")
        _shot(page, "03-create-field-error")

        page.fill("#id", tenant_id)
        page.get_by_role("button", name="Create").click()
        expect(page).to_have_url(f"{live_server.url}/tenants/{tenant_id}")
        status = page.locator("#tenant [data-field=status]")
        expect(status).to_have_text("Current", timeout=120_000)  # updated by the page's polling
        # The page reloads itself while it polls: on a loaded machine a reload may be in flight
        # when Ready shows (CI: "#url" not found within expect's default 5 s).
        expect(page.locator("#url")).to_have_text(
            f"https://{tenant_id}.odoo.localhost", timeout=30_000
        )
        _shot(page, "04-tenant-ready")

        # no container runs: no zip (the page may be reloading itself, as above)
        expect(page.locator("#no-backups")).to_be_visible(timeout=30_000)
        page.get_by_role("button", name="Back up now").click()
        expect(page.locator(".flash")).to_contain_text(
            f"Backup of {tenant_id} started", timeout=30_000
        )
        last = page.locator("#tenant [data-field=last_job]")
        expect(last).to_have_text("backup: succeeded", timeout=120_000)
        _shot(page, "04b-backed-up")

        page.get_by_role("link", name="Dashboard").click()
        row = page.locator(f'tr[data-tenant="{tenant_id}"]')
        expect(row.locator("[data-field=status]")).to_have_text("Current", timeout=30_000)
        _shot(page, "05-dashboard-ready")

        page.locator(f'tr[data-tenant="{tenant_id}"] a').first.click()
        page.once("dialog", lambda dialog: dialog.accept())
        page.fill("#confirm", tenant_id)
        # No container runs on the simulated cluster: no final backup can be proven (#22).
        page.check("#no-final-backup")
        page.locator("#delete").click()
        expect(page).to_have_url(f"{live_server.url}/dashboard")
        expect(page.locator(".flash")).to_contain_text(f"Deleting {tenant_id}")
        _shot(page, "06-deleting")
        _wait_gone(live_server, tenant_id)
        page.reload()
        expect(page.locator(f'tr[data-tenant="{tenant_id}"]')).to_have_count(0)
        _shot(page, "07-deleted")

        signed_in = page.context.cookies()
        page.get_by_role("button", name="Log out").click()
        expect(page.locator(".flash")).to_contain_text("Logged out")
        page.context.add_cookies(signed_in)  # the old session cookie, replayed
        page.goto("/dashboard")
        expect(page).to_have_url(re.compile(r"/login\?next="))
        _shot(page, "08-old-cookie-after-log-out")
    finally:
        _shot(page, "99-last")
        print(f"web UI screenshots: {ARTIFACTS}")
        _wait_gone(live_server, tenant_id, delete=True)


def _wait_gone(server: LiveServer, tenant_id: str, *, delete: bool = False) -> None:
    """Until the tenant's OdooTenant is gone (the operator deleted it); ``delete``: asked
    first, without a final backup (what a failed test left)."""
    objects = services_of(server.app).objects
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        try:
            objects.get(tenant_id)
        except NotFound:
            return
        if delete:
            objects.delete(tenant_id, final_backup=False)
            delete = False
        time.sleep(1)
    raise AssertionError(f"tenant {tenant_id} still exists")
