#!/usr/bin/env python3
"""Supabase Auth (GoTrue) inside the cluster, on the real node: the auth server the platform's
API uses in `make demo` and in the real-node tests, as a Supabase project would serve it.

    scripts/gotrue_cluster.py up     # build/import the image, apply, wait until it answers
    scripts/gotrue_cluster.py env    # the API's SAASODOO_API_SUPABASE_* settings for it
    scripts/gotrue_cluster.py down   # delete the namespace (accounts are gone)

What it runs (``gotrue-cluster/manifests.yaml``), in namespace ``saasodoo-auth`` (Pod Security
``restricted``):

- ``gotrue-db``: PostgreSQL (the real node's ``postgres`` image) with what GoTrue's migrations
  expect of a Supabase database (``scripts/gotrue.py``'s ``prepare_database``: a login role
  ``supabase_auth_admin`` owning schema ``auth``), made by an init script on first start. Its
  data lives in an ``emptyDir``: accounts last as long as the pod, as for a demo.
- ``gotrue``: GoTrue built from the vendored source (``images/build.sh gotrue``), listening on
  the pod's loopback only, and beside it Traefik (the real node's ``traefik`` image, file
  provider) as Supabase's API gateway: GoTrue's routes under ``/auth/v1``, where supabase-py
  looks for them. Service ``auth`` port 8000. Tokens are signed with a new ES256 key (its
  public half at ``/auth/v1/.well-known/jwks.json``, where the API reads it); the issuer is
  the Service's in-cluster URL + ``/auth/v1``.
- NetworkPolicies: nothing comes in but the API's namespace (``saasodoo-system`` by default)
  and the real nodes' own addresses (a development API on this machine) to the gateway, and
  GoTrue to its database; GoTrue goes out only to its database and DNS.

Secrets (database passwords, the signing key, GoTrue's JWT secret) are generated here into the
Secret ``gotrue`` and never printed. Sign-ups are confirmed at once (no mail is sent).

Environment: ``SAASODOO_CLUSTER_NAME`` (as ``scripts/cluster.sh``), ``KUBECONFIG`` (default: the
simulated cluster's), ``SAASODOO_PLATFORM_NAMESPACE`` (``saasodoo-system``).
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import subprocess
import sys
from pathlib import Path
from string import Template
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from gotrue import ANON_KEY, AUTH_ROLE, PREFIX, es256_private_jwk, tool_path  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
NAMESPACE = "saasodoo-auth"
SERVICE = "auth"
PORT = 8000
#: Where the platform's API reaches it (and the tokens' issuer, with PREFIX).
URL = f"http://{SERVICE}.{NAMESPACE}.svc.cluster.local:{PORT}"
NODE_LABEL = "saasodoo.dev/real-node"
NODE_RANGE = "10.250.0.0/24"  # scripts/realnode.sh: the nodes' own private addresses
MANIFESTS = Path(__file__).resolve().parent / "gotrue-cluster" / "manifests.yaml"


def image_refs() -> dict[str, str]:
    out = subprocess.run(
        ["bash", str(ROOT / "images" / "build.sh"), "--refs"],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    return dict(line.split("=", 1) for line in out.splitlines() if "=" in line)


def kubeconfig() -> str:
    if os.environ.get("KUBECONFIG"):
        return os.environ["KUBECONFIG"]
    out = subprocess.run(
        ["bash", str(ROOT / "scripts" / "cluster.sh"), "kubeconfig"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    return out.stdout.strip()


def kubectl(*args: str, stdin: str | None = None, check: bool = True) -> str:
    cmd = [str(tool_path("SAASODOO_KUBECTL", "make tools")), "--kubeconfig", kubeconfig(), *args]
    done = subprocess.run(cmd, input=stdin, capture_output=True, text=True, check=False)
    if check and done.returncode != 0:
        raise RuntimeError(f"kubectl {' '.join(args[:3])}: {done.stderr.strip()}")
    return done.stdout


def secret() -> dict[str, Any]:
    """The Secret ``gotrue``: new passwords and signing key (only when it does not exist:
    the database keeps the passwords it was initialized with)."""
    db_password = secrets.token_urlsafe(24)
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "gotrue", "namespace": NAMESPACE},
        "type": "Opaque",
        "stringData": {
            "postgres-password": secrets.token_urlsafe(24),
            "auth-db-password": db_password,
            "database-url": f"postgres://{AUTH_ROLE}:{db_password}@gotrue-db:5432/auth"
            "?sslmode=disable",
            "jwt-secret": secrets.token_urlsafe(32),
            "jwt-keys": json.dumps([es256_private_jwk()]),
        },
    }


def manifests(refs: dict[str, str], platform_ns: str) -> str:
    """Everything but the Secret (``gotrue-cluster/manifests.yaml``, filled in)."""
    return Template(MANIFESTS.read_text()).substitute(
        NAMESPACE=NAMESPACE,
        SERVICE=SERVICE,
        PORT=PORT,
        URL=URL,
        SITE_URL=URL,
        PREFIX=PREFIX,
        AUTH_ROLE=AUTH_ROLE,
        NODE_LABEL=NODE_LABEL,
        NODE_RANGE=NODE_RANGE,
        PLATFORM_NAMESPACE=platform_ns,
        POSTGRES_IMAGE=refs["postgres"],
        GOTRUE_IMAGE=refs["gotrue"],
        TRAEFIK_IMAGE=refs["traefik"],
    )


def api_env() -> dict[str, str]:
    """The platform API's settings for this auth server (keys come from its JWKS)."""
    return {"SAASODOO_API_SUPABASE_URL": URL, "SAASODOO_API_SUPABASE_KEY": ANON_KEY}


