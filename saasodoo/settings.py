"""Runtime settings, read once at each entry point (CLI, API) and passed down.

Every field can be set from the environment with the ``SAASODOO_`` prefix, e.g.
``SAASODOO_KUBECONFIG=/path/to/kubeconfig`` or ``SAASODOO_HELM_BINARY=/usr/bin/helm``.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="SAASODOO_", env_nested_delimiter="__", extra="ignore"
    )

    kubeconfig: Path | None = Field(
        default=None,
        description="Kubeconfig to use; falls back to $KUBECONFIG, then ~/.kube/config.",
    )
    kube_context: str | None = Field(default=None, description="Kubeconfig context to use.")
    helm_binary: str = Field(default="helm", description="Path of the helm binary (3.x or 4.x).")
