"""The real Odoo 18 server for the tests, run from the chart's own rendered pods.

- The server: an unmodified, trimmed Odoo 18.0 source tree (a tarball, `SAASODOO_ODOO_TARBALL`,
  default `../shared/vendor/odoo/odoo-18.0-504b0670-min.tar.xz` relative to the project root),
  unpacked once into the tool cache (`<tools dir>/odoo-<sha256 prefix>/`, keyed by the tarball's
  hash), precompiled, and run by Debian's `/usr/bin/python3` with the Debian packages of the
  vendor's list (installed by scripts/install-apt.sh).
- The pods: `LocalPod` runs a container of a workload rendered by `helm template` as the kubelet
  would: the ConfigMap volumes are files written from the rendered ConfigMaps, emptyDirs and
  PVCs are directories, the environment is the container's (secretKeyRefs filled from the test's
  Secrets), the command and args are the container's with each mount path replaced by its
  directory. Everything runs as an unprivileged user (`nobody` when the tests run as root; Odoo
  refuses root, the pods run as `odoo`).
- The image's `odoo` command is a small script on the pod's PATH that runs the tree's odoo-bin
  and adds only what differs on a shared test machine: the data_dir (the pod's /var/lib/odoo
  volume is a directory here), the address (127.0.0.1; the pod listens on all its addresses) and
  free ports instead of 8069/8072. Everything else comes from the rendered odoo.conf.
"""

from __future__ import annotations

import base64
import contextlib
import copy
import fcntl
import hashlib
import json
import os
import shutil
import signal
import subprocess
import tarfile
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import yaml

from saasodoo.adapters.catalog import load_catalog
from saasodoo.core.spec import TenantSpec
from saasodoo.core.values import (
    ADMIN_SECRET_KEY,
    ADMIN_SECRET_NAME,
    Platform,
    compute_values,
    helm_merge,
)
from tests.backups.helpers import PgServer
from tests.chart.helpers import containers, one, pod_template, render
from tests.servers import free_port
from tests.support import ROOT

#: The Secret of the external database's role (the chart names it in `externalDatabase`).
DB_SECRET = "tenant-db"
#: Admin passwords of the test tenants, as saasodoo writes them into `saasodoo-admin`.
ADMIN_PASSWORD = "Adm1n-pässwörd-ç"

TARBALL_ENV = "SAASODOO_ODOO_TARBALL"
DEFAULT_TARBALL = "../shared/vendor/odoo/odoo-18.0-504b0670-min.tar.xz"
#: Debian's interpreter, with the python3-* packages Odoo needs (not the venv's).
PYTHON = "/usr/bin/python3"
RUN_UID = 65534  # nobody / nogroup, when the tests run as root
START_TIMEOUT = 180.0


def tarball() -> Path:
    path = Path(os.environ.get(TARBALL_ENV) or DEFAULT_TARBALL)
    path = path if path.is_absolute() else (ROOT / path).resolve()
    if not path.is_file():
        raise AssertionError(
            f"{TARBALL_ENV}: Odoo 18 tarball not found at {path} "
            f"(default {DEFAULT_TARBALL}, relative to the project root)"
        )
    return path


def tools_dir() -> Path:
    """Where scripts/lib.sh keeps the pinned tools."""
    explicit = os.environ.get("SAASODOO_TOOLS_DIR")
    if explicit:
        return Path(explicit)
    cache = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(cache) / "saasodoo" / "tools"


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def unpack(archive: Path) -> Path:
    """The Odoo tree of `archive` (the folder holding odoo-bin), unpacked and precompiled once
    into the tool cache; concurrent sessions wait for each other on a lock file."""
    cache = tools_dir()
    cache.mkdir(parents=True, exist_ok=True)
    dest = cache / f"odoo-{sha256(archive)[:16]}"
    with (cache / f".{dest.name}.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (dest / ".complete").exists():
            work = Path(tempfile.mkdtemp(prefix=f"{dest.name}.partial-", dir=cache))
            with tarfile.open(archive) as tar:
                tar.extractall(work, filter="data")
            # The run user cannot write __pycache__ in the cache: compile everything now.
            subprocess.run(
                [PYTHON, "-m", "compileall", "-q", "-j", "0", str(work)],
                stdout=subprocess.DEVNULL,
                check=True,
            )
            (work / ".complete").write_text(archive.name + "\n")
            work.chmod(0o755)
            shutil.rmtree(dest, ignore_errors=True)
            work.rename(dest)
    found = sorted(dest.glob("*/odoo-bin"))
    if len(found) != 1:
        raise AssertionError(f"expected one odoo-bin under {dest}, found {found}")
    return found[0].parent


def _link_or_copy(src: str, dst: str) -> None:
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)


