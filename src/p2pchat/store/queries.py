"""The store's SQL text and row conversions, shared by its table modules.

The hot queries are module constants so tests can check their plans use an index.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from typing import Any, Final, TypeVar

from .models import Message, NewMessage, Peer, Room

T = TypeVar("T")

SQLITE_HEADER: Final = b"SQLite format 3\x00"
# Short: the flock already keeps other p2pchat processes out, so a busy database means
# an outside program (a sqlite3 shell, a backup) and waiting long would only hang the UI.
BUSY_TIMEOUT_MS: Final = 1000
#: Page cache of an encrypted store, in KiB (SQLite's default is 2 MiB); it fills
#: only as pages are read.
ENCRYPTED_CACHE_KIB: Final = 65536
#: How long a client id of a send is remembered (see record_client_send).
CLIENT_ID_TTL_MS: Final = 7 * 24 * 3600 * 1000
# SQLite's default limit on bound variables is 32766; stay far below it.
IN_CHUNK: Final = 500
#: Unread counts stop here: a badge says "999+" rather than walking a huge backlog.
UNREAD_CAP: Final = 999


MESSAGE_COLUMNS: Final = (
    "rowid, id, room, author, seq, lamport, sent_at, received_at, kind, body, reply_to, sig, status"
)

# The hot queries are module constants so tests can check their plans use an index.
SQL_LATEST: Final = """
    SELECT rowid, id, room, author, seq, lamport, sent_at, received_at,
        kind, body, reply_to, sig, status
    FROM messages
    WHERE room = ?
    ORDER BY lamport DESC, author DESC, id DESC
    LIMIT ?
"""
# The same two, skipping reactions, edits and deletes (they change how messages look,
# are not shown themselves), so a page of a conversation is never short.
SQL_LATEST_SHOWN: Final = """
    SELECT rowid, id, room, author, seq, lamport, sent_at, received_at,
        kind, body, reply_to, sig, status
    FROM messages
    WHERE room = ? AND kind NOT IN ('reaction', 'edit', 'delete', 'removed')
    ORDER BY lamport DESC, author DESC, id DESC
    LIMIT ?
"""
SQL_BEFORE_SHOWN: Final = """
    SELECT rowid, id, room, author, seq, lamport, sent_at, received_at,
        kind, body, reply_to, sig, status
    FROM messages
    WHERE room = ? AND (lamport, author, id) < (?, ?, ?)
        AND kind NOT IN ('reaction', 'edit', 'delete', 'removed')
    ORDER BY lamport DESC, author DESC, id DESC
    LIMIT ?
"""
# Forward paging (an export writes a chat oldest first, a page at a time).
SQL_AFTER_SHOWN: Final = """
    SELECT rowid, id, room, author, seq, lamport, sent_at, received_at,
        kind, body, reply_to, sig, status
    FROM messages
    WHERE room = ? AND (lamport, author, id) > (?, ?, ?) AND kind != 'reaction'
    ORDER BY lamport, author, id
    LIMIT ?
"""
SQL_BEFORE: Final = """
    SELECT rowid, id, room, author, seq, lamport, sent_at, received_at,
        kind, body, reply_to, sig, status
    FROM messages
    WHERE room = ? AND (lamport, author, id) < (?, ?, ?)
    ORDER BY lamport DESC, author DESC, id DESC
    LIMIT ?
"""
# INDEXED BY: with statistics the planner may prefer a rowid range over the whole table
# (all rooms); the (room) index bounds the walk to this room's unread rows.
# The LIMIT caps the work for a room never opened after a big sync: a badge shows "999+".
SQL_UNREAD: Final = """
    SELECT count(*) FROM (
        SELECT 1 FROM messages INDEXED BY messages_arrival
        WHERE room = ? AND rowid > ? AND author IS NOT ?
            AND kind NOT IN ('reaction', 'edit', 'delete', 'removed')
        LIMIT ?
    )
"""
SQL_HEADS: Final = "SELECT author, seq FROM heads WHERE room = ?"
# INDEXED BY: SQLite (3.53 and later) may walk the whole outbox by id from ``after``
# once it has statistics; (peer, id) reads only this peer's rows, already in order.
SQL_PENDING: Final = """
    SELECT id, peer, frame, message_id, created_at, attempts FROM outbox INDEXED BY outbox_peer
    WHERE peer = ? AND id > ? ORDER BY id LIMIT ?
"""
# Both also read what a locally deleted chat left behind (heads, rooms.cleared_lamport):
# our next message must not reuse a seq, nor sort before messages the others still hold.
SQL_NEXT_SEQ: Final = """
    SELECT max(
        coalesce((SELECT max(seq) FROM messages WHERE room = ?1 AND author = ?2), 0),
        coalesce((SELECT seq FROM heads WHERE room = ?1 AND author = ?2), 0))
"""
SQL_MAX_LAMPORT: Final = """
    SELECT max(
        coalesce((SELECT max(lamport) FROM messages WHERE room = ?1), 0),
        coalesce((SELECT cleared_lamport FROM rooms WHERE id = ?1), 0))
"""
ROOM_COLUMNS: Final = (
    "id, kind, name, topic, owner, created_at, last_read_rowid, muted, archived_rowid"
)
#: Message columns plus the envelope's deps (NULL for envelopes without), for relaying.
WITH_DEPS: Final = (
    "messages.rowid, id, room, author, seq, lamport, sent_at, received_at, kind, body,"
    " reply_to, sig, status, deps FROM messages"
)
SQL_BY_SEQ: Final = f"""
    SELECT {WITH_DEPS}
    WHERE room = ? AND author = ? AND seq >= ? AND seq < ?
    ORDER BY seq
"""
SQL_REACTIONS_IN: Final = (
    "SELECT message_id, author, emoji FROM reactions WHERE message_id IN ({})"
    " ORDER BY message_id, emoji, author"
)
SQL_SEARCH_QUEUED: Final = "SELECT 1 FROM message_search_pending LIMIT 1"
SQL_ARRIVED_AFTER: Final = (
    "SELECT 1 FROM messages INDEXED BY messages_arrival WHERE room = ? AND rowid > ? LIMIT 1"
)
SQL_PEERS_WITH_PENDING: Final = "SELECT DISTINCT peer FROM outbox ORDER BY peer"


def now_ms() -> int:
    """Current wall-clock time in integer milliseconds since the Unix epoch."""
    return time.time_ns() // 1_000_000


def chunks(items: Sequence[T], size: int = IN_CHUNK) -> Iterator[Sequence[T]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def stored_message(rowid: int, r: NewMessage) -> Message:
    """The Message a just-inserted NewMessage became."""
    return Message(
        rowid=rowid,
        id=r.id,
        room=r.room,
        author=r.author,
        seq=r.seq,
        lamport=r.lamport,
        sent_at=r.sent_at,
        received_at=r.received_at,
        kind=r.kind,
        body=r.body,
        reply_to=r.reply_to,
        sig=r.sig,
        status=int(r.status),
        deps=r.deps,
    )


def message_row(row: Sequence[Any]) -> Message:
    return Message(*row)


def room_row(row: Sequence[Any]) -> Room:
    rid, kind, name, topic, owner, created_at, last_read, muted, archived_rowid = row
    return Room(rid, kind, name, topic, owner, created_at, last_read, bool(muted), archived_rowid)


def peer_row(row: Sequence[Any]) -> Peer:
    pid, name, state, verified, first_seen, last_seen = row
    return Peer(pid, name, state, bool(verified), first_seen, last_seen)
