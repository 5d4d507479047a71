"""Messages (signed envelopes as rows), per-author heads and seqs, and reactions."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from .errors import UnknownRoomError
from .models import Cursor, Message, MessageStatus, NewMessage, Reaction, RoomKind
from .queries import (
    CLIENT_ID_TTL_MS,
    MESSAGE_COLUMNS,
    SQL_AFTER_SHOWN,
    SQL_BEFORE,
    SQL_BEFORE_SHOWN,
    SQL_BY_SEQ,
    SQL_HEADS,
    SQL_LATEST,
    SQL_LATEST_SHOWN,
    SQL_NEXT_SEQ,
    SQL_REACTIONS_IN,
    WITH_DEPS,
    chunks,
    message_row,
    stored_message,
)
from .rooms import RoomTables

_SQL_INSERT = (
    "INSERT OR IGNORE INTO messages (id, room, author, seq, lamport, sent_at,"
    " received_at, kind, body, reply_to, sig, status, deps)"
    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)


def _values(r: NewMessage) -> tuple[object, ...]:
    """A row's values in ``_SQL_INSERT``'s order."""
    return (
        r.id,
        r.room,
        r.author,
        r.seq,
        r.lamport,
        r.sent_at,
        r.received_at,
        r.kind,
        r.body,
        r.reply_to,
        r.sig,
        int(r.status),
        r.deps,
    )


class MessageTables(RoomTables):
    """Messages (signed envelopes as rows), per-author heads and seqs, and reactions."""

    # ------------------------------------------------------------ messages

    def add_messages(self, rows: Sequence[NewMessage]) -> list[bool]:
        """Store messages in ONE transaction; per row True if new, False if already held.

        A row is a duplicate when its id is stored (or appears earlier in the batch);
        a different id claiming an already used (room, author, seq) is also refused with
        False, first one wins. Duplicates never raise; an unknown room raises
        UnknownRoomError and nothing of the batch is stored.
        """
        return [m is not None for m in self.insert_messages(rows)]

    def insert_messages(self, rows: Sequence[NewMessage]) -> list[Message | None]:
        """Like :meth:`add_messages`, but returns each new row as stored (None: duplicate).

        Saves callers a second query to learn the rows' arrival order (``rowid``).
        """
        if not rows:
            return []
        with self._atomic():
            for room_id in {r.room for r in rows}:
                if self.room_kind(room_id) is None:
                    raise UnknownRoomError(room_id)
            batch = len(rows) >= self.MANY_ROWS
            result = self._insert_batch(rows) if batch else self._insert_each(rows)
            touched: dict[tuple[bytes, bytes], list[int]] = {}
            for m in result:
                if m is not None:
                    touched.setdefault((m.room, m.author), []).append(m.seq)
            for (room_id, author), seqs in touched.items():
                self._advance_head(room_id, author, seqs)
        return result

    #: From this many rows on, a batch is inserted with one executemany and one look-up.
    MANY_ROWS = 8

    def _insert_each(self, rows: Sequence[NewMessage]) -> list[Message | None]:
        """INSERT OR IGNORE ``rows`` one statement each (a live message or two)."""
        db = self._db
        result: list[Message | None] = []
        for r in rows:
            cur = db.execute(_SQL_INSERT, _values(r))
            if cur.rowcount > 0:
                assert cur.lastrowid is not None
                result.append(stored_message(cur.lastrowid, r))
            else:
                result.append(None)
        return result

    def _insert_batch(self, rows: Sequence[NewMessage]) -> list[Message | None]:
        """INSERT OR IGNORE many ``rows`` with one executemany.

        A catch-up stores thousands of rows a second, and a statement and its rowcount
        per row was a fifth of the insert. One look-up above the largest rowid before
        tells what the executemany added: this connection is the only writer and the
        transaction is open, so those rows are exactly the batch's, and new rowids are
        never below it. For a row or two (a live message) the two extra statements cost
        more than they save, so those go through ``_insert_each``.

        A stored row is matched back to the first row of the batch with its id, room,
        author and seq. That is the row stored, as long as every row is well-formed (a
        status in range, no NULL where the table forbids it): rows are built here from
        typed fields, and one that broke a CHECK would be silently ignored by INSERT OR
        IGNORE, which is a caller's bug either way.
        """
        db = self._db
        before = db.execute("SELECT max(rowid) FROM messages").fetchone()[0] or 0
        db.executemany(_SQL_INSERT, [_values(r) for r in rows])
        added = {
            (mid, room_id, author, seq): rowid
            for rowid, mid, room_id, author, seq in db.execute(
                "SELECT rowid, id, room, author, seq FROM messages WHERE rowid > ?", (before,)
            )
        }
        result: list[Message | None] = []
        for r in rows:
            # pop: a second copy of a row in the same batch was ignored, not added.
            rowid = added.pop((r.id, r.room, r.author, r.seq), None)
            result.append(None if rowid is None else stored_message(rowid, r))
        return result

    def _advance_head(self, room_id: bytes, author: bytes, inserted: Sequence[int]) -> None:
        """Move the (room, author) contiguous head forward over seqs now present.

        ``inserted`` are the seqs this call stored. When the pair is known to hold nothing
        above its head, those are the only candidates and no probing query is needed (the
        common case: an author's next message).
        """
        db = self._db
        key = (room_id, author)
        head = self._known_heads(room_id).get(author, 0)
        start = head
        if key in self._no_gap:
            present = set(inserted)
            while head + 1 in present:
                head += 1
            if any(seq > head for seq in present):
                self._no_gap.discard(key)
        else:
            # Each step is one unique-index probe; the total over time is one per message.
            while (
                db.execute(
                    "SELECT 1 FROM messages WHERE room = ? AND author = ? AND seq = ?",
                    (room_id, author, head + 1),
                ).fetchone()
                is not None
            ):
                head += 1
            beyond = db.execute(
                "SELECT 1 FROM messages WHERE room = ? AND author = ? AND seq > ? LIMIT 1",
                (room_id, author, head),
            ).fetchone()
            if beyond is None:
                self._no_gap.add(key)
        if head != start:
            self._write_head(room_id, author, head)

    def _write_head(self, room_id: bytes, author: bytes, seq: int) -> None:
        """Set the stored head of (room, author), and the caches that mirror it."""
        self._db.execute(
            "INSERT INTO heads (room, author, seq) VALUES (?, ?, ?)"
            " ON CONFLICT (room, author) DO UPDATE SET seq = excluded.seq",
            (room_id, author, seq),
        )
        room_heads = self._room_heads.get(room_id)
        if room_heads is not None:
            room_heads[author] = seq

    def skip_void(self, room_id: bytes, author: bytes, first: int, last: int) -> None:
        """Count seqs ``first..last`` of the author as held for the contiguous head.

        Group membership declares such a range void (written outside the author's
        membership, so nothing there ever counts): the head must pass over it, or
        anti-entropy would stall below it and re-send what lies beyond, forever.
        """
        with self._atomic():
            key = (room_id, author)
            row = self._db.execute(
                "SELECT seq FROM heads WHERE room = ? AND author = ?", (room_id, author)
            ).fetchone()
            head = 0 if row is None else int(row[0])
            if not first <= head + 1 <= last:
                return
            self._no_gap.discard(key)
            self._write_head(room_id, author, last)
            self._advance_head(room_id, author, [])

    def delete_seq_range(self, room_id: bytes, author: bytes, first: int, last: int) -> list[bytes]:
        """Delete the author's messages with ``first <= seq <= last`` (not system ones).

        Group membership uses it when a removal shows that an author's later messages
        were written outside their membership: they must not stay anywhere. The author's
        contiguous head falls back below the gap. Returns the ids deleted.
        """
        with self._atomic():
            rows = self._db.execute(
                "DELETE FROM messages WHERE room = ? AND author = ? AND seq BETWEEN ? AND ?"
                " AND kind != 'system' RETURNING id",
                (room_id, author, first, last),
            ).fetchall()
            if not rows:
                return []
            key = (room_id, author)
            self._no_gap.discard(key)
            self._room_heads.pop(room_id, None)
            self._db.execute(
                "UPDATE heads SET seq = ? WHERE room = ? AND author = ? AND seq >= ?",
                (first - 1, room_id, author, first),
            )
            return [bytes(r[0]) for r in rows]

    def message_for_client(self, client_id: str) -> Message | None:
        """The message a send with this client id wrote, if any (idempotent sends)."""
        row = self._one(
            f"SELECT {WITH_DEPS} WHERE id = (SELECT message_id FROM client_sends"  # noqa: S608
            " WHERE client_id = ?)",
            (client_id,),
        )
        return None if row is None else message_row(row)

    def record_client_send(self, client_id: str, message_id: bytes, now: int) -> None:
        """Remember which message a send with ``client_id`` wrote (same transaction).

        Ids older than a week are forgotten: a retry comes within moments of a crash.
        """
        with self._atomic():
            self._db.execute(
                "INSERT INTO client_sends (client_id, message_id, created_at) VALUES (?, ?, ?)",
                (client_id, message_id, now),
            )
            self._db.execute(
                "DELETE FROM client_sends WHERE created_at < ?", (now - CLIENT_ID_TTL_MS,)
            )

    def delete_room(self, room_id: bytes) -> None:
        """Forget a room and everything in it (an invitation that expired or was refused)."""
        with self._atomic():
            self._db.execute("DELETE FROM rooms WHERE id = ?", (room_id,))
            self._room_kinds.pop(room_id, None)
            self._room_heads.pop(room_id, None)
            self._no_gap -= {k for k in self._no_gap if k[0] == room_id}

    def messages_of_kind(self, room_id: bytes, kind: str) -> list[Message]:
        """Every message of one kind in a room (e.g. the membership log), arrival order.

        Walks the room's arrival index (which carries the kind), so it touches only the
        matching rows; meant for rare kinds such as ``system``.
        """
        rows = self._all(
            "SELECT messages.rowid, id, room, author, seq, lamport, sent_at, received_at, kind,"
            " body, reply_to, sig, status, deps"
            " FROM messages INDEXED BY messages_arrival"
            " WHERE room = ? AND kind = ? ORDER BY messages.rowid",
            (room_id, kind),
        )
        return [message_row(r) for r in rows]

    def room_ids(self, kind: RoomKind) -> list[bytes]:
        """Ids of every room of this kind."""
        return [bytes(r[0]) for r in self._all("SELECT id FROM rooms WHERE kind = ?", (kind,))]

    def held_ids(self, message_ids: Sequence[bytes]) -> set[bytes]:
        """Which of ``message_ids`` are stored (one indexed look-up per chunk of ids)."""
        found: set[bytes] = set()
        for chunk in chunks(list(message_ids)):
            marks = ",".join("?" * len(chunk))
            rows = self._all(f"SELECT id FROM messages WHERE id IN ({marks})", chunk)  # noqa: S608
            found.update(bytes(r[0]) for r in rows)
        return found

    def get_messages(self, message_ids: Sequence[bytes]) -> list[Message]:
        """The stored messages among ``message_ids`` (unknown ids are skipped), any order."""
        found: list[Message] = []
        for chunk in chunks(list(message_ids)):
            marks = ",".join("?" * len(chunk))
            rows = self._all(
                f"SELECT {WITH_DEPS} WHERE id IN ({marks})",
                chunk,
            )
            found.extend(message_row(r) for r in rows)
        return found

    def get_message(self, message_id: bytes) -> Message | None:
        """Return the message with this id, if stored."""
        row = self._one(
            f"SELECT {WITH_DEPS} WHERE id = ?",
            (message_id,),
        )
        return None if row is None else message_row(row)

    def latest_messages(
        self, room_id: bytes, limit: int = 200, *, shown_only: bool = False
    ) -> list[Message]:
        """Return the room's last ``limit`` messages in ascending display order.

        Display order is (lamport, author, id), the same on every member's screen.
        ``shown_only`` skips reactions, which are not shown as messages.
        """
        rows = self._all(SQL_LATEST_SHOWN if shown_only else SQL_LATEST, (room_id, limit))
        return [message_row(r) for r in reversed(rows)]

    def messages_before(
        self, room_id: bytes, cursor: Cursor, limit: int = 200, *, shown_only: bool = False
    ) -> list[Message]:
        """Return up to ``limit`` messages just older than ``cursor``, ascending.

        ``cursor`` is the oldest shown message's ``Message.cursor``.
        """
        lamport, author, message_id = cursor
        sql = SQL_BEFORE_SHOWN if shown_only else SQL_BEFORE
        rows = self._all(sql, (room_id, lamport, author, message_id, limit))
        return [message_row(r) for r in reversed(rows)]

    def shown_messages_after(
        self, room_id: bytes, cursor: Cursor | None, limit: int = 200
    ) -> list[Message]:
        """Up to ``limit`` messages just after ``cursor`` (from the start when None),
        ascending, reactions skipped: reads a whole chat forward a page at a time."""
        lamport, author, message_id = cursor or (-1, b"", b"")
        rows = self._all(SQL_AFTER_SHOWN, (room_id, lamport, author, message_id, limit))
        return [message_row(r) for r in rows]

    def next_seq(self, room_id: bytes, author: bytes) -> int:
        """The seq ``author``'s next message in the room should carry (1 for the first)."""
        row = self._one(SQL_NEXT_SEQ, (room_id, author))
        return int(row[0]) + 1

    def heads(self, room_id: bytes) -> dict[bytes, int]:
        """Per author, the highest seq such that seqs 1..that are all stored.

        Authors whose seq 1 is missing are absent. Anti-entropy compares these.

        Every group message's ingest asks, so a room's heads are read from the file once
        and then kept in memory beside it (``_write_head`` updates both; a rollback drops
        the copy). In a process with many threads each row fetched from SQLite hands the
        GIL over and back: reading 50 members' heads cost 1.3 ms of CPU where the copy
        costs microseconds.
        """
        return dict(self._known_heads(room_id))

    def _known_heads(self, room_id: bytes) -> dict[bytes, int]:
        """The room's stored heads, read once and then kept (the store's own copy: only
        ``_write_head`` changes it). Appending an author's next message then needs no
        query to learn where its head stood."""
        room_heads = self._room_heads.get(room_id)
        if room_heads is None:
            room_heads = {bytes(a): int(s) for a, s in self._all(SQL_HEADS, (room_id,))}
            if self.room_kind(room_id) is not None:  # never one copy per id a peer made up
                self._room_heads[room_id] = room_heads
        return room_heads

    def messages_by_seq(
        self, room_id: bytes, author: bytes, start: int, count: int
    ) -> list[Message]:
        """Return the author's stored messages with start <= seq < start + count, by seq."""
        rows = self._all(SQL_BY_SEQ, (room_id, author, start, start + count))
        return [message_row(r) for r in rows]

    def message_count(self, room_id: bytes) -> int:
        """Number of messages stored for the room (walks its index: O(room size))."""
        return int(self._one("SELECT count(*) FROM messages WHERE room = ?", (room_id,))[0])

    def count_by_author(self, room_id: bytes, author: bytes) -> int:
        """How many messages of ``author`` the room holds (uses the (room, author, seq) key)."""
        row = self._one(
            "SELECT count(*) FROM messages WHERE room = ? AND author = ?", (room_id, author)
        )
        return int(row[0])

    def incoming_not_read(self, room_id: bytes, self_id: bytes, limit: int = 5000) -> list[Message]:
        """Others' messages after the room's read marker that are not marked read yet."""
        room = self.get_room(room_id)
        if room is None:
            return []
        rows = self._all(
            f"SELECT {MESSAGE_COLUMNS} FROM messages"  # noqa: S608
            " WHERE room = ? AND rowid > ? AND author != ? AND status < ?"
            " AND kind NOT IN ('reaction', 'edit', 'delete', 'removed')"
            " ORDER BY rowid LIMIT ?",
            (room_id, room.last_read_rowid, self_id, int(MessageStatus.READ), limit),
        )
        return [message_row(r) for r in rows]

    def set_status(self, message_ids: Iterable[bytes], status: int) -> list[bytes]:
        """Raise the status of these messages to ``status``; return the ids that changed.

        A status never goes down: a late ``sent`` must not hide an earlier ``read``.
        """
        changed = []
        with self._atomic():
            for mid in message_ids:
                cur = self._db.execute(
                    "UPDATE messages SET status = ? WHERE id = ? AND status < ?",
                    (int(status), mid, int(status)),
                )
                if cur.rowcount > 0:
                    changed.append(mid)
        return changed

    # ----------------------------------------------------------- reactions

    def add_reaction(self, message_id: bytes, author: bytes, emoji: str) -> bool:
        """Record ``author``'s ``emoji`` on a message; True if it was new."""
        return (
            self._write(
                "INSERT OR IGNORE INTO reactions (message_id, author, emoji) VALUES (?, ?, ?)",
                (message_id, author, emoji),
            )
            > 0
        )

    def remove_reaction(self, message_id: bytes, author: bytes, emoji: str) -> bool:
        """Withdraw a reaction; True if it existed."""
        return (
            self._write(
                "DELETE FROM reactions WHERE message_id = ? AND author = ? AND emoji = ?",
                (message_id, author, emoji),
            )
            > 0
        )

    def reactions_for(self, message_ids: Iterable[bytes]) -> dict[bytes, list[Reaction]]:
        """Reactions on each of these messages (absent key: none), for a screenful at once."""
        ids = list(message_ids)
        found: dict[bytes, list[Reaction]] = {}
        for chunk in chunks(ids):
            # Only "?" placeholders are formatted in; the ids stay bound parameters.
            sql = SQL_REACTIONS_IN.format(",".join("?" * len(chunk)))
            rows = self._all(sql, tuple(chunk))
            for r in rows:
                reaction = Reaction(*r)
                found.setdefault(reaction.message_id, []).append(reaction)
        return found
