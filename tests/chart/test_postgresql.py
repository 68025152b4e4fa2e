"""PostgreSQL: StatefulSet + headless Service + volume + kept random passwords, a non-superuser
role for Odoo, or an external server instead."""

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

NAME = "acme-odoo-tenant-postgresql"


def test_statefulset_with_headless_service_and_data_volume(
    default_docs: list[dict[str, Any]],
) -> None:
    sts = one(default_docs, "StatefulSet", NAME)
    service = one(default_docs, "Service", NAME)
    assert service["spec"]["clusterIP"] == "None"
    assert sts["spec"]["serviceName"] == NAME
    assert service["spec"]["selector"] == sts["spec"]["selector"]["matchLabels"]
    assert service["spec"]["ports"] == [
        {"name": "postgresql", "port": 5432, "targetPort": "postgresql", "protocol": "TCP"}
    ]
    clients = one(default_docs, "Service", f"{NAME}-rw")
    assert clients["spec"]["selector"] == sts["spec"]["selector"]["matchLabels"]
    assert clients["spec"]["ports"] == service["spec"]["ports"]
    # The data volume is a PVC of the release, not a volumeClaimTemplate (immutable): a plan
    # change can grow it, and keepOnUninstall applies to it like to the filestore.
    assert "volumeClaimTemplates" not in sts["spec"]
    claim = one(default_docs, "PersistentVolumeClaim", f"{NAME}-data")
    assert claim["spec"]["resources"]["requests"]["storage"] == "5Gi"
    assert claim["spec"]["accessModes"] == ["ReadWriteOnce"]
    assert claim["metadata"]["annotations"]["helm.sh/resource-policy"] == "keep"
    volumes = {v["name"]: v for v in pod_template(sts)["spec"]["volumes"]}
    assert volumes["data"]["persistentVolumeClaim"] == {"claimName": f"{NAME}-data"}


def test_official_image_as_uid_999_with_read_only_root(default_docs: list[dict[str, Any]]) -> None:
    spec = pod_template(one(default_docs, "StatefulSet", NAME))["spec"]
    pg = container(spec, "postgresql")
    assert pg["image"] == "docker.io/library/postgres:17.8-trixie"
    assert spec["securityContext"]["runAsUser"] == 999
    assert spec["securityContext"]["fsGroup"] == 999
    assert pg["securityContext"]["readOnlyRootFilesystem"] is True
    mounts = {m["mountPath"] for m in pg["volumeMounts"]}
    assert {"/var/lib/postgresql/data", "/var/run/postgresql", "/tmp"} <= mounts
    assert env(pg)["PGDATA"] == "/var/lib/postgresql/data/pgdata"  # below lost+found
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        assert pg[probe]["exec"]["command"][0] == "pg_isready"


def test_passwords_come_from_a_generated_secret_kept_across_upgrades(
    default_docs: list[dict[str, Any]],
) -> None:
    secret = one(default_docs, "Secret", NAME)
    assert set(secret["data"]) == {"postgres-password", "password"}
    assert secret["metadata"]["annotations"]["helm.sh/resource-policy"] == "keep"
    pg = container(pod_template(one(default_docs, "StatefulSet", NAME))["spec"], "postgresql")
    variables = env(pg)
    assert variables["POSTGRES_PASSWORD"] == {"secret": NAME, "key": "postgres-password"}
    assert variables["ODOO_DB_PASSWORD"] == {"secret": NAME, "key": "password"}
    assert variables["ODOO_DB_USER"] == "odoo"
    assert variables["POSTGRES_DB"] == "odoo"
    # lookup() reads back the stored value: the template says so.
    helpers = (CHART / "templates" / "_passwords.tpl").read_text()
    assert 'lookup "v1" "Secret" .context.Release.Namespace .secret' in helpers


def test_odoo_connects_with_a_non_superuser_owner_role(default_docs: list[dict[str, Any]]) -> None:
    scripts = one(default_docs, "ConfigMap", "acme-odoo-tenant-scripts")["data"]
    init = scripts["postgres-init.sh"]
    assert 'CREATE ROLE :"role" LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE' in init
    assert 'ALTER DATABASE :"db" OWNER TO :"role"' in init
    assert "ODOO_DB_PASSWORD" in init and "PASSWORD :'password'" in init
    spec = pod_template(one(default_docs, "StatefulSet", NAME))["spec"]
    volume = next(v for v in spec["volumes"] if v["name"] == "init-scripts")
    assert volume["configMap"]["items"] == [
        {"key": "postgres-init.sh", "path": "postgres-init.sh", "mode": 0o555}
    ]
    mount = next(
        m for m in container(spec, "postgresql")["volumeMounts"] if m["name"] == "init-scripts"
    )
    assert mount["mountPath"] == "/docker-entrypoint-initdb.d"
    assert odoo_conf(default_docs)["db_user"] == "odoo"


def test_server_parameters_and_resources(helm3: Path) -> None:
    docs = render(
        helm3,
        "--set", "postgresql.parameters.max_connections=200",
        "--set", "postgresql.parameters.shared_buffers=256MB",
        "--set", "postgresql.resources.limits.memory=2Gi",
        "--set", "postgresql.persistence.size=20Gi",
        "--set", "postgresql.persistence.storageClass=ssd",
        "--set", "postgresql.image.tag=16.10-bookworm",
    )  # fmt: skip
    sts = one(docs, "StatefulSet", NAME)
    pg = container(pod_template(sts)["spec"], "postgresql")
    assert pg["args"] == ["postgres", "-c", "max_connections=200", "-c", "shared_buffers=256MB"]
    assert pg["resources"]["limits"]["memory"] == "2304Mi"  # 2Gi + the 256Mi /dev/shm
    assert pg["image"] == "docker.io/library/postgres:16.10-bookworm"
    claim = one(docs, "PersistentVolumeClaim", f"{NAME}-data")["spec"]
    assert (claim["resources"]["requests"]["storage"], claim["storageClassName"]) == ("20Gi", "ssd")


