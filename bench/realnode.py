"""``make bench`` (part real node): a tenant on the real node, create -> login page through Traefik.

Runs on the real node of a cluster of its own (``saasodoo-bench``, started by
``scripts/cluster.sh up`` with its real node) unless SAASODOO_KUBECONFIG names another with a
real node. Each run creates a tenant with ``saasodoo tenant create`` (the CLI, as a user runs it,
placed on the real node by the ``node_pool`` setting), polls ``https://<tenant>.<base>/web/login``
through Traefik on 127.0.0.1 every 0.2 s until Odoo's login page answers, then deletes it.

    python bench/realnode.py [--runs 5] [--idle 30] [--out docs/benchmarks.md]

The breakdown comes from the pods' own status (Kubernetes keeps whole seconds): image start
(PodScheduled -> the first container started; images are local, so this is the sandbox and the
container start), PostgreSQL init (its container started -> Ready), Odoo init (the ``odoo-init``
init container, ``-i base`` on a new database), Odoo ready (its container started -> Ready) and
the route (Odoo Ready -> Traefik serves the page). Then the idle CPU (percent of one core over
``--idle`` seconds) and memory (PSS, MiB) of the real node's components and of one idle tenant.
Writes its section of docs/benchmarks.md between ``<!-- realnode-bench: -->`` markers.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from kubernetes import client, config  # noqa: E402

from bench.sections import markers, write_section  # noqa: E402
from tests.realnode.helpers import BASE_DOMAIN, NODE_POOL, get_login  # noqa: E402

BENCH_CLUSTER = "saasodoo-bench"
RUN_DIR = Path("/run/saasodoo-realnode")  # scripts/realnode.sh: one PID file per daemon
BEGIN, END = markers("realnode")
HOST_DAEMONS = ("containerd-1", "kubelet-1", "kube-proxy", "kube-router-1", "api-forwarder")
POD_DAEMONS = ("coredns", "traefik")  # pods on the real node, found by their process name
TICK = os.sysconf("SC_CLK_TCK")


def log(msg: str) -> None:
    print(f"[bench-realnode {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


@dataclass(frozen=True)
class Run:
    total: float  # create started -> login page served through Traefik (s)
    cli: float  # create started -> `saasodoo tenant create` returned (s)
    image_start: float
    postgres_init: float
    odoo_init: float
    odoo_ready: float
    route: float


SAASODOO = str(Path(sys.executable).with_name("saasodoo"))  # the venv's console script


def cli(env: dict[str, str], *args: str) -> subprocess.Popen[str]:
    """`saasodoo ARGS` as a user runs it, started (not waited for)."""
    return subprocess.Popen(
        [SAASODOO, *args], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def delete(env: dict[str, str], tid: str) -> None:
    """Delete TID with its volumes and no final backup; a tenant that is not there is fine."""
    cli(env, "tenant", "delete", tid, "--yes", "--no-final-backup").communicate()


def finish(proc: subprocess.Popen[str], what: str) -> None:
    out, err = proc.communicate()
    if proc.returncode != 0:
        raise SystemExit(f"{what} failed (exit {proc.returncode}): {out}{err}")


def pod_of(core: client.CoreV1Api, namespace: str, component: str) -> client.V1Pod:
    pods = core.list_namespaced_pod(
        namespace, label_selector=f"app.kubernetes.io/component={component}"
    ).items
    if not pods:
        raise SystemExit(f"no {component} pod in {namespace}")
    return max(pods, key=lambda p: p.metadata.creation_timestamp)


def condition(pod: client.V1Pod, kind: str) -> datetime:
    for c in pod.status.conditions or []:
        if c.type == kind and c.status == "True":
            return c.last_transition_time
    raise SystemExit(f"pod {pod.metadata.name} has no {kind} condition")


def started(pod: client.V1Pod, container: str) -> datetime:
    for s in pod.status.container_statuses or []:
        if s.name == container and s.state.running:
            return s.state.running.started_at
    raise SystemExit(f"container {container} of {pod.metadata.name} is not running")


def init_span(pod: client.V1Pod, container: str) -> float:
    for s in pod.status.init_container_statuses or []:
        if s.name == container and s.state.terminated:
            t = s.state.terminated
            return (t.finished_at - t.started_at).total_seconds()
    raise SystemExit(f"init container {container} of {pod.metadata.name} did not finish")


def one_run(core: client.CoreV1Api, env: dict[str, str], tid: str) -> Run:
    delete(env, tid)
    host = f"{tid}.{BASE_DOMAIN}"
    t0 = time.monotonic()
    wall0 = datetime.now(UTC)
    proc = cli(env, "tenant", "create", tid, "--email", f"admin@{tid}.example", "-o", "json")
    cli_done = None
    served = None
    deadline = t0 + 600
    while served is None and time.monotonic() < deadline:
        if cli_done is None and proc.poll() is not None:
            cli_done = time.monotonic() - t0
            finish(proc, f"create {tid}")
        try:
            if get_login(host)[0] == 200:
                served = time.monotonic() - t0
        except OSError:
            pass
        time.sleep(0.2)
    if served is None:
        raise SystemExit(f"{host}: no login page within 600 s")
    if cli_done is None:
        finish(proc, f"create {tid}")
        cli_done = time.monotonic() - t0
    ns = f"tenant-{tid}"
    pg, odoo = pod_of(core, ns, "postgresql"), pod_of(core, ns, "odoo")
    pg_started = started(pg, "postgresql")
    odoo_ready = condition(odoo, "Ready")
    served_wall = wall0.timestamp() + served
    return Run(
        total=served,
        cli=cli_done,
        image_start=(pg_started - condition(pg, "PodScheduled")).total_seconds(),
        postgres_init=(condition(pg, "Ready") - pg_started).total_seconds(),
        odoo_init=init_span(odoo, "odoo-init"),
        odoo_ready=(odoo_ready - started(odoo, "odoo")).total_seconds(),
        route=max(0.0, served_wall - odoo_ready.timestamp()),
    )


# -- idle cost ----------------------------------------------------------------------------


def cpu_ticks(pid: int) -> int:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])  # utime + stime


def pss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
        if line.startswith("Pss:"):
            return int(line.split()[1])
    return 0


def all_pids() -> list[int]:
    return [int(p.name) for p in Path("/proc").iterdir() if p.name.isdigit()]


def by_name(name: str) -> list[int]:
    pids = []
    for pid in all_pids():
        try:
            if Path(f"/proc/{pid}/comm").read_text().strip() == name:
                pids.append(pid)
        except OSError:
            continue
    return pids


def in_pod(uid: str) -> list[int]:
    """Processes of a pod: those whose cgroup path names the pod's UID (either spelling)."""
    marks = (uid, uid.replace("-", "_"))
    pids = []
    for pid in all_pids():
        try:
            cg = Path(f"/proc/{pid}/cgroup").read_text()
        except OSError:
            continue
        if any(m in cg for m in marks):
            pids.append(pid)
    return pids


