"""Links: one connection per pair when both dial at once; silent links are dropped."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import time
from collections.abc import AsyncIterator

from p2pchat.node import EventStream, Node, PeerOffline, PeerOnline
from p2pchat.node.links import DIAL_RECHECK_SECONDS
from p2pchat.wire import Ping
from tests.nodes import WAIT, make_node, wait_for
from tests.proxy import FaultProxy


async def test_simultaneous_dials_leave_exactly_one_shared_connection() -> None:
    for round_ in range(5):  # the race goes differently each time
        a, b = make_node(f"a{round_}"), make_node(f"b{round_}")
        await a.start()
        await b.start()
        try:
            ea, eb = a.subscribe(), b.subscribe()
            a.links.add_target("127.0.0.1", b.port, "manual", b.me)
            b.links.add_target("127.0.0.1", a.port, "manual", a.me)
            await wait_for(ea, lambda e: isinstance(e, PeerOnline))
            await wait_for(eb, lambda e: isinstance(e, PeerOnline))
            # Both sides settle on the same connection (same handshake) and it carries chat.
            await a.accept(b.me)
            await b.accept(a.me)
            sent = await a.send_text(b.me, "one link")
            assert await a.wait_for_status(sent.id, 2, WAIT)
            link_a, link_b = a.links.links[b.me].conn, b.links.links[a.me].conn
            assert link_a.remote.handshake_hash == link_b.remote.handshake_hash
            assert link_a.initiator != link_b.initiator
            assert len(a.links.links) == 1
            assert len(b.links.links) == 1
        finally:
            await a.stop()
            await b.stop()


async def test_a_stalled_link_is_dropped_and_redialled() -> None:
    a, b = make_node("a", dead_after=1.5, keepalive_interval=0.5), make_node("b")
    await a.start()
    await b.start()
    proxy = await FaultProxy("127.0.0.1", b.port).start()
    try:
        events = a.subscribe()
        a.links.add_target("127.0.0.1", proxy.port, "manual", b.me)
        await wait_for(events, lambda e: isinstance(e, PeerOnline))
        proxy.paused.clear()  # the network stalls: nothing gets through either way
        offline = await wait_for(events, lambda e: isinstance(e, PeerOffline), within=10)
        assert "stopped answering" in offline.reason
        proxy.paused.set()
        await wait_for(events, lambda e: isinstance(e, PeerOnline), within=10)
    finally:
        await proxy.stop()
        await a.stop()
        await b.stop()


@contextlib.asynccontextmanager
async def a_linked_to_b(**a_config: object) -> AsyncIterator[tuple[Node, Node, EventStream]]:
    """Two started nodes, ``a`` dialled ``b`` and the link is up; ``a``'s events."""
    a, b = make_node("a", **a_config), make_node("b")
    await a.start()
    await b.start()
    try:
        events = a.subscribe()
        a.links.add_target("127.0.0.1", b.port, "manual", b.me)
        await wait_for(events, lambda e: isinstance(e, PeerOnline))
        yield a, b, events
    finally:
        await a.stop()
        await b.stop()


async def test_the_dialler_sleeps_while_every_peer_is_online_and_wakes_when_one_drops() -> None:
    """Targets of connected peers are not waited for: before, their long-past dial
    times woke every node's dial loop 20 times a second for as long as it was online."""
    async with a_linked_to_b() as (a, b, events):
        b_address = ("127.0.0.1", b.port)
        now = time.monotonic()
        assert a.links._next_look(now) == DIAL_RECHECK_SECONDS
        await b.stop()
        await wait_for(events, lambda e: isinstance(e, PeerOffline))
        # b's address counts again: the loop looks when its redial time comes.
        target = a.links.targets[b_address]
        assert a.links._next_look(now) == max(0.05, target.next_at - now)
        assert a.links._next_look(now) < DIAL_RECHECK_SECONDS


async def test_write_all_reaches_the_connected_peers_and_names_them() -> None:
    async with a_linked_to_b() as (a, b, _):
        stranger = make_node("c").me
        before = a.links.links[b.me].conn.frames_sent
        assert a.links.write_all([stranger, b.me], Ping(n=7)) == [b.me]
        assert a.links.links[b.me].conn.frames_sent == before + 1


async def test_a_failed_dial_is_retried_at_its_backoff_time_while_other_peers_are_online() -> None:
    """The dial loop sleeps long while every peer is online; a dial that fails sets its
    next time while the loop sleeps, so it must wake the loop, or the retries after a
    peer's restart come at the loop's 5 s look instead of 0.2, 0.4, 0.8 s later."""
    async with a_linked_to_b(dial_backoff_initial=0.2) as (a, _, _):
        with socket.socket() as probe:  # a port nothing listens on: refused at once
            probe.bind(("127.0.0.1", 0))
            closed_port = probe.getsockname()[1]
        a.links.add_target("127.0.0.1", closed_port, "manual", make_node("c").me)
        target = a.links.targets[("127.0.0.1", closed_port)]
        # A failed dial emits no event to wait on: its count is looked at, and the bound
        # (under the loop's 5 s look) is what fails when the retries wait for that look.
        async with asyncio.timeout(DIAL_RECHECK_SECONDS - 1):
            while target.failures < 3:  # noqa: ASYNC110
                await asyncio.sleep(0.05)
