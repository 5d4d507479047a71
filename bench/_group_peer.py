"""Members of a group room for ``bench/groups.py``, run in a child process (own GIL).

    python bench/_group_peer.py N PREFIX   # N nodes "PREFIX0".."PREFIX{N-1}" under $P2PCHAT_HOME

Prints one JSON line ``{"nodes": [{"peer": ..., "port": ...}, ...]}`` when listening,
then answers JSON-line commands on stdin with one JSON line each on stdout:

    {"cmd": "accept", "peer": P}            every node: wait until P is online, accept it
    {"cmd": "join", "room": R}              every node: wait for the invitation to R, join
    {"cmd": "joined", "room": R, "n": N}    wait until every node counts N joined members
    {"cmd": "texts", "room": R, "n": N, "timeout": S}
                                            wait until node 0 received N texts in R; answers
                                            {"count": ..., "at": monotonic time of the Nth}
    {"cmd": "report"}                       arrival times so far (then forgotten)
    {"cmd": "stop"}                         stop every node and exit

Arrival times are ``time.monotonic()`` (CLOCK_MONOTONIC: system-wide on Linux, so the
parent can compare them with its own) taken when a node's ``MessageAdded`` event for an
incoming message reaches this process's subscriber, keyed by message id (hex), one per
node. Nothing is written to the pipe per message. The process exits when stdin closes.

``Member`` (a node plus an event watcher) is shared with ``bench/groups.py``, which runs
the same kind of members in its own process.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import sys
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable
from typing import Any

from p2pchat.identity import decode_peer_id
from p2pchat.node import (
    GroupError,
    MessageAdded,
    Node,
    NodeConfig,
    PeerOffline,
    PeerOnline,
    RoomInvitation,
)
from p2pchat.profile import open_profile

STEP = 30.0  # bound on any single wait


def say(obj: dict[str, Any]) -> None:
    """One JSON line to the parent, flushed at once."""
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


def make_node(name: str, peers: tuple[tuple[str, int], ...] = ()) -> Node:
    """A node for profile ``name`` under $P2PCHAT_HOME: loopback only, no mDNS."""
    profile = open_profile(name)
    if not profile.has_display_name:
        profile.set_display_name(name)
    return Node(profile, NodeConfig(bind="127.0.0.1", discovery=False, peers=peers))


class Member:
    """A node plus a subscriber that records what the benchmark needs, as it happens."""

    def __init__(self, node: Node) -> None:
        self.node = node
        self.arrived: dict[bytes, float] = {}  # incoming message id -> monotonic time
        self.texts: dict[bytes, int] = defaultdict(int)  # room -> incoming texts
        self.nth: dict[tuple[bytes, int], float] = {}  # (room, n) wanted -> when reached
        self.wanted: set[tuple[bytes, int]] = set()
        self.invited: set[bytes] = set()
        self.online: set[bytes] = set()
        self.online_at: dict[bytes, float] = {}  # peer -> when it (last) came online
        # Called with (message id, time) for every incoming message, in the watcher.
        self.hook: Callable[[bytes, float], None] | None = None
        self.changed = asyncio.Event()
        self.stream = node.subscribe()
        self.task = asyncio.ensure_future(self._watch())

    async def _watch(self) -> None:
        async for e in self.stream:
            if isinstance(e, MessageAdded):
                if e.incoming:
                    now = time.monotonic()
                    self.arrived[e.message.id] = now
                    if self.hook is not None:
                        self.hook(e.message.id, now)
                    if e.message.kind == "text":
                        room = e.message.room
                        self.texts[room] += 1
                        key = (room, self.texts[room])
                        if key in self.wanted:
                            self.nth[key] = now
            elif isinstance(e, RoomInvitation):
                self.invited.add(e.room)
            elif isinstance(e, PeerOnline):
                self.online.add(e.peer_id)
                self.online_at[e.peer_id] = time.monotonic()
            elif isinstance(e, PeerOffline):
                self.online.discard(e.peer_id)
            self.changed.set()

    @property
    def dropped(self) -> int:
        """Events the node dropped for this subscriber (it fell too far behind)."""
        return self.stream.dropped

    async def until(self, check: Callable[[], Awaitable[bool] | bool], within: float) -> None:
        """Wait (on this node's events) until ``check()`` is true; TimeoutError after."""
        async with asyncio.timeout(within):
            while True:
                self.changed.clear()
                result = check()
                if not isinstance(result, bool):
                    result = await result
                if result:
                    return
                await self.changed.wait()

    async def befriend_wait(self, peer: bytes) -> None:
        """Wait until ``peer`` is connected, then accept it as a contact."""
        await self.until(lambda: peer in self.online or self.node.links.is_online(peer), STEP)
        await self.node.accept(peer)

    async def join_when_invited(self, room: bytes) -> None:
        """Wait for the invitation to ``room`` and accept it."""
        await self.until(lambda: room in self.invited, STEP)
        await self.node.groups.join(room)

    async def joined_count(self, room: bytes) -> int:
        """Members this node sees as joined in ``room`` (0 if it does not know the room)."""
        try:
            return sum(m.state == "joined" for m in await self.node.groups.members(room))
        except GroupError:
            return 0

    async def wait_joined(self, room: bytes, n: int, within: float = STEP) -> None:
        """Wait until this node sees ``n`` joined members in ``room``."""

        async def enough() -> bool:
            return await self.joined_count(room) >= n

        await self.until(enough, within)

    def want(self, room: bytes, n: int) -> None:
        """Record the time the ``n``-th incoming text of ``room`` arrives."""
        self.wanted.add((room, n))

    async def wait_texts(self, room: bytes, n: int, within: float) -> float:
        """Wait until ``n`` incoming texts of ``room`` arrived; when the n-th did."""
        self.want(room, n)
        await self.until(lambda: self.texts[room] >= n, within)
        return self.nth.get((room, n), time.monotonic())

    async def close(self) -> None:
        """Stop the node (which ends the watcher)."""
        try:
            await self.node.stop()
        finally:
            self.stream.close()
            self.task.cancel()


async def stdin_reader() -> asyncio.StreamReader:
    """A reader of this process's stdin (the parent's commands, one JSON per line)."""
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    return reader


async def serve(count: int, prefix: str) -> None:
    """Run ``count`` member nodes and answer the parent's commands."""
    members: list[Member] = []
    try:
        for i in range(count):
            node = make_node(f"{prefix}{i}")
            member = Member(node)
            members.append(member)
            await node.start()
        say({"nodes": [{"peer": m.node.peer_id_text, "port": m.node.port} for m in members]})
        reader = await stdin_reader()
        while line := await reader.readline():
            msg = json.loads(line)
            cmd = msg["cmd"]
            if cmd == "accept":
                peer = decode_peer_id(msg["peer"])
                await asyncio.gather(*(m.befriend_wait(peer) for m in members))
                say({"ok": True})
            elif cmd == "join":
                room = bytes.fromhex(msg["room"])
                await asyncio.gather(*(m.join_when_invited(room) for m in members))
                say({"ok": True})
            elif cmd == "joined":
                room = bytes.fromhex(msg["room"])
                await asyncio.gather(*(m.wait_joined(room, msg["n"]) for m in members))
                say({"ok": True})
            elif cmd == "texts":
                room = bytes.fromhex(msg["room"])
                at = await members[0].wait_texts(room, msg["n"], msg["timeout"])
                say({"count": members[0].texts[room], "at": at})
            elif cmd == "report":
                arrived: dict[str, list[float]] = defaultdict(list)
                for m in members:
                    for mid, t in m.arrived.items():
                        arrived[mid.hex()].append(t)
                    m.arrived.clear()
                say({"arrived": arrived, "dropped": sum(m.dropped for m in members)})
            elif cmd == "cpu":
                say({"cpu": time.process_time()})
            elif cmd == "stop":
                break
    finally:
        for m in members:
            try:
                await m.close()
            except Exception:
                logging.exception("stopping %s failed", m.node.profile.display_name)
    say({"stopped": True})


def main() -> None:
    """Run the members named on the command line."""
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    if "P2PCHAT_HOME" not in os.environ:
        sys.exit("P2PCHAT_HOME must be set (never touch a real profile)")
    if len(sys.argv) != 3:
        sys.exit("usage: _group_peer.py N PREFIX")
    asyncio.run(serve(int(sys.argv[1]), sys.argv[2]))


if __name__ == "__main__":
    main()
