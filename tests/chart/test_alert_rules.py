"""The platform's alert rules (charts/saasodoo/files/prometheus-rules.yaml) pass Prometheus' own
checks and unit tests: `promtool check rules`, and `promtool test rules` with series that
should and should not fire each alert (tests/chart/alerts/). Their metrics are those the
operator exports (saasodoo/adapters/metrics.py): a rule naming another one fails here."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
import yaml

from saasodoo.adapters.metrics import ApiMetrics, OperatorMetrics
from tests.support import ROOT, Tools

pytestmark = pytest.mark.chart

RULES = ROOT / "charts" / "saasodoo" / "files" / "prometheus-rules.yaml"
UNIT_TESTS = sorted((Path(__file__).parent / "alerts").glob("*_test.yaml"))


def promtool(tools: Tools, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(tools.path("SAASODOO_PROMTOOL")), *args], capture_output=True, text=True,
        check=False,
    )  # fmt: skip


def test_the_rules_pass_promtool_check(tools: Tools) -> None:
    proc = promtool(tools, "check", "rules", str(RULES))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "SUCCESS: 5 rules found" in proc.stdout, proc.stdout


def test_the_alerts_fire_when_they_should_and_only_then(tools: Tools) -> None:
    assert UNIT_TESTS
    proc = promtool(tools, "test", "rules", *map(str, UNIT_TESTS))
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_the_rules_read_only_metrics_saasodoo_exports() -> None:
    exported = set()
    for registry in (OperatorMetrics().registry, ApiMetrics().registry):
        for family in registry.collect():
            exported |= {sample.name for sample in family.samples}
            exported.add(family.name)
    groups = yaml.safe_load(RULES.read_text())["groups"]
    for rule in (r for g in groups for r in g["rules"]):
        names = set(re.findall(r"\bsaasodoo_[a-z_]+", rule["expr"]))
        assert names and names <= exported, (rule["alert"], names - exported)
