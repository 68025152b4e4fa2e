"""Issue #22 point 12: every tenant id saasodoo accepts gives valid names for every object the
chart renders, under each kind's own rule (Kubernetes' validation, not examples), and the chart
installed with plain `helm install` spreads backup times as saasodoo does.

The ids are drawn from the grammar itself (saasodoo.core.spec): its extremes (shortest,
longest, all digits after the first letter, hyphens wherever allowed, an id that contains the
chart's name, which changes the chart's full name) and a seeded sample of random ids, each
kept only if the grammar accepts it, rendered with the values saasodoo computes for it."""

from __future__ import annotations

import random
import re
import string
from pathlib import Path
from typing import Any

import pytest
import yaml

from saasodoo.adapters.catalog import load_catalog
from saasodoo.core.spec import (
    MAX_ID_LENGTH,
    MIN_ID_LENGTH,
    TenantSpec,
    check_new_tenant_id,
    namespace_for,
)
from saasodoo.core.values import Platform, backup_schedule, compute_values
from saasodoo.errors import InvalidInput
from tests.chart.helpers import RenderError, helm_template, pod_template, render
from tests.support import ROOT

pytestmark = pytest.mark.chart

# Kubernetes' name rules (k8s.io/apimachinery/pkg/util/validation, pkg/apis/*/validation).
DNS1123_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
DNS1035_LABEL = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
DNS1123_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
#: A StatefulSet's controller-revision-hash label is "<name>-<hash>" (hash up to 10).
REVISION_HASH = 11
#: A CronJob's Jobs are "<name>-<minutes since epoch>" (11 more); the API refuses > 52.
CRONJOB_MAX = 52


def label(name: str) -> bool:
    return len(name) <= 63 and bool(DNS1123_LABEL.match(name))


def subdomain(name: str) -> bool:
    return len(name) <= 253 and bool(DNS1123_SUBDOMAIN.match(name))


#: The rule of each kind's metadata.name, as the API server validates it.
NAME_RULES = {
    "Service": lambda n: len(n) <= 63 and bool(DNS1035_LABEL.match(n)),
    "StatefulSet": lambda n: label(n) and len(n) + REVISION_HASH <= 63,
    "CronJob": lambda n: subdomain(n) and len(n) <= CRONJOB_MAX,
    "Job": lambda n: subdomain(n) and len(n) <= 63,  # its pods' job-name label
    "Deployment": subdomain,
    "ConfigMap": subdomain,
    "Secret": subdomain,
    "PersistentVolumeClaim": subdomain,
    "ServiceAccount": subdomain,
    "NetworkPolicy": subdomain,
    "PodDisruptionBudget": subdomain,
    "ResourceQuota": subdomain,
    "LimitRange": subdomain,
    "Ingress": subdomain,
}