def reachable_tree(tree: Path, root: Path) -> Path:
    """`tree` as the run user can read it. The tool cache is usually under root's home (mode
    0700), so when the tests run as root the tree is hard-linked (or copied, across file
    systems) into the session's scratch root, which the run user can traverse."""
    if os.geteuid() != 0:
        return tree
    dest = root / "tree" / tree.name
    shutil.copytree(tree, dest, copy_function=_link_or_copy, symlinks=True)
    for d in [root / "tree", *[p for p in dest.rglob("*") if p.is_dir()], dest]:
        d.chmod(0o755)
    return dest


def run_as() -> list[str]:
    """Prefix running a command as the unprivileged user (nothing when not root)."""
    if os.geteuid() != 0:
        return []
    return ["setpriv", f"--reuid={RUN_UID}", f"--regid={RUN_UID}", "--clear-groups", "--"]


def give(path: Path) -> None:
    """Hand a directory (recursively) to the run user."""
    if os.geteuid() != 0:
        return
    for p in [path, *path.rglob("*")]:
        os.chown(p, RUN_UID, RUN_UID, follow_symlinks=False)


@dataclass
class Harness:
    """What every Odoo test needs: the tree, the PostgreSQL server, helm, a scratch root."""

    tree: Path
    pg: PgServer
    helm: Path
    root: Path
    processes: list[OdooProcess] = field(default_factory=list)

    def scratch(self, name: str) -> Path:
        path = Path(tempfile.mkdtemp(prefix=f"{name}-", dir=self.root))
        path.chmod(0o755)
        give(path)
        return path

    def start(
        self, argv: list[str], *, env: dict[str, str], cwd: Path, log: Path, url: str,
        gevent_port: int, wait_health: bool = True,
    ) -> OdooProcess:  # fmt: skip
        """Start a long-running Odoo in its own process group; stopped at session end."""
        with log.open("wb") as out:
            proc = subprocess.Popen(
                argv, env=env, cwd=cwd, stdout=out, stderr=subprocess.STDOUT,
                start_new_session=True,
            )  # fmt: skip
        odoo = OdooProcess(proc, log, url, gevent_port)
        self.processes.append(odoo)
        if wait_health:
            odoo.wait_healthy()
        return odoo

    def stop_all(self) -> None:
        for proc in self.processes:
            proc.stop()


def secret_value(secrets: dict[tuple[str, str], str], ref: dict[str, Any]) -> str:
    key = (ref["name"], ref["key"])
    if key not in secrets:
        raise AssertionError(
            f"the chart reads Secret {key[0]} key {key[1]}, which the test does not provide"
        )
    return secrets[key]


