"""Backups and staging copies through the platform's API with the operator, whose account
reads no tenant object.

Backups (#24 point 6): a customer downloads a backup (the API reads the OdooTenant's status,
the backups the operator listed and where they are, and streams the zip from S3 with the
platform's key pair; another user's tenant is a 404, an unlisted backup a 404, a bad name a
422, a backup volume through an OdooTenantDownload and the reader program, no platform key
pair a 409 naming the settings),
and imports one (staged into the bucket where the tenant's values keep its backups, then an
OdooTenantRestore that the operator runs). Copies (#25 point 1): the API and the web UI
write the copy's OdooTenant (spec.copyOf, the source's owner, the copy-of label, expiresAt),
refusing another's source, an existing id and a bad expiry before anything is written.

The API runs in this process (Flask's test client, local auth), the OdooTenants are written
as the operator writes them (status subresource), the S3 server is moto's (a real S3 API)."""

from __future__ import annotations

import hashlib
import os
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from kubernetes import client

from saasodoo.adapters.kube import Kube
from saasodoo.adapters.resources import apply_crd
from saasodoo.api.config import ApiSettings
from saasodoo.app import create_app
from saasodoo.core.operations import crd_manifests
from saasodoo.settings import Settings
from tests.api.conftest import csrf_token, sign_up
from tests.api.zips import odoo_zip
from tests.backups.conftest import s3_server  # noqa: F401  (a fixture: moto's S3 server)
from tests.backups.helpers import S3_KEY, S3_SECRET, S3Server, start_serving
from tests.support import Cluster

pytestmark = pytest.mark.cluster

NAMESPACE = "saasodoo-api-dl"
BUCKET = "dl-backups"
PREFIX = "saasodoo"
NAME = "20261206T101500Z-on-demand.zip"
GROUP = ("saasodoo.dev", "v1alpha1")


def settings(kube: Cluster, **kw: Any) -> Settings:
    return Settings(kubeconfig=kube.kubeconfig, helm_binary=str(kube.tools.helm(4)),
                    base_domain="odoo.test", operator=True, system_namespace=NAMESPACE,
                    **kw)  # fmt: skip


@pytest.fixture(scope="module")
def crds(kube: Cluster) -> Iterator[None]:
    api = Kube(settings(kube))
    for manifest in crd_manifests():
        apply_crd(api, manifest)
    api.create_namespace_if_absent(NAMESPACE)
    yield
    kube.kubectl("delete", "namespace", NAMESPACE, "--wait=false")


def odootenant(kube: Cluster, tid: str, owner: str, storage: dict[str, str] | None) -> None:
    """An OdooTenant as the operator leaves it after listing one backup."""
    body = {
        "apiVersion": "saasodoo.dev/v1alpha1",
        "kind": "OdooTenant",
        "metadata": {"name": tid, "namespace": NAMESPACE},
        "spec": {"adminEmail": f"admin@{tid}.example", "plan": "starter", "owner": owner},
    }
    objects = client.CustomObjectsApi(kube.api)
    try:
        objects.create_namespaced_custom_object(*GROUP, NAMESPACE, "odootenants", body)
    except client.ApiException as exc:
        assert exc.status == 409, exc
    status = {
        "backups": [{"name": NAME, "kind": "on-demand", "time": "2026-12-06T10:15:00Z"}],
        "backupsListedAt": "2026-12-06T10:16:00Z",
        **({"backupStorage": storage} if storage else {}),
    }
    objects.patch_namespaced_custom_object_status(
        *GROUP, NAMESPACE, "odootenants", tid, {"status": status}
    )


def platform_settings(kube: Cluster, s3_server: S3Server) -> Settings:  # noqa: F811
    """The platform's: tenants keep backups in the bucket, the API holds the key pair."""
    s3 = {"endpoint": s3_server.endpoint, "bucket": BUCKET, "existingSecret": "backup-s3"}
    return settings(
        kube, backup_s3_access_key_id=S3_KEY, backup_s3_secret_access_key=S3_SECRET,
        tenant_values={"backup": {"storage": "s3", "s3": s3}},
    )  # fmt: skip


