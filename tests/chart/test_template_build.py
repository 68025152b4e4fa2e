"""Templated creates in the chart (issue #25 point 3): what the values render, and the
template build Job saasodoo makes from a tenant's rendered web Deployment and backup CronJob
(saasodoo.backups.jobs.template_build_job), on objects helm really renders. The programs it
runs are tested on the real Odoo and PostgreSQL (tests/odoo/test_template.py) and the whole
on the real node (tests/realnode/test_templates_on_real_node.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from saasodoo.backups.jobs import (
    JOB_LABEL,
    template_build_job,
    template_cleanup_job,
    template_scratch,
)
from tests.chart.helpers import find, one, render

pytestmark = pytest.mark.chart

S3 = (
    "--set", "backup.storage=s3", "--set", "backup.s3.endpoint=http://s3.example:9000",
    "--set", "backup.s3.bucket=backups", "--set", "backup.s3.existingSecret=keys",
)  # fmt: skip
KEY = "docker.io-library-odoo-18.0"
ADMIN = [{"name": "PGADMINUSER", "value": "postgres"}]


def web(docs: list[dict[str, Any]]) -> dict[str, Any]:
    component = "app.kubernetes.io/component"
    (deployment,) = [
        d for d in find(docs, "Deployment") if d["metadata"]["labels"][component] == "odoo"
    ]
    return deployment


def init_command(docs: list[dict[str, Any]]) -> list[str]:
    pod = web(docs)["spec"]["template"]["spec"]
    (init,) = [c for c in pod["initContainers"] if c["name"] == "odoo-init"]
    return list(init["command"])


def test_a_templated_tenant_s_web_pod_waits_for_its_template(helm: Path) -> None:
    plain = init_command(render(helm, *S3))
    assert not [a for a in plain if a.startswith(("--from-template", "--template-wait"))]
    templated = init_command(render(helm, *S3, "--set", f"odoo.dbInit.template.key={KEY}",
                                    "--set", "odoo.dbInit.template.waitSeconds=45"))  # fmt: skip
    assert templated[templated.index("--initialize") + 1 :][-2:] == [
        f"--from-template={KEY}", "--template-wait=45",
    ]  # fmt: skip
    # The startup probe looks every second (a started Odoo is Ready within a second) and
    # still gives a first boot its ten minutes.
    odoo = web(render(helm, *S3))["spec"]["template"]["spec"]["containers"][0]
    probe = odoo["startupProbe"]
    assert (probe["periodSeconds"], probe["periodSeconds"] * probe["failureThreshold"]) == (1, 600)


def test_the_build_job_builds_stores_and_drops_the_template_in_one_pod(helm: Path) -> None:
    docs = render(helm, *S3)
    cronjob = one(docs, "CronJob")
    cronjob["metadata"]["uid"] = "u"
    deployment = web(docs)
    job = template_build_job(deployment, cronjob, KEY, "template-build-x", ADMIN)
    assert job["metadata"]["name"] == "template-build-x"
    assert job["metadata"]["namespace"] == deployment["metadata"]["namespace"]
    assert job["spec"]["backoffLimit"] == 0 and job["spec"]["ttlSecondsAfterFinished"] == 3600
    pod = job["spec"]["template"]["spec"]
    assert [c["name"] for c in pod["initContainers"]] == ["pg-client", "odoo-init", "store"]
    assert [c["name"] for c in pod["containers"]] == ["drop-scratch"]
    pg_client, build, store = pod["initContainers"]
    (drop,) = pod["containers"]
    env = {c["name"]: {e["name"]: e for e in c.get("env") or []} for c in (build, store, drop)}
    database = env["store"]["PGDATABASE"]["value"]
    backup_pod = one(docs, "CronJob")["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    tenant_db = next(e["value"] for e in backup_pod["containers"][0]["env"]
                     if e["name"] == "PGDATABASE")  # fmt: skip
    assert database == template_scratch(tenant_db, KEY) == f"{tenant_db}_tpl_{database[-8:]}"
    assert {env[c]["PGDATABASE"]["value"] for c in env} == {database}
    # Built as the web pod's odoo-init: a template in en_US, without the tenant's language.
    assert build["command"][-1] == f"--build-template={KEY}"
    assert "--initialize" not in build["command"]
    assert not [a for a in build["command"] if "load-language" in a]
    # The build runs as a role of its own (the scratch database's name) whose password the
    # build makes and passes on in a libpq password file on the pod's memory volume: the
    # superuser makes and drops it; the store and the drop connect as it, never as the
    # tenant's role (whose password they are not given).
    assert env["odoo-init"]["PGADMINUSER"]["value"] == "postgres"
    assert env["drop-scratch"]["PGADMINUSER"]["value"] == "postgres"
    assert "PGADMINUSER" not in env["store"]
    assert "PGPASSWORD" not in env["odoo-init"]  # the build never uses the tenant's role
    for name in ("store", "drop-scratch"):
        assert env[name]["PGUSER"] == {"name": "PGUSER", "value": database}
        assert env[name]["PGPASSFILE"]["value"] == "/run/template-build/pgpass"
        assert "PGPASSWORD" not in env[name]
    for name in env:
        assert env[name]["SAASODOO_BUILD_PGPASSFILE"]["value"] == "/run/template-build/pgpass"
    assert drop["command"][-1] == "--drop-template"
    # Stored by backup.py under templates/KEY, never pruned there by a tenant's policy.
    assert store["command"][:2] == ["python3", "/opt/odoo-tenant/backup.py"]
    assert f"--tenant=templates/{KEY}" in store["command"] and "--no-prune" in store["command"]
    assert not [a for a in store["command"] if a.startswith("--keep")]
    assert env["store"]["AWS_SECRET_ACCESS_KEY"]["valueFrom"]["secretKeyRef"]["name"] == "keys"
    # backup.py, restore.py beside odoo-init.py: two ConfigMaps, two volumes.
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert volumes["backup-scripts"]["configMap"]["name"].endswith("backup-scripts")
    assert volumes["scripts"]["configMap"]["name"] != volumes["backup-scripts"]["configMap"]["name"]
    for container in (pg_client, store):
        mounts = {m["name"] for m in container["volumeMounts"]}
        assert "backup-scripts" in mounts and "scripts" not in mounts
    for container in pod["initContainers"] + pod["containers"]:
        assert {m["name"] for m in container.get("volumeMounts") or []} <= set(volumes)
    for container in (build, store, drop):
        mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
        assert mounts["template-build"] == "/run/template-build"
    assert volumes["template-build"]["emptyDir"]["medium"] == "Memory"
    # The scratch filestore is the pod's own, never the tenant's volume.
    assert volumes["filestore"] == {"name": "filestore", "emptyDir": {"sizeLimit": "2Gi"}}
    claims = {v["persistentVolumeClaim"]["claimName"] for v in volumes.values()
              if "persistentVolumeClaim" in v}  # fmt: skip
    assert not [c for c in claims if "filestore" in c], claims
    # The backup pods' labels: their NetworkPolicy reaches PostgreSQL and S3.
    labels = job["spec"]["template"]["metadata"]["labels"]
    assert labels["app.kubernetes.io/component"] == "backup" and labels[JOB_LABEL]
    assert pod["restartPolicy"] == "Never"


def test_the_cleanup_after_a_failed_build_runs_only_the_drop(helm: Path) -> None:
    """A failed build's pod never reaches its last container: the cleanup Job is that pod
    without the build's steps, the drop as the superuser."""
    docs = render(helm, *S3)
    cronjob = one(docs, "CronJob")
    cronjob["metadata"]["uid"] = "u"
    build = template_build_job(web(docs), cronjob, KEY, "template-build-x", ADMIN)
    job = template_cleanup_job(build, "template-build-x-cleanup")
    assert job["metadata"]["name"] == "template-build-x-cleanup"
    pod = job["spec"]["template"]["spec"]
    assert pod["initContainers"] == []
    (drop,) = pod["containers"]
    assert drop["command"][-1] == "--drop-template"
    env = {e["name"]: e for e in drop["env"]}
    assert env["PGADMINUSER"]["value"] == "postgres"
    assert build["spec"]["template"]["spec"]["initContainers"]  # the build is left as it was