class LocalPod:
    """A rendered pod's volumes as directories, and its containers run as local processes."""

    def __init__(
        self,
        harness: Harness,
        docs: list[dict[str, Any]],
        workload: dict[str, Any],
        *,
        claims: dict[str, Path],
        secrets: dict[tuple[str, str], str],
        name: str,
    ) -> None:
        self.harness = harness
        self.spec = pod_template(workload)["spec"]
        self.secrets = secrets
        self.root = harness.scratch(name)
        self.http_port = free_port()
        self.gevent_port = free_port()
        configmaps = {d["metadata"]["name"]: d for d in docs if d["kind"] == "ConfigMap"}
        self.volumes: dict[str, Path] = {}
        for volume in self.spec.get("volumes", []):
            vname = volume["name"]
            if "configMap" in volume:
                path = self.root / "volumes" / vname
                path.mkdir(parents=True)
                for key, text in configmaps[volume["configMap"]["name"]]["data"].items():
                    (path / key).write_text(text)
            elif "emptyDir" in volume:
                path = self.root / "volumes" / vname
                path.mkdir(parents=True)
            elif "persistentVolumeClaim" in volume:
                path = claims[volume["persistentVolumeClaim"]["claimName"]]
            else:
                raise AssertionError(f"volume {vname}: kind not handled by the harness")
            self.volumes[vname] = path
        self.bin = self.root / "bin"
        self.bin.mkdir()
        give(self.root)

    def container(self, name: str) -> dict[str, Any]:
        found = [c for c in containers(self.spec) if c["name"] == name]
        assert len(found) == 1, f"container {name}: {[c['name'] for c in containers(self.spec)]}"
        return found[0]

    def mounts(self, container: dict[str, Any]) -> dict[str, Path]:
        return {m["mountPath"]: self.volumes[m["name"]] for m in container.get("volumeMounts", [])}

    def local(self, container: dict[str, Any], value: str) -> str:
        """`value` with a mount path of the container replaced by its directory."""
        for mount, path in sorted(self.mounts(container).items(), key=lambda m: -len(m[0])):
            if value == mount or value.startswith(mount + "/"):
                return str(path) + value[len(mount) :]
            if "=" in value:
                flag, _, rest = value.partition("=")
                if rest == mount or rest.startswith(mount + "/"):
                    return f"{flag}={path}{rest[len(mount) :]}"
        return value

    def env(self, container: dict[str, Any], extra: dict[str, str] | None = None) -> dict[str, str]:
        out = {
            "PATH": f"{self.bin}:{self.harness.pg.bindir}:/usr/bin:/bin",
            "HOME": str(self.root),
            "LANG": "C.UTF-8",
        }
        for var in container.get("env", []):
            if "value" in var:
                out[var["name"]] = self.local(container, var["value"])
            else:
                out[var["name"]] = secret_value(self.secrets, var["valueFrom"]["secretKeyRef"])
        out.update(extra or {})
        return out

    def write_odoo_command(self, container: dict[str, Any]) -> None:
        """The image's `odoo` command: see the module's docstring for the three added options."""
        data_dir = self.mounts(container).get("/var/lib/odoo")
        if data_dir is None:
            return
        script = self.bin / "odoo"
        script.write_text(
            "#!/bin/sh\n"
            f'exec {PYTHON} {self.harness.tree}/odoo-bin "$@" --data-dir={data_dir} '
            f"--http-interface=127.0.0.1 --http-port={self.http_port} "
            f"--gevent-port={self.gevent_port}\n"
        )
        script.chmod(0o755)

    def argv(self, container: dict[str, Any]) -> list[str]:
        self.write_odoo_command(container)
        return [
            self.local(container, a)
            for a in [*container.get("command", []), *container.get("args", [])]
        ]

    def run(
        self, name: str, extra_env: dict[str, str] | None = None, timeout: float = 600
    ) -> subprocess.CompletedProcess[str]:
        """Run a container to completion (an init container, a Job's container)."""
        container = self.container(name)
        return subprocess.run(
            [*run_as(), *self.argv(container)],
            env=self.env(container, extra_env),
            cwd=self.root,
            capture_output=True,
            text=True,
            check=False,
            timeout=timeout,
        )

    def run_init_containers(self) -> None:
        """The pod's init containers one after the other, each to success, as the kubelet runs
        them. One that runs another image than Odoo's (the Jobs' `pg-client`, in the
        PostgreSQL image) runs on this machine's Debian PostgreSQL, whose binaries are on
        PATH as they are in that image."""
        for init in self.spec.get("initContainers", []):
            done = self.run(init["name"])
            assert done.returncode == 0, f"{init['name']}: {done.stdout}{done.stderr}"

    def run_job(
        self, name: str, extra_env: dict[str, str] | None = None, timeout: float = 600
    ) -> subprocess.CompletedProcess[str]:
        """Run a Job's pod: its init containers, then the container ``name`` to completion."""
        self.run_init_containers()
        return self.run(name, extra_env, timeout)

    def boot(self, *, wait_health: bool = True) -> OdooProcess:
        """Start the pod as the kubelet does: its init containers, then its (one) container."""
        self.run_init_containers()
        (main,) = self.spec["containers"]
        return self.start(main["name"], wait_health=wait_health)

    def start(self, name: str = "odoo", *, wait_health: bool = True) -> OdooProcess:
        """Start a long-running container (Odoo); stopped by the harness at session end."""
        container = self.container(name)
        return self.harness.start(
            [*run_as(), *self.argv(container)],
            env=self.env(container),
            cwd=self.root,
            log=self.root / f"{name}.log",
            url=f"http://127.0.0.1:{self.http_port}",
            gevent_port=self.gevent_port,
            wait_health=wait_health,
        )


@dataclass
class OdooProcess:
    proc: subprocess.Popen[bytes]
    log: Path
    url: str
    gevent_port: int

    def wait_healthy(self, timeout: float = START_TIMEOUT) -> float:
        """Seconds until /web/health answers 200."""
        start = time.monotonic()
        while time.monotonic() - start < timeout:
            if self.proc.poll() is not None:
                raise AssertionError(f"Odoo exited with {self.proc.returncode}:\n{self.tail()}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(self.url + "/web/health", timeout=5).status_code == 200:
                    return time.monotonic() - start
            time.sleep(0.2)
        raise AssertionError(f"no /web/health 200 after {timeout}s:\n{self.tail()}")

    def tail(self, lines: int = 40) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])

    def stop(self) -> None:
        """SIGTERM to Odoo's process group (its workers, gevent process), SIGKILL if it lingers."""
        if self.proc.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)
        # workers left behind after the master's exit
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)


