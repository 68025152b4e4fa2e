"""schemathesis against the app (simulated cluster behind it): no 5xx but a documented 501 (what
the API's account may not read: usage, distribution), nothing off-document.

Bounded: a few examples per operation; tenants it manages to create are deleted after.
"""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Iterator

import pytest
import schemathesis
from flask import Flask
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from schemathesis import checks

from saasodoo.errors import NotFound
from tests.api.conftest import Api, services_of, sign_up

pytestmark = pytest.mark.cluster

MAX_EXAMPLES = 6


@schemathesis.check
def not_a_server_error_but_a_documented_501(
    ctx: schemathesis.CheckContext, response: schemathesis.Response, case: schemathesis.Case
) -> bool | None:
    """``not_a_server_error``, except for a 501 the operation documents: its designed answer
    (``GET .../usage``: the API reads no pod metrics), not a failure."""
    if response.status_code == 501 and "501" in case.operation.definition.raw["responses"]:
        return None
    return checks.not_a_server_error(ctx, response, case)


CHECKS = [
    not_a_server_error_but_a_documented_501,
    checks.status_code_conformance,
    checks.content_type_conformance,
    checks.response_schema_conformance,
    checks.response_headers_conformance,
]


@pytest.fixture(scope="module")
def api_schema(cluster_app: Flask) -> schemathesis.BaseSchema:
    return schemathesis.openapi.from_wsgi("/api/openapi.json", cluster_app)


@pytest.fixture(scope="module")
def fuzzer(cluster_app: Flask) -> Iterator[Api]:
    """The fuzzing user, owning one real tenant that the fuzzed routes may hit."""
    api = sign_up(cluster_app.test_client(), f"fuzz-{uuid.uuid4().hex[:8]}@example.com")
    own = f"apifz{uuid.uuid4().hex[:6]}"
    tenant = api.wait_tenant(
        api.call("POST", "/api/tenants", json={"id": own, "admin_email": "a@b.io"})
    )
    assert tenant["ready"] == "True", tenant
    api.tenant_id = own
    yield api
    objects = services_of(cluster_app).objects
    for view in objects.list(owner=api.user_id):  # its own and what the fuzzing created
        try:
            # Not waiting for the operator (~10 s a tenant): the ids are never reused.
            objects.delete(view.id, final_backup=False)
        except NotFound:
            pass


def _throwaway_session(app: Flask) -> dict[str, str]:
    """A user of its own for the log-out route (GoTrue ends every session of a user)."""
    return sign_up(app.test_client(), f"fuzz-out-{uuid.uuid4().hex[:8]}@example.com").headers


def test_api_matches_its_openapi_document(
    api_schema: schemathesis.BaseSchema, fuzzer: Api, cluster_app: Flask
) -> None:
    failures: list[str] = []
    seen: dict[str, Counter[int]] = {}
    for result in api_schema.get_all_operations():
        operation = result.ok()

        @given(case=operation.as_strategy(), own=st.booleans())
        @settings(
            max_examples=MAX_EXAMPLES,
            deadline=None,
            suppress_health_check=list(HealthCheck),
            database=None,
            phases=[Phase.explicit, Phase.generate],
        )
        def fuzz(case: schemathesis.Case, own: bool) -> None:
            if own and case.path_parameters and "tenant_id" in case.path_parameters:
                case.path_parameters["tenant_id"] = fuzzer.tenant_id
            headers = fuzzer.headers
            if case.operation.path == "/api/auth/logout":  # log-out ends the fuzzer's sessions
                headers = _throwaway_session(cluster_app)
            response = case.call_and_validate(headers=headers, checks=CHECKS)
            seen.setdefault(case.operation.label, Counter())[response.status_code] += 1

        try:
            fuzz()
        except Exception as exc:  # noqa: BLE001 - collect every operation's failure
            failures.append(f"{operation.label}: {exc}")
    assert not failures, "\n\n".join(failures)
    print("schemathesis: responses per operation:")
    for label, codes in sorted(seen.items()):
        print(f"  {label}: {dict(sorted(codes.items()))}")
    every = sum(seen.values(), Counter())
    assert {200, 202, 404, 422} <= set(every), every  # it got past validation and auth
