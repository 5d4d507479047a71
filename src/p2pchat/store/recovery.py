"""Salvage what is readable from a damaged store into a fresh one.

Pure Python over the sqlite3 module (no sqlite3 command-line tool needed): the fresh
store gets the current schema, then every table of the damaged file is copied row by row
through a read-only connection.

- Tables with rowids are read by rowid ranges. A range whose read fails (it touches a
  damaged page) is split in two and each half tried again, down to ``_SMALLEST_RANGE``
  rowids; what still fails is counted as lost. A budget of failed reads bounds the
  work when the table's root page itself is gone.
- WITHOUT ROWID tables (members, heads, receipts, ...) are read forwards until the
  first damaged page and then backwards until the same: the rows between are lost.
- Rows whose parent row was lost (a message whose room is gone) break the foreign keys
  the node relies on; they are dropped and counted.
- ``heads`` (highest contiguous seq per room and author) is lowered to what the salvaged
  messages really hold, so anti-entropy asks other members for what was lost.

The damaged file is never written: it is opened read-only, or ``immutable`` when it has
no WAL beside it.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from . import db
from .schema import Migration, migrate
from .search import flush_search_index, is_search_table

_MIN_ROWID: Final = -(2**63)
_MAX_ROWID: Final = 2**63 - 1
#: A failing rowid range this small is given up as lost rather than split further.
_SMALLEST_RANGE: Final = 16
#: Failed reads allowed per table before the rest of it is given up.
_FAILED_READS_BUDGET: Final = 4000
_BATCH: Final = 2000


@dataclass
class TableSalvage:
    """What was copied from one table and what could not be read."""

    name: str
    copied: int = 0
    #: Rowid ranges (inclusive) that could not be read; empty for WITHOUT ROWID tables.
    unreadable: list[tuple[int, int]] = field(default_factory=list)
    #: True when part of the table could not be read at all (rows may be lost).
    damaged: bool = False
    #: Rows read but dropped because the row they belong to was lost.
    orphans: int = 0
    error: str = ""


@dataclass
class SalvageReport:
    """The outcome of a salvage, table by table."""

    tables: list[TableSalvage] = field(default_factory=list)
    #: Set when even the damaged file's list of tables could not be read.
    schema_error: str = ""

    @property
    def lossless(self) -> bool:
        """True when every row of every table was read (only indexes were damaged)."""
        return not self.schema_error and not any(t.damaged or t.orphans for t in self.tables)

    def table(self, name: str) -> TableSalvage | None:
        """The report of table ``name``, if it was part of the salvage."""
        return next((t for t in self.tables if t.name == name), None)


def damaged_name(path: Path, at: float | None = None) -> Path:
    """Where a damaged store is kept: beside it, with a UTC timestamp, never reused."""
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(time.time() if at is None else at))
    candidate = path.with_name(f"{path.name}.damaged-{stamp}")
    n = 1
    while candidate.exists():
        n += 1
        candidate = path.with_name(f"{path.name}.damaged-{stamp}-{n}")
    return candidate


def move_aside(path: Path) -> Path | None:
    """Rename the store and its -wal/-shm to a timestamped name; return the new path.

    The WAL keeps its ``-wal`` suffix on the new name so SQLite still reads it there:
    committed rows that were never checkpointed are part of what can be salvaged.
    None when there was no store file at all.
    """
    if not path.exists():
        return None
    target = damaged_name(path)
    for suffix in ("-wal", "-shm"):
        side = path.with_name(path.name + suffix)
        if side.exists():
            os.replace(side, target.with_name(target.name + suffix))
    os.replace(path, target)
    return target


@contextlib.contextmanager
def _read_only(path: Path, key: bytes | None) -> Iterator[db.Connection | str]:
    """A read-only connection to ``path``, or why it cannot even be opened."""
    wal = path.with_name(path.name + "-wal")
    query = "?mode=ro" if wal.exists() else "?mode=ro&immutable=1"
    try:
        conn = db.connect(path.resolve().as_uri() + query, key, uri=True)
    except db.Error as exc:
        yield str(exc)
        return
    try:
        yield conn
    finally:
        conn.close()


def salvage(source: Path, target: db.Connection, key: bytes | None = None) -> SalvageReport:
    """Copy every readable row of ``source`` into ``target``, which holds the fresh schema.

    ``target`` must be in autocommit mode with no transaction open; the copy commits
    once, at the end.
    """
    report = SalvageReport()
    tables = [
        str(r[0])
        for r in target.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
            " ORDER BY rootpage"
        )
    ]
    target.execute("PRAGMA foreign_keys = OFF")
    target.execute("BEGIN IMMEDIATE")
    try:
        with _read_only(source, key) as src:
            src_tables: set[str] = set()
            if isinstance(src, str):
                report.schema_error = src
            else:
                try:
                    src_tables = {
                        str(r[0])
                        for r in src.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
                    }
                except db.DatabaseError as exc:
                    report.schema_error = str(exc)
            for name in tables:
                if is_search_table(name):
                    continue  # derived: the triggers rebuilt it from the copied messages
                if report.schema_error or isinstance(src, str):
                    report.tables.append(TableSalvage(name, damaged=True, error="unreadable"))
                elif name in src_tables:
                    report.tables.append(_copy_table(src, target, name))
            if not isinstance(src, str) and _OLD_DEPS in src_tables:
                deps = _copy_old_deps(src, target)
                report.tables.append(deps)
                if deps.damaged:
                    deps.orphans += _drop_messages_without_deps(target)
        _drop_orphans(target, report)
        if not report.lossless:
            _lower_heads(target)
        flush_search_index(target)  # the copied messages, queued by the triggers
        target.execute("COMMIT")
    except BaseException:
        target.execute("ROLLBACK")
        raise
    finally:
        target.execute("PRAGMA foreign_keys = ON")
    return report


#: Where stores before the deps_in_messages migration kept group envelopes' deps.
_OLD_DEPS: Final = "envelope_deps"


def _copy_old_deps(src: db.Connection, dst: db.Connection) -> TableSalvage:
    """Put the deps an older store kept in a table of their own into the copied messages.

    Without them the salvaged group messages could not be relayed (a member takes a
    group envelope without deps for one of an older protocol).
    """
    result = TableSalvage(_OLD_DEPS)
    update = "UPDATE messages SET deps = ?2 WHERE id = ?1"
    try:
        _copy_by_scans(_Copy(src, dst, _OLD_DEPS, '"message_id", "deps"', update, result))
    except db.DatabaseError as exc:  # even its columns are unreadable
        result.damaged, result.error = True, str(exc)
    return result


def _drop_messages_without_deps(dst: db.Connection) -> int:
    """Delete the group messages whose deps were lost with a damaged ``envelope_deps``.

    Every envelope of a room of protocol 2 carries deps, so in a group room where some
    rows have them, a row without them lost them here. Kept, it could never be relayed
    (a member takes it for an envelope of an older protocol) and, a room change, never
    counted; dropped, the heads are lowered below it (``_lower_heads``) and the other
    members send it again. Rooms where no row has deps are of the older protocol: kept.
    """
    return int(
        dst.execute(
            "DELETE FROM messages WHERE deps IS NULL AND room IN"
            " (SELECT id FROM rooms WHERE kind = 'group')"
            " AND room IN (SELECT DISTINCT room FROM messages WHERE deps IS NOT NULL)"
        ).rowcount
    )


def _quoted(name: str) -> str:
    """An SQL identifier for ``name``, whatever characters it holds."""
    return '"' + name.replace('"', '""') + '"'


def _columns(conn: db.Connection, table: str) -> list[str]:
    return [str(r[1]) for r in conn.execute(f'PRAGMA table_info("{table}")')]


def _copy_table(src: db.Connection, dst: db.Connection, table: str) -> TableSalvage:
    result = TableSalvage(table)
    try:
        src_cols = set(_columns(src, table))
    except db.DatabaseError as exc:
        result.damaged, result.error = True, str(exc)
        return result
    # Columns both versions know: a store from an older p2pchat lacks newer columns.
    # Table and column names come from our own fresh schema, never from the damaged file.
    cols = [c for c in _columns(dst, table) if c in src_cols]
    col_list = ", ".join(_quoted(c) for c in cols)
    marks = ", ".join("?" * len(cols))
    insert = f'INSERT OR IGNORE INTO "{table}" ({col_list}) VALUES ({marks})'  # noqa: S608
    copy = _Copy(src, dst, table, col_list, insert, result)
    try:
        src.execute(f'SELECT _rowid_ FROM "{table}" LIMIT 0')  # noqa: S608
        has_rowid = True
    except db.OperationalError:
        has_rowid = False
    except db.DatabaseError as exc:
        result.damaged, result.error = True, str(exc)
        return result
    if has_rowid:
        _copy_by_rowid(copy)
    else:
        _copy_by_scans(copy)
    return result


@dataclass
class _Copy:
    """One table's copy: both connections, the statements and the running tally."""

    src: db.Connection
    dst: db.Connection
    table: str
    col_list: str
    insert: str
    result: TableSalvage


