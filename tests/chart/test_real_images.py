"""What breaks on real images and real clusters (issue #14), at render level: each fault's whole
kind over `helm template`. The in-pod programs' side is tested in tests/backups/test_programs.py
(against the local PostgreSQL) and tests/chart/test_scripts.py."""

from __future__ import annotations

import configparser
import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.chart.helpers import (
    CHART,
    RELEASE,
    SCENARIO_IDS,
    SCENARIOS,
    container,
    env,
    find,
    labels,
    one,
    pod_template,
    render,
    render_error,
    scenario_args,
    workloads,
)
from tests.support import ROOT

pytestmark = pytest.mark.chart

SERIES = ["17.0", "18.0", "19.0"]
WEB = f"{RELEASE}-odoo-tenant"
PG = f"{RELEASE}-odoo-tenant-postgresql"
BACKUP = f"{RELEASE}-odoo-tenant-backup"
CONFIG = f"{RELEASE}-odoo-tenant-config"
PLANS = sorted((ROOT / "values" / "plans").glob("*.yaml"))
PLAN_IDS = [p.stem for p in PLANS]
#: Every pod kind the chart renders: web, cron, PostgreSQL, backup (and the restore/verify
#: Jobs made from its template), helm test.
ALL_PODS = ("--set", "odoo.cron.dedicated=true")


def plan_args(plan: Path, tmp_path: Path) -> tuple[str, ...]:
    values = tmp_path / f"{plan.stem}-values.yaml"
    values.write_text(yaml.safe_dump(yaml.safe_load(plan.read_text())["values"]))
    return ("--values", str(ROOT / "values" / "base.yaml"), "--values", str(values))


def confs(docs: list[dict[str, Any]]) -> dict[str, str]:
    data: dict[str, str] = one(docs, "ConfigMap", CONFIG)["data"]
    return data


def strict_options(text: str) -> dict[str, str]:
    """[options] as Odoo reads them: a duplicate key is an error (DuplicateOptionError)."""
    parser = configparser.RawConfigParser(strict=True, comment_prefixes=(";", "#"))
    parser.read_string(text)
    return dict(parser["options"])


def pods(docs: list[dict[str, Any]]) -> dict[str, tuple[dict[str, Any], dict[str, Any]]]:
    """component -> (pod labels, pod spec) of every workload."""
    out = {}
    for obj, spec in workloads(docs):
        meta = pod_template(obj)["metadata"]
        out[meta["labels"]["app.kubernetes.io/component"]] = (meta["labels"], spec)
    return out


# -- 2: odoo.conf never holds a key twice ---------------------------------------------------

FULL = (
    "--set", "odoo.cron.dedicated=true", "--set", "odoo.smtp.enabled=true",
    "--set", "odoo.smtp.host=smtp.example.com", "--set", "odoo.smtp.user=mailer",
    "--set", "odoo.smtp.existingSecret=smtp", "--set", "odoo.smtp.from=noreply@example.com",
)  # fmt: skip
EXTERNAL = tuple(scenario_args(CHART / "ci" / "external-db-values.yaml"))


def written_options(helm3: Path) -> set[str]:
    """Every option any configuration of the chart writes (web and cron, SMTP, external DB),
    plus the secrets odoo-init appends."""
    keys = {"db_password", "admin_passwd", "smtp_password"}
    for args in ((), FULL, EXTERNAL):
        for text in confs(render(helm3, *args)).values():
            keys |= set(strict_options(text))
    return keys


def test_every_option_the_chart_writes_is_refused_in_extra_options(helm3: Path) -> None:
    keys = written_options(helm3)
    assert {"workers", "proxy_mode", "max_cron_threads", "log_level", "db_maxconn"} <= keys
    for key in sorted(keys):
        for args in ((), FULL):
            error = render_error(helm3, *args, "--set", f"odoo.config.extraOptions.{key}=1")
            assert f"odoo.config.extraOptions.{key}: the chart sets {key} from" in error, key


