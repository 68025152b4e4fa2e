"""``make bench`` (part operator): the OdooTenant operator at scale, on a cluster of its own.

Runs on ``saasodoo-bench-op`` (kwok fake nodes only, started by ``scripts/cluster.sh up``) unless
SAASODOO_KUBECONFIG names another, and brings it down at the end unless ``--keep``. The
operator runs as a real process (``saasodoo operator run --stats-file``: its counters as JSON
every second), as a user or the platform's Deployment runs it.

    python bench/operator.py [--n 1000] [--small 100] [--m 20] [--changes 10] [--takeovers 2]

1. idle fleets of ``--small`` and ``--n`` OdooTenants (tenants cloned from one made by helm,
   then ``adopt_all``, which moves their records onto their OdooTenants, each given a
   30-day backup inventory in its status: ``seed_backups``): the operator's resident memory
   (VmRSS; peak VmHWM), the time from ``exec`` to its first full list and to the end of its
   first pass over every tenant, the API requests and helm calls between two sweeps (resync
   every 20 s), at both sizes;
2. ``saasodoo tenant list`` over them with SAASODOO_OPERATOR=1 (the table, from the printer
   columns; ``-o json``, every object) and without (namespaces), beside ``helm list -A``,
   interleaved;
Parts 3 to 5 run with a new operator whose resync is the platform's default (300 s), over
every OdooTenant of part 1, after its first pass:

3. a spec change (a merge patch of one OdooTenant's overrides) -> the operator's operation
   lock in the OdooTenant's ``status.record`` (written just before helm starts) and -> helm's
   pending revision, over ``--changes`` changes, one at a time;
4. a fleet upgrade of ``--m`` tenants (a new pod annotation in every OdooTenant's overrides:
   a rollout by helm alone; a new image would be an update through ``odoo -u``, which needs
   real pods: saasodoo.operator.updates)
   through the operator (10 workers) against bare ``helm upgrade --wait`` of the same releases
   10 at a time (rendering the values is not timed); bare helm first, while no operator runs
   (the operator of parts 3-5 starts after it; the spec changes take its hand changes over).
   Every fleet release's history is filled to ``--history-max`` first (untimed bare helm
   upgrades): helm decodes a release's whole history on each upgrade, so both paths are
   timed at the steady state of a tenant that has lived a while, not at 3 revisions and 9;
5. takeover: a standby operator process, the leader's process group SIGKILLed (the Lease
   must expire) or sent SIGTERM (it releases the Lease); time until the Lease names the
   standby. Lease settings 6 s / 4 s / 1 s (client-go's are 15 s / 10 s / 2 s).

The clones are what a tenant made by helm leaves in the cluster (its namespace with
saasodoo's record, Helm's storage Secret, the Secrets, ConfigMaps, Services, Deployments,
StatefulSets and CronJobs), copied from one real tenant with its id replaced, and with the
applied digest of their own spec: the operator and ``tenant list`` cannot tell them from
tenants made by helm, at a fraction of helm's time. Writes its section of docs/benchmarks.md
between ``<!-- operator-bench: -->`` markers.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import gzip
import json
import os
import platform
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from kubernetes.client.exceptions import ApiException  # noqa: E402

from bench.run import Bench, cluster_up, log, tools  # noqa: E402
from bench.sections import markers, write_section  # noqa: E402
from saasodoo.adapters.helm import NO_CLIENT_VALIDATION  # noqa: E402
from saasodoo.adapters.kube.informer import Informer  # noqa: E402
from saasodoo.adapters.resources import TenantResources, apply_crd  # noqa: E402
from saasodoo.context import Context  # noqa: E402
from saasodoo.core.conditions import get_condition  # noqa: E402
from saasodoo.core.crd import GROUP, PLURAL, VERSION  # noqa: E402
from saasodoo.core.operations import crd_manifests  # noqa: E402
from saasodoo.core.record import (  # noqa: E402
    APPLIED_ANNOTATION,
    OPERATION_ANNOTATION,
    SPEC_ANNOTATION,  # noqa: E402
)
from saasodoo.core.spec import TENANT_LABEL, TenantSpec  # noqa: E402
from saasodoo.operator.adopt import adopt_all  # noqa: E402
from saasodoo.settings import Settings  # noqa: E402
from saasodoo.tenants import Tenants  # noqa: E402
from tests.operator_process import OperatorProcess as TestedProcess  # noqa: E402

BENCH_CLUSTER = "saasodoo-bench-op"
TEMPLATE = "zqtmpl"  # the tenant the clones copy; an id no other string contains
SAASODOO = str(ROOT / ".venv" / "bin" / "saasodoo")
RESYNC = "20"
#: This run's mark in the pod annotations it rolls out: a kept cluster's second run changes
#: every spec again (the same annotation would be no change, and the bare helm upgrades of
#: the run before are a hand change the operator leaves alone).
RUN = time.strftime("%Y%m%dT%H%M%S")
#: The resync of the operator of parts 3-5: the platform's default
#: (``Settings.operator_resync_seconds``).
PLATFORM_RESYNC = "300"
LEASE = {"SAASODOO_OPERATOR_LEASE_SECONDS": "6", "SAASODOO_OPERATOR_RENEW_SECONDS": "4",
         "SAASODOO_OPERATOR_RETRY_SECONDS": "1"}  # fmt: skip
#: The namespaced kinds a clone copies (API path prefix, plural).
KINDS = (
    ("/api/v1", "serviceaccounts"), ("/api/v1", "secrets"), ("/api/v1", "configmaps"),
    ("/api/v1", "persistentvolumeclaims"), ("/api/v1", "services"),
    ("/api/v1", "resourcequotas"), ("/api/v1", "limitranges"),
    ("/apis/networking.k8s.io/v1", "networkpolicies"), ("/apis/networking.k8s.io/v1", "ingresses"),
    ("/apis/apps/v1", "deployments"), ("/apis/apps/v1", "statefulsets"),
    ("/apis/batch/v1", "cronjobs"),
)  # fmt: skip
#: Annotations the API server or controllers set, not copied.
SERVER_SET = ("deployment.kubernetes.io/", "pv.kubernetes.io/", "volume.kubernetes.io/",
              "volume.beta.kubernetes.io/")  # fmt: skip
KEEP_META = ("name", "namespace", "labels", "annotations")
JSON = {"Accept": "application/json", "Content-Type": "application/json"}
APPLY = {"Accept": "application/json", "Content-Type": "application/apply-patch+yaml"}
#: The kind of each plural of KINDS (a list's items carry neither kind nor apiVersion).
KIND_OF = {"serviceaccounts": "ServiceAccount", "secrets": "Secret", "configmaps": "ConfigMap",
           "persistentvolumeclaims": "PersistentVolumeClaim", "services": "Service",
           "resourcequotas": "ResourceQuota", "limitranges": "LimitRange",
           "networkpolicies": "NetworkPolicy", "ingresses": "Ingress",
           "deployments": "Deployment", "statefulsets": "StatefulSet",
           "cronjobs": "CronJob"}  # fmt: skip
MERGE = {"Accept": "application/json", "Content-Type": "application/merge-patch+json"}


def ROLLOUT(tag: str) -> dict[str, Any]:  # noqa: N802 - reads as the constant it stands for
    """Overrides that roll every Odoo pod out through helm without changing Odoo's code."""
    return {"odoo": {"podAnnotations": {"saasodoo.dev/bench": tag}}}


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * q))]


