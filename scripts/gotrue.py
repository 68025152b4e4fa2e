#!/usr/bin/env python3
"""The real Supabase Auth server (GoTrue) on this machine, served the way Supabase serves it.

Three processes, each on 127.0.0.1 only:

- PostgreSQL (Debian's server binaries, package `postgresql`): a throw-away cluster, unless the
  caller brings one (the tests bring theirs). GoTrue gets a fresh database in it.
- GoTrue, built from source by ``scripts/install-tools.sh gotrue`` (tool cache); on start it
  migrates its database (schema ``auth``), then serves its API at the root (``/signup``, ...).
- nginx (Debian package `nginx`) as the gateway: GoTrue's routes under ``/auth/v1``, as
  Supabase's API gateway exposes them, so supabase-py (which always adds ``/auth/v1``) talks
  to it unchanged. For the tests it injects faults on demand (``GoTrue.fault()``): sign-up
  answers GoTrue's own 500, everything else the 502 of a gateway whose upstream is down.

Used by the tests (``tests/api/conftest.py``) and by ``make api AUTH=gotrue`` / ``make gotrue``::

    scripts/gotrue.py run -- CMD [ARGS...]   start it all, run CMD with SAASODOO_API_SUPABASE_*
                                             set to it, stop it all when CMD ends
    scripts/gotrue.py serve                  start it all, print those settings, wait for Ctrl-C

Accounts live in the throw-away database: they are gone when the command ends. No e-mail is
sent: sign-ups are confirmed at once (``GOTRUE_MAILER_AUTOCONFIRM``).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
PREFIX = "/auth/v1"
#: supabase-py wants a key; GoTrue itself does not check it (Supabase's gateway does).
ANON_KEY = "sb_publishable_local-gotrue"
AUTH_ROLE = "supabase_auth_admin"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_http(url: str, proc: subprocess.Popen[bytes], what: str, timeout: float = 60) -> None:
    """Until ``url`` answers 200; fail early when ``proc`` exits."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited with code {proc.returncode} while starting")
        try:
            with urllib.request.urlopen(url, timeout=2) as res:  # noqa: S310 - our own 127.0.0.1
                if res.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"{what} did not answer {url} within {timeout:.0f}s")


def stop_process(proc: subprocess.Popen[bytes] | None, sig: int = signal.SIGTERM) -> None:
    if proc is None or proc.poll() is not None:
        return
    proc.send_signal(sig)
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=5)


