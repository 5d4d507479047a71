"""Claims of docs/security.md that no other test backed (issue 10: no claim without a test).

Each test is named after the attack it defeats and runs real nodes over real TCP on
loopback; each would fail if the defence it names were missing.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import hashlib
import json
import logging
import os
import socket
import stat
import time
from collections.abc import AsyncIterator
from pathlib import Path

import nacl.pwhash
import pytest

from p2pchat.cli import main
from p2pchat.discovery import PeerSeen
from p2pchat.identity import Identity, KdfParams, encode_peer_id, save_identity
from p2pchat.node import MessageAdded, Node, SecurityWarning
from p2pchat.node.envelopes import direct_room_id, new_message_id
from p2pchat.node.events import PeerOffline, PeerOnline, PeerUpdated, TypingChanged
from p2pchat.node.links import MAX_CONCURRENT_DIALS
from p2pchat.node.quota import FloodGuard, FloodLimits, FloodNotice
from p2pchat.node.service import MAX_STRANGER_LINKS
from p2pchat.node.stream import MAX_BACKLOG, EventHub, EventStream
from p2pchat.profile import open_profile
from p2pchat.store import MessageStatus, Store
from p2pchat.transport import Connection, ConnectionClosedError, LocalHello, connect
from p2pchat.transport.connection import CLOSE_GRACE, WRITE_HIGH_WATER
from p2pchat.wire import Ping, Profile, Receipt
from p2pchat.wire.frames import RECEIPT_DELIVERED, RECEIPT_READ
from tests.adversary.hostile import hostile_peer
from tests.node.groups_helpers import befriend, start_nodes
from tests.nodes import WAIT, connected_pair, make_node, stop_all, wait_for
from tests.proxy import FaultProxy


def is_added(message_id: bytes) -> object:
    return lambda e: isinstance(e, MessageAdded) and e.message.id == message_id


# ------------------------------------------------------------------ passive observer


async def test_a_passive_observer_sees_no_message_text_or_name_on_the_wire(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Everything after the handshake is encrypted: neither the text nor the names pass
    in the clear. Every byte between the two nodes is recorded by a proxy in the middle."""
    alice = make_node("alice")
    bob = make_node("bob")
    alice.profile.set_display_name("Alicia Quartermaine")
    bob.profile.set_display_name("Bartholomew Zelinski")
    await alice.start()
    await bob.start()
    wire: list[bytes] = []

    def record(direction: str, index: int, message: bytes) -> list[bytes]:
        wire.append(message)
        return [message]

    proxy = await FaultProxy("127.0.0.1", bob.port, hook=record).start()
    # Bob must not dial Alice directly (he would, from her hello): only the proxied link.
    bob_add_target = bob.links.add_target

    def only_through_the_proxy(
        host: str, port: int, source: str, expected_peer: bytes | None = None
    ) -> None:
        if expected_peer != alice.me:
            bob_add_target(host, port, source, expected_peer)

    monkeypatch.setattr(bob.links, "add_target", only_through_the_proxy)
    secret = "the vault code is 48151623 and the password is swordfish"
    try:
        events = bob.subscribe()
        alice.links.add_target("127.0.0.1", proxy.port, "manual", bob.me)
        await wait_for(events, lambda e: isinstance(e, PeerOnline) and e.peer_id == alice.me)
        await alice.accept(bob.me)
        await bob.accept(alice.me)
        sent = await alice.send_text(bob.me, secret)
        await wait_for(events, is_added(sent.id))  # type: ignore[arg-type]
        a_events = alice.subscribe()
        reply = await bob.send_text(alice.me, secret)
        await wait_for(a_events, is_added(reply.id))  # type: ignore[arg-type]
    finally:
        await proxy.stop()
        await stop_all([alice, bob])
    seen = b"".join(wire)
    assert proxy.connections >= 1
    assert len(seen) > 200
    for clear in (secret, "swordfish", "Alicia", "Bartholomew", "Zelinski"):
        assert clear.encode() not in seen, f"{clear!r} crossed the wire in the clear"


# ------------------------------------------------------------------ mDNS spoofing


