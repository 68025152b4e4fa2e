"""The staging-copy executor's pure decisions (saasodoo.core.copies): the step a copy is at,
what to do with a step's work as found, the names that make a step idempotent, the
status.copy block, the neutralize Job built from the web pod template, and a copy's values
(tenant.copyOf, no outgoing mail whatever its overrides say)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from saasodoo.core import copies
from saasodoo.core.plans import Catalog, Plan
from saasodoo.core.spec import TenantSpec
from saasodoo.core.status import OperationLock, ReleaseInfo
from saasodoo.core.values import Platform, compute_values

pytestmark = pytest.mark.unit

NOW = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)
FRESH = [copies.BACKUP_SOURCE, copies.INSTALL, copies.RESTORE, copies.NEUTRALIZE, copies.START]
NAMED = FRESH[1:]


@pytest.mark.parametrize(
    ("step", "seen", "verb", "following"),
    [
        (copies.BACKUP_SOURCE, copies.ABSENT, "start", ""),
        (copies.BACKUP_SOURCE, copies.RUNNING, "wait", ""),
        (copies.BACKUP_SOURCE, copies.SUCCEEDED, "advance", copies.INSTALL),
        (copies.BACKUP_SOURCE, copies.FAILED_WORK, "fail", ""),
        (copies.INSTALL, copies.ABSENT, "start", ""),
        (copies.INSTALL, copies.SUCCEEDED, "advance", copies.RESTORE),
        (copies.RESTORE, copies.RUNNING, "wait", ""),
        (copies.RESTORE, copies.SUCCEEDED, "advance", copies.NEUTRALIZE),
        (copies.RESTORE, copies.FAILED_WORK, "fail", ""),
        (copies.NEUTRALIZE, copies.ABSENT, "start", ""),
        (copies.NEUTRALIZE, copies.SUCCEEDED, "advance", copies.START),
        (copies.NEUTRALIZE, copies.FAILED_WORK, "fail", ""),
        # start has no work of its own: the ordinary reconcile resumes the copy
        (copies.START, copies.ABSENT, "advance", copies.COPIED),
        (copies.COPIED, copies.SUCCEEDED, "done", ""),
        (copies.FAILED, copies.SUCCEEDED, "fail", ""),
    ],
)
def test_next_copy_action(step: str, seen: str, verb: str, following: str) -> None:
    action = copies.next_copy_action(FRESH, step, seen)
    assert (action.verb, action.step, action.next_step) == (verb, step, following)


def test_next_copy_action_refuses_what_it_does_not_know() -> None:
    with pytest.raises(ValueError, match="not in the plan"):
        copies.next_copy_action(NAMED, copies.BACKUP_SOURCE, copies.ABSENT)
    with pytest.raises(ValueError, match="unknown state"):
        copies.next_copy_action(FRESH, copies.RESTORE, "maybe")


def test_current_step_starts_at_the_plan_s_first_and_keeps_a_known_one() -> None:
    assert copies.current_step(FRESH, None) == copies.BACKUP_SOURCE
    assert copies.current_step(NAMED, {}) == copies.INSTALL
    assert copies.current_step(FRESH, {"step": copies.RESTORE}) == copies.RESTORE
    assert copies.current_step(FRESH, {"step": copies.COPIED}) == copies.COPIED
    assert copies.current_step(FRESH, {"step": copies.FAILED}) == copies.FAILED
    # a step of another plan (a transfer, no longer planned) starts again from the first
    assert copies.current_step(NAMED, {"step": copies.TRANSFER}) == copies.INSTALL


def test_a_whole_copy_walks_the_plan_in_order() -> None:
    """A fake cluster where every work, once started, runs one look and then succeeds."""
    started: list[str] = []
    works: dict[str, str] = {}
    step = copies.current_step(FRESH, None)
    for _ in range(30):
        action = copies.next_copy_action(FRESH, step, works.get(step, copies.ABSENT))
        if action.verb == "done":
            break
        if action.verb == "start":
            started.append(step)
            works[step] = copies.RUNNING
        elif action.verb == "wait":
            works[step] = copies.SUCCEEDED
        elif action.verb == "advance":
            step = action.next_step
    assert step == copies.COPIED
    assert started == [copies.BACKUP_SOURCE, copies.INSTALL, copies.RESTORE, copies.NEUTRALIZE]


@pytest.mark.parametrize(
    ("conditions", "state"),
    [
        ([], copies.RUNNING),
        ([("Complete", "True")], copies.SUCCEEDED),
        ([("SuccessCriteriaMet", "True"), ("Complete", "True")], copies.SUCCEEDED),
        ([("FailureTarget", "True")], copies.FAILED_WORK),
        ([("Failed", "True")], copies.FAILED_WORK),
        ([("Failed", "False"), ("Suspended", "True")], copies.RUNNING),
    ],
)
def test_job_state(conditions: list[tuple[str, str]], state: str) -> None:
    assert copies.job_state(conditions) == state


@pytest.mark.parametrize(
    ("phase", "state"),
    [(None, copies.ABSENT), ("Pending", copies.RUNNING), ("Running", copies.RUNNING),
     ("Succeeded", copies.SUCCEEDED), ("Failed", copies.FAILED_WORK)],
)  # fmt: skip
def test_request_state(phase: str | None, state: str) -> None:
    assert copies.request_state(phase) == state


def test_work_names_are_fixed_per_copy_object_and_valid_names() -> None:
    uid = "3f2a9c1e-0000-4000-8000-000000000000"
    names = copies.work_names("acme-staging", uid)
    assert names == copies.work_names("acme-staging", uid)  # a restart finds them again
    assert names[copies.BACKUP_SOURCE] == "acme-staging-copy-3f2a9c1e"
    assert names[copies.RESTORE] == "acme-staging-copy-restore-3f2a9c1e"
    assert names[copies.NEUTRALIZE] == "acme-staging-copy-neutralize-3f2a9c1e"
    other = copies.work_names("acme-staging", "77777777-0000")
    assert set(names.values()).isdisjoint(other.values())  # a new copy of the same name
    long = copies.work_names("a" * 30, uid)
    assert all(len(n) <= 63 for n in long.values())


def test_copy_status_keeps_the_start_and_stamps_the_end() -> None:
    first = copies.copy_status(None, source="acme", step=copies.BACKUP_SOURCE, now=NOW)
    assert first == {"source": "acme", "step": "backup-source", "startedAt": "2026-12-06T12:00:00Z"}
    later = NOW + timedelta(minutes=3)
    second = copies.copy_status(first, source="acme", step=copies.INSTALL, now=later,
                                backup="20261206T120001Z-on-demand.zip",
                                backupRequest="acme-staging-copy-1")  # fmt: skip
    assert second["startedAt"] == "2026-12-06T12:00:00Z" and "finishedAt" not in second
    assert second["backup"] == "20261206T120001Z-on-demand.zip"
    done = copies.copy_status(second, source="acme", step=copies.COPIED, now=later,
                              neutralized={"ok": True}, message=None)  # fmt: skip
    assert done["finishedAt"] == "2026-12-06T12:03:00Z"
    assert done["neutralized"] == {"ok": True} and "message" not in done
    assert first["step"] == "backup-source"  # the input is left as it was


def web_deployment() -> dict[str, Any]:
    """What the API server serves of a copy's web Deployment (the parts that matter)."""
    return {
        "metadata": {"name": "acme-staging-odoo", "namespace": "tenant-acme-staging",
                     "labels": {"saasodoo.dev/tenant": "acme-staging"}},
        "spec": {"replicas": 0, "template": {
            "metadata": {"labels": {"app.kubernetes.io/component": "odoo"}},
            "spec": {
                "serviceAccountName": "acme-staging",
                "initContainers": [{
                    "name": "odoo-init", "image": "odoo:18",
                    "command": ["python3", "/opt/odoo-tenant/odoo-init.py",
                                "--template=/etc/odoo-tenant/odoo.conf",
                                "--config=/run/odoo/odoo.conf", "--timeout=300",
                                "--initialize", "--init-flag=--without-demo=all",
                                "--init-flag=--load-language=fr_FR", "--copy"],
                    "env": [{"name": "PGDATABASE", "value": "acme_staging"}],
                    "volumeMounts": [{"name": "config", "mountPath": "/run/odoo"}],
                }],
                "containers": [{"name": "odoo", "image": "odoo:18",
                                "readinessProbe": {"httpGet": {"path": "/web/health"}}}],
                "volumes": [{"name": "config", "emptyDir": {}}],
            },
        }},
    }  # fmt: skip


