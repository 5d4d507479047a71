"""Secure connections over real loopback sockets: handshake, frames, attacks."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import time
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any, cast

import pytest

from p2pchat.crypto.noise import DecryptError, HandshakeState, KeyPair
from p2pchat.identity import Identity
from p2pchat.transport import (
    PROLOGUE,
    Connection,
    ConnectionClosedError,
    HandshakeError,
    Listener,
    ListenerLimits,
    LocalHello,
    PeerMismatchError,
    connect,
)
from p2pchat.transport.connection import WRITE_HIGH_WATER
from p2pchat.transport.listener import HandshakeTable
from p2pchat.wire import Chunk, Hello, Ping, Pong, Profile, Typing, decode_frame, encode_frame
from tests.proxy import FaultProxy

WAIT = 10.0


class Server:
    """A listener that queues every authenticated connection."""

    def __init__(self, local: LocalHello, limits: ListenerLimits | None = None) -> None:
        self.accepted: asyncio.Queue[Connection] = asyncio.Queue()
        self.listener = Listener(local, self._on_connection, limits)
        self._done = asyncio.Event()

    async def _on_connection(self, conn: Connection) -> None:
        await self.accepted.put(conn)
        await self._done.wait()  # keep the handler alive while the test uses it

    async def next(self) -> Connection:
        async with asyncio.timeout(WAIT):
            return await self.accepted.get()

    async def stop(self) -> None:
        self._done.set()
        await self.listener.stop()


def hello(name: str, identity: Identity | None = None) -> LocalHello:
    return LocalHello(identity=identity or Identity.generate(), name=name)


@pytest.fixture
async def server() -> AsyncIterator[Server]:
    srv = Server(hello("bob"))
    await srv.listener.start("127.0.0.1", 0)
    yield srv
    await srv.stop()


async def test_handshake_proves_both_ids(server: Server) -> None:
    alice = hello("alice")
    conn = await connect("127.0.0.1", server.listener.port, alice)
    other = await server.next()
    assert conn.remote.peer_id == server.listener._local.identity.peer_id
    assert conn.remote.name == "bob"
    assert other.remote.peer_id == alice.identity.peer_id
    assert other.remote.name == "alice"
    assert conn.remote.handshake_hash == other.remote.handshake_hash
    await conn.close()


async def test_ten_thousand_frames_in_order_both_ways(server: Server) -> None:
    conn = await connect("127.0.0.1", server.listener.port, hello("alice"))
    other = await server.next()
    count = 10_000

    async def pump(src: Connection) -> None:
        for n in range(count):
            src.write_frame(Ping(n=n))
            if n % 256 == 0:
                await src.flush()
        await src.flush()

    async def drain(dst: Connection) -> list[int]:
        got = []
        while len(got) < count:
            frame = await dst.recv()
            assert isinstance(frame, Ping)
            got.append(frame.n)
        return got

    async with asyncio.timeout(60):
        _, _, a_got, b_got = await asyncio.gather(
            pump(conn), pump(other), drain(conn), drain(other)
        )
    assert a_got == list(range(count))
    assert b_got == list(range(count))
    await conn.close()


async def _through_proxy(server: Server, hook: object) -> tuple[Connection, Connection, FaultProxy]:
    proxy = await FaultProxy("127.0.0.1", server.listener.port, hook=hook).start()  # type: ignore[arg-type]
    conn = await connect("127.0.0.1", proxy.port, hello("alice"))
    other = await server.next()
    return conn, other, proxy


async def test_tampered_byte_kills_the_connection(server: Server) -> None:
    def flip(direction: str, index: int, msg: bytes) -> list[bytes]:
        # index 0/1 are handshake messages c2s; index 2 is the first transport frame
        if direction == "c2s" and index == 3:
            return [msg[:5] + bytes([msg[5] ^ 0x01]) + msg[6:]]
        return [msg]

    conn, other, proxy = await _through_proxy(server, flip)
    await conn.send(Ping(n=1))
    await conn.send(Ping(n=2))
    async with asyncio.timeout(WAIT):
        assert await other.recv() == Ping(n=1)
        with pytest.raises(ConnectionClosedError, match="decryption failed"):
            await other.recv()
    assert other.is_closed
    await proxy.stop()


async def test_replayed_ciphertext_is_rejected(server: Server) -> None:
    def replay(direction: str, index: int, msg: bytes) -> list[bytes]:
        if direction == "c2s" and index == 2:
            return [msg, msg]
        return [msg]

    conn, other, proxy = await _through_proxy(server, replay)
    await conn.send(Ping(n=7))
    async with asyncio.timeout(WAIT):
        assert await other.recv() == Ping(n=7)
        with pytest.raises(ConnectionClosedError, match="decryption failed"):
            await other.recv()
    await proxy.stop()


async def test_reordered_ciphertexts_are_rejected(server: Server) -> None:
    held: list[bytes] = []

    def swap(direction: str, index: int, msg: bytes) -> list[bytes]:
        if direction == "c2s" and index == 2:
            held.append(msg)
            return []
        if direction == "c2s" and index == 3:
            return [msg, *held]
        return [msg]

    conn, other, proxy = await _through_proxy(server, swap)
    await conn.send(Ping(n=1))
    await conn.send(Ping(n=2))
    async with asyncio.timeout(WAIT):
        with pytest.raises(ConnectionClosedError, match="decryption failed"):
            await other.recv()
    await proxy.stop()


async def test_silent_peer_is_dropped_at_the_deadline() -> None:
    srv = Server(hello("bob"), ListenerLimits(handshake_timeout=0.5))
    await srv.listener.start("127.0.0.1", 0)
    reader, writer = await asyncio.open_connection("127.0.0.1", srv.listener.port)
    started = time.monotonic()
    async with asyncio.timeout(WAIT):
        assert await reader.read() == b""  # the server hung up on us
    assert time.monotonic() - started >= 0.4
    assert srv.listener.rejected_handshakes == 1
    assert srv.listener.pending == 0
    writer.close()
    await srv.stop()


async def test_pending_handshakes_are_capped_per_host_without_starving_others() -> None:
    limits = ListenerLimits(max_pending=64, max_pending_per_host=4, handshake_timeout=5)
    srv = Server(hello("bob"), limits)
    await srv.listener.start("127.0.0.1", 0)
    silent = []
    for _ in range(12):  # a flood from 127.0.0.9
        silent.append(
            await asyncio.open_connection(
                "127.0.0.1", srv.listener.port, local_addr=("127.0.0.9", 0)
            )
        )
    # Each one over the cap displaced that address's oldest: the first 8 are dropped.
    async with asyncio.timeout(WAIT):
        for reader, _ in silent[:8]:
            assert await reader.read() == b""
    assert srv.listener.pending_from("127.0.0.9") == 4
    # A real peer from another address still gets in while the flood is pending.
    conn = await connect("127.0.0.1", srv.listener.port, hello("alice"))
    await srv.next()
    assert srv.listener.pending == 4
    assert srv.listener.evicted_handshakes == 8
    for _, writer in silent:
        writer.close()
    await conn.close()
    await srv.stop()


async def test_a_full_table_drops_a_flood_slot_not_the_newcomer() -> None:
    limits = ListenerLimits(max_pending=8, max_pending_per_host=4, handshake_timeout=5)
    srv = Server(hello("bob"), limits)
    await srv.listener.start("127.0.0.1", 0)
    silent = [
        await asyncio.open_connection("127.0.0.1", srv.listener.port, local_addr=(src, 0))
        for src in ("127.0.0.2", "127.0.0.3")
        for _ in range(4)
    ]
    async with asyncio.timeout(WAIT):
        while srv.listener.pending < 8:  # noqa: ASYNC110 - the table emits no event
            await asyncio.sleep(0.01)
    # The table is full; today's peer is let in and one flood connection pays for it.
    conn = await connect("127.0.0.1", srv.listener.port, hello("alice"))
    await srv.next()
    assert srv.listener.evicted_handshakes == 1
    assert srv.listener.pending == 7
    for _, writer in silent:
        writer.close()
    await conn.close()
    await srv.stop()


async def test_silent_connection_gets_a_short_deadline_for_message_1() -> None:
    limits = ListenerLimits(handshake_timeout=30, first_message_timeout=0.3)
    srv = Server(hello("bob"), limits)
    await srv.listener.start("127.0.0.1", 0)
    reader, writer = await asyncio.open_connection("127.0.0.1", srv.listener.port)
    async with asyncio.timeout(WAIT):  # far less than the 30 s handshake deadline
        assert await reader.read() == b""
    assert srv.listener.pending == 0
    writer.close()
    await srv.stop()


def test_eviction_prefers_the_busiest_source_then_silence_then_age() -> None:
    table = HandshakeTable(max_pending=4, max_per_host=3)
    writer = cast(asyncio.StreamWriter, object())
    a1, _ = table.admit("a", writer)
    a2, _ = table.admit("a", writer)
    table.admit("b", writer)
    a1.spoke = True
    # "a" holds the most slots; of its two, the one that never spoke goes first.
    assert table.victim() is a2
    c1, evicted = table.admit("c", writer)
    _, evicted2 = table.admit("c", writer)
    assert evicted == []
    assert evicted2 == [a2]
    # Now c holds the most slots (two): its oldest silent one would go next.
    assert table.victim() is c1
    # A source at its own cap displaces its own oldest, never someone else's.
    table2 = HandshakeTable(max_pending=10, max_per_host=2)
    x1, _ = table2.admit("x", writer)
    table2.admit("y", writer)
    x2, _ = table2.admit("x", writer)
    _, evicted3 = table2.admit("x", writer)
    assert evicted3 == [x1]
    assert table2.count("x") == 2
    assert table2.count("y") == 1
    table2.remove(x2)
    table2.remove(x2)  # idempotent
    assert table2.count("x") == 1
    assert table.count("b") == 1
    assert len(table) == 4


async def test_connecting_to_the_wrong_peer_raises_mismatch(server: Server) -> None:
    expected = Identity.generate().peer_id
    with pytest.raises(PeerMismatchError, match="impersonating"):
        await connect("127.0.0.1", server.listener.port, hello("alice"), expected_peer=expected)


async def _raw_initiator(
    port: int,
    *,
    prologue: bytes = PROLOGUE,
    hello_frame: Hello | None = None,
    static: KeyPair | None = None,
    first_message: bytes | None = None,
) -> bytes:
    """Drive a handshake by hand; returns what the server sent last (b'' if it hung up)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        hs = HandshakeState("XX", initiator=True, prologue=prologue, s=static or KeyPair.generate())
        msg1 = first_message if first_message is not None else hs.write_message(b"")
        writer.write(len(msg1).to_bytes(2, "big") + msg1)
        await writer.drain()
        header = await reader.readexactly(2)
        msg2 = await reader.readexactly(int.from_bytes(header, "big"))
        hs.read_message(msg2)
        assert hello_frame is not None
        msg3 = hs.write_message(encode_frame(hello_frame))
        writer.write(len(msg3).to_bytes(2, "big") + msg3)
        await writer.drain()
        send, _ = hs.split()
        ct = send.encrypt(encode_frame(Ping(n=1)))
        writer.write(len(ct).to_bytes(2, "big") + ct)
        await writer.drain()
        async with asyncio.timeout(WAIT):
            return await reader.read()
    finally:
        writer.close()


