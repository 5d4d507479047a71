"""History sync between group members: heads exchanged, what is missing pushed (original
signatures intact), new messages announced; bounded per round.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections import defaultdict
from collections.abc import Sequence
from typing import TYPE_CHECKING

from p2pchat.node.edits import relay_page
from p2pchat.node.envelopes import row_to_envelope
from p2pchat.node.rooms import KIND_SYSTEM
from p2pchat.store import Message, Store
from p2pchat.transport import TransportError
from p2pchat.wire import MAX_HEADS, MessageFrame, SyncHeads

if TYPE_CHECKING:
    from p2pchat.node.inbox import Inbound

from p2pchat.node.group_base import (
    ANNOUNCE_DELAY,
    MAX_PUSH,
    PUSH_PAGE,
    PUSHED_TRUSTED_FOR,
    GroupBase,
)
from p2pchat.node.group_heads import Heads, heads_frames

log = logging.getLogger(__name__)


class GroupSync(GroupBase):
    """Sync of group rooms with other members (see the module docstring)."""

    # ------------------------------------------------------------------ sync

    async def on_link_up(self, peer: bytes) -> None:
        """Tell a newly connected member what we hold in every room we share."""
        node = self.node
        # What we pushed on an earlier link may have been lost with it.
        for key in [k for k in self._pushed if k[0] == peer]:
            del self._pushed[key]

        def heads(store: Store) -> list[tuple[bytes, dict[bytes, int]]]:
            out = []
            for room in self.group_rooms(store):
                m = self.membership(store, room)
                if m.state_of(node.me) == "joined" and m.state_of(peer) == "joined":
                    out.append((room, store.heads(room)))
            return out

        for room, room_heads in await node.core.read(heads):
            for frame in heads_frames(room, room_heads):
                node.links.write(peer, frame)

    async def sync_room_with_members(
        self, room: bytes, skip: frozenset[bytes] = frozenset()
    ) -> None:
        """Send our heads for ``room`` to every connected member not in ``skip``."""
        node = self.node
        if skip and all(peer in skip for peer in node.links.links):
            return  # everyone we could tell has it all already: skip the store trip

        def load(store: Store) -> tuple[list[bytes], dict[bytes, int]]:
            m = self.membership(store, room)
            return [p for p in m.joined() if p != node.me], store.heads(room)

        members, room_heads = await node.core.read(load)
        told = [peer for peer in members if peer not in skip]
        for frame in heads_frames(room, room_heads):
            node.links.write_all(told, frame)

    async def on_sync_heads(self, peer: bytes, frame: SyncHeads) -> None:
        """Push to ``peer`` what it lacks in the room, in a task (never block reading).

        At most one push runs per (peer, room); heads that arrive meanwhile replace the
        waiting ones, so a flood of ``sync`` frames costs one push, not one per frame.
        If ``peer`` holds more than we do, we answer with our heads so it pushes to us:
        without that, a change reached a member only when that member next announced its
        own heads (every ``sync_interval``), and joins took many seconds to spread. An
        answer goes only to heads that show more than we hold, and heads show nothing new
        once the push lands, so two members never ping-pong.
        """
        key = (peer, frame.room)
        heads = Heads(frame.room, dict(frame.heads), complete=len(frame.heads) < MAX_HEADS)
        self._push_queue.offer(key, heads)

    async def _push(self, key: tuple[bytes, bytes], frame: Heads) -> float:
        """Send what ``peer`` lacks above its heads: membership first, then page by page."""
        await self._push_to(key[0], frame)
        return 0.0

    async def _push_to(self, peer: bytes, frame: Heads) -> None:
        node = self.node
        room = frame.room
        theirs = frame.heads
        pushed = self.in_flight((peer, room))

        def plan(
            store: Store,
        ) -> tuple[list[Message], list[tuple[bytes, int, int]], dict[bytes, int] | None]:
            if store.room_kind(room) != "group":
                return [], [], None
            m = self.membership(store, room)
            if m.state_of(node.me) is None or m.state_of(peer) != "joined":
                return [], [], None
            ours = store.heads(room)
            # If the peer holds more than we do, we answer with our heads so it pushes
            # to us: without that a change reached a member only when that member next
            # announced its own heads (every sync_interval), and joins took many seconds
            # to spread. Also when we were removed: a member who still counts us in
            # pushes us the changes that may undo it.
            behind = any(head > ours.get(a, 0) for a, head in theirs.items())
            answer = ours if behind else None
            if m.state_of(node.me) != "joined":
                return [], [], answer  # removed or departed members push nothing
            # From a partial summary (one of several full frames), only authors it names.
            # Nor what we pushed moments ago on this link (in order on one connection,
            # it is on its way or in the member's queue): heads it wrote before all of it
            # was stored, on connecting and again mid-push, had a catch-up of 10,000
            # pushed two and a half times.
            start = {a: max(theirs.get(a, 0), pushed.get(a, 0)) for a in ours}
            ranges = [
                (author, start[author] + 1, head)
                for author, head in ours.items()
                if head > start[author] and (frame.complete or author in theirs)
            ]
            if not ranges:
                return [], [], answer
            # The receiver checks every author against the membership at its position,
            # so the (few) system messages it lacks go first.
            system = [
                msg
                for msg in store.messages_of_kind(room, KIND_SYSTEM)
                if msg.seq > theirs.get(msg.author, 0)
            ]
            return system, ranges, answer

        system, ranges, answer = await node.core.read(plan)
        if answer is not None:
            for heads_frame in heads_frames(room, answer):
                node.links.write(peer, heads_frame)
        sent = 0
        for msg in system:
            sent += self._send_row(peer, msg)
        for author, start, end in ranges:
            cursor = start
            while cursor <= end and sent < MAX_PUSH:
                count = min(PUSH_PAGE, end - cursor + 1)
                page, last = await node.core.read(
                    functools.partial(
                        relay_chunk, room=room, author=author, start=cursor, count=count
                    )
                )
                if last is None:
                    break
                for msg in page:
                    if msg.kind != KIND_SYSTEM:
                        sent += self._send_row(peer, msg)
                cursor = last + 1
                self._note_pushed((peer, room), author, last)
                await node.links.flush(peer)
                if not node.links.is_online(peer):
                    return

    def announce_soon(self, holders: dict[bytes, frozenset[bytes]]) -> None:
        """Announce our heads of these rooms shortly, except to peers that hold it all.

        ``holders`` maps a room to the peers that sent us every message we just stored
        in it: they have what we would announce, so telling them costs each side a store
        trip for nothing. In a room whose author reaches every member directly, that is
        every announcement a new message would cause.
        """
        for room, peers in holders.items():
            due = self._announce_due.get(room)
            self._announce_due[room] = peers if due is None else due & peers
        if self._announcer is None:
            loop = asyncio.get_running_loop()
            self._announcer = loop.call_later(ANNOUNCE_DELAY, self._fire_announce)

    def _fire_announce(self) -> None:
        self._announcer = None
        rooms, self._announce_due = self._announce_due, {}
        task = asyncio.ensure_future(self._announce(rooms))
        self._pushes.add(task)
        task.add_done_callback(self._pushes.discard)

    async def _announce(self, rooms: dict[bytes, frozenset[bytes]]) -> None:
        for room, holders in rooms.items():
            await self.sync_room_with_members(room, skip=holders)

    def in_flight(self, key: tuple[bytes, bytes]) -> dict[bytes, int]:
        """Per author, the highest seq pushed to this member on this link just now.

        Trusted only for PUSHED_TRUSTED_FOR seconds after the last page: a member that
        dropped some of it (held back, over a quota) asks again later and gets it then.
        """
        entry = self._pushed.get(key)
        if entry is None or time.monotonic() - entry[0] > PUSHED_TRUSTED_FOR:
            self._pushed.pop(key, None)
            return {}
        return entry[1]

    def _note_pushed(self, key: tuple[bytes, bytes], author: bytes, seq: int) -> None:
        entry = self._pushed.get(key)
        upto = entry[1] if entry is not None else {}
        upto[author] = max(upto.get(author, 0), seq)
        self._pushed[key] = (time.monotonic(), upto)

    def _send_row(self, peer: bytes, msg: Message) -> int:
        if not self.node.links.write(peer, MessageFrame(env=row_to_envelope(msg))):
            raise TransportError("link closed")
        return 1


def holders_of(
    stored: Sequence[Message], items: Sequence[Inbound]
) -> dict[bytes, frozenset[bytes]]:
    """Per room of ``stored``, the peers that sent us every one of those messages."""
    senders: dict[bytes, set[bytes]] = defaultdict(set)
    for item in items:
        senders[item.env.id].add(item.peer)
    out: dict[bytes, frozenset[bytes]] = {}
    for msg in stored:
        peers = frozenset(senders.get(msg.id, ()))
        out[msg.room] = peers if msg.room not in out else out[msg.room] & peers
    return out


def relay_chunk(
    store: Store, *, room: bytes, author: bytes, start: int, count: int
) -> tuple[list[Message], int | None]:
    """A page of an author's envelopes to relay, and the last seq it covers."""
    rows = store.messages_by_seq(room, author, start, count)
    return relay_page(store, rows), (rows[-1].seq if rows else None)
