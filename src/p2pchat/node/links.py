"""Links to peers: one live connection per peer, dialling with backoff, keepalive.

The link manager owns every ``Connection``. It accepts incoming connections from the
listener, dials addresses it was told about (mDNS, manual, last known) with exponential
backoff, resolves simultaneous connects deterministically (both sides keep the
connection initiated by the smaller peer id), pings idle links and drops silent ones.
It knows nothing about messages: frames are handed to the node's callbacks.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import TypedDict

from p2pchat.identity import short_id
from p2pchat.node.config import NodeConfig
from p2pchat.transport import (
    Connection,
    ConnectionClosedError,
    HandshakeError,
    Listener,
    ListenerLimits,
    LocalHello,
    PeerMismatchError,
    TransportError,
    connect,
)
from p2pchat.wire import Bye, Frame, Ping, Pong, encode_frame

log = logging.getLogger(__name__)

# Dials in flight at once: enough to reach a LAN quickly, never a flood of sockets.
MAX_CONCURRENT_DIALS = 16
#: The longest the dial loop sleeps with nothing due (see LinkManager._next_look).
DIAL_RECHECK_SECONDS = 5.0

OnFrame = Callable[[Connection, Frame], Awaitable[None]]
OnUp = Callable[[Connection, bool], Awaitable[None]]
OnDown = Callable[[bytes, str], Awaitable[None]]
OnMismatch = Callable[[PeerMismatchError, str, int], Awaitable[None]]
ShouldDial = Callable[[bytes], bool]
OnOtherPurpose = Callable[[Connection], Awaitable[None]]


@dataclass
class Link:
    """The live connection to one peer and its timers."""

    conn: Connection
    last_recv: float = field(default_factory=time.monotonic)
    last_sent: float = field(default_factory=time.monotonic)
    pings: int = 0


@dataclass
class Target:
    """An address worth dialling, with its backoff state."""

    host: str
    port: int
    source: str
    expected_peer: bytes | None = None
    failures: int = 0
    next_at: float = 0.0
    dialing: bool = False


class DialOptions(TypedDict):
    """Keyword arguments of ``connect`` that depend on where we dial."""

    deadline: float
    proxy: tuple[str, int] | None


def is_tor_host(host: str) -> bool:
    """True for an onion address we dial, or "tor" for a peer that came in through tor."""
    return host == "tor" or host.endswith(".onion")


class LinkManager:
    """Owns connections to peers; see the module docstring."""

    def __init__(
        self,
        me: bytes,
        local: LocalHello,
        config: NodeConfig,
        *,
        on_frame: OnFrame,
        on_up: OnUp,
        on_down: OnDown,
        on_mismatch: OnMismatch,
        should_dial: ShouldDial = lambda _peer: True,
        on_other_purpose: OnOtherPurpose | None = None,
        on_ready: OnOtherPurpose | None = None,
    ) -> None:
        self._on_other_purpose = on_other_purpose
        self._on_ready = on_ready
        self.me = me
        self._should_dial = should_dial
        self._local = local
        self.config = config
        self._on_frame = on_frame
        self._on_up = on_up
        self._on_down = on_down
        self._on_mismatch = on_mismatch
        self.links: dict[bytes, Link] = {}
        self.targets: dict[tuple[str, int], Target] = {}
        self.listener = Listener(
            local,
            self._accept,
            ListenerLimits(handshake_timeout=config.handshake_deadline),
        )
        # Tor (node/tor.py): where onion addresses are dialled (tor's SOCKS port, None
        # until tor is ready) and the listener our onion service leads to.
        self.proxy: tuple[str, int] | None = None
        self.tor_listener: Listener | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._wake = asyncio.Event()
        self._stopping = False

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        """Listen (raises OSError if the port is taken) and start dialling."""
        await self.listener.start(self.config.bind, self.config.port)
        self._spawn(self._dial_loop(), "dialer")
        self._spawn(self._keepalive_loop(), "keepalive")

    async def stop(self) -> None:
        """Say goodbye to every peer, close every link, stop all tasks."""
        self._stopping = True
        await self.listener.stop()
        if self.tor_listener is not None:
            await self.tor_listener.stop()
        for link in list(self.links.values()):
            with contextlib.suppress(TransportError):
                link.conn.write_frame(Bye(reason="shutting down"))
        # Side by side: each close may wait its grace time on a peer that reads nothing,
        # and quitting must not take that long once per such peer.
        await asyncio.gather(*(link.conn.close("we shut down") for link in self.links.values()))
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.wait(self._tasks, timeout=3)
        self.links.clear()

    async def listen_for_tor(self) -> int:
        """Open a loopback listener for our onion service to lead to; return its port.

        Peers arriving there are known to come through tor (their host reads "tor"), and
        the LAN listener never sees them: the per-address handshake cap of the LAN
        listener would otherwise lump every tor peer together as 127.0.0.1.
        """
        if self.tor_listener is None:
            # Every tor peer comes from 127.0.0.1: only the overall cap means anything.
            limits = ListenerLimits(
                handshake_timeout=self.config.tor_connect_deadline,
                max_pending_per_host=ListenerLimits.max_pending,
            )
            self.tor_listener = Listener(self._local, self._accept, limits, remote_host="tor")
            await self.tor_listener.start("127.0.0.1", 0)
        return self.tor_listener.port

    def via(self, peer_id: bytes) -> str | None:
        """How ``peer_id`` is linked now: "tor", "lan", or None when offline."""
        link = self.links.get(peer_id)
        if link is None or link.conn.is_closed:
            return None
        return "tor" if is_tor_host(link.conn.remote.host) else "lan"

    @property
    def port(self) -> int:
        """The port we listen on."""
        return self.listener.port

    def update_local(self, local: LocalHello) -> None:
        """Use a new hello (after a rename) for future handshakes."""
        self._local = local
        self.listener.update_local(local)
        if self.tor_listener is not None:
            self.tor_listener.update_local(local)

    def _spawn(self, coro: Awaitable[None], name: str) -> None:
        task: asyncio.Task[None] = asyncio.ensure_future(coro)
        task.set_name(name)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("task %s failed", task.get_name(), exc_info=task.exception())

    # ------------------------------------------------------------------ sending

    def is_online(self, peer_id: bytes) -> bool:
        """True while an authenticated connection to ``peer_id`` is up."""
        link = self.links.get(peer_id)
        return link is not None and not link.conn.is_closed

    def write(self, peer_id: bytes, frame: Frame) -> bool:
        """Queue ``frame`` on the peer's link; False if the peer is not connected."""
        link = self._live(peer_id)
        return link is not None and self._queue(link, encode_frame(frame))

    def write_all(self, peers: Iterable[bytes], frame: Frame) -> list[bytes]:
        """Queue ``frame`` on each peer's link; the peers it went to.

        Encoded once for all of them: a message to a room of 50 was encoded 49 times.
        """
        sent = []
        encoded: bytes | None = None
        for peer in peers:
            link = self._live(peer)
            if link is None:
                continue
            if encoded is None:
                encoded = encode_frame(frame)
            if self._queue(link, encoded):
                sent.append(peer)
        return sent

    def _live(self, peer_id: bytes) -> Link | None:
        link = self.links.get(peer_id)
        return None if link is None or link.conn.is_closed else link

    def _queue(self, link: Link, encoded: bytes) -> bool:
        try:
            link.conn.write_encoded(encoded)
        except TransportError:
            return False
        link.last_sent = time.monotonic()
        return True

    async def flush(self, peer_id: bytes) -> None:
        """Let the socket drain if the peer's write buffer is full.

        Never raises: a link that dies or stalls while we wait is closed (and its frames
        stay in the outbox for the next connection).
        """
        link = self.links.get(peer_id)
        if link is not None:
            with contextlib.suppress(TransportError):
                await link.conn.flush()

    async def flush_all(self, peers: list[bytes]) -> None:
        """Drain several peers' buffers concurrently (one slow peer delays no other)."""
        if len(peers) == 1:  # the common case: no task to schedule
            await self.flush(peers[0])
        elif peers:
            await asyncio.gather(*(self.flush(p) for p in peers))

    # ------------------------------------------------------------------ targets

    def add_target(
        self, host: str, port: int, source: str, expected_peer: bytes | None = None
    ) -> None:
        """Remember an address to dial; dial it soon."""
        key = (host, port)
        target = self.targets.get(key)
        if target is None:
            self.targets[key] = Target(host, port, source, expected_peer)
        else:
            if expected_peer is not None:
                target.expected_peer = expected_peer
            if source in ("manual", "mdns"):
                # Fresh news (announced, or typed by the person): try again now. A
                # remembered address seen again keeps its backoff.
                target.source = source
                target.failures = 0
                target.next_at = 0.0
        self._wake.set()

    def remove_targets(self, source: str, peer_id: bytes) -> None:
        """Forget addresses of ``peer_id`` learned from ``source`` (e.g. mDNS lost)."""
        for key, target in list(self.targets.items()):
            if target.source == source and target.expected_peer == peer_id:
                del self.targets[key]

    def forget_peer(self, peer_id: bytes) -> None:
        """Stop dialling ``peer_id`` at any address (e.g. it was blocked)."""
        for key, target in list(self.targets.items()):
            if target.expected_peer == peer_id:
                del self.targets[key]

    def redial_soon(self, peer_id: bytes) -> None:
        """Reset backoff for every address of ``peer_id`` (it was seen again)."""
        for target in self.targets.values():
            if target.expected_peer == peer_id:
                target.failures = 0
                target.next_at = 0.0
        self._wake.set()

    def onion_targets(self, peer_id: bytes) -> list[tuple[str, int]]:
        """The onion addresses we know for ``peer_id`` (dialled through tor)."""
        return [
            (t.host, t.port)
            for t in self.targets.values()
            if t.expected_peer == peer_id and is_tor_host(t.host)
        ]

    def dial_options(self, host: str) -> DialOptions:
        """``connect``'s deadline and proxy for ``host``: onion addresses go through tor."""
        if is_tor_host(host):
            if self.proxy is None:
                raise HandshakeError("tor is not ready yet")
            return {"deadline": self.config.tor_connect_deadline, "proxy": self.proxy}
        return {"deadline": self.config.handshake_deadline, "proxy": None}

    def forget_onions(self) -> None:
        """Tor was turned off: stop dialling onion addresses (and close no link)."""
        for key, target in list(self.targets.items()):
            if is_tor_host(target.host):
                del self.targets[key]

    def redial_onions(self) -> None:
        """Tor became ready: dial every onion address now (they waited for it)."""
        for target in self.targets.values():
            if is_tor_host(target.host):
                target.failures = 0
                target.next_at = 0.0
        self._wake.set()

    def _not_wanted(self, target: Target) -> bool:
        """Whether ``target`` is not to be dialled now, whatever its time: it is us, its
        peer is online already, or the node does not want that peer (blocked...)."""
        peer = target.expected_peer
        return peer is not None and (
            peer == self.me or self.is_online(peer) or not self._should_dial(peer)
        )

    def _due(self, now: float) -> list[Target]:
        due = [
            target
            for target in self.targets.values()
            if not target.dialing and target.next_at <= now and not self._not_wanted(target)
        ]
        # The LAN first: a peer's onion address waits while one of its LAN addresses is
        # being tried (it is dialled as soon as those fail, or when there are none).
        lan_first = {
            t.expected_peer
            for t in self.targets.values()
            if not is_tor_host(t.host) and (t.dialing or t.next_at <= now)
        }
        return [t for t in due if not is_tor_host(t.host) or t.expected_peer not in lan_first]

    async def _dial_loop(self) -> None:
        while not self._stopping:
            now = time.monotonic()
            dialing = sum(1 for t in self.targets.values() if t.dialing)
            for target in self._due(now):
                if len(self.links) >= self.config.max_links or dialing >= MAX_CONCURRENT_DIALS:
                    break
                dialing += 1
                target.dialing = True
                self._spawn(self._dial(target), f"dial {target.host}:{target.port}")
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self._next_look(time.monotonic())):
                    await self._wake.wait()

    def _next_look(self, now: float) -> float:
        """Seconds the dial loop may sleep: until the next target waiting only for its
        time comes due, at most DIAL_RECHECK_SECONDS.

        Targets of peers online now are not waited for (nor ours, nor unwanted peers'):
        their times are long past, and counting them woke every node 20 times a second
        for as long as its peers were connected. A link going down wakes the loop; a
        peer becoming wanted again is seen within DIAL_RECHECK_SECONDS. At the cap on
        links nothing can be dialled until one goes down, which wakes the loop.
        """
        if len(self.links) >= self.config.max_links:
            return DIAL_RECHECK_SECONDS
        waiting = [
            t.next_at for t in self.targets.values() if not t.dialing and not self._not_wanted(t)
        ]
        if not waiting:
            return DIAL_RECHECK_SECONDS
        return min(DIAL_RECHECK_SECONDS, max(0.05, min(waiting) - now))

    async def _dial(self, target: Target) -> None:
        onion = is_tor_host(target.host)
        if onion and self.proxy is None:  # tor is not ready (or off): try again later
            target.dialing = False
            self._backoff(target)
            return
        try:
            conn = await connect(
                target.host,
                target.port,
                self._local,
                expected_peer=target.expected_peer,
                **self.dial_options(target.host),
            )
        except PeerMismatchError as exc:
            self._backoff(target)
            await self._on_mismatch(exc, target.host, target.port)
            return
        except HandshakeError as exc:
            log.debug("dial %s:%s failed: %s", target.host, target.port, exc)
            self._backoff(target)
            return
        finally:
            target.dialing = False
            self._wake.set()  # it counts again for the loop's sleep (see _next_look)
        if target.expected_peer is None:
            target.expected_peer = conn.remote.peer_id
        await self._serve(conn)

    def _backoff_peer(self, peer_id: bytes) -> None:
        """A link to ``peer_id`` died young: wait longer before each new attempt."""
        for target in self.targets.values():
            if target.expected_peer == peer_id:
                self._backoff(target)

    def _backoff(self, target: Target) -> None:
        target.failures += 1
        base = self.config.dial_backoff_initial * (2 ** min(target.failures - 1, 16))
        delay = min(self.config.dial_backoff_max, base) * random.uniform(0.8, 1.2)  # noqa: S311
        target.next_at = time.monotonic() + delay
        self._wake.set()  # the loop may be asleep past the new time: it looks again

    # ------------------------------------------------------------------ links

    async def _accept(self, conn: Connection) -> None:
        """Listener callback: serve an incoming connection for its lifetime."""
        await self._serve(conn)

    def _initiator_of(self, conn: Connection) -> bytes:
        return self.me if conn.initiator else conn.remote.peer_id

    def _keep_new(self, old: Connection, new: Connection) -> bool:
        """Which of two connections to one peer survives (same answer on both sides)."""
        if self._initiator_of(old) == self._initiator_of(new):
            return True  # a reconnect: the old one is stale
        preferred = min(self.me, new.remote.peer_id)
        return self._initiator_of(new) == preferred

    async def _serve(self, conn: Connection) -> None:
        peer = conn.remote.peer_id
        if peer == self.me:
            await conn.close("connected to ourselves")
            return
        if conn.remote.purpose != "chat" and not conn.initiator:
            # Side channels (file transfers) never count as the peer's chat link. Only
            # the initiator's purpose counts: a responder cannot know it when it writes
            # its hello, so a connection we dialled for chat is chat whatever it says.
            if self._on_other_purpose is None:
                await conn.close("unsupported purpose")
            else:
                await self._on_other_purpose(conn)
            return
        old = self.links.get(peer)
        replaced = False
        if old is not None and not old.conn.is_closed:
            if not self._keep_new(old.conn, conn):
                await conn.close("duplicate connection")
                return
            replaced = True
        elif len(self.links) >= self.config.max_links:
            await conn.close("too many peers")
            self._backoff_peer(peer)
            return
        link = Link(conn)
        self.links[peer] = link
        if replaced and old is not None:
            await old.conn.close("replaced by a newer connection")
        started = time.monotonic()
        # Catching up (flushing the outbox, syncing rooms) runs alongside reading: if
        # both sides flushed large outboxes before reading, each would wait forever on
        # the other's full buffer.
        catch_up: asyncio.Future[None] | None = None
        try:
            await self._on_up(conn, replaced)
            if self._on_ready is not None:
                catch_up = asyncio.ensure_future(self._on_ready(conn))
            await self._read_loop(link)
        finally:
            if catch_up is not None and not catch_up.done():
                catch_up.cancel()
            elif catch_up is not None and not catch_up.cancelled() and catch_up.exception():
                log.error("catching up with a peer failed", exc_info=catch_up.exception())
            if self.links.get(peer) is link:
                del self.links[peer]
                reason = conn.closed_reason or "closed"
                await conn.close(reason)
                if not self._stopping:
                    await self._on_down(peer, reason)
                    # A link that lived a while was healthy: reconnect at once. One that
                    # died young (refused, blocked, crashing peer) must not be redialled
                    # in a tight loop: back off as for a failed dial.
                    if time.monotonic() - started >= self.config.keepalive_interval:
                        self.redial_soon(peer)
                    else:
                        self._backoff_peer(peer)
                    self._wake.set()  # its targets count again (see _next_look)

    async def _read_loop(self, link: Link) -> None:
        conn = link.conn
        with contextlib.suppress(ConnectionClosedError):
            while True:
                frame = await conn.recv()
                link.last_recv = time.monotonic()
                if isinstance(frame, Ping):
                    # Not while our buffer to it is backed up: a peer that pings and never
                    # reads would have us queue pongs without end (the frames we sent
                    # already tell it we are alive once it reads them).
                    if not conn.backed_up:
                        self.write(conn.remote.peer_id, Pong(n=frame.n))
                elif isinstance(frame, Pong):
                    pass
                elif isinstance(frame, Bye):
                    await conn.close(f"peer left: {frame.reason}")
                    return
                else:
                    await self._on_frame(conn, frame)

    async def _keepalive_loop(self) -> None:
        interval = self.config.keepalive_interval
        while not self._stopping:
            await asyncio.sleep(max(0.05, interval / 3))
            now = time.monotonic()
            for peer, link in list(self.links.items()):
                if link.conn.is_closed:
                    continue  # being closed already; its own task reports it down
                if now - link.last_recv > self.config.dead_after:
                    log.info("peer %s silent for too long; dropping link", short_id(peer))
                    # Closed beside the loop: a close may wait its grace time on a peer
                    # that reads nothing, and several such peers must not hold up the
                    # pings (and drops) of every other link one after another.
                    self._spawn(link.conn.close("peer stopped answering"), "close silent")
                elif now - link.last_sent > interval or now - link.last_recv > interval:
                    link.pings += 1
                    self.write(peer, Ping(n=link.pings))