async def test_peer_claiming_another_id_is_rejected(server: Server) -> None:
    victim = Identity.generate()
    mallory_static = KeyPair.generate()
    # Mallory replays the victim's real certificate, but for her own static key.
    forged = Hello(
        id=victim.peer_id,
        sig=victim.static_key_signature(),
        name="victim",
        v=1,
        caps=(),
        purpose="chat",
        port=None,
    )
    assert (
        await _raw_initiator(server.listener.port, hello_frame=forged, static=mallory_static) == b""
    )
    assert server.accepted.empty()
    assert server.listener.rejected_handshakes == 1


async def test_protocol_version_mismatch_fails(server: Server) -> None:
    me = Identity.generate()
    static = KeyPair.from_private(me.noise_private)
    newer = Hello(
        id=me.peer_id,
        sig=me.static_key_signature(),
        name="future",
        v=2,
        caps=(),
        purpose="chat",
        port=None,
    )
    assert await _raw_initiator(server.listener.port, hello_frame=newer, static=static) == b""
    assert server.accepted.empty()


async def test_prologue_mismatch_fails_the_handshake(server: Server) -> None:
    me = Identity.generate()
    ok = Hello(
        id=me.peer_id,
        sig=me.static_key_signature(),
        name="old",
        v=1,
        caps=(),
        purpose="chat",
        port=None,
    )
    with pytest.raises(DecryptError):  # our side cannot even decrypt message 2
        await _raw_initiator(server.listener.port, prologue=b"p2pchat/0", hello_frame=ok)
    assert server.accepted.empty()