@pytest.mark.parametrize("args", [(), FULL, EXTERNAL], ids=["default", "full", "external"])
def test_extra_options_are_written_once_beside_the_charts(
    helm3: Path, args: tuple[str, ...]
) -> None:
    docs = render(
        helm3, *args, "--set", "odoo.config.extraOptions.limit_request=8192",
        "--set", "odoo.config.extraOptions.unaccent=true",
        "--set", "odoo.config.extraOptions.server_wide_modules=base\\,web",
    )  # fmt: skip
    for text in confs(docs).values():
        options = strict_options(text)  # raises on any duplicate
        assert options["limit_request"] == "8192" and options["unaccent"] == "True"
        assert options["server_wide_modules"] == "base,web"
        assert len(re.findall(r"^limit_request = ", text, re.M)) == 1


# -- 3: DNS egress for every pod kind, as selectors or ipBlocks --------------------------------


def selects(selector: dict[str, Any], pod_labels: dict[str, str]) -> bool:
    wanted = selector.get("matchLabels", {})
    if any(pod_labels.get(k) != v for k, v in wanted.items()):
        return False
    for expr in selector.get("matchExpressions", []):
        if expr["operator"] == "In" and pod_labels.get(expr["key"]) not in expr["values"]:
            return False
    return True


def egress_of(docs: list[dict[str, Any]], pod_labels: dict[str, str]) -> list[dict[str, Any]]:
    rules = []
    for policy in find(docs, "NetworkPolicy"):
        if selects(policy["spec"]["podSelector"], pod_labels):
            rules += policy["spec"].get("egress") or []
    return rules


NODELOCAL = [{"ipBlock": {"cidr": "169.254.20.10/32"}}]
KUBE_DNS = [
    {
        "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "kube-system"}},
        "podSelector": {"matchLabels": {"k8s-app": "kube-dns"}},
    }
]


@pytest.mark.parametrize(
    ("dns_to", "peers"),
    [(None, KUBE_DNS), (NODELOCAL, NODELOCAL), (NODELOCAL + KUBE_DNS, NODELOCAL + KUBE_DNS)],
    ids=["selectors", "nodelocal-ipblock", "ipblock-and-selectors"],
)
@pytest.mark.parametrize("storage", ["pvc", "s3"])
def test_every_pod_kind_gets_the_dns_egress(
    helm3: Path, dns_to: list[dict[str, Any]] | None, peers: list[dict[str, Any]], storage: str
) -> None:
    args = [*ALL_PODS, "--set", f"backup.storage={storage}"]
    if storage == "s3":
        args += ["--set", "backup.s3.endpoint=https://s3.example.com", "--set",
                 "backup.s3.bucket=backups", "--set", "backup.s3.existingSecret=s3"]  # fmt: skip
    if dns_to is not None:
        args += ["--set-json", f"networkPolicy.dns.to={json.dumps(dns_to)}"]
    docs = render(helm3, *args)
    kinds = pods(docs)
    assert set(kinds) == {"odoo", "cron", "postgresql", "backup", "test"}
    for component, (pod_labels, _) in kinds.items():
        rules = egress_of(docs, pod_labels)
        dns = [r for r in rules if {p["port"] for p in r.get("ports", [])} == {53}]
        if component == "postgresql":
            assert rules == []  # resolves nothing, reaches nothing
            continue
        assert len(dns) == 1, component
        assert dns[0]["to"] == peers, component
        assert sorted(p["protocol"] for p in dns[0]["ports"]) == ["TCP", "UDP"]


# -- 5/6: reproducible images, a glibc-independent collation, the dumping client -------------


@pytest.mark.parametrize("series", SERIES)
def test_postgresql_is_pinned_and_initialized_without_a_glibc_collation(
    helm3: Path, series: str
) -> None:
    docs = render(helm3, "--set", f"odoo.version={series}")
    pg = container(pod_template(one(docs, "StatefulSet", PG))["spec"], "postgresql")
    assert re.fullmatch(r"docker\.io/library/postgres:\d+\.\d+-[a-z]+", pg["image"]), pg["image"]
    args = env(pg)["POSTGRES_INITDB_ARGS"].split()
    assert "--encoding=UTF8" in args and "--locale=C.UTF-8" in args
    assert {"--locale-provider=builtin", "--builtin-locale=C.UTF-8"} <= set(args)


@pytest.mark.parametrize(("tag", "provider"), [("16.10-bookworm", False), ("18.1-trixie", True)])
def test_initdb_locale_follows_the_servers_major(helm3: Path, tag: str, provider: bool) -> None:
    docs = render(helm3, "--set", f"postgresql.image.tag={tag}")
    pg = container(pod_template(one(docs, "StatefulSet", PG))["spec"], "postgresql")
    args = env(pg)["POSTGRES_INITDB_ARGS"]
    assert "--locale=C.UTF-8" in args
    assert ("--locale-provider=builtin" in args) is provider  # builtin: PostgreSQL 17+


