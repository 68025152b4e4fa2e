"""``make bench`` (part real node): a tenant on the real node, create -> login page through
Traefik, made by the operator with `-i base` and from a template database (issue #25 point 3).

Runs on the real node of a cluster of its own (``saasodoo-bench``, started by
``scripts/cluster.sh up`` with its real node and its S3 server) unless SAASODOO_KUBECONFIG names
another with a real node. The operator runs as a process (``saasodoo operator run``), tenants
keep their backups in the S3 server (``SAASODOO_TENANT_VALUES``), where the templates are kept
too. For each path, `-i base` (``SAASODOO_TEMPLATES=0``) then the template
(``SAASODOO_TEMPLATES=1``: a first tenant builds it, untimed), tenants are created with
``saasodoo tenant create`` in operator mode (the CLI as a user runs it: writes the OdooTenant,
follows its status until Ready), one after another (``--runs``) and then ``--batch`` at once;
each run polls ``https://<tenant>.<base>/web/login`` through Traefik on 127.0.0.1 every 0.2 s
until Odoo's login page answers, then the tenants are deleted.

    python bench/realnode.py [--runs 5] [--batch 5] [--idle 30] [--out docs/benchmarks.md]

The breakdown comes from the pods' own status (Kubernetes keeps whole seconds): image start
(PodScheduled -> the first container started; images are local, so this is the sandbox and the
container start), PostgreSQL init (its container started -> Ready), the template's restore Job
(its container started -> finished), Odoo init (the ``odoo-init`` init container: ``-i base``,
or the wait for the restore and the personalization), Odoo ready (its container started ->
Ready) and the route (Odoo Ready -> Traefik serves the page). Then the idle CPU (percent of one
core over ``--idle`` seconds) and memory (PSS, MiB) of the real node's components and of one
idle tenant. Writes its section of docs/benchmarks.md between ``<!-- realnode-bench: -->``
markers.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

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
    cli: float  # create started -> `saasodoo tenant create` returned (tenant Ready) (s)
    image_start: float
    postgres_init: float
    restore: float | None  # the template's restore Job (None: -i base)
    odoo_init: float
    odoo_ready: float
    route: float
    cpu: float  # CPU seconds the whole machine spent, create -> served, per tenant of the batch


SAASODOO = str(Path(sys.executable).with_name("saasodoo"))  # the venv's console script
#: The paths measured: (name in the report, SAASODOO_TEMPLATES).
PATHS = (("`-i base`", "0"), ("template", "1"))
#: Namespace of the OdooTenants (the operator's system namespace here).
SYSTEM_NAMESPACE = "saasodoo-bench"
#: The platform's S3 key pair: the S3 server's own Secret (scripts/s3.sh), copied into each
#: tenant's namespace as backup.s3.existingSecret by the operator.
S3_SECRET, TENANT_SECRET = "s3/s3-root", "backup-s3"


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


def pod_of(core: client.CoreV1Api, namespace: str, selector: str) -> client.V1Pod:
    pods = core.list_namespaced_pod(namespace, label_selector=selector).items
    if not pods:
        raise SystemExit(f"no pod {selector} in {namespace}")
    return max(pods, key=lambda p: p.metadata.creation_timestamp)


def component(core: client.CoreV1Api, namespace: str, name: str) -> client.V1Pod:
    return pod_of(core, namespace, f"app.kubernetes.io/component={name}")


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


def span(statuses: list[client.V1ContainerStatus] | None, container: str, pod: str) -> float:
    for s in statuses or []:
        if s.name == container and s.state.terminated:
            t = s.state.terminated
            return float((t.finished_at - t.started_at).total_seconds())
    raise SystemExit(f"container {container} of {pod} did not finish")


def restore_span(core: client.CoreV1Api, namespace: str, tid: str) -> float | None:
    """The template restore Job's container, started -> finished (None: no such Job)."""
    pods = core.list_namespaced_pod(
        namespace, label_selector=f"job-name={tid[:40]}-template-restore"
    ).items
    if not pods:
        return None
    return span(pods[0].status.container_statuses, "backup", pods[0].metadata.name)


def stat_fields() -> list[int]:
    """/proc/stat's first line: user nice system idle iowait irq softirq steal (ticks)."""
    return [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]


