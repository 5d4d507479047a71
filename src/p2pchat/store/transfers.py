"""SQL of file transfers: one row per ``file`` message, and lookups by content hash.

Functions here take an open :class:`Store` and run in the store's thread like its own
methods (each write is atomic by itself and joins a caller's transaction). They must
never import other p2pchat modules or touch the files the rows name.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final, Literal

from .store import Store

TransferState = Literal["offered", "waiting", "active", "paused", "done", "failed", "cancelled"]
#: States in which an incoming transfer still wants bytes (resumed after a restart).
PENDING_STATES: Final = ("waiting", "active", "paused")
FINAL_STATES: Final = ("done", "failed", "cancelled")

_COLUMNS: Final = (
    "message_id, room, peer, incoming, name, size, mime, sha256, chunk, state, path, part,"
    " src_mtime, detail, created_at, updated_at"
)
# Column names are our constants; every value is a bound parameter.
_SELECT: Final = f"SELECT {_COLUMNS} FROM transfers"  # noqa: S608
_INSERT: Final = (
    f"INSERT INTO transfers ({_COLUMNS}) VALUES ({', '.join('?' * 16)})"  # noqa: S608
    " ON CONFLICT (message_id) DO NOTHING"
)


@dataclass(frozen=True, slots=True)
class TransferRow:
    """A stored transfer. ``peer`` is the other side (the author of an incoming file)."""

    message_id: bytes
    room: bytes
    peer: bytes
    incoming: bool
    name: str
    size: int
    mime: str
    sha256: bytes
    chunk: int
    state: TransferState
    path: str | None
    part: str | None
    src_mtime: int | None
    detail: str
    created_at: int
    updated_at: int


def _row(r: Sequence[Any]) -> TransferRow:
    values = list(r)
    values[3] = bool(values[3])
    return TransferRow(*values)


def add_transfer(store: Store, row: TransferRow) -> bool:
    """Insert ``row`` unless a transfer for that message exists; True if inserted."""
    with store.atomic(), store.sql_errors():
        cur = store.connection.execute(
            _INSERT,
            (
                row.message_id,
                row.room,
                row.peer,
                int(row.incoming),
                row.name,
                row.size,
                row.mime,
                row.sha256,
                row.chunk,
                row.state,
                row.path,
                row.part,
                row.src_mtime,
                row.detail,
                row.created_at,
                row.updated_at,
            ),
        )
        return cur.rowcount > 0


def get_transfer(store: Store, message_id: bytes) -> TransferRow | None:
    """One transfer by its message id."""
    r = store.row(_SELECT + " WHERE message_id = ?", (message_id,))
    return None if r is None else _row(r)


def find_transfers(store: Store, prefix: bytes) -> list[TransferRow]:
    """Transfers whose message id starts with ``prefix`` (for ids typed by people)."""
    if len(prefix) >= 16:
        found = get_transfer(store, prefix[:16])
        return [found] if found is not None else []
    end = bytearray(prefix)
    while end and end[-1] == 0xFF:
        end.pop()
    if end:
        end[-1] += 1
    # Byte strings compare lexicographically: [prefix, end) holds exactly the prefix.
    rows = store.rows(
        _SELECT + " WHERE message_id >= ?"
        " AND (? IS NULL OR message_id < ?) ORDER BY created_at LIMIT 20",
        (prefix, bytes(end) or None, bytes(end) or None),
    )
    return [_row(r) for r in rows]


def list_transfers(store: Store, limit: int = 200) -> list[TransferRow]:
    """The newest transfers first."""
    rows = store.rows(
        _SELECT + " ORDER BY created_at DESC, rowid DESC LIMIT ?",
        (limit,),
    )
    return [_row(r) for r in rows]


def pending_downloads(store: Store) -> list[TransferRow]:
    """Incoming transfers that were accepted and not finished (resume these)."""
    rows = store.rows(
        _SELECT + " WHERE incoming = 1 AND state IN (?, ?, ?) ORDER BY created_at",
        PENDING_STATES,
    )
    return [_row(r) for r in rows]


def waiting_for_space(store: Store, prefixes: Sequence[str]) -> list[TransferRow]:
    """Incoming transfers that stopped, or were refused, for lack of disk space.

    Their ``detail`` starts with one of ``prefixes`` (the node's words for it); they
    are tried again when space comes back.
    """
    rows = store.rows(
        _SELECT + " WHERE incoming = 1 AND state IN ('offered', 'failed') ORDER BY created_at"
    )
    return [r for r in map(_row, rows) if r.detail.startswith(tuple(prefixes))]


def ended_download_parts(store: Store) -> list[str]:
    """Part paths of downloads that ended for good (failed, cancelled): to delete."""
    rows = store.rows(
        "SELECT part FROM transfers WHERE incoming = 1 AND state IN ('failed', 'cancelled')"
        " AND part IS NOT NULL"
    )
    return [str(r[0]) for r in rows]


def by_hash(store: Store, sha256: bytes) -> list[TransferRow]:
    """Every transfer of the file with this SHA-256 (to decide whether we can serve it)."""
    rows = store.rows(
        _SELECT + " WHERE sha256 = ? ORDER BY created_at DESC",
        (sha256,),
    )
    return [_row(r) for r in rows]


def set_state(
    store: Store,
    message_id: bytes,
    state: TransferState,
    at: int,
    *,
    detail: str | None = None,
    path: str | None = None,
    part: str | None = None,
) -> bool:
    """Move a transfer to ``state``; optionally record a detail, final path or part path."""
    sets = ["state = ?", "updated_at = ?"]
    params: list[Any] = [state, at]
    if detail is not None:
        sets.append("detail = ?")
        params.append(detail)
    if path is not None:
        sets.append("path = ?")
        params.append(path)
    if part is not None:
        sets.append("part = ?")
        params.append(part)
    params.append(message_id)
    statement = f"UPDATE transfers SET {', '.join(sets)} WHERE message_id = ?"  # noqa: S608
    return store.change(statement, params) > 0


def forget_transfers(store: Store, message_ids: Sequence[bytes]) -> int:
    """Delete transfer rows (the messages themselves stay)."""
    removed = 0
    with store.atomic():
        for mid in message_ids:
            removed += store.change("DELETE FROM transfers WHERE message_id = ?", (mid,))
    return removed
