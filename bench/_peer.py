"""The far side of ``bench/messages.py``, run in its own process (own GIL, own loop).

    python bench/_peer.py node   # p2pchat node "bob" under $P2PCHAT_HOME
    python bench/_peer.py echo   # bare msgpack-over-TCP receiver (the baseline)

Both print one JSON line ``{"port": ..., ...}`` when listening, then answer JSON-line
commands on stdin with one JSON line each on stdout:

    {"cmd": "accept", "peer": "<peer id>"}   node: wait until that peer is online, accept
    {"cmd": "report"}                        arrival times so far (then forgotten)
    {"cmd": "stop"}                          stop cleanly and exit

Arrival times are ``time.monotonic()`` (CLOCK_MONOTONIC, system-wide on Linux, hence
comparable with the parent's). They are taken when the node's ``MessageAdded`` event
for an incoming message reaches this process's subscriber (node), or when a frame is
parsed (echo), keyed by message id (hex) or frame number. Nothing is written to the
pipe per message, so the measured path carries no benchmark I/O. The process exits when
stdin closes, so it never outlives a parent that died.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import sys
import time
from collections.abc import Callable
from typing import Any

import msgpack

WAIT = 15.0


def say(obj: dict[str, Any]) -> None:
    """One JSON line to the parent, flushed at once."""
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


class Receiver(asyncio.Protocol):
    """Parses 2-byte length + msgpack frames; optionally acks each one."""

    def __init__(self, on_frame: Callable[[dict[str, Any]], None], ack: bool) -> None:
        self.buf = bytearray()
        self.on_frame = on_frame
        self.ack = ack
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.buf += data
        while len(self.buf) >= 2:
            length = int.from_bytes(self.buf[:2], "big")
            if len(self.buf) < 2 + length:
                return
            frame = msgpack.unpackb(bytes(self.buf[2 : 2 + length]))
            del self.buf[: 2 + length]
            self.on_frame(frame)
            if self.ack and self.transport is not None:
                reply = msgpack.packb({"t": "rcpt", "ids": [frame["id"]], "st": "d"})
                self.transport.write(len(reply).to_bytes(2, "big") + reply)


def frame(i: int) -> bytes:
    """One small message frame, numbered ``i``."""
    body = msgpack.packb({"t": "msg", "id": os.urandom(16), "n": i, "body": f"ping {i}".encode()})
    return len(body).to_bytes(2, "big") + body


async def stdin_reader() -> asyncio.StreamReader:
    """A reader of this process's stdin (the parent's commands, one JSON per line)."""
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    return reader


async def run_echo() -> None:
    """The baseline receiver: record arrival time of every frame, ack it."""
    arrived: dict[int, float] = {}

    def on_frame(f: dict[str, Any]) -> None:
        arrived[f["n"]] = time.monotonic()

    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: Receiver(on_frame, ack=True), "127.0.0.1", 0)
    say({"port": server.sockets[0].getsockname()[1]})
    reader = await stdin_reader()
    try:
        while line := await reader.readline():
            cmd = json.loads(line)["cmd"]
            if cmd == "report":
                say({"arrived": {str(k): v for k, v in arrived.items()}})
                arrived.clear()
            elif cmd == "stop":
                break
    finally:
        server.close()
    say({"stopped": True})


async def run_node() -> None:
    """Node "bob": record arrival time of every incoming message, accept on request."""
    from p2pchat.identity import decode_peer_id
    from p2pchat.node.config import NodeConfig
    from p2pchat.node.events import MessageAdded, PeerOnline
    from p2pchat.node.service import Node
    from p2pchat.profile import open_profile

    profile = open_profile("bob")
    profile.set_display_name("bob")
    node = Node(profile, NodeConfig(bind="127.0.0.1", discovery=False))
    arrived: dict[str, float] = {}
    online: set[bytes] = set()
    seen_online = asyncio.Event()
    stream = node.subscribe()

    async def watch() -> None:
        async for e in stream:
            if isinstance(e, MessageAdded):
                if e.incoming:
                    arrived[e.message.id.hex()] = time.monotonic()
            elif isinstance(e, PeerOnline):
                online.add(e.peer_id)
                seen_online.set()

    watcher = asyncio.create_task(watch())
    await node.start()
    try:
        say({"port": node.port, "peer": node.peer_id_text})
        reader = await stdin_reader()
        while line := await reader.readline():
            msg = json.loads(line)
            cmd = msg["cmd"]
            if cmd == "accept":
                peer = decode_peer_id(msg["peer"])
                async with asyncio.timeout(WAIT):
                    while peer not in online and not node.links.is_online(peer):
                        seen_online.clear()
                        await seen_online.wait()
                await node.accept(peer)
                say({"accepted": msg["peer"]})
            elif cmd == "report":
                say({"arrived": arrived.copy()})
                arrived.clear()
            elif cmd == "stop":
                break
    finally:
        watcher.cancel()
        stream.close()
        await node.stop()
    say({"stopped": True})


def main() -> None:
    """Run the side named on the command line."""
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    if "P2PCHAT_HOME" not in os.environ:
        sys.exit("P2PCHAT_HOME must be set (never touch a real profile)")
    mode = sys.argv[1] if len(sys.argv) > 1 else ""
    if mode == "node":
        asyncio.run(run_node())
    elif mode == "echo":
        asyncio.run(run_echo())
    else:
        sys.exit("usage: _peer.py node|echo")


if __name__ == "__main__":
    main()