LOW_ORDER_POINTS = [
    bytes(32),
    bytes([1]) + bytes(31),
    bytes.fromhex("e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800"),
    bytes.fromhex("5f9c95bca3508c24b1d0b1559c83ef5b04445cc4581c8e86d8224eddd09f1157"),
    bytes.fromhex("ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f"),
]


@pytest.mark.parametrize("first", [*LOW_ORDER_POINTS, b"\x01" * 31, b"\x01" * 33])
async def test_bad_ephemeral_keys_abort_the_handshake_cleanly(server: Server, first: bytes) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", server.listener.port)
    writer.write(len(first).to_bytes(2, "big") + first)
    await writer.drain()
    async with asyncio.timeout(WAIT):
        assert await reader.read() == b""
    writer.close()
    assert server.accepted.empty()
    # The listener is unharmed: a real peer still connects.
    conn = await connect("127.0.0.1", server.listener.port, hello("alice"))
    await server.next()
    await conn.close()


@pytest.mark.parametrize("bad_e", LOW_ORDER_POINTS)
async def test_initiator_rejects_a_responder_with_a_low_order_key(bad_e: bytes) -> None:
    async def evil(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(Exception):
            await reader.readexactly(2 + 32)
            reply = bad_e + bytes(48 + 16)  # e, encrypted s, tag of empty payload
            writer.write(len(reply).to_bytes(2, "big") + reply)
            await writer.drain()
            await reader.read()

    evil_server = await asyncio.start_server(evil, "127.0.0.1", 0)
    port = evil_server.sockets[0].getsockname()[1]
    with pytest.raises(HandshakeError, match="handshake failed"):
        await connect("127.0.0.1", port, hello("alice"))
    evil_server.close()


async def test_malformed_frame_after_handshake_closes_with_reason(server: Server) -> None:
    conn = await connect("127.0.0.1", server.listener.port, hello("alice"))
    other = await server.next()
    # Bypass the encoder: a valid ciphertext of garbage plaintext.
    ct = conn._send.encrypt(b"\xc1garbage")
    conn._writer.write(len(ct).to_bytes(2, "big") + ct)
    async with asyncio.timeout(WAIT):
        with pytest.raises(ConnectionClosedError, match="malformed frame"):
            await other.recv()


async def test_unknown_frame_types_are_skipped(server: Server) -> None:
    import msgpack

    conn = await connect("127.0.0.1", server.listener.port, hello("alice"))
    other = await server.next()
    future = msgpack.packb({"t": "hologram", "x": 1})
    assert decode_frame(future) is None
    ct = conn._send.encrypt(future)
    conn._writer.write(len(ct).to_bytes(2, "big") + ct)
    await conn.send(Typing(room=b"r" * 16, on=True))
    async with asyncio.timeout(WAIT):
        assert await other.recv() == Typing(room=b"r" * 16, on=True)
    await other.send(Pong(n=3))
    async with asyncio.timeout(WAIT):
        assert await conn.recv() == Pong(n=3)


async def test_send_frames_encrypts_in_worker_threads_in_order(server: Server) -> None:
    conn = await connect("127.0.0.1", server.listener.port, hello("alice"))
    other = await server.next()
    frames = [
        Chunk(req=1, hash=b"h" * 32, offset=i * 60000, data=bytes([i]) * 60000) for i in range(40)
    ]
    with ThreadPoolExecutor(max_workers=2) as pool:
        await conn.send_frames(frames[:20], pool)
        conn.write_frames(frames[20:30])  # goes out between the batches, in call order
        await conn.send_frames(frames[30:], pool)
        got: list[object] = []
        async with asyncio.timeout(WAIT):
            while len(got) < len(frames):
                got.append(await other.recv())
    assert got == frames
    assert other.frames_received == conn.frames_sent == 40


async def test_either_side_may_withhold_its_name_from_a_proven_peer() -> None:
    shy = LocalHello(identity=Identity.generate(), name="bob", reveal_name=lambda _peer: False)
    srv = Server(shy)
    await srv.listener.start("127.0.0.1", 0)
    seen: list[bytes] = []

    def only_bob(peer: bytes) -> bool:
        seen.append(peer)
        return False

    alice = LocalHello(identity=Identity.generate(), name="alice", reveal_name=only_bob)
    conn = await connect("127.0.0.1", srv.listener.port, alice)
    other = await srv.next()
    assert conn.remote.name == ""
    assert other.remote.name == ""
    assert seen == [shy.identity.peer_id]  # asked about the proven peer, once
    await conn.close()
    await srv.stop()


async def _responder_that_sends_first(frame_after_handshake: object) -> asyncio.Server:
    """A hand-written responder: a valid handshake, then ``frame`` before any profile."""
    me = Identity.generate()

    async def respond(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(Exception):
            hs = HandshakeState(
                "XX", initiator=False, prologue=PROLOGUE, s=KeyPair.from_private(me.noise_private)
            )
            hs.read_message(await reader.readexactly(int.from_bytes(await reader.readexactly(2))))
            payload = encode_frame(Hello(id=me.peer_id, sig=me.static_key_signature(), name=""))
            msg2 = hs.write_message(payload)
            writer.write(len(msg2).to_bytes(2, "big") + msg2)
            hs.read_message(await reader.readexactly(int.from_bytes(await reader.readexactly(2))))
            send, _ = hs.split()
            ct = send.encrypt(encode_frame(frame_after_handshake))  # type: ignore[arg-type]
            writer.write(len(ct).to_bytes(2, "big") + ct)
            await reader.read()

    return await asyncio.start_server(respond, "127.0.0.1", 0)


async def test_initiator_requires_the_responders_profile_first() -> None:
    rude = await _responder_that_sends_first(Ping(n=1))
    polite = await _responder_that_sends_first(Profile(name="carol"))
    try:
        with pytest.raises(HandshakeError, match="'ping' before its profile"):
            await connect("127.0.0.1", rude.sockets[0].getsockname()[1], hello("alice"))
        conn = await connect("127.0.0.1", polite.sockets[0].getsockname()[1], hello("alice"))
        assert conn.remote.name == "carol"
        await conn.close()
    finally:
        rude.close()
        polite.close()


# ------------------------------------------------------------------ a peer that stops reading


async def _fill_without_flushing(conn: Connection) -> float:
    """Write to ``conn`` (whose peer never reads) until our buffer stays over the mark.

    Returns the moment it went over for good. Bounded: loopback's kernel buffers take a
    few MB before they are full, and we write at most 120 MB.
    """
    chunk = Chunk(req=1, hash=b"h" * 32, offset=0, data=b"x" * 60_000)
    for _ in range(2_000):
        conn.write_frame(chunk)
        if conn._writer.transport.get_write_buffer_size() > WRITE_HIGH_WATER:
            over_at = time.monotonic()
            await asyncio.sleep(0.05)  # the kernel may still take some of it
            if conn._writer.transport.get_write_buffer_size() > WRITE_HIGH_WATER:
                return over_at
    raise AssertionError("the buffer never stayed over the high-water mark")


async def test_a_peer_that_reads_nothing_is_dropped_even_if_nobody_flushes(
    server: Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Frames written with no ``flush`` after them (pongs, receipts) fill the buffer too:
    the deadline runs from the moment it went over the mark, whether anyone waits or not."""
    deadline = 1.0
    monkeypatch.setattr("p2pchat.transport.connection.DRAIN_DEADLINE", deadline)
    sleeper = await connect("127.0.0.1", server.listener.port, hello("alice"))  # never reads
    ours = await server.next()
    over_at = await _fill_without_flushing(ours)
    async with asyncio.timeout(WAIT):
        with pytest.raises(ConnectionClosedError, match="read nothing for 1 s"):
            await ours.recv()  # the drop ends our read too
    assert deadline - 0.1 <= time.monotonic() - over_at < deadline + 2.0
    await sleeper.close()


async def test_a_flush_that_starts_late_or_is_cancelled_does_not_put_off_the_drop(
    server: Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The first sender gives up waiting (cancelled), another starts waiting just before
    the deadline: the peer is still dropped at the deadline, counted from the stall."""
    deadline = 2.0
    monkeypatch.setattr("p2pchat.transport.connection.DRAIN_DEADLINE", deadline)
    sleeper = await connect("127.0.0.1", server.listener.port, hello("alice"))  # never reads
    ours = await server.next()
    over_at = await _fill_without_flushing(ours)
    first = asyncio.create_task(ours.flush())
    await asyncio.sleep(0.3)
    first.cancel()
    await asyncio.sleep(deadline - 0.5)
    assert not ours.is_closed
    async with asyncio.timeout(WAIT):
        with pytest.raises(ConnectionClosedError, match="read nothing"):
            await ours.flush()
    # A timer restarted by the late flush would drop the peer only at about 3.8 s.
    assert time.monotonic() - over_at < deadline + 1.0
    await sleeper.close()


async def test_closing_again_after_a_close_that_gave_up_on_a_stuck_peer(server: Server) -> None:
    """The keepalive closes a peer that stopped reading (waiting at most the grace time
    for the queued bytes), then the link's own task closes it again: that second close
    must return, not raise CancelledError (which lost the PeerOffline)."""
    sleeper = await connect("127.0.0.1", server.listener.port, hello("alice"))  # never reads
    ours = await server.next()
    await _fill_without_flushing(ours)
    async with asyncio.timeout(WAIT):
        await ours.close("peer stopped answering")
        await ours.close("closed again")
    assert ours.is_closed
    assert ours.closed_reason == "peer stopped answering"
    await sleeper.close()


async def test_a_peer_that_trickles_under_the_mark_cannot_hold_a_flush_forever(
    server: Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The peer takes just enough to bring our buffer under the mark before the stall
    timer fires (which then clears itself), then reads nothing more. A flush waits for the
    buffer to go far lower than the mark; it must still end by the deadline."""
    deadline = 2.0
    monkeypatch.setattr("p2pchat.transport.connection.DRAIN_DEADLINE", deadline)
    real_open = asyncio.open_connection

    async def small_window(host: str, port: int, **kw: Any) -> Any:
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 32768)  # no autotuning
        sock.setblocking(False)
        await asyncio.get_running_loop().sock_connect(sock, (host, port))
        return await real_open(sock=sock, **kw)

    monkeypatch.setattr(asyncio, "open_connection", small_window)
    sleeper = await connect("127.0.0.1", server.listener.port, hello("alice"))
    monkeypatch.setattr(asyncio, "open_connection", real_open)
    ours = await server.next()
    ours._writer.transport.get_extra_info("socket").setsockopt(
        socket.SOL_SOCKET, socket.SO_SNDBUF, 32768
    )
    await _fill_without_flushing(ours)
    size = ours._writer.transport.get_write_buffer_size
    started = time.monotonic()
    flushing = asyncio.create_task(ours.flush())
    # The hostile peer's pacing: bytes straight off its socket, a little at a time, until
    # our buffer is somewhat under the mark; then nothing at all.
    sleeper._writer.transport.pause_reading()
    raw = sleeper._writer.transport._sock  # the raw socket (the extra info only wraps it)
    while size() > WRITE_HIGH_WATER - 100_000 and time.monotonic() - started < 0.8 * deadline:
        with contextlib.suppress(BlockingIOError):
            raw.recv(2048)
        await asyncio.sleep(0.005)
    assert size() <= WRITE_HIGH_WATER, "the peer could not bring the buffer under the mark"
    async with asyncio.timeout(deadline + WAIT):
        with pytest.raises(ConnectionClosedError, match="read nothing"):
            await flushing
    assert time.monotonic() - started < deadline + 1.0
    await sleeper.close()
