"""The chart lints strictly and every ci/ scenario renders, with helm 3 and helm 4 alike."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.chart.helpers import CHART, SCENARIO_IDS, SCENARIOS, names, render, scenario_args
from tests.support import Tools

pytestmark = pytest.mark.chart


def test_there_are_the_six_scenarios_of_the_issue() -> None:
    assert SCENARIO_IDS == [
        "backup-disabled",
        "cron-split",
        "default",
        "external-db",
        "tls-custom-domains",
        "websocket",
    ]


@pytest.mark.parametrize("scenario", SCENARIOS, ids=SCENARIO_IDS)
def test_lint_strict(helm: Path, scenario: Path) -> None:
    proc = subprocess.run(
        [str(helm), "lint", "--strict", str(CHART), "--values", str(scenario)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "[WARNING]" not in proc.stdout and "[ERROR]" not in proc.stdout, proc.stdout


@pytest.mark.parametrize("scenario", SCENARIOS, ids=SCENARIO_IDS)
def test_scenario_renders_the_same_objects_with_both_helms(tools: Tools, scenario: Path) -> None:
    by_major = {major: render(tools.helm(major), *scenario_args(scenario)) for major in (3, 4)}
    assert sorted(names(by_major[3])) == sorted(names(by_major[4]))
    assert len(by_major[3]) >= 15
