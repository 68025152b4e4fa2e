"""Reads the plans directory (``values/base.yaml``, ``values/plans/*.yaml``) into a Catalog."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from saasodoo.core.plans import Catalog, parse_catalog
from saasodoo.core.values import helm_merge
from saasodoo.errors import FieldError, InvalidInput


def _load(path: Path) -> Any:
    try:
        return yaml.safe_load(path.read_text())
    except OSError as exc:
        raise InvalidInput(f"cannot read {path}", [FieldError(str(path), str(exc))]) from None
    except yaml.YAMLError as exc:
        raise InvalidInput(f"invalid YAML in {path}", [FieldError(str(path), str(exc))]) from None


def load_catalog(directory: Path, platform_values: dict[str, Any] | None = None) -> Catalog:
    """Parse and validate ``directory``; errors name the file and the field.
    ``platform_values`` (``Settings.tenant_values``) are merged over ``base.yaml`` as Helm
    merges values files, so they are the platform's layer under every plan."""
    base_path = directory / "base.yaml"
    base = _load(base_path) if base_path.exists() else {}
    if platform_values and isinstance(base, dict):
        base = helm_merge(base, platform_values)
    elif platform_values and base is None:
        base = dict(platform_values)
    plans_dir = directory / "plans"
    if not plans_dir.is_dir():
        raise InvalidInput(
            f"invalid plans directory {directory}",
            [FieldError("plans", f"{plans_dir} is not a directory (SAASODOO_PLANS_DIR)")],
        )
    plans = {p.stem: _load(p) for p in sorted(plans_dir.glob("*.yaml"))}
    return parse_catalog(base, plans)
