"""One module runs helm on a tenant (issue #23 point 3): no module of saasodoo but
``saasodoo/release.py`` (and the adapter itself, ``saasodoo/adapters/helm.py``) reaches the
Helm adapter's mutating methods, called or not (``call = helm.rollback``).

Walks the AST: a Helm adapter is any expression whose last name is ``helm`` or ``_helm``,
or one of the names saasodoo binds to a ``Helm`` (a parameter, variable, attribute or
property annotated ``Helm``, or assigned ``Helm(...)``), collected from the package itself."""

from __future__ import annotations

import ast

import pytest

from tests.support import ROOT

pytestmark = pytest.mark.unit

PACKAGE = ROOT / "saasodoo"
MUTATING = frozenset({"install_or_upgrade", "rollback", "uninstall"})
ALLOWED = frozenset({PACKAGE / "release.py", PACKAGE / "adapters" / "helm.py"})


def _is_helm_type(node: ast.expr | None) -> bool:
    """An annotation naming ``Helm`` (``Helm``, ``helm.Helm``, ``Helm | None``, "Helm")."""
    if node is None:
        return False
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        try:  # a forward reference ("Helm"); a Literal's value ("", "a b") is no type
            return _is_helm_type(ast.parse(node.value, mode="eval").body)
        except SyntaxError:
            return False
    if isinstance(node, ast.Name):
        return node.id == "Helm"
    if isinstance(node, ast.Attribute):
        return node.attr == "Helm"
    if isinstance(node, ast.BinOp):
        return _is_helm_type(node.left) or _is_helm_type(node.right)
    if isinstance(node, ast.Subscript):  # Callable[[], Helm], Optional[Helm]
        return _is_helm_type(node.slice)
    if isinstance(node, ast.Tuple | ast.List):
        return any(_is_helm_type(e) for e in node.elts)
    return False


def _last_name(node: ast.expr) -> str | None:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return node.attr
    return None


def helm_names(trees: list[ast.AST]) -> set[str]:
    """The names saasodoo binds to a Helm adapter, besides ``helm`` and ``_helm``."""
    names = {"helm", "_helm"}
    for tree in trees:
        for node in ast.walk(tree):
            if isinstance(node, ast.arg) and _is_helm_type(node.annotation):
                names.add(node.arg)
            elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and _is_helm_type(
                node.returns
            ):
                names.add(node.name)
            elif isinstance(node, ast.AnnAssign) and _is_helm_type(node.annotation):
                if (name := _last_name(node.target)) is not None:
                    names.add(name)
            elif (
                isinstance(node, ast.Assign)
                and isinstance(node.value, ast.Call)
                and _is_helm_type(node.value.func)
            ):
                names.update(n for t in node.targets if (n := _last_name(t)) is not None)
    return names


def reaches(tree: ast.AST, names: set[str]) -> list[tuple[int, str]]:
    """(line, expression) of each reach of a mutating method through one of ``names``."""
    found = [
        (node.lineno, ast.unparse(node))
        for node in ast.walk(tree)
        if isinstance(node, ast.Attribute)
        and node.attr in MUTATING
        and _last_name(node.value) in names
    ]
    return sorted(found)


def test_only_release_py_calls_the_helm_adapters_mutating_methods() -> None:
    trees = {path: ast.parse(path.read_text()) for path in sorted(PACKAGE.rglob("*.py"))}
    names = helm_names(list(trees.values()))
    # The scan sees the calls that must be there: release.py's install or upgrade,
    # rollback and uninstall.
    release = reaches(trees[PACKAGE / "release.py"], names)
    assert {expr.rsplit(".", 1)[-1] for _, expr in release} == set(MUTATING)
    outside = [
        f"{path.relative_to(ROOT)}:{line} {expr}"
        for path, tree in trees.items()
        if path not in ALLOWED
        for line, expr in reaches(tree, names)
    ]
    assert not outside, "helm changes a release outside saasodoo/release.py:\n" + "\n".join(outside)


def test_the_scan_finds_a_reach_through_any_name_bound_to_helm() -> None:
    """The scan itself: a reach through a parameter, a property or a variable typed Helm
    is found, the lifecycle's own ``rollback`` (not the adapter's) is not."""
    tree = ast.parse(
        "from saasodoo.adapters.helm import Helm\n"
        "class X:\n"
        "    @property\n"
        "    def adapter(self) -> Helm: ...\n"
        "    async def a(self, h: Helm | None, tenants):\n"
        "        await self.adapter.rollback('r', 'ns', 1)\n"
        "        await h.uninstall('r', 'ns')\n"
        "        made = Helm(settings)\n"
        "        call = made.install_or_upgrade\n"
        "        await tenants.rollback('acme')\n"
    )
    assert [expr for _, expr in reaches(tree, helm_names([tree]))] == [
        "self.adapter.rollback",
        "h.uninstall",
        "made.install_or_upgrade",
    ]