def _copy_by_rowid(copy: _Copy) -> None:
    src, dst, result, insert = copy.src, copy.dst, copy.result, copy.insert
    query = (
        f'SELECT _rowid_, {copy.col_list} FROM "{copy.table}" NOT INDEXED'  # noqa: S608
        " WHERE _rowid_ >= ? AND _rowid_ <= ? ORDER BY _rowid_ LIMIT ?"
    )
    failures = 0
    pending = [(_MIN_ROWID, _MAX_ROWID)]
    while pending:
        lo, hi = pending.pop()
        try:
            rows = src.execute(query, (lo, hi, _BATCH)).fetchall()
        except db.DatabaseError as exc:
            failures += 1
            result.damaged, result.error = True, str(exc)
            if hi - lo + 1 <= _SMALLEST_RANGE or failures > _FAILED_READS_BUDGET:
                result.unreadable.append((lo, hi))
                continue
            mid = lo + (hi - lo) // 2
            pending.extend([(mid + 1, hi), (lo, mid)])  # lo half first: popped next
            continue
        if rows:
            dst.executemany(insert, [row[1:] for row in rows])
            result.copied += len(rows)
        if len(rows) == _BATCH:
            last = int(rows[-1][0])
            if last < hi:
                pending.append((last + 1, hi))
    result.unreadable.sort()