def apply_namespace(name: str, manager: str) -> None:
    """Namespace ``name`` with Pod Security ``restricted`` enforced (server-side apply)."""
    body = {"apiVersion": "v1", "kind": "Namespace", "metadata": {
        "name": name, "labels": {"pod-security.kubernetes.io/enforce": "restricted"}}}  # fmt: skip
    kubectl("apply", "--server-side", f"--field-manager={manager}", "-f", "-",
            stdin=json.dumps(body))  # fmt: skip


def up(platform_ns: str, timeout: int) -> None:
    subprocess.run(["bash", str(ROOT / "scripts" / "realnode.sh"), "import", "gotrue", "postgres",
                    "traefik"], check=True, stdout=subprocess.DEVNULL)  # fmt: skip
    apply_namespace(NAMESPACE, "saasodoo-auth")
    if not kubectl("-n", NAMESPACE, "get", "secret", "gotrue", "--ignore-not-found", "-o", "name"):
        kubectl("create", "-f", "-", stdin=json.dumps(secret()))
    kubectl("apply", "--server-side", "--force-conflicts", "--field-manager=saasodoo-auth",
            "-f", "-", stdin=manifests(image_refs(), platform_ns))  # fmt: skip
    for name in ("gotrue-db", "gotrue"):
        try:
            kubectl("-n", NAMESPACE, "rollout", "status", f"deploy/{name}", f"--timeout={timeout}s")
        except RuntimeError as exc:
            pods = kubectl("-n", NAMESPACE, "get", "pods", "-o", "wide", check=False)
            logs = kubectl("-n", NAMESPACE, "logs", f"deploy/{name}", "--all-containers",
                           "--tail=15", check=False)  # fmt: skip
            raise RuntimeError(f"{exc}\n{pods}\nlast lines of deploy/{name}:\n{logs}") from None
    print(f"[gotrue] Supabase Auth at {URL}{PREFIX} (namespace {NAMESPACE})", file=sys.stderr)


def down() -> None:
    kubectl("delete", "namespace", NAMESPACE, "--ignore-not-found", "--wait=true")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("command", choices=["up", "env", "down"])
    parser.add_argument("--platform-namespace",
                        default=os.environ.get("SAASODOO_PLATFORM_NAMESPACE", "saasodoo-system"),
                        help="the namespace whose pods may reach the auth server")  # fmt: skip
    parser.add_argument("--timeout", type=int, default=180, help="seconds to wait for Ready")
    args = parser.parse_args(argv)
    try:
        if args.command == "up":
            up(args.platform_namespace, args.timeout)
        elif args.command == "down":
            down()
        for key, value in api_env().items():
            if args.command != "down":
                print(f"{key}={value}")
    except (RuntimeError, subprocess.CalledProcessError) as exc:
        print(f"[gotrue] ERROR: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
