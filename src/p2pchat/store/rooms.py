"""Rooms, their members, read marks and full-text search."""

from __future__ import annotations

from collections.abc import Sequence

from .models import Member, MemberRole, MemberState, Message, Room, RoomKind, RoomSummary
from .peers import PeerTables
from .queries import (
    ROOM_COLUMNS,
    SQL_ARRIVED_AFTER,
    SQL_LATEST,
    SQL_MAX_LAMPORT,
    SQL_SEARCH_QUEUED,
    SQL_UNREAD,
    UNREAD_CAP,
    WITH_DEPS,
    chunks,
    message_row,
    room_row,
)
from .search import flush_search_index, parse_query, purge_search_residue, search_rowids


class RoomTables(PeerTables):
    """Rooms, their members, read marks and full-text search."""

    # --------------------------------------------------------------- rooms

    def ensure_room(
        self,
        room_id: bytes,
        kind: RoomKind,
        *,
        name: str | None = None,
        owner: bytes | None = None,
        created_at: int,
    ) -> bool:
        """Create the room unless it exists (then nothing changes); True if created."""
        return (
            self._write(
                "INSERT INTO rooms (id, kind, name, owner, created_at) VALUES (?, ?, ?, ?, ?)"
                " ON CONFLICT (id) DO NOTHING",
                (room_id, kind, name, owner, created_at),
            )
            > 0
        )

    def room_kind(self, room_id: bytes) -> RoomKind | None:
        """The room's kind, or None if there is no such room.

        Every stored message asks (is the room ours, a group or a direct chat?), and a
        room's kind never changes: known kinds are kept in memory, dropped when a room
        is deleted and on any rollback (which may undo a room's creation).
        """
        kind = self._room_kinds.get(room_id)
        if kind is None:
            row = self._one("SELECT kind FROM rooms WHERE id = ?", (room_id,))
            if row is None:
                return None
            kind = self._room_kinds[room_id] = "group" if row[0] == "group" else "direct"
        return kind

    def get_room(self, room_id: bytes) -> Room | None:
        """Return the room, if known."""
        row = self._one(f"SELECT {ROOM_COLUMNS} FROM rooms WHERE id = ?", (room_id,))  # noqa: S608
        return None if row is None else room_row(row)

    def list_rooms(self, unread_cap: int = UNREAD_CAP) -> list[RoomSummary]:
        """Return every room with its last message and unread count, most recent first.

        Unread counts stop at ``unread_cap`` (see unread_count).
        """
        summaries = []
        for row in self._all(f"SELECT {ROOM_COLUMNS} FROM rooms"):  # noqa: S608
            room = room_row(row)
            last = self._all(SQL_LATEST, (room.id, 1))
            summaries.append(
                RoomSummary(
                    room=room,
                    last_message=message_row(last[0]) if last else None,
                    unread=self._unread(room.id, room.last_read_rowid, unread_cap),
                    archived=self._still_archived(room),
                )
            )

        def activity(s: RoomSummary) -> tuple[int, bytes]:
            last = s.last_message
            return (max(s.room.created_at, last.sent_at if last else 0), s.room.id)

        summaries.sort(key=activity, reverse=True)
        return summaries

    def _still_archived(self, room: Room) -> bool:
        if room.archived_rowid is None:
            return False
        newer = self._one(SQL_ARRIVED_AFTER, (room.id, room.archived_rowid))
        return newer is None

    def set_room_muted(self, room_id: bytes, muted: bool) -> bool:
        """Mute or unmute a room; False when the room is unknown."""
        return self._write("UPDATE rooms SET muted = ? WHERE id = ?", (int(muted), room_id)) > 0

    def set_room_archived(self, room_id: bytes, archived: bool) -> bool:
        """Archive a room (out of the room list until a message arrives) or bring it back.

        Archiving records the newest arrival, so a new message needs no write to bring
        the room back: ``list_rooms`` sees a message after the mark. False when unknown.
        """
        mark = self.last_arrival(room_id) if archived else None
        return self._write("UPDATE rooms SET archived_rowid = ? WHERE id = ?", (mark, room_id)) > 0

    def max_lamport(self, room_id: bytes) -> int:
        """Highest Lamport clock seen in the room (0 when empty)."""
        row = self._one(SQL_MAX_LAMPORT, (room_id,))
        return int(row[0])

    def clear_room(self, room_id: bytes) -> int:
        """Delete a room's messages locally but remember how far it went; return how many.

        The room row and its heads stay: sync then does not fetch the history back from
        the other members, our next seq does not reuse one they hold, and
        ``cleared_lamport`` makes our next message sort after theirs. Reactions and
        offers of the deleted messages go too (offers whose download began keep their
        row, as in ``forget_room``). The search index follows by its triggers.
        """
        ids = "SELECT id FROM messages WHERE room = ?"
        with self._atomic():
            self._write(
                "UPDATE rooms SET cleared_lamport = max(cleared_lamport, ?) WHERE id = ?",
                (self.max_lamport(room_id), room_id),
            )
            self._write(f"DELETE FROM reactions WHERE message_id IN ({ids})", (room_id,))  # noqa: S608
            self._write("DELETE FROM transfers WHERE room = ? AND part IS NULL", (room_id,))
            return self._write("DELETE FROM messages WHERE room = ?", (room_id,))

    # -------------------------------------------------------------- search

    def search_messages(
        self,
        text: str,
        *,
        rooms: Sequence[bytes] | None = None,
        limit: int = 50,
        before_rowid: int | None = None,
    ) -> tuple[list[Message], int | None]:
        """Text messages holding every word of ``text`` (substrings, any case), newest first.

        ``rooms`` limits the search to those rooms; ``before_rowid`` pages back. Returns
        the messages and, when the search stopped early (a query of only 1- or
        2-character words spent its time budget, see :mod:`.search`), the ``before_rowid``
        that goes on with the older messages; else None. Raises SearchQueryError (a
        ValueError with a message for the person) for an unusable query.
        """
        query = parse_query(text)
        if self._has_search and self._all(SQL_SEARCH_QUEUED):
            with self.transaction():
                flush_search_index(self._db)  # every message queued so far is found
        with self._errors():
            found = search_rowids(
                self._db,
                query,
                rooms=None if rooms is None else tuple(rooms),
                limit=limit,
                before_rowid=before_rowid,
            )
        by_rowid: dict[int, Message] = {}
        for chunk in chunks(list(found.rowids)):
            marks = ",".join("?" * len(chunk))
            rows = self._all(f"SELECT {WITH_DEPS} WHERE messages.rowid IN ({marks})", chunk)
            by_rowid.update((int(r[0]), message_row(r)) for r in rows)
        return [by_rowid[r] for r in found.rowids if r in by_rowid], found.resume_before

    def index_queued(self, budget: int | None) -> bool:
        """Index queued texts, at most ``budget`` characters (None: all); True if more
        wait. The node calls it in small steps in the background (store/search.py)."""
        if not self._has_search or not self._all(SQL_SEARCH_QUEUED):
            return False
        # No fsync for this commit: the index is derived, and WAL keeps the step atomic
        # (index rows and the queue rows it removes go together, or neither does); the
        # next durable commit makes it durable too. A step then costs CPU only.
        with self.transaction(durable=False):
            flush_search_index(self._db, 1, budget)
        return bool(self._all(SQL_SEARCH_QUEUED))

    def purge_search_residue(self) -> None:
        """Rewrite the search index so words of deleted messages are gone from it too."""
        with self._atomic(), self._errors():
            purge_search_residue(self._db)

    def last_arrival(self, room_id: bytes) -> int:
        """The arrival order (rowid) of the room's newest stored message; 0 when empty.

        Arrival, not display order: a peer chooses its Lamport times, not when we got it.
        """
        row = self._one("SELECT max(rowid) FROM messages WHERE room = ?", (room_id,))
        return int(row[0] or 0)

    def forget_room(self, room_id: bytes) -> int:
        """Delete a room with its messages, reactions and offers; return the messages removed.

        For a contact request that made way for a newer one, or that the person cleared:
        what a stranger wrote must not stay on disk once it is no longer listed. Offers
        whose download has begun (a part file exists) keep their transfer row, so the
        part file stays findable for clean-up.
        """
        ids = "SELECT id FROM messages WHERE room = ?"
        with self._atomic():
            self._write(f"DELETE FROM reactions WHERE message_id IN ({ids})", (room_id,))  # noqa: S608
            self._write("DELETE FROM transfers WHERE room = ? AND part IS NULL", (room_id,))
            removed = self._write("DELETE FROM messages WHERE room = ?", (room_id,))
            self._write("DELETE FROM rooms WHERE id = ?", (room_id,))
        self._forget_caches()  # heads and rooms seen: the room is gone
        return removed

    def set_room_name(self, room_id: bytes, name: str | None) -> bool:
        """Rename a room; False when the room is unknown."""
        return self._write("UPDATE rooms SET name = ? WHERE id = ?", (name, room_id)) > 0

    def set_room_topic(self, room_id: bytes, topic: str | None) -> bool:
        """Set a room's topic; False when the room is unknown."""
        return self._write("UPDATE rooms SET topic = ? WHERE id = ?", (topic, room_id)) > 0

    def mark_room_read(self, room_id: bytes, up_to_rowid: int) -> bool:
        """Record that the person has seen the room up to message ``up_to_rowid``.

        Never moves backwards (a stale call from an old screen must not resurrect
        unread messages); returns whether anything changed.
        """
        return (
            self._write(
                "UPDATE rooms SET last_read_rowid = ? WHERE id = ? AND last_read_rowid < ?",
                (up_to_rowid, room_id, up_to_rowid),
            )
            > 0
        )

    def unread_count(self, room_id: bytes, cap: int = UNREAD_CAP) -> int:
        """Messages in the room after its read mark, not counting our own, at most ``cap``.

        The cap bounds the work (it walks only unread rows) for rooms never opened.
        """
        row = self._one("SELECT last_read_rowid FROM rooms WHERE id = ?", (room_id,))
        return 0 if row is None else self._unread(room_id, int(row[0]), cap)

    def _unread(self, room_id: bytes, last_read_rowid: int, cap: int) -> int:
        params = (room_id, last_read_rowid, self.self_id, cap)
        return int(self._one(SQL_UNREAD, params)[0])

    # ------------------------------------------------------------- members

    def set_member(self, room_id: bytes, peer: bytes, role: MemberRole, state: MemberState) -> None:
        """Create or replace one peer's role and state in a room (the room must exist)."""
        self._write(
            "INSERT INTO members (room, peer, role, state) VALUES (?, ?, ?, ?)"
            " ON CONFLICT (room, peer) DO UPDATE SET role = excluded.role,"
            " state = excluded.state",
            (room_id, peer, role, state),
        )

    def get_member(self, room_id: bytes, peer: bytes) -> Member | None:
        """Return one peer's membership of a room, if any."""
        row = self._one(
            "SELECT room, peer, role, state FROM members WHERE room = ? AND peer = ?",
            (room_id, peer),
        )
        return None if row is None else Member(*row)

    def members(self, room_id: bytes) -> list[Member]:
        """Return every membership row of a room (all states), ordered by peer id."""
        rows = self._all(
            "SELECT room, peer, role, state FROM members WHERE room = ? ORDER BY peer",
            (room_id,),
        )
        return [Member(*r) for r in rows]