@dataclass
class OperatorProcess(TestedProcess):
    """One ``saasodoo operator run`` in its own process group (the tests' handle: SIGKILL of
    the group, SIGTERM), with its stats file."""

    stats_path: Path = Path()
    started: float = 0.0  # time.monotonic() just before exec
    offset: float | None = None  # exec -> the Operator object's clock start (s)

    def stats(self) -> dict[str, Any] | None:
        """The newest counters, and the exec -> clock offset learnt from them."""
        try:
            doc: dict[str, Any] = json.loads(self.stats_path.read_text())
        except (OSError, ValueError):
            return None
        offset = time.monotonic() - self.started - float(doc["uptime"])
        self.offset = offset if self.offset is None else min(self.offset, offset)
        return doc

    def wait(self, probe: Any, timeout: float, what: str, every: float = 0.1) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            doc = self.stats()
            if doc is not None and probe(doc):
                return doc
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.identity} exited: {self.output()[-3000:]}")
            time.sleep(every)
        raise TimeoutError(f"{self.identity}: {what} not within {timeout}s")


class OperatorBench:
    def __init__(self, bench: Bench, settings: Settings, workdir: Path) -> None:
        self.bench = bench
        self.settings = settings
        self.ctx = bench.ctx
        self.tenants: Tenants = bench.tenants
        self.kube = bench.ctx.kube
        self.resources = TenantResources(self.kube, settings.system_namespace)
        self.workdir = workdir
        self.sections: list[str] = []
        self.verdicts: list[str] = []
        self.count = 0
        self.started: list[OperatorProcess] = []
        self.leader: OperatorProcess | None = None  # the process parts 3 and 4 rely on

    # -- the cluster's tenants --------------------------------------------------------

    def existing(self) -> set[str]:
        return {ns.labels.get(TENANT_LABEL, "") for ns in self.kube.list_tenant_namespaces()}

    def create_real(self, ids: list[str]) -> None:
        """Tenants made by saasodoo itself (helm install --wait), 8 at a time."""
        todo = [t for t in ids if t not in self.existing()]
        if todo:
            asyncio.run(self.bench._saasodoo_many(todo, 8))

    def template_objects(self) -> tuple[dict[str, Any], list[tuple[str, dict[str, Any]]]]:
        ns = self.kube.get_json(f"/api/v1/namespaces/tenant-{TEMPLATE}")
        objects = []
        for prefix, plural in KINDS:
            doc = self.kube.get_json(f"{prefix}/namespaces/tenant-{TEMPLATE}/{plural}")
            for item in doc.get("items") or []:
                meta = item["metadata"]
                by_helm = "meta.helm.sh/release-name" in (meta.get("annotations") or {})
                helm_record = (meta.get("labels") or {}).get("owner") == "helm"
                if not (by_helm or helm_record or plural == "secrets"):
                    continue  # made by a controller (the StatefulSet's claims, "default")
                if item.get("type") == "kubernetes.io/service-account-token":
                    continue
                version = "v1" if prefix == "/api/v1" else prefix.removeprefix("/apis/")
                item = {"apiVersion": version, "kind": KIND_OF[plural], **item}
                objects.append((f"{prefix}/namespaces/{{ns}}/{plural}", item))
        return ns, objects

    def clone(self, ids: list[str]) -> float:
        """Clones of the template tenant (module docstring); returns the seconds taken."""
        adopted = {i["metadata"]["name"] for i in self.resources.list().get("items") or []}
        todo = sorted(set(ids) - adopted)  # a half-made clone of an earlier run is completed
        if not todo:
            return 0.0
        start = time.perf_counter()
        ns, objects = self.template_objects()
        # The template's record: on its namespace until an operator adopted it (part 1's
        # first size), then on its OdooTenant; the clones get it on their namespaces, to
        # be adopted in turn.
        entries = self.ctx.record.read(f"tenant-{TEMPLATE}").record  # type: ignore[union-attr]
        recorded = json.loads(entries[SPEC_ANNOTATION])
        applied = json.loads(entries[APPLIED_ANNOTATION])

        def one(tid: str) -> None:
            doc = json.loads(json.dumps(recorded).replace(TEMPLATE, tid))
            tspec = TenantSpec.model_validate(doc)
            _, digest = asyncio.run(self.tenants.desired(tspec))
            meta = {k: v for k, v in ns["metadata"].items() if k in ("labels", "annotations")}
            meta = json.loads(json.dumps(meta).replace(TEMPLATE, tid))
            meta.setdefault("annotations", {})
            meta["name"] = f"tenant-{tid}"
            meta["annotations"][SPEC_ANNOTATION] = json.dumps(doc)
            meta["annotations"][APPLIED_ANNOTATION] = json.dumps({**applied, "digest": digest})
            meta["labels"].pop("kubernetes.io/metadata.name", None)
            self.create("/api/v1/namespaces", {"metadata": meta})
            for path, item in objects:
                self.apply(path.format(ns=f"tenant-{tid}"), copy_object(item, tid))

        done = 0
        with ThreadPoolExecutor(12) as pool:
            for _ in pool.map(one, todo):
                done += 1
                if done % 100 == 0:
                    log(f"  cloned {done}/{len(todo)}")
        return time.perf_counter() - start

    def apply(self, path: str, body: dict[str, Any]) -> None:
        """Server-side apply BODY under PATH as field manager ``helm``, as helm 4 applies a
        release's objects: a later ``helm upgrade`` of the clone (a new chart version) owns
        their fields instead of meeting conflicts with the bench's own manager."""
        name = body["metadata"]["name"]
        self.kube.call_json("PATCH", f"{path}/{name}", [("fieldManager", "helm"),
                            ("force", "true")], APPLY, body)  # fmt: skip

    def create(self, path: str, body: dict[str, Any]) -> None:
        """POST BODY to PATH; an object that exists already (a retried request, an earlier
        run) is fine."""
        try:
            self.kube.call_json("POST", path, [], JSON, body)
        except ApiException as exc:
            if exc.status != 409:
                raise

    def wait_workloads_ready(self, ids: list[str], timeout: float = 900) -> float:
        start = time.perf_counter()
        want = set(ids)
        while time.perf_counter() - start < timeout:
            workloads = self.kube.list_workloads()
            ready = {t for t in want if workloads.get(t) and all(w.is_ready for w in workloads[t])}
            if ready == want:
                return time.perf_counter() - start
            log(f"  workloads ready: {len(ready)}/{len(want)}")
            time.sleep(5)
        raise TimeoutError(f"workloads of {len(want - ready)} tenants not ready")

    def seed_backups(self, ids: list[str]) -> float:
        """Give each OdooTenant of ``ids`` the backup inventory of a tenant 30 days old (30
        scheduled backups in ``status.backups``, as the operator lists them), so the caches
        and lists measured hold objects of a real size (about 15 KiB each as JSON, where a
        fresh one is 3). The operator keeps it: its status writes start from the status
        read. Returns the seconds taken."""
        start = time.perf_counter()

        def one(tid: str) -> None:
            backups = [{
                "name": f"202611{day:02d}T030000Z-scheduled.zip", "kind": "scheduled",
                "time": f"2026-11-{day:02d}T03:00:00Z", "odooVersion": "18.0", "dbName": tid,
                "sizes": {"dump": 48_213_504, "filestore": 734_003_200, "zip": 701_235_112},
                "dumpSha256": "5f" * 32, "modules": 61, "tables": 742,
            } for day in range(30, 0, -1)]  # fmt: skip
            self.resources.patch_status(
                tid, {"backups": backups, "backupsListedAt": "2026-11-30T03:05:00Z"}, {}
            )

        with ThreadPoolExecutor(16) as pool:
            list(pool.map(one, ids))
        return time.perf_counter() - start

    def adopt(self) -> tuple[int, float]:
        start = time.perf_counter()
        done = adopt_all(self.ctx, self.resources)
        if done.failed:
            raise RuntimeError(f"adoption failed: {done.failed}")
        return len(done.adopted), time.perf_counter() - start

    # -- operator processes -----------------------------------------------------------

    def start_operator(self, identity: str, resync: str = RESYNC) -> OperatorProcess:
        env = {
            **os.environ,
            "SAASODOO_KUBECONFIG": str(self.bench.kubeconfig),
            "SAASODOO_HELM_BINARY": self.bench.helm,
            "SAASODOO_HELM_TIMEOUT": "10m",
            "SAASODOO_OPERATOR_RESYNC_SECONDS": resync,
            "SAASODOO_OPERATOR": "0",
            "PYTHONUNBUFFERED": "1",
            "PYTHONPATH": str(ROOT),  # this checkout's code, whatever the venv points at
            "MALLOC_ARENA_MAX": os.environ.get("MALLOC_ARENA_MAX", "2"),  # as the image sets it
            "POD_NAME": identity,
            **LEASE,
        }
        stats = self.workdir / f"{identity}.json"
        stats.unlink(missing_ok=True)
        logf = self.workdir / f"{identity}.log"
        args = [SAASODOO, "operator", "run", "--stats-file", str(stats), "--stats-every", "1"]
        with logf.open("wb") as sink:
            started = time.monotonic()
            proc = subprocess.Popen(args, env=env, stdout=sink, stderr=subprocess.STDOUT,
                                    start_new_session=True)  # fmt: skip
        op = OperatorProcess(proc, logf, identity, stats_path=stats, started=started)
        self.started.append(op)
        return op

    def lease_holder(self) -> str:
        path = (f"/apis/coordination.k8s.io/v1/namespaces/{self.settings.system_namespace}"
                f"/leases/{self.settings.operator_lease}")  # fmt: skip
        try:
            doc = self.kube.call_json("GET", path, [], {"Accept": "application/json"})
        except Exception:  # noqa: BLE001 - no Lease yet
            return ""
        return str((doc.get("spec") or {}).get("holderIdentity") or "")

    def next_identity(self) -> str:
        self.count += 1
        return f"bench-op-{self.count}"

    # -- part 1 -----------------------------------------------------------------------

    def idle(self, n: int, ids: list[str]) -> tuple[OperatorProcess, dict[str, Any]]:
        """The operator over the ``n`` OdooTenants of the cluster, until two sweeps after
        its first pass; returns it still running with what was measured."""
        op = self.start_operator(self.next_identity())
        synced = op.wait(lambda d: d.get("first_sync") is not None, 300, "first full list")
        op.wait(lambda d: d["leader"], 120, "leading")
        first = op.wait(lambda d: d["reconciles"] >= n and d["queued"] == 0, 1800,
                        "the first pass", every=0.2)  # fmt: skip
        assert op.offset is not None
        t_sync = op.offset + float(synced["first_sync"])
        t_pass = op.offset + float(first["uptime"])
        log(f"  n={n}: first list after {t_sync:.2f}s, first pass done after {t_pass:.1f}s")
        # sweeps: the counters at each sweep from the first whole one after the pass
        base = first["sweeps"]
        marks = []
        for k in (1, 2, 3):
            marks.append(op.wait(lambda d, k=k: d["sweeps"] >= base + k, 120, f"sweep {k}",
                                 every=0.2))  # fmt: skip
        per = []
        for a, b in zip(marks, marks[1:], strict=False):
            per.append({
                "kube": b["kube_requests"] - a["kube_requests"],
                "informer": b["informer"]["requests"] - a["informer"]["requests"],
                "helm": b["helm_calls"] - a["helm_calls"],
                "reconciles": b["reconciles"] - a["reconciles"],
                "queued": b["queued_by_sweep"] - a["queued_by_sweep"],
                "seconds": b["uptime"] - a["uptime"],
            })  # fmt: skip
        last = marks[-1]
        result = {
            "n": n, "first_sync": t_sync, "first_pass": t_pass, "per_sweep": per,
            "pass_kube": first["kube_requests"], "pass_helm": first["helm_calls"],
            "idle_helm": last["helm_calls"] - first["helm_calls"],
            "rss": last["rss_kib"] / 1024, "peak": last["peak_rss_kib"] / 1024,
            "reconciles": first["reconciles"], "failures": last["failures"],
        }  # fmt: skip
        log(f"  n={n}: {json.dumps(result)}")
        return op, result

    # -- part 2 -----------------------------------------------------------------------

    def list_status(self, runs: int = 3) -> list[list[str]]:
        # An installed CLI runs from bytecode its installation compiled; this checkout's
        # modules have none where PYTHONDONTWRITEBYTECODE is set (then every run compiles
        # them again: about 0.1 s): compiled once here.
        subprocess.run([sys.executable, "-m", "compileall", "-q", str(ROOT / "saasodoo")],
                       check=True, capture_output=True)  # fmt: skip
        env = {**os.environ, "SAASODOO_KUBECONFIG": str(self.bench.kubeconfig),
               "SAASODOO_HELM_BINARY": self.bench.helm}  # fmt: skip
        cli = [SAASODOO, "tenant", "list"]
        ways = {
            "saasodoo tenant list, SAASODOO_OPERATOR=1 (the printer columns, a Table)":
                (cli, {**env, "SAASODOO_OPERATOR": "1"}),
            "saasodoo tenant list -o json, SAASODOO_OPERATOR=1 (every OdooTenant whole)":
                ([*cli, "-o", "json"], {**env, "SAASODOO_OPERATOR": "1"}),
            "saasodoo tenant list -o json (namespaces, release heads, workloads)":
                ([*cli, "-o", "json"], {**env, "SAASODOO_OPERATOR": "0"}),
            "helm list -A": ([self.bench.helm, "list", "-A", "--max", "0", "-o", "json"],
                             self.bench.env()),
        }  # fmt: skip
        times: dict[str, list[float]] = {k: [] for k in ways}
        counts: dict[str, int] = {}
        for _ in range(runs):
            for name, (args, e) in ways.items():
                start = time.perf_counter()
                got = subprocess.run(args, check=True, capture_output=True, env=e).stdout
                times[name].append(time.perf_counter() - start)
                table = "-o" not in args
                counts[name] = len(got.splitlines()) - 1 if table else len(json.loads(got))
        return [[name, f"{statistics.median(v):.2f}", f"{min(v):.2f}-{max(v):.2f}",
                 str(counts[name])] for name, v in times.items()]  # fmt: skip

    def api_list(self, runs: int = 50) -> list[list[str]]:
        """``GET /api/tenants`` as an operator (every tenant), through the app in this
        process (Flask's test client: the handler, its reads and the JSON, not a WSGI
        server's socket): from the watch cache, and with it off (one list request each)."""
        from saasodoo.api.config import ApiSettings
        from saasodoo.app import create_app

        settings = Settings(
            kubeconfig=self.bench.kubeconfig,
            helm_binary=self.bench.helm,
            operator=True,
            system_namespace=self.settings.system_namespace,
        )
        rows = []
        for cached in (True, False):
            app = create_app(ApiSettings(auth_mode="local", cookie_secure=False,
                                         watch_cache=cached), settings)  # fmt: skip
            client = app.test_client()
            who = {"email": "bench@example.com", "password": "correct-horse-1"}
            res = client.post("/api/auth/register", json=who)
            body = res.get_json()
            app.extensions["saasodoo"].settings.admins = [body["user"]["id"]]
            auth = {"Authorization": f"Bearer {body['session']['access_token']}"}
            start = time.perf_counter()
            first = client.get("/api/tenants", headers=auth)
            first_s = time.perf_counter() - start
            count = len(first.get_json()["tenants"])
            objects = app.extensions["saasodoo"].objects
            deadline = time.perf_counter() + 120
            while cached and not (objects._cache and objects._cache.has_synced()):
                if time.perf_counter() > deadline:
                    raise TimeoutError("the API's watch cache did not list")
                time.sleep(0.1)
            times = []
            for _ in range(runs if cached else 5):
                start = time.perf_counter()
                got = client.get("/api/tenants", headers=auth)
                times.append(time.perf_counter() - start)
                assert got.status_code == 200, got.get_json()
            objects.stop_watching()
            times.sort()
            way = ("from the watch cache" if cached
                   else "one list request each (SAASODOO_API_WATCH_CACHE=false)")  # fmt: skip
            p50 = statistics.median(times) * 1000
            worst, first_ms = times[-1] * 1000, first_s * 1000
            rows.append([f"GET /api/tenants as an operator, {way}", f"{p50:.0f}",
                         f"{worst:.0f}", f"{first_ms:.0f}", str(count)])  # fmt: skip
        return rows

    # -- part 3 -----------------------------------------------------------------------

    def patch_tag(self, tid: str, tag: str) -> int:
        """Merge-patch TID's overrides with the pod annotation ``saasodoo.dev/bench: TAG`` (a
        rollout by helm, no code change); returns the new generation."""
        doc = self.resources.patch(tid, {"spec": {"overrides": ROLLOUT(tag)}})
        return int(doc["metadata"]["generation"])

    def ready_at(self, tid: str, generation: int, obj: dict[str, Any] | None = None) -> bool:
        """Whether the OdooTenant (``obj``, or read now) is Ready at ``generation``."""
        if self.leader is not None and self.leader.proc.poll() is not None:
            raise RuntimeError(
                f"{self.leader.identity} exited "
                f"({self.leader.proc.returncode}): {self.leader.output()[-2000:]}"
            )
        if obj is None:
            obj = self.resources.get(tid) or {}
        st = obj.get("status") or {}
        cond = get_condition(st.get("conditions") or [], "Ready") or {}
        return (cond.get("status") == "True" and st.get("observedGeneration") == generation
                and cond.get("observedGeneration") == generation)  # fmt: skip

    def spec_to_helm(self, ids: list[str], changes: int) -> list[list[str]]:
        lock_lat, pending_lat = [], []
        for i in range(changes):
            tid = ids[i % len(ids)]
            ns = f"tenant-{tid}"
            before = self.kube.list_release_heads(ns)[(ns, tid)].revision
            t0 = time.perf_counter()
            gen = self.patch_tag(tid, f"{RUN}-change-{i}")
            t_lock = t_pending = None
            deadline = t0 + 120
            while (t_lock is None or t_pending is None) and time.perf_counter() < deadline:
                if t_lock is None:
                    got = self.ctx.record.read(ns)
                    if got is not None and OPERATION_ANNOTATION in got.record:
                        t_lock = time.perf_counter() - t0
                head = self.kube.list_release_heads(ns).get((ns, tid))
                if t_pending is None and head is not None and head.revision > before:
                    t_pending = time.perf_counter() - t0
                    t_lock = t_lock if t_lock is not None else t_pending
                time.sleep(0.02)
            if t_lock is None or t_pending is None:
                raise TimeoutError(f"no helm upgrade of {tid} within 120s of its spec change")
            lock_lat.append(t_lock)
            pending_lat.append(t_pending)
            log(f"  change {i + 1}: lock {t_lock:.2f}s, pending revision {t_pending:.2f}s")
            deadline = time.perf_counter() + 300
            while not self.ready_at(tid, gen):
                if time.perf_counter() > deadline:
                    raise TimeoutError(f"{tid} not Ready at generation {gen}")
                time.sleep(0.2)
        return [
            ["spec change -> operation lock on the OdooTenant (helm starts)",
             f"{statistics.median(lock_lat):.2f}", f"{max(lock_lat):.2f}"],
            ["spec change -> helm's pending revision recorded",
             f"{statistics.median(pending_lat):.2f}", f"{max(pending_lat):.2f}"],
        ]  # fmt: skip

    # -- part 4 -----------------------------------------------------------------------

    def fleet_operator(self, ids: list[str], tag: str) -> float:
        """Patch the tenants' specs, then follow them through one watch (as ``kubectl wait``
        does) until each is Ready at its new generation. Polling each tenant instead (a GET
        per tenant every 0.2 s, 100 requests a second at the start) took CPU from the two
        cores helm and the API server share, on the operator's side of the comparison only."""
        watching = Informer.for_custom_objects(
            self.kube.api, GROUP, VERSION, PLURAL, self.settings.system_namespace,
            resync_period=None, name="bench-fleet",
        )  # fmt: skip
        watching.start()
        try:
            if not watching.wait_for_sync(300):
                raise TimeoutError("the bench's OdooTenant watch did not list")
            ns = self.settings.system_namespace
            start = time.perf_counter()
            gens = {tid: self.patch_tag(tid, tag) for tid in ids}
            pending = set(ids)
            while pending:
                seen = {t: watching.get(f"{ns}/{t}") or {} for t in pending}
                pending = {t for t in pending if not self.ready_at(t, gens[t], seen[t])}
                if time.perf_counter() - start > 1800:
                    raise TimeoutError(f"fleet upgrade: {sorted(pending)} not Ready")
                time.sleep(0.05)
            return time.perf_counter() - start
        finally:
            watching.stop()

    def fill_history(self, ids: list[str]) -> int:
        """Bare helm upgrades (untimed, without --wait) of the releases of ``ids`` until each
        keeps ``Settings.history_max`` revisions, the steady state of a tenant that has
        lived a while: helm decodes a release's whole stored history on every upgrade, so a
        path timed at 3 revisions and the other at 9 compare helm's cost, not theirs (the
        first full runs: bare helm 16.5 s at 3 revisions, 22-24 s at 8-10). Returns the
        upgrades made."""
        history_max = self.settings.history_max
        made = 0
        for k in range(history_max):
            heads = self.kube.list_release_heads()
            short = [t for t in ids if heads[(f"tenant-{t}", t)].revision < history_max]
            if not short:
                break
            self.fleet_helm(short, f"{RUN}-fill-{k}", (NO_CLIENT_VALIDATION,), wait=False)
            made += len(short)
        return made

    def fleet_helm(
        self, ids: list[str], tag: str, extra: tuple[str, ...] = (), *, wait: bool = True
    ) -> float:
        files = {}
        for tid in ids:
            spec = self.ctx.record.spec(self.ctx.record.namespace(tid))
            spec = spec.model_copy(update={"overrides": ROLLOUT(tag)})
            files[tid] = self.bench.values_file(spec)

        def one(tid: str) -> None:
            # the flags the operator's helm upgrade has (pyhelm3's, in its log)
            done = subprocess.run(
                [self.bench.helm, "upgrade", tid, self.settings.chart, "-n", f"tenant-{tid}",
                 "-f", files[tid], "--history-max", str(self.settings.history_max),
                 *(("--wait", "--wait-for-jobs") if wait else ()), "--timeout", "10m", *extra],
                capture_output=True, text=True, env=self.bench.env(),
            )  # fmt: skip
            if done.returncode != 0:
                raise RuntimeError(f"helm upgrade {tid}: {done.stderr.strip()}")

        try:
            start = time.perf_counter()
            with ThreadPoolExecutor(10) as pool:
                list(pool.map(one, ids))
            return time.perf_counter() - start
        finally:
            for path in files.values():
                os.unlink(path)

    # -- part 5 -----------------------------------------------------------------------

    def takeover(self, leader: OperatorProcess, how: str) -> tuple[float, OperatorProcess]:
        """Start a standby, wait until it has listed, stop LEADER (kill or term); seconds
        until the Lease names the standby, and the standby."""
        standby = self.start_operator(self.next_identity())
        standby.wait(lambda d: d.get("first_sync") is not None, 300, "standby's first list")
        time.sleep(2)
        assert self.lease_holder() == leader.identity, self.lease_holder()
        t0 = time.perf_counter()
        if how == "kill":
            os.killpg(leader.proc.pid, signal.SIGKILL)
        else:
            leader.proc.send_signal(signal.SIGTERM)
        while self.lease_holder() != standby.identity:
            if time.perf_counter() - t0 > 120:
                raise TimeoutError(f"{standby.identity} did not take the Lease")
            time.sleep(0.05)
        took = time.perf_counter() - t0
        if how == "kill":
            leader.kill()
        else:
            leader.stop()
        log(f"  takeover after {how}: {took:.2f}s")
        return took, standby


