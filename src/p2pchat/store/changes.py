"""SQL of message changes: edits, deletions (tombstones) and disappearing-message timers.

A deleted or expired message keeps its row, so the room's sequence numbers stay
without gaps, but loses everything it said: the row becomes a *tombstone* (kind
``deleted``, empty body, empty signature), a plain update of the message row, so an
index kept by triggers on ``messages`` (search) forgets the text with it. Its reactions
and its expiry row go too (a file offer's thumbnail is in its body). A file already
downloaded is the person's file and stays.

Functions here take an open :class:`Store` and run in the store's thread like its own
methods (each write is atomic by itself and joins a caller's transaction). They must
never import other p2pchat modules.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Final

from .models import Cursor, Message
from .store import MESSAGE_COLUMNS, Store

#: The kind of a tombstone shown in its conversation ("message deleted"). Never sent: a
#: tombstone has no signature to relay.
KIND_TOMBSTONE: Final = "deleted"
#: The kind of a tombstone shown nowhere: an expired message, a removed edit or
#: reaction, or a message this node never held.
KIND_REMOVED: Final = "removed"
TOMBSTONE_KINDS: Final = (KIND_TOMBSTONE, KIND_REMOVED)
#: Kinds whose tombstone is never shown (they were never a line of their own).
_UNSHOWN: Final = "('edit', 'reaction', 'delete', 'timer', 'system', 'removed')"
#: Message kinds that say something, and so may disappear under a timer.
EXPIRING_KINDS: Final = ("text", "file", "edit")
_IN_CHUNK: Final = 500


def _chunks(items: Sequence[bytes]) -> Iterator[Sequence[bytes]]:
    for start in range(0, len(items), _IN_CHUNK):
        yield items[start : start + _IN_CHUNK]


def is_tombstone(message: Message) -> bool:
    """True for a deleted or expired message's row (a received envelope always has a sig)."""
    return message.kind in TOMBSTONE_KINDS and not message.sig


def edits_of(store: Store, targets: Sequence[bytes]) -> list[Message]:
    """The edit envelopes held that name any of ``targets`` (any author: callers check)."""
    found: list[Message] = []
    for chunk in _chunks(list(targets)):
        marks = ",".join("?" * len(chunk))
        rows = store.rows(
            f"SELECT {MESSAGE_COLUMNS} FROM messages INDEXED BY messages_edits"  # noqa: S608
            f" WHERE kind = 'edit' AND reply_to IN ({marks})",
            chunk,
        )
        found.extend(Message(*r) for r in rows)
    return found


def tombstone(
    store: Store,
    message_ids: Sequence[bytes],
    certified_by: bytes | None,
    *,
    keep_place: bool = True,
) -> list[bytes]:
    """Blank these messages (text, signature, reactions, expiry); return those blanked now.

    ``certified_by``: the id of the signed ``delete`` envelope that removed them (kept in
    ``reply_to``, so the tombstone can be vouched for to a member who lacks it); None for
    an expiry here. A tombstone already held gains a missing certificate. ``keep_place``:
    a message that was shown leaves "message deleted" in its place (a delete); otherwise
    (an expiry) it goes without a trace.
    """
    blanked: list[bytes] = []
    with store.atomic(), store.sql_errors():
        db = store.connection
        for message_id in message_ids:
            cur = db.execute(
                "UPDATE messages SET body = x'', sig = x'', reply_to = ?,"  # noqa: S608
                f" kind = CASE WHEN ? AND kind NOT IN {_UNSHOWN} THEN ? ELSE ? END"
                " WHERE id = ? AND NOT (kind IN (?, ?) AND sig = x'')",
                (
                    certified_by,
                    keep_place,
                    KIND_TOMBSTONE,
                    KIND_REMOVED,
                    message_id,
                    *TOMBSTONE_KINDS,
                ),
            )
            if cur.rowcount:
                blanked.append(message_id)
            elif certified_by is not None:
                db.execute(
                    "UPDATE messages SET reply_to = ? WHERE id = ? AND kind IN (?, ?)"
                    " AND sig = x'' AND reply_to IS NULL",
                    (certified_by, message_id, *TOMBSTONE_KINDS),
                )
        for chunk in _chunks(blanked):
            marks = ",".join("?" * len(chunk))
            db.execute(f"DELETE FROM reactions WHERE message_id IN ({marks})", chunk)  # noqa: S608
            db.execute(f"DELETE FROM expiring WHERE message_id IN ({marks})", chunk)  # noqa: S608
    return blanked


def uncertified_tombstones(store: Store, author: bytes, limit: int = 256) -> list[Message]:
    """``author``'s tombstones that no delete envelope vouches for yet (our expired ones)."""
    rows = store.rows(
        f"SELECT {MESSAGE_COLUMNS} FROM messages INDEXED BY messages_tombstones"  # noqa: S608
        " WHERE author = ? AND sig = x'' AND kind IN (?, ?) AND reply_to IS NULL LIMIT ?",
        (author, *TOMBSTONE_KINDS, limit),
    )
    return [Message(*r) for r in rows]


# ------------------------------------------------------------------ timers


