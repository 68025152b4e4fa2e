#!/usr/bin/env python3
"""`make demo` with a real node: the saasodoo platform runs in the cluster (issue 24 point 5).

1. Supabase Auth (GoTrue, built from the vendored source) in the cluster
   (``scripts/gotrue_cluster.py up``);
2. the platform image (``images/build.sh saasodoo``) imported into the real node, the
   platform's Secrets made (the auth server's publishable key, a random session key; never
   printed; the S3 server's key pair copied as the tenants' backup credentials), then
   ``charts/saasodoo`` installed by ``scripts/deploy.sh`` with the values below (operator and
   API on the real node, the web UI at https://app.odoo.localhost:<port> through Traefik, new
   tenants on the real node: ``*.localhost`` names resolve to 127.0.0.1 in browsers and curl;
   their backups in the real node's S3 server, scripts/s3.sh), and its ``helm test``;
3. three OdooTenants applied with kubectl on the simulated nodes (``nodePool: ""``; no Odoo
   process runs there), as any GitOps tool would;
4. a user signed up through the platform's API (a random e-mail and password, kept nowhere),
   who creates the tenant ``demo`` through the API; it runs for real on the real node. The
   program waits until the API says it is Ready and its login page answers through Traefik;
5. prints the web UI's URL, where a newcomer signs up and creates a tenant.

Idempotent: an existing tenant is kept, the platform upgraded in place. Environment:
``SAASODOO_KUBECONFIG`` (the cluster), ``SAASODOO_INGRESS_HTTPS_PORT`` (8443),
``SAASODOO_CLUSTER_NAME``.
"""

from __future__ import annotations

import http.client
import json
import os
import secrets
import ssl
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import gotrue_cluster  # noqa: E402  (a sibling script)

ROOT = Path(__file__).resolve().parents[1]
NAMESPACE = "saasodoo-system"
WEB_HOST = "app.odoo.localhost"
BASE_DOMAIN = "odoo.localhost"
REAL_POOL = "saasodoo.dev/real-node=true"
HTTPS_PORT = int(os.environ.get("SAASODOO_INGRESS_HTTPS_PORT") or 8443)
FAKE_TENANTS = {"acme": "starter", "globex": "standard", "initech": "premium"}
DEMO_TENANT = "demo"
# The real node's S3 server (scripts/s3.sh) and the platform's copy of its key pair.
S3_NAMESPACE, S3_SECRET = "s3", "s3-root"
S3_ENDPOINT, S3_BUCKET = "http://s3.s3.svc:7070", "saasodoo-backups"
BACKUP_SECRET = "saasodoo-backup-s3"


def info(message: str) -> None:
    print(f"\033[1m[saasodoo]\033[0m {message}", file=sys.stderr, flush=True)


def kubectl(*args: str, stdin: str | None = None, check: bool = True) -> str:
    return gotrue_cluster.kubectl(*args, stdin=stdin, check=check)


def values(image_tag: str, supabase_url: str) -> dict[str, Any]:
    on_real_node = {
        "nodeSelector": {"saasodoo.dev/real-node": "true"},
        "tolerations": [
            {"key": "saasodoo.dev/real-node", "operator": "Exists", "effect": "NoSchedule"}
        ],
    }
    return {
        "image": {"tag": image_tag, "pullPolicy": "Never"},
        "settings": {
            "baseDomain": BASE_DOMAIN,
            "nodePool": REAL_POOL,
            # Traefik listens on 127.0.0.1:HTTPS_PORT here: every address shown carries it.
            "extraEnv": {"SAASODOO_PUBLIC_URL": f"https://{{host}}:{HTTPS_PORT}"},
        },
        "operator": {**on_real_node},
        "api": {
            **on_real_node,
            # The auth server is reached inside the cluster over plain HTTP, which production
            # settings refuse (SAASODOO_API_SUPABASE_URL must use https): a demo's settings.
            "env": "development",
            "supabase": {"url": supabase_url, "existingSecret": "saasodoo-supabase"},
            "session": {"existingSecret": "saasodoo-session"},
            "ingress": {"host": WEB_HOST},
        },
        # Tenants keep their backups in the cluster's S3 server (scripts/s3.sh); its key pair
        # reaches their namespaces through the platform's Secret, never as a value.
        "tenants": {
            "values": {
                "backup": {
                    "storage": "s3",
                    "s3": {
                        "endpoint": S3_ENDPOINT,
                        "bucket": S3_BUCKET,
                        "existingSecret": BACKUP_SECRET,
                        "egressTo": [
                            {
                                "namespaceSelector": {
                                    "matchLabels": {"kubernetes.io/metadata.name": S3_NAMESPACE}
                                },
                                "podSelector": {
                                    "matchLabels": {"app.kubernetes.io/name": "versitygw"}
                                },
                            }
                        ],
                    },
                }
            },
            "backupS3Secret": BACKUP_SECRET,
        },
        # The auth server (saasodoo-auth, 8000) and the S3 server (s3, 7070) are in-cluster
        # Services here; on a real cluster they are external (443).
        "networkPolicy": {"externalPorts": [443, gotrue_cluster.PORT, 7070]},
    }


