"""Shared fixtures: every test gets its own P2PCHAT_HOME so profiles never leak."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(autouse=True)
def p2pchat_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Point P2PCHAT_HOME at a fresh directory for each test."""
    home = tmp_path / "p2pchat-home"
    monkeypatch.setenv("P2PCHAT_HOME", str(home))
    monkeypatch.delenv("P2PCHAT_PASSPHRASE", raising=False)
    return home


def pytest_runtest_setup(item: pytest.Item) -> None:
    """Start the private Tor network's build once the latency-bound tests are done."""
    from tests.tor.conftest import start_build_for

    start_build_for(item)