def test_a_tenant_keeping_its_backups_on_its_volume_builds_no_template(helm: Path) -> None:
    docs = render(helm)
    cronjob = one(docs, "CronJob")
    with pytest.raises(ValueError, match="kept in S3"):
        template_build_job(web(docs), cronjob, KEY, "x", ADMIN)


class _Kube:
    """No Secret holds a superuser password (an external database's case)."""

    def secret_has_key(self, namespace: str, name: str, key: str) -> bool:
        return False


def test_a_restore_job_does_not_wait_on_the_cronjob_s_pruning_step(helm: Path) -> None:
    """restore.py prunes the expired previous data itself under the tenant's lock: the
    CronJob's prune-previous init container would only wait for PostgreSQL once more before
    it (up to connectRetrySeconds for a new tenant's template restore); a verification, which
    does not prune, keeps it."""
    from saasodoo.backups.jobs import JobRunner

    cronjob = one(render(helm, *S3), "CronJob")
    cronjob["metadata"]["uid"] = "u"
    runner = JobRunner(_Kube())  # type: ignore[arg-type]

    def inits(mode: str) -> list[str]:
        job = runner.restore_job("acme", cronjob, "a.zip", mode=mode)  # type: ignore[arg-type]
        return [c["name"] for c in job["spec"]["template"]["spec"]["initContainers"]]

    assert inits("restore") == inits("recover") == ["pg-client"]
    assert inits("verify") == ["pg-client", "prune-previous"]
