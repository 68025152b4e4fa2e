"""`saasodoo tenant list`'s plain columns (kubectl's way): aligned, nothing cut, no colour."""

from __future__ import annotations

import pytest

from saasodoo.cli.common import print_columns

pytestmark = pytest.mark.unit


def test_columns_are_aligned_and_nothing_is_cut(capsys: pytest.CaptureFixture[str]) -> None:
    long = "upgrade failed: " + "x" * 300
    print_columns(["TENANT", "READY", "MESSAGE"], [["acme", "True", ""], ["b", "-", long]])
    lines = capsys.readouterr().out.splitlines()
    assert lines == [
        "TENANT   READY   MESSAGE",
        "acme     True",
        f"b        -       {long}",
    ]


def test_a_thousand_rows_print_one_line_each(capsys: pytest.CaptureFixture[str]) -> None:
    rows = [[f"t{i:04d}", "True", "Current"] for i in range(1000)]
    print_columns(["TENANT", "READY", "STATUS"], rows)
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 1001 and lines[1000] == "t0999    True    Current"
