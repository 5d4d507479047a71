"""Module boundaries inside src/p2pchat: no private reach-ins, no import cycles (issue 16).

The layer contracts (test_code_quality.py) keep the layers apart; these keep the modules
of one layer apart. A module that uses another's ``_private`` names, or two modules that
import each other, cannot be read or changed one at a time.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

SRC = Path(__file__).resolve().parent.parent / "src"
PACKAGE = "p2pchat"


def _modules() -> dict[str, Path]:
    out = {}
    for path in sorted((SRC / PACKAGE).rglob("*.py")):
        parts = list(path.relative_to(SRC).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        out[".".join(parts)] = path
    return out


def _is_private(name: str) -> bool:
    return name.startswith("_") and not name.startswith("__")


def _own_names(tree: ast.Module) -> set[str]:
    """Names this module defines: functions, classes, attributes set on ``self``/``cls``,
    class-level fields and module-level names."""
    own: set[str] = set()
    bodies = [tree.body] + [n.body for n in ast.walk(tree) if isinstance(n, ast.ClassDef)]
    for body in bodies:
        for stmt in body:
            if isinstance(stmt, ast.AnnAssign) and isinstance(stmt.target, ast.Name):
                own.add(stmt.target.id)
            elif isinstance(stmt, ast.Assign):
                own.update(t.id for t in stmt.targets if isinstance(t, ast.Name))
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            own.add(node.name)
        elif (
            isinstance(node, ast.Attribute)
            and isinstance(node.ctx, ast.Store)
            and isinstance(node.value, ast.Name)
            and node.value.id in ("self", "cls")
        ):
            own.add(node.attr)
    return own


def _from_another_module(node: ast.ImportFrom, name: str) -> bool:
    module = node.module or ""
    return node.level == 0 and module.startswith(PACKAGE) and module != name


def _private_reach_ins(name: str, path: Path) -> Iterator[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    own = _own_names(tree)
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and _is_private(node.attr):
            on_self = isinstance(node.value, ast.Name) and node.value.id in ("self", "cls")
            if not on_self and node.attr not in own:
                yield f"{path}:{node.lineno}: {ast.unparse(node)}"
        elif isinstance(node, ast.ImportFrom) and _from_another_module(node, name):
            for alias in node.names:
                if _is_private(alias.name):
                    yield f"{path}:{node.lineno}: from {node.module} import {alias.name}"


def test_no_module_uses_another_modules_private_names() -> None:
    """``x._name`` is allowed on ``self``/``cls`` and for names the module defines itself;
    anything else is a reach into another module's private state."""
    found = [hit for name, path in _modules().items() for hit in _private_reach_ins(name, path)]
    assert found == [], "private names used across modules:\n" + "\n".join(found)
