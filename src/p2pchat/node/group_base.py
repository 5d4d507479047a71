"""What every part of the group rooms shares: limits, errors, the membership caches.

``GroupService`` (node/groups.py) is assembled from parts: this base, history sync
(group_sync.py), the API and membership changes (group_api.py); it adds inbound
envelopes (ingest), receipts and the lifecycle.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING

from p2pchat.node.envelopes import split_ids
from p2pchat.node.errors import NodeError
from p2pchat.node.events import MessagesWithdrawn, SecurityWarning
from p2pchat.node.latest import LatestWins
from p2pchat.node.rooms import (
    KIND_SYSTEM,
    Membership,
    OpEntry,
    SystemBodyError,
    SystemOp,
    decode_system,
    resolve,
)
from p2pchat.store import Message, RoomSummary, Store
from p2pchat.wire import Envelope

if TYPE_CHECKING:
    from p2pchat.node.facade import NodeFacade

from p2pchat.node.group_heads import Heads

log = logging.getLogger(__name__)


# The end of the last "outside" range of a member who is no longer in the room.
VOID_END = 2**63 - 1
# How many missing envelopes one sync round pushes per room (the rest follows on the
# next round, when the peer reports its new heads).
MAX_PUSH = 20_000
PUSH_PAGE = 256
#: How long what we pushed to a member counts as on its way (GroupSync.in_flight).
PUSHED_TRUSTED_FOR = 10.0
# New group messages are announced (as heads) to other members after this delay.
ANNOUNCE_DELAY = 0.2


LEGACY_ROOM = (
    "this room was made by an older p2pchat: its history stays readable, but it can take "
    "no new messages or changes; create a new room and invite everyone again"
)


class GroupError(NodeError):
    """A group operation that cannot be done; the message is meant for people."""


class GroupBase:
    """State and membership caches every part of the group rooms uses."""

    # Set up by GroupService.__init__ (node/groups.py); declared here for the parts.
    node: NodeFacade
    withdrawn: dict[bytes, list[bytes]]
    co_members: frozenset[bytes]
    known_rooms: frozenset[bytes]
    room_mates: frozenset[bytes]
    _membership: dict[bytes, Membership]
    _pending: dict[bytes, dict[bytes, Envelope]]
    _pending_by: dict[bytes, bytes]
    _pushes: set[asyncio.Task[None]]
    _mates_by_room: dict[bytes, frozenset[bytes]]
    _push_queue: LatestWins[tuple[bytes, bytes], Heads]
    _pushed: dict[tuple[bytes, bytes], tuple[float, dict[bytes, int]]]
    _group_rooms: set[bytes] | None
    _announce_due: dict[bytes, frozenset[bytes]]
    _announcer: asyncio.TimerHandle | None
    _ticker: asyncio.Task[None] | None
    _warned_old: set[bytes]
    _held_back: dict[bytes, int]
    _old_version_warnings: list[SecurityWarning]

    def _warn_old_version(self, peer: bytes) -> None:
        """Say once per peer why its group messages are refused (it must update)."""
        if peer in self._warned_old:
            return
        self._warned_old.add(peer)
        name = self.node.peer_name(peer)
        self._old_version_warnings.append(
            SecurityWarning(
                peer,
                f"{name} runs an older p2pchat: its group-room messages are refused "
                "until it is updated (group rooms changed in protocol 2).",
            )
        )

    def _now_ms(self) -> int:
        """Wall-clock ms (GroupService reads it through node/groups.py's ``now_ms``)."""
        raise NotImplementedError

    # ------------------------------------------------------------------ membership

    def membership(self, store: Store, room: bytes) -> Membership:
        """Store thread: the room's membership, replayed from its system messages."""
        cached = self._membership.get(room)
        if cached is None:
            cached = resolve(room, op_entries(store.messages_of_kind(room, KIND_SYSTEM)))
            if cached.refused:
                log.info("room %s: %d changes refused", room.hex()[:8], len(cached.refused))
            self._membership[room] = cached
        return cached

    def shown(self, store: Store, room: bytes, rows: list[Message]) -> list[Message]:
        """Store thread: ``rows`` without the room changes that did not take effect."""
        if not any(r.kind == KIND_SYSTEM for r in rows):
            return rows
        applied = self.membership(store, room).applied
        return [r for r in rows if r.kind != KIND_SYSTEM or r.id in applied]

    def shown_page(
        self, store: Store, room: bytes, rows: list[Message], limit: int
    ) -> list[Message]:
        """Store thread: a page of ``rows`` as :meth:`shown`, never empty while older
        messages exist (a run of refused changes must not look like the room's start)."""
        shown = self.shown(store, room, rows)
        while not shown and len(rows) == limit:
            rows = store.messages_before(room, rows[0].cursor, limit, shown_only=True)
            shown = self.shown(store, room, rows)
        return shown

    def forget_caches(self) -> None:
        """Store thread: drop derived state (after a rollback); rebuilt on next use."""
        self._membership.clear()
        self._group_rooms = None

    def _refresh(self, store: Store, room: bytes) -> Membership:
        """Store thread: recompute membership and mirror it into the members table."""
        before = self._membership.pop(room, None)
        m = self.membership(store, room)
        if before is not None and before.applied - m.applied:
            self.withdrawn.setdefault(room, []).extend(before.applied - m.applied)
        self.co_members = self.co_members | frozenset(m.joined())
        self._set_mates(room, m)
        for peer, state in m.states.items():
            role = m.role_of(peer)
            store.set_member(room, peer, role, state)  # type: ignore[arg-type]
        if m.name:
            store.set_room_name(room, m.name)
        store.set_room_topic(room, m.topic)
        self._drop_outside_spans(store, room, m)
        return m

    def _set_mates(self, room: bytes, m: Membership) -> None:
        """Store thread: record ``room``'s members as mates only while we are joined."""
        joined = m.state_of(self.node.me) == "joined"
        self._mates_by_room[room] = frozenset(m.joined()) if joined else frozenset()
        self.room_mates = frozenset().union(*self._mates_by_room.values())

    def shown_summary(self, store: Store, summary: RoomSummary) -> RoomSummary:
        """Store thread: ``summary`` whose preview is never a change that did not count."""
        last = summary.last_message
        if last is None or last.kind != KIND_SYSTEM:
            return summary
        recent = store.latest_messages(summary.room.id, 20, shown_only=True)
        shown = self.shown(store, summary.room.id, recent)
        return dataclasses.replace(summary, last_message=shown[-1] if shown else None)

    @staticmethod
    def _skip_voids(store: Store, room: bytes, m: Membership, author: bytes) -> None:
        """Store thread: let the author's head pass over ranges where nothing counts."""
        for first, last in m.outside(author):
            if last < VOID_END:  # a gap before a later span of the author's
                store.skip_void(room, author, first, last)

    def _drop_outside_spans(self, store: Store, room: bytes, m: Membership) -> None:
        """Store thread: delete what others wrote outside their membership spans.

        A removal can arrive after messages its member wrote once removed (or
        concurrently, unseen by the remover): those must appear nowhere, here included.
        """
        gone: list[bytes] = []
        for peer in m.states:
            if peer != self.node.me:  # our own sequence must never get holes we would reuse
                for first, last in m.outside(peer):
                    gone += store.delete_seq_range(room, peer, first, last)
                self._skip_voids(store, room, m, peer)
        if gone:
            self.withdrawn.setdefault(room, []).extend(gone)

    def group_rooms(self, store: Store) -> set[bytes]:
        """Store thread: ids of every group room we know."""
        if self._group_rooms is None:
            self._group_rooms = set(store.room_ids("group"))
        return self._group_rooms

    def emit_withdrawn(self) -> None:
        """Loop thread: tell the UI which shown messages must go (after a store write)."""
        withdrawn, self.withdrawn = self.withdrawn, {}
        for room, ids in withdrawn.items():
            self.node.core.emit(MessagesWithdrawn(room, tuple(ids)))


def op_of(msg: Message) -> tuple[str, bytes | None] | None:
    try:
        op = decode_system(msg.body)
    except SystemBodyError:
        return None
    return op.op, op.peer


def decoded_op(body: bytes) -> SystemOp | None:
    try:
        return decode_system(body)
    except SystemBodyError:
        return None


def op_entries(messages: Sequence[Message | Envelope]) -> list[OpEntry]:
    """The resolvable operations among system messages (protocol 2, well-formed)."""
    out = []
    for msg in messages:
        deps = msg.deps if isinstance(msg, Envelope) else stored_deps(msg)
        op = decoded_op(msg.body)
        if op is not None and deps is not None:
            out.append(OpEntry(msg.id, msg.author, msg.seq, deps, op))
    return out


def stored_deps(msg: Message) -> tuple[bytes, ...] | None:
    return None if msg.deps is None else split_ids(msg.deps)
