"""Handing ``.spec.replicas`` back to Helm after saasodoo scaled a Deployment (issue #18)."""

from __future__ import annotations

from typing import Any

import pytest

from saasodoo.adapters.kube import FIELD_MANAGER, REPLICAS_FIELD, hand_back_field

pytestmark = pytest.mark.unit

MINE = {"f:spec": {"f:replicas": {}}}
TEMPLATE = {"f:metadata": {"f:labels": {".": {}, "f:app": {}}}, "f:spec": {"f:containers": {}}}


def helm(operation: str = "Apply", replicas: bool = True) -> dict[str, Any]:
    spec: dict[str, Any] = {"f:selector": {}, "f:template": TEMPLATE}
    if replicas:
        spec["f:replicas"] = {}
    return {"manager": "helm", "operation": operation, "apiVersion": "apps/v1",
            "fieldsType": "FieldsV1", "fieldsV1": {"f:spec": spec}}  # fmt: skip


def writer(name: str, fields: dict[str, Any]) -> dict[str, Any]:
    return {"manager": name, "operation": "Update", "apiVersion": "apps/v1",
            "fieldsType": "FieldsV1", "fieldsV1": fields}  # fmt: skip


NOTE = {"f:metadata": {"f:annotations": {"f:saasodoo.dev/replicas-before-restore": {}}}}
CONTROLLER = writer("kube-controller-manager", {"f:status": {"f:replicas": {}}})


def owners(entries: list[dict[str, Any]]) -> list[str]:
    return [e["manager"] for e in entries if "f:replicas" in e["fieldsV1"].get("f:spec", {})]


@pytest.mark.parametrize("operation", ["Apply", "Update"])  # helm 4 applies, helm 3 updates
def test_replicas_go_back_to_helm_and_the_note_stays_ours(operation: str) -> None:
    before = [helm(operation), CONTROLLER]
    after_write = [
        helm(operation, replicas=False),
        CONTROLLER,
        writer(FIELD_MANAGER, {**NOTE, "f:spec": {"f:replicas": {}}}),
    ]
    fixed = hand_back_field(after_write, before, REPLICAS_FIELD, FIELD_MANAGER)
    assert owners(fixed) == ["helm"]
    assert fixed[0]["operation"] == operation and fixed[0]["fieldsV1"] == before[0]["fieldsV1"]
    assert fixed[1] == CONTROLLER
    assert fixed[2]["fieldsV1"] == NOTE  # the annotation is saasodoo's, helm never sets it


def test_an_entry_left_empty_is_dropped_and_nothing_changes_twice() -> None:
    before = [helm(), CONTROLLER]
    after_write = [helm(replicas=False), CONTROLLER, writer(FIELD_MANAGER, MINE)]
    fixed = hand_back_field(after_write, before, REPLICAS_FIELD, FIELD_MANAGER)
    assert fixed == before
    assert hand_back_field(fixed, before, REPLICAS_FIELD, FIELD_MANAGER) == fixed


def test_ownership_left_by_earlier_saasodoo_versions_is_mended() -> None:
    """A restore before the fix left "OpenAPI-Generator" owning the replicas: the next write
    gives them to the template's applier, helm."""
    legacy = writer("OpenAPI-Generator", {"f:spec": {"f:replicas": {}}})
    before = [helm(replicas=False), legacy, CONTROLLER]
    after_write = [helm(replicas=False), legacy, CONTROLLER, writer(FIELD_MANAGER, MINE)]
    fixed = hand_back_field(after_write, before, REPLICAS_FIELD, FIELD_MANAGER)
    assert owners(fixed) == ["helm"]
    assert [e["manager"] for e in fixed] == ["helm", "kube-controller-manager"]


def test_an_owner_whose_only_field_it_was_gets_its_entry_back() -> None:
    scaler = {**writer("autoscaler", {"f:spec": {"f:replicas": {}}}), "subresource": "scale"}
    before = [helm(replicas=False), scaler]
    after_write = [helm(replicas=False), writer(FIELD_MANAGER, {"f:spec": {"f:replicas": {}}})]
    fixed = hand_back_field(after_write, before, REPLICAS_FIELD, FIELD_MANAGER)
    assert owners(fixed) == ["autoscaler"] and fixed[1]["subresource"] == "scale"


def test_parents_that_own_themselves_are_kept() -> None:
    mine = writer(FIELD_MANAGER, {"f:spec": {".": {}, "f:replicas": {}}})
    fixed = hand_back_field([helm(replicas=False), mine], [helm()], REPLICAS_FIELD, FIELD_MANAGER)
    assert fixed[1]["fieldsV1"] == {"f:spec": {".": {}}}