def tool_path(key: str, hint: str) -> Path:
    """A binary of the tool cache, from ``scripts/install-tools.sh --env``."""
    out = subprocess.run(
        ["bash", str(ROOT / "scripts" / "install-tools.sh"), "--env"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    for line in out.splitlines():
        name, _, value = line.partition("=")
        if name == key:
            path = Path(value)
            if not path.is_file():
                raise RuntimeError(f"{path} is missing: build it with {hint}")
            return path
    raise RuntimeError(f"scripts/install-tools.sh --env names no {key}")


def gotrue_binary() -> Path:
    return tool_path("SAASODOO_GOTRUE", "scripts/install-tools.sh gotrue (or make tools)")


def nginx_binary() -> Path:
    found = shutil.which("nginx") or "/usr/sbin/nginx"
    if not Path(found).is_file():
        raise RuntimeError("nginx not found: install Debian's `nginx` (scripts/install-apt.sh)")
    return Path(found)


# -- PostgreSQL ----------------------------------------------------------------------------------


def pg_bindir() -> Path:
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"))
    if not found:
        raise RuntimeError(
            "PostgreSQL server binaries not found under /usr/lib/postgresql: "
            "install Debian's `postgresql` (scripts/install-apt.sh)"
        )
    return found[-1].parent


@dataclass
class Postgres:
    """A throw-away PostgreSQL cluster: superuser ``postgres``, trust auth, 127.0.0.1 only.

    Owned by the ``postgres`` system user when run as root (PostgreSQL refuses root)."""

    base: Path
    port: int = 0
    bindir: Path = field(default_factory=pg_bindir)

    @property
    def data(self) -> Path:
        return self.base / "data"

    def _run(self, *cmd: str) -> None:
        full = ["runuser", "-u", "postgres", "--", *cmd] if os.geteuid() == 0 else list(cmd)
        proc = subprocess.run(full, capture_output=True, text=True, check=False, cwd=self.base)
        if proc.returncode != 0:
            raise RuntimeError(f"{' '.join(cmd)} failed:\n{proc.stdout}\n{proc.stderr}")

    def start(self) -> Postgres:
        self.base.mkdir(parents=True, exist_ok=True)
        if os.geteuid() == 0:
            shutil.chown(self.base, "postgres", "postgres")
        self.port = self.port or free_port()
        self._run(str(self.bindir / "initdb"), "-D", str(self.data), "-U", "postgres",
                  "--auth=trust", "--encoding=UTF8", "--locale=C")  # fmt: skip
        self._run(str(self.bindir / "pg_ctl"), "-D", str(self.data), "-l", str(self.base / "log"),
                  "-w", "start", "-o",
                  f"-h 127.0.0.1 -p {self.port} -k {self.base} -c fsync=off "
                  "-c full_page_writes=off")  # fmt: skip
        return self

    def stop(self) -> None:
        if (self.data / "postmaster.pid").exists():
            self._run(str(self.bindir / "pg_ctl"), "-D", str(self.data), "-m", "immediate",
                      "-w", "stop")  # fmt: skip

    def url(self, database: str = "postgres", user: str = "postgres", password: str = "") -> str:
        cred = f"{user}:{password}" if password else user
        return f"postgres://{cred}@127.0.0.1:{self.port}/{database}"


def psql(admin_url: str, sql: str) -> None:
    proc = subprocess.run(
        ["psql", "--no-psqlrc", "-X", "-q", "-v", "ON_ERROR_STOP=1", admin_url],
        input=sql,
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "PGOPTIONS": "-c client_min_messages=warning"},
    )
    if proc.returncode != 0:
        raise RuntimeError(f"psql failed: {proc.stderr.strip()}")


def prepare_database(pg_host: str, pg_port: int, database: str, password: str) -> str:
    """A fresh database for GoTrue; returns the URL GoTrue connects with.

    GoTrue's migrations expect what a Supabase database has: a login role
    ``supabase_auth_admin`` whose ``search_path`` is ``auth``, a schema ``auth`` it owns, and a
    role ``postgres`` (one migration grants to it)."""
    admin = f"postgres://postgres@{pg_host}:{pg_port}"
    psql(f"{admin}/postgres", f'CREATE DATABASE "{database}"')
    psql(
        f"{admin}/{database}",
        f"""
        DO $$ BEGIN
          IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'postgres') THEN
            CREATE ROLE postgres NOLOGIN;
          END IF;
          IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '{AUTH_ROLE}') THEN
            CREATE ROLE {AUTH_ROLE} NOINHERIT CREATEROLE LOGIN NOREPLICATION;
          END IF;
        END $$;
        ALTER ROLE {AUTH_ROLE} PASSWORD '{password}';
        ALTER ROLE {AUTH_ROLE} SET search_path = auth;
        CREATE SCHEMA auth AUTHORIZATION {AUTH_ROLE};
        GRANT CREATE ON DATABASE "{database}" TO {AUTH_ROLE};
        """,
    )
    return f"postgres://{AUTH_ROLE}:{password}@{pg_host}:{pg_port}/{database}?sslmode=disable"


# -- signing keys --------------------------------------------------------------------------------


def es256_private_jwk(kid: str | None = None) -> dict[str, Any]:
    """A new P-256 private key as the JWK GoTrue signs with (``GOTRUE_JWT_KEYS``)."""
    from cryptography.hazmat.primitives.asymmetric import ec
    from jwt.algorithms import ECAlgorithm

    jwk: dict[str, Any] = json.loads(ECAlgorithm.to_jwk(ec.generate_private_key(ec.SECP256R1())))
    kid = kid or secrets.token_hex(8)
    return {**jwk, "kid": kid, "alg": "ES256", "key_ops": ["sign", "verify"]}


# -- GoTrue behind the gateway -------------------------------------------------------------------

NGINX_CONF = """\
daemon off;
master_process off;
pid {dir}/nginx.pid;
error_log {dir}/nginx-error.log warn;
events {{ worker_connections 256; }}
http {{
  access_log off;
  client_body_temp_path {dir}/nginx-tmp/body;
  proxy_temp_path {dir}/nginx-tmp/proxy;
  fastcgi_temp_path {dir}/nginx-tmp/fastcgi;
  uwsgi_temp_path {dir}/nginx-tmp/uwsgi;
  scgi_temp_path {dir}/nginx-tmp/scgi;
  proxy_http_version 1.1;
  proxy_set_header Host $http_host;
  proxy_set_header X-Forwarded-Proto $scheme;
  # Supabase's gateway: GoTrue's routes under {prefix}/. While the file {dir}/fault exists
  # (GoTrue.fault()), it fails as when GoTrue is in trouble: sign-up answers GoTrue's own
  # 500, every other route the gateway's 502; the keys still come (a CDN caches them).
  server {{
    listen 127.0.0.1:{port};
    location = {prefix}/.well-known/jwks.json {{
      proxy_pass http://127.0.0.1:{upstream}/.well-known/jwks.json;
    }}
    location = {prefix}/signup {{
      default_type application/json;
      if (-f {dir}/fault) {{
        return 500 '{{"code":500,"error_code":"unexpected_failure","msg":"Unexpected failure"}}';
      }}
      proxy_pass http://127.0.0.1:{upstream}/signup;
    }}
    location {prefix}/ {{
      if (-f {dir}/fault) {{ return 502; }}
      proxy_pass http://127.0.0.1:{upstream}/;
    }}
    location / {{ return 404; }}
  }}
}}
"""


@dataclass
class GoTrue:
    """One GoTrue process and its nginx gateway. ``url`` is what ``SUPABASE_URL`` would be."""

    workdir: Path
    database_url: str
    jwt_secret: str = field(default_factory=lambda: secrets.token_urlsafe(32))
    #: private JWKs (``GOTRUE_JWT_KEYS``): tokens are signed with the one whose key_ops has
    #: "sign"; none: HS256 with ``jwt_secret``.
    jwt_keys: list[dict[str, Any]] = field(default_factory=list)
    #: ``GOTRUE_JWT_ISSUER`` is ``<url>/auth/v1`` as on Supabase; False: unset (no ``iss``).
    issuer: bool = True
    jwt_exp: int = 3600
    site_url: str = "http://127.0.0.1:8000"
    port: int = 0
    upstream_port: int = 0
    extra_env: dict[str, str] = field(default_factory=dict)
    _gotrue: subprocess.Popen[bytes] | None = field(default=None, repr=False)
    _nginx: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def upstream_url(self) -> str:
        """GoTrue itself, without the prefix (what the gateway forwards to)."""
        return f"http://127.0.0.1:{self.upstream_port}"

    @property
    def issuer_url(self) -> str:
        return self.url + PREFIX

    @property
    def log(self) -> Path:
        return self.workdir / "gotrue.log"

    def env(self) -> dict[str, str]:
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "GOTRUE_DB_DRIVER": "postgres",
            "DATABASE_URL": self.database_url,
            "GOTRUE_API_HOST": "127.0.0.1",
            "PORT": str(self.upstream_port),
            "API_EXTERNAL_URL": self.issuer_url,
            "GOTRUE_SITE_URL": self.site_url,
            "GOTRUE_JWT_SECRET": self.jwt_secret,
            "GOTRUE_JWT_EXP": str(self.jwt_exp),
            "GOTRUE_JWT_AUD": "authenticated",
            "GOTRUE_JWT_DEFAULT_GROUP_NAME": "authenticated",
            "GOTRUE_MAILER_AUTOCONFIRM": "true",
            "GOTRUE_EXTERNAL_PHONE_ENABLED": "false",
            "GOTRUE_LOG_LEVEL": "warn",
        }
        if self.issuer:
            env["GOTRUE_JWT_ISSUER"] = self.issuer_url
        if self.jwt_keys:
            env["GOTRUE_JWT_KEYS"] = json.dumps(self.jwt_keys)
        return {**env, **self.extra_env}

    def start(self, binary: Path | None = None) -> GoTrue:
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.port = self.port or free_port()
        self.upstream_port = self.upstream_port or free_port()
        try:
            self._start_gotrue(binary or gotrue_binary())
            self._start_nginx()
        except BaseException:
            self.stop()
            raise
        return self

    def _start_gotrue(self, binary: Path) -> None:
        with self.log.open("ab") as log:  # no sub-command: migrate, then serve
            self._gotrue = subprocess.Popen(
                [str(binary)], env=self.env(), stdout=log, stderr=log, stdin=subprocess.DEVNULL
            )
        try:
            wait_http(f"{self.upstream_url}/health", self._gotrue, "GoTrue", timeout=120)
        except RuntimeError as exc:
            tail = self.log.read_text(errors="replace").splitlines()[-15:]
            raise RuntimeError(f"{exc}; end of {self.log}:\n" + "\n".join(tail)) from None

    def _start_nginx(self) -> None:
        (self.workdir / "nginx-tmp").mkdir(exist_ok=True)
        conf = self.workdir / "nginx.conf"
        conf.write_text(
            NGINX_CONF.format(
                dir=self.workdir,
                prefix=PREFIX,
                port=self.port,
                upstream=self.upstream_port,
            )
        )
        self._nginx = subprocess.Popen(
            [
                str(nginx_binary()),
                "-p",
                str(self.workdir),
                "-c",
                str(conf),
                "-e",
                str(self.workdir / "nginx-error.log"),
            ],
            stdin=subprocess.DEVNULL,
        )
        wait_http(f"{self.issuer_url}/health", self._nginx, "nginx", timeout=30)

    @property
    def pids(self) -> list[int]:
        """GoTrue's and nginx's process ids (while they run)."""
        return [p.pid for p in (self._gotrue, self._nginx) if p is not None and p.poll() is None]

    @contextlib.contextmanager
    def fault(self) -> Iterator[None]:
        """Meanwhile the gateway fails (sign-up: 500 from GoTrue; the rest: 502; not the JWKS)."""
        flag = self.workdir / "fault"
        flag.touch()
        try:
            yield
        finally:
            flag.unlink()

    def stop(self) -> None:
        stop_process(self._nginx, signal.SIGQUIT)
        stop_process(self._gotrue)
        self._nginx = self._gotrue = None

    def api_env(self) -> dict[str, str]:
        """The saasodoo API's settings for this server."""
        env = {"SAASODOO_API_SUPABASE_URL": self.url, "SAASODOO_API_SUPABASE_KEY": ANON_KEY}
        if not self.jwt_keys:
            env["SAASODOO_API_SUPABASE_JWT_SECRET"] = self.jwt_secret
        if not self.issuer:
            env["SAASODOO_API_SUPABASE_REQUIRE_ISSUER"] = "false"
        return env