def machine_busy() -> float:
    """CPU seconds the machine spent busy since boot, all cores (/proc/stat: every field but
    idle and iowait)."""
    fields = stat_fields()
    return (sum(fields) - fields[3] - fields[4]) / TICK


def busy_seconds() -> float:
    """``machine_busy`` less this bench's own CPU and that of the processes it ran and
    waited for (the `saasodoo` CLIs, which follow the status as a user's would): the
    platform's part."""
    own = sum(
        u.ru_utime + u.ru_stime
        for u in (resource.getrusage(resource.RUSAGE_SELF),
                  resource.getrusage(resource.RUSAGE_CHILDREN))
    )  # fmt: skip
    return machine_busy() - own


#: The kubelet's cgroup root on the real node (scripts/realnode.sh: ``cgroupRoot``, cgroupfs
#: driver, cgroup v1 here): a pod's CPU is ``cpuacct.usage`` of its ``pod<uid>`` directory.
POD_CGROUPS = Path("/sys/fs/cgroup/cpuacct/saasodoo-rn1/kubepods")
#: Processes outside pods, by a word of their command line: (group, word).
HOST_PROCESSES = (("kube-apiserver", "kube-apiserver"), ("etcd", "etcd"),
                  ("kube-controller-manager", "kube-controller-manager"),
                  ("kube-scheduler", "kube-scheduler"), ("kwok-controller", "kwok-controller"),
                  ("operator (and its helm processes)", "operator run"),
                  ("containerd (and its shims, runc, CNI plugins)", "containerd"),
                  ("kubelet", "kubelet"), ("kube-proxy", "kube-proxy"),
                  ("kube-router", "kube-router"))  # fmt: skip


#: The rows of CpuMeter.stop after "the rest": parts of the machine's time no group has.
APART = ("of it niced processes", "of it irq and softirq", "of it stolen by the hypervisor")


class CpuMeter:
    """Where the machine's CPU went between ``start`` and ``stop``, by component: processes
    outside pods by command line, their own CPU plus that of the children they waited for
    (helm under the operator; runc, the shims and the CNI plugins under containerd), and
    pods by their cgroup (``POD_CGROUPS``), sampled while they live (``sample``: a finished
    Job's pod cgroup is removed with its CPU), named by namespace and component label.
    Every group is per tenant of the batch; "the rest" is the machine's busy time less the
    groups (the bench's own process and CLIs included)."""

    def __init__(self, core: client.CoreV1Api) -> None:
        self.core = core
        self.pods: dict[str, float] = {}  # pod uid -> CPU seconds seen (the last sample)
        self.before_pods: dict[str, float] = {}
        self.before_procs: dict[int, tuple[str, float]] = {}
        self.busy0 = 0.0
        self.stat0: list[int] = []

    @staticmethod
    def pod_usage() -> dict[str, float]:
        out = {}
        for path in POD_CGROUPS.glob("**/pod*/cpuacct.usage"):
            try:
                out[path.parent.name.removeprefix("pod")] = int(path.read_text()) / 1e9
            except (OSError, ValueError):
                continue
        return out

    @staticmethod
    def processes() -> dict[int, tuple[str, float]]:
        out = {}
        for pid in all_pids():
            try:
                cmd = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            except (OSError, UnicodeDecodeError):
                continue
            group = next((g for g, word in HOST_PROCESSES if word in cmd), "")
            if group and not Path(f"/proc/{pid}/cgroup").read_text().count("kubepods"):
                out[pid] = (group, sum(int(f) for f in fields[11:15]) / TICK)
        return out

    def start(self) -> None:
        self.stat0 = stat_fields()
        self.before_pods = self.pod_usage()
        self.pods = dict(self.before_pods)
        self.before_procs = self.processes()
        self.busy0 = machine_busy()

    def sample(self) -> None:
        self.pods.update(self.pod_usage())

    def stop(self, tenants: int) -> list[tuple[str, float]]:
        """(component, CPU seconds per tenant), largest first, "the rest" last."""
        self.sample()
        busy = machine_busy() - self.busy0
        groups: dict[str, float] = {}
        for pid, (group, cpu) in self.processes().items():
            before = self.before_procs.get(pid, (group, 0.0))[1]
            groups[group] = groups.get(group, 0.0) + cpu - before
        names = {}
        for pod in self.core.list_pod_for_all_namespaces().items:
            labels = pod.metadata.labels or {}
            ns = pod.metadata.namespace
            job = labels.get("job-name")
            component = labels.get("app.kubernetes.io/component") or pod.metadata.name
            part = f"Job {job.split('-', 1)[-1]}" if job else component
            names[pod.metadata.uid.replace("_", "-")] = (
                f"tenant pods: {part}" if ns.startswith("tenant-") else f"{ns} pods"
            )
        for uid, cpu in self.pods.items():
            used = cpu - self.before_pods.get(uid, 0.0)
            if used > 0:
                name = names.get(uid.replace("_", "-"), "pods that ended (their cgroup gone)")
                groups[name] = groups.get(name, 0.0) + used
        rows = sorted(((g, c / tenants) for g, c in groups.items() if c > 0.05),
                      key=lambda r: -r[1])  # fmt: skip
        delta = [b - a for a, b in zip(self.stat0, stat_fields(), strict=True)]
        # Of the machine's busy time, what no process of the groups above is charged with
        # directly: niced processes (other work on the machine), the kernel's interrupt work
        # and the hypervisor's steal (this VM's vCPUs given to others).
        apart = zip(APART, (delta[1], delta[5] + delta[6], delta[7]), strict=True)
        return [*rows, ("the rest", (busy - sum(groups.values())) / tenants),
                *((name, ticks / TICK / tenants) for name, ticks in apart)]  # fmt: skip


