"""The sections of docs/benchmarks.md that each bench program writes between its own markers.

bench/run.py writes the whole file and keeps the others' sections; bench/odoo.py and
bench/realnode.py each replace only their own (``<!-- NAME-bench: ... -->`` to
``<!-- /NAME-bench -->``), so any of them can run alone.
"""

from __future__ import annotations

import re
from pathlib import Path

SECTION = re.compile(r"<!-- (?P<name>[a-z]+)-bench:.*?<!-- /(?P=name)-bench -->", re.S)


def markers(name: str) -> tuple[str, str]:
    """(BEGIN prefix, END) of program NAME's section."""
    return f"<!-- {name}-bench:", f"<!-- /{name}-bench -->"


def write_section(out: Path, name: str, section: str) -> None:
    """Put SECTION (its markers included) in place of NAME's section of OUT, or append it."""
    text = out.read_text() if out.exists() else "# Benchmarks\n"
    begin, end = markers(name)
    if begin in text and end in text:
        before, rest = text.split(begin, 1)
        text = before + section.rstrip("\n") + rest.split(end, 1)[1]
    else:
        text = text.rstrip("\n") + "\n\n" + section.rstrip("\n") + "\n"
    out.write_text(text)


def kept_sections(out: Path) -> str:
    """Every program's section in OUT, as they are, for bench/run.py to keep when it rewrites it."""
    text = out.read_text() if out.exists() else ""
    found = [m.group(0) for m in SECTION.finditer(text)]
    return "".join("\n" + s + "\n" for s in found)
