"""A p2pchat node in its own process, for fault tests that must ``kill -9`` a peer.

An in-process node cannot be killed without killing the test, so the crash tests run
one side here: ``python -m tests.node.peer_process --profile bob ...`` (cwd = repo root,
``P2PCHAT_HOME`` from the environment). It speaks a tiny line protocol so the test can
wait on facts instead of sleeping:

stdout (one fact per line, flushed at once)::

    READY <port> <peer_id>      listening; the node is up
    ACCEPTED <peer_id>          a peer from --accept was online and is now a contact
    GOT <n>                     n distinct incoming messages stored (this run and earlier)
    SENT <n>                    n messages of the current SEND command are stored locally
    DELIVERED <n>               n of our own messages are known delivered (or read)
    STOPPED                     SIGTERM handled, store closed cleanly

stdin commands::

    SEND <peer_id> <count> <prefix>   send "<prefix> <i>" for i in range(count), in order

It exits on SIGTERM (graceful stop) or, of course, on SIGKILL (the point of it).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys

from p2pchat.hostport import parse_host_port
from p2pchat.identity import decode_peer_id, encode_peer_id
from p2pchat.node.events import MessageAdded, PeerOnline, ReceiptChanged
from p2pchat.node.service import Node
from p2pchat.node.stream import EventStream
from p2pchat.store import MessageStatus
from tests.nodes import make_node


def say(*words: object) -> None:
    """One machine-readable line, flushed so the parent sees it before any crash."""
    sys.stdout.write(" ".join(str(w) for w in words) + "\n")
    sys.stdout.flush()


class Peer:
    """Counts what the test wants to know and answers stdin commands."""

    def __init__(self, node: Node, accept: set[bytes]) -> None:
        self.node = node
        self.accept = accept
        self.got: set[bytes] = set()
        self.delivered: set[bytes] = set()

    async def load_counts(self) -> None:
        """Start GOT/DELIVERED from what the store already holds (we may be a restart)."""
        for peer in self.accept:
            for m in await self.node.history(self.node.direct_room(peer), limit=1_000_000):
                if m.author != self.node.me:
                    self.got.add(m.id)
                elif m.status >= MessageStatus.DELIVERED:
                    self.delivered.add(m.id)

    async def watch(self, stream: EventStream) -> None:
        """Accept the expected peers when they show up; report stored and delivered counts.

        ``stream`` was subscribed before the node started, so no event is missed; the
        counts are sets, so overlap with :meth:`load_counts` is harmless.
        """
        # A peer may already be online by the time we subscribed.
        for peer in list(self.accept):
            if self.node.links.is_online(peer):
                await self._accept(peer)
        async for event in stream:
            if isinstance(event, PeerOnline) and event.peer_id in self.accept:
                await self._accept(event.peer_id)
            elif isinstance(event, MessageAdded) and event.incoming:
                self.got.add(event.message.id)
                say("GOT", len(self.got))
            elif isinstance(event, ReceiptChanged) and event.status >= MessageStatus.DELIVERED:
                before = len(self.delivered)
                self.delivered.update(event.message_ids)
                if len(self.delivered) != before:
                    say("DELIVERED", len(self.delivered))

    async def _accept(self, peer: bytes) -> None:
        await self.node.accept(peer)
        say("ACCEPTED", encode_peer_id(peer))

    async def commands(self) -> None:
        """Read SEND commands from stdin until it closes."""
        loop = asyncio.get_running_loop()
        reader = asyncio.StreamReader()
        await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
        while line := await reader.readline():
            parts = line.decode().split()
            if len(parts) == 4 and parts[0] == "SEND":
                peer, count, prefix = decode_peer_id(parts[1]), int(parts[2]), parts[3]
                for i in range(count):
                    await self.node.send_text(peer, f"{prefix} {i}")
                    say("SENT", i + 1)


async def main(argv: list[str] | None = None) -> int:
    """Run the node until SIGTERM."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--profile", required=True)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--peer", action="append", default=[], help="HOST:PORT to dial")
    parser.add_argument("--accept", action="append", default=[], help="peer id to befriend")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)

    peers = tuple(parse_host_port(p) for p in args.peer)
    node = make_node(args.profile, peers=peers, port=args.port)
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    peer = Peer(node, {decode_peer_id(p) for p in args.accept})
    stream = node.subscribe()
    await node.start()
    await peer.load_counts()
    tasks = [asyncio.create_task(peer.watch(stream)), asyncio.create_task(peer.commands())]
    say("READY", node.port, node.peer_id_text)
    say("GOT", len(peer.got))
    say("DELIVERED", len(peer.delivered))
    await stop.wait()
    for task in tasks:
        task.cancel()
    await node.stop()
    say("STOPPED")
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
