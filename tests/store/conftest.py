"""Shared fixtures for the store tests: real SQLite files under tmp_path, no mocks."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from p2pchat.store import Store

from .helpers import ROOM, SELF


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    """Where a test's store lives (inside a not-yet-existing profile dir)."""
    return tmp_path / "profile" / "store.sqlite"


@pytest.fixture
def store(db_path: Path) -> Iterator[Store]:
    """An open store with one group room, closed after the test."""
    s = Store.open(db_path, self_id=SELF)
    s.ensure_room(ROOM, "group", name="team", owner=SELF, created_at=1)
    yield s
    s.close()
