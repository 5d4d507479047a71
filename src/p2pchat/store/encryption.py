"""Encrypt, decrypt or re-key a store file in place, so that a crash never loses it.

``VACUUM INTO`` writes every table, index, trigger and FTS index of the open database
into a new file, encrypted with another key (or none: the target's URI says which, see
db.target_uri), with the schema version and our application id in its header. The copy
goes to a temporary file in the same folder, is flushed to disk (fsync) and checked, and only then
renamed over the store: ``rename`` is atomic, so at every instant the store's name holds
either the whole old file (old key) or the whole new one (new key), never neither.
Before the copy the old file leaves WAL mode, which folds its -wal into it and deletes
it: a stale -wal next to the new file would otherwise be replayed into it.

The caller holds the profile's lock (a running node cannot be writing) and knows both
keys: p2pchat never stores a key anywhere but in the profile's key file.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Final, NamedTuple

from . import db, health

#: Suffix of the copy being written; a leftover one is an interrupted re-key, ours.
TEMP_SUFFIX: Final = ".rekey"
#: Test hook: the name of a step at which to stop (saying so on stderr) until killed, so
#: a test can kill -9 a passphrase change at each step. Never set outside tests.
PAUSE_ENV: Final = "P2PCHAT_TEST_REKEY_PAUSE"
PAUSED_LINE: Final = "p2pchat-test: paused at"

#: A sentinel for "no key" in a list of candidates (the file is plain SQLite).
PLAIN: Final = None


class NoKeyOpensError(Exception):
    """None of the candidate keys (nor plaintext) reads the file."""


def temp_path(path: Path) -> Path:
    """Where the re-keyed copy of ``path`` is written before the rename."""
    return path.with_name(path.name + TEMP_SUFFIX)


def discard_leftovers(path: Path) -> None:
    """Remove the copy of a re-key that was interrupted before its rename."""
    tmp = temp_path(path)
    for suffix in ("", "-journal", "-wal", "-shm"):
        with contextlib.suppress(FileNotFoundError):
            tmp.with_name(tmp.name + suffix).unlink()


def read_header(path: Path) -> bytes:
    """The file's first 16 bytes (b"" for an empty or missing file)."""
    try:
        with path.open("rb") as f:
            return f.read(len(db.SQLITE_HEADER))
    except FileNotFoundError:
        return b""


class KeyInUse(NamedTuple):
    """What opens a store file: its key (None: plain), whether its pages are in one of
    the formats of stores encrypted before db.CIPHER (re-keying it moves it), and
    whether ``key_in_use``'s ``inspect`` ran on the connection that found the key."""

    key: bytes | None
    legacy_cipher: bool = False
    inspected: bool = False


def key_in_use(
    path: Path,
    candidates: Sequence[bytes],
    inspect: Callable[[db.Connection], None] | None = None,
) -> KeyInUse:
    """Which key the store at ``path`` is encrypted with: one of ``candidates``, or None
    for a plain (or new, empty) file.

    Raises NoKeyOpensError when the file is neither plain nor readable with any of them.
    Trying a raw key costs one page read: there is no key derivation in it. ``inspect``
    is run on the read-only connection that found the key (its errors pass through), so
    the caller's checks of the file need no keyed connection of their own: each one
    costs as much as the rest of a small store's open.
    """
    header = read_header(path)
    if header and db.looks_plain(header):
        return KeyInUse(PLAIN)
    if not header:
        wal = path.with_name(path.name + "-wal")
        if not wal.exists() or wal.stat().st_size == 0 or _opens(path, PLAIN):
            return KeyInUse(PLAIN)  # a new store, or a plain one that crashed early
    for key in candidates:
        conn = _read_only(path, key)
        try:
            if db.key_opens(conn):
                if inspect is not None:
                    inspect(conn)
                return KeyInUse(key, db.uses_legacy_cipher(conn), inspected=inspect is not None)
        finally:
            conn.close()
    raise NoKeyOpensError()


