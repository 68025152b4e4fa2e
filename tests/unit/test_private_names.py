"""No module reaches into another's underscore names (issue 16): a name saasodoo defines with
one leading underscore (function, method, class, module constant) is used only in the module
that defines it, by saasodoo, its tests and its benchmarks alike."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from tests.support import ROOT

pytestmark = pytest.mark.unit

PACKAGE = ROOT / "saasodoo"
SOURCES = [p for d in ("saasodoo", "tests", "bench") for p in sorted((ROOT / d).rglob("*.py"))]


def private(name: str) -> bool:
    return name.startswith("_") and not name.startswith("__")


def defined_private_names() -> dict[str, set[Path]]:
    """Underscore names defined in saasodoo: name -> the files defining it."""
    out: dict[str, set[Path]] = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            names: list[str] = []
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                names = [node.name]
            elif isinstance(node, ast.Assign):
                names = [t.id for t in node.targets if isinstance(t, ast.Name)]
            elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
                names = [node.target.id]
            for name in names:
                if private(name):
                    out.setdefault(name, set()).add(path)
    return out


def test_no_underscore_name_is_used_outside_its_module() -> None:
    defined = defined_private_names()
    assert len(defined) > 20  # the scan sees the package
    reaches = []
    for path in SOURCES:
        for node in ast.walk(ast.parse(path.read_text())):
            name = None
            if isinstance(node, ast.Attribute) and node.attr in defined:
                owner = node.value
                if not (isinstance(owner, ast.Name) and owner.id in ("self", "cls")):
                    name = node.attr
            elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("saasodoo"):
                name = next((a.name for a in node.names if a.name in defined), None)
            elif (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr == "setattr"
                and len(node.args) >= 2
                and isinstance(node.args[1], ast.Constant)
                and node.args[1].value in defined
            ):
                name = str(node.args[1].value)
            if name is not None and path not in defined[name]:
                reaches.append(f"{path.relative_to(ROOT)}:{node.lineno} uses {name}")
    assert not reaches, "\n".join(reaches)