def idle_cost(groups: dict[str, list[int]], seconds: float) -> list[tuple[str, str, str]]:
    """(name, CPU % of one core, PSS MiB) per group of processes, sampled over SECONDS."""

    def ticks(pids: list[int]) -> int:
        total = 0
        for pid in pids:
            try:
                total += cpu_ticks(pid)
            except OSError:
                continue
        return total

    before = {name: ticks(pids) for name, pids in groups.items()}
    time.sleep(seconds)
    rows = []
    for name, pids in groups.items():
        cpu = (ticks(pids) - before[name]) / TICK / seconds * 100
        mem = 0
        for pid in pids:
            try:
                mem += pss_kib(pid)
            except OSError:
                continue
        rows.append((name, f"{cpu:.1f}", f"{mem / 1024:.0f}"))
    return rows


def daemon_groups() -> dict[str, list[int]]:
    groups: dict[str, list[int]] = {}
    for name in HOST_DAEMONS:
        pidf = RUN_DIR / f"{name}.pid"
        if pidf.exists():
            groups[name.removesuffix("-1")] = [int(pidf.read_text().strip())]
    for name in POD_DAEMONS:
        groups[f"{name} (pod)"] = by_name(name)
    missing = [n for n, p in groups.items() if not p]
    if missing or "kubelet" not in groups:
        raise SystemExit(f"real node daemons not found ({missing or 'kubelet'}): is it up?")
    return groups


# -- report -------------------------------------------------------------------------------


def stat(values: list[float]) -> tuple[str, str]:
    return f"{statistics.median(values):.1f}", f"{max(values):.1f}"


