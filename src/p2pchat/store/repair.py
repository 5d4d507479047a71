"""``p2pchat repair``'s work: salvage a damaged store into a fresh one, keeping the old.

The damaged file (and its -wal) is renamed with a UTC timestamp and never deleted; a
fresh store with the current schema takes its place, holding every row that could be
read (see :mod:`.recovery`). Runs under the profile's lock, so never beside a running
node.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from .errors import CorruptStoreError
from .opening import acquire_lock, inspect_file
from .recovery import (
    SalvageReport,
    TableSalvage,
    create_fresh,
    move_aside,
    rebuild_into,
    remove_store_files,
)
from .schema import MIGRATIONS, Migration

#: A lost rowid range wider than this is reported as "an unknown number" of rows.
_COUNTABLE_RANGE = 1_000_000


@dataclass
class RepairResult:
    """What ``repair_store`` did."""

    #: Where the damaged store now is (None: there was no store file at all).
    kept: Path | None
    report: SalvageReport
    #: Why nothing could be read, when nothing could ("" otherwise).
    nothing_readable: str = ""


def repair_store(
    path: Path, migrations: Sequence[Migration] = MIGRATIONS, key: bytes | None = None
) -> RepairResult:
    """Replace the store at ``path`` by a fresh one holding what it could read.

    Raises StoreLockedError while a node uses the profile, and ForeignDatabaseError or
    NewerSchemaError for a file that is not ours to rewrite (it is left untouched).
    ``key``: the store's key when a passphrase is set; the fresh store gets it too.
    """
    lock_fd = acquire_lock(path)
    try:
        nothing = ""
        if not path.exists():
            nothing = "there was no store file"
        elif path.stat().st_size == 0 and not _has_wal(path):
            nothing = "the store file was empty (0 bytes)"
        else:
            # Damage is what we are here for (salvage reads what it can); a file that is
            # not ours, or is newer than us, raises and stays untouched.
            with contextlib.suppress(CorruptStoreError):
                inspect_file(path, len(migrations), key)
        kept = move_aside(path)
        fresh = path.with_name(path.name + ".repair")
        if nothing or kept is None:
            remove_store_files(fresh)
            report = SalvageReport()
            create_fresh(fresh, migrations, key).close()
        else:
            report = rebuild_into(kept, fresh, migrations, key)
            if report.schema_error:
                nothing = f"its list of tables is unreadable: {report.schema_error}"
        os.replace(fresh, path)
        return RepairResult(kept, report, nothing)
    finally:
        os.close(lock_fd)


def _has_wal(path: Path) -> bool:
    wal = path.with_name(path.name + "-wal")
    return wal.exists() and wal.stat().st_size > 0


def lost_rows(table: TableSalvage) -> int | None:
    """At most how many rows of ``table`` were lost, or None when that is unknowable."""
    if not table.damaged:
        return table.orphans
    if not table.unreadable:
        return None  # WITHOUT ROWID: the damaged page's rows cannot be counted
    width = sum(hi - lo + 1 for lo, hi in table.unreadable)
    return None if width > _COUNTABLE_RANGE else width + table.orphans


__all__ = ["RepairResult", "lost_rows", "repair_store"]
