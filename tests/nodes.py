"""Helpers to run real nodes in-process on loopback for integration tests."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import replace

from p2pchat.node.config import NodeConfig
from p2pchat.node.events import Event, PeerOnline
from p2pchat.node.service import Node
from p2pchat.node.stream import EventStream
from p2pchat.profile import open_profile

WAIT = 15.0

# Fast timers so tests about reconnects and keepalive finish quickly; no mDNS.
TEST_CONFIG = NodeConfig(
    bind="127.0.0.1",
    discovery=False,
    keepalive_interval=2.0,
    dead_after=6.0,
    dial_backoff_initial=0.1,
    dial_backoff_max=1.0,
    handshake_deadline=5.0,
)


def make_node(name: str, *, peers: tuple[tuple[str, int], ...] = (), **overrides: object) -> Node:
    """A node for profile ``name`` (under the test's P2PCHAT_HOME), not started yet."""
    profile = open_profile(name)
    if not profile.has_display_name:
        profile.set_display_name(name)
    config = replace(TEST_CONFIG, peers=peers, **overrides)  # type: ignore[arg-type]
    return Node(profile, config)


async def wait_for(
    stream: EventStream, predicate: Callable[[Event], bool], within: float = WAIT
) -> Event:
    """The next event on ``stream`` matching ``predicate``, or TimeoutError."""
    async with asyncio.timeout(within):
        return await stream.next_matching(predicate)


async def connected_pair(a: Node, b: Node) -> None:
    """Make ``a`` dial ``b`` and wait until both see each other online."""
    sa, sb = a.subscribe(), b.subscribe()
    try:
        if not a.links.is_online(b.me):
            a.links.add_target("127.0.0.1", b.port, "manual", b.me)
        if not a.links.is_online(b.me):
            await wait_for(sa, lambda e: isinstance(e, PeerOnline) and e.peer_id == b.me)
        if not b.links.is_online(a.me):
            await wait_for(sb, lambda e: isinstance(e, PeerOnline) and e.peer_id == a.me)
    finally:
        sa.close()
        sb.close()


async def connected_pair_by_address(a: Node, host: str, port: int, peer: bytes) -> None:
    """Make ``a`` dial ``peer`` at ``host:port`` (another process) and wait until online."""
    events = a.subscribe()
    try:
        if not a.links.is_online(peer):
            a.links.add_target(host, port, "manual", peer)
            await wait_for(events, lambda e: isinstance(e, PeerOnline) and e.peer_id == peer)
    finally:
        events.close()


async def stop_all(nodes: list[Node]) -> None:
    """Stop every node, in order."""
    for node in nodes:
        await node.stop()