async def test_an_mdns_announcement_answered_by_another_id_is_refused_with_a_warning() -> None:
    """An announcement is only a hint: the address it names must prove the announced id.

    The announcement is fed to the node's discovery callback as zeroconf would deliver it
    (multicast is not available on loopback here); Mallory listens at the address.
    """
    alice, mallory = await start_nodes(["alice", "mallory"])
    victim = Identity.generate()  # the id Mallory's announcement claims
    events = alice.subscribe()
    try:
        alice._on_discovery(
            PeerSeen(encode_peer_id(victim.peer_id), "bob", (("127.0.0.1", mallory.port),), 1)
        )
        warning = await wait_for(events, lambda e: isinstance(e, SecurityWarning))
        assert isinstance(warning, SecurityWarning)
        assert warning.peer_id == victim.peer_id
        assert "proved to be" in warning.text
        assert not alice.links.is_online(mallory.me)
        assert not mallory.links.is_online(alice.me)
    finally:
        events.close()
        await stop_all([alice, mallory])


# ------------------------------------------------------------------ who we dial


class DialCounter:
    """A bare TCP listener on a port a node used to listen on: counts who dials it."""

    def __init__(self) -> None:
        self.dials = 0
        self.dialled = asyncio.Event()
        self._server: asyncio.Server | None = None

    async def start(self, port: int) -> DialCounter:
        async def accept(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            self.dials += 1
            self.dialled.set()
            writer.transport.abort()

        self._server = await asyncio.start_server(accept, "127.0.0.1", port)
        return self

    async def wait_dials(self, count: int) -> None:
        async with asyncio.timeout(WAIT):
            while self.dials < count:
                self.dialled.clear()
                await self.dialled.wait()

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()


async def test_blocked_peers_and_strangers_are_never_dialled() -> None:
    """Bob blocks Alice; Mallory, a stranger, connected to Bob once. All three then go
    away, and only listeners remain at their addresses. Bob redials his contact Carol
    again and again, so he had every chance to dial the other two: he dials neither."""
    bob, alice, carol, mallory = await start_nodes(["bob", "alice", "carol", "mallory"])
    counters: list[DialCounter] = []
    try:
        await befriend(bob, alice)
        await befriend(bob, carol)
        await connected_pair(mallory, bob)  # Mallory dials Bob and tells him her port
        await bob.block(alice.me)
        ports = {"alice": alice.port, "carol": carol.port, "mallory": mallory.port}
        await stop_all([alice, carol, mallory])
        at = {name: await DialCounter().start(port) for name, port in ports.items()}
        counters = list(at.values())
        await at["carol"].wait_dials(3)  # the control: Bob dials whom he should, repeatedly
        assert at["alice"].dials == 0, "a blocked peer was dialled"
        assert at["mallory"].dials == 0, "a stranger's advertised port was dialled"
    finally:
        for counter in counters:
            await counter.stop()
        await bob.stop()


# ------------------------------------------------------------------ stranger connections


async def open_raw(node: Node, identity: Identity) -> Connection:
    return await connect(
        "127.0.0.1",
        node.port,
        LocalHello(identity=identity, name="throwaway"),
        expected_peer=node.me,
        deadline=WAIT,
    )


async def until_closed(conn: Connection) -> None:
    with contextlib.suppress(ConnectionClosedError):
        while True:
            await conn.recv()


async def test_throwaway_identities_cannot_hold_more_than_32_connections() -> None:
    """Strangers hold at most MAX_STRANGER_LINKS connections at once; a contact's link
    is not one of them and keeps working."""
    alice, bob = await start_nodes(["alice", "bob"])
    extra = 8
    conns: list[Connection] = []
    watchers: list[asyncio.Task[None]] = []
    try:
        await befriend(alice, bob)
        for _ in range(MAX_STRANGER_LINKS + extra):
            conn = await open_raw(alice, Identity.generate())
            conns.append(conn)
            watchers.append(asyncio.create_task(until_closed(conn)))
        async with asyncio.timeout(WAIT):
            while sum(w.done() for w in watchers) < extra:
                await asyncio.wait(
                    [w for w in watchers if not w.done()], return_when=asyncio.FIRST_COMPLETED
                )
        assert sum(1 for p in alice.links.links if p not in (bob.me,)) == MAX_STRANGER_LINKS
        assert alice.links.is_online(bob.me)
        events = alice.subscribe()
        sent = await bob.send_text(alice.me, "still reachable")
        await wait_for(events, is_added(sent.id))  # type: ignore[arg-type]
    finally:
        for w in watchers:
            w.cancel()
        for conn in conns:
            with contextlib.suppress(Exception):
                await conn.close()
        await stop_all([alice, bob])


# ------------------------------------------------------------------ secrets in logs


async def test_logs_never_hold_message_text_or_private_keys(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Everything p2pchat logs at any level while two contacts chat and a stranger's
    messages are refused (the refusals are logged with the peer and the reason), checked
    for the texts and for every private key."""
    caplog.set_level(logging.DEBUG)
    alice, bob = await start_nodes(["alice", "bob"])
    secret = "my pin is 9021 and nobody else may read it"
    mallory = await hostile_peer("mallory", alice)
    try:
        await befriend(alice, bob)
        events = alice.subscribe()
        sent = await bob.send_text(alice.me, secret)
        await wait_for(events, is_added(sent.id))  # type: ignore[arg-type]
        too_large = mallory.direct(alice.me, body=(secret * 200).encode())
        forged = dataclasses.replace(mallory.direct(alice.me), body=secret.encode())
        fence = mallory.direct(alice.me, body=b"fence")
        mallory.send_envelopes(alice.me, too_large, forged, fence)
        await wait_for(events, is_added(fence.id))  # type: ignore[arg-type]
        keys = [
            k
            for node in (alice, bob, mallory.node)
            for k in (node.identity.signing_seed, node.identity.noise_private)
        ]
    finally:
        await stop_all([alice, bob, mallory.node])
    assert "dropped" in caplog.text, "no refusal was logged: the check would prove nothing"
    logged = "\n".join([caplog.text, *(repr(r.args) for r in caplog.records)])
    assert secret not in logged
    for key in keys:
        assert key.hex() not in logged
        assert repr(key) not in logged


# ------------------------------------------------------------------ key file and backup


def test_a_sealed_key_file_uses_argon2id_at_libsodiums_moderate_cost(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The cost a stolen key file makes an attacker pay per guess. The hash itself is
    replaced by a fast one (256 MiB per test run is not affordable); what is checked is
    the cost the file records and that the key is sealed under it."""
    used: list[KdfParams] = []

    def fast_derive(passphrase: str, salt: bytes, params: KdfParams) -> bytes:
        used.append(params)
        return hashlib.blake2b(passphrase.encode() + salt, digest_size=32).digest()

    monkeypatch.setattr("p2pchat.identity._derive_key", fast_derive)
    path = tmp_path / "identity.key"
    save_identity(path, Identity.generate(), "a passphrase")
    sealed = json.loads(path.read_bytes())["sealed"]
    assert sealed["kdf"] == "argon2id"
    assert sealed["opslimit"] == nacl.pwhash.argon2id.OPSLIMIT_MODERATE
    assert sealed["memlimit"] == nacl.pwhash.argon2id.MEMLIMIT_MODERATE == 256 * 1024 * 1024
    assert used == [KdfParams()]


def test_a_backup_file_is_readable_by_its_owner_only(tmp_path: Path) -> None:
    profile = open_profile("owner")
    with Store.open(profile.store_path) as store:
        store.set_setting("hello", "world")
    profile.mark_store_created()
    backup = tmp_path / "owner.backup"
    old = os.umask(0o022)
    try:
        assert main(["--profile", "owner", "backup", str(backup)]) == 0
    finally:
        os.umask(old)
    assert stat.S_IMODE(backup.stat().st_mode) == 0o600


# ------------------------------------------------------------------ strangers learn nothing


async def test_a_stranger_gets_no_typing_indicator() -> None:
    """Someone who wrote to us unasked cannot learn that we are answering: our typing is
    not sent to them. The reply itself is the fence: anything sent before it on the same
    link would reach Mallory first."""
    alice, mallory = await start_nodes(["alice", "mallory"])
    try:
        await connected_pair(mallory, alice)
        a_events, m_events = alice.subscribe(), mallory.subscribe()
        hello = await mallory.send_text(alice.me, "hi, remember me?")
        await wait_for(a_events, is_added(hello.id))  # type: ignore[arg-type]
        await alice.mark_read(alice.direct_room(mallory.me))
        await alice.set_typing(mallory.me, True)
        reply = await alice.send_text(mallory.me, "who is this?")
        seen: list[object] = []
        async with asyncio.timeout(WAIT):
            async for event in m_events:
                seen.append(event)
                if isinstance(event, MessageAdded) and event.message.id == reply.id:
                    break
        assert not [e for e in seen if isinstance(e, TypingChanged)]
    finally:
        await stop_all([alice, mallory])


# ------------------------------------------------------------------ flood notices


async def test_a_flooding_peer_cannot_flood_the_person_with_warnings() -> None:
    """However many messages a peer gets refused, the person hears of it at most once per
    ``notice_interval`` (30 s by default; 0.3 s here), each notice with the count since
    the previous one, so no refusal goes untold."""
    assert FloodLimits().notice_interval == 30.0
    interval = 0.3
    limits = FloodLimits(daily_bytes=1000, message_overhead=0, notice_interval=interval)
    notices: list[tuple[float, FloodNotice]] = []
    arrived = asyncio.Event()

    def on_notice(notice: FloodNotice) -> None:
        notices.append((time.monotonic(), notice))
        arrived.set()

    guard = FloodGuard(limits, on_notice, clock=time.monotonic)
    try:
        assert guard.allow_store(b"m", 1000)
        assert not guard.allow_store(b"m", 10)  # the first refusal is told at once
        assert [n.refused for _, n in notices] == [1]
        arrived.clear()
        for _ in range(50):
            assert not guard.allow_store(b"m", 10)
        assert len(notices) == 1  # the next notice waits for the interval
        async with asyncio.timeout(WAIT):
            await arrived.wait()
        assert [n.refused for _, n in notices] == [1, 50]
        assert notices[1][0] - notices[0][0] >= interval * 0.9
    finally:
        guard.close()


# ------------------------------------------------------------------ what strangers can park


class DropWatch(logging.Handler):
    """Counts the node's "dropped message" log records with a given reason.

    Refused messages produce no event, only this log line; waiting on it is waiting on
    the refusal itself, not on time.
    """

    def __init__(self, reason: str) -> None:
        super().__init__(logging.INFO)
        self.reason = reason
        self.count = 0
        self.changed = asyncio.Event()
        self._logger = logging.getLogger("p2pchat.node.direct")

    def emit(self, record: logging.LogRecord) -> None:
        if self.reason in record.getMessage():
            self.count += 1
            self.changed.set()

    async def until(self, count: int) -> None:
        async with asyncio.timeout(WAIT):
            while self.count < count:
                self.changed.clear()
                await self.changed.wait()

    def __enter__(self) -> DropWatch:
        self._old_level = self._logger.level
        self._logger.setLevel(logging.INFO)
        self._logger.addHandler(self)
        return self

    def __exit__(self, *exc: object) -> None:
        self._logger.removeHandler(self)
        self._logger.setLevel(self._old_level)


async def test_a_contact_request_holds_at_most_100_messages() -> None:
    alice = make_node("alice")
    await alice.start()
    mallory = await hostile_peer("mallory", alice)
    limit = alice.config.max_messages_per_request
    assert limit == 100
    try:
        with DropWatch("holds too many messages") as drops:
            envs = [mallory.direct(alice.me, body=f"m{i}".encode()) for i in range(limit + 5)]
            events = alice.subscribe()
            mallory.send_envelopes(alice.me, *envs)
            waiting = {e.id for e in envs[:limit]}
            async with asyncio.timeout(WAIT):
                async for event in events:
                    if isinstance(event, MessageAdded):
                        waiting.discard(event.message.id)
                        if not waiting:
                            break
            await drops.until(5)  # the refusals of the five beyond the limit
            events.close()
        stored = await alice.history(alice.direct_room(mallory.me), limit=1000)
        assert sorted(m.seq for m in stored) == list(range(1, limit + 1))
    finally:
        await stop_all([alice, mallory.node])


async def test_a_strangers_renames_and_receipts_cost_no_disk_writes(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A peer that merely connected can send renames and receipts as fast as it likes;
    none of them makes us write to the store. Every store write of the node goes through
    ``Node._write``, which is counted (not replaced)."""
    alice = make_node("alice")
    await alice.start()
    mallory = await hostile_peer("mallory", alice)
    writes: list[object] = []
    real_write = alice._write

    async def counted(fn: object, **kwargs: object) -> object:
        writes.append(fn)
        return await real_write(fn, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(alice, "_write", counted)
    events = alice.subscribe()
    try:
        room = direct_room_id(mallory.me, alice.me)
        for i in range(50):
            st = RECEIPT_READ if i % 2 else RECEIPT_DELIVERED
            mallory.send(alice.me, Receipt(room=room, ids=(new_message_id(),), st=st))
            mallory.send(alice.me, Profile(name=f"mallory {i}"))
        # Frames of one link are handled in order: the last rename comes after them all.
        await wait_for(events, lambda e: isinstance(e, PeerUpdated) and e.name == "mallory 49")
        assert writes == []
        stored = await alice._read(lambda s: s.get_peer(mallory.me))
        assert stored is not None
        assert stored.name == "mallory"  # as it was when it connected
    finally:
        events.close()
        await stop_all([alice, mallory.node])


# ------------------------------------------------------------------ a peer that stops reading


async def _flood_until_stuck(alice: Node, sleeper: Identity) -> tuple[asyncio.Task[None], float]:
    """Alice writes to ``sleeper`` (which never reads) until her buffer is over its mark.

    Returns the flood (it ends when the link closes; at most ~16 MB, far beyond what
    loopback buffers hold) and the moment the buffer went over.
    """
    link = alice.links.links[sleeper.peer_id].conn
    body = "x" * 40_000

    async def flood() -> None:
        for _ in range(400):
            if link.is_closed:
                return
            await alice.send_text(sleeper.peer_id, body)

    flooding = asyncio.create_task(flood())
    async with asyncio.timeout(WAIT):
        while link._writer.transport.get_write_buffer_size() <= WRITE_HIGH_WATER:
            assert not flooding.done(), "the flood ended before the link was stuck"
            await asyncio.sleep(0.02)
    return flooding, time.monotonic()


async def test_a_peer_that_stops_reading_is_dropped_and_delays_no_one_else(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A contact's client completes the handshake and then never reads, though it keeps
    sending pings (so the keepalive finds it alive). Alice keeps writing to it until her
    buffer is full; while that link is stuck, her chat with Bob goes on both ways at full
    speed, and the drain deadline (30 s; 10 s here, longer than the tests' 6 s keepalive
    timeout) after her buffer went over its mark, the stuck link is dropped. Its messages
    stay in Alice's outbox."""
    deadline = 10.0
    monkeypatch.setattr("p2pchat.transport.connection.DRAIN_DEADLINE", deadline)
    alice, bob = await start_nodes(["alice", "bob"])
    sleeper = Identity.generate()
    flooding: asyncio.Task[None] | None = None
    pinging: asyncio.Task[None] | None = None
    events = alice.subscribe()
    try:
        await befriend(alice, bob)
        stuck = await open_raw(alice, sleeper)  # never read from
        await wait_for(events, lambda e: isinstance(e, PeerOnline) and e.peer_id == sleeper.peer_id)
        await alice.accept(sleeper.peer_id)
        link = alice.links.links[sleeper.peer_id].conn

        async def keep_pinging() -> None:
            with contextlib.suppress(ConnectionClosedError):
                for n in range(100):
                    await stuck.send(Ping(n=n))
                    await asyncio.sleep(1.0)

        pinging = asyncio.create_task(keep_pinging())
        flooding, over_at = await _flood_until_stuck(alice, sleeper)
        b_events = bob.subscribe()
        to_bob = await alice.send_text(bob.me, "are you there?")
        assert await alice.wait_for_status(to_bob.id, MessageStatus.DELIVERED, deadline)
        from_bob = await bob.send_text(alice.me, "yes")
        assert await bob.wait_for_status(from_bob.id, MessageStatus.DELIVERED, deadline)
        b_events.close()
        assert time.monotonic() - over_at < deadline
        assert not link.is_closed, "the chat with Bob had to wait for the stuck link"
        offline = await wait_for(
            events, lambda e: isinstance(e, PeerOffline) and e.peer_id == sleeper.peer_id
        )
        assert isinstance(offline, PeerOffline)
        assert "read nothing" in offline.reason
        assert deadline - 0.5 <= time.monotonic() - over_at < deadline + 3.0
        async with asyncio.timeout(WAIT):
            await flooding
        waiting = await alice._read(lambda s: s.pending_for(sleeper.peer_id, 10_000))
        assert waiting, "undelivered messages must stay in the outbox"
        await stuck.close()
    finally:
        for task in (flooding, pinging):
            if task is not None:
                task.cancel()
        events.close()
        await stop_all([alice, bob])


async def test_a_peer_that_stops_reading_and_answering_is_dropped_by_the_keepalive() -> None:
    """A contact that neither reads nor sends while Alice's buffer to it is full is
    dropped by the keepalive once it was silent for ``dead_after`` (6 s in tests, well
    before the 30 s drain deadline), and the app is told it went offline. The keepalive's
    close gave up on the queued bytes after a grace time, and that once left the link's
    own close raising CancelledError: no PeerOffline, ever."""
    alice = make_node("alice")
    await alice.start()
    sleeper = Identity.generate()
    flooding: asyncio.Task[None] | None = None
    events = alice.subscribe()
    try:
        stuck = await open_raw(alice, sleeper)  # never read from, never written to
        await wait_for(events, lambda e: isinstance(e, PeerOnline) and e.peer_id == sleeper.peer_id)
        await alice.accept(sleeper.peer_id)
        flooding, _ = await _flood_until_stuck(alice, sleeper)
        limit = alice.config.dead_after + CLOSE_GRACE + alice.config.keepalive_interval
        offline = await wait_for(
            events, lambda e: isinstance(e, PeerOffline) and e.peer_id == sleeper.peer_id, limit
        )
        assert isinstance(offline, PeerOffline)
        assert "stopped answering" in offline.reason
        assert not alice.links.is_online(sleeper.peer_id)
        async with asyncio.timeout(WAIT):
            await flooding
        await stuck.close()
    finally:
        if flooding is not None:
            flooding.cancel()
        events.close()
        await alice.stop()


@contextlib.asynccontextmanager
async def _stuck_contacts(
    alice: Node, events: EventStream, count: int
) -> AsyncIterator[set[bytes]]:
    """``count`` contacts that read nothing, Alice's buffer to each over its mark (floods
    side by side); yields their ids, and cancels the floods and closes them after."""
    sleepers = [Identity.generate() for _ in range(count)]
    stuck: list[Connection] = []
    floods: list[asyncio.Task[None]] = []
    try:
        for sleeper in sleepers:
            stuck.append(await open_raw(alice, sleeper))
            await wait_for(
                events, lambda e, p=sleeper.peer_id: isinstance(e, PeerOnline) and e.peer_id == p
            )
            await alice.accept(sleeper.peer_id)
        started = await asyncio.gather(*(_flood_until_stuck(alice, s) for s in sleepers))
        floods = [flood for flood, _ in started]
        yield {s.peer_id for s in sleepers}
    finally:
        for flood in floods:
            flood.cancel()
        for conn in stuck:
            await conn.close()


async def test_several_silent_stuck_peers_are_dropped_together_not_one_after_another(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Three contacts neither read nor send while Alice's buffers to them are full. Each
    close waits its grace time on bytes the peer will never take; the keepalive closed
    them one after another, so n such peers held up its pings and drops for n graces.
    All three go offline within one grace of each other."""
    grace = 4.0
    monkeypatch.setattr("p2pchat.transport.connection.CLOSE_GRACE", grace)
    alice = make_node("alice")
    await alice.start()
    events = alice.subscribe()
    try:
        async with _stuck_contacts(alice, events, 3) as ids:
            limit = alice.config.dead_after + grace + alice.config.keepalive_interval + WAIT
            offline_at: dict[bytes, float] = {}
            async with asyncio.timeout(limit):
                while len(offline_at) < len(ids):
                    event = await events.get()
                    if isinstance(event, PeerOffline) and event.peer_id in ids:
                        offline_at[event.peer_id] = time.monotonic()
        spread = max(offline_at.values()) - min(offline_at.values())
        assert spread < grace, f"drops {spread:.1f} s apart: closed one after another"
    finally:
        events.close()
        await alice.stop()


async def test_a_peer_that_pings_and_never_reads_gets_no_endless_pongs() -> None:
    """A stranger sends pings as fast as it can and reads nothing: each ping used to queue
    a pong in Alice's memory (8.5 MB in 8 s). Once her buffer to it is over the mark she
    stops answering, so the buffer stays near the mark until the drain deadline drops it."""
    alice = make_node("alice")
    await alice.start()
    pinger = Identity.generate()
    events = alice.subscribe()
    try:
        raw = await open_raw(alice, pinger)  # never read from
        await wait_for(events, lambda e: isinstance(e, PeerOnline) and e.peer_id == pinger.peer_id)
        ours = alice.links.links[pinger.peer_id].conn
        # A fixed small send buffer (no autotuning): the pongs pile up in Alice's memory,
        # not in the kernel's, so a bounded number of pings shows the growth.
        ours._writer.transport.get_extra_info("socket").setsockopt(
            socket.SOL_SOCKET, socket.SO_SNDBUF, 32768
        )
        sent = 0
        async with asyncio.timeout(WAIT * 2):
            for _ in range(300):  # 150,000 pings: some 6 MB of pongs if all were answered
                raw.write_frames([Ping(n=i) for i in range(500)])
                sent += 500
                await raw.flush()
            while ours.frames_received < sent:  # noqa: ASYNC110 (no event per frame read)
                await asyncio.sleep(0.01)
        buffered = ours._writer.transport.get_write_buffer_size()
        assert buffered < WRITE_HIGH_WATER + 64 * 1024, f"{buffered:,} bytes of pongs queued"
        await raw.close()
    finally:
        events.close()
        await alice.stop()


async def test_quitting_does_not_wait_for_stuck_peers_one_after_another(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Three contacts read nothing and Alice's buffers to them are full when she quits:
    each close may wait its grace time, side by side, not one grace per peer."""
    grace = 3.0
    monkeypatch.setattr("p2pchat.transport.connection.CLOSE_GRACE", grace)
    alice = make_node("alice")
    await alice.start()
    events = alice.subscribe()
    try:
        async with _stuck_contacts(alice, events, 3):
            started = time.monotonic()
            await alice.stop()
            took = time.monotonic() - started
        assert took < 2 * grace, f"quitting took {took:.1f} s: closed one after another"
    finally:
        events.close()
        await alice.stop()


# ------------------------------------------------------------------ bounded queues and dials


async def test_a_subscriber_that_never_reads_holds_a_bounded_backlog() -> None:
    """A UI or control client that stops reading its events must not grow the node's
    memory without end: its stream keeps MAX_BACKLOG events and counts the rest."""
    hub = EventHub()
    stream = hub.subscribe()
    for i in range(MAX_BACKLOG + 25):
        hub.emit(PeerOffline(bytes(32), f"reason {i}"))
    assert stream._queue.qsize() == MAX_BACKLOG
    assert stream.dropped == 25


async def test_addresses_that_never_answer_cannot_make_a_node_dial_without_limit() -> None:
    """Forty addresses (as a spoofed mDNS flood or a long address list would give) that
    accept TCP and then say nothing: at most MAX_CONCURRENT_DIALS dials are open at once,
    and the dialler still gets round to the others as dials time out."""
    accepted = 0
    open_now = 0
    most_open = 0
    arrived = asyncio.Event()

    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal accepted, open_now, most_open
        accepted += 1
        open_now += 1
        most_open = max(most_open, open_now)
        arrived.set()
        try:
            await reader.read()  # until the dialler gives up
        finally:
            open_now -= 1
            writer.transport.abort()

    servers = [await asyncio.start_server(silent, "127.0.0.1", 0) for _ in range(40)]
    alice = make_node("alice", handshake_deadline=1.0)
    await alice.start()
    try:
        for server in servers:
            port = server.sockets[0].getsockname()[1]
            alice.links.add_target("127.0.0.1", port, "manual", Identity.generate().peer_id)
        async with asyncio.timeout(WAIT):
            while accepted < 24:  # beyond the first round of dials
                arrived.clear()
                await arrived.wait()
        assert MAX_CONCURRENT_DIALS == 16
        assert 4 <= most_open <= 16  # many at once, never all forty
    finally:
        await alice.stop()
        for server in servers:
            server.close()