def batch(
    core: client.CoreV1Api, env: dict[str, str], tids: list[str], meter: CpuMeter | None = None
) -> list[Run]:
    """Create ``tids`` at once; each one's times once its login page is served."""
    for tid in tids:
        delete(env, tid)
    busy0 = busy_seconds()
    if meter is not None:
        meter.start()
    t0 = time.monotonic()
    wall0 = datetime.now(UTC)
    procs = {tid: cli(env, "tenant", "create", tid, "--email", f"admin@{tid}.example",
                      "-o", "json") for tid in tids}  # fmt: skip
    cli_done: dict[str, float] = {}
    served: dict[str, float] = {}
    deadline = t0 + 900
    while len(served) < len(tids) and time.monotonic() < deadline:
        for tid in tids:
            proc = procs[tid]
            if tid not in cli_done and proc.poll() is not None:
                cli_done[tid] = time.monotonic() - t0
                finish(proc, f"create {tid}")
            if tid not in served:
                try:
                    if get_login(f"{tid}.{BASE_DOMAIN}")[0] == 200:
                        served[tid] = time.monotonic() - t0
                except OSError:
                    pass
        if meter is not None:
            meter.sample()
        time.sleep(0.2)
    if len(served) < len(tids):
        raise SystemExit(f"no login page within 900 s: {sorted(set(tids) - set(served))}")
    for tid in tids:
        if tid not in cli_done:
            finish(procs[tid], f"create {tid}")
            cli_done[tid] = time.monotonic() - t0
    cpu = (busy_seconds() - busy0) / len(tids)  # once every CLI was waited for
    out = []
    for tid in tids:
        ns = f"tenant-{tid}"
        pg, odoo = component(core, ns, "postgresql"), component(core, ns, "odoo")
        pg_started = started(pg, "postgresql")
        odoo_ready = condition(odoo, "Ready")
        out.append(Run(
            total=served[tid],
            cli=cli_done[tid],
            image_start=(pg_started - condition(pg, "PodScheduled")).total_seconds(),
            postgres_init=(condition(pg, "Ready") - pg_started).total_seconds(),
            restore=restore_span(core, ns, tid),
            odoo_init=span(odoo.status.init_container_statuses, "odoo-init", odoo.metadata.name),
            odoo_ready=(odoo_ready - started(odoo, "odoo")).total_seconds(),
            route=max(0.0, wall0.timestamp() + served[tid] - odoo_ready.timestamp()),
            cpu=cpu,
        ))  # fmt: skip
    return out