def requests_of(kube: Cluster, plural: str, tenant: str) -> list[dict[str, Any]]:
    items = client.CustomObjectsApi(kube.api).list_namespaced_custom_object(
        *GROUP, NAMESPACE, plural
    )["items"]
    return [r for r in items if r["spec"]["tenant"] == tenant]


def copied(kube: Cluster, tid: str) -> None:
    """The copy's status as the operator leaves it once its data is in place."""
    client.CustomObjectsApi(kube.api).patch_namespaced_custom_object_status(
        *GROUP, NAMESPACE, "odootenants", tid,
        {"status": {"copy": {"source": "cp-src", "step": "copied"}}},
    )  # fmt: skip


def play_the_reader(kube: Cluster, tenant: str, volume: Path) -> None:
    """The operator's part of an OdooTenantDownload: once the API wrote one for ``tenant``,
    the reader program serves ``volume``'s zip for the digest it names, and the request is
    marked Succeeded with the reader's address."""
    deadline = time.monotonic() + 60
    while not (asked := requests_of(kube, "odootenantdownloads", tenant)):
        assert time.monotonic() < deadline, "no OdooTenantDownload written"
        time.sleep(0.2)
    spec, name = asked[0]["spec"], asked[0]["metadata"]["name"]
    proc, base = start_serving(volume, spec["backup"], "", 60, digest=spec["tokenSha256"])
    served = {"address": base.removeprefix("http://"), "job": "reader",
              "expiresAt": "2030-01-01T00:00:00Z"}  # fmt: skip
    status = {"phase": "Succeeded", "result": served}
    client.CustomObjectsApi(kube.api).patch_namespaced_custom_object_status(
        *GROUP, NAMESPACE, "odootenantdownloads", name, {"status": status}
    )
    proc.communicate(timeout=60)  # served once, it ends


def fail_the_reader(kube: Cluster, tenant: str) -> None:
    """The operator's part of an OdooTenantDownload whose reader ends at once."""
    deadline = time.monotonic() + 60
    while not (asked := requests_of(kube, "odootenantdownloads", tenant)):
        assert time.monotonic() < deadline, "no OdooTenantDownload written"
        time.sleep(0.2)
    status = {"phase": "Failed", "message": "its reader pod ended at once"}
    client.CustomObjectsApi(kube.api).patch_namespaced_custom_object_status(
        *GROUP, NAMESPACE, "odootenantdownloads", asked[0]["metadata"]["name"],
        {"status": status},
    )  # fmt: skip


