"""Rendering the odoo-tenant chart with the pinned helms, and reading what comes out."""

from __future__ import annotations

import configparser
import functools
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

from tests.support import ROOT

CHART = ROOT / "charts" / "odoo-tenant"
SCENARIOS = sorted(CHART.glob("ci/*-values.yaml"))
SCENARIO_IDS = [p.name.removesuffix("-values.yaml") for p in SCENARIOS]
RELEASE = "acme"
NAMESPACE = "tenant-acme"
WORKLOAD_KINDS = ("Deployment", "StatefulSet", "CronJob", "Job", "Pod")


class RenderError(AssertionError):
    """helm template failed; the message is helm's stderr."""


def render(
    helm: Path,
    *args: str,
    release: str = RELEASE,
    namespace: str = NAMESPACE,
) -> list[dict[str, Any]]:
    """Objects of `helm template` (hooks included), cached per helm binary and arguments."""
    return _render(str(helm), release, namespace, tuple(args))


@functools.lru_cache(maxsize=256)
def _render(helm: str, release: str, namespace: str, args: tuple[str, ...]) -> list[dict[str, Any]]:
    out = helm_template(helm, release, namespace, args)
    return [doc for doc in yaml.safe_load_all(out) if doc]


def helm_template(helm: str, release: str, namespace: str, args: tuple[str, ...]) -> str:
    proc = subprocess.run(
        [helm, "template", release, str(CHART), "--namespace", namespace, *args],
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        raise RenderError(proc.stderr)
    return proc.stdout


def render_error(helm: Path, *args: str) -> str:
    """stderr of a `helm template` expected to fail."""
    try:
        render(helm, *args)
    except RenderError as exc:
        return str(exc)
    raise AssertionError(f"helm template {' '.join(args)} succeeded; expected a failure")


def scenario_args(path: Path) -> tuple[str, ...]:
    return ("--values", str(path))


def find(docs: list[dict[str, Any]], kind: str, name: str | None = None) -> list[dict[str, Any]]:
    return [
        d for d in docs if d["kind"] == kind and (name is None or d["metadata"]["name"] == name)
    ]


def one(docs: list[dict[str, Any]], kind: str, name: str | None = None) -> dict[str, Any]:
    found = find(docs, kind, name)
    assert len(found) == 1, f"expected one {kind} {name or ''}, got {[names(found)]}"
    return found[0]


def names(docs: list[dict[str, Any]]) -> list[str]:
    return [f"{d['kind']}/{d['metadata']['name']}" for d in docs]


def pod_template(obj: dict[str, Any]) -> dict[str, Any]:
    """The pod template (metadata + spec) of a workload."""
    kind = obj["kind"]
    if kind == "Pod":
        return obj
    if kind == "CronJob":
        return obj["spec"]["jobTemplate"]["spec"]["template"]
    return obj["spec"]["template"]


def workloads(docs: list[dict[str, Any]]) -> Iterator[tuple[dict[str, Any], dict[str, Any]]]:
    """(workload, pod spec) of every object that makes pods."""
    for doc in docs:
        if doc["kind"] in WORKLOAD_KINDS:
            yield doc, pod_template(doc)["spec"]


def containers(pod_spec: dict[str, Any]) -> list[dict[str, Any]]:
    return [*pod_spec.get("initContainers", []), *pod_spec["containers"]]


def container(pod_spec: dict[str, Any], name: str) -> dict[str, Any]:
    found = [c for c in containers(pod_spec) if c["name"] == name]
    assert len(found) == 1, f"container {name}: {[c['name'] for c in containers(pod_spec)]}"
    return found[0]


def env(container_spec: dict[str, Any]) -> dict[str, Any]:
    """name -> value, or name -> {"secret": name, "key": key} for secretKeyRefs."""
    out: dict[str, Any] = {}
    for var in container_spec.get("env", []):
        if "value" in var:
            out[var["name"]] = var["value"]
        else:
            ref = var["valueFrom"]["secretKeyRef"]
            out[var["name"]] = {"secret": ref["name"], "key": ref["key"]}
    return out


def odoo_conf(docs: list[dict[str, Any]], key: str = "odoo.conf") -> dict[str, str]:
    """The [options] of an odoo.conf of the chart's ConfigMap."""
    cm = one(docs, "ConfigMap", f"{RELEASE}-odoo-tenant-config")
    parser = configparser.RawConfigParser(comment_prefixes=(";", "#"))
    parser.read_string(cm["data"][key])
    return dict(parser["options"])


def labels(obj: dict[str, Any]) -> dict[str, str]:
    labels_: dict[str, str] = obj["metadata"].get("labels", {})
    return labels_
