"""A tenant keeps the Odoo series it was created with.

Odoo does not migrate a database to another major series when it starts: without ``-u``
it loads the installed modules as they are (``odoo/modules/loading.py``, ``load_modules``:
only modules marked ``to install``/``to upgrade`` run their migrations, and those scripts
cover versions within one series). Odoo 19 started on an 18.0 database fails on the first
signed-in request (odoo/odoo#27446: ``column res_lang.week_start does not exist``); Odoo's
maintainers answer that a major needs Odoo's upgrade service or OpenUpgrade (odoo/odoo#78877,
#39381). Going back is as broken: an older Odoo on a newer schema. So no path may change a
tenant's series: not an update, not a fleet upgrade, not a rollback to a revision of another
series. The supported path: export the tenant (a backup), upgrade that database with Odoo's
upgrade service (https://upgrade.odoo.com) or OpenUpgrade, and import the result into a new
tenant created on the new series. New builds of the same series (a dated image tag such as
``18.0-20250218``) are fine: they run the series' own minor migrations.

The series is the ``odoo_version`` of the spec, or the series a pinned image tag starts
with (``odoo.image.tag: "17.0-20250218"`` runs Odoo 17.0 whatever ``odoo_version`` says).
The chart refuses the same for plain Helm users (``odoo-tenant.validate.odooSeries``).

The PostgreSQL image obeys a rule of the same kind: another PostgreSQL major cannot start on
a data directory, and another Debian release brings another C library whose collations may
order text indexes differently. The chart refuses such a change on ``helm upgrade`` unless
``postgresql.upgradeFrom`` confirms it (``odoo-tenant.validate.postgresqlImageChange``); a
rollback replays a revision's stored manifest without rendering the chart, so saasodoo checks
every rollback it makes (``tenant rollback``, ensure's remediation of a failed upgrade, a
fleet upgrade's undo) with ``check_postgresql_image_change``.
"""

from __future__ import annotations

import re
from typing import Any

from saasodoo.core.spec import TenantSpec
from saasodoo.core.templates import odoo_image
from saasodoo.core.values import get_path, helm_merge
from saasodoo.errors import FieldError, InvalidInput

_SERIES = re.compile(r"^(\d{1,4})\.(\d{1,4})(?![\d])")


def parse_series(text: str) -> tuple[int, int] | None:
    """``(17, 0)`` for ``17.0``, ``17.0-20250218`` or ``17.0.1``; None when no series leads."""
    m = _SERIES.match(text.strip())
    return (int(m.group(1)), int(m.group(2))) if m else None


def _image_tag(overrides: dict[str, Any]) -> str | None:
    """``odoo.image.tag`` of ``overrides`` (or of whole values), None when unset."""
    odoo = overrides.get("odoo")
    image = odoo.get("image") if isinstance(odoo, dict) else None
    tag = image.get("tag") if isinstance(image, dict) else None
    return tag if isinstance(tag, str) and tag else None


def odoo_series(spec: TenantSpec) -> tuple[int, int]:
    """The Odoo series ``spec`` runs: its pinned image tag's, else its ``odoo_version``."""
    tag = _image_tag(spec.overrides)
    series = parse_series(tag) if tag else None
    if series is None:
        series = parse_series(spec.odoo_version)
    assert series is not None, spec.odoo_version  # OdooVersion values are series
    return series


def series_text(series: tuple[int, int]) -> str:
    """``"18.0"`` for ``(18, 0)``."""
    return f"{series[0]}.{series[1]}"


#: How a tenant moves to another Odoo series (the text of every refusal).
SUPPORTED_PATH = (
    "export the tenant's database (saasodoo backup create: a zip in Odoo's own format), "
    "upgrade it with Odoo's upgrade service (https://upgrade.odoo.com) or OpenUpgrade, then "
    "create a tenant with odoo_version {new} and import the upgraded zip into it "
    "(saasodoo backup import)"
)


def series_change_error(
    tenant_id: str, current: tuple[int, int], new: tuple[int, int], field: str
) -> InvalidInput:
    """The refusal of a change from series ``current`` to ``new``, naming ``field``."""
    was, to = series_text(current), series_text(new)
    rule = (
        f"cannot change from Odoo {was} to {to}: Odoo does not migrate a database to "
        f"another major series when it starts (Odoo {to} would run on an Odoo {was} "
        f"database and fail on signed-in pages). To move to {to}: " + SUPPORTED_PATH.format(new=to)
    )
    return InvalidInput(
        f"Odoo series change refused for tenant '{tenant_id}' ({was} -> {to})",
        [FieldError(field, rule)],
    )


