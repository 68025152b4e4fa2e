"""scripts/install-tools.sh: a full install builds every tool exactly once, in one of two lanes."""

from __future__ import annotations

import re

import pytest

from tests.support import ROOT

pytestmark = pytest.mark.unit

SCRIPT = (ROOT / "scripts" / "install-tools.sh").read_text()
LIB = (ROOT / "scripts" / "lib.sh").read_text()


def words(name: str, text: str = SCRIPT) -> list[str]:
    return [w for m in re.finditer(rf"^{name}\+?=\(([^)]*)\)", text, re.M) for w in m[1].split()]


def test_the_two_lanes_hold_every_tool_once() -> None:
    every, a, b = words("ALL_TOOLS"), words("LANE_A"), words("LANE_B")
    assert len(every) == 15 and len(set(every)) == len(every)
    assert sorted(a + b) == sorted(every)


def test_kubernetes_node_follows_kubernetes_in_one_lane() -> None:
    """They share most packages: built one after the other, the second reuses the Go cache."""
    a = words("LANE_A")
    assert a.index("kubernetes") < a.index("kubernetes-node")


def test_each_lane_builds_the_node_lanes_tools_first() -> None:
    """`make test` starts its node lane once NODE_LANE_TOOLS are in (scripts/test.sh): neither
    build lane builds another tool before them."""
    node = set(words("NODE_LANE_TOOLS", LIB))
    assert node and node <= set(words("ALL_TOOLS"))
    for lane in (words("LANE_A"), words("LANE_B")):
        firsts = lane[: len(node & set(lane))]
        assert set(firsts) == node & set(lane), lane


def test_every_build_step_stops_its_tool_on_failure() -> None:
    """Build functions run where `set -e` does not apply: each step must `|| return 1`."""
    body = SCRIPT.split("# install TOOL:", 1)[0]
    commands, current = [], ""
    for line in body.splitlines():
        current += line.strip() + " "
        if not line.rstrip().endswith("\\"):
            commands.append(current)
            current = ""
    steps = [c for c in commands if "run_logged " in c and not c.lstrip().startswith("#")]
    steps = [c for c in steps if not c.startswith(("run_logged() {", 'echo "+'))]
    assert len(steps) >= 19
    assert all(c.rstrip().endswith("|| return 1") for c in steps), [
        c for c in steps if not c.rstrip().endswith("|| return 1")
    ]