# -- the command ---------------------------------------------------------------------------------


@dataclass
class Stack:
    """PostgreSQL + GoTrue + nginx in one temporary directory (``make api AUTH=gotrue``)."""

    port: int
    site_url: str
    base: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="saasodoo-gotrue-")))
    pg: Postgres | None = None
    gotrue: GoTrue | None = None

    def start(self) -> GoTrue:
        binary = gotrue_binary()
        nginx_binary()
        self.base.chmod(0o711)  # PostgreSQL runs as `postgres` below it
        self.pg = Postgres(self.base / "pg").start()
        db_url = prepare_database("127.0.0.1", self.pg.port, "auth", secrets.token_urlsafe(16))
        self.gotrue = GoTrue(
            self.base / "gotrue",
            db_url,
            jwt_keys=[es256_private_jwk()],
            site_url=self.site_url,
            port=self.port,
        ).start(binary)
        return self.gotrue

    def stop(self) -> None:
        if self.gotrue:
            self.gotrue.stop()
        if self.pg:
            self.pg.stop()
        shutil.rmtree(self.base, ignore_errors=True)


def _terminate(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, default=54321, help="gateway port (default 54321)")
    parser.add_argument(
        "--site-url", default="http://127.0.0.1:8000", help="where sign-up links point"
    )
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("serve", help="run until Ctrl-C, printing the API settings")
    run = sub.add_parser("run", help="run CMD with the API settings in its environment")
    run.add_argument("cmd", nargs=argparse.REMAINDER, help="-- CMD [ARGS...]")
    args = parser.parse_args(argv)
    cmd = [c for c in getattr(args, "cmd", []) if c != "--"] if args.command == "run" else []
    if args.command == "run" and not cmd:
        parser.error("run needs a command: scripts/gotrue.py run -- CMD [ARGS...]")

    signal.signal(signal.SIGTERM, _terminate)
    stack = Stack(args.port, args.site_url)
    try:
        gotrue = stack.start()
        print(f"[gotrue] Supabase Auth (GoTrue) at {gotrue.issuer_url}; accounts vanish on stop")
        for key, value in gotrue.api_env().items():
            print(f"export {key}={value}")
        sys.stdout.flush()
        if args.command == "serve":
            while True:
                time.sleep(3600)
        return subprocess.call(cmd, env={**os.environ, **gotrue.api_env()})
    except KeyboardInterrupt:
        return 0
    except RuntimeError as exc:
        print(f"[gotrue] ERROR: {exc}", file=sys.stderr)
        return 1
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)  # a second signal must not cut the clean-up
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        stack.stop()


if __name__ == "__main__":
    sys.exit(main())
