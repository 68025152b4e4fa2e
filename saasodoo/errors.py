"""The errors saasodoo raises: one base, a few families, each knowing its exit code and HTTP status.

Adapters translate foreign errors (kubernetes ``ApiException``, pyhelm3 errors, pydantic
``ValidationError``) into these in one place each (``saasodoo.adapters.kube.translate``,
``saasodoo.adapters.helm.translate``, ``InvalidInput.from_validation``); entry points turn
them into one line and an exit code (CLI) or a status code (HTTP API). Messages never
contain secrets.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar


@dataclass(frozen=True)
class FieldError:
    """One invalid field: where (a dotted path) and which rule it broke."""

    field: str
    message: str

    def __str__(self) -> str:
        return f"{self.field}: {self.message}"


class SaasodooError(Exception):
    """Base of every error saasodoo raises on purpose."""

    exit_code: ClassVar[int] = 1
    http_status: ClassVar[int] = 500
    #: Whether trying again later may succeed (the caller may retry with back-off): the CLI
    #: says so, the API answers with a ``Retry-After`` header.
    retryable: ClassVar[bool] = False

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidInput(SaasodooError):
    """The request is wrong: a field breaks a rule. Nothing was changed."""

    exit_code = 2
    http_status = 422

    def __init__(self, message: str, fields: Sequence[FieldError] = ()) -> None:
        self.fields = list(fields)
        if self.fields:
            message = f"{message}: " + "; ".join(str(f) for f in self.fields)
        super().__init__(message)

    @classmethod
    def from_validation(cls, what: str, exc: Any, prefix: str = "") -> InvalidInput:
        """From a pydantic ``ValidationError``: one FieldError per failed field."""
        fields = []
        for err in exc.errors(include_url=False, include_input=False):
            loc = _location(err["loc"]) or "(root)"
            msg = str(err["msg"]).removeprefix("Value error, ")
            fields.append(FieldError(f"{prefix}{loc}", msg))
        return cls(f"invalid {what}", fields)


def _location(parts: Sequence[Any]) -> str:
    """``('custom_domains', 0)`` -> ``custom_domains[0]``; names joined with dots."""
    out = ""
    for part in parts:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


class NotFound(SaasodooError):
    """The tenant (or revision, backup, plan) does not exist."""

    exit_code = 3
    http_status = 404


class Conflict(SaasodooError):
    """The request clashes with the current state (exists already, operation in progress)."""

    exit_code = 4
    http_status = 409


class TransientClusterError(SaasodooError):
    """The cluster could not be reached or answered with a temporary error; retry later."""

    exit_code = 5
    http_status = 503
    retryable = True


class HelmFailure(SaasodooError):
    """Helm ran but the operation failed (render error, failed install/upgrade, timeout)."""

    exit_code = 6
    http_status = 502


class NotReady(HelmFailure):
    """A release deployed, but the tenant failed its readiness check for users (the chart's
    ``helm test``: a signed-in request), e.g. after an upgrade."""
