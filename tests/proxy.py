"""A TCP proxy for fault tests that understands p2pchat's 2-byte length framing.

It sits between two real endpoints on loopback and can, per direction, tamper with,
duplicate (replay), swap (reorder), delay or drop whole Noise messages, stall, or cut
the connection. Bounded: it only serves the connections a test makes and stops with it.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from dataclasses import dataclass, field

# A hook gets (direction, index of the message in that direction, message bytes) and
# returns the list of messages to forward instead (empty list = drop).
Hook = Callable[[str, int, bytes], list[bytes]]


@dataclass
class FaultProxy:
    """Forward ``listen`` -> ``target`` and apply ``hook`` to each framed message."""

    target_host: str
    target_port: int
    hook: Hook | None = None
    raw: bool = False  # forward raw bytes instead of parsing frames
    port: int = 0
    connections: int = 0
    _server: asyncio.Server | None = None
    _writers: set[asyncio.StreamWriter] = field(default_factory=set)
    _tasks: set[asyncio.Task[None]] = field(default_factory=set)
    paused: asyncio.Event = field(default_factory=asyncio.Event)

    async def start(self) -> FaultProxy:
        self.paused.set()  # set = flowing
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def _handle(self, c_reader: asyncio.StreamReader, c_writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            s_reader, s_writer = await asyncio.open_connection(self.target_host, self.target_port)
        except OSError:
            c_writer.close()
            return
        self._writers.update((c_writer, s_writer))
        up = asyncio.create_task(self._pump("c2s", c_reader, s_writer))
        down = asyncio.create_task(self._pump("s2c", s_reader, c_writer))
        self._tasks.update((up, down))
        await asyncio.wait({up, down}, return_when=asyncio.FIRST_COMPLETED)
        for task in (up, down):
            task.cancel()
        for w in (c_writer, s_writer):
            w.transport.abort()

    async def _pump(
        self, direction: str, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        index = 0
        with contextlib.suppress(asyncio.IncompleteReadError, ConnectionError, OSError):
            while True:
                if self.raw:
                    data = await reader.read(65536)
                    if not data:
                        return
                    await self.paused.wait()
                    writer.write(data)
                    await writer.drain()
                    continue
                header = await reader.readexactly(2)
                body = await reader.readexactly(int.from_bytes(header, "big"))
                await self.paused.wait()
                out = self.hook(direction, index, body) if self.hook else [body]
                index += 1
                for message in out:
                    writer.write(len(message).to_bytes(2, "big") + message)
                await writer.drain()

    def cut_all(self) -> None:
        """Abort every proxied connection at once (like a cable pulled)."""
        for w in list(self._writers):
            w.transport.abort()
        self._writers.clear()

    async def stop(self) -> None:
        self.cut_all()
        for task in list(self._tasks):
            task.cancel()
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(2):
                    await self._server.wait_closed()
