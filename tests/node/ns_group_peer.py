"""A p2pchat node driven over stdin/stdout, for group-room tests across network namespaces.

Run as a script inside a namespace (``Netns.popen_python(script=...)``) with
``--profile NAME --interface IFACE``; ``P2PCHAT_HOME`` comes from the environment. The
node binds every address of its namespace and finds the others with real mDNS on
``IFACE``. A test can ``kill -9`` it and start it again on the same profile.

Line protocol, one JSON object per line:

- stdout ``{"ev": "ready", "peer": HEX, "port": N}`` once the node is up, then
  ``{"ev": "<EventName>"}`` for every event the node emits about peers or rooms (so a test
  can wait for "something changed" instead of sleeping), and ``{"re": N, "ok": RESULT}`` or
  ``{"re": N, "error": TEXT}`` answering the command numbered N;
- stdin ``{"re": N, "cmd": NAME, ...arguments}``; commands run concurrently, each answered
  once: ``accept`` (peers), ``wait_online`` / ``wait_offline`` (peers, seconds),
  ``create`` (name), ``invite`` (room, peer), ``wait_invited`` (room, seconds), ``join``
  (room), ``send`` (room, texts: sent one after the other; answers their ids), ``remove``
  (room, peer), ``snapshot`` (room: name, members and displayed history).

It stops cleanly when stdin closes, and by itself after ``--lifetime`` seconds, so a
crashed test never leaves it running.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
from collections.abc import Awaitable, Callable
from dataclasses import replace
from typing import Any

from p2pchat.node import Node
from p2pchat.node.config import NodeConfig
from p2pchat.node.events import (
    MessageAdded,
    PeerOffline,
    PeerOnline,
    RoomChanged,
    RoomInvitation,
)
from p2pchat.node.stream import EventStream
from p2pchat.profile import open_profile

# Test timers (as tests/nodes.py): a link across a cut network is declared dead after a
# few seconds and redialled quickly once the network heals.
CONFIG = NodeConfig(
    bind="0.0.0.0",  # the namespace's own private link only
    discovery=True,
    keepalive_interval=2.0,
    dead_after=6.0,
    dial_backoff_initial=0.1,
    dial_backoff_max=1.0,
    handshake_deadline=5.0,
)
WATCHED = (MessageAdded, PeerOffline, PeerOnline, RoomChanged, RoomInvitation)


def say(obj: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


async def wait_on(node: Node, check: Callable[[], Awaitable[bool]], within: float) -> None:
    """Wait (on the node's events) until ``await check()`` is true, at most ``within`` s."""
    events = node.subscribe()
    try:
        async with asyncio.timeout(within):
            while not await check():
                await events.get()
    finally:
        events.close()


class Driver:
    """Answers the commands of the line protocol for one node."""

    def __init__(self, node: Node) -> None:
        self.node = node

    async def accept(self, peers: list[str]) -> None:
        for peer in peers:
            await self.node.accept(bytes.fromhex(peer))

    async def wait_online(self, peers: list[str], seconds: float) -> None:
        ids = [bytes.fromhex(p) for p in peers]

        async def all_online() -> bool:
            return all(self.node.links.is_online(p) for p in ids)

        await wait_on(self.node, all_online, seconds)

    async def wait_offline(self, peers: list[str], seconds: float) -> None:
        ids = [bytes.fromhex(p) for p in peers]

        async def all_offline() -> bool:
            return not any(self.node.links.is_online(p) for p in ids)

        await wait_on(self.node, all_offline, seconds)

    async def create(self, name: str) -> str:
        return (await self.node.groups.create_room(name)).hex()

    async def invite(self, room: str, peer: str) -> None:
        await self.node.groups.invite(bytes.fromhex(room), bytes.fromhex(peer))

    async def wait_invited(self, room: str, seconds: float) -> None:
        rid = bytes.fromhex(room)

        async def invited() -> bool:
            return any(i.room == rid for i in await self.node.groups.invitations())

        await wait_on(self.node, invited, seconds)

    async def join(self, room: str) -> None:
        await self.node.groups.join(bytes.fromhex(room))

    async def send(self, room: str, texts: list[str]) -> list[str]:
        rid = bytes.fromhex(room)
        return [(await self.node.send_message(rid, text)).id.hex() for text in texts]

    async def remove(self, room: str, peer: str) -> None:
        await self.node.groups.remove(bytes.fromhex(room), bytes.fromhex(peer))

    async def snapshot(self, room: str) -> dict[str, Any]:
        rid = bytes.fromhex(room)
        members = await self.node.groups.members(rid)
        history = await self.node.history(rid, limit=100_000)
        names = [r.name for r in await self.node.list_rooms() if r.room_id == rid]
        return {
            "name": names[0] if names else None,
            "members": sorted([m.peer_id.hex(), m.role, m.state] for m in members),
            "history": [
                [m.id.hex(), m.author.hex(), m.kind, self.node.display_text(m)] for m in history
            ],
        }


async def run_command(driver: Driver, request: dict[str, Any]) -> None:
    number = request.pop("re")
    name = request.pop("cmd")
    try:
        method = getattr(driver, name)
        result = await method(**request)
    except Exception as exc:  # reported to the test, which decides
        say({"re": number, "error": f"{type(exc).__name__}: {exc}"})
    else:
        say({"re": number, "ok": result})


async def report(stream: EventStream) -> None:
    async for event in stream:
        if isinstance(event, WATCHED):
            say({"ev": type(event).__name__})


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--profile", required=True)
    parser.add_argument("--interface", required=True)
    parser.add_argument("--lifetime", type=float, default=180.0)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)

    profile = open_profile(args.profile)
    if not profile.has_display_name:
        profile.set_display_name(args.profile)
    node = Node(profile, replace(CONFIG, interfaces=(args.interface,)))
    stream = node.subscribe()
    await node.start()
    driver = Driver(node)
    tasks: set[asyncio.Task[None]] = {asyncio.create_task(report(stream))}
    say({"ev": "ready", "peer": node.me.hex(), "port": node.port})

    loop = asyncio.get_running_loop()
    stdin = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(stdin), sys.stdin)
    try:
        async with asyncio.timeout(args.lifetime):
            while line := await stdin.readline():
                task = asyncio.create_task(run_command(driver, json.loads(line)))
                tasks.add(task)
                task.add_done_callback(tasks.discard)
    except TimeoutError:
        pass
    for task in list(tasks):
        task.cancel()
    await node.stop()
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
