"""The project's gates run with the tests: lint, format, types, layer contracts.

CI runs only the test command, so the rules of STYLE.md and DESIGN.md (ruff clean,
mypy strict on src, one-way layer dependencies) are enforced here.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


def _run(*argv: str) -> subprocess.CompletedProcess[str]:
    tool = BIN / argv[0]
    if not tool.exists() and shutil.which(argv[0]) is None:
        pytest.fail(f"{argv[0]} is not installed: install the test extras ('.[test]')")
    exe = str(tool) if tool.exists() else argv[0]
    return subprocess.run(
        [exe, *argv[1:]], cwd=ROOT, capture_output=True, text=True, timeout=600, check=False
    )


def test_ruff_check() -> None:
    result = _run("ruff", "check", "src", "tests", "bench")
    assert result.returncode == 0, result.stdout + result.stderr


def test_ruff_format() -> None:
    result = _run("ruff", "format", "--check", "src", "tests", "bench")
    assert result.returncode == 0, result.stdout + result.stderr


def test_mypy_strict_on_src() -> None:
    result = _run("mypy", "src")
    assert result.returncode == 0, result.stdout + result.stderr


def test_layer_contracts() -> None:
    result = _run("lint-imports")
    assert result.returncode == 0, result.stdout + result.stderr
