"""The README's two commands must each set up everything they need on a fresh machine.

A newcomer runs `make demo` or `make test` on a new clone and nothing else; CI (`.ci/run`) runs
the same commands and nothing before them. These tests keep that true: each command's plan
(`make --dry-run`) contains every set-up step, and `.ci/run` does no set-up of its own that
could hide a step missing from the commands.
"""

from __future__ import annotations

import re
import subprocess

import pytest

from tests.support import ROOT

pytestmark = pytest.mark.unit

SETUP_STEPS = {
    "Debian packages": "scripts/install-apt.sh",
    "virtualenv": "-m venv",
    "pinned tools": "scripts/install-tools.sh",
    "real node images": "images/build.sh",
}


def code(text: str) -> str:
    """Shell text without its comment lines."""
    return "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("#"))


def dry_run(target: str) -> str:
    """What `make TARGET` would run from a clone without .venv (prerequisites included).
    `scripts/test.sh --build` (make test) builds the tools and images itself, staged: its code
    is part of the plan."""
    proc = subprocess.run(
        ["make", "--dry-run", "--always-make", target, "VENV=/nonexistent/venv"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    plan = code(proc.stdout)
    if "scripts/test.sh --build" in plan:
        plan += "\n" + code((ROOT / "scripts" / "test.sh").read_text())
    return plan


@pytest.mark.parametrize("target", ["test", "demo"])
@pytest.mark.parametrize("step", sorted(SETUP_STEPS))
def test_readme_command_does_its_own_setup(target: str, step: str) -> None:
    assert SETUP_STEPS[step] in dry_run(target), f"`make {target}` does not set up the {step}"


def test_readme_names_the_two_commands() -> None:
    readme = (ROOT / "README.md").read_text()
    assert "make demo" in readme and "make test" in readme


def test_ci_runs_the_readme_commands_and_no_setup_of_its_own() -> None:
    lines = [
        line.strip()
        for line in (ROOT / ".ci" / "run").read_text().splitlines()
        if line.strip() and not line.strip().startswith("#")
    ]
    commands = [line for line in lines if re.match(r"^(make|scripts/|bash|\./)", line)]
    makes = [c for c in commands if c.startswith("make")]
    assert makes[:2] == ["make test", "make demo"], makes
    for step in SETUP_STEPS.values():
        assert not any(step in c for c in commands), f".ci/run runs {step!r} itself"