def _opens(path: Path, key: bytes | None) -> bool:
    conn = _read_only(path, key)
    try:
        return db.key_opens(conn)
    finally:
        conn.close()


def _read_only(path: Path, key: bytes | None) -> db.Connection:
    wal = path.with_name(path.name + "-wal")
    query = "?mode=ro" if wal.exists() else "?mode=ro&immutable=1"
    return db.connect(path.resolve().as_uri() + query, key, uri=True)


def rekey(path: Path, old: bytes | None, new: bytes | None) -> None:
    """Rewrite the store at ``path`` from key ``old`` to key ``new`` (None: plain).

    The copy is written in today's format (db.CIPHER) whatever the old file had, so
    ``old == new`` moves a store encrypted before it.

    Raises db.DatabaseError or OSError with the old file left whole and in place.
    """
    discard_leftovers(path)
    tmp = temp_path(path)
    conn = db.connect(path, old)
    try:
        conn.execute("PRAGMA busy_timeout = 1000")
        # Fold the WAL into the file and delete it; the old file stays a valid store.
        mode = str(conn.execute("PRAGMA journal_mode = DELETE").fetchone()[0])
        if mode.lower() != "delete":
            raise db.OperationalError(f"cannot leave WAL mode (got {mode})")
        # An empty file made 0600 first: VACUUM INTO fills it (it refuses a non-empty
        # one) and the copy is never readable by others, not even for a moment.
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        os.close(fd)
        # The header's user_version (schema) and application_id (ours) come along.
        try:
            conn.execute("VACUUM INTO ?", (db.target_uri(tmp, new),))
        except db.Error as exc:
            # SQLite names the target, URI and all, when it cannot open it: say what
            # failed without it (the key is scrubbed already; a path is noise here).
            reason = str(exc).split(": file:", 1)[0]
            raise type(exc)(f"cannot write the new copy {tmp.name}: {reason}") from None
    except BaseException:
        conn.close()
        discard_leftovers(path)
        raise
    conn.close()
    if path.with_name(path.name + "-wal").exists():
        discard_leftovers(path)
        raise db.OperationalError("the store's WAL is still there after leaving WAL mode")
    pause("exported")
    try:
        _fsync(tmp)
        pause("synced")
        _check(tmp, new)
    except BaseException:
        discard_leftovers(path)
        raise
    with contextlib.suppress(FileNotFoundError):  # belongs to the old file; none in DELETE
        path.with_name(path.name + "-shm").unlink()
    os.replace(tmp, path)
    _fsync_dir(path.parent)
    pause("renamed")


def _check(path: Path, key: bytes | None) -> None:
    """The copy must open with the new key and pass quick_check before it replaces."""
    conn = db.connect(path, key)
    try:
        found = health.problems(conn, full=False)
    finally:
        conn.close()
    if found:
        raise db.DatabaseError(f"the re-keyed copy failed its check: {health.summary(found)}")


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_dir(folder: Path) -> None:
    """Make the rename itself durable (the folder's entry), where the OS allows it."""
    try:
        fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    except OSError:
        return
    try:
        with contextlib.suppress(OSError):
            os.fsync(fd)
    finally:
        os.close(fd)


def pause(step: str) -> None:
    """The test hook of PAUSE_ENV (a no-op unless a test set it)."""
    if os.environ.get(PAUSE_ENV) != step:
        return
    sys.stderr.write(f"{PAUSED_LINE} {step}\n")
    sys.stderr.flush()
    while True:  # until the test kills us (bounded by the test's own timeout)
        signal.pause()


__all__ = [
    "PAUSED_LINE",
    "PAUSE_ENV",
    "PLAIN",
    "TEMP_SUFFIX",
    "KeyInUse",
    "NoKeyOpensError",
    "discard_leftovers",
    "key_in_use",
    "pause",
    "read_header",
    "rekey",
    "temp_path",
]