def test_a_customer_downloads_a_listed_backup_from_s3(
    kube: Cluster,
    crds: None,
    s3_server: S3Server,  # noqa: F811
    tmp_path: Path,
) -> None:
    s3 = s3_server.client()
    s3.create_bucket(Bucket=BUCKET)
    content = os.urandom(3 * (1 << 20) + 17)  # more than one chunk
    s3.put_object(Bucket=BUCKET, Key=f"{PREFIX}/dl-a/{NAME}", Body=content)
    app: Flask = create_app(
        ApiSettings(auth_mode="local", cookie_secure=False), platform_settings(kube, s3_server)
    )
    web = app.test_client()
    owner = sign_up(web, "owner@dl.example.com")
    where = {"type": "s3", "endpoint": s3_server.endpoint, "bucket": BUCKET,
             "prefix": PREFIX, "region": "us-east-1"}  # fmt: skip
    odootenant(kube, "dl-a", owner.user_id, where)

    res = owner.call("GET", f"/api/tenants/dl-a/backups/{NAME}")
    assert res.status_code == 200, res.get_data()[:300]
    assert res.headers["Content-Type"] == "application/zip"
    assert res.headers["Content-Length"] == str(len(content))
    assert res.headers["Content-Disposition"] == f'attachment; filename="dl-a-{NAME}"'
    assert hashlib.sha256(res.get_data()).digest() == hashlib.sha256(content).digest()
    res.close()  # as a WSGI server closes every answer: the download's slot is free again

    # The web UI's tenant page links it, and the link serves the same bytes.
    browser = app.test_client()
    page = browser.get("/login").get_data(as_text=True)
    token = csrf_token(page)
    form = {"email": "owner@dl.example.com", "password": "correct-horse-1", "csrf_token": token}
    signed_in = browser.post("/login", data=form)
    assert signed_in.status_code == 302, signed_in.get_data()[:300]
    link = f"/tenants/dl-a/backups/{NAME}"
    assert f'href="{link}"' in browser.get("/tenants/dl-a").get_data(as_text=True)
    got = browser.get(link)
    assert got.status_code == 200 and got.get_data() == content
    got.close()

    # Listed by an operator that did not record where (an older one): its values say.
    s3.put_object(Bucket=BUCKET, Key=f"{PREFIX}/dl-old/{NAME}", Body=b"old")
    odootenant(kube, "dl-old", owner.user_id, None)
    old = owner.call("GET", f"/api/tenants/dl-old/backups/{NAME}")
    assert old.status_code == 200 and old.get_data() == b"old", old.get_data()[:300]
    old.close()
    # Two downloads stream at once per server (download_slots): a third waits its turn.
    held = [owner.call("GET", f"/api/tenants/dl-old/backups/{NAME}") for _ in range(2)]
    assert [r.status_code for r in held] == [200, 200]
    busy = owner.call("GET", f"/api/tenants/dl-old/backups/{NAME}")
    assert busy.status_code == 429 and busy.headers["Retry-After"] == "30", busy.get_json()
    for r in held:
        r.close()
    again = owner.call("GET", f"/api/tenants/dl-old/backups/{NAME}")
    assert again.status_code == 200
    again.close()

    # Someone else's tenant is as missing as a tenant that does not exist.
    other = sign_up(web, "other@dl.example.com")
    assert other.call("GET", f"/api/tenants/dl-a/backups/{NAME}").status_code == 404
    # A backup the operator did not list, a name that is no zip name.
    unknown = owner.call("GET", "/api/tenants/dl-a/backups/20200101T000000Z-on-demand.zip")
    assert unknown.status_code == 404, unknown.get_json()
    bad = owner.call("GET", "/api/tenants/dl-a/backups/..%2Fx.zip")
    assert bad.status_code in (404, 422), bad.get_data()[:200]
    bad = owner.call("GET", "/api/tenants/dl-a/backups/dump.sql")
    assert bad.status_code == 422 and bad.get_json()["fields"][0]["field"] == "name"

    # A tenant whose backups are on its volume: the API writes an OdooTenantDownload naming
    # the SHA-256 of a token it keeps and streams from the reader the operator starts. The
    # test plays the operator: the real reader program (restore.py --serve) on 127.0.0.1.
    odootenant(kube, "dl-b", owner.user_id, {"type": "pvc"})
    volume = tmp_path / "volume"
    volume.mkdir()
    (volume / NAME).write_bytes(content)
    played = threading.Thread(target=play_the_reader, args=(kube, "dl-b", volume), daemon=True)
    played.start()
    pvc = owner.call("GET", f"/api/tenants/dl-b/backups/{NAME}")
    assert pvc.status_code == 200, pvc.get_data()[:300]
    assert pvc.headers["Content-Length"] == str(len(content))
    assert hashlib.sha256(pvc.get_data()).digest() == hashlib.sha256(content).digest()
    pvc.close()
    played.join(timeout=60)
    [asked] = requests_of(kube, "odootenantdownloads", "dl-b")
    assert asked["spec"]["backup"] == NAME and len(asked["spec"]["tokenSha256"]) == 64
    # One the operator fails (no such backup on the volume): the error, the request deleted.
    client.CustomObjectsApi(kube.api).delete_namespaced_custom_object(
        *GROUP, NAMESPACE, "odootenantdownloads", asked["metadata"]["name"]
    )
    failing = threading.Thread(target=fail_the_reader, args=(kube, "dl-b"), daemon=True)
    failing.start()
    gone = owner.call("GET", f"/api/tenants/dl-b/backups/{NAME}")
    failing.join(timeout=60)
    assert gone.status_code >= 400 and "ended at once" in gone.get_json()["message"], (
        gone.get_json()
    )
    assert not requests_of(kube, "odootenantdownloads", "dl-b")

    # A platform without the key pair: 409 naming the settings.
    bare = create_app(ApiSettings(auth_mode="local", cookie_secure=False), settings(kube))
    again = sign_up(bare.test_client(), "owner2@dl.example.com")
    odootenant(kube, "dl-c", again.user_id, where)
    keyless = again.call("GET", f"/api/tenants/dl-c/backups/{NAME}")
    assert keyless.status_code == 409, keyless.get_json()
    assert "SAASODOO_BACKUP_S3_ACCESS_KEY_ID" in keyless.get_json()["message"]