@pytest.mark.parametrize("tag", ["17", "latest", "bookworm"])
def test_a_floating_postgresql_tag_is_refused_unless_a_digest_pins_it(
    helm3: Path, tag: str
) -> None:
    error = render_error(helm3, "--set", f"postgresql.image.tag={tag}")
    assert f"postgresql.image.tag={tag} is not a full version" in error
    digest = "sha256:" + "a" * 64
    docs = render(helm3, "--set", "postgresql.image.tag=17", "--set",
                  f"postgresql.image.digest={digest}")  # fmt: skip
    pg = container(pod_template(one(docs, "StatefulSet", PG))["spec"], "postgresql")
    assert pg["image"].endswith(f":17@{digest}")


@pytest.mark.parametrize("series", SERIES)
def test_backups_dump_with_the_client_of_the_servers_postgresql_image(
    helm3: Path, series: str
) -> None:
    docs = render(helm3, "--set", f"odoo.version={series}")
    server = container(pod_template(one(docs, "StatefulSet", PG))["spec"], "postgresql")["image"]
    spec = pod_template(one(docs, "CronJob", BACKUP))["spec"]
    init = container(spec, "pg-client")
    assert init["image"] == server
    assert init["command"] == ["sh", "/opt/odoo-tenant/pg-client.sh", "/opt/pg-client"]
    backup = container(spec, "backup")
    assert backup["image"] == f"docker.io/library/odoo:{series}"
    assert env(backup)["PG_DUMP"] == "/opt/pg-client/bin/pg_dump"
    assert env(backup)["PSQL"] == "/opt/pg-client/bin/psql"
    assert env(backup)["PGCLIENTENCODING"] == "UTF8"
    mounts = {m["name"]: m["mountPath"] for m in backup["volumeMounts"]}
    assert mounts["pg-client"] == "/opt/pg-client"
    scripts = one(docs, "ConfigMap", f"{RELEASE}-odoo-tenant-backup-scripts")["data"]
    assert scripts["pg-client.sh"] == (CHART / "files" / "pg-client.sh").read_text()


def test_an_external_servers_backups_use_the_client_image_given(helm3: Path) -> None:
    docs = render(helm3, *EXTERNAL, "--set", "backup.pgClient.image.tag=18.1-trixie")
    init = container(pod_template(one(docs, "CronJob", BACKUP))["spec"], "pg-client")
    assert init["image"] == "docker.io/library/postgres:18.1-trixie"


# -- 7: connection pools within the server's limit -------------------------------------------


def connections_needed(docs: list[dict[str, Any]]) -> int:
    """What the rendered pods can open: per Odoo process a pool of db_maxconn."""
    data = confs(docs)
    web = strict_options(data["odoo.conf"])
    replicas = max(1, one(docs, "Deployment", f"{RELEASE}-odoo-tenant")["spec"]["replicas"])
    strategy = one(docs, "Deployment", f"{RELEASE}-odoo-tenant")["spec"]["strategy"]["type"]
    pods_ = replicas + (1 if strategy == "RollingUpdate" else 0)
    workers, maxconn = int(web["workers"]), int(web["db_maxconn"])
    per_pod = workers + int(web["max_cron_threads"]) + 2 if workers else 1
    total = pods_ * per_pod * maxconn
    if "odoo-cron.conf" in data:
        total += (int(strict_options(data["odoo-cron.conf"])["max_cron_threads"]) + 1) * maxconn
    return total


def max_connections(docs: list[dict[str, Any]]) -> int:
    pg = container(pod_template(one(docs, "StatefulSet", PG))["spec"], "postgresql")
    [setting] = [a for a in pg["args"] if a.startswith("max_connections=")]
    return int(setting.split("=")[1])


@pytest.mark.parametrize("scenario", SCENARIOS, ids=SCENARIO_IDS)
def test_the_servers_max_connections_covers_every_pool(helm3: Path, scenario: Path) -> None:
    docs = render(helm3, *scenario_args(scenario))
    if not find(docs, "StatefulSet", PG):
        return  # external: see test_external_database_connections_are_checked
    assert max_connections(docs) >= connections_needed(docs) + 3  # + superuser slots


