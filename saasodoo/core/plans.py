"""Plans: named bundles of chart values (resources, workers, quota, storage, backups).

``values/base.yaml`` holds the platform's defaults for every tenant and
``values/plans/<name>.yaml`` one plan each; both are plain chart values (a plan file
adds ``description``). This module only validates already-parsed documents; reading
the files is ``saasodoo.adapters.catalog``'s job.
"""

from __future__ import annotations

import re
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from saasodoo.errors import FieldError, InvalidInput

_PLAN_NAME = re.compile(r"^[a-z][a-z0-9-]{0,30}$")


class Plan(BaseModel):
    """One plan: a description for humans and the chart values it sets."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    description: str = ""
    values: dict[str, Any] = Field(default_factory=dict)

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not _PLAN_NAME.match(value):
            raise ValueError("must be lowercase letters, digits and '-', starting with a letter")
        return value


class Catalog(BaseModel):
    """Base values plus every plan, as loaded from ``values/``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    base: dict[str, Any] = Field(default_factory=dict)
    plans: dict[str, Plan]

    def plan(self, name: str) -> Plan:
        try:
            return self.plans[name]
        except KeyError:
            known = ", ".join(sorted(self.plans)) or "none"
            raise InvalidInput(
                "invalid tenant", [FieldError("plan", f"unknown plan '{name}' (known: {known})")]
            ) from None


def parse_catalog(base: Any, plans: dict[str, Any]) -> Catalog:
    """Validate parsed YAML documents: ``base`` (chart values) and ``{name: plan document}``."""
    if base is None:
        base = {}
    if not isinstance(base, dict):
        raise InvalidInput("invalid values/base.yaml", [FieldError("(root)", "must be a mapping")])
    parsed: dict[str, Plan] = {}
    for name, doc in sorted(plans.items()):
        if not isinstance(doc, dict):
            raise InvalidInput(
                f"invalid plan '{name}'", [FieldError("(root)", "must be a mapping")]
            )
        try:
            parsed[name] = Plan.model_validate({"name": name, **doc})
        except ValidationError as exc:
            raise InvalidInput.from_validation(f"plan '{name}'", exc) from None
    if not parsed:
        raise InvalidInput("invalid plans directory", [FieldError("plans", "no plan defined")])
    return Catalog(base=base, plans=parsed)