def copy_object(item: dict[str, Any], tid: str) -> dict[str, Any]:
    """ITEM as a new object of tenant TID: server-set metadata and status dropped, the
    template's id replaced everywhere (Helm's storage record decoded for it)."""
    body = {k: v for k, v in item.items() if k not in ("status",)}
    body["metadata"] = {k: v for k, v in item["metadata"].items() if k in KEEP_META}
    notes = body["metadata"].get("annotations") or {}
    for key in [k for k in notes if k.startswith(SERVER_SET)]:
        del notes[key]
    release = (item.get("data") or {}).get("release")
    if item.get("kind", "Secret") == "Secret" and release:
        raw = base64.b64decode(base64.b64decode(release))
        doc = (gzip.decompress(raw) if raw[:2] == b"\x1f\x8b" else raw).decode()
        doc = doc.replace(TEMPLATE, tid)
        encoded = base64.b64encode(gzip.compress(doc.encode())).decode()
        body["data"] = {**item["data"], "release": base64.b64encode(encoded.encode()).decode()}
        item = {**item, "data": {}}
    text = json.dumps({k: v for k, v in body.items() if k != "data"}).replace(TEMPLATE, tid)
    out: dict[str, Any] = json.loads(text)
    if "data" in body:
        out["data"] = body["data"]
    spec = out.get("spec") or {}
    if spec.get("clusterIP") not in (None, "None"):  # a Service's address is its own
        for key in ("clusterIP", "clusterIPs"):
            spec.pop(key, None)
    spec.pop("volumeName", None)  # a claim binds its own volume
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1000, help="idle OdooTenants (part 1)")
    parser.add_argument("--small", type=int, default=100, help="the smaller idle fleet")
    parser.add_argument("--m", type=int, default=20, help="tenants of the fleet upgrade")
    parser.add_argument("--changes", type=int, default=10, help="spec changes timed (part 3)")
    parser.add_argument("--rounds", type=int, default=5,
                        help="fleet upgrades per path, the order alternating (part 4)")  # fmt: skip
    parser.add_argument("--takeovers", type=int, default=2, help="kills and terms each (part 5)")
    parser.add_argument("--nodes", type=int, default=30, help="fake nodes of the bench cluster")
    parser.add_argument("--keep", action="store_true", help="keep the cluster at the end")
    parser.add_argument("--out", default=str(ROOT / "docs" / "benchmarks.md"))
    args = parser.parse_args()

    # SIGTERM ends the run through its clean-up (the operator processes stopped)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    t = tools()
    own = not os.environ.get("SAASODOO_KUBECONFIG")
    kubeconfig = os.environ.get("SAASODOO_KUBECONFIG") or cluster_up(BENCH_CLUSTER, args.nodes, 0)
    helm = t["SAASODOO_HELM4"]
    settings = Settings(kubeconfig=Path(kubeconfig), helm_binary=helm, helm_timeout="10m")
    bench = Bench(Path(kubeconfig), helm, t["SAASODOO_KUBECTL"], Context(settings))
    load0 = os.getloadavg()
    started = datetime.now(UTC)
    with tempfile.TemporaryDirectory(prefix="bench-op-") as tmp:
        ob = OperatorBench(bench, settings, Path(tmp))
        try:
            text = run(ob, args)
        finally:
            for op in ob.started:
                op.stop()
            for name in os.listdir(tmp):
                if name.endswith(".log"):
                    Path("/tmp", f"saasodoo-{name}").write_bytes(Path(tmp, name).read_bytes())
    load1 = os.getloadavg()
    begin, end = markers("operator")
    head = [
        f"{begin} written by bench/operator.py (make bench); edits here are overwritten -->",
        "## The operator at scale (OdooTenants on the simulated cluster)",
        "",
        f"Run {started:%Y-%m-%d %H:%M} UTC on {platform.node()} ({os.cpu_count()} cores, "
        f"Python {platform.python_version()}), load average {load0[1]:.1f} at the start and "
        f"{load1[1]:.1f} at the end (5 min), helm "
        + subprocess.run(
            [helm, "version", "--short"], capture_output=True, text=True
        ).stdout.strip()
        + f", cluster `{BENCH_CLUSTER}` (kwok fake nodes, no container runs). Produced by "
        "`make bench-operator` (bench/operator.py); `saasodoo operator run` is a real process "
        f"(its counters from `--stats-file`): resync every {RESYNC} s in part 1, every "
        f"{PLATFORM_RESYNC} s (the platform's default) in parts 3 to 5.",
        "",
    ]
    write_section(Path(args.out), "operator", "\n".join([*head, text, end]))
    print("\n".join([*head, text]))
    if own and not args.keep:
        env = {**os.environ, "SAASODOO_CLUSTER_NAME": BENCH_CLUSTER}
        subprocess.run(["bash", str(ROOT / "scripts/cluster.sh"), "down"], env=env, check=False)