def start_operator(env: dict[str, str], templates: str, log_path: Path) -> subprocess.Popen[bytes]:
    """`saasodoo operator run` with SAASODOO_TEMPLATES=``templates``, once it leads."""
    out = log_path.open("ab")
    proc = subprocess.Popen(
        [SAASODOO, "operator", "run", "--install-crds", "--adopt"],
        env={**env, "SAASODOO_TEMPLATES": templates}, stdout=out, stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL, start_new_session=True,
    )  # fmt: skip
    deadline = time.monotonic() + 120
    while " leads" not in log_path.read_text(errors="replace"):
        if proc.poll() is not None or time.monotonic() > deadline:
            raise SystemExit(f"the operator did not lead; see {log_path}")
        time.sleep(0.5)
    return proc


def stop_operator(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=60)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def template_built(core: client.CustomObjectsApi, tid: str) -> str:
    """The state of ``tid``'s status.template (its build of the image's template)."""
    obj = core.get_namespaced_custom_object("saasodoo.dev", "v1alpha1", SYSTEM_NAMESPACE,
                                            "odootenants", tid)  # fmt: skip
    return str(((obj.get("status") or {}).get("template") or {}).get("state") or "")


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


#: Targets of issue #25 point 3 for a templated create: p50 and max (seconds).
TARGET_P50, TARGET_MAX = 12.0, 20.0


def cpu_table(cpu_by: dict[tuple[str, str], dict[str, float]]) -> list[str]:
    """The lines of the table of ``CpuMeter``'s components (rows) per column."""
    if not cpu_by:
        return []
    columns = list(cpu_by)
    order: dict[str, float] = {}
    for spent in cpu_by.values():
        for group, cpu in spent.items():
            order[group] = max(order.get(group, 0.0), cpu)
    groups = sorted((g for g in order if g not in ("the rest", *APART)), key=lambda g: -order[g])
    return [
        "Where the CPU went, seconds per tenant (one at a time: the median of the runs; at once:",
        "the batch's total divided by its tenants). Processes outside pods with the children they",
        "waited for; pods by their cgroup; \"the rest\" is the machine's busy time less these.",
        "",
        "| component | " + " | ".join(f"{path}, {how}" for path, how in columns) + " |",
        "|---|" + "---:|" * len(columns),
        *(f"| {g} | " + " | ".join(f"{cpu_by[c].get(g, 0.0):.2f}" for c in columns) + " |"
          for g in [*groups, "the rest", *APART]),
        "",
    ]  # fmt: skip


