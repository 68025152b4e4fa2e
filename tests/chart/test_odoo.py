"""Odoo: odoo.conf from values, secrets from Secrets, ports, probes, security, spreading,
filestore, web/cron split, database initialization and suspension."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.chart.helpers import (
    CHART,
    container,
    env,
    find,
    odoo_conf,
    one,
    pod_template,
    render,
    render_error,
)

pytestmark = pytest.mark.chart

WEB = "acme-odoo-tenant"
CRON = "acme-odoo-tenant-cron"


def web_spec(docs: list[dict[str, Any]]) -> dict[str, Any]:
    spec: dict[str, Any] = pod_template(one(docs, "Deployment", WEB))["spec"]
    return spec


def test_odoo_conf_is_rendered_from_values_and_pinned_to_the_tenant_database(
    default_docs: list[dict[str, Any]],
) -> None:
    conf = odoo_conf(default_docs)
    assert conf["proxy_mode"] == "True"
    assert conf["workers"] == "2"
    assert conf["max_cron_threads"] == "1"
    assert conf["limit_memory_soft"] == str(2048 << 20)  # Odoo's defaults
    assert conf["limit_memory_hard"] == str(2560 << 20)
    assert conf["limit_time_cpu"] == "60"
    assert conf["limit_time_real"] == "120"
    assert conf["db_name"] == "odoo"
    assert conf["dbfilter"] == "^odoo$"
    assert conf["list_db"] == "False"
    assert conf["data_dir"] == "/var/lib/odoo"
    assert conf["db_host"] == "acme-odoo-tenant-postgresql-rw"
    assert conf["db_user"] == "odoo"
    assert conf["http_port"] == "8069"
    assert conf["gevent_port"] == "8072"


def test_odoo_conf_follows_values(helm3: Path) -> None:
    docs = render(
        helm3,
        "--set", "odoo.config.workers=5",
        "--set", "odoo.config.maxCronThreads=3",
        "--set", "odoo.config.limitTimeReal=300",
        "--set", "odoo.config.extraOptions.limit_request=8192",
        "--set", "odoo.config.extraOptions.unaccent=true",
        "--set", "postgresql.auth.database=acme_prod",
    )  # fmt: skip
    conf = odoo_conf(docs)
    assert (conf["workers"], conf["max_cron_threads"], conf["limit_time_real"]) == ("5", "3", "300")
    assert conf["limit_request"] == "8192"
    assert conf["unaccent"] == "True"
    assert (conf["db_name"], conf["dbfilter"]) == ("acme_prod", "^acme_prod$")


@pytest.mark.parametrize("option", ["db_password", "admin_passwd", "dbfilter", "list_db"])
def test_extra_options_cannot_override_secrets_or_the_database_pinning(
    helm3: Path, option: str
) -> None:
    error = render_error(helm3, "--set", f"odoo.config.extraOptions.{option}=x")
    assert f"odoo.config.extraOptions.{option}: the chart sets {option} from" in error


def test_secrets_reach_odoo_only_through_secret_refs(default_docs: list[dict[str, Any]]) -> None:
    spec = web_spec(default_docs)
    init = env(container(spec, "odoo-init"))
    assert init["PGPASSWORD"] == {"secret": "acme-odoo-tenant-postgresql", "key": "password"}
    assert init["ODOO_MASTER_PASSWORD"] == {
        "secret": "acme-odoo-tenant-odoo",
        "key": "master-password",
    }
    assert init["ODOO_ADMIN_PASSWORD"] == {
        "secret": "acme-odoo-tenant-odoo",
        "key": "admin-password",
    }
    assert init["ODOO_ADMIN_EMAIL"] == "admin@example.com"
    odoo = container(spec, "odoo")
    # The main container reads the assembled file; no secret in its env or command line.
    assert env(odoo) == {"ODOO_RC": "/run/odoo/odoo.conf"}
    assert odoo["command"] == ["odoo"]
    assert odoo["args"] == ["--config=/run/odoo/odoo.conf"]
    config_volume = next(v for v in spec["volumes"] if v["name"] == "config")
    assert config_volume["emptyDir"]["medium"] == "Memory"


def test_admin_password_from_an_existing_secret(helm3: Path) -> None:
    docs = render(
        helm3,
        "--set", "odoo.admin.existingSecret=acme-admin",
        "--set", "odoo.admin.existingSecretKey=pw",
        "--set", "odoo.admin.email=owner@acme.example",
    )  # fmt: skip
    init = env(container(web_spec(docs), "odoo-init"))
    assert init["ODOO_ADMIN_PASSWORD"] == {"secret": "acme-admin", "key": "pw"}
    assert init["ODOO_ADMIN_EMAIL"] == "owner@acme.example"
    managed = one(docs, "Secret", "acme-odoo-tenant-odoo")
    assert set(managed["data"]) == {"master-password"}


def test_generated_secret_is_kept_on_uninstall(default_docs: list[dict[str, Any]]) -> None:
    secret = one(default_docs, "Secret", "acme-odoo-tenant-odoo")
    assert set(secret["data"]) == {"admin-password", "master-password"}
    assert secret["metadata"]["annotations"]["helm.sh/resource-policy"] == "keep"
    assert all(len(v) >= 40 for v in secret["data"].values())  # 32 random chars, base64


@pytest.mark.parametrize(
    ("workers", "ports"), [(0, ["http"]), (2, ["http", "websocket"]), (4, ["http", "websocket"])]
)
def test_ports_8069_and_gevent_8072_with_workers(
    helm3: Path, workers: int, ports: list[str]
) -> None:
    docs = render(helm3, "--set", f"odoo.config.workers={workers}")
    odoo = container(web_spec(docs), "odoo")
    assert [p["name"] for p in odoo["ports"]] == ports
    assert {p["name"]: p["containerPort"] for p in odoo["ports"]}.get("websocket", 8072) == 8072
    service = one(docs, "Service", WEB)
    assert [p["port"] for p in service["spec"]["ports"]] == [8069, 8072][: len(ports)]


def test_probes_on_web_health_survive_a_slow_first_boot(default_docs: list[dict[str, Any]]) -> None:
    odoo = container(web_spec(default_docs), "odoo")
    for probe in ("startupProbe", "readinessProbe"):
        assert odoo[probe]["httpGet"] == {"path": "/web/health", "port": "http"}
    assert odoo["livenessProbe"]["tcpSocket"] == {"port": "http"}  # needs no free worker
    startup = odoo["startupProbe"]
    assert startup["periodSeconds"] * startup["failureThreshold"] >= 600
    assert "initialDelaySeconds" not in odoo["livenessProbe"]  # the startup probe gates it


def test_resources_come_from_values(helm3: Path) -> None:
    docs = render(
        helm3,
        "--set", "odoo.resources.requests.cpu=1",
        "--set", "odoo.resources.limits.memory=3Gi",
    )  # fmt: skip
    resources = container(web_spec(docs), "odoo")["resources"]
    assert resources["requests"]["cpu"] == 1
    assert resources["limits"]["memory"] == "3Gi"


def test_runs_as_the_images_odoo_user(default_docs: list[dict[str, Any]]) -> None:
    spec = web_spec(default_docs)
    sc = spec["securityContext"]
    assert (sc["runAsUser"], sc["runAsGroup"], sc["fsGroup"]) == (100, 101, 101)
    assert spec["enableServiceLinks"] is False
    mounts = {m["mountPath"] for m in container(spec, "odoo")["volumeMounts"]}
    assert {"/var/lib/odoo", "/tmp", "/run/odoo"} <= mounts


def test_web_pods_prefer_distinct_nodes_by_tenant_label(default_docs: list[dict[str, Any]]) -> None:
    anti = web_spec(default_docs)["affinity"]["podAntiAffinity"]
    term = anti["preferredDuringSchedulingIgnoredDuringExecution"][0]["podAffinityTerm"]
    assert term["topologyKey"] == "kubernetes.io/hostname"
    assert term["labelSelector"]["matchLabels"]["saasodoo.dev/tenant"] == "acme"


def test_filestore_pvc_from_values(helm3: Path) -> None:
    docs = render(
        helm3,
        "--set", "odoo.persistence.size=20Gi",
        "--set", "odoo.persistence.storageClass=fast",
    )  # fmt: skip
    pvc = one(docs, "PersistentVolumeClaim", "acme-odoo-tenant-filestore")
    assert pvc["spec"]["resources"]["requests"]["storage"] == "20Gi"
    assert pvc["spec"]["storageClassName"] == "fast"
    assert pvc["spec"]["accessModes"] == ["ReadWriteOnce"]
    volume = next(v for v in web_spec(docs)["volumes"] if v["name"] == "filestore")
    assert volume["persistentVolumeClaim"]["claimName"] == "acme-odoo-tenant-filestore"
    deployment = one(docs, "Deployment", WEB)
    assert deployment["spec"]["strategy"] == {"type": "Recreate"}


def test_existing_filestore_claim(helm3: Path) -> None:
    docs = render(helm3, "--set", "odoo.persistence.existingClaim=old-filestore")
    assert not find(docs, "PersistentVolumeClaim", "acme-odoo-tenant-filestore")
    volume = next(v for v in web_spec(docs)["volumes"] if v["name"] == "filestore")
    assert volume["persistentVolumeClaim"]["claimName"] == "old-filestore"


def test_several_web_pods_need_a_read_write_many_filestore(helm3: Path) -> None:
    error = render_error(helm3, "--set", "odoo.replicas=3")
    assert "odoo.replicas=3 needs a filestore every pod can mount" in error
    assert "ReadWriteMany" in error
    docs = render(
        helm3,
        "--set", "odoo.replicas=3",
        "--set", "odoo.persistence.accessModes={ReadWriteMany}",
        "--set", "quota.enabled=false",
    )  # fmt: skip
    deployment = one(docs, "Deployment", WEB)
    assert deployment["spec"]["replicas"] == 3
    assert deployment["spec"]["strategy"]["type"] == "RollingUpdate"
    pdb = one(docs, "PodDisruptionBudget", WEB)
    assert pdb["spec"]["minAvailable"] == 1
    assert pdb["spec"]["selector"] == deployment["spec"]["selector"]


def test_no_disruption_budget_for_a_single_pod(default_docs: list[dict[str, Any]]) -> None:
    assert not find(default_docs, "PodDisruptionBudget")


def test_web_cron_split(helm3: Path) -> None:
    docs = render(helm3, "--values", str(CHART / "ci" / "cron-split-values.yaml"))
    web_conf, cron_conf = odoo_conf(docs), odoo_conf(docs, "odoo-cron.conf")
    assert web_conf["max_cron_threads"] == "0"
    assert web_conf["http_enable"] == "True"
    assert cron_conf["http_enable"] == "False"
    assert cron_conf["max_cron_threads"] == "2"
    assert cron_conf["db_name"] == web_conf["db_name"]
    cron = pod_template(one(docs, "Deployment", CRON))["spec"]
    odoo = container(cron, "odoo")
    assert "ports" not in odoo and "readinessProbe" not in odoo
    assert "--template=/etc/odoo-tenant/odoo-cron.conf" in container(cron, "odoo-init")["command"]
    assert "--wait" in container(cron, "odoo-init")["command"]
    assert "ODOO_ADMIN_PASSWORD" not in env(container(cron, "odoo-init"))
    # RWO filestore: on the web pod's node.
    term = cron["affinity"]["podAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"][0]
    assert term["labelSelector"]["matchLabels"]["app.kubernetes.io/component"] == "odoo"
    assert term["topologyKey"] == "kubernetes.io/hostname"


def test_database_initialization_runs_in_the_web_pod(default_docs: list[dict[str, Any]]) -> None:
    spec = web_spec(default_docs)
    assert [c["name"] for c in spec["initContainers"]] == ["odoo-init"]
    init = container(spec, "odoo-init")
    assert init["command"][:2] == ["python3", "/opt/odoo-tenant/odoo-init.py"]
    assert "--initialize" in init["command"]
    assert init["image"] == container(spec, "odoo")["image"]
    scripts = one(default_docs, "ConfigMap", "acme-odoo-tenant-scripts")
    script = scripts["data"]["odoo-init.py"]
    assert script == (CHART / "files" / "odoo-init.py").read_text()
    assert '"-i", "base", "--stop-after-init"' in script
    assert "pg_advisory_lock" in script and "ir_module_module" in script


@pytest.mark.parametrize(
    ("version", "demo", "flag"),
    [
        ("17.0", False, "--init-flag=--without-demo=all"),
        ("18.0", False, "--init-flag=--without-demo=all"),
        ("19.0", False, None),
        ("19.0", True, "--init-flag=--with-demo"),
        ("18.0", True, None),
    ],
)
def test_version_selects_the_image_and_the_demo_flag(
    helm3: Path, version: str, demo: bool, flag: str | None
) -> None:
    docs = render(helm3, "--set", f"odoo.version={version}", "--set", f"odoo.demoData={demo}")
    spec = web_spec(docs)
    assert container(spec, "odoo")["image"] == f"docker.io/library/odoo:{version}"
    demo_flags = [a for a in container(spec, "odoo-init")["command"] if "demo" in a]
    assert demo_flags == ([flag] if flag else [])


def test_image_tag_and_digest_pin(helm3: Path) -> None:
    digest = "sha256:" + "a" * 64
    docs = render(
        helm3,
        "--set", "odoo.image.tag=18.0-20250218",
        "--set", f"odoo.image.digest={digest}",
    )  # fmt: skip
    image = container(web_spec(docs), "odoo")["image"]
    assert image == f"docker.io/library/odoo:18.0-20250218@{digest}"
    assert one(docs, "Deployment", WEB)["metadata"]["labels"]["app.kubernetes.io/version"] == (
        "18.0-20250218"
    )


def test_zero_replicas_suspends_web_and_cron(helm3: Path) -> None:
    docs = render(helm3, "--set", "odoo.replicas=0", "--set", "odoo.cron.dedicated=true")
    assert one(docs, "Deployment", WEB)["spec"]["replicas"] == 0
    assert one(docs, "Deployment", CRON)["spec"]["replicas"] == 0
    assert one(docs, "StatefulSet")["spec"]["replicas"] == 1  # the data stays served


def test_smtp_relay_with_password_from_a_secret(helm3: Path) -> None:
    docs = render(
        helm3,
        "--set", "odoo.smtp.enabled=true",
        "--set", "odoo.smtp.host=smtp.example.org",
        "--set", "odoo.smtp.user=mailer",
        "--set", "odoo.smtp.from=noreply@example.org",
        "--set", "odoo.smtp.existingSecret=smtp",
    )  # fmt: skip
    conf = odoo_conf(docs)
    assert (conf["smtp_server"], conf["smtp_port"], conf["smtp_user"]) == (
        "smtp.example.org",
        "587",
        "mailer",
    )
    assert conf["email_from"] == "noreply@example.org"
    assert env(container(web_spec(docs), "odoo-init"))["ODOO_SMTP_PASSWORD"] == {
        "secret": "smtp",
        "key": "smtp-password",
    }
    error = render_error(
        helm3,
        "--set",
        "odoo.smtp.enabled=true",
        "--set",
        "odoo.smtp.host=h",
        "--set",
        "odoo.smtp.user=u",
    )
    assert "odoo.smtp.existingSecret is required" in error


def test_base_url_and_report_url_given_to_the_initialization(
    default_docs: list[dict[str, Any]],
) -> None:
    init = env(container(web_spec(default_docs), "odoo-init"))
    assert init["ODOO_BASE_URL"] == "https://acme.example.com"
    assert init["ODOO_REPORT_URL"] == "http://acme-odoo-tenant:8072"


def test_helm_test_signs_in_with_the_admin_secret(helm3: Path) -> None:
    """Issue #22 point 2: `helm test` proves a signed-in request (files/signin-check.py), not
    only /web/health: the admin's login, the database and the password from the admin Secret
    (a reference, never a value), the script from the scripts ConfigMap."""
    docs = render(helm3, "--set", "odoo.admin.existingSecret=saasodoo-admin")
    job = one(docs, "Job", "acme-odoo-tenant-test")
    assert job["metadata"]["annotations"]["helm.sh/hook"] == "test"
    spec = pod_template(job)["spec"]
    signin = container(spec, "signin")
    assert signin["command"] == ["python3", "/scripts/signin-check.py"]
    variables = env(signin)
    assert variables["ODOO_URL"] == "http://acme-odoo-tenant:8069"
    assert variables["ODOO_DB"] == "odoo" and variables["ODOO_LOGIN"] == "admin@example.com"
    assert variables["ODOO_PASSWORD"] == {"secret": "saasodoo-admin", "key": "admin-password"}
    scripts = one(docs, "ConfigMap", "acme-odoo-tenant-scripts")["data"]["signin-check.py"]
    assert scripts == (CHART / "files" / "signin-check.py").read_text()
    assert "/web/session/authenticate" in scripts


def test_report_url_is_the_web_pod_itself_over_loopback(
    default_docs: list[dict[str, Any]], helm3: Path
) -> None:
    """wkhtmltopdf fetches a PDF report's assets from report.url: the Service's name, which in
    the web pods resolves to the pod itself (no hairpin through the Service, which some CNIs
    drop: kubernetes/kubernetes#125611); the dedicated cron pod, which serves no HTTP, keeps
    the Service (#22, point 11)."""
    web = web_spec(default_docs)
    # With workers: the gevent process, which serves the assets while every HTTP worker prints.
    assert env(container(web, "odoo-init"))["ODOO_REPORT_URL"] == "http://acme-odoo-tenant:8072"
    assert web["hostAliases"] == [{"ip": "127.0.0.1", "hostnames": ["acme-odoo-tenant"]}]
    threaded = web_spec(render(helm3, "--set", "odoo.config.workers=0"))
    assert (
        env(container(threaded, "odoo-init"))["ODOO_REPORT_URL"] == "http://acme-odoo-tenant:8069"
    )
    docs = render(helm3, "--set", "odoo.cron.dedicated=true")
    assert "hostAliases" not in pod_template(one(docs, "Deployment", CRON))["spec"]
    conf = odoo_conf(docs)
    assert (conf["http_interface"], conf["http_port"]) == ("0.0.0.0", "8069")  # loopback too


@pytest.mark.parametrize("workers", [0, 2, 3])
def test_workers_other_than_one_render(helm3: Path, workers: int) -> None:
    assert odoo_conf(render(helm3, "--set", f"odoo.config.workers={workers}"))["workers"] == str(
        workers
    )


def test_one_worker_is_refused_with_the_reason(helm3: Path) -> None:
    """One HTTP worker deadlocks PDF reports: wkhtmltopdf asks the same server for the report's
    assets while the only worker waits on it (odoo/odoo#199880, #120987)."""
    error = render_error(helm3, "--set", "odoo.config.workers=1")
    assert "odoo.config.workers=1" in error
    assert "prints no PDF report with a single HTTP worker" in error
    assert "use 0 (threaded) or 2 or more" in error
