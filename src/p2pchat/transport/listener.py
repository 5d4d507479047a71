"""Accept incoming connections and run the responder handshake under strict limits.

A LAN is not a friendly place: anyone can open thousands of sockets and never speak.
The listener caps concurrent pending handshakes overall and per source address and gives
each a deadline, so a flood cannot stop real peers from connecting.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from p2pchat.crypto.noise import MAX_MESSAGE_LEN
from p2pchat.transport.connection import (
    HANDSHAKE_TIMEOUT,
    Connection,
    HandshakeError,
    LocalHello,
    respond,
)

log = logging.getLogger(__name__)

OnConnection = Callable[[Connection], Awaitable[None]]


@dataclass(frozen=True)
class ListenerLimits:
    """Bounds on unauthenticated work the listener will do at once."""

    max_pending: int = 64
    max_pending_per_host: int = 8
    handshake_timeout: float = HANDSHAKE_TIMEOUT


class Listener:
    """A TCP server that hands each authenticated connection to ``on_connection``."""

    def __init__(
        self,
        local: LocalHello,
        on_connection: OnConnection,
        limits: ListenerLimits | None = None,
    ) -> None:
        self._local = local
        self._on_connection = on_connection
        self.limits = limits or ListenerLimits()
        self._server: asyncio.Server | None = None
        self._pending: Counter[str] = Counter()
        self._tasks: set[asyncio.Task[None]] = set()
        self.rejected_handshakes = 0

    @property
    def pending(self) -> int:
        """Handshakes in progress right now."""
        return sum(self._pending.values())

    @property
    def port(self) -> int:
        """The bound TCP port (useful when started with port 0)."""
        if self._server is None or not self._server.sockets:
            raise RuntimeError("listener not started")
        return int(self._server.sockets[0].getsockname()[1])

    async def start(self, host: str | list[str] | None, port: int) -> None:
        """Bind and start accepting. Raises OSError when the port is taken."""
        self._server = await asyncio.start_server(
            self._accept, host=host, port=port, limit=MAX_MESSAGE_LEN + 2, reuse_address=True
        )

    def update_local(self, local: LocalHello) -> None:
        """Use a new hello (e.g. after a rename) for future handshakes."""
        self._local = local

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = writer.get_extra_info("peername")
        host = str(peer[0]) if isinstance(peer, tuple) and peer else "?"
        if (
            self.pending >= self.limits.max_pending
            or self._pending[host] >= self.limits.max_pending_per_host
        ):
            self.rejected_handshakes += 1
            writer.transport.abort()
            return
        self._pending[host] += 1
        try:
            conn = await respond(reader, writer, self._local, self.limits.handshake_timeout)
        except HandshakeError as exc:
            self.rejected_handshakes += 1
            log.info("handshake from %s failed: %s", host, exc)
            return
        finally:
            self._pending[host] -= 1
            if self._pending[host] <= 0:
                del self._pending[host]
        task = asyncio.current_task()
        if task is not None:
            self._tasks.add(task)
        try:
            await self._on_connection(conn)
        except Exception:
            log.exception("connection handler failed for %r", conn)
            await conn.close("internal error")
        finally:
            if task is not None:
                self._tasks.discard(task)

    async def stop(self) -> None:
        """Stop accepting and wait (briefly) for the server to close."""
        if self._server is None:
            return
        self._server.close()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(2.0):
                await self._server.wait_closed()
        self._server = None
