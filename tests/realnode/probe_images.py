"""Odoo images carrying the update tests' module (tests/odoo/probe.py) for the real node: the
node's own Odoo image (images/build.sh ``odoo``, ``docker.io/library/odoo:18.0``) with one layer
more, ``/mnt/extra-addons/saasodoo_update_probe`` in the version asked, tagged
``18.0-probe<version without dots>`` (a dated build of the same series, as the chart and
``core.versions`` read it), and imported into the real nodes' containerd.

Why a derived image and not a volume: the update path is about a new image of the series
bringing new module code, which is what a tenant gets in production; the chart mounts no
addons volume, and the image is what the update Job, the web and the cron pods all run. The
archives are cached by their inputs (the base archive's name, which carries its own key, and
probe.py) under ``SAASODOO_UPDATE_IMAGES`` (default ``/tmp/saasodoo-update-images``)."""

from __future__ import annotations

import glob
import hashlib
import os
import subprocess
import tarfile
import tempfile
from pathlib import Path

from tests.odoo import probe
from tests.support import ROOT

ADDONS = "/mnt/extra-addons"
#: The addons path a tenant running these images needs (odoo.config.extraOptions).
ADDONS_PATH = f"/usr/lib/python3/dist-packages/odoo/addons,{ADDONS}"
REPOSITORY = "docker.io/library/odoo"


def tag(version: str) -> str:
    return "18.0-probe" + version.replace(".", "")


def base_archive() -> Path:
    """images/build.sh's odoo archive (built once, reused from the cache)."""
    out = subprocess.run([str(ROOT / "images" / "build.sh"), "odoo"], capture_output=True,
                         text=True, check=True).stdout  # fmt: skip
    lines = [line for line in out.splitlines() if line.startswith("odoo=")]
    assert lines, out
    return Path(lines[-1].split("=", 1)[1])


def build(version: str) -> Path:
    """The derived image's docker-archive (cached by its inputs)."""
    base = base_archive()
    key = hashlib.sha256(
        (base.name + version + Path(probe.__file__).read_text()).encode()
    ).hexdigest()[:16]
    cache = Path(os.environ.get("SAASODOO_UPDATE_IMAGES", "/tmp/saasodoo-update-images"))
    out = cache / f"odoo-{tag(version)}-{key}.tar"
    if out.exists():
        return out
    cache.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        probe.write_probe(work / "root" / ADDONS.lstrip("/"), version)
        layer = work / "layer.tar"
        with tarfile.open(layer, "w") as archive:
            module = work / "root" / ADDONS.lstrip("/") / probe.NAME
            for path in sorted([module, *module.rglob("*")]):
                info = archive.gettarinfo(str(path), str(path.relative_to(work / "root")))
                info.uid = info.gid = 0
                info.uname = info.gname = "root"
                info.mode = 0o755 if path.is_dir() else 0o644
                info.mtime = 0
                if path.is_dir():
                    archive.addfile(info)
                else:
                    with path.open("rb") as handle:
                        archive.addfile(info, handle)
        oci = f"{work}/oci:img"
        subprocess.run(["skopeo", "copy", "--quiet", f"docker-archive:{base}", f"oci:{oci}"],
                       check=True)  # fmt: skip
        subprocess.run(["umoci", "raw", "add-layer", "--image", oci, str(layer)], check=True)
        partial = out.with_suffix(".partial")
        partial.unlink(missing_ok=True)
        subprocess.run(["skopeo", "copy", "--quiet", f"oci:{oci}",
                        f"docker-archive:{partial}:{REPOSITORY}:{tag(version)}"],
                       check=True)  # fmt: skip
        partial.rename(out)
    return out


def import_into_nodes(version: str) -> str:
    """Build (or reuse) the image of ``version`` and import it into every real node's
    containerd (scripts/realnode.sh's sockets); its tag."""
    archive = build(version)
    sockets = sorted(glob.glob("/run/saasodoo-realnode/n*/containerd.sock"))
    assert sockets, "no real node's containerd socket (scripts/realnode.sh up)"
    for sock in sockets:
        subprocess.run(["ctr", "--address", sock, "--namespace", "k8s.io", "images", "import",
                        str(archive)], check=True, capture_output=True)  # fmt: skip
    return tag(version)
