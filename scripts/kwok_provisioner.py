"""A tiny dynamic volume provisioner for the simulated (kwok) cluster.

No kubelet and no storage exist in the simulated cluster, so nothing would ever
create a PersistentVolume and every PVC-backed pod would stay Pending. This loop
plays the external provisioner named by the harness' StorageClass:

* a Pending PVC of one of our StorageClasses (after the scheduler picked a node,
  for WaitForFirstConsumer) gets a PV of exactly the requested size, pre-bound
  to it and pinned to that node, as a local-volume provisioner would do; the
  real PV controller in kube-controller-manager then binds the pair;
* a bound PVC that asks for more storage (volume expansion) gets it: PV and PVC
  capacity are raised, as an external resizer would;
* a Released PV of ours with reclaim policy Delete is deleted.

On a real node (label ``saasodoo.dev/real-node=true``, scripts/realnode.sh) the volume is a
real directory: a ``local`` PV on ``<--local-dir>/<pv name>``, created here (mode 0777, as
local-path provisioners do, so the kubelet's fsGroup handling and any pod user can use it) and
removed with the PV. Kubernetes applies ``fsGroup`` to ``local`` volumes, not to ``hostPath``.

It is started by ``scripts/cluster.sh up`` and runs until the cluster goes down.
Only used with the simulated cluster; real clusters bring their own provisioner.
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import threading
import time
from typing import Any

from kubernetes import client, config, watch
from kubernetes.client.rest import ApiException
from kubernetes.utils import parse_quantity

PROVISIONER = "saasodoo.dev/kwok-provisioner"
SELECTED_NODE = "volume.kubernetes.io/selected-node"
REAL_NODE_LABEL = "saasodoo.dev/real-node"
PROVISIONED_BY = "pv.kubernetes.io/provisioned-by"

log = logging.getLogger("kwok-provisioner")


class Provisioner:
    def __init__(
        self, api: client.CoreV1Api, storage: client.StorageV1Api, local_dir: str = ""
    ) -> None:
        self.core = api
        self.storage = storage
        self.local_dir = local_dir

    def is_real_node(self, name: str | None) -> bool:
        if not name or not self.local_dir:
            return False
        try:
            node = self.core.read_node(name)
        except ApiException as exc:
            if exc.status == 404:
                return False
            raise
        return (node.metadata.labels or {}).get(REAL_NODE_LABEL) == "true"

    def local_path(self, pv_name: str) -> str:
        return os.path.join(self.local_dir, pv_name)

    def storage_class(self, name: str | None) -> Any | None:
        if not name:
            return None
        try:
            sc = self.storage.read_storage_class(name)
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise
        return sc if sc.provisioner == PROVISIONER else None

    def provision(self, pvc: Any) -> None:
        if pvc.status.phase == "Bound":
            self.resize(pvc)
            return
        if pvc.status.phase != "Pending" or pvc.spec.volume_name:
            return
        sc = self.storage_class(pvc.spec.storage_class_name)
        if sc is None:
            return
        annotations = pvc.metadata.annotations or {}
        node = annotations.get(SELECTED_NODE)
        if sc.volume_binding_mode == "WaitForFirstConsumer" and not node:
            return  # the scheduler has not picked a node yet
        name = f"pvc-{pvc.metadata.uid}"
        spec: dict[str, Any] = {
            "capacity": {"storage": pvc.spec.resources.requests["storage"]},
            "accessModes": pvc.spec.access_modes,
            "storageClassName": sc.metadata.name,
            "persistentVolumeReclaimPolicy": sc.reclaim_policy or "Delete",
            "volumeMode": pvc.spec.volume_mode or "Filesystem",
            "claimRef": {
                "apiVersion": "v1",
                "kind": "PersistentVolumeClaim",
                "namespace": pvc.metadata.namespace,
                "name": pvc.metadata.name,
                "uid": pvc.metadata.uid,
            },
        }
        if self.is_real_node(node):
            path = self.local_path(name)
            os.makedirs(path, exist_ok=True)
            os.chmod(path, 0o777)
            spec["local"] = {"path": path}
        else:
            spec["hostPath"] = {"path": f"/var/lib/kwok-volumes/{name}"}
        if node:
            spec["nodeAffinity"] = {
                "required": {
                    "nodeSelectorTerms": [
                        {
                            "matchExpressions": [
                                {
                                    "key": "kubernetes.io/hostname",
                                    "operator": "In",
                                    "values": [node],
                                }
                            ]
                        }
                    ]
                }
            }
        body = {
            "apiVersion": "v1",
            "kind": "PersistentVolume",
            "metadata": {"name": name, "annotations": {PROVISIONED_BY: PROVISIONER}},
            "spec": spec,
        }
        try:
            self.core.create_persistent_volume(body)
        except ApiException as exc:
            if exc.status != 409:  # already provisioned
                raise
            return
        log.info(
            "provisioned %s for %s/%s on %s",
            name,
            pvc.metadata.namespace,
            pvc.metadata.name,
            node or "any node",
        )

    def resize(self, pvc: Any) -> None:
        """Play the external resizer: a bound claim asking for more gets it at once."""
        wanted = pvc.spec.resources.requests.get("storage")
        have = (pvc.status.capacity or {}).get("storage")
        if not wanted or wanted == have or not pvc.spec.volume_name:
            return
        if parse_quantity(wanted) <= parse_quantity(have or "0"):
            return
        pv = self.core.read_persistent_volume(pvc.spec.volume_name)
        if (pv.metadata.annotations or {}).get(PROVISIONED_BY) != PROVISIONER:
            return
        self.core.patch_persistent_volume(
            pv.metadata.name, {"spec": {"capacity": {"storage": wanted}}}
        )
        self.core.patch_namespaced_persistent_volume_claim_status(
            pvc.metadata.name,
            pvc.metadata.namespace,
            {"status": {"capacity": {"storage": wanted}}},
        )
        log.info("resized %s/%s to %s", pvc.metadata.namespace, pvc.metadata.name, wanted)

    def reclaim(self, pv: Any) -> None:
        annotations = pv.metadata.annotations or {}
        if annotations.get(PROVISIONED_BY) != PROVISIONER:
            return
        if pv.status.phase in ("Released", "Failed") and (
            pv.spec.persistent_volume_reclaim_policy == "Delete"
        ):
            try:
                self.core.delete_persistent_volume(pv.metadata.name)
            except ApiException as exc:
                if exc.status != 404:
                    raise
                return
            if pv.spec.local and self.local_dir:
                path = self.local_path(pv.metadata.name)
                if os.path.dirname(path) == self.local_dir:
                    shutil.rmtree(path, ignore_errors=True)
            log.info("deleted released volume %s", pv.metadata.name)


def run_watch(name: str, list_fn: Any, handle: Any, stop: threading.Event) -> None:
    """Watch forever; on any error start again from a fresh list."""
    while not stop.is_set():
        try:
            for event in watch.Watch().stream(list_fn, timeout_seconds=300):
                if event["type"] in ("ADDED", "MODIFIED"):
                    handle(event["object"])
        except Exception as exc:  # noqa: BLE001 - keep serving; the apiserver may restart
            log.warning("%s watch interrupted (%s); restarting", name, exc)
            time.sleep(1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kubeconfig", required=True)
    parser.add_argument(
        "--local-dir", default="", help="directory of the real nodes' local volumes"
    )
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    config.load_kube_config(config_file=args.kubeconfig)
    prov = Provisioner(client.CoreV1Api(), client.StorageV1Api(), args.local_dir)
    stop = threading.Event()
    core = client.CoreV1Api()
    threads = [
        threading.Thread(
            target=run_watch,
            args=(
                "pvc",
                core.list_persistent_volume_claim_for_all_namespaces,
                prov.provision,
                stop,
            ),
            daemon=True,
        ),
        threading.Thread(
            target=run_watch,
            args=("pv", core.list_persistent_volume, prov.reclaim, stop),
            daemon=True,
        ),
    ]
    for t in threads:
        t.start()
    log.info("serving StorageClasses with provisioner %s", PROVISIONER)
    while all(t.is_alive() for t in threads):
        time.sleep(1)


if __name__ == "__main__":
    main()
