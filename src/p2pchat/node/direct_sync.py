"""Anti-entropy for one-to-one rooms: what one side lost, the other gives back.

A crash that loses the end of the store's write-ahead log can lose messages the other
side already saw as delivered. Group rooms recover from any member; a direct room has
only two, so each tells the other what it holds (per-author heads, as groups do) when
a link comes up and every ``sync_interval``, and the other pushes what is missing: its
own messages, and the asker's own messages that the asker lost. Our next seq is never
below what the other side holds of ours, so a lost tail is never written over.

Only contacts take part: a stranger learns nothing and is sent nothing.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from typing import TYPE_CHECKING

from p2pchat.identity import short_id
from p2pchat.node.edits import relay_page
from p2pchat.node.envelopes import row_to_envelope
from p2pchat.node.latest import LatestWins
from p2pchat.node.periodic import every_connected_peer
from p2pchat.store import Message, Store
from p2pchat.transport import TransportError
from p2pchat.wire import MessageFrame, SyncHeads

if TYPE_CHECKING:
    from p2pchat.node.facade import NodeFacade

log = logging.getLogger(__name__)

#: Envelopes pushed per page, and per sync round in all (the rest follows next round).
PUSH_PAGE = 256
MAX_PUSH = 20_000
#: How far above what we hold of our own messages a contact's claim is believed: a crash
#: loses the last moments of writes, never this many. Believing more would let a contact
#: push our next seq to the integer limit, where every later send fails.
MAX_LOST_TAIL = 65_536


class DirectSync:
    """Heads exchange and pushes for the direct rooms of one node."""

    def __init__(self, node: NodeFacade) -> None:
        self.node = node
        self._tasks: set[asyncio.Task[None]] = set()
        self._pushes: LatestWins[bytes, SyncHeads] = LatestWins(
            "direct sync", self._push, self._tasks
        )
        self._ticker: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._ticker = asyncio.ensure_future(
            every_connected_peer(self.node, self.on_link_up, "direct sync")
        )

    async def stop(self) -> None:
        for task in [*self._tasks, *([self._ticker] if self._ticker else [])]:
            task.cancel()

    async def on_link_up(self, peer: bytes) -> None:
        """Tell a contact what we hold of our room with it."""
        node = self.node
        if not node.core.contacts.is_contact(peer):
            return
        room = node.direct_room(peer)
        heads = await node.core.read(lambda s: s.heads(room) if s.get_room(room) else {})
        mine = {a: h for a, h in heads.items() if a in (node.me, peer)}
        node.links.write(peer, SyncHeads(room=room, heads=tuple(sorted(mine.items()))))

    def on_sync_heads(self, peer: bytes, frame: SyncHeads) -> None:
        """A contact's heads for our room: push what it lacks (in a task, coalesced)."""
        if self.node.core.contacts.is_contact(peer) and frame.room == self.node.direct_room(peer):
            self._pushes.offer(peer, frame)

    async def _push(self, peer: bytes, frame: SyncHeads) -> float:
        node = self.node
        room = frame.room
        theirs = dict(frame.heads)

        def plan(store: Store) -> tuple[list[tuple[bytes, int, int]], dict[bytes, int]]:
            if store.get_room(room) is None:
                return [], {}
            ours = store.heads(room)
            # Never write a seq the other side already holds of ours (our tail was lost).
            claimed = theirs.get(node.me, 0)
            believed = min(claimed, ours.get(node.me, 0) + MAX_LOST_TAIL)
            if believed < claimed:
                log.info(
                    "%s claims to hold our seq %d in our room: not believed",
                    short_id(peer),
                    claimed,
                )
            node.raise_seq_floor(store, room, believed)
            ranges = [
                (author, theirs.get(author, 0) + 1, ours.get(author, 0))
                for author in (node.me, peer)
                if ours.get(author, 0) > theirs.get(author, 0)
            ]
            return ranges, ours

        ranges, ours = await node.core.read(plan)
        if any(head > ours.get(author, 0) for author, head in theirs.items()):
            await self.on_link_up(peer)  # it holds more than we do: it pushes it back
        sent = 0
        for author, start, end in ranges:
            cursor = start
            while cursor <= end and sent < MAX_PUSH:
                page, last = await node.core.read(
                    functools.partial(
                        _page, room=room, author=author, start=cursor, count=PUSH_PAGE
                    )
                )
                if last is None:
                    break
                for msg in page:
                    if not node.links.write(peer, MessageFrame(env=row_to_envelope(msg))):
                        raise TransportError("link closed")
                    sent += 1
                cursor = last + 1
                await node.links.flush(peer)
        return 0.0


def _page(
    store: Store, *, room: bytes, author: bytes, start: int, count: int
) -> tuple[list[Message], int | None]:
    """A page of an author's envelopes to push, and the last seq it covers."""
    rows = store.messages_by_seq(room, author, start, count)
    return relay_page(store, rows), (rows[-1].seq if rows else None)