def test_the_neutralize_job_runs_odoo_init_from_the_web_pod_template() -> None:
    deployment = web_deployment()
    job = copies.neutralize_job(deployment, "acme-staging-copy-neutralize-1")
    assert job["metadata"]["name"] == "acme-staging-copy-neutralize-1"
    assert job["metadata"]["namespace"] == "tenant-acme-staging"
    assert job["metadata"]["labels"][copies.COPY_JOB_LABEL] == "neutralize"
    assert job["spec"]["backoffLimit"] == 0
    pod = job["spec"]["template"]["spec"]
    assert pod["restartPolicy"] == "Never" and pod["initContainers"] == []
    (container,) = pod["containers"]
    assert container["name"] == "odoo-init"
    assert container["command"] == [
        "python3", "/opt/odoo-tenant/odoo-init.py", "--template=/etc/odoo-tenant/odoo.conf",
        "--config=/run/odoo/odoo.conf", "--timeout=300", "--neutralize",
    ]  # fmt: skip
    assert container["env"] == [{"name": "PGDATABASE", "value": "acme_staging"}]
    assert container["readinessProbe"]["exec"]["command"] == ["false"]  # never an endpoint
    assert pod["volumes"] == [{"name": "config", "emptyDir": {}}]
    assert pod["serviceAccountName"] == "acme-staging"
    labels = job["spec"]["template"]["metadata"]["labels"]
    assert labels["app.kubernetes.io/component"] == "odoo"  # its NetworkPolicy applies
    # the Deployment itself is left as it was
    init = deployment["spec"]["template"]["spec"]["initContainers"][0]
    assert "--initialize" in init["command"]