@pytest.mark.parametrize("plan", PLANS, ids=PLAN_IDS)
def test_every_plans_pools_fit_its_server(helm3: Path, plan: Path, tmp_path: Path) -> None:
    docs = render(helm3, *plan_args(plan, tmp_path))
    assert max_connections(docs) >= connections_needed(docs) + 3


def test_websocket_scenario_needs_more_than_the_default_100(helm3: Path) -> None:
    docs = render(helm3, *scenario_args(CHART / "ci" / "websocket-values.yaml"))
    assert connections_needed(docs) > 100 and max_connections(docs) > 100


def test_a_max_connections_below_the_pools_is_refused(helm3: Path) -> None:
    error = render_error(helm3, "--set-string", "postgresql.parameters.max_connections=50")
    assert "postgresql.parameters.max_connections=50 is below the" in error
    docs = render(helm3, "--set-string", "postgresql.parameters.max_connections=400")
    assert max_connections(docs) == 400


def test_external_database_connections_are_checked(helm3: Path) -> None:
    error = render_error(helm3, *EXTERNAL, "--set", "externalDatabase.maxConnections=40")
    assert "externalDatabase.maxConnections=40 is below the" in error
    render(helm3, *EXTERNAL, "--set", "externalDatabase.maxConnections=200")


# -- 8: memory limits from Odoo's guidance, within the container's -------------------------

ODOO_DEFAULT_HARD = 2560 << 20


@pytest.mark.parametrize("plan", [None, *PLANS], ids=["chart-defaults", *PLAN_IDS])
def test_worker_memory_limits_follow_odoos_defaults_within_the_container(
    helm3: Path, plan: Path | None, tmp_path: Path
) -> None:
    from tests.chart.test_quota import quantity

    docs = render(helm3, *(plan_args(plan, tmp_path) if plan else ()))
    for key, text in confs(docs).items():
        options = strict_options(text)
        soft, hard = int(options["limit_memory_soft"]), int(options["limit_memory_hard"])
        assert ODOO_DEFAULT_HARD <= hard and 2048 << 20 <= soft < hard, key
    for component in ("odoo", "cron"):
        for obj in find(docs, "Deployment"):
            if labels(obj)["app.kubernetes.io/component"] != component:
                continue
            limit = container(pod_template(obj)["spec"], "odoo")["resources"]["limits"]["memory"]
            assert quantity(limit) >= hard, (component, limit)


def test_a_container_limit_below_the_workers_hard_limit_is_refused(helm3: Path) -> None:
    error = render_error(helm3, "--set", "odoo.resources.limits.memory=1536Mi")
    assert "odoo.resources.limits.memory=1536Mi is below odoo.config.limitMemoryHard" in error
    error = render_error(helm3, "--set", "odoo.config.limitMemorySoft=3000000000")
    assert "limitMemorySoft=3000000000 must be below" in error


# -- 9: liveness independent of a free worker ----------------------------------------------


@pytest.mark.parametrize("workers", [0, 2, 8])
def test_liveness_needs_no_free_worker_readiness_checks_health(helm3: Path, workers: int) -> None:
    docs = render(helm3, "--set", f"odoo.config.workers={workers}")
    odoo = container(
        pod_template(one(docs, "Deployment", f"{RELEASE}-odoo-tenant"))["spec"], "odoo"
    )
    assert odoo["livenessProbe"]["tcpSocket"] == {"port": "http"}
    assert "httpGet" not in odoo["livenessProbe"]
    assert odoo["readinessProbe"]["httpGet"]["path"] == "/web/health"
    assert odoo["startupProbe"]["httpGet"]["path"] == "/web/health"


# -- 10: http_interface ----------------------------------------------------------------------


@pytest.mark.parametrize("series", SERIES)
def test_http_interface_is_set_for_every_series(helm3: Path, series: str) -> None:
    data = confs(render(helm3, "--set", f"odoo.version={series}", *ALL_PODS))
    assert strict_options(data["odoo.conf"])["http_interface"] == "0.0.0.0"
    assert "http_interface" not in strict_options(data["odoo-cron.conf"])  # serves no HTTP


# -- 11: the odoo user of each series --------------------------------------------------------