def report(
    results: dict[tuple[str, str], list[Run]],
    idle: list[tuple[str, str, str]],
    seconds: float,
    cpu_by: dict[tuple[str, str], dict[str, float]],
) -> str:
    """``results``: (path, "one at a time" or "N at once") -> runs; ``cpu_by``: the same
    columns -> component -> CPU seconds per tenant (``CpuMeter``)."""
    when = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    columns = list(results)
    lines = [
        BEGIN + " written by bench/realnode.py (make bench); edits here are overwritten -->",
        "## Real node: a tenant created until its login page is served through Traefik (seconds)",
        "",
        f"Made by the operator (a `saasodoo operator run` process) from `saasodoo tenant create`, "
        f"on the real node of the bench cluster ({when}; 2 shared cores; the stand-in images "
        "of images/build.sh, local, so nothing is pulled); backups and templates in the "
        "cluster's S3 server. Each column: p50 / max over its tenants. Targets for a templated "
        f"create: p50 under {TARGET_P50:.0f} s, max under {TARGET_MAX:.0f} s.",
        "",
        "| step | " + " | ".join(f"{path}, {how}" for path, how in columns) + " |",
        "|---|" + "---:|" * len(columns),
    ]
    parts: list[tuple[str, Any]] = [
        ("**create -> login page served through Traefik**", lambda r: r.total),
        ("`saasodoo tenant create` returned (OdooTenant Ready)", lambda r: r.cli),
        ("image start (PostgreSQL pod scheduled -> started)", lambda r: r.image_start),
        ("PostgreSQL init (started -> Ready: initdb, scripts)", lambda r: r.postgres_init),
        ("template restore Job (restore.py, started -> done)", lambda r: r.restore),
        ("Odoo init (`odoo-init`: `-i base`, or the wait for the restore and the "
         "personalization)", lambda r: r.odoo_init),
        ("Odoo ready (container started -> Ready)", lambda r: r.odoo_ready),
        ("route (Odoo Ready -> Traefik serves the page)", lambda r: r.route),
        ("CPU seconds the machine spent per tenant, create -> served (all processes but "
         "the bench's and its CLIs')", lambda r: r.cpu),
    ]  # fmt: skip
    for name, get in parts:
        cells = []
        for key in columns:
            values = [get(r) for r in results[key] if get(r) is not None]
            cells.append(" / ".join(stat(values)) if values else "-")
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    verdicts = []
    for (path, how), runs in results.items():
        if path != "template":
            continue
        p50, top = stat([r.total for r in runs])
        met = float(p50) < TARGET_P50 and float(top) < TARGET_MAX
        verdicts.append(f"{how}: p50 {p50} s, max {top} s: {'met' if met else 'missed'}")
    lines += [
        "",
        "Templated create, targets: " + "; ".join(verdicts) + ".",
        "",
        *cpu_table(cpu_by),
        "Pod timestamps have whole seconds, so the steps are +-1 s each. Both pods start together,",
        "so Odoo's init overlaps PostgreSQL's (and, templated, the restore Job's, which waits",
        "for PostgreSQL); the operator's turn, the helm install and the scheduling come before",
        "them. Tenants created at once share the two cores.",
        "",
        "Until chart 0.3.0 both paths had outliers (about 50 s, and 110 s for a templated",
        "one): PostgreSQL's headless Service name, looked up before its pod had an address,",
        "was answered NXDOMAIN, which CoreDNS keeps for its negative TTL (30 s with",
        "`kubernetes { ttl 30 }` and `cache 30`, kubeadm's defaults, used here); a templated",
        "create's restore then gave up and its web pod fell back to `-i base` after 60 s. The",
        "clients now connect through a ClusterIP Service (`<fullname>-postgresql-rw`), whose",
        "name resolves from the moment it exists. What remains of a templated create, one at",
        "a time: PostgreSQL's first start (the official image's initdb, its init scripts on a",
        "temporary server, then the real start), the restore of the template (a base database",
        "and its filestore), the personalization and the probes. Five at once share two cores.",
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


def s3_values(cluster: str) -> dict[str, Any]:
    """Tenants' backups in the S3 server of the cluster ``cluster`` (scripts/s3.sh env),
    reached through the NetworkPolicy's egress to its pods only."""
    out = subprocess.run(["bash", str(ROOT / "scripts" / "s3.sh"), "env"], check=True,
                         capture_output=True, text=True,
                         env={**os.environ, "SAASODOO_CLUSTER_NAME": cluster})  # fmt: skip
    s3 = dict(line.split("=", 1) for line in out.stdout.splitlines() if "=" in line)
    peers = [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "s3"}},
              "podSelector": {"matchLabels": {"app.kubernetes.io/name": "versitygw"}}}]  # fmt: skip
    return {
        "endpoint": s3["SAASODOO_BACKUP_S3_ENDPOINT"],
        "values": {"backup": {"storage": "s3", "s3": {
            "endpoint": s3["SAASODOO_S3_ENDPOINT"], "bucket": s3["SAASODOO_S3_BUCKET"],
            "region": s3["SAASODOO_S3_REGION"], "existingSecret": TENANT_SECRET,
            "egressTo": peers}}},
    }  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5, help="tenants created one after another")
    parser.add_argument("--batch", type=int, default=5, help="tenants created at once")
    parser.add_argument("--idle", type=float, default=30, help="seconds of the idle measurement")
    parser.add_argument("--out", default=str(ROOT / "docs" / "benchmarks.md"))
    parser.add_argument(
        "--paths",
        choices=("both", "template", "base"),
        default="both",
        help="the paths measured (both for the report; one to try a change)",
    )
    args = parser.parse_args()
    wanted = {"both": ("0", "1"), "template": ("1",), "base": ("0",)}[args.paths]
    paths = [p for p in PATHS if p[1] in wanted]

    kubeconfig = os.environ.get("SAASODOO_KUBECONFIG")
    name = os.environ.get("SAASODOO_CLUSTER_NAME", BENCH_CLUSTER)
    if not kubeconfig:
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
    s3 = s3_values(name)
    env = {
        **os.environ,
        "SAASODOO_KUBECONFIG": kubeconfig,
        "SAASODOO_HELM_BINARY": tools["SAASODOO_HELM4"],
        "SAASODOO_BASE_DOMAIN": BASE_DOMAIN,
        "SAASODOO_NODE_POOL": NODE_POOL,
        "SAASODOO_OPERATOR": "1",
        "SAASODOO_SYSTEM_NAMESPACE": SYSTEM_NAMESPACE,
        "SAASODOO_TENANT_VALUES": json.dumps(s3["values"]),
        "SAASODOO_BACKUP_S3_SECRET": S3_SECRET,
        "SAASODOO_BACKUP_S3_ENDPOINT": s3["endpoint"],
        "SAASODOO_METRICS_PORT": "0",
        "PYTHONPATH": str(ROOT),  # the venv's ``saasodoo`` runs this checkout's code
    }
    config.load_kube_config(config_file=kubeconfig)
    core = client.CoreV1Api()
    custom = client.CustomObjectsApi()
    if not core.list_node(label_selector=NODE_POOL).items:
        raise SystemExit("the cluster has no real node (label saasodoo.dev/real-node=true)")
    log_path = Path(kubeconfig).parent / "bench-operator.log"

    results: dict[tuple[str, str], list[Run]] = {}
    cpu_by: dict[tuple[str, str], dict[str, float]] = {}  # column -> component -> CPU-s
    last = ""
    for index, (path, templates) in enumerate(paths):
        operator = start_operator(env, templates, log_path)
        try:
            if templates == "1":  # the image's template, built by a first tenant (untimed)
                log("template: a first tenant builds the image's template (untimed)")
                batch(core, env, ["rbenchw"])
                deadline = time.monotonic() + 900
                while template_built(custom, "rbenchw") not in ("built", "restored"):
                    if time.monotonic() > deadline:
                        raise SystemExit("the template was not built within 900 s")
                    time.sleep(2)
                delete(env, "rbenchw")
            tag = "t" if templates == "1" else "b"
            one_by_one = []
            spent: dict[str, list[float]] = {}
            for i in range(1, args.runs + 1):
                tid = f"rbench{tag}{i}"
                meter = CpuMeter(core)
                [run] = batch(core, env, [tid], meter)
                for group, cpu in meter.stop(1):
                    spent.setdefault(group, []).append(cpu)
                log(f"{path} {tid}: login page after {run.total:.1f} s")
                one_by_one.append(run)
                delete(env, tid)
            results[(path, "one at a time")] = one_by_one
            cpu_by[(path, "one at a time")] = {g: statistics.median(v) for g, v in spent.items()}
            tids = [f"rbench{tag}c{i}" for i in range(1, args.batch + 1)]
            meter = CpuMeter(core)
            together = batch(core, env, tids, meter)
            cpu_by[(path, f"{len(tids)} at once")] = dict(meter.stop(len(tids)))
            log(f"{path} {len(tids)} at once: login pages after "
                f"{', '.join(f'{r.total:.1f}' for r in together)} s")  # fmt: skip
            results[(path, f"{len(tids)} at once")] = together
            # Each path starts on an empty node (five tenants at once fill its two cores'
            # requests); the very last tenant stays for the idle measurement.
            final = index == len(paths) - 1
            for tid in tids[:-1] if final else tids:
                delete(env, tid)
            last = tids[-1]
        finally:
            stop_operator(operator)
    # The last tenant stays for the idle measurement: one idle tenant beside the daemons.
    time.sleep(10)  # past the login's own work
    groups = daemon_groups()
    ns = f"tenant-{last}"
    for name in ("odoo", "postgresql"):
        uid = component(core, ns, name).metadata.uid
        groups[f"idle tenant: {name} pod"] = in_pod(uid)
    log(f"idle cost over {args.idle:.0f} s")
    idle = idle_cost(groups, args.idle)
    operator = start_operator(env, "1", log_path)
    try:
        delete(env, last)
    finally:
        stop_operator(operator)
    section = report(results, idle, args.idle, cpu_by)
    write_section(Path(args.out), "realnode", section)
    print(section)


if __name__ == "__main__":
    main()
