"""The store's start-up check: is the file sound enough to run on?

Every start runs ``PRAGMA quick_check`` (every page's structure, no index-vs-table
comparison; about the cost of reading the file once). A start after an unclean shutdown
(a crash, kill -9, power cut: the clean-close mark is missing) runs the full
``PRAGMA integrity_check`` instead, which also compares every index with its table, so
an index that points at the wrong rows (wrong unread counts) is found too. This module
only looks: it never writes, so a damaged file stays as it was for repair to read.
"""

from __future__ import annotations

from typing import Final

from . import db

#: Setting written as "1" by a clean close and "0" once a start has checked the file.
CLEAN_CLOSE_SETTING: Final = "store.clean_close"

#: At most this many problem lines are kept (a badly damaged file has thousands).
MAX_PROBLEMS: Final = 20


def closed_cleanly(conn: db.Connection) -> bool:
    """Whether the last session closed the store cleanly (False when unknown)."""
    try:
        row = conn.execute(
            "SELECT value FROM settings WHERE key = ?", (CLEAN_CLOSE_SETTING,)
        ).fetchone()
    except db.DatabaseError:
        return False
    return row is not None and row[0] == "1"


def problems(conn: db.Connection, *, full: bool) -> list[str]:
    """The check's findings: ``[]`` when the file is sound.

    SQLite reports some damage as rows of text and some (a page it cannot even parse
    while comparing an index) by raising; both end up here as problem lines. A file
    locked by another program raises db.OperationalError: that is not damage.
    """
    pragma = "integrity_check" if full else "quick_check"
    try:
        rows = conn.execute(f"PRAGMA {pragma}({MAX_PROBLEMS})").fetchall()
    except db.OperationalError as exc:
        if "locked" in str(exc) or "busy" in str(exc):
            raise  # another program holds the file: not damage, the caller says so
        return [str(exc)]
    except db.DatabaseError as exc:
        return [str(exc)]
    lines = [line for row in rows for line in str(row[0]).splitlines()]
    if lines == ["ok"]:
        return []
    return [line for line in lines if line and not line.startswith("***")][:MAX_PROBLEMS]


def summary(found: list[str]) -> str:
    """One short phrase for a message to a person."""
    if not found:
        return "no problems found"
    first = found[0]
    more = f" and {len(found) - 1} more problem(s)" if len(found) > 1 else ""
    return f"{first}{more}"


__all__ = ["CLEAN_CLOSE_SETTING", "MAX_PROBLEMS", "closed_cleanly", "problems", "summary"]