def grammar_ids() -> list[str]:
    """Ids from the grammar's extremes and a seeded sample, each accepted by it."""
    longest = MAX_ID_LENGTH
    candidates = [
        "a" * MIN_ID_LENGTH,
        "z" * longest,
        "a" + "9" * (longest - 1),
        "a0-" + "-".join(["b"] * ((longest - 3) // 2)),
        "ab-" + "c-" * ((longest - 4) // 2) + "d",
        ("x" * (longest - len("-odoo-tenant"))) + "-odoo-tenant",  # fullname = release name
        "odoo-tenant-a",
        "a" + "-" * 1 + "9" * (longest - 2),
    ]
    rng = random.Random(22)
    alphabet = string.ascii_lowercase + string.digits + "-"
    for _ in range(8):
        size = rng.randint(MIN_ID_LENGTH, longest)
        middle = "".join(rng.choice(alphabet) for _ in range(size - 2))
        candidates.append(rng.choice(string.ascii_lowercase) + middle + rng.choice("a9"))
    accepted = []
    for candidate in candidates:
        try:
            spec = TenantSpec.parse({"id": candidate[:longest], "admin_email": "a@b.example"})
            check_new_tenant_id(spec.id)
        except InvalidInput:
            continue
        accepted.append(spec.id)
    assert len(accepted) >= 12 and max(map(len, accepted)) == longest
    return accepted


IDS = grammar_ids()


def tenant_docs(helm: Path, tmp_path: Path, tenant_id: str, plan: str) -> list[dict[str, Any]]:
    spec = TenantSpec.parse({"id": tenant_id, "admin_email": "a@b.example", "plan": plan})
    values = compute_values(spec, load_catalog(ROOT / "values"), Platform("odoo.test")).values
    path = tmp_path / f"{tenant_id}-{plan}.yaml"
    path.write_text(yaml.safe_dump(values))
    return render(
        helm, "--values", str(path), release=tenant_id, namespace=namespace_for(tenant_id)
    )


def problems_of(docs: list[dict[str, Any]], tenant_id: str) -> list[str]:
    """Every name or label value the API server would refuse, with its rule."""
    problems: list[str] = []
    seen: set[tuple[str, str]] = set()
    for doc in docs:
        kind, meta = doc["kind"], doc["metadata"]
        name = meta["name"]
        rule = NAME_RULES.get(kind)
        assert rule is not None, f"no name rule for kind {kind}: add Kubernetes' rule"
        if not rule(name):
            problems.append(f"{kind} name {name!r} ({len(name)})")
        if (kind, name) in seen:
            problems.append(f"two {kind}s named {name!r}")
        seen.add((kind, name))
        if not label(meta["namespace"]):
            problems.append(f"namespace {meta['namespace']!r}")
        labels = dict(meta.get("labels") or {})
        if kind in ("Deployment", "StatefulSet", "CronJob", "Job"):
            template = pod_template(doc)
            labels.update(template["metadata"].get("labels") or {})
            for c in [*template["spec"].get("initContainers", []), *template["spec"]["containers"]]:
                if not label(c["name"]):
                    problems.append(f"container name {c['name']!r}")
            for v in template["spec"].get("volumes", []):
                if not label(v["name"]):
                    problems.append(f"volume name {v['name']!r}")
        for key, value in labels.items():
            if len(str(value)) > 63 or not LABEL_VALUE.match(str(value)):
                problems.append(f"{kind}/{name} label {key}={value!r}")
        if kind == "StatefulSet":
            pod = f"{name}-{doc['spec']['replicas'] - 1}"
            if not label(pod):  # its pods' names are their host names
                problems.append(f"StatefulSet pod {pod!r}")
        if kind == "Ingress":
            for r in doc["spec"]["rules"]:
                host = r["host"]
                if not subdomain(host) or max(map(len, host.split("."))) > 63:
                    problems.append(f"Ingress host {host!r}")
    return problems


@pytest.mark.parametrize("plan", ["starter", "premium"])  # premium adds the cron Deployment
def test_every_id_of_the_grammar_gives_valid_names_for_every_object(
    helm3: Path, tmp_path: Path, plan: str
) -> None:
    found = {}
    for tenant_id in IDS:
        assert len(tenant_id) <= 53  # Helm's own limit on release names
        docs = tenant_docs(helm3, tmp_path, tenant_id, plan)
        assert {d["kind"] for d in docs} >= {"Service", "StatefulSet", "CronJob", "Job"}
        problems = problems_of(docs, tenant_id)
        if problems:
            found[tenant_id] = problems
    assert not found, found


def test_an_id_the_services_cannot_carry_is_refused_by_saasodoo_and_by_the_chart(
    helm3: Path,
) -> None:
    """A leading digit passes the DNS-1123 label grammar but not a Service's DNS-1035 rule:
    saasodoo refuses it at creation, the chart (plain helm) at render, both saying why."""
    for bad in ("1acme", "123", "9-to-5"):
        spec = TenantSpec.parse({"id": bad, "admin_email": "a@b.example"})
        with pytest.raises(InvalidInput) as err:
            check_new_tenant_id(spec.id)
        assert err.value.fields[0].field == "id" and "start with a letter" in str(err.value)
    with pytest.raises(RenderError, match="Services need DNS-1035 labels"):
        helm_template(str(helm3), "1acme", "tenant-1acme", ())
    with pytest.raises(RenderError, match="a lowercase letter first"):
        helm_template(str(helm3), "acme", "tenant-acme", ("--set", "fullnameOverride=1x"))


def test_plain_helm_spreads_backup_times_as_saasodoo_does(helm3: Path) -> None:
    """No backup.schedule: the chart derives the time from the tenant id (the release name),
    the same as saasodoo.core.values.backup_schedule; the window and the spread hold."""
    schedules = {}
    for tenant_id in IDS:
        docs = render(helm3, release=tenant_id, namespace=namespace_for(tenant_id))
        [cronjob] = [d for d in docs if d["kind"] == "CronJob"]
        schedules[tenant_id] = cronjob["spec"]["schedule"]
        assert schedules[tenant_id] == backup_schedule(tenant_id), tenant_id
        minute, hour, *rest = schedules[tenant_id].split()
        assert 1 <= int(hour) <= 4 and 0 <= int(minute) <= 59 and rest == ["*", "*", "*"]
    assert len(set(schedules.values())) >= len(IDS) - 1  # spread, not one shared time
    fixed = render(helm3, "--set", "backup.schedule=0 2 * * *")
    assert [d["spec"]["schedule"] for d in fixed if d["kind"] == "CronJob"] == ["0 2 * * *"]
