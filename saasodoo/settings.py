"""Runtime settings, read once at each entry point (CLI, API) and passed down.

Every field can be set from the environment with the ``SAASODOO_`` prefix, e.g.
``SAASODOO_KUBECONFIG=/path/to/kubeconfig``, ``SAASODOO_HELM_BINARY=/opt/helm4/helm``,
``SAASODOO_BASE_DOMAIN=odoo.example.com``.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

#: A label KEY=VALUE: optional DNS-subdomain prefix, name and value of up to 63 characters.
_NODE_POOL = re.compile(
    r"(?:[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?/)?[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?"
    r"=(?:[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?)?"
)


#: A memory quantity as Kubernetes writes one: a plain number, decimal or binary suffix.
_MEMORY = re.compile(r"[0-9]+(\.[0-9]+)?(k|M|G|T|P|E|Ki|Mi|Gi|Ti|Pi|Ei)?")


def check_node_pool(value: str) -> str:
    """A node pool ``KEY=VALUE`` (a label key and value) or "" (any node); ValueError
    naming the rule otherwise."""
    if value and not _NODE_POOL.fullmatch(value):
        raise ValueError(
            "must be KEY=VALUE with a label key ([prefix/]name) and a label value, "
            "e.g. saasodoo.dev/real-node=true"
        )
    return value


#: ``backup_s3_secret``: a namespace and a Secret name.
#: The keys of the Secret ``backup_s3_secret`` names: the platform's S3 access key pair.
S3_KEYS = ("access-key-id", "secret-access-key")
_SECRET_REF = re.compile(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?/[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?")

#: ``public_url``: a scheme, the ``{host}`` placeholder and an optional port.
_PUBLIC_URL = re.compile(r"https?://\{host\}(?::(?P<port>[0-9]{1,5}))?")

#: The repository checkout this package runs from (chart and plans live there).
REPO_ROOT = Path(__file__).resolve().parents[1]


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="SAASODOO_", env_nested_delimiter="__", extra="ignore"
    )

    kubeconfig: Path | None = Field(
        default=None,
        description="Kubeconfig to use; falls back to $KUBECONFIG, then ~/.kube/config.",
    )
    kube_context: str | None = Field(default=None, description="Kubeconfig context to use.")
    chart: str = Field(
        default=str(REPO_ROOT / "charts" / "odoo-tenant"),
        description="Chart of every tenant: a directory, a packaged .tgz or an oci:// reference.",
    )
    chart_version: str | None = Field(
        default=None, description="Chart version, for a repository or OCI chart."
    )
    helm_binary: str = Field(default="helm", description="Path of the helm binary (3.x or 4.x).")
    base_domain: str = Field(
        default="odoo.localhost", description="Tenants get <id>.<base_domain>."
    )
    public_url: str = Field(
        default="https://{host}",
        description="Public address of a tenant through the ingress, the one shown everywhere "
        "(CLI, API, web UI, the demo): scheme, '{host}' (replaced by the tenant's "
        "<id>.<base_domain>) and the port when it is not the scheme's default, e.g. "
        "https://{host}:8443 for an ingress published on 8443.",
    )
    reserved_domains: list[str] = Field(
        default_factory=list,
        description="Domains of the platform besides base_domain (e.g. the API's host when it "
        "lives elsewhere): neither they nor any name under them can be a custom domain.",
    )
    system_namespace: str = Field(
        default="saasodoo-system",
        description="Namespace of the platform's own objects (the custom domain claims, the "
        "kept final backups of deleted tenants).",
    )
    final_backup_days: float = Field(
        default=30,
        gt=0,
        description="Days a deleted tenant's final backup is kept, when it was on the tenant's "
        "backup volume (the volume is then kept under a claim in system_namespace).",
    )
    domain_pending_hours: float = Field(
        default=168,
        ge=0,
        description="How long a custom domain may stay claimed without proof of control; "
        "after that another tenant may claim it (so nobody squats a host).",
    )
    dns_nameserver: str | None = Field(
        default=None,
        description="Nameserver (IP address) asked when verifying custom domains; empty: the "
        "system's resolver configuration.",
    )
    dns_port: int = Field(default=53, ge=1, le=65535, description="Port of dns_nameserver.")
    dns_timeout: float = Field(
        default=5.0, gt=0, le=60, description="Seconds one domain verification may take."
    )
    backup_s3_endpoint: str = Field(
        default="",
        description="URL at which this process reaches the tenants' backup bucket when it is "
        "not the one their pods use (backup.s3.endpoint), e.g. the ClusterIP of an in-cluster "
        "S3 server seen from a host outside the cluster; empty: the pods' URL.",
    )
    backup_s3_secret: str = Field(
        default="",
        description="NAMESPACE/NAME of the Secret with the S3 access key pair (keys "
        "access-key-id and secret-access-key) of tenants that keep their backups in S3 "
        "(values backup.storage=s3): before each install or upgrade its keys are copied into "
        "the tenant's namespace, under the name the values give (backup.s3.existingSecret). "
        "Empty: that Secret is the tenant's own to provide.",
    )
    backup_s3_access_key_id: SecretStr | None = Field(
        default=None,
        description="The platform's S3 access key id (backup_s3_secret's), with which the "
        "API reads a tenant's backup from S3 for a download, its account reading no tenant "
        "Secret; the platform chart sets it from tenants.backupS3Secret. Never logged.",
    )
    backup_s3_secret_access_key: SecretStr | None = Field(
        default=None, description="The secret access key of backup_s3_access_key_id."
    )
    tenant_values: dict[str, Any] = Field(
        default_factory=dict,
        description="odoo-tenant chart values for every tenant, merged over "
        "plans_dir/base.yaml (the plan, the tenant and its overrides still win); JSON in "
        "SAASODOO_TENANT_VALUES, e.g. the backup bucket. Secrets are named here, never carried.",
    )
    ingress_class: str = Field(default="traefik", description="IngressClass of tenant Ingresses.")
    storage_class: str = Field(
        default="", description="StorageClass of tenant volumes; empty: the cluster default."
    )
    node_pool: str = Field(
        default="",
        description=(
            "Dedicated nodes of tenants, KEY=VALUE: tenant pods select nodes with that label and "
            "tolerate the taint KEY=VALUE:NoSchedule; empty: any node. E.g. "
            "saasodoo.dev/real-node=true (the test cluster's real nodes)."
        ),
    )
    plans_dir: Path = Field(
        default=REPO_ROOT / "values", description="Directory with base.yaml and plans/*.yaml."
    )
    concurrency: int = Field(
        default=4, ge=1, le=64, description="Tenants handled at once by fleet operations."
    )
    operator: bool = Field(
        default=False,
        description="The operator applies tenant changes: the CLI and the Makefile write "
        "OdooTenant objects and follow their status, and never run helm on a tenant "
        "(`saasodoo tenant --local` is the break-glass way back).",
    )
    operator_workers: int = Field(
        default=20,
        ge=1,
        le=64,
        description="Tenants the operator reconciles at once. More than "
        "operator_helm_concurrency, so a tenant's reads and status writes before and after "
        "its helm call run while other tenants' helm calls hold the helm slots.",
    )
    operator_helm_concurrency: int = Field(
        default=10,
        ge=1,
        le=64,
        description="Helm processes the operator runs at once (a reconcile waits for a slot "
        "before its helm call; Flux's helm-controller finds more than 10 no faster).",
    )
    templates: bool = Field(
        default=True,
        description="The operator creates new tenants from a template database of their Odoo "
        "image (issue #25 point 3: restored instead of Odoo's `-i base`) when their backups are "
        "kept in S3, and builds a missing template in the first such tenant's namespace after "
        "it is created. False: every new tenant runs `-i base`.",
    )
    operator_resync_seconds: float = Field(
        default=300.0,
        ge=5,
        description="Seconds between the operator's full passes over every tenant (10 % "
        "jitter); a pass costs a few list requests and no helm call for tenants in sync.",
    )
    operator_request_ttl_seconds: float = Field(
        default=604800.0,
        ge=0,
        description="Seconds a finished one-shot operation request (OdooTenantBackup, "
        "...Restore, ...Verify, ...Rollback) is kept after its completedAt before the "
        "operator's sweep deletes it (7 days; a Job's ttlSecondsAfterFinished).",
    )
    operator_lease: str = Field(
        default="saasodoo-operator",
        description="Name of the operator's Lease (coordination.k8s.io) in system_namespace: "
        "one replica works, the others stand by.",
    )
    operator_lease_seconds: float = Field(
        default=15.0,
        gt=0,
        description="How long the operator's Lease holds without renewal: a standby takes "
        "over this long after the leader died (client-go's default).",
    )
    operator_renew_seconds: float = Field(
        default=10.0,
        gt=0,
        description="How long the leader keeps trying to renew before it stops all work "
        "(client-go's renew deadline; less than operator_lease_seconds).",
    )
    operator_retry_seconds: float = Field(
        default=2.0, gt=0, description="Seconds between the Lease's renewals and tries."
    )
    helm_timeout: str = Field(
        default="10m", description="Timeout of one helm install/upgrade/rollback (--timeout)."
    )
    kube_timeout: float = Field(
        default=30.0, gt=0, description="Seconds one Kubernetes API request may take."
    )
    history_max: int = Field(default=10, ge=0, description="Revisions kept per release.")
    metrics_port: int = Field(
        default=0,
        ge=0,
        le=65535,
        description="Port of the Prometheus /metrics of the operator and the API "
        "(saasodoo/adapters/metrics.py); 0: not served.",
    )
    update_deadline_seconds: int = Field(
        default=3600,
        ge=60,
        description="Seconds the update Job (odoo -u of a new image of the tenant's series, "
        "docs/updates.md) may run: its activeDeadlineSeconds. Past it Kubernetes stops the "
        "Job, and the update fails and is undone from its pre-update backup.",
    )
    update_memory: str | None = Field(
        default=None,
        description="Memory request and limit of the update Job, a Kubernetes quantity such "
        "as 2Gi; unset: the web container's. odoo -u loads every installed module in one "
        "process: a large database may need more than a web worker. The web pods are at "
        "zero meanwhile; the tenant's ResourceQuota still applies.",
    )

    @field_validator("update_memory")
    @classmethod
    def _memory_quantity(cls, value: str | None) -> str | None:
        if value in (None, ""):
            return None
        if not _MEMORY.fullmatch(value) or not float(value.rstrip("KMGTPEik")):
            raise ValueError(
                f"must be a memory quantity above 0 such as 2Gi or 1500M, got {value!r}"
            )
        return value

    @field_validator("node_pool")
    @classmethod
    def _node_pool_is_label(cls, value: str) -> str:
        return check_node_pool(value)

    @field_validator("backup_s3_secret")
    @classmethod
    def _secret_reference(cls, value: str) -> str:
        if value and not _SECRET_REF.fullmatch(value):
            raise ValueError(
                "must be NAMESPACE/NAME of a Secret (DNS labels), e.g. saasodoo-system/backup-s3"
            )
        return value

    @field_validator("public_url")
    @classmethod
    def _public_url_shape(cls, value: str) -> str:
        match = _PUBLIC_URL.fullmatch(value.strip())
        if not match:
            raise ValueError(
                "must be http(s)://{host} with an optional :PORT and nothing else, "
                f"e.g. https://{{host}}:8443; got {value!r}"
            )
        port = match.group("port")
        if port is not None and not 1 <= int(port) <= 65535:
            raise ValueError(f"port {port} is not in 1-65535")
        return value.strip()

    def tenant_url(self, host: str) -> str:
        """The public address of ``host`` (a tenant's ``<id>.<base_domain>`` or a custom
        domain) through the ingress, from ``public_url``; no trailing slash."""
        return self.public_url.replace("{host}", host)

    @field_validator("kubeconfig", "dns_nameserver", mode="before")
    @classmethod
    def _empty_is_none(cls, value: object) -> object:
        return None if value == "" else value

    def effective_kubeconfig(self) -> Path | None:
        """SAASODOO_KUBECONFIG, else $KUBECONFIG (first entry), else the client's default."""
        if self.kubeconfig:
            return self.kubeconfig
        env = os.environ.get("KUBECONFIG", "")
        first = env.split(os.pathsep)[0] if env else ""
        return Path(first) if first else None
