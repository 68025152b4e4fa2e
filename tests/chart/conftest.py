"""Fixtures of the chart tests: the pinned helm binaries and the default rendering."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.chart.helpers import render
from tests.support import Tools


@pytest.fixture(scope="session")
def helm3(tools: Tools) -> Path:
    return tools.helm(3)


@pytest.fixture(scope="session", params=[3, 4], ids=["helm3", "helm4"])
def helm(request: pytest.FixtureRequest, tools: Tools) -> Path:
    """Each pinned helm in turn."""
    major: int = request.param
    return tools.helm(major)


@pytest.fixture(scope="session")
def default_docs(helm3: Path) -> list[dict[str, Any]]:
    """The chart rendered with its defaults."""
    return render(helm3)