def test_a_template_without_odoo_init_is_refused() -> None:
    deployment = web_deployment()
    deployment["spec"]["template"]["spec"]["initContainers"] = []
    with pytest.raises(ValueError, match="no odoo-init"):
        copies.neutralize_job(deployment, "x")


def test_last_result() -> None:
    assert copies.last_result(["a\nRESULT {\"ok\": true, \"crons\": 0}\nbye"]) == {
        "ok": True, "crons": 0}  # fmt: skip
    assert copies.last_result(['RESULT {"ok": false}\nRESULT {"ok": true}']) == {"ok": True}
    assert copies.last_result(["RESULT not json"]) is None
    assert copies.last_result(["RESULT [1]", ""]) is None
    assert copies.last_result([]) is None


def test_with_reason_sets_the_step_s_reason_on_the_summary_conditions() -> None:
    conditions = [
        {"type": "Ready", "status": "Unknown", "reason": "Progressing", "message": "m"},
        {"type": "Reconciling", "status": "True", "reason": "Progressing", "message": "m"},
        {"type": "BackupSucceeded", "status": "True", "reason": "Succeeded", "message": "b"},
    ]
    out = copies.with_reason(conditions, "CopyRestoring")
    assert [c["reason"] for c in out] == ["CopyRestoring", "CopyRestoring", "Succeeded"]
    assert conditions[0]["reason"] == "Progressing"


def catalog() -> Catalog:
    return Catalog(base={"backup": {"schedule": "0 2 * * *"}},
                   plans={"starter": Plan(name="starter", values={})})  # fmt: skip


