"""The inbound work queue: one FIFO per peer, served round-robin, bounded per peer.

With a single queue for everyone, a peer sending at full speed filled it with thousands
of large messages and every other peer's message waited behind them (seconds). Here
each peer has its own queue; a batch takes one item from each waiting peer in turn, up
to a byte budget per peer, so another peer's message waits for at most one small batch.
A peer whose queued work exceeds ``peer_bytes`` makes :meth:`FairInbox.put` wait: its
connection's read loop, which calls ``put``, stops reading, and TCP flow control slows
the sender instead of us buffering its flood. One peer's items keep their arrival order.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from p2pchat.wire import Envelope, SyncHeads

T = TypeVar("T")


@dataclass
class Inbound:
    """An envelope from a peer, queued in arrival order."""

    peer: bytes
    env: Envelope


@dataclass
class SyncRequest:
    """A peer's heads for a room, queued behind the envelopes that came before it."""

    peer: bytes
    heads: SyncHeads


@dataclass
class _PeerQueue(Generic[T]):
    items: deque[tuple[T, int]] = field(default_factory=deque)
    queued_bytes: int = 0
    space: asyncio.Event = field(default_factory=asyncio.Event)


class FairInbox(Generic[T]):
    """Per-peer queues of inbound work; see the module docstring (loop thread only)."""

    def __init__(self, peer_bytes: int) -> None:
        self.peer_bytes = max(1, peer_bytes)
        self._queues: dict[bytes, _PeerQueue[T]] = {}
        # Peers with queued items, in the order they will next be served.
        self._turns: deque[bytes] = deque()
        self._nonempty = asyncio.Event()
        self._unfinished = 0
        self._idle = asyncio.Event()
        self._idle.set()
        # Closed when the node stops: nobody waits any more (read loops must end).
        self._closed = asyncio.Event()

    def queued_bytes(self, peer: bytes) -> int:
        """Work queued from ``peer`` and not yet taken."""
        queue = self._queues.get(peer)
        return queue.queued_bytes if queue is not None else 0

    def empty(self) -> bool:
        """True when nothing waits to be taken."""
        return not self._turns

    async def put(self, peer: bytes, item: T, size: int) -> None:
        """Queue ``item`` (``size`` bytes of work) from ``peer``; wait while it has too much.

        An item is always accepted into an empty queue, whatever its size.
        """
        queue = self._queues.get(peer)
        while queue is not None and queue.queued_bytes >= self.peer_bytes and not self.closed:
            queue.space.clear()
            await queue.space.wait()
            queue = self._queues.get(peer)
        if queue is None:
            queue = self._queues[peer] = _PeerQueue()
        if not queue.items:
            self._turns.append(peer)
        queue.items.append((item, size))
        queue.queued_bytes += size
        self._unfinished += 1
        self._idle.clear()
        self._nonempty.set()

    async def pause(self, seconds: float) -> None:
        """Wait ``seconds`` (a peer over its rate is not read meanwhile), or until closed."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(seconds):
                await self._closed.wait()

    @property
    def closed(self) -> bool:
        """True once :meth:`close` was called."""
        return self._closed.is_set()

    def close(self) -> None:
        """Stop making anyone wait: pending and later ``put`` and ``pause`` return at once."""
        self._closed.set()
        for queue in self._queues.values():
            queue.space.set()

    async def take(self, limit: int, peer_budget: int) -> list[T]:
        """Wait for work; return up to ``limit`` items, one per waiting peer in turn.

        Each peer contributes at most ``peer_budget`` bytes of work to the batch (but
        always its next item): a batch, and so the wait of whoever is in the next one,
        stays small however much one peer has queued.
        """
        while not self._turns:
            self._nonempty.clear()
            await self._nonempty.wait()
        batch: list[T] = []
        taken: dict[bytes, int] = {}
        turns = self._turns
        later: list[bytes] = []  # peers over their budget for this batch
        while turns and len(batch) < limit:
            peer = turns.popleft()
            queue = self._queues[peer]
            item, size = queue.items.popleft()
            batch.append(item)
            queue.queued_bytes -= size
            taken[peer] = taken.get(peer, 0) + size
            if not queue.items:
                del self._queues[peer]
            elif taken[peer] >= peer_budget:
                later.append(peer)
            else:
                turns.append(peer)
            queue.space.set()  # a waiting put re-checks (and finds its queue anew)
        turns.extend(later)
        return batch

    def done(self, count: int) -> None:
        """``count`` taken items are finished (stored, refused or failed)."""
        self._unfinished = max(0, self._unfinished - count)
        if not self._unfinished:
            self._idle.set()

    async def join(self) -> None:
        """Wait until every item put so far is finished."""
        await self._idle.wait()


__all__ = ["FairInbox"]
