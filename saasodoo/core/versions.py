"""Odoo versions only go forward.

When a newer Odoo starts on a tenant's database it migrates the data (schema and module
data) to its own version; nothing migrates it back, and an older Odoo on a migrated
database breaks it. So no path may lower a tenant's Odoo series: not an update, not a
fleet upgrade, not a rollback to a revision of an older series. The way back is the data
from before the upgrade: a restore of a backup taken then, into a tenant on that series.

The series is the ``odoo_version`` of the spec, or the series a pinned image tag starts
with (``odoo.image.tag: "17.0-20250218"`` runs Odoo 17.0 whatever ``odoo_version`` says).
"""

from __future__ import annotations

import re
from typing import Any

from saasodoo.core.spec import TenantSpec
from saasodoo.errors import FieldError, InvalidInput

_SERIES = re.compile(r"^(\d{1,4})\.(\d{1,4})(?![\d])")


def parse_series(text: str) -> tuple[int, int] | None:
    """``(17, 0)`` for ``17.0``, ``17.0-20250218`` or ``17.0.1``; None when no series leads."""
    m = _SERIES.match(text.strip())
    return (int(m.group(1)), int(m.group(2))) if m else None


def _image_tag(overrides: dict[str, Any]) -> str | None:
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


def _version(spec: TenantSpec) -> tuple[int, int]:
    return parse_series(spec.odoo_version) or (0, 0)


def _text(series: tuple[int, int]) -> str:
    return f"{series[0]}.{series[1]}"


def downgrade_error(
    tenant_id: str, current: tuple[int, int], new: tuple[int, int], field: str
) -> InvalidInput:
    rule = (
        f"cannot go from Odoo {_text(current)} back to {_text(new)}: Odoo {_text(current)} "
        f"has migrated the database and migrations only go forward. To go back, restore a "
        f"backup taken before the upgrade (its manifest names its Odoo version) into a "
        f"tenant on {_text(new)}, e.g. a new tenant created with odoo_version {_text(new)}"
    )
    return InvalidInput(
        f"Odoo downgrade refused for tenant '{tenant_id}'", [FieldError(field, rule)]
    )


def check_version_change(current: TenantSpec, new: TenantSpec, field: str | None = None) -> None:
    """Refuse (``InvalidInput``) a change to an older Odoo series. The error names
    ``field``, by default ``odoo_version``, or ``overrides`` when a pinned image tag is
    what goes back."""
    before, after = odoo_series(current), odoo_series(new)
    if after >= before:
        return
    if field is None:
        went_back = _version(new) < _version(current)
        field = "odoo_version" if went_back else "overrides"
    raise downgrade_error(new.id, before, after, field)
