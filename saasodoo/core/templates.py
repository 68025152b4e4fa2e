"""Template databases (issue #25 point 3): which template a tenant's Odoo image uses, and where
it is kept.

A template is an ordinary backup zip (backup.py's layout, Odoo's dump format) of a database
made by `odoo-init.py --build-template KEY` (Odoo's `-i base`), stored under
``templates/<KEY>`` of the platform's backup location (S3 prefix, or a directory shared by
tenants), and restored into a new tenant by ``restore.py --source-tenant templates/<KEY>``.
One template per Odoo image: the key names the image the chart runs (``odoo.image``
registry, repository, tag, digest; the tag defaults to ``odoo.version`` as in the chart's
``odoo-tenant.images.odooTag``), by its digest when the values pin one, so a new image (a
new digest, or another tag) has a key of its own and its template is built anew. A tag
alone (``18.0``) is rebuilt upstream under the same name: pin a digest for templates that
follow each build.
"""

from __future__ import annotations

import hashlib
import re
from typing import Any

#: Folder of the backup location under which templates are kept, one sub-folder per key.
TEMPLATES_FOLDER = "templates"
#: Longest key (a path segment and an S3 key part; an ir.config_parameter value in Odoo).
MAX_KEY_LENGTH = 200

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")
_DIGEST = re.compile(r"^sha256:[0-9a-f]{64}$")


def odoo_image(values: dict[str, Any]) -> str:
    """The Odoo image reference the chart renders for ``values``: a tenant's computed values
    merged over the chart's own (``helm_merge(chart values.yaml, computed)``, as Helm does),
    ``registry/repository:tag[@digest]``. ValueError naming what is missing."""
    odoo = values.get("odoo") or {}
    image = odoo.get("image") or {}
    registry, repository = image.get("registry"), image.get("repository")
    tag = str(image.get("tag") or odoo.get("version") or "")
    if not registry or not repository or not tag:
        raise ValueError("odoo.image.registry, odoo.image.repository and a tag (odoo.image.tag "
                         "or odoo.version) are needed to name the Odoo image")  # fmt: skip
    ref = f"{registry}/{repository}:{tag}"
    digest = str(image.get("digest") or "")
    return f"{ref}@{digest}" if digest else ref


def template_key(values: dict[str, Any]) -> str:
    """The template key of the tenant's Odoo image (``values`` as for ``odoo_image``): the
    image reference with every character but ``A-Za-z0-9._-`` made ``-``
    (``docker.io-library-odoo-18.0``); with a digest, the repository and the digest
    (``docker.io-library-odoo-sha256-<64 hex>``), whatever the tag.
    ValueError for a digest that is not ``sha256:<64 hex>``."""
    odoo = values.get("odoo") or {}
    image = odoo.get("image") or {}
    digest = str(image.get("digest") or "")
    if digest and not _DIGEST.match(digest):
        raise ValueError(f"odoo.image.digest {digest!r} is not sha256:<64 hex digits>")
    ref = odoo_image(values)
    if digest:  # the content, whatever tag names it
        ref = f"{image['registry']}/{image['repository']}-{digest}"
    key = _UNSAFE.sub("-", ref).strip("-.")
    return key[:MAX_KEY_LENGTH]


def template_folder(key: str) -> str:
    """Where the template ``key`` is kept in the backup location (backup.py and restore.py's
    ``--tenant`` / ``--source-tenant``): ``templates/<key>``."""
    return f"{TEMPLATES_FOLDER}/{key}"


# -- the operator's templated create (saasodoo.operator.templates) -----------------------

#: ``status.template.state`` of a tenant: its create restores the template (``RESTORING``,
#: then ``RESTORED``, or ``FELL_BACK`` when its web pod ran ``-i base`` instead: the restore
#: failed or came too late); or it hosts the build of a missing template (``BUILDING``, then
#: ``BUILT`` or ``BUILD_FAILED``).
RESTORING, RESTORED, FELL_BACK = "restoring", "restored", "fell-back"
BUILDING, BUILT, BUILD_FAILED = "building", "built", "build-failed"
#: States after which nothing is followed any more.
SETTLED = (RESTORED, FELL_BACK, BUILT, BUILD_FAILED)


def job_outcome(state: str, job: str) -> str | None:
    """The next ``status.template.state`` of a tenant in ``state`` (``RESTORING`` or
    ``BUILDING``) whose Job is ``job`` (saasodoo.core.copies' ``SUCCEEDED``, ``RUNNING``,
    ``FAILED_WORK`` or ``ABSENT``: deleted, e.g. by its TTL, before it was seen to end);
    None while it runs. A restore that did not succeed leaves the tenant initialized by
    `-i base` (its web pod stops waiting after ``odoo.dbInit.template.waitSeconds``)."""
    if job == "running":
        return None
    if state == RESTORING:
        return RESTORED if job == "succeeded" else FELL_BACK
    return BUILT if job == "succeeded" else BUILD_FAILED


def build_job_name(key: str) -> str:
    """The name of the Job that builds the template ``key`` in a tenant's namespace:
    ``template-build-<12 hex of the key's SHA-256>`` (one build per key and namespace)."""
    return f"template-build-{hashlib.sha256(key.encode()).hexdigest()[:12]}"


def restore_job_name(tenant_id: str) -> str:
    """The name of a templated create's restore Job in the tenant's namespace (fixed: a turn
    that finds it does not start another)."""
    return f"{tenant_id[:40]}-template-restore"