def test_a_copy_s_values_carry_copy_of_and_no_mail_whatever_the_overrides() -> None:
    overrides = {"odoo": {"smtp": {"enabled": True, "host": "smtp.example"}},
                 "networkPolicy": {"egress": {"smtp": {"enabled": True}}}}  # fmt: skip
    spec = TenantSpec(id="acme-staging", admin_email="a@acme.example", overrides=overrides,
                      copy_of="acme")  # fmt: skip
    values = compute_values(spec, catalog(), Platform(base_domain="odoo.test")).values
    assert values["tenant"]["copyOf"] == "acme"
    assert values["tenant"]["spec"]["copy_of"] == "acme"
    assert values["odoo"]["smtp"]["enabled"] is False
    assert values["networkPolicy"]["egress"]["smtp"]["enabled"] is False


def test_a_tenant_that_is_no_copy_keeps_its_values() -> None:
    """copy_of absent leaves no trace in the values (their digest, and so every existing
    tenant's in-sync state, unchanged)."""
    spec = TenantSpec(id="acme", admin_email="a@acme.example")
    values = compute_values(spec, catalog(), Platform(base_domain="odoo.test")).values
    assert "copyOf" not in values["tenant"]
    assert "copy_of" not in values["tenant"]["spec"]
    assert "smtp" not in values.get("odoo", {})


def test_storage_secrets_are_the_s3_key_pair_s() -> None:
    container = {"env": [
        {"name": "PGPASSWORD", "valueFrom": {"secretKeyRef": {"name": "pg", "key": "password"}}},
        {"name": "AWS_ACCESS_KEY_ID", "valueFrom": {"secretKeyRef": {"name": "keys", "key": "a"}}},
        {"name": "AWS_SECRET_ACCESS_KEY",
         "valueFrom": {"secretKeyRef": {"name": "keys", "key": "b"}}},
        {"name": "S3_BUCKET", "value": "b"},
    ]}  # fmt: skip
    assert copies.storage_secrets(container) == ["keys"]
    assert copies.storage_secrets({}) == []


NOW = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)
STALE = timedelta(minutes=7)


def lock(expires_in: timedelta, alive: bool | None = None) -> OperationLock:
    return OperationLock("op-0:1", "create", "d1", NOW + expires_in, alive)


def head(status: str, age: timedelta = timedelta(0)) -> ReleaseInfo:
    return ReleaseInfo(1, status, updated=NOW - age)


@pytest.mark.parametrize(
    ("release", "held", "state", "words"),
    [
        (head("deployed"), None, copies.SUCCEEDED, "release installed (revision 1)"),
        (head("failed"), None, copies.FAILED_WORK, "helm install left the release failed"),
        (None, lock(timedelta(minutes=5)), copies.RUNNING, ""),
        (head("pending-install"), lock(timedelta(minutes=5), True), copies.RUNNING, ""),
        (head("pending-install"), None, copies.RUNNING, ""),  # young, no lock: helm may run
        # An operator stopped mid-helm: nobody finishes the copy's install, so it fails.
        (None, lock(timedelta(minutes=5), alive=False), copies.FAILED_WORK,
         "interrupted (operation 'create' ended (its process op-0:1 is gone)), leaving no release"),
        (head("pending-install"), lock(-timedelta(minutes=1)), copies.FAILED_WORK,
         "leaving the release pending-install"),
        (head("pending-install", age=timedelta(minutes=8)), None, copies.FAILED_WORK,
         "(no operation holds it), leaving the release pending-install"),
        (None, None, copies.FAILED_WORK, "no operation holds it"),
    ],
)  # fmt: skip
def test_an_interrupted_copy_install_fails_instead_of_waiting_for_ever(
    release: ReleaseInfo | None, held: OperationLock | None, state: str, words: str
) -> None:
    seen, why = copies.install_state(release, held, NOW, STALE)
    assert seen == state and words in why, why