def test_existing_postgresql_secret(helm3: Path) -> None:
    docs = render(helm3, "--set", "postgresql.auth.existingSecret=pg-creds")
    assert not find(docs, "Secret", NAME)
    pg = container(pod_template(one(docs, "StatefulSet", NAME))["spec"], "postgresql")
    assert env(pg)["POSTGRES_PASSWORD"] == {"secret": "pg-creds", "key": "postgres-password"}


def test_delete_volumes_on_uninstall_when_asked(helm3: Path) -> None:
    docs = render(helm3, "--set", "odoo.persistence.keepOnUninstall=false")
    assert one(docs, "PersistentVolumeClaim", f"{NAME}-data")
    for doc in docs:
        assert "helm.sh/resource-policy" not in doc["metadata"].get("annotations", {})


def test_external_database(helm3: Path) -> None:
    docs = render(helm3, "--values", str(CHART / "ci" / "external-db-values.yaml"))
    assert not find(docs, "StatefulSet") and not find(docs, "Secret", NAME)
    conf = odoo_conf(docs)
    assert conf["db_host"] == "postgres.shared-db.svc.cluster.local"
    assert (conf["db_name"], conf["dbfilter"], conf["db_user"]) == (
        "ci_external",
        "^ci_external$",
        "ci_external",
    )
    assert conf["db_sslmode"] == "require"
    init = env(
        container(pod_template(one(docs, "Deployment", "acme-odoo-tenant"))["spec"], "odoo-init")
    )
    assert init["PGPASSWORD"] == {"secret": "ci-external-db", "key": "password"}
    assert init["PGSSLMODE"] == "require"
    assert "postgres-init.sh" not in one(docs, "ConfigMap", "acme-odoo-tenant-scripts")["data"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((), "externalDatabase.host is required when postgresql.enabled is false"),
        (("--set", "externalDatabase.host=db"), "externalDatabase.existingSecret is required"),
        (
            ("--set", "externalDatabase.host=db", "--set", "externalDatabase.existingSecret=s"),
            "set networkPolicy.egress.externalDatabase.enabled=true",
        ),
    ],
)
def test_external_database_needs_host_secret_and_egress(
    helm3: Path, args: tuple[str, ...], message: str
) -> None:
    assert message in render_error(helm3, "--set", "postgresql.enabled=false", *args)


def test_superuser_name_cannot_be_odoos_role(helm3: Path) -> None:
    error = render_error(helm3, "--set", "postgresql.auth.username=postgres")
    assert "/postgresql/auth/username" in error


# -- /dev/shm (issue #22 point 9) -----------------------------------------------------------------


def _plan_docs(helm3: Path, tmp_path: Path, plan: str) -> list[dict[str, Any]]:
    import yaml

    from saasodoo.adapters.catalog import load_catalog
    from saasodoo.core.spec import TenantSpec
    from saasodoo.core.values import Platform, compute_values
    from tests.support import ROOT

    spec = TenantSpec.parse({"id": "acme", "admin_email": "a@b.example", "plan": plan})
    values = compute_values(spec, load_catalog(ROOT / "values"), Platform("odoo.test")).values
    path = tmp_path / f"{plan}.yaml"
    path.write_text(yaml.safe_dump(values))
    return render(helm3, "--values", str(path))


@pytest.mark.parametrize(
    ("plan", "shm", "limit"),
    [("starter", "256Mi", "1280Mi"), ("standard", "512Mi", "2560Mi"), ("premium", "1Gi", "5120Mi")],
)
def test_postgresql_has_a_memory_backed_dev_shm_sized_by_the_plan_and_counted(
    helm3: Path, tmp_path: Path, plan: str, shm: str, limit: str
) -> None:
    """Without it the container's /dev/shm is 64 MiB and parallel queries fail with `could
    not resize shared memory segment` (docker-library/postgres#416). tmpfs pages are charged
    to the container's memory, so its limit is the plan's plus the size (and so is the
    quota's count, which the chart checks)."""
    docs = _plan_docs(helm3, tmp_path, plan)
    spec = pod_template(one(docs, "StatefulSet", NAME))["spec"]
    volumes = {v["name"]: v for v in spec["volumes"]}
    assert volumes["shm"] == {"name": "shm", "emptyDir": {"medium": "Memory", "sizeLimit": shm}}
    pg = container(spec, "postgresql")
    assert {"name": "shm", "mountPath": "/dev/shm"} in pg["volumeMounts"]
    assert pg["resources"]["limits"]["memory"] == limit
    quota = one(docs, "ResourceQuota")["spec"]["hard"]
    from tests.chart.test_quota import quantity, release_need

    assert release_need(docs)["limits.memory"] <= quantity(quota["limits.memory"])


def test_a_quota_that_leaves_out_the_dev_shm_fails_early(helm3: Path) -> None:
    from tests.chart.test_quota import release_need

    need = release_need(render(helm3))["limits.memory"]
    without = int((need - 256 * 2**20) // 2**20)
    error = render_error(helm3, "--set", f"quota.hard.limits\\.memory={without}Mi")
    assert "quota.hard.limits.memory" in error and f"{int(need // 2**20)}Mi" in error, error
