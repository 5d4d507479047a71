"""Hole 4: silent TCP connections from many addresses must not lock real peers out.

The flood opens bare TCP connections from many loopback source addresses (127.0.0.0/8
is all loopback on Linux, so each address looks like another host on the LAN): 12
addresses with 8 each (every one at the per-address cap), or 39 with 2 each (none
stands out). Either way that is more than the 64 pending-handshake slots, and whenever
the node drops one, the flood opens it again, so the table stays full for as long as
the test runs. A real new peer and a contact coming back after a break must still be
online within 2 s of dialling.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable

import pytest

from p2pchat.node import Node, PeerOnline
from p2pchat.node.events import Event
from p2pchat.node.stream import EventStream
from tests.node.groups_helpers import befriend
from tests.nodes import make_node, wait_for

# (source addresses, connections from each): 12 "hosts" at the per-address cap, or 39
# hosts with 2 each, so that no address stands out; both exceed the 64 slots.
FEW_BUSY = ([f"127.0.0.{i}" for i in range(2, 14)], 8)
MANY_QUIET = ([f"127.0.0.{i}" for i in range(2, 41)], 2)
MAX_OPENS = 4000  # the flood stops by itself after this many connections...
MAX_SECONDS = 30.0  # ...or this long, whichever comes first
REOPEN_DELAY = 0.1  # keeps the churn (and the test's CPU) bounded
ONLINE_WITHIN = 2.0  # the promise of issue 10, hole 4


class SilentFlood:
    """Bare TCP connections that never speak, re-opened as soon as they are dropped."""

    def __init__(self, port: int, shape: tuple[list[str], int]) -> None:
        self.port = port
        self.sources, self.per_source = shape
        self.opens = 0
        self._tasks: list[asyncio.Task[None]] = []
        self._deadline = 0.0

    async def start(self) -> None:
        self._deadline = time.monotonic() + MAX_SECONDS
        self._tasks = [
            asyncio.create_task(self._hold(source))
            for source in self.sources
            for _ in range(self.per_source)
        ]

    async def _hold(self, source: str) -> None:
        while self.opens < MAX_OPENS and time.monotonic() < self._deadline:
            self.opens += 1
            try:
                reader, writer = await asyncio.open_connection(
                    "127.0.0.1", self.port, local_addr=(source, 0)
                )
            except OSError:
                await asyncio.sleep(REOPEN_DELAY)
                continue
            try:
                with contextlib.suppress(OSError):
                    await reader.read()  # returns when the node hangs up on us
            finally:
                writer.transport.abort()
            await asyncio.sleep(REOPEN_DELAY)

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)


@contextlib.asynccontextmanager
async def flooding(
    target: Node, shape: tuple[list[str], int] = FEW_BUSY
) -> AsyncIterator[SilentFlood]:
    """Flood ``target`` and wait until every pending-handshake slot is taken."""
    flood = SilentFlood(target.port, shape)
    await flood.start()
    listener = target.links.listener
    try:
        async with asyncio.timeout(10):
            # The handshake table emits no event: poll it, bounded by the timeout.
            while listener.pending < listener.limits.max_pending:  # noqa: ASYNC110
                await asyncio.sleep(0.01)
        yield flood
    finally:
        await flood.stop()


def still_full(node: Node) -> bool:
    """The flood still holds most slots (some of its sockets are being re-opened)."""
    listener = node.links.listener
    return listener.pending > listener.limits.max_pending // 2


async def both_online(a: Node, ea: EventStream, b: Node, eb: EventStream) -> None:
    """Both sides report the other online."""

    def is_online(peer: bytes) -> Callable[[Event], bool]:
        return lambda e: isinstance(e, PeerOnline) and e.peer_id == peer

    await asyncio.gather(wait_for(ea, is_online(b.me)), wait_for(eb, is_online(a.me)))


@pytest.fixture
async def victim() -> AsyncIterator[Node]:
    node = make_node("victim")
    await node.start()
    yield node
    await node.stop()


@pytest.mark.parametrize("shape", [FEW_BUSY, MANY_QUIET], ids=["12x8", "39x2"])
async def test_silent_flood_from_many_addresses_does_not_lock_out_a_new_peer(
    victim: Node, shape: tuple[list[str], int]
) -> None:
    newcomer = make_node("newcomer")
    await newcomer.start()
    try:
        async with flooding(victim, shape):
            ev, en = victim.subscribe(), newcomer.subscribe()
            newcomer.links.add_target("127.0.0.1", victim.port, "manual", victim.me)
            async with asyncio.timeout(ONLINE_WITHIN):
                await both_online(victim, ev, newcomer, en)
            # The flood was still on: the table stayed full throughout.
            assert still_full(victim)
    finally:
        await newcomer.stop()


async def test_silent_flood_from_many_addresses_does_not_lock_out_a_returning_contact(
    victim: Node,
) -> None:
    contact = make_node("contact")
    await contact.start()
    await befriend(victim, contact)
    await contact.stop()  # the break: the contact goes away...
    ev = victim.subscribe()
    async with flooding(victim):
        # ...and comes back (on a new port) while the flood runs. It dials the victim's
        # stored address by itself as it starts.
        contact = make_node("contact")
        ec = contact.subscribe()
        async with asyncio.timeout(ONLINE_WITHIN):
            await contact.start()
            await both_online(victim, ev, contact, ec)
        assert still_full(victim)
    await contact.stop()