def run(ob: OperatorBench, args: argparse.Namespace) -> str:
    for manifest in crd_manifests():
        apply_crd(ob.kube, manifest)
    ob.kube.create_namespace_if_absent(ob.settings.system_namespace)
    fleet = [f"of-{i:03d}" for i in range(args.m)]
    small = [f"oi-{i:04d}" for i in range(args.small)]
    big = [f"oi-{i:04d}" for i in range(args.n)]
    log(f"tenants: the template and {args.m} fleet tenants through helm")
    ob.create_real([TEMPLATE])
    ob.create_real(fleet)
    idle_rows, notes = [], []
    results = []
    op: OperatorProcess | None = None
    for size, ids in ((args.small, small), (args.n, big)):
        log(f"part 1: {size} idle OdooTenants")
        took = ob.clone(ids)
        waited = ob.wait_workloads_ready(ids)
        adopted, adopt_s = ob.adopt()
        seeded = ob.seed_backups(ids)
        notes.append(f"{size} tenants: cloned in {took:.0f} s, workloads ready {waited:.0f} s "
                     f"later, {adopted} adopted in {adopt_s:.1f} s, their backup inventories "
                     f"written in {seeded:.0f} s.")  # fmt: skip
        if op is not None:
            op.stop()
        op, res = ob.idle(len(ob.resources.list().get("items") or []), ids)
        results.append(res)
    assert op is not None
    for res in results:
        sweeps = res["per_sweep"]
        idle_rows.append([
            str(res["n"]), str(res["reconciles"]), f"{res['first_sync']:.2f}",
            f"{res['first_pass']:.1f}",
            " / ".join(f"{s['kube']}+{s['informer']}" for s in sweeps),
            " / ".join(str(s["reconciles"]) for s in sweeps),
            str(res["idle_helm"]), f"{res['pass_helm']}",
            f"{res['rss']:.0f}", f"{res['peak']:.0f}",
        ])  # fmt: skip

    # Parts 2-5 without part 1's operator: it sweeps every RESYNC s to see sweeps at all,
    # which at 1,000 tenants keeps the two cores busy enough to slow the CLI and the fleet's
    # helm processes down; parts 3-5 start one as the platform runs it (PLATFORM_RESYNC).
    op.stop()
    log("part 2: tenant list")
    list_rows = ob.list_status()
    api_rows = ob.api_list()
    # Bare helm first, while no operator runs: its upgrades are a hand change for the operator
    # (reported, left alone), which part 3 and 4's spec changes then take over, so a kept
    # cluster ends in sync and its next run starts as this one did.
    filled = ob.fill_history(fleet)
    log(f"part 4: the fleet's histories filled to --history-max ({filled} untimed upgrades)")
    log(f"part 4: bare helm upgrade of {args.m} releases, 10 at a time")
    t_helm = ob.fleet_helm(fleet, f"{RUN}-helm")
    log(f"  bare helm: {t_helm:.1f}s")
    # The operator's helm skips helm's client-side OpenAPI check (adapters.helm
    # NO_CLIENT_VALIDATION): bare helm with that flag too, so the ratio is the operator's
    # own cost, not the flag's saving.
    same: list[float] = [ob.fleet_helm(fleet, f"{RUN}-helm-same-0", (NO_CLIENT_VALIDATION,))]
    log(f"  bare helm with the operator's flags: {same[-1]:.1f}s")

    def platform_operator() -> OperatorProcess:
        started = ob.start_operator(ob.next_identity(), resync=PLATFORM_RESYNC)
        n_all = len(ob.resources.list().get("items") or [])
        started.wait(lambda d: d["leader"] and d["reconciles"] >= n_all and d["queued"] == 0,
                     1800, "the platform-resync operator's first pass", every=0.5)  # fmt: skip
        ob.leader = started
        return started

    op = platform_operator()
    before = op.stats() or {}
    log(f"part 3: {args.changes} spec changes -> helm")
    latency_rows = ob.spec_to_helm(fleet, args.changes)
    log(f"part 4: fleet upgrade of {args.m} tenants through the operator")
    t_ops = [ob.fleet_operator(fleet, f"{RUN}-operator-0")]
    log(f"  operator: {t_ops[-1]:.1f}s")
    after = op.stats() or {}
    # More rounds, the order alternating: one fleet upgrade per path is too few on two
    # shared cores (one full run gave 0.99x, the next 0.65x), and helm's own cost grows
    # with the revisions stored (each upgrade decodes the release's whole history, up to
    # --history-max), so the path that always ran second paid for one revision more.
    for r in range(1, args.rounds):
        for path in ("operator", "helm") if r % 2 else ("helm", "operator"):
            if path == "helm":
                op.stop()
                ob.leader = None
                same.append(ob.fleet_helm(fleet, f"{RUN}-helm-same-{r}", (NO_CLIENT_VALIDATION,)))
                log(f"  round {r + 1}: bare helm with the operator's flags: {same[-1]:.1f}s")
                op = platform_operator()
            else:
                t_ops.append(ob.fleet_operator(fleet, f"{RUN}-operator-{r}"))
                log(f"  round {r + 1}: operator: {t_ops[-1]:.1f}s")
    t_op, t_helm_same = statistics.median(t_ops), statistics.median(same)
    ob.leader = None
    upgrades = {k: after.get(k, 0) - before.get(k, 0) for k in ("reconciles", "failures",
                                                             "helm_calls")}  # fmt: skip
    log(f"part 5: takeovers ({args.takeovers} each)")
    kills, terms = [], []
    for _ in range(args.takeovers):
        took, op = ob.takeover(op, "kill")
        kills.append(took)
        took, op = ob.takeover(op, "term")
        terms.append(took)
    last = op.stats() or {}
    op.stop()

    big_res, small_res = results[-1], results[0]
    per_big = [s["kube"] + s["informer"] for s in big_res["per_sweep"]]
    per_small = [s["kube"] + s["informer"] for s in small_res["per_sweep"]]
    t_list = float(list_rows[0][1])
    api_p50 = float(api_rows[0][1])
    p50 = float(latency_rows[0][1])
    ratio, ratio_plain = t_helm_same / t_op, t_helm / t_op
    verdict = [
        ("resident memory at the larger size under 150 MiB",
         f"{big_res['rss']:.0f} MiB (peak {big_res['peak']:.0f})", big_res["peak"] < 150),
        ("API requests per sweep: list pages, not requests per tenant (under N/10)",
         f"{per_small} at {small_res['n']}, {per_big} at {big_res['n']}",
         max(per_big) < big_res["n"] / 10),
        ("0 helm calls for tenants in sync",
         f"{big_res['idle_helm']} between sweeps, {big_res['pass_helm']} in the first pass",
         big_res["idle_helm"] == 0 and big_res["pass_helm"] == 0),
        ("`tenant list` (the table) with SAASODOO_OPERATOR=1 under 1 s", f"{t_list:.2f} s",
         t_list < 1),
        ("`GET /api/tenants` of every tenant, p50 under 100 ms (watch cache)",
         f"{api_p50:.0f} ms", api_p50 < 100),
        ("spec change -> helm starts, p50 under 1 s", f"{p50:.2f} s", p50 < 1),
        ("fleet upgrade through the operator at least 0.9x bare helm (with the operator's "
         "helm flags)", f"{ratio:.2f}x ({ratio_plain:.2f}x bare helm's default flags)",
         ratio >= 0.9),
    ]  # fmt: skip
    m = args.m
    lines = [
        "### 1. Idle OdooTenants: the operator process",
        "",
        "| OdooTenants | reconciles until the first pass was done | exec -> first full list (s) "
        "| exec -> first pass done (s) "
        "| API requests per sweep (reads+informer), successive sweeps | reconciles per sweep "
        "| helm calls between sweeps | helm calls in the first pass | RSS MiB | peak RSS MiB |",
        "|---:|---:|---:|---:|---|---|---:|---:|---:|---:|",
        *("| " + " | ".join(r) + " |" for r in idle_rows),
        "",
        "### 2. Status of every tenant",
        "",
        "| command | median (s) | min-max (s) | tenants |",
        "|---|---:|---:|---:|",
        *("| " + " | ".join(r) + " |" for r in list_rows),
        "",
        "| API (in this process) | p50 (ms) | max (ms) | first call (ms) | tenants |",
        "|---|---:|---:|---:|---:|",
        *("| " + " | ".join(r) + " |" for r in api_rows),
        "",
        f"### 3. From a spec change to helm ({args.changes} changes, one at a time)",
        "",
        "| step | p50 (s) | max (s) |",
        "|---|---:|---:|",
        *("| " + " | ".join(r) + " |" for r in latency_rows),
        "",
        f"### 4. Fleet upgrade of {m} tenants (a new pod annotation), 10 at a time",
        "",
        f"{args.rounds} rounds through the operator and with bare helm with its flags, the "
        "order alternating (helm first in the first round); no operator runs during bare "
        "helm's. Bare helm with its default flags once, first. Each release's history was "
        f"filled to --history-max ({ob.settings.history_max} revisions) before any of them, "
        "by untimed bare helm upgrades: helm decodes the whole stored history on each upgrade, "
        "so both paths pay the same.",
        "",
        "| path | median (s) | each run (s) | tenants/s |",
        "|---|---:|---|---:|",
        f"| through the operator (OdooTenants patched, until all Ready) | {t_op:.1f} "
        f"| {', '.join(f'{x:.1f}' for x in t_ops)} | {m / t_op:.2f} |",
        f"| bare `helm upgrade --wait --wait-for-jobs`, 10 at a time | {t_helm:.1f} "
        f"| {t_helm:.1f} | {m / t_helm:.2f} |",
        f"| the same with the operator's `{NO_CLIENT_VALIDATION}` | {t_helm_same:.1f} "
        f"| {', '.join(f'{x:.1f}' for x in same)} | {m / t_helm_same:.2f} |",
        "",
        "### 5. Takeover (Lease 6 s / renew 4 s / retry 1 s)",
        "",
        "| leader stopped by | runs | seconds until the standby holds the Lease |",
        "|---|---:|---|",
        f"| SIGKILL of its process group | {len(kills)} | "
        + ", ".join(f"{x:.2f}" for x in kills)
        + " |",
        f"| SIGTERM (graceful: the Lease released) | {len(terms)} | "
        + ", ".join(f"{x:.2f}" for x in terms)
        + " |",
        "",
        "### Targets",
        "",
        "| target | measured | met |",
        "|---|---|---|",
        *(f"| {a} | {b} | {'yes' if c else '**no**'} |" for a, b, c in verdict),
        "",
        "Notes: "
        + " ".join(notes)
        + f" During part 3 and the first round of part 4 ({args.changes + m} spec changes) "
        "the operator made "
        f"{upgrades['reconciles']} reconciles, {upgrades['failures']} of them failed (retried "
        f"with back-off), and ran {upgrades['helm_calls']} helm processes."
        + f" The last operator's counters: {last.get('reconciles')} reconciles, "
        f"{last.get('failures')} failures, {last.get('helm_calls')} helm calls. API requests per "
        "sweep count every request of the operator's own client between two sweeps (the "
        "sweep's lists and any reconcile) plus the informer's lists and watches; the Lease's "
        "renewals (one per second here) are apart. The first pass reconciles every "
        "OdooTenant once (status written, no helm call when in sync); the timings have the "
        "stats file's 1 s resolution.",
        "",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