def test_a_customer_imports_a_backup_into_the_tenant_s_bucket(
    kube: Cluster,
    crds: None,
    s3_server: S3Server,  # noqa: F811
    tmp_path: Path,
) -> None:
    s3 = s3_server.client()
    try:
        s3.create_bucket(Bucket=BUCKET)
    except s3.exceptions.BucketAlreadyOwnedByYou:
        pass
    app = create_app(
        ApiSettings(auth_mode="local", cookie_secure=False, import_dir=tmp_path / "spool"),
        platform_settings(kube, s3_server),
    )
    owner = sign_up(app.test_client(), "owner@dl-imp.example.com")
    # Never listed yet (no status.backupStorage): its values say where (tenants.values).
    odootenant(kube, "dl-imp", owner.user_id, None)
    source = odoo_zip(tmp_path / "customer.zip")
    with source.open("rb") as fh:
        form = {"zip": (fh, source.name)}
        url = "/api/tenants/dl-imp/backups/import"
        res = owner.call("POST", url, data=form, content_type="multipart/form-data")
    assert res.status_code == 202, res.get_json()
    operation = res.get_json()["operation"]
    # Staged where the tenant's values keep its backups: the zip and its manifest.
    listed = s3.list_objects_v2(Bucket=BUCKET, Prefix=f"{PREFIX}/dl-imp/")["Contents"]
    keys = sorted(o["Key"].rsplit("/", 1)[1] for o in listed)
    assert len(keys) == 2 and keys[1] == keys[0] + ".json", keys
    staged = keys[0]
    # The restore the operator runs, deleting the staged zip if it does not succeed.
    request = client.CustomObjectsApi(kube.api).get_namespaced_custom_object(
        *GROUP, NAMESPACE, "odootenantrestores", operation["name"]
    )
    assert request["spec"]["tenant"] == "dl-imp" and request["spec"]["backup"] == staged
    assert request["spec"]["discardOnFailure"] is True


