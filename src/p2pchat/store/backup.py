"""A consistent snapshot of a store, taken while a node may be writing to it.

SQLite's online backup API copies the database page by page. Done in one step it holds a
single read transaction on the source for the whole copy, so the snapshot is exactly the
store as of one commit; in WAL mode that read transaction never blocks the writer, so a
running node goes on receiving messages while the copy is made. The snapshot is checked
(``quick_check``) so a damaged store is never backed up as if it were sound.

An encrypted store's snapshot is encrypted with the same key (the codec copies pages
between two connections keyed alike): the snapshot is as unreadable without the
passphrase as the store, and opens with the profile's key file like the store does.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Final

from . import db, health
from .errors import DamagedStoreError, StoreIOError

_BUSY_TIMEOUT_MS: Final = 5000


def copy_into(
    source: db.Connection, source_path: Path, dest: Path, key: bytes | None = None
) -> None:
    """Copy the database open on ``source`` into the new file ``dest`` (0600, self-contained).

    ``key`` is the source's key: the copy gets the same one (None: both plain).

    Raises DamagedStoreError when the copy fails its check; ``dest`` is removed on any
    failure.
    """
    fd = os.open(dest, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    os.close(fd)
    try:
        target = db.connect(dest, key)
        try:
            source.backup(target)  # pages=-1: one step, one read transaction
            # One self-contained file: no -wal beside the snapshot.
            target.execute("PRAGMA journal_mode = DELETE")
            found = health.problems(target, full=False)
        finally:
            target.close()
        if found:
            raise DamagedStoreError(source_path, health.summary(found))
    except db.DatabaseError as exc:
        _remove(dest)
        raise StoreIOError(source_path, f"cannot copy the store: {exc}") from None
    except BaseException:
        _remove(dest)
        raise


def snapshot(source_path: Path, dest: Path, key: bytes | None = None) -> None:
    """Snapshot the store at ``source_path`` (a running node's, or a closed one) into ``dest``.

    Uses a read-only connection of its own, so it may run in any thread while the node's
    store thread goes on writing.
    """
    uri = source_path.resolve().as_uri() + "?mode=ro"
    try:
        source = db.connect(uri, key, uri=True)
    except db.Error as exc:
        raise StoreIOError(source_path, str(exc)) from None
    try:
        source.execute(f"PRAGMA busy_timeout = {_BUSY_TIMEOUT_MS}")
        copy_into(source, source_path, dest, key)
    finally:
        source.close()


def _remove(path: Path) -> None:
    for suffix in ("", "-journal", "-wal", "-shm"):
        with contextlib.suppress(FileNotFoundError):
            path.with_name(path.name + suffix).unlink()


__all__ = ["copy_into", "snapshot"]
