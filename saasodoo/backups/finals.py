"""Final backups: taken before a tenant is deleted, proven readable, and kept where the
deletion does not reach.

- **S3** (``backup.storage=s3``): the zip stays in the bucket (``final`` backups are never
  pruned by the retention; the bucket's own lifecycle rules apply).
- **The tenant's backup volume** (``backup.storage=pvc``): the volume would go with the
  namespace, so before anything is deleted its PersistentVolume is switched to reclaim policy
  ``Retain`` and labelled (``FINAL_LABEL``: the tenant id; annotations: the zip, the deletion
  time, the time it may be deleted); once the tenant's claim is gone, the volume is bound to
  a new claim in the platform's namespace (``Settings.system_namespace``),
  ``final-<tenant>-<stamp>``, kept ``Settings.final_backup_days`` days, then deleted by
  ``prune_kept`` (run after every tenant deletion and by ``saasodoo backup finals --prune``).
  The zip is at the volume's root.

Before any deletion the zip is checked where it is stored by a Job from the tenant's backup
CronJob (``restore.py --check-only``: every checksum against its manifest). When no final
backup can be kept or proven (backups disabled, a backup volume that is an ``emptyDir``, a
Job that fails or whose report cannot be read), ``FinalBackupRefused`` says why and that
``--no-final-backup`` deletes without one. All cluster calls go through
``saasodoo.adapters.kube``.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from saasodoo.adapters.kube import Kube
from saasodoo.backups.jobs import backup_container, command_args
from saasodoo.core.spec import MANAGED_BY, MANAGED_BY_LABEL, namespace_for
from saasodoo.errors import Conflict, NotFound, TransientClusterError
from saasodoo.settings import Settings

log = logging.getLogger(__name__)

#: On a kept backup volume and its claim: the id of the deleted tenant.
FINAL_LABEL = "saasodoo.dev/final-backup-of"
ZIP_ANNOTATION = "saasodoo.dev/final-backup"
DELETED_ANNOTATION = "saasodoo.dev/deleted-at"
KEEP_UNTIL_ANNOTATION = "saasodoo.dev/keep-until"
STAMP = "%Y-%m-%dT%H:%M:%SZ"
#: Seconds to wait for the tenant's backup claim to go with its namespace.
CLAIM_GONE_SECONDS = 300


class FinalBackupRefused(Conflict):
    """No final backup can be kept or proven readable: the tenant is not deleted."""


@dataclass(frozen=True)
class FinalBackup:
    """A final backup, proven readable where it is kept."""

    tenant: str
    #: The zip's name (``<stamp>-final.zip``).
    name: str
    #: ``s3`` or ``pvc``.
    storage: str
    #: Where it is: ``s3://<bucket>/<prefix>/<tenant>/<name>``, or
    #: ``pvc <namespace>/<claim> (<volume>): <name>`` once kept in the platform's namespace.
    location: str
    sha256: str | None = None
    size: int | None = None
    #: The PersistentVolume holding it (pvc storage).
    volume: str | None = None
    #: The claim it is kept under in the platform's namespace (pvc storage, once adopted).
    claim: str | None = None
    kept_until: datetime | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "tenant": self.tenant,
            "name": self.name,
            "storage": self.storage,
            "location": self.location,
            "sha256": self.sha256,
            "size": self.size,
            "volume": self.volume,
            "claim": self.claim,
            "kept_until": self.kept_until.strftime(STAMP) if self.kept_until else None,
        }


def storage_of(cronjob: dict[str, Any]) -> tuple[str, str | None]:
    """Where the CronJob's backups go: ``("s3", None)``, ``("pvc", <claim name>)`` or
    ``("emptyDir", None)`` (``backup.persistence.enabled=false``: lost with the pod)."""
    container = backup_container(cronjob)
    if "s3" in command_args(list(container.get("command") or [])):
        return "s3", None
    pod = cronjob["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    for volume in pod.get("volumes") or []:
        if volume.get("name") == "backups" and volume.get("persistentVolumeClaim"):
            return "pvc", str(volume["persistentVolumeClaim"]["claimName"])
    return "emptyDir", None


def refused(tenant_id: str, why: str) -> FinalBackupRefused:
    return FinalBackupRefused(
        f"tenant '{tenant_id}' not deleted: {why}; `--no-final-backup` (API: "
        "final_backup=false) deletes it without one"
    )


class KeptFinals:
    """Final backups on volumes kept in the platform's namespace."""

    def __init__(self, settings: Settings, kube: Kube, *, poll_seconds: float = 1.0) -> None:
        self.settings = settings
        self.kube = kube
        self.poll_seconds = poll_seconds

    @property
    def namespace(self) -> str:
        return self.settings.system_namespace

    def volume_of(self, tenant_id: str, claim: str) -> str:
        """The PersistentVolume bound to the tenant's backup claim; refused without one."""
        doc = self.kube.read_claim(namespace_for(tenant_id), claim)
        volume = ((doc or {}).get("spec") or {}).get("volumeName")
        if not volume:
            raise refused(tenant_id, f"its backup volume claim {claim} is not bound to a volume")
        return str(volume)

    def retain(self, final: FinalBackup, now: datetime | None = None) -> FinalBackup:
        """Before the tenant's deletion: its backup volume survives it (reclaim policy
        Retain), labelled with the tenant, the zip, the deletion time and the time it may
        be deleted."""
        assert final.volume is not None
        now = now or datetime.now(UTC)
        until = now + timedelta(days=self.settings.final_backup_days)
        self.kube.patch_volume(
            final.volume,
            {
                "metadata": {
                    "labels": {FINAL_LABEL: final.tenant},
                    "annotations": {
                        ZIP_ANNOTATION: final.name,
                        DELETED_ANNOTATION: now.strftime(STAMP),
                        KEEP_UNTIL_ANNOTATION: until.strftime(STAMP),
                    },
                },
                "spec": {"persistentVolumeReclaimPolicy": "Retain"},
            },
        )
        log.info("final backup %s of %s: volume %s retained", final.name, final.tenant,
                 final.volume)  # fmt: skip
        return replace(final, kept_until=until)

    def adopt(self, volume: str, *, timeout: float = CLAIM_GONE_SECONDS) -> str:
        """Once the deleted tenant's claim on ``volume`` is gone (the volume Released), bind
        the volume to a claim of its own in the platform's namespace; returns that claim's
        name. TransientClusterError when the tenant's claim is still there after ``timeout``
        (the volume stays retained and labelled: ``list_kept`` adopts it later)."""
        deadline = time.monotonic() + timeout
        while True:
            pv = self.kube.read_volume(volume)
            if pv is None:
                raise NotFound(f"volume {volume} is gone")
            ref = pv["spec"].get("claimRef") or {}
            if ref.get("namespace") == self.namespace:
                if self.kube.read_claim(self.namespace, ref["name"]) is not None:
                    return str(ref["name"])
                break  # pre-bound to a claim an interrupted adoption did not create
            current = self.kube.read_claim(ref["namespace"], ref["name"]) if ref else None
            if ref and (current is None or current["metadata"].get("uid") != ref.get("uid")):
                break  # the deleted tenant's claim is gone (a same-named new one is not it)
            if time.monotonic() > deadline:
                raise TransientClusterError(
                    f"the claim {ref.get('namespace')}/{ref.get('name')} of volume {volume} "
                    f"still exists after {timeout:.0f}s; the volume is retained: "
                    "`saasodoo backup finals` keeps it once the claim is gone"
                )
            time.sleep(self.poll_seconds)
        meta = pv["metadata"]
        labels, notes = meta.get("labels") or {}, meta.get("annotations") or {}
        tenant = labels.get(FINAL_LABEL, "")
        deleted = notes.get(DELETED_ANNOTATION, datetime.now(UTC).strftime(STAMP))
        stamp = deleted.replace("-", "").replace(":", "").lower().rstrip("z")
        claim = f"final-{tenant}-{stamp}"[:63].rstrip("-")
        if ref.get("namespace") == self.namespace:
            claim = str(ref["name"])
        self.kube.create_namespace_if_absent(self.namespace)
        # Pre-bound both ways: the volume to the new claim (the old claim's uid dropped) and
        # the claim to the volume, so the PV controller binds exactly these two.
        self.kube.patch_volume(
            volume,
            {"spec": {"claimRef": {"apiVersion": "v1", "kind": "PersistentVolumeClaim",
                                   "namespace": self.namespace, "name": claim,
                                   "uid": None, "resourceVersion": None}}},
        )  # fmt: skip
        spec = pv["spec"]
        body = {
            "apiVersion": "v1",
            "kind": "PersistentVolumeClaim",
            "metadata": {
                "name": claim,
                "labels": {FINAL_LABEL: tenant, MANAGED_BY_LABEL: MANAGED_BY},
                "annotations": {
                    k: v
                    for k, v in notes.items()
                    if k in (ZIP_ANNOTATION, DELETED_ANNOTATION, KEEP_UNTIL_ANNOTATION)
                },  # fmt: skip
            },
            "spec": {
                "accessModes": spec.get("accessModes") or ["ReadWriteOnce"],
                "storageClassName": spec.get("storageClassName") or "",
                "volumeName": volume,
                "resources": {"requests": {"storage": spec["capacity"]["storage"]}},
            },
        }
        try:
            self.kube.create_claim(self.namespace, body)
        except Conflict:
            pass  # adopted meanwhile by another process
        log.info("final backup volume %s kept as %s/%s", volume, self.namespace, claim)
        return claim

    def list_kept(self) -> list[dict[str, Any]]:
        """The kept final backups (oldest deletion first): tenant, zip, claim, volume, phase,
        deleted_at, kept_until. Volumes a deletion retained but did not get to adopt (it was
        interrupted) are adopted first."""
        for pv in self.kube.list_volumes(FINAL_LABEL):
            # Bound: to the tenant's claim (its deletion still running) or to ours; Delete:
            # pruned, going with its claim.
            retained = pv["spec"].get("persistentVolumeReclaimPolicy") == "Retain"
            if retained and (pv.get("status") or {}).get("phase") in ("Released", "Available"):
                try:
                    self.adopt(pv["metadata"]["name"], timeout=0)
                except TransientClusterError as exc:
                    log.warning("not kept yet: %s", exc.message)
        out = []
        for claim in self.kube.list_claims(self.namespace, FINAL_LABEL):
            meta = claim["metadata"]
            notes = meta.get("annotations") or {}
            out.append({
                "tenant": (meta.get("labels") or {}).get(FINAL_LABEL),
                "zip": notes.get(ZIP_ANNOTATION),
                "claim": f"{self.namespace}/{meta['name']}",
                "volume": claim["spec"].get("volumeName"),
                "phase": (claim.get("status") or {}).get("phase"),
                "deleted_at": notes.get(DELETED_ANNOTATION),
                "kept_until": notes.get(KEEP_UNTIL_ANNOTATION),
            })  # fmt: skip
        return sorted(out, key=lambda k: (k["deleted_at"] or "", k["claim"]))

    def prune_kept(self, now: datetime | None = None, *, dry_run: bool = False) -> list[str]:
        """Delete the kept final backups whose time is up (their volume's reclaim policy set
        back to Delete first, so the provisioner deletes the volume with its claim); returns
        the claims deleted."""
        now = now or datetime.now(UTC)
        doomed = []
        for kept in self.list_kept():
            until = kept["kept_until"]
            if not until or datetime.strptime(until, STAMP).replace(tzinfo=UTC) > now:
                continue
            doomed.append(kept["claim"])
            if dry_run:
                continue
            if kept["volume"]:
                self.kube.patch_volume(
                    kept["volume"],
                    {
                        "metadata": {"labels": {FINAL_LABEL: None}},
                        "spec": {"persistentVolumeReclaimPolicy": "Delete"},
                    },
                )
            self.kube.delete_claim(self.namespace, kept["claim"].split("/", 1)[1])
            log.info("kept final backup %s (%s) deleted: kept until %s", kept["claim"],
                     kept["zip"], until)  # fmt: skip
        return doomed
