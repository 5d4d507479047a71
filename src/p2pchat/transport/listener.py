"""Accept incoming connections and run the responder handshake under strict limits.

A LAN is not a friendly place: anyone can open thousands of sockets and never speak.
Pending handshakes are capped overall and per source address, but a full table must not
lock real peers out: a new connection always gets a slot, and when there is none, the
pending handshake that looks least like a real peer is dropped instead (see
``HandshakeTable.victim``). A silent connection also has only a short while to send
Noise message 1, so silence ties a slot up for seconds, not for the whole deadline.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace

from p2pchat.crypto.noise import MAX_MESSAGE_LEN
from p2pchat.transport.connection import (
    FIRST_MESSAGE_TIMEOUT,
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
    # A real initiator sends message 1 right after connecting; silence past this is a
    # flood (or a dead peer), and the slot goes back to the pool.
    first_message_timeout: float = FIRST_MESSAGE_TIMEOUT


@dataclass(eq=False)
class PendingHandshake:
    """One handshake in progress, as the eviction policy sees it."""

    host: str
    order: int  # arrival order: smaller is older
    writer: asyncio.StreamWriter = field(repr=False)
    spoke: bool = False  # message 1 arrived (a real initiator sends it at once)
    evicted: bool = False  # dropped to make room for a newer handshake


class HandshakeTable:
    """Pending handshakes, counted overall and per source address.

    ``admit`` never refuses: when a cap is reached it names a pending handshake to drop
    so the new one fits. The victim is chosen so that a flood evicts itself before it
    evicts a real peer: first the source address holding the most slots, then a
    connection that has not sent message 1 yet, then the oldest.
    """

    def __init__(self, max_pending: int, max_per_host: int) -> None:
        self.max_pending = max(1, max_pending)
        self.max_per_host = max(1, max_per_host)
        self._entries: set[PendingHandshake] = set()
        self._per_host: Counter[str] = Counter()
        self._order = itertools.count()

    def __len__(self) -> int:
        return len(self._entries)

    def admit(
        self, host: str, writer: asyncio.StreamWriter
    ) -> tuple[PendingHandshake, list[PendingHandshake]]:
        """Add a handshake from ``host``; returns it and the handshakes it displaced."""
        evicted: list[PendingHandshake] = []
        while self._per_host[host] >= self.max_per_host:
            evicted.append(self._evict(self.victim(host)))
        while len(self._entries) >= self.max_pending:
            evicted.append(self._evict(self.victim()))
        for old in evicted:
            old.evicted = True
        entry = PendingHandshake(host, next(self._order), writer)
        self._entries.add(entry)
        self._per_host[host] += 1
        return entry, evicted

    def victim(self, host: str | None = None) -> PendingHandshake:
        """The pending handshake to drop (from ``host`` only, if given)."""
        candidates = [e for e in self._entries if host is None or e.host == host]
        return min(candidates, key=lambda e: (-self._per_host[e.host], e.spoke, e.order))

    def remove(self, entry: PendingHandshake) -> None:
        """Forget ``entry`` (finished, failed or evicted); idempotent."""
        if entry in self._entries:
            self._evict(entry)

    def _evict(self, entry: PendingHandshake) -> PendingHandshake:
        self._entries.discard(entry)
        self._per_host[entry.host] -= 1
        if self._per_host[entry.host] <= 0:
            del self._per_host[entry.host]
        return entry

    def count(self, host: str) -> int:
        """Pending handshakes from ``host``."""
        return self._per_host[host]


class Listener:
    """A TCP server that hands each authenticated connection to ``on_connection``."""

    def __init__(
        self,
        local: LocalHello,
        on_connection: OnConnection,
        limits: ListenerLimits | None = None,
        *,
        remote_host: str | None = None,
    ) -> None:
        # A listener behind tor sees every peer come from tor on 127.0.0.1: it names them
        # ``remote_host`` instead, with no port (their LAN port means nothing here).
        self._remote_host = remote_host
        self._local = local
        self._on_connection = on_connection
        self.limits = limits or ListenerLimits()
        self._server: asyncio.Server | None = None
        self._table = HandshakeTable(self.limits.max_pending, self.limits.max_pending_per_host)
        self._tasks: set[asyncio.Task[None]] = set()
        self.rejected_handshakes = 0
        #: TCP connections accepted in all (tests check that tor peers never came here).
        self.accepted = 0
        self.evicted_handshakes = 0

    @property
    def pending(self) -> int:
        """Handshakes in progress right now."""
        return len(self._table)

    def pending_from(self, host: str) -> int:
        """Handshakes in progress from source address ``host``."""
        return self._table.count(host)

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
        self.accepted += 1
        peer = writer.get_extra_info("peername")
        host = str(peer[0]) if isinstance(peer, tuple) and peer else "?"
        entry, evicted = self._table.admit(host, writer)
        for old in evicted:
            # Aborting makes that handshake's read fail at once; its task then ends.
            self.evicted_handshakes += 1
            self.rejected_handshakes += 1
            with contextlib.suppress(Exception):
                old.writer.transport.abort()
        if evicted:
            log.debug("handshake table full: dropped %d pending from %s", len(evicted), host)

        def spoke() -> None:
            entry.spoke = True

        try:
            conn = await respond(
                reader,
                writer,
                self._local,
                self.limits.handshake_timeout,
                first_message_deadline=self.limits.first_message_timeout,
                on_first_message=spoke,
            )
        except HandshakeError as exc:
            if not entry.evicted:  # an eviction was counted when it happened
                self.rejected_handshakes += 1
            log.info("handshake from %s failed: %s", host, exc)
            return
        finally:
            self._table.remove(entry)
        if self._remote_host is not None:
            conn.remote = replace(conn.remote, host=self._remote_host, port=None)
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