def report(runs: list[Run], idle: list[tuple[str, str, str]], seconds: float) -> str:
    when = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    lines = [
        BEGIN + " written by bench/realnode.py (make bench); edits here are overwritten -->",
        "## Real node: a tenant created until its login page is served through Traefik (seconds)",
        "",
        f"{len(runs)} tenants, one after another, on the real node of the bench cluster ({when};",
        "2 shared cores; the stand-in images of images/build.sh, local, so nothing is pulled).",
        "Target: under 30 s from `saasodoo tenant create` to the login page.",
        "",
        "| step | p50 | max |",
        "|---|---:|---:|",
    ]
    parts = [
        ("**create -> login page served through Traefik**", [r.total for r in runs]),
        ("`saasodoo tenant create` returned (tenant ready)", [r.cli for r in runs]),
        ("image start (PostgreSQL pod scheduled -> started)", [r.image_start for r in runs]),
        ("PostgreSQL init (started -> Ready: initdb, scripts)", [r.postgres_init for r in runs]),
        ("Odoo init (`odoo-init`: waits for PostgreSQL, `-i base`)", [r.odoo_init for r in runs]),
        ("Odoo ready (container started -> Ready)", [r.odoo_ready for r in runs]),
        ("route (Odoo Ready -> Traefik serves the page)", [r.route for r in runs]),
    ]
    for name, values in parts:
        p50, top = stat(values)
        lines.append(f"| {name} | {p50} | {top} |")
    total50, total_max = stat([r.total for r in runs])
    verdict = [
        f"{name} {value} s: {'met' if float(value) < 30 else 'missed'}"
        for name, value in (("p50", total50), ("max", total_max))
    ]
    lines += [
        "",
        f"Target under 30 s: {'; '.join(verdict)}.",
        "",
        "Pod timestamps have whole seconds, so the steps are +-1 s each. Both pods start together,",
        "so Odoo's init overlaps PostgreSQL's; the helm install and the scheduling come before",
        "them. The first create on a fresh node reads the images' files from disk (cold page",
        "cache): the max is usually that one.",
        "",
        f"Idle cost of the real node's components and of one idle tenant (CPU over {seconds:.0f}",
        "s, percent of one core; memory: PSS, shared pages divided among their users):",
        "",
        "| component | CPU % | memory MiB |",
        "|---|---:|---:|",
    ]
    lines += [f"| {n} | {c} | {m} |" for n, c, m in idle]
    lines += ["", END]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5, help="tenants created one after another")
    parser.add_argument("--idle", type=float, default=30, help="seconds of the idle measurement")
    parser.add_argument("--out", default=str(ROOT / "docs" / "benchmarks.md"))
    args = parser.parse_args()

    kubeconfig = os.environ.get("SAASODOO_KUBECONFIG")
    if not kubeconfig:
        name = os.environ.get("SAASODOO_CLUSTER_NAME", BENCH_CLUSTER)
        env = {**os.environ, "SAASODOO_CLUSTER_NAME": name}
        log(f"cluster {env['SAASODOO_CLUSTER_NAME']}: scripts/cluster.sh up (with its real node)")
        kubeconfig = subprocess.run(
            ["bash", str(ROOT / "scripts/cluster.sh"), "up"],
            check=True, stdout=subprocess.PIPE, text=True, env=env,
        ).stdout.strip().splitlines()[-1]  # fmt: skip
    tools = dict(
        line.split("=", 1)
        for line in subprocess.run(
            ["bash", str(ROOT / "scripts/install-tools.sh"), "--env"],
            check=True, capture_output=True, text=True,
        ).stdout.splitlines()
    )  # fmt: skip
    env = {
        **os.environ,
        "SAASODOO_KUBECONFIG": kubeconfig,
        "SAASODOO_HELM_BINARY": tools["SAASODOO_HELM4"],
        "SAASODOO_BASE_DOMAIN": BASE_DOMAIN,
        "SAASODOO_NODE_POOL": NODE_POOL,
    }
    config.load_kube_config(config_file=kubeconfig)
    core = client.CoreV1Api()
    if not core.list_node(label_selector=NODE_POOL).items:
        raise SystemExit("the cluster has no real node (label saasodoo.dev/real-node=true)")

    runs: list[Run] = []
    for i in range(1, args.runs + 1):
        tid = f"rbench{i}"
        run = one_run(core, env, tid)
        log(f"{tid}: login page after {run.total:.1f} s (create returned after {run.cli:.1f} s)")
        runs.append(run)
        if i < args.runs:
            delete(env, tid)
    # The last tenant stays for the idle measurement: one idle tenant beside the daemons.
    last = f"rbench{args.runs}"
    time.sleep(10)  # past the login's own work
    groups = daemon_groups()
    ns = f"tenant-{last}"
    for component in ("odoo", "postgresql"):
        uid = pod_of(core, ns, component).metadata.uid
        groups[f"idle tenant: {component} pod"] = in_pod(uid)
    log(f"idle cost over {args.idle:.0f} s")
    idle = idle_cost(groups, args.idle)
    delete(env, last)
    section = report(runs, idle, args.idle)
    write_section(Path(args.out), "realnode", section)
    print(section)


if __name__ == "__main__":
    main()
