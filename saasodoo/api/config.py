"""Settings of the HTTP API and web UI, read from ``SAASODOO_API_*`` at start-up.

The cluster side (kubeconfig, helm binary, base domain, ...) comes from
``saasodoo.settings.Settings`` as for the CLI. With no Supabase project configured the
app runs the DEVELOPMENT-ONLY local auth mode; ``SAASODOO_API_ENV=production`` refuses it.
"""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from saasodoo.errors import SaasodooError

CommaList = Annotated[list[str], NoDecode]


class ConfigError(SaasodooError):
    """The API's settings are unsafe or incomplete for the mode it runs in."""


class ApiSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="SAASODOO_API_", extra="ignore")

    env: Literal["development", "production"] = Field(
        default="development",
        description="production refuses the local auth mode and insecure cookies.",
    )
    auth_mode: Literal["supabase", "local"] | None = Field(
        default=None,
        description="supabase (default when supabase_url is set) or local (development only).",
    )
    supabase_url: str = Field(default="", description="Project URL, e.g. https://x.supabase.co")
    supabase_key: SecretStr = Field(
        default=SecretStr(""), description="The project's anon / publishable key."
    )
    supabase_jwt_secret: SecretStr = Field(
        default=SecretStr(""),
        description="Legacy HS256 JWT secret; empty: only ES256/RS256 tokens (JWKS) accepted.",
    )
    supabase_require_issuer: bool = Field(
        default=True,
        description="Tokens must carry iss=<SUPABASE_URL>/auth/v1; false for a self-hosted "
        "GoTrue without GOTRUE_JWT_ISSUER (its tokens carry no iss).",
    )
    watch_cache: bool = Field(
        default=True,
        description="Serve tenant lists from a watch of the OdooTenants kept in each API "
        "process (started by the first list); false: one list request per call.",
    )
    session_check_seconds: float = Field(
        default=30.0,
        ge=0,
        le=600,
        description="State-changing calls confirm the token's session with the auth server; "
        "a confirmed session is trusted this long (0: asked on every call).",
    )
    admins: CommaList = Field(
        default_factory=list,
        description="Operators, comma-separated: user ids (the token's `sub`); an e-mail "
        "counts only in tokens with `email_verified: true` (see docs/api.md).",
    )
    cors_origins: CommaList = Field(
        default_factory=list, description="Origins allowed to call /api/ from a browser."
    )
    secret_key: SecretStr = Field(
        default=SecretStr(""),
        description="Signs the session cookie; random per process when empty (development).",
    )
    cookie_secure: bool = Field(default=True, description="Session cookie only over HTTPS.")
    token_leeway: float = Field(default=10.0, ge=0, le=120, description="Clock skew, seconds.")
    max_body_bytes: int = Field(default=64 * 1024, ge=1024, description="Largest request body.")
    backup_s3_endpoint: str = Field(
        default="",
        description="Reach the tenants' backup bucket at this URL instead of the one their "
        "pods use; empty: theirs.",
    )
    backup_pvc_root: Path | None = Field(
        default=None,
        description="Where the tenants' backup PVCs are mounted here (<root>/<tenant>); "
        "unset: backups kept on PVCs cannot be listed.",
    )
    backup_timeout: float | None = Field(
        default=None,
        gt=0,
        description="Seconds a backup/restore Job is followed; unset: its deadline + 60.",
    )
    download_slots: int = Field(
        default=2,
        ge=1,
        le=64,
        description="Backup downloads streamed at once by one API process (each holds a server "
        "thread for as long as its client reads); one more answers 429 with Retry-After.",
    )
    domain_verify_limit: int = Field(
        default=10,
        ge=1,
        le=1000,
        description="Custom domain verifications one user may start per "
        "domain_verify_window seconds (each runs DNS look-ups); more answer 429.",
    )
    domain_verify_window: float = Field(
        default=600.0, gt=0, le=86400, description="Window of domain_verify_limit, seconds."
    )
    import_max_bytes: int = Field(
        default=1024**3,
        ge=1024,
        description="Largest backup zip a tenant's owner may upload for import (bytes); keep "
        "the WSGI server's own body limit (waitress: --max-request-body-size) above it.",
    )
    import_dir: Path | None = Field(
        default=None,
        description="Where uploaded zips are spooled (on disk, never in memory) while they are "
        "checked and rewritten; unset: the system's temporary directory.",
    )

    @field_validator("backup_pvc_root", "backup_timeout", "import_dir", mode="before")
    @classmethod
    def _empty_is_none(cls, value: object) -> object:
        return None if value == "" else value

    @field_validator("admins", "cors_origins", mode="before")
    @classmethod
    def _split(cls, value: object) -> object:
        if isinstance(value, str):
            return [v.strip() for v in value.split(",") if v.strip()]
        return value

    @property
    def mode(self) -> Literal["supabase", "local"]:
        if self.auth_mode:
            return self.auth_mode
        return "supabase" if self.supabase_url else "local"

    @property
    def issuer(self) -> str:
        return f"{self.supabase_url.rstrip('/')}/auth/v1"

    def session_secret(self) -> str:
        return self.secret_key.get_secret_value() or secrets.token_urlsafe(32)

    def email_admins(self) -> list[str]:
        """Entries of ``admins`` that are e-mail addresses (they need a confirmed claim)."""
        return [a for a in self.admins if "@" in a]

    def check(self) -> None:
        """Refuse settings that are unsafe for ``env`` (called by ``create_app``)."""
        if self.mode == "supabase" and not (
            self.supabase_url and self.supabase_key.get_secret_value()
        ):
            raise ConfigError(
                "supabase auth needs SAASODOO_API_SUPABASE_URL and SAASODOO_API_SUPABASE_KEY"
            )
        if self.env != "production":
            return
        problems = []
        if self.mode != "supabase":
            problems.append("the local auth mode is for development only: configure Supabase")
        if len(self.secret_key.get_secret_value()) < 32:
            problems.append("SAASODOO_API_SECRET_KEY must be set (32+ characters)")
        if not self.cookie_secure:
            problems.append("SAASODOO_API_COOKIE_SECURE must stay true")
        if self.supabase_url.startswith("http://"):
            problems.append("SAASODOO_API_SUPABASE_URL must use https")
        if problems:
            raise ConfigError("refusing production settings: " + "; ".join(problems))
