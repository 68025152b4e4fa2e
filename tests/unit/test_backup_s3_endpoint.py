"""Where the control plane reaches a tenant's bucket: the endpoint its pods use, unless
SAASODOO_BACKUP_S3_ENDPOINT (Settings.backup_s3_endpoint) or an explicit ``s3_endpoint`` says
otherwise, for every Backups the CLI, the API and the operator make."""

from __future__ import annotations

from typing import Any

import pytest

from saasodoo.adapters.storage import S3Store
from saasodoo.backups import Backups
from saasodoo.settings import Settings

pytestmark = pytest.mark.unit

PODS = "http://s3.s3.svc:7070"
HOST = "http://10.96.0.70:7070"


def cronjob() -> dict[str, Any]:
    """A tenant's backup CronJob with storage=s3, as the chart renders its container."""
    env = [{"name": "S3_ENDPOINT", "value": PODS}, {"name": "S3_BUCKET", "value": "b"},
           {"name": "S3_PREFIX", "value": "saasodoo"}, {"name": "AWS_ACCESS_KEY_ID", "value": "k"},
           {"name": "AWS_SECRET_ACCESS_KEY", "value": "s"}]  # fmt: skip
    container = {"name": "backup", "command": ["python3", "backup.py", "--s3", "--tenant=acme"],
                 "env": env}  # fmt: skip
    pod = {"spec": {"containers": [container]}}
    return {"metadata": {"namespace": "tenant-acme"},
            "spec": {"jobTemplate": {"spec": {"template": pod}}}}  # fmt: skip


def endpoint(backups: Backups) -> str:
    store = backups.store("acme", cronjob())
    assert isinstance(store, S3Store)
    return store.location.endpoint


def test_the_pods_endpoint_by_default() -> None:
    assert endpoint(Backups(Settings(backup_s3_endpoint=""))) == PODS


def test_the_setting_reaches_every_backups_made_from_settings(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SAASODOO_BACKUP_S3_ENDPOINT", HOST)
    assert endpoint(Backups(Settings())) == HOST


def test_an_explicit_endpoint_wins_over_the_setting() -> None:
    backups = Backups(Settings(backup_s3_endpoint=HOST), s3_endpoint="http://other:9000")
    assert endpoint(backups) == "http://other:9000"