def _copy_by_scans(copy: _Copy) -> None:
    """Read forwards to the first damaged page, then backwards to it (no rowids here)."""
    src, dst, table, result = copy.src, copy.dst, copy.table, copy.result
    # The key's columns as our fresh schema names them, like every name in the SQL
    # here (the file's own names are only compared with them, never put in a
    # statement), and only those the file has too (an older schema may lack one).
    in_file = set(_columns(src, table))
    pk = [
        _quoted(str(r[1]))
        for r in sorted(dst.execute(f'PRAGMA table_info("{table}")'), key=lambda r: r[5])
        if r[5] and r[1] in in_file
    ]
    seen: set[tuple[Any, ...]] = set()
    for direction in ("ASC", "DESC"):
        order = ", ".join(f"{c} {direction}" for c in pk) or "1"
        select = f'SELECT {copy.col_list} FROM "{table}" ORDER BY {order}'  # noqa: S608
        try:
            # Inside the try: SQLite reads the first row in execute, and a damaged first
            # page must leave the backwards scan its turn, not end the whole salvage.
            for row in src.execute(select):
                if row in seen:
                    return  # the backwards scan met the forwards one: nothing was skipped
                seen.add(row)
                dst.execute(copy.insert, row)
                result.copied += 1
        except db.DatabaseError as exc:
            result.damaged, result.error = True, str(exc)
            continue
        return  # a whole scan succeeded: the table was read completely


def _drop_orphans(dst: db.Connection, report: SalvageReport) -> None:
    """Delete rows whose parent row was lost, so the foreign keys hold again."""
    for row in dst.execute("PRAGMA foreign_key_check").fetchall():
        table, rowid = str(row[0]), row[1]
        entry = report.table(table)
        if rowid is None:
            continue  # WITHOUT ROWID: handled below by the parent key
        dst.execute(f'DELETE FROM "{table}" WHERE _rowid_ = ?', (rowid,))  # noqa: S608
        if entry is not None:
            entry.orphans += 1
    # WITHOUT ROWID children (members, heads, receipts) by their parents.
    for table, sql in (
        ("members", "DELETE FROM members WHERE room NOT IN (SELECT id FROM rooms)"),
        ("heads", "DELETE FROM heads WHERE room NOT IN (SELECT id FROM rooms)"),
        ("receipts", "DELETE FROM receipts WHERE message_id NOT IN (SELECT id FROM messages)"),
    ):
        entry = report.table(table)
        if entry is None:
            continue
        entry.orphans += dst.execute(sql).rowcount


def _lower_heads(dst: db.Connection) -> None:
    """Make every head claim no more than the salvaged messages hold contiguously.

    A head above a lost message would tell other members we hold it, and anti-entropy
    would never send it back.
    """
    held: dict[tuple[bytes, bytes], int] = {}
    rows = dst.execute("SELECT room, author, seq FROM messages ORDER BY room, author, seq")
    for room, author, seq in rows:
        key = (bytes(room), bytes(author))
        head = held.get(key, 0)
        if seq == head + 1:
            held[key] = seq
        else:
            held.setdefault(key, head)
    rows = dst.execute("SELECT room, author, seq FROM heads")
    stored = {(bytes(r), bytes(a)): int(s) for r, a, s in rows}
    dst.execute("DELETE FROM heads")
    for key in set(held) | set(stored):
        head = min(held.get(key, 0), stored.get(key, held.get(key, 0)))
        if head > 0:
            dst.execute("INSERT INTO heads (room, author, seq) VALUES (?, ?, ?)", (*key, head))


def create_fresh(
    path: Path, migrations: Sequence[Migration], key: bytes | None = None
) -> db.Connection:
    """Create a new store file (0600, must not exist) with the full schema; autocommit."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    os.close(fd)
    conn = db.connect(path, key)
    try:
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA synchronous = FULL")
        migrate(conn, migrations)
    except BaseException:
        conn.close()
        raise
    return conn


def remove_store_files(path: Path) -> None:
    """Delete a half-built store of ours (a rebuild that was not kept) and its side files."""
    for suffix in ("", "-wal", "-shm"):
        with contextlib.suppress(FileNotFoundError):
            path.with_name(path.name + suffix).unlink()


def rebuild_into(
    source: Path, fresh: Path, migrations: Sequence[Migration], key: bytes | None = None
) -> SalvageReport:
    """Build ``fresh`` from what ``source`` holds; ``source`` is only read."""
    remove_store_files(fresh)  # a rebuild interrupted earlier: ours, never the person's
    conn = create_fresh(fresh, migrations, key)
    try:
        return salvage(source, conn, key)
    finally:
        conn.close()  # the last connection: SQLite checkpoints and removes the -wal


__all__ = [
    "SalvageReport",
    "TableSalvage",
    "create_fresh",
    "damaged_name",
    "move_aside",
    "rebuild_into",
    "remove_store_files",
    "salvage",
]
