"""``make bench``: how fast saasodoo is, against bare helm and against the floor, side by side.

Runs on a cluster of its own (the simulated one, ``saasodoo-bench``, scaled to enough fake
nodes for 1,000 tenants) unless SAASODOO_KUBECONFIG names another. Absolute times on a
shared 2-core machine are noise; the ratios measured in one interleaved run are not.

    python bench/run.py [--runs 10] [--n 100] [--big 1000] [--only single,throughput,...]

Writes docs/benchmarks.md and prints the same table. Parts:

1. one tenant, create -> ready: saasodoo vs ``helm upgrade --install --wait`` of the same
   chart and values vs the floor (server-side apply of the same rendered manifests, then
   wait for readiness by watching the API), interleaved;
2. throughput: N tenants at concurrency 1, 4, 16 for saasodoo and the floor;
3. fleet passes: a no-op ``fleet ensure`` (helm calls, API requests) and a fleet upgrade;
4. status of 1,000 tenants: ``saasodoo tenant list`` vs ``helm list -A``;
5. peak RSS of the orchestrator process in 2 and 4.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.sections import kept_sections  # noqa: E402
from saasodoo.context import Context  # noqa: E402
from saasodoo.core.record import SPEC_ANNOTATION  # noqa: E402
from saasodoo.core.spec import PLAN_LABEL, TenantSpec  # noqa: E402
from saasodoo.core.values import ADMIN_SECRET_KEY, ADMIN_SECRET_NAME  # noqa: E402
from saasodoo.release import POD_SECURITY  # noqa: E402
from saasodoo.settings import Settings  # noqa: E402
from saasodoo.tenants import Tenants  # noqa: E402

BENCH_CLUSTER = "saasodoo-bench"


def log(msg: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def tools() -> dict[str, str]:
    out = subprocess.run(
        ["bash", str(ROOT / "scripts/install-tools.sh"), "--env"],
        check=True, capture_output=True, text=True,
    ).stdout  # fmt: skip
    return dict(line.split("=", 1) for line in out.splitlines())


@dataclass
class Bench:
    kubeconfig: Path
    helm: str
    kubectl: str
    ctx: Context
    tenants: Tenants = field(init=False)
    rows: dict[str, list[list[str]]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.tenants = Tenants(self.ctx)

    # -- helpers ------------------------------------------------------------------------------

    def env(self) -> dict[str, str]:
        # PYTHONPATH: a ``saasodoo`` process started from the venv runs this checkout's code.
        return {**os.environ, "KUBECONFIG": str(self.kubeconfig), "PYTHONPATH": str(ROOT)}

    def spec(self, tid: str) -> TenantSpec:
        return TenantSpec.parse({"id": tid, "admin_email": f"admin@{tid}.example"})

    def prepare_namespace(self, spec: TenantSpec) -> None:
        """What saasodoo does before helm runs, done the same way for helm and the floor."""
        kube = self.ctx.kube
        kube.create_tenant_namespace(
            spec.namespace,
            spec.id,
            labels={PLAN_LABEL: spec.plan, **POD_SECURITY},
            annotations={SPEC_ANNOTATION: spec.model_dump_json()},
        )
        kube.create_secret_if_absent(
            spec.namespace, ADMIN_SECRET_NAME, {ADMIN_SECRET_KEY: "bench-password-0123456789"}, {}
        )

    def values_file(self, spec: TenantSpec) -> str:
        fd, path = tempfile.mkstemp(suffix=".yaml")
        with os.fdopen(fd, "w") as f:
            yaml.safe_dump(self.tenants.values_for(spec).values, f)
        return path

    def rendered(self, spec: TenantSpec) -> str:
        path = self.values_file(spec)
        try:
            return subprocess.run(
                [self.helm, "template", spec.release, self.ctx.settings.chart,
                 "-n", spec.namespace, "-f", path, "--skip-tests"],
                check=True, capture_output=True, text=True,
            ).stdout  # fmt: skip
        finally:
            os.unlink(path)

    def wait_ready(self, namespace: str, timeout: float = 300) -> None:
        """Poll the API until every Deployment and StatefulSet is ready (the floor's wait)."""
        apps = self.ctx.kube.apps
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            objs = [
                *apps.list_namespaced_deployment(namespace).items,
                *apps.list_namespaced_stateful_set(namespace).items,
            ]
            if objs and all(
                (o.status.ready_replicas or 0) >= (o.spec.replicas or 0)
                and o.status.observed_generation == o.metadata.generation
                for o in objs
            ):
                return
            time.sleep(0.1)
        raise TimeoutError(f"{namespace} not ready after {timeout}s")

    def delete(self, tids: list[str]) -> None:
        kube = self.ctx.kube
        for tid in tids:
            kube.delete_namespace(f"tenant-{tid}")
        for tid in tids:
            kube.wait_namespace_gone(f"tenant-{tid}", timeout=600)

    # -- the three ways to create a tenant ----------------------------------------------------

    def via_saasodoo(self, tid: str) -> float:
        start = time.perf_counter()
        asyncio.run(self.tenants.create(self.spec(tid)))
        return time.perf_counter() - start

    def via_helm(self, tid: str) -> float:
        spec = self.spec(tid)
        path = self.values_file(spec)
        try:
            start = time.perf_counter()
            self.prepare_namespace(spec)
            subprocess.run(
                [self.helm, "upgrade", "--install", spec.release, self.ctx.settings.chart,
                 "-n", spec.namespace, "-f", path, "--wait", "--timeout", "5m"],
                check=True, capture_output=True, env=self.env(),
            )  # fmt: skip
            return time.perf_counter() - start
        finally:
            os.unlink(path)

    def via_floor(self, tid: str, manifest: str | None = None) -> float:
        spec = self.spec(tid)
        manifest = manifest or self.rendered(spec)  # rendering is not timed
        start = time.perf_counter()
        self.prepare_namespace(spec)
        subprocess.run(
            [self.kubectl, "apply", "--server-side", "--field-manager=bench", "-f", "-"],
            input=manifest, check=True, capture_output=True, text=True, env=self.env(),
        )  # fmt: skip
        self.wait_ready(spec.namespace)
        return time.perf_counter() - start

    # -- parts --------------------------------------------------------------------------------

    def single(self, runs: int) -> None:
        log(f"part 1: one tenant create -> ready, {runs} interleaved runs each")
        times: dict[str, list[float]] = {"saasodoo": [], "helm": [], "floor": []}
        ways: dict[str, Callable[[str], float]] = {
            "saasodoo": self.via_saasodoo, "helm": self.via_helm, "floor": self.via_floor,
        }  # fmt: skip
        for i in range(runs):
            for name, way in ways.items():
                tid = f"b1-{name[:4]}-{i}"
                self.delete([tid])
                times[name].append(way(tid))
                self.delete([tid])
            log(
                f"  run {i + 1}/{runs}: " + ", ".join(f"{k} {v[-1]:.2f}s" for k, v in times.items())
            )
        med = {k: statistics.median(v) for k, v in times.items()}
        rows = []
        for name, values in times.items():
            q = statistics.quantiles(values, n=4) if len(values) >= 2 else [values[0]] * 3
            rows.append([
                name, f"{med[name]:.2f}", f"{q[0]:.2f}-{q[2]:.2f}",
                f"{min(values):.2f}-{max(values):.2f}", f"{med[name] / med['floor']:.2f}",
            ])  # fmt: skip
        self.rows["single"] = rows
        ratio = med["saasodoo"] / med["helm"]
        self.notes.append(
            f"Single tenant: saasodoo / bare helm = {ratio:.2f} (target <= 1.10: "
            f"{'met' if ratio <= 1.10 else f'missed by {(ratio - 1.10) * 100:.0f} points'})."
        )

    def throughput(self, n: int, levels: tuple[int, ...]) -> None:
        log(f"part 2: throughput, {n} tenants at concurrency {levels}")
        rows = []
        for level in levels:
            for name in ("saasodoo", "floor"):
                ids = [f"b2-{name[:4]}-c{level}-{i}" for i in range(n)]
                manifests = {}
                if name == "floor":
                    manifests = {t: self.rendered(self.spec(t)) for t in ids}
                start = time.perf_counter()
                if name == "saasodoo":
                    lat = asyncio.run(self._saasodoo_many(ids, level))
                else:
                    with ThreadPoolExecutor(level) as pool:
                        lat = list(pool.map(self.via_floor, ids, [manifests[t] for t in ids]))
                total = time.perf_counter() - start
                lat.sort()
                p99 = lat[min(len(lat) - 1, int(len(lat) * 0.99))]
                rows.append(
                    [
                        name,
                        str(level),
                        f"{n / total:.2f}",
                        f"{lat[len(lat) // 2]:.2f}",
                        f"{p99:.2f}",
                    ]
                )
                log(f"  {name} c={level}: {n / total:.2f} tenants/s")
                self.delete(ids)
        self.rows["throughput"] = rows
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        self.notes.append(
            f"Peak RSS of the orchestrator during part 2 (saasodoo runs in the bench process; "
            f"helm and kubectl are child processes): {rss:.0f} MB (target < 300 MB)."
        )
        by = {(r[0], r[1]): float(r[2]) for r in rows}
        top = max(levels)
        ratio = by[("saasodoo", str(top))] / by[("floor", str(top))]
        self.notes.append(
            f"Throughput at concurrency {top}: saasodoo / floor = {ratio:.2f} (target >= 0.70: "
            f"{'met' if ratio >= 0.7 else f'missed by {(0.7 - ratio) * 100:.0f} points'})."
        )

    async def _saasodoo_many(self, ids: list[str], level: int) -> list[float]:
        """Creates side by side as the fleet runs tenants (saasodoo.fleet.TenantWorkers)."""
        from saasodoo.fleet import TenantWorkers

        async def one(workers: TenantWorkers, tid: str) -> float:
            start = time.perf_counter()
            await workers.run(lambda: self.tenants.create(self.spec(tid)))
            return time.perf_counter() - start

        async with TenantWorkers(level) as workers:
            return list(await asyncio.gather(*(one(workers, t) for t in ids)))

    def fleet_passes(self, n: int) -> None:
        from saasodoo.fleet import Fleet, FleetTarget

        log(f"part 3: fleet passes over {n} tenants")
        ids = [f"b3-{i:03d}" for i in range(n)]
        self.delete(ids)
        asyncio.run(self._saasodoo_many(ids, 8))
        fleet = Fleet(self.ctx)
        rows = []
        for subset in (ids[: n // 2], ids):
            helm0, api0 = self.ctx.helm.calls, self.ctx.kube.requests
            start = time.perf_counter()
            summary = asyncio.run(fleet.ensure_all(subset))
            took = time.perf_counter() - start
            rows.append([
                f"no-op fleet ensure, {len(subset)} tenants", f"{took:.2f}",
                str(self.ctx.helm.calls - helm0), str(self.ctx.kube.requests - api0),
                json.dumps(summary.to_dict()["counts"]),
            ])  # fmt: skip
        target = FleetTarget(overrides={"odoo": {"image": {"tag": "18.0-20251201"}}})
        helm0, api0 = self.ctx.helm.calls, self.ctx.kube.requests
        start = time.perf_counter()
        summary = asyncio.run(fleet.upgrade(target, ids, canaries=1, max_failures=0))
        took = time.perf_counter() - start
        rows.append([
            f"fleet upgrade (image tag), {n} tenants", f"{took:.2f}",
            str(self.ctx.helm.calls - helm0), str(self.ctx.kube.requests - api0),
            json.dumps(summary.to_dict()["counts"]),
        ])  # fmt: skip
        self.rows["fleet"] = rows
        noop = rows[:2]
        self.notes.append(
            "No-op fleet ensure: "
            + "; ".join(
                f"{r[0].split(', ')[1]}: {r[2]} helm calls, {r[3]} API requests" for r in noop
            )
            + " (target: 0 helm calls, API requests independent of N)."
        )
        self.delete(ids)

    def big_status(self, big: int) -> None:
        log(f"part 4: status of {big} tenants")
        existing = {t.spec.id for t in self.tenants.list_tenants()}
        ids = [f"b4-{i:04d}" for i in range(big)]
        todo = [t for t in ids if t not in existing]
        start = time.perf_counter()

        async def create_all() -> None:
            from saasodoo.fleet import TenantWorkers

            done = 0

            async def one(workers: TenantWorkers, tid: str) -> None:
                nonlocal done
                await workers.run(lambda: self.tenants.create(self.spec(tid), wait=False))
                done += 1
                if done % 100 == 0:
                    log(f"  created {done}/{len(todo)}")

            async with TenantWorkers(16) as workers:
                await asyncio.gather(*(one(workers, t) for t in todo))

        asyncio.run(create_all())
        self.notes.append(
            f"The {big} tenants were created through saasodoo itself (`Tenants.create` without "
            f"--wait, 16 at a time): {len(todo)} in {time.perf_counter() - start:.0f}s."
        )
        cli = [str(ROOT / ".venv/bin/saasodoo"), "tenant", "list", "-o", "json"]
        env = {**os.environ, "SAASODOO_KUBECONFIG": str(self.kubeconfig)}
        t_list = timed(lambda: subprocess.run(cli, check=True, capture_output=True, env=env))
        rss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
        t_helm3 = timed(lambda: subprocess.run(
            [self.helm, "list", "-A", "--max", "0", "-o", "json"],
            check=True, capture_output=True, env=self.env(),
        ))  # fmt: skip
        count = len(
            json.loads(subprocess.run(cli, check=True, capture_output=True, env=env).stdout)
        )
        self.rows["status"] = [
            ["saasodoo tenant list (with status)", f"{t_list:.2f}", str(count)],
            ["helm list -A", f"{t_helm3:.2f}", ""],
        ]
        self.notes.append(
            f"Status of {count} tenants: {t_list:.2f}s (target < 1 s: "
            f"{'met' if t_list < 1 else 'missed'}), {t_helm3 / t_list:.0f}x faster than "
            f"helm list -A (target 50x); peak RSS of the CLI {rss:.0f} MB (target < 300 MB)."
        )

    # -- report -------------------------------------------------------------------------------

    def report(self) -> str:
        helm_version = subprocess.run(
            [self.helm, "version", "--short"], capture_output=True, text=True
        ).stdout.strip()
        lines = [
            "# Benchmarks",
            "",
            f"Run {datetime.now(UTC):%Y-%m-%d %H:%M} UTC on {platform.node()} "
            f"({os.cpu_count()} cores, {platform.machine()}, Python {platform.python_version()}), "
            f"helm {helm_version}, simulated cluster (kwok; no container runs). "
            "Produced by `make bench` (bench/run.py). Absolute times on a shared 2-core machine "
            "are noise; compare the ratios, measured interleaved in one run.",
            "",
        ]
        if "single" in self.rows:
            lines += [
                "## 1. One tenant, create -> ready (seconds)",
                "",
                "| path | median | p25-p75 | min-max | / floor |",
                "|---|---|---|---|---|",
                *("| " + " | ".join(r) + " |" for r in self.rows["single"]),
                "",
            ]
        if "throughput" in self.rows:
            lines += [
                "## 2. Throughput",
                "",
                "| path | concurrency | tenants/s | p50 latency (s) | p99 latency (s) |",
                "|---|---|---|---|---|",
                *("| " + " | ".join(r) + " |" for r in self.rows["throughput"]),
                "",
            ]
        if "fleet" in self.rows:
            lines += [
                "## 3. Fleet passes",
                "",
                "| pass | seconds | helm calls | API requests | outcomes |",
                "|---|---|---|---|---|",
                *("| " + " | ".join(r) + " |" for r in self.rows["fleet"]),
                "",
            ]
        if "status" in self.rows:
            lines += [
                "## 4. Status of many tenants",
                "",
                "| command | seconds | tenants |",
                "|---|---|---|",
                *("| " + " | ".join(r) + " |" for r in self.rows["status"]),
                "",
            ]
        lines += ["## Notes", "", *(f"- {n}" for n in self.notes), ""]
        return "\n".join(lines)


def cluster_up(name: str, nodes: int, real_nodes: int | None = None) -> str:
    """Start (or find) the simulated cluster NAME with NODES fake nodes (and REAL_NODES
    real ones; None: scripts/cluster.sh's default); returns its kubeconfig's path."""
    env = {**os.environ, "SAASODOO_CLUSTER_NAME": name, "SAASODOO_NODES": str(nodes)}
    if real_nodes is not None:
        env["SAASODOO_REAL_NODES"] = str(real_nodes)
    return subprocess.run(
        ["bash", str(ROOT / "scripts/cluster.sh"), "up"],
        check=True, stdout=subprocess.PIPE, text=True, env=env,
    ).stdout.strip().splitlines()[-1]  # fmt: skip


def timed(fn: Callable[[], Any]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10, help="runs per path in part 1")
    parser.add_argument("--n", type=int, default=100, help="tenants per level in part 2")
    parser.add_argument("--levels", default="1,4,16", help="concurrency levels of part 2")
    parser.add_argument("--fleet", type=int, default=20, help="tenants in part 3")
    parser.add_argument("--big", type=int, default=1000, help="tenants in part 4")
    parser.add_argument("--only", default="single,throughput,fleet,status", help="parts to run")
    parser.add_argument("--helm", type=int, default=4, choices=(3, 4))
    parser.add_argument("--nodes", type=int, default=30, help="fake nodes of the bench cluster")
    parser.add_argument("--out", default=str(ROOT / "docs" / "benchmarks.md"))
    args = parser.parse_args()

    t = tools()
    kubeconfig = os.environ.get("SAASODOO_KUBECONFIG") or cluster_up(BENCH_CLUSTER, args.nodes)
    helm = t[f"SAASODOO_HELM{args.helm}"]
    settings = Settings(kubeconfig=Path(kubeconfig), helm_binary=helm, helm_timeout="10m")
    bench = Bench(Path(kubeconfig), helm, t["SAASODOO_KUBECTL"], Context(settings))
    parts = set(args.only.split(","))
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    steps: list[tuple[str, Callable[[], None]]] = [
        ("single", lambda: bench.single(args.runs)),
        ("throughput", lambda: bench.throughput(args.n, tuple(map(int, args.levels.split(","))))),
        ("fleet", lambda: bench.fleet_passes(args.fleet)),
        ("status", lambda: bench.big_status(args.big)),
    ]
    for name, step in steps:
        if name in parts:
            step()
            # after each part: a long run keeps what it measured (and the other programs' sections)
            out.write_text(bench.report() + kept_sections(out))
    print(bench.report())


if __name__ == "__main__":
    main()