class Rpc:
    """A JSON-RPC session with an Odoo server (its cookie jar holds the session)."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.http = httpx.Client(base_url=url, timeout=120)
        self.uid: int | None = None

    def call(self, path: str, params: dict[str, Any]) -> Any:
        body = {"jsonrpc": "2.0", "method": "call", "id": 1, "params": params}
        resp = self.http.post(path, json=body)
        resp.raise_for_status()
        data = resp.json()
        if "error" in data:
            raise RpcError(json.dumps(data["error"])[:2000])
        return data.get("result")  # absent when the method returned None

    def login(self, db: str, login: str, password: str) -> int:
        result = self.call(
            "/web/session/authenticate", {"db": db, "login": login, "password": password}
        )
        self.uid = int(result["uid"])
        return self.uid

    def model(self, model: str, method: str, *args: Any, **kwargs: Any) -> Any:
        return self.call(
            f"/web/dataset/call_kw/{model}/{method}",
            {"model": model, "method": method, "args": list(args), "kwargs": kwargs},
        )

    def close(self) -> None:
        self.http.close()


@dataclass
class Tenant:
    """A tenant as saasodoo computes its values (starter plan), on the local PostgreSQL server
    as an external database (the only change: the chart's own PostgreSQL is a pod)."""

    harness: Harness
    id: str
    email: str
    claims: dict[str, Path] = field(default_factory=dict)
    filestore_claim: str = ""

    @property
    def db(self) -> str:
        return self.id

    def values(self, **config: Any) -> dict[str, Any]:
        spec = TenantSpec(id=self.id, admin_email=self.email, plan="starter")
        computed = compute_values(spec, load_catalog(ROOT / "values"), Platform("example.com"))
        local = {
            "postgresql": {"enabled": False},
            "externalDatabase": {
                "host": self.harness.pg.host,
                "port": self.harness.pg.port,
                "database": self.db,
                "user": "odoo",
                "existingSecret": DB_SECRET,
                "existingSecretKey": "password",
                "sslmode": "disable",
            },
            "networkPolicy": {
                "egress": {
                    "externalDatabase": {
                        "enabled": True,
                        "to": [{"ipBlock": {"cidr": f"{self.harness.pg.host}/32"}}],
                    }
                }
            },
            "odoo": {"config": config.pop("config", {}), **config},
        }
        return helm_merge(computed.values, local)

    def render(self, **config: Any) -> list[dict[str, Any]]:
        path = self.harness.scratch(f"values-{self.id}") / "values.yaml"
        path.write_text(yaml.safe_dump(self.values(**config)))
        return render(self.harness.helm, "--values", str(path), release=self.id)

    def secrets(self, docs: list[dict[str, Any]]) -> dict[tuple[str, str], str]:
        """The rendered Secrets (generated master password) plus those saasodoo and the
        operator create beside the release: the admin password and the database role's.
        `postgres-password` beside the role's password is what the chart's own PostgreSQL
        Secret holds: restores then create their scratch database as the superuser."""
        out: dict[tuple[str, str], str] = {
            (ADMIN_SECRET_NAME, ADMIN_SECRET_KEY): ADMIN_PASSWORD,
            (DB_SECRET, "password"): "role-password-unused-with-trust-auth",
            (DB_SECRET, "postgres-password"): "superuser-password-unused-with-trust-auth",
        }
        for doc in docs:
            if doc["kind"] != "Secret":
                continue
            for key, value in (doc.get("stringData") or {}).items():
                out[(doc["metadata"]["name"], key)] = value
            for key, value in (doc.get("data") or {}).items():
                out[(doc["metadata"]["name"], key)] = base64.b64decode(value).decode()
        return out

    def claim_dirs(self, docs: list[dict[str, Any]]) -> dict[str, Path]:
        for doc in docs:
            if doc["kind"] == "PersistentVolumeClaim":
                name = doc["metadata"]["name"]
                if doc["metadata"]["labels"].get("app.kubernetes.io/component") == "odoo":
                    self.filestore_claim = name
                if name not in self.claims:
                    self.claims[name] = self.harness.scratch(f"claim-{name}")
        return self.claims

    def pod(self, docs: list[dict[str, Any]], component: str = "odoo") -> LocalPod:
        """A pod of the web (`odoo`) or `cron` Deployment."""
        suffix = "" if component == "odoo" else f"-{component}"
        workload = one(docs, "Deployment", f"{self.id}-odoo-tenant{suffix}")
        return self.local_pod(docs, workload, component)

    def local_pod(
        self, docs: list[dict[str, Any]], workload: dict[str, Any], label: str = "job"
    ) -> LocalPod:
        return LocalPod(
            self.harness,
            docs,
            workload,
            claims=self.claim_dirs(docs),
            secrets=self.secrets(docs),
            name=f"{self.id}-{label}",
        )

    @property
    def filestore(self) -> Path:
        """<data_dir>/filestore/<db> on the filestore claim."""
        return self.claims[self.filestore_claim] / "filestore" / self.db


def create_database(pg: PgServer, name: str) -> None:
    """As the chart's PostgreSQL creates it at first start: owned by `odoo`, no CREATEDB."""
    pg.admin(f'CREATE DATABASE "{name}" OWNER odoo')
    pg.admin(f'REVOKE ALL ON DATABASE "{name}" FROM PUBLIC')


class RpcError(AssertionError):
    """Odoo answered a JSON-RPC call with an error."""


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


@contextlib.contextmanager
def rpc(url: str) -> Iterator[Rpc]:
    client = Rpc(url)
    try:
        yield client
    finally:
        client.close()


def start_manager(harness: Harness, master: str) -> OdooProcess:
    """A test-only Odoo with its database manager on (list_db = True), on the same PostgreSQL
    server, as a role that may create databases (`odoo_manager`). Its odoo.conf is written
    here: it is not the chart's configuration (a tenant's Odoo refuses the manager)."""
    harness.pg.admin(
        "DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'odoo_manager') "
        "THEN CREATE ROLE odoo_manager LOGIN CREATEDB; END IF; END $$"
    )
    root = harness.scratch("manager")
    port = free_port()
    (root / "data").mkdir()
    (root / "odoo.conf").write_text(
        "[options]\n"
        f"data_dir = {root / 'data'}\n"
        f"db_host = {harness.pg.host}\ndb_port = {harness.pg.port}\n"
        "db_user = odoo_manager\ndb_password = unused-with-trust-auth\n"
        f"admin_passwd = {master}\nlist_db = True\n"
        f"http_interface = 127.0.0.1\nhttp_port = {port}\ngevent_port = {free_port()}\n"
        "workers = 0\nmax_cron_threads = 0\n"
    )
    give(root)
    return harness.start(
        [*run_as(), PYTHON, str(harness.tree / "odoo-bin"), f"--config={root / 'odoo.conf'}"],
        env={"PATH": f"{harness.pg.bindir}:/usr/bin:/bin", "HOME": str(root), "LANG": "C.UTF-8"},
        cwd=root,
        log=root / "odoo.log",
        url=f"http://127.0.0.1:{port}",
        gevent_port=0,
    )


class _SecretReader:
    """The one Secret read saasodoo's restore Job makes (``Kube.secret_has_key``): whether
    the database Secret has the superuser key."""

    def __init__(self, data: dict[str, str]) -> None:
        self.data = data

    def secret_has_key(self, namespace: str, name: str, key: str) -> bool:
        return key in self.data


def run_restore_job(
    tenant: Tenant,
    docs: list[dict[str, Any]],
    zip_name: str | None,
    *,
    drop_previous: bool = False,
    source_tenant: str | None = None,
    extra_args: tuple[str, ...] = (),
) -> subprocess.CompletedProcess[str]:
    """The Job `saasodoo backup restore` creates from the tenant's CronJob (restore.py), run
    (``zip_name`` None: the newest; ``source_tenant``: read from that folder, a copy;
    ``extra_args`` appended to restore.py's)."""
    from saasodoo.backups.jobs import JobRunner

    cronjob = copy.deepcopy(one(docs, "CronJob"))
    cronjob["metadata"].setdefault("uid", "00000000-0000-0000-0000-000000000000")
    secrets = {k: v for (name, k), v in tenant.secrets(docs).items() if name == DB_SECRET}
    jobs = JobRunner(_SecretReader(secrets))  # type: ignore[arg-type]
    job = jobs.restore_job(
        tenant.id, cronjob, zip_name, mode="restore", drop_previous=drop_previous,
        source_tenant=source_tenant,
    )  # fmt: skip
    pod = tenant.local_pod(docs, job)
    pod.container("backup")["command"].extend(extra_args)
    return pod.run_job("backup", timeout=900)
