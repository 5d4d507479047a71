"""Citations in the docs point at tests that exist.

docs/security.md backs each claim with the test that proves it, written
`tests/path/test_x.py::test_name` (or, after a full path in the same table row or
paragraph, the short forms `…::test_name` and `::test_name`). A test renamed or moved
would leave the claim pointing at nothing and the claim unbacked without anyone
noticing, so every citation is resolved here against the real files.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SECURITY_DOC = ROOT / "docs" / "security.md"

# In reading order: a full path, an abbreviated path ("…test_x.py"), or a "::name".
_TOKEN = re.compile(
    r"(?P<full>(?<![\w/])tests/[\w/]+\.py)"
    r"|(?P<partial>…/?[\w/]+\.py)"
    r"|::(?P<name>\w+)"
)


@dataclass(frozen=True)
class Citation:
    """One `file::name` (or file-only) citation, as resolved from the text."""

    line: int
    text: str
    file: str | None
    name: str | None


def _units(text: str) -> list[tuple[int, str]]:
    """Split the doc into the scopes a short form may refer back within.

    A table row is one line; otherwise a paragraph runs to the next blank line, heading,
    table row or list item.
    """
    units: list[tuple[int, str]] = []
    current: list[str] = []
    start = 0
    for number, line in enumerate(text.splitlines(), start=1):
        stripped = line.lstrip()
        new_unit = (
            not stripped
            or stripped.startswith(("#", "|", "- ", "* "))
            or (current and current[0].lstrip().startswith("|"))
        )
        if new_unit and current:
            units.append((start, "\n".join(current)))
            current = []
        if stripped:
            if not current:
                start = number
            current.append(line)
    if current:
        units.append((start, "\n".join(current)))
    return units


def _resolve_partial(suffix: str) -> str | None:
    """The one test file whose path ends with `suffix` (without the ellipsis)."""
    tail = suffix.lstrip("…/")
    matches = [
        p.relative_to(ROOT).as_posix()
        for p in (ROOT / "tests").rglob("*.py")
        if p.relative_to(ROOT).as_posix().endswith("/" + tail)
    ]
    return matches[0] if len(matches) == 1 else None


def citations(text: str) -> tuple[list[Citation], list[str]]:
    """Every citation in `text`, and the problems found while resolving them."""
    found: list[Citation] = []
    problems: list[str] = []
    for start, unit in _units(text):
        current: str | None = None
        for match in _TOKEN.finditer(unit):
            line = start + unit.count("\n", 0, match.start())
            if match["full"]:
                current = match["full"]
                found.append(Citation(line, match.group(), current, None))
            elif match["partial"]:
                current = _resolve_partial(match["partial"])
                if current is None:
                    problems.append(
                        f"line {line}: {match.group()!r} names no single file under tests/"
                    )
                else:
                    found.append(Citation(line, match.group(), current, None))
            elif current is None:
                problems.append(
                    f"line {line}: {match.group()!r} has no full tests/ path before it "
                    "in its table row or paragraph"
                )
            else:
                found.append(Citation(line, match.group(), current, match["name"]))
    return found, problems


def _defined_names(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    return {
        node.name
        for node in ast.walk(tree)
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))
    }


def dangling(text: str) -> list[str]:
    """Every citation in `text` that does not resolve to an existing file and test."""
    found, problems = citations(text)
    names: dict[str, set[str]] = {}
    for citation in found:
        assert citation.file is not None
        path = ROOT / citation.file
        if not path.is_file():
            problems.append(f"line {citation.line}: {citation.file} does not exist")
            continue
        if citation.name is None:
            continue
        if citation.file not in names:
            names[citation.file] = _defined_names(path)
        if citation.name not in names[citation.file]:
            problems.append(f"line {citation.line}: {citation.file} has no test {citation.name!r}")
    return problems


def test_every_test_cited_in_security_md_exists() -> None:
    text = SECURITY_DOC.read_text(encoding="utf-8")
    found, _ = citations(text)
    assert len(found) > 50, "the citation pattern no longer matches the doc's citations"
    assert dangling(text) == []


def test_the_checker_catches_a_dangling_or_orphaned_citation() -> None:
    good = "| A | x (tests/test_docs.py::test_every_test_cited_in_security_md_exists). |"
    assert dangling(good) == []
    assert dangling("see tests/test_docs.py::test_renamed_away") != []
    assert dangling("see tests/nowhere/test_gone.py::test_x") != []
    # A short form resolves against the full path earlier in its own row only.
    short = "| A | tests/test_docs.py::dangling, …::test_renamed_away |"
    assert dangling(short) != []
    orphan = "| A | tests/test_docs.py::dangling |\n| B | …::dangling |"
    assert dangling(orphan) != []
    assert dangling("para tests/test_docs.py::dangling\n\nnext …::dangling") != []
    assert dangling("| A | …test_docs.py::dangling, ::citations |") == []
    assert dangling("| A | …test_nope.py::dangling |") != []