def test_a_customer_asks_for_a_staging_copy_through_the_api_and_the_web_ui(
    kube: Cluster, crds: None
) -> None:
    app = create_app(ApiSettings(auth_mode="local", cookie_secure=False), settings(kube))
    web = app.test_client()
    owner = sign_up(web, "owner@cp.example.com")
    odootenant(kube, "cp-src", owner.user_id, {"type": "s3"})
    objects = client.CustomObjectsApi(kube.api)

    res = owner.call(
        "POST", "/api/tenants/cp-src/copy", json={"to": "cp-stage", "expires_in": "7d"}
    )
    assert res.status_code == 202, res.get_json()
    assert res.headers["Location"].endswith("/api/tenants/cp-stage")
    copy = objects.get_namespaced_custom_object(*GROUP, NAMESPACE, "odootenants", "cp-stage")
    assert copy["spec"]["copyOf"] == {"tenant": "cp-src"}
    assert copy["spec"]["owner"] == owner.user_id  # the source's owner
    assert copy["metadata"]["labels"]["saasodoo.dev/copy-of"] == "cp-src"
    expires = datetime.fromisoformat(copy["spec"]["expiresAt"].replace("Z", "+00:00"))
    assert abs(expires - datetime.now(UTC) - timedelta(days=7)) < timedelta(minutes=5)
    # The copy is the owner's to see, as a copy.
    seen = owner.call("GET", "/api/tenants/cp-stage")
    assert seen.status_code == 200 and seen.get_json()["copy_of"] == "cp-src", seen.get_json()

    other = sign_up(web, "other@cp.example.com")
    # A refresh from the source (an OdooTenantRefresh for the operator) once the copy is
    # made; a copy not made yet, or a tenant that is no copy, is refused, nothing written.
    early = owner.call("POST", "/api/tenants/cp-stage/refresh", json={})
    assert early.status_code == 409 and "not made yet" in early.get_json()["message"]
    copied(kube, "cp-stage")
    asked = owner.call("POST", "/api/tenants/cp-stage/refresh", json={})
    assert asked.status_code == 202, asked.get_json()
    [refresh] = requests_of(kube, "odootenantrefreshes", "cp-stage")
    assert refresh["spec"] == {"tenant": "cp-stage"}
    assert asked.get_json()["operation"]["name"] == refresh["metadata"]["name"]
    no_copy = owner.call("POST", "/api/tenants/cp-src/refresh", json={})
    assert no_copy.status_code == 422, no_copy.get_json()
    assert [f["field"] for f in no_copy.get_json()["fields"]] == ["tenant"]
    assert not requests_of(kube, "odootenantrefreshes", "cp-src")
    assert other.call("POST", "/api/tenants/cp-stage/refresh", json={}).status_code == 404

    # Refused before anything is written: another's source, an existing id, a bad expiry.
    assert other.call("POST", "/api/tenants/cp-src/copy", json={"to": "cp-x"}).status_code == 404
    taken = owner.call("POST", "/api/tenants/cp-src/copy", json={"to": "cp-stage"})
    assert taken.status_code == 409, taken.get_json()
    bad = owner.call("POST", "/api/tenants/cp-src/copy", json={"to": "cp-y", "expires_in": "0d"})
    assert bad.status_code == 422, bad.get_json()
    assert [f["field"] for f in bad.get_json()["fields"]] == ["expires_in"]
    names = [o["metadata"]["name"] for o in objects.list_namespaced_custom_object(
        *GROUP, NAMESPACE, "odootenants")["items"]]  # fmt: skip
    assert "cp-x" not in names and "cp-y" not in names

    # The web UI: the source's page offers a copy; the copy's page says what it is.
    browser = app.test_client()
    page = browser.get("/login").get_data(as_text=True)
    token = csrf_token(page)
    form = {"email": "owner@cp.example.com", "password": "correct-horse-1", "csrf_token": token}
    assert browser.post("/login", data=form).status_code == 302
    source_page = browser.get("/tenants/cp-src").get_data(as_text=True)
    assert 'id="copy-now"' in source_page
    token = csrf_token(source_page)
    made = browser.post("/tenants/cp-src/copy",
                        data={"to": "cp-web", "expires_in": "1d", "csrf_token": token})  # fmt: skip
    assert made.status_code == 302 and made.headers["Location"].endswith("/tenants/cp-web")
    copy_page = browser.get("/tenants/cp-web").get_data(as_text=True)
    assert 'id="copy-of"' in copy_page and "cp-src" in copy_page
    assert 'id="copy-now"' not in copy_page  # no copy of a copy offered
    # ...but a refresh from its source, which writes an OdooTenantRefresh
    assert 'id="refresh-now"' in copy_page and 'id="refresh-now"' not in source_page
    token = csrf_token(copy_page)
    copied(kube, "cp-web")
    refreshed = browser.post("/tenants/cp-web/refresh", data={"csrf_token": token})
    assert refreshed.status_code == 302, refreshed.get_data()[:300]
    assert [r["spec"] for r in requests_of(kube, "odootenantrefreshes", "cp-web")] == [
        {"tenant": "cp-web"}
    ]
