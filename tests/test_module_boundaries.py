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


def _imports(modules: dict[str, Path]) -> dict[str, set[str]]:
    """module -> the modules of the package it imports (anywhere in it)."""

    def resolve(dotted: str) -> str | None:
        while dotted and dotted not in modules:
            dotted = dotted.rpartition(".")[0]
        return dotted or None

    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        edges: set[str] = set()
        for node in ast.walk(tree):
            targets: list[str | None] = []
            if isinstance(node, ast.Import):
                targets = [resolve(a.name) for a in node.names if a.name.startswith(PACKAGE)]
            elif isinstance(node, ast.ImportFrom) and _from_another_module(node, name):
                targets = [resolve(f"{node.module}.{a.name}") for a in node.names]
            edges.update(t for t in targets if t is not None and t != name)
        graph[name] = edges
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for root, children_of_root in graph.items():
        if root in index:
            continue
        work = [(root, iter(sorted(children_of_root)))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def test_no_import_cycles_in_src() -> None:
    """Every import counts: at module level, inside functions, and for typing only
    (``if TYPE_CHECKING:``), since a cycle there still ties two modules together. The
    node's services name the node through the protocols of node/facade.py."""
    assert _cycles(_imports(_modules())) == []