def revision_odoo(
    config: dict[str, Any], chart_values: dict[str, Any] | None = None
) -> tuple[str, str]:
    """The Odoo series (``"18.0"``) and image one helm revision runs, from what its storage
    record keeps: the values it was given (``config``) over its chart's own
    (``chart_values``), merged as Helm merges them. The series is the image tag's when it
    leads with one (``18.0-20250218``), else ``odoo.version``, else the spec the revision
    recorded (``tenant.spec.odoo_version``); "" when none says. The image as
    ``templates.odoo_image`` renders it; "" when the values do not name one."""
    values = helm_merge(chart_values or {}, config)
    odoo = values.get("odoo")
    odoo = odoo if isinstance(odoo, dict) else {}
    tag = _image_tag(values)
    series = parse_series(tag) if tag else None
    for fallback in (odoo.get("version"), get_path(values, "tenant.spec.odoo_version")):
        if series is None and fallback is not None:
            series = parse_series(str(fallback))
    try:
        image = odoo_image(values)
    except ValueError:
        image = ""
    return (series_text(series) if series else "", image)


def check_rollback_series(
    tenant_id: str, revision: int, current: tuple[int, int], target: tuple[int, int]
) -> None:
    """Refuse (``InvalidInput`` naming ``revision``, exit code 2 / HTTP 422) a rollback to
    ``revision``, made with the Odoo series ``target``, of a tenant whose database is of
    series ``current``: a rollback returns the Kubernetes objects, never the database. The
    API and the CLI check it against ``status.releases`` before a request is written, the
    lifecycle (``Tenants.check_rollback``, which the operator runs) against the revision's
    recorded spec: the same words either way."""
    if target == current:
        return
    was, to = series_text(current), series_text(target)
    older = "an older Odoo cannot run on a newer series' database" if target < current else (
        "a newer Odoo does not migrate an older series' database when it starts")  # fmt: skip
    rule = (
        f"revision {revision} runs Odoo {to}; the tenant's database (its PostgreSQL data) is "
        f"of Odoo {was}. A rollback returns the Kubernetes objects, never the database, and "
        f"{older}: PostgreSQL data of one Odoo series cannot be rolled back to another. Roll "
        f"back to a revision of Odoo {was}, or restore a backup taken on Odoo {to} into a new "
        f"tenant of that series"
    )
    raise InvalidInput(
        f"rollback refused for tenant '{tenant_id}': Odoo {was} -> {to}",
        [FieldError("revision", rule)],
    )


def check_version_change(current: TenantSpec, new: TenantSpec, field: str | None = None) -> None:
    """Refuse (``InvalidInput``, exit code 2 / HTTP 422) any change of the Odoo series,
    newer or older. The error names ``field``, by default ``odoo_version``, or
    ``overrides`` when a pinned image tag is what changes the series."""
    before, after = odoo_series(current), odoo_series(new)
    if after == before:
        return
    if field is None:
        field = "odoo_version" if new.odoo_version != current.odoo_version else "overrides"
    raise series_change_error(new.id, before, after, field)


def postgresql_series(image: str) -> str:
    """``"<major>-<Debian release>"`` of a PostgreSQL image reference, as the chart's
    ``odoo-tenant.postgresql.series``: ``17-trixie`` for ``docker.io/library/postgres:
    17.8-trixie@sha256:…``; a tag without a release (``17``) gives ``17-``."""
    ref = image.split("@", 1)[0]
    found = re.search(r"[^:/]+$", ref)
    tag = found.group() if found else ""
    major = re.match(r"[0-9]+", tag)
    release = re.search(r"[a-z]+$", tag)
    return f"{major.group() if major else ''}-{release.group() if release else ''}"


def postgresql_image(manifest: list[dict[str, Any]]) -> str | None:
    """The image of the ``postgresql`` container of the PostgreSQL StatefulSet among
    ``manifest``'s objects (as ``helm get manifest`` gives them); None when there is none
    (an external database)."""
    for doc in manifest:
        if doc.get("kind") != "StatefulSet":
            continue
        pod = ((doc.get("spec") or {}).get("template") or {}).get("spec") or {}
        for container in pod.get("containers") or []:
            if container.get("name") == "postgresql" and container.get("image"):
                return str(container["image"])
    return None


def check_postgresql_image_change(
    tenant_id: str, running: str | None, target: str | None, revision: int
) -> None:
    """Refuse (``InvalidInput`` naming ``revision``) a rollback to ``revision`` whose
    PostgreSQL image ``target`` is another major or Debian release than ``running``, the
    image of the release's newest revision (whose server wrote the data directory). Same
    series (``17.8-trixie`` -> ``17.9-trixie``), no image on either side, or equal images
    pass."""
    if not running or not target or running == target:
        return
    was, to = postgresql_series(running), postgresql_series(target)
    if was == to:
        return
    rule = (
        f"revision {revision} runs PostgreSQL {target} ({to}); the tenant's PostgreSQL runs "
        f"{running} ({was}), another major or Debian release, on the same data directory: "
        f"an older major cannot start on it, and another C library may order the text "
        f"indexes differently. A rollback does not bring the old data back; restore a backup "
        f"taken before the change into a tenant on {target} instead (the chart README's "
        f'"PostgreSQL image upgrades")'
    )
    raise InvalidInput(
        f"rollback refused for tenant '{tenant_id}': PostgreSQL {was} -> {to}",
        [FieldError("revision", rule)],
    )