@pytest.mark.parametrize(("series", "uid"), [("17.0", 101), ("18.0", 100), ("19.0", 100)])
def test_pods_run_as_the_odoo_user_of_their_series_image(
    helm3: Path, series: str, uid: int
) -> None:
    docs = render(helm3, "--set", f"odoo.version={series}", *ALL_PODS)
    for component, (_, spec) in pods(docs).items():
        if component == "postgresql":
            continue
        context = spec["securityContext"]
        assert (context["runAsUser"], context["runAsGroup"], context["fsGroup"]) == (uid, 101, 101)
    docs = render(helm3, "--set", f"odoo.version={series}", "--set",
                  "odoo.podSecurityContext.runAsUser=1000")  # fmt: skip
    spec = pod_template(one(docs, "Deployment", f"{RELEASE}-odoo-tenant"))["spec"]
    assert spec["securityContext"]["runAsUser"] == 1000


# -- 12: first boot independent of negative DNS caching -----------------------------------


def test_postgresql_name_resolves_before_the_server_is_ready(
    default_docs: list[dict[str, Any]],
) -> None:
    # Clients connect through a ClusterIP Service: its name resolves as soon as it exists,
    # where a headless Service's name is NXDOMAIN (cached by CoreDNS for 30 s) until the
    # pod has an address.
    clients = one(default_docs, "Service", f"{PG}-rw")
    assert clients["spec"].get("clusterIP") != "None"
    assert clients["spec"]["type"] == "ClusterIP"
    assert clients["spec"]["publishNotReadyAddresses"] is True
    web = pod_template(one(default_docs, "Deployment", f"{RELEASE}-odoo-tenant"))["spec"]
    hosts = {
        e["value"]
        for c in web["initContainers"] + web["containers"]
        for e in c.get("env", [])
        if e["name"] == "PGHOST"
    }
    assert hosts == {f"{PG}-rw"}
    # The headless Service stays the StatefulSet's governing Service (serviceName is immutable).
    assert one(default_docs, "Service", PG)["spec"]["clusterIP"] == "None"


# -- 13: volumes writable for their group whichever pod mounts them first -------------------


@pytest.mark.parametrize("replicas", [0, 1])
def test_every_pod_mounts_its_volumes_read_write_with_one_fs_group(
    helm3: Path, replicas: int
) -> None:
    docs = render(helm3, *ALL_PODS, "--set", f"odoo.replicas={replicas}")
    groups: dict[str, set[int]] = {}
    for component, (_, spec) in pods(docs).items():
        for volume in spec.get("volumes", []):
            claim = volume.get("persistentVolumeClaim")
            if claim is None:
                continue
            # A read-only volume gets no fsGroup: if that pod mounts it first, the kubelet
            # (and `local` volumes later too) leaves its group as it was.
            assert not claim.get("readOnly"), (component, volume["name"])
            groups.setdefault(claim["claimName"], set()).add(spec["securityContext"]["fsGroup"])
    assert {claim: len(g) for claim, g in groups.items()} == dict.fromkeys(groups, 1)
    web = pod_template(one(docs, "Deployment", f"{RELEASE}-odoo-tenant"))["spec"]
    mounts = {m["name"]: m for m in container(web, "odoo")["volumeMounts"]}
    assert mounts["backups"]["readOnly"] is True  # Odoo itself still cannot write there


# -- 14/15: what the in-pod programs get from the chart ------------------------------------


@pytest.mark.parametrize("series", SERIES)
def test_backup_jobs_get_the_charts_odoo_version_and_a_connect_retry(
    helm3: Path, series: str
) -> None:
    docs = render(helm3, "--set", f"odoo.version={series}", "--set",
                  "backup.connectRetrySeconds=45")  # fmt: skip
    backup = env(container(pod_template(one(docs, "CronJob", BACKUP))["spec"], "backup"))
    assert backup["SAASODOO_ODOO_VERSION"] == series
    assert backup["SAASODOO_CONNECT_RETRY_SECONDS"] == "45"
    test = container(
        pod_template(one(docs, "Job", f"{RELEASE}-odoo-tenant-test"))["spec"], "signin"
    )
    assert test["command"] == ["python3", "/scripts/signin-check.py"]  # waits for Odoo itself
    init = container(pod_template(one(docs, "Deployment", f"{RELEASE}-odoo-tenant"))["spec"],
                     "odoo-init")  # fmt: skip
    assert any(arg.startswith("--timeout=") for arg in init["command"])
