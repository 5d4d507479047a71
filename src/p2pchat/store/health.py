"""The store's start-up check: is the file sound enough to run on?

Which check a start runs depends on what happened to the file since it was last open:

- closed cleanly by us and not written since (the fingerprint that the close left beside
  it, :data:`FINGERPRINT_SUFFIX`, still matches the file's size, inode and change times;
  no -wal): no pass over the pages. A start then costs the same for ten messages as for
  a million; the header checks of opening (ours, schema version, the key opens it, the
  schema parses) still run. The file is what the last check passed plus what SQLite
  itself wrote since, and nothing else has written to it; a medium that fails later
  shows when the page is read (SQLite refuses a malformed page; an encrypted page's
  MAC fails), and ``p2pchat repair`` runs the full check on demand.
- closed cleanly, but the file was written afterwards (another program, a restored copy,
  a disk tool), or the fingerprint is missing (a store closed by an older version, or a
  close that could not record it): ``PRAGMA quick_check`` (every page's structure, no
  index-vs-table comparison; the cost of reading the file once).
- after an unclean shutdown (a crash, kill -9, power cut: the clean-close mark says
  "open"): the full ``PRAGMA integrity_check``, which also compares every index with its
  table, so an index that points at the wrong rows (wrong unread counts) is found too.

This module only looks at the database: it never writes to it, so a damaged file stays
as it was for repair to read. (The fingerprint is a separate small file.)
"""

from __future__ import annotations

import contextlib
import enum
import os
from pathlib import Path
from typing import Final

from . import db

#: Setting written as "1" by a clean close and "0" once a start has checked the file.
CLEAN_CLOSE_SETTING: Final = "store.clean_close"
#: Suffix of the file a clean close leaves beside the store: the store's fingerprint.
FINGERPRINT_SUFFIX: Final = ".closed"


class Check(enum.Enum):
    """Which start-up check a start ran (see the module's docstring)."""

    NONE = "none"  # a new store, or closed cleanly and unchanged since
    QUICK = "quick_check"
    FULL = "integrity_check"


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


def fingerprint_path(path: Path) -> Path:
    """Where a clean close leaves the fingerprint of the store at ``path``."""
    return path.with_name(path.name + FINGERPRINT_SUFFIX)


def _fingerprint(path: Path) -> str | None:
    """The store file's identity and change times, or None when it has a -wal beside it.

    The kernel sets ctime on every write and no program can set it back (utime sets it
    to now), and on Linux 6.13+ a change right after a stat gets a distinct, fine-grained
    time; size and inode catch a file replaced by a copy. (Older kernels stamp times per
    clock tick, a few ms, and FAT keeps no ctime: a same-size write that soon after the
    close could go unseen there.)
    """
    try:
        # The file SQLite really opens: a symlinked store's link never changes when the
        # file behind it does, and its WAL lies beside that file, not beside the link.
        real = path.resolve(strict=True)
        wal = real.with_name(real.name + "-wal")
        if wal.exists() and wal.stat().st_size > 0:
            return None  # not everything is in the main file: it is not at rest
        st = os.stat(real)
    except (OSError, RuntimeError):  # RuntimeError: a symlink loop
        return None
    return f"v1 {st.st_dev} {st.st_ino} {st.st_size} {st.st_mtime_ns} {st.st_ctime_ns}"


def record_clean_close(path: Path) -> None:
    """After the last connection closed cleanly: note the file's fingerprint beside it.

    Best effort: without it the next start simply runs quick_check. Not fsynced for the
    same reason (a power cut that loses it costs one check, never a missed one).
    """
    mark = _fingerprint(path)
    if mark is None:
        return
    target = fingerprint_path(path)
    with contextlib.suppress(OSError):
        target.unlink(missing_ok=True)
        fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        try:
            os.write(fd, mark.encode())
        finally:
            os.close(fd)


def unchanged_since_clean_close(path: Path) -> bool:
    """Whether the store is as our last clean close left it (its fingerprint matches).

    Asked before anything may write to the file; :func:`forget_clean_close` must follow
    before our first write.
    """
    try:
        fd = os.open(fingerprint_path(path), os.O_RDONLY | os.O_NOFOLLOW)
    except OSError:
        return False
    try:
        recorded = os.read(fd, 200).decode("ascii", "replace")
    except OSError:
        return False
    finally:
        os.close(fd)
    return recorded == _fingerprint(path)


def forget_clean_close(path: Path) -> None:
    """Remove the fingerprint before the first write of a session, so one that ends in a
    crash never leaves behind a fingerprint that could still match.

    A start that is refused before this (a wrong key) leaves it, and the file, as they
    were: the next start judges the same file the same way.
    """
    with contextlib.suppress(OSError):
        fingerprint_path(path).unlink(missing_ok=True)


def which_check(conn: db.Connection, unchanged: bool) -> Check:
    """The start-up check for this start (``unchanged``: unchanged_since_clean_close)."""
    if not closed_cleanly(conn):
        return Check.FULL
    return Check.NONE if unchanged else Check.QUICK


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


__all__ = [
    "CLEAN_CLOSE_SETTING",
    "FINGERPRINT_SUFFIX",
    "MAX_PROBLEMS",
    "Check",
    "closed_cleanly",
    "fingerprint_path",
    "forget_clean_close",
    "problems",
    "record_clean_close",
    "summary",
    "unchanged_since_clean_close",
    "which_check",
]
