"""The Kubernetes API's transport for saasodoo: the client's ApiClient, loaded from the
kubeconfig, with request counting, raw-JSON calls and error translation.

The reads on the status path (namespaces, workloads, release heads) go through the
client's ApiClient as raw JSON (``get_json``, ``call_json``), parsed with orjson into the
few fields saasodoo uses: the client's typed models cost more than the request (building
them for 2,000 workloads took 94% of a 1,000-tenant list, and importing CoreV1Api alone takes
about a second). The typed API objects (``core``, ``apps``, ``custom``) are created on first
use. Every error of the client is mapped into saasodoo's by ``translate``.
"""

from __future__ import annotations

import contextlib
import json
import os
import threading
from collections.abc import Iterator
from functools import cached_property
from typing import Any

import orjson
import urllib3
from kubernetes import client, config
from kubernetes.client.rest import ApiException

from saasodoo.errors import (
    Conflict,
    InvalidInput,
    NotFound,
    SaasodooError,
    TransientClusterError,
)
from saasodoo.settings import Settings

PARTIAL_METADATA = "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1"
MERGE_PATCH = "application/merge-patch+json"
#: Objects per page of ``Transport.list_pages`` (client-go's pager: 500).
LIST_PAGE_SIZE = 500
#: The field manager of saasodoo's own writes (the client's default is its User-Agent's
#: product, "OpenAPI-Generator", which is what earlier versions of saasodoo wrote as).
FIELD_MANAGER = "saasodoo"


def _reason(exc: ApiException) -> str:
    try:
        body = json.loads(exc.body or "{}")
        return str(body.get("message") or exc.reason)
    except (ValueError, TypeError):
        return str(exc.reason)


@contextlib.contextmanager
def translate(what: str) -> Iterator[None]:
    """Map the kubernetes client's errors into saasodoo's, naming the operation."""
    try:
        yield
    except ApiException as exc:
        reason = _reason(exc)
        if exc.status == 404:
            raise NotFound(f"{what}: not found") from None
        if exc.status == 409:
            raise Conflict(f"{what}: {reason}") from None
        if exc.status in (400, 422):
            raise InvalidInput(f"{what}: {reason}") from None
        if exc.status in (401, 403):
            raise SaasodooError(f"{what}: the cluster refused the request: {reason}") from None
        if exc.status in (429,) or (exc.status or 0) >= 500 or exc.status == 0:
            raise TransientClusterError(f"{what}: {reason}") from None
        raise SaasodooError(f"{what}: {exc.status} {reason}") from None
    except (urllib3.exceptions.HTTPError, OSError) as exc:
        raise TransientClusterError(f"{what}: cannot reach the cluster ({exc})") from None


def in_cluster() -> bool:
    """Whether this process runs in a pod with a ServiceAccount token (and no kubeconfig was
    given): ``KUBERNETES_SERVICE_HOST`` set and the token mounted, as client-go decides."""
    return bool(os.environ.get("KUBERNETES_SERVICE_HOST")) and os.path.exists(
        "/var/run/secrets/kubernetes.io/serviceaccount/token"
    )


class KubeTransport:
    """One cluster's API client: counted requests, raw JSON, translated errors."""

    def __init__(self, settings: Settings) -> None:
        kubeconfig = settings.effective_kubeconfig()
        try:
            configuration = client.Configuration()
            if kubeconfig is None and in_cluster():
                # A pod (the platform chart's operator and API): its ServiceAccount's
                # projected token and the cluster's CA, as helm reads them there too.
                config.load_incluster_config(client_configuration=configuration)
            else:
                config.load_kube_config(
                    config_file=str(kubeconfig) if kubeconfig else None,
                    context=settings.kube_context,
                    client_configuration=configuration,
                )
            # One HTTP connection per thread that may call at once: the fleet's tenants
            # (``concurrency``), the operator's workers, the informers' watches (one each,
            # held open) and the API's threads besides (urllib3 would otherwise discard and
            # reopen connections, a TLS handshake each, above its default of 5 per core).
            configuration.connection_pool_maxsize = (
                settings.concurrency + settings.operator_workers + 16
            )
            self.api = client.ApiClient(configuration)
        except (config.ConfigException, OSError) as exc:
            raise SaasodooError(
                f"cannot load kubeconfig {kubeconfig or '(default)'}: {exc}"
            ) from None
        self.timeout = settings.kube_timeout
        #: API requests made (for benchmarks and the no-op fleet pass checks); counted under
        #: a lock, since the fleet runs tenants in threads sharing this adapter.
        self.requests = 0
        self._requests_lock = threading.Lock()

    @cached_property
    def core(self) -> client.CoreV1Api:
        return client.CoreV1Api(self.api)

    @cached_property
    def apps(self) -> client.AppsV1Api:
        return client.AppsV1Api(self.api)

    @cached_property
    def custom(self) -> client.CustomObjectsApi:
        return client.CustomObjectsApi(self.api)

    def count_request(self) -> None:
        """Count one API request (``requests``)."""
        with self._requests_lock:
            self.requests += 1

    def get_json(
        self, path: str, query: list[tuple[str, str]] | None = None, accept: str | None = None
    ) -> Any:
        """GET ``path`` as parsed JSON (no client models); callers wrap it in ``translate``."""
        return self.call_json("GET", path, query or [], {"Accept": accept or "application/json"})

    def call_json(
        self,
        method: str,
        path: str,
        query: list[tuple[str, str]],
        headers: dict[str, str],
        body: Any = None,
    ) -> Any:
        """One counted API request, its answer parsed from JSON; ApiException for >= 400."""
        self.count_request()
        method, url, headers, data, post = self.api.param_serialize(
            method=method,
            resource_path=path,
            query_params=query,
            header_params=headers,
            body=body,
            auth_settings=["BearerToken"],
        )
        resp = self.api.call_api(
            method, url, header_params=headers, body=data, post_params=post,
            _request_timeout=self.timeout,
        )  # fmt: skip
        raw = resp.read()
        if resp.status >= 400:
            raise ApiException(status=resp.status, reason=resp.reason, body=raw)
        return orjson.loads(raw)

    def list_pages(
        self, path: str, query: list[tuple[str, str]], page_size: int = LIST_PAGE_SIZE
    ) -> Iterator[list[dict[str, Any]]]:
        """The items of the list at ``path`` page by page (``limit`` and ``continue``, as
        client-go's pager; one snapshot): a caller that reduces each page holds one page of
        full objects at a time, not the whole answer. Callers wrap it in ``translate``."""
        token = ""
        while True:
            paging = [("limit", str(page_size))] + ([("continue", token)] if token else [])
            doc = self.get_json(path, query + paging)
            yield doc.pop("items", None) or []
            token = (doc.get("metadata") or {}).get("continue") or ""
            if not token:
                return

    def list_items(self, what: str, path: str, selector: str) -> list[dict[str, Any]]:
        """The items of the list at ``path`` matching the label selector ``selector``, as
        parsed JSON; errors translated, naming ``what``."""
        with translate(what):
            doc = self.get_json(path, [("labelSelector", selector)])
        return list(doc.get("items") or [])

    def merge_patch(self, path: str, body: dict[str, Any]) -> Any:
        """A JSON merge patch as field manager ``saasodoo``; the object as written, parsed."""
        headers = {"Accept": "application/json", "Content-Type": MERGE_PATCH}
        return self.call_json("PATCH", path, [("fieldManager", FIELD_MANAGER)], headers, body)
