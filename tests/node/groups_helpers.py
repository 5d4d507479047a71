"""Helpers for group-room tests: meshes of befriended nodes and formed rooms."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from p2pchat.node import MessageAdded, Node, RoomChanged
from p2pchat.node.events import RoomInvitation
from tests.nodes import WAIT, connected_pair, make_node, wait_for


async def befriend(a: Node, b: Node) -> None:
    """Connect two nodes and make each a contact of the other."""
    await connected_pair(a, b)
    await a.accept(b.me)
    await b.accept(a.me)


async def start_nodes(names: list[str], **overrides: object) -> list[Node]:
    nodes = [make_node(n, **overrides) for n in names]
    for node in nodes:
        await node.start()
    return nodes


async def mesh(nodes: list[Node]) -> None:
    """Every pair connected and befriended."""
    for i, a in enumerate(nodes):
        for b in nodes[i + 1 :]:
            await befriend(a, b)


async def wait_until(node: Node, check: Callable[[], object], within: float = WAIT) -> None:
    """Wait (on the node's events, never on time) until ``await check()`` is true."""
    events = node.subscribe()
    try:
        async with asyncio.timeout(within):
            while not await check():  # type: ignore[misc]
                await events.get()
    finally:
        events.close()


async def joined_count(node: Node, room: bytes) -> int:
    return sum(1 for m in await node.groups.members(room) if m.state == "joined")


async def form_room(owner: Node, members: list[Node], name: str = "team") -> bytes:
    """Owner creates a room and every member accepts the invitation."""
    room = await owner.groups.create_room(name)
    for member in members:
        events = member.subscribe()
        await owner.groups.invite(room, member.me)
        await wait_for(events, lambda e: isinstance(e, RoomInvitation) and e.room == room)
        events.close()
        await member.groups.join(room)
    everyone = [owner, *members]
    # Every join reaches every member through the owner: big rooms on one loaded
    # machine (50 nodes in one process) need longer than one message's wait.
    within = WAIT + 0.5 * len(everyone)
    for node in everyone:
        await wait_until(node, lambda n=node: _has_n(n, room, len(everyone)), within)
    return room


async def _has_n(node: Node, room: bytes, n: int) -> bool:
    try:
        return await joined_count(node, room) == n
    except Exception:
        return False


async def texts(node: Node, room: bytes) -> list[str]:
    return [m.body.decode() for m in await node.history(room, limit=100_000) if m.kind == "text"]


async def wait_texts(node: Node, room: bytes, n: int, within: float = 60) -> None:
    async def enough() -> bool:
        return len(await texts(node, room)) >= n

    await wait_until(node, enough, within)


__all__ = ["MessageAdded", "RoomChanged"]