def copy_s3_keys() -> None:
    """The S3 server's key pair (Secret s3/s3-root, scripts/s3.sh) as the platform's
    ``BACKUP_SECRET``; the keys pass from one API object to the other, never printed."""
    source = json.loads(kubectl("-n", S3_NAMESPACE, "get", "secret", S3_SECRET, "-o", "json"))
    body = {
        "apiVersion": "v1",
        "kind": "Secret",
        "type": "Opaque",
        "metadata": {"name": BACKUP_SECRET, "namespace": NAMESPACE},
        "data": {k: source["data"][k] for k in ("access-key-id", "secret-access-key")},
    }
    kubectl("apply", "-f", "-", stdin=json.dumps(body))


def ensure_secret(name: str, data: dict[str, str]) -> None:
    if kubectl("-n", NAMESPACE, "get", "secret", name, "--ignore-not-found", "-o", "name"):
        return
    body = {
        "apiVersion": "v1",
        "kind": "Secret",
        "type": "Opaque",
        "metadata": {"name": name, "namespace": NAMESPACE},
        "stringData": data,
    }
    kubectl("create", "-f", "-", stdin=json.dumps(body))


def merged(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    """``base`` with ``extra`` merged in (maps merged key by key, anything else replaced)."""
    out = dict(base)
    for key, value in extra.items():
        old = out.get(key)
        out[key] = (
            merged(old, value) if isinstance(old, dict) and isinstance(value, dict) else value
        )
    return out


def install_platform(overrides: dict[str, Any] | None = None) -> None:
    """Steps 1-2 of the module docstring; ``overrides``: values merged over the demo's."""
    info("Supabase Auth (GoTrue) in the cluster, namespace saasodoo-auth")
    gotrue_cluster.up(NAMESPACE, timeout=300)
    auth = gotrue_cluster.api_env()
    info("the platform image into the real node's containerd")
    imported = subprocess.run(
        ["bash", str(ROOT / "scripts" / "realnode.sh"), "import", "saasodoo"],
        check=True, capture_output=True, text=True,
    )  # fmt: skip
    # Its reference stays <version> while the code changes: pods of an earlier import keep
    # the old image, so a new one restarts them (below).
    new_image = "importing image saasodoo" in imported.stderr
    tag = gotrue_cluster.image_refs()["saasodoo"].rsplit(":", 1)[1]
    gotrue_cluster.apply_namespace(NAMESPACE, "saasodoo-demo")
    ensure_secret("saasodoo-supabase", {"anon-key": auth["SAASODOO_API_SUPABASE_KEY"]})
    ensure_secret("saasodoo-session", {"secret-key": secrets.token_urlsafe(48)})
    copy_s3_keys()
    with tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False) as f:
        json.dump(
            merged(values(tag, auth["SAASODOO_API_SUPABASE_URL"]), overrides or {}), f
        )  # JSON is YAML
    try:
        info(f"charts/saasodoo into {NAMESPACE} (scripts/deploy.sh: install or upgrade, helm test)")
        subprocess.run(
            ["bash", str(ROOT / "scripts" / "deploy.sh"), "-f", f.name, "-n", NAMESPACE],
            check=True,
            env={**os.environ, "KUBECONFIG": gotrue_cluster.kubeconfig()},
        )
    finally:
        os.unlink(f.name)
    if new_image:
        for name in ("saasodoo-operator", "saasodoo-api"):
            kubectl("-n", NAMESPACE, "rollout", "restart", f"deploy/{name}")
        for name in ("saasodoo-operator", "saasodoo-api"):
            kubectl("-n", NAMESPACE, "rollout", "status", f"deploy/{name}", "--timeout=300s")


def apply_fake_node_tenants() -> None:
    docs = [
        {
            "apiVersion": "saasodoo.dev/v1alpha1",
            "kind": "OdooTenant",
            "metadata": {"name": tid, "namespace": NAMESPACE},
            "spec": {"adminEmail": f"admin@{tid}.example", "plan": plan, "nodePool": ""},
        }
        for tid, plan in FAKE_TENANTS.items()
    ]
    info(f"OdooTenants {', '.join(FAKE_TENANTS)} applied with kubectl (simulated nodes)")
    kubectl(
        "apply", "-f", "-", stdin=json.dumps({"apiVersion": "v1", "kind": "List", "items": docs})
    )