def add_timer(store: Store, message: Message, seconds: int) -> bool:
    """Record a timer change that took effect; True if new."""
    store.untimed_rooms.discard(message.room)
    return (
        store.change(
            "INSERT OR IGNORE INTO disappear_timers (message_id, room, lamport, author, seconds)"
            " VALUES (?, ?, ?, ?, ?)",
            (message.id, message.room, message.lamport, message.author, seconds),
        )
        > 0
    )


def timers_in_force(store: Store, message_ids: Sequence[bytes]) -> set[bytes]:
    """Those of ``message_ids`` that are timer changes that took effect."""
    found: set[bytes] = set()
    for chunk in _chunks(list(message_ids)):
        marks = ",".join("?" * len(chunk))
        rows = store.rows(
            f"SELECT message_id FROM disappear_timers WHERE message_id IN ({marks})",  # noqa: S608
            chunk,
        )
        found.update(bytes(r[0]) for r in rows)
    return found


def has_timers(store: Store, room: bytes) -> bool:
    """Whether a timer was ever set in the room (most rooms: no, and nothing to look up).

    Every stored message asks, so a room found without one is remembered until
    ``add_timer`` (the only writer of timers) records one there: one statement fewer
    per message, and in a busy process each statement hands the GIL over and back.
    A room remembered as timed after its timers were deleted costs only a look-up.
    """
    if room in store.untimed_rooms:
        return False
    timed = store.row("SELECT 1 FROM disappear_timers WHERE room = ? LIMIT 1", (room,)) is not None
    if not timed:
        store.untimed_rooms.add(room)
    return timed


def timer_at(store: Store, room: bytes, position: Cursor) -> int:
    """The timer (seconds, 0 = off) in force at ``position`` of the room's display order."""
    row = store.row(
        "SELECT seconds FROM disappear_timers WHERE room = ? AND (lamport, author, message_id)"
        " < (?, ?, ?) ORDER BY lamport DESC, author DESC, message_id DESC LIMIT 1",
        (room, *position),
    )
    return int(row[0]) if row else 0


def current_timer(store: Store, room: bytes) -> tuple[int, bytes | None]:
    """The room's timer now (seconds, 0 = off) and who set it (None: never set)."""
    row = store.row(
        "SELECT seconds, author FROM disappear_timers WHERE room = ?"
        " ORDER BY lamport DESC, author DESC, message_id DESC LIMIT 1",
        (room,),
    )
    return (int(row[0]), bytes(row[1])) if row else (0, None)


def next_timer_after(store: Store, room: bytes, position: Cursor) -> Cursor | None:
    """The position of the room's next timer change after ``position``, if any."""
    row = store.row(
        "SELECT lamport, author, message_id FROM disappear_timers WHERE room = ?"
        " AND (lamport, author, message_id) > (?, ?, ?)"
        " ORDER BY lamport, author, message_id LIMIT 1",
        (room, *position),
    )
    return None if row is None else (int(row[0]), bytes(row[1]), bytes(row[2]))


def messages_between(
    store: Store, room: bytes, after: Cursor, before: Cursor | None
) -> list[Message]:
    """The room's messages that can expire, strictly between two display positions."""
    kinds = ",".join("?" * len(EXPIRING_KINDS))
    sql = (
        f"SELECT {MESSAGE_COLUMNS} FROM messages WHERE room = ?"  # noqa: S608
        f" AND (lamport, author, id) > (?, ?, ?) AND kind IN ({kinds})"
    )
    params: list[object] = [room, *after, *EXPIRING_KINDS]
    if before is not None:
        sql += " AND (lamport, author, id) < (?, ?, ?)"
        params += [*before]
    return [Message(*r) for r in store.rows(sql, params)]


# ------------------------------------------------------------------ expiry


def set_expiry(store: Store, entries: Sequence[tuple[bytes, bytes, int | None]]) -> None:
    """Set (``at`` in ms) or clear (None) when messages expire: (message id, room, at)."""
    with store.atomic(), store.sql_errors():
        for message_id, room, at in entries:
            if at is None:
                store.connection.execute("DELETE FROM expiring WHERE message_id = ?", (message_id,))
            else:
                store.connection.execute(
                    "INSERT INTO expiring (message_id, room, at) VALUES (?, ?, ?)"
                    " ON CONFLICT (message_id) DO UPDATE SET at = excluded.at",
                    (message_id, room, at),
                )


def expired(store: Store, now: int, limit: int = 500) -> list[tuple[bytes, bytes]]:
    """(message id, room) of messages whose time is up, oldest deadline first."""
    rows = store.rows(
        "SELECT message_id, room FROM expiring WHERE at <= ? ORDER BY at LIMIT ?", (now, limit)
    )
    return [(bytes(r[0]), bytes(r[1])) for r in rows]


def next_expiry(store: Store) -> int | None:
    """The earliest deadline held (ms), or None."""
    row = store.row("SELECT min(at) FROM expiring")
    return None if row is None or row[0] is None else int(row[0])


def expiry_of(store: Store, message_ids: Sequence[bytes]) -> dict[bytes, int]:
    """When each of these messages expires (those without a timer are left out)."""
    found: dict[bytes, int] = {}
    for chunk in _chunks(list(message_ids)):
        marks = ",".join("?" * len(chunk))
        rows = store.rows(
            f"SELECT message_id, at FROM expiring WHERE message_id IN ({marks})",  # noqa: S608
            chunk,
        )
        found.update((bytes(r[0]), int(r[1])) for r in rows)
    return found