class Web:
    """The platform's API through Traefik on 127.0.0.1 (its default certificate)."""

    def __init__(self) -> None:
        self.ctx = ssl.create_default_context()
        self.ctx.check_hostname = False
        self.ctx.verify_mode = ssl.CERT_NONE
        self.token = ""

    def call(
        self, method: str, path: str, body: Any = None, host: str = WEB_HOST
    ) -> tuple[int, Any]:
        conn = http.client.HTTPSConnection("127.0.0.1", HTTPS_PORT, timeout=60, context=self.ctx)
        headers = {"Host": host, "Content-Type": "application/json"}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        try:
            conn.request(method, path, json.dumps(body) if body is not None else None, headers)
            resp = conn.getresponse()
            raw = resp.read().decode("utf-8", "replace")
        except OSError as exc:
            return 0, str(exc)
        finally:
            conn.close()
        try:
            return resp.status, json.loads(raw)
        except ValueError:
            return resp.status, raw


def wait(probe: Any, seconds: float, what: str) -> Any:
    deadline = time.monotonic() + seconds
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() > deadline:
            raise RuntimeError(f"{what}: not after {seconds:.0f}s")
        time.sleep(2)


def demo_tenant_through_the_api() -> str:
    web = Web()
    wait(lambda: web.call("GET", "/api/health")[0] == 200, 180, f"the API at https://{WEB_HOST}")
    email = f"demo-{secrets.token_hex(4)}@example.com"
    status, body = web.call(
        "POST", "/api/auth/register", {"email": email, "password": secrets.token_urlsafe(18)}
    )
    if status != 201 or not (body.get("session") or {}).get("access_token"):
        raise RuntimeError(f"sign-up through the API answered {status}: {body}")
    web.token = body["session"]["access_token"]
    info(f"signed up {email} through the API (GoTrue in the cluster)")
    # A tenant of the demo's earlier run belongs to that run's user: 404 to this one, and
    # its id taken (409): kept as it is.
    status, body = web.call("GET", f"/api/tenants/{DEMO_TENANT}")
    if status == 404:
        body_in = {"id": DEMO_TENANT, "admin_email": f"admin@{DEMO_TENANT}.example"}
        status, body = web.call("POST", "/api/tenants", body_in)
        if status == 409:
            info(f"tenant {DEMO_TENANT} exists (made by an earlier run's user); kept")
        elif status not in (200, 201, 202):
            raise RuntimeError(f"creating tenant {DEMO_TENANT} through the API: {status} {body}")
        else:
            info(
                f"tenant {DEMO_TENANT} created through the API: it runs on the real node (~1-2 min)"
            )
    elif status == 200:
        info(f"tenant {DEMO_TENANT} exists; kept")
    else:
        raise RuntimeError(f"reading tenant {DEMO_TENANT} through the API: {status} {body}")

    def ready() -> Any:
        got = kubectl("-n", NAMESPACE, "get", "odootenant", DEMO_TENANT, "-o", "json", check=False)
        obj = json.loads(got) if got else {}
        conds = (obj.get("status") or {}).get("conditions") or []
        return any(c["type"] == "Ready" and c["status"] == "True" for c in conds) and obj

    obj = wait(ready, 420, f"tenant {DEMO_TENANT} Ready")
    url = str(obj["status"]["url"])
    host = url.split("://", 1)[1].split(":", 1)[0].split("/", 1)[0]
    wait(
        lambda: web.call("GET", "/web/login", host=host)[0] == 200,
        120,
        f"{url}/web/login through Traefik",
    )
    return url


def main() -> int:
    try:
        install_platform()
        apply_fake_node_tenants()
        url = demo_tenant_through_the_api()
    except (RuntimeError, subprocess.CalledProcessError) as exc:
        info(f"ERROR: {exc}")
        return 1
    print(kubectl("-n", NAMESPACE, "get", "odootenants"))
    print(kubectl("-n", NAMESPACE, "get", "pods", "-o", "wide"))
    info(f"tenant {DEMO_TENANT} runs for real: {url}/web/login (Traefik's self-signed certificate)")
    info(
        f"the web UI: https://{WEB_HOST}:{HTTPS_PORT}/ (sign up, create a tenant, watch it"
        " become Ready, open its Odoo; Traefik's self-signed certificate)"
    )
    print(f"https://{WEB_HOST}:{HTTPS_PORT}/")
    return 0


if __name__ == "__main__":
    sys.exit(main())
