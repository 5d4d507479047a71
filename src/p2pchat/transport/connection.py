"""One authenticated, encrypted connection to one peer, and the handshake that makes it.

Handshake (Noise_XX_25519_ChaChaPoly_BLAKE2b, prologue ``b"p2pchat/1"``)::

    -> e                                  (no payload)
    <- e, ee, s, es   + hello(responder)  (peer id, certificate of its static key, ...)
    -> s, se          + hello(initiator)
    <- profile(responder)                 (first transport message: the display name)

Each side then checks that the peer id in the hello certifies the static key that Noise
authenticated (``identity.verify_static_key``). Every Noise message travels as a 2-byte
big-endian length and the message. After the handshake each transport message is one
encrypted msgpack frame (``p2pchat.wire``).

The responder's hello goes to an initiator nobody has authenticated yet, so it carries
no display name: the name follows in a ``profile`` frame once message 3 proved who the
initiator is, and only if ``LocalHello.reveal_name`` allows it for that peer. ``connect``
waits for that frame, so a ``RemotePeer`` always has the name its peer chose to tell.

This module never decides *whether* to talk to a peer (contacts, blocking): that is the
node's job. It only proves who is on the other end and moves frames.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Callable, Coroutine, Iterable, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass, field, replace
from typing import Any, NoReturn, TypeVar

from p2pchat.crypto.noise import (
    MAX_MESSAGE_LEN,
    CipherState,
    HandshakeState,
    KeyPair,
    NoiseError,
)
from p2pchat.identity import Identity, encode_peer_id, short_id, verify_static_key
from p2pchat.transport.socks import socks5_connect
from p2pchat.wire import (
    PROTOCOL_VERSION,
    Frame,
    FrameDecodeError,
    FrameReader,
    Hello,
    Profile,
    WireError,
    decode_frame,
    encode_frame,
)

log = logging.getLogger(__name__)

T = TypeVar("T")

PROLOGUE = b"p2pchat/1"
HANDSHAKE_TIMEOUT = 10.0
# A real initiator writes message 1 as soon as TCP is up; a connection silent for this
# long is a flood or a dead peer, and gives its listener slot back early.
FIRST_MESSAGE_TIMEOUT = 2.0
# Leave a wide margin below 2**64-1: a connection this old is closed and redialled, so a
# nonce can never be reused or run out mid-conversation.
NONCE_LIMIT = 2**62
# Our write buffer may hold this much before ``send`` waits for the socket to drain.
WRITE_HIGH_WATER = 1 << 20
# A peer whose buffer stays over WRITE_HIGH_WATER this long is dropped, counted from the
# moment the buffer went over (not from when someone began to wait on it).
DRAIN_DEADLINE = 30.0
# How long ``close`` lets the socket send what is queued before it drops it.
CLOSE_GRACE = 2.0
# Bytes taken from the stream at once after the handshake: whole runs of messages are
# split out of one read instead of two ``readexactly`` calls per message.
READ_SIZE = 1 << 18
# The StreamReader of connections we dial buffers up to twice this before pausing the
# socket (a bulk download pauses and resumes far less often than with one message's worth).
STREAM_LIMIT = 1 << 18


class TransportError(Exception):
    """Base class of connection problems."""


class HandshakeError(TransportError):
    """The handshake failed: bad keys, bad certificate, wrong version, timeout, ..."""


class PeerMismatchError(HandshakeError):
    """The peer proved an id other than the one we dialled (possible impersonation)."""

    def __init__(self, expected: bytes, actual: bytes) -> None:
        super().__init__(
            f"expected peer {short_id(expected)} but {short_id(actual)} answered; "
            "the address hint was wrong or someone is impersonating that peer"
        )
        self.expected = expected
        self.actual = actual


class ConnectionClosedError(TransportError):
    """The connection is closed; ``reason`` says why, when known."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class LocalHello:
    """What we tell peers about ourselves in the handshake.

    ``reveal_name`` decides, once a peer's id is proven, whether it may learn ``name``
    (None: every authenticated peer may); a peer refused gets an empty name.
    """

    identity: Identity
    name: str
    purpose: str = "chat"
    port: int | None = None
    caps: tuple[str, ...] = ()
    reveal_name: Callable[[bytes], bool] | None = field(default=None, compare=False)

    def name_for(self, peer_id: bytes) -> str:
        """The display name to tell the proven peer ``peer_id`` ("" to withhold it)."""
        if self.reveal_name is None or self.reveal_name(peer_id):
            return self.name
        return ""


@dataclass(frozen=True)
class RemotePeer:
    """What the handshake proved (id) and what the peer claims (the rest)."""

    peer_id: bytes
    name: str
    version: int
    purpose: str
    port: int | None
    caps: tuple[str, ...]
    host: str
    handshake_hash: bytes = field(repr=False)

    @property
    def peer_id_text(self) -> str:
        """The peer id as 52 base32 characters."""
        return encode_peer_id(self.peer_id)


async def _read_noise_message(reader: asyncio.StreamReader) -> bytes:
    """Read one length-prefixed Noise message; the length is checked before reading."""
    try:
        header = await reader.readexactly(2)
        length = int.from_bytes(header, "big")
        if length == 0:
            raise FrameDecodeError("zero-length message")
        return await reader.readexactly(length)
    except asyncio.IncompleteReadError:
        raise ConnectionClosedError("peer closed the connection") from None
    except (ConnectionError, OSError) as exc:
        raise ConnectionClosedError(f"connection lost: {exc}") from None


def _prefixed(message: bytes) -> bytes:
    if len(message) > MAX_MESSAGE_LEN:
        raise TransportError(f"Noise message of {len(message)} bytes exceeds {MAX_MESSAGE_LEN}")
    return len(message).to_bytes(2, "big") + message


def _hello_bytes(local: LocalHello, name: str) -> bytes:
    return encode_frame(
        Hello(
            id=local.identity.peer_id,
            sig=local.identity.static_key_signature(),
            name=name,
            v=PROTOCOL_VERSION,
            caps=local.caps,
            purpose=local.purpose,
            port=local.port,
        )
    )


def _check_hello(payload: bytes, remote_static: bytes | None) -> Hello:
    """Decode the peer's hello and prove its id owns the static key Noise saw."""
    try:
        frame = decode_frame(payload)
    except WireError as exc:
        raise HandshakeError(f"malformed hello: {exc}") from None
    if not isinstance(frame, Hello):
        raise HandshakeError("handshake payload is not a hello")
    if frame.v != PROTOCOL_VERSION:
        raise HandshakeError(f"peer speaks protocol version {frame.v}, we speak {PROTOCOL_VERSION}")
    if remote_static is None or not verify_static_key(frame.id, remote_static, frame.sig):
        raise HandshakeError("peer's static key is not certified by the id it claims")
    return frame


def _remote(hello: Hello, host: str, handshake_hash: bytes) -> RemotePeer:
    return RemotePeer(
        peer_id=hello.id,
        name=hello.name,
        version=hello.v,
        purpose=hello.purpose,
        port=hello.port,
        caps=tuple(hello.caps),
        host=host,
        handshake_hash=handshake_hash,
    )


def _peer_host(writer: asyncio.StreamWriter) -> str:
    peername = writer.get_extra_info("peername")
    if isinstance(peername, tuple) and peername:
        return str(peername[0])
    return "?"


async def _initiate(
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    local: LocalHello,
    expected_peer: bytes | None,
) -> Connection:
    hs = HandshakeState(
        "XX",
        initiator=True,
        prologue=PROLOGUE,
        s=KeyPair.from_private(local.identity.noise_private),
    )
    writer.write(_prefixed(hs.write_message(b"")))
    await writer.drain()
    payload = hs.read_message(await _read_noise_message(reader))
    hello = _check_hello(payload, hs.remote_static)
    if expected_peer is not None and hello.id != expected_peer:
        raise PeerMismatchError(expected_peer, hello.id)
    # The responder is proven now: it may learn our name (if we want it to).
    writer.write(_prefixed(hs.write_message(_hello_bytes(local, local.name_for(hello.id)))))
    await writer.drain()
    send, recv = hs.split()
    remote = _remote(hello, _peer_host(writer), hs.handshake_hash)
    conn = Connection(reader, writer, send, recv, remote, initiator=True)
    # Its name comes in its first transport message (it withheld it from message 2).
    first = await conn.recv()
    if not isinstance(first, Profile):
        raise HandshakeError(f"responder sent {first.TYPE!r} before its profile")
    conn.remote = replace(remote, name=first.name)
    return conn


async def respond(
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    local: LocalHello,
    deadline: float = HANDSHAKE_TIMEOUT,
    *,
    first_message_deadline: float | None = None,
    on_first_message: Callable[[], None] | None = None,
) -> Connection:
    """Run the responder side of the handshake on an accepted stream.

    Message 1 must arrive within ``first_message_deadline`` seconds (if given) and the
    whole handshake within ``deadline``; ``on_first_message`` is called once message 1
    was read (the listener then treats the connection as a real initiator).
    """

    async def first_message() -> bytes:
        if first_message_deadline is None or first_message_deadline >= deadline:
            return await _read_noise_message(reader)
        try:
            async with asyncio.timeout(first_message_deadline):
                return await _read_noise_message(reader)
        except TimeoutError:
            raise HandshakeError(
                f"no handshake message within {first_message_deadline:g} s"
            ) from None

    async def run() -> Connection:
        hs = HandshakeState(
            "XX",
            initiator=False,
            prologue=PROLOGUE,
            s=KeyPair.from_private(local.identity.noise_private),
        )
        message1 = await first_message()
        if on_first_message is not None:
            on_first_message()
        if hs.read_message(message1):
            raise HandshakeError("first handshake message must carry no payload")
        # Whoever connected is not authenticated yet: no display name in message 2.
        writer.write(_prefixed(hs.write_message(_hello_bytes(local, ""))))
        await writer.drain()
        payload = hs.read_message(await _read_noise_message(reader))
        hello = _check_hello(payload, hs.remote_static)
        send, recv = hs.split()
        remote = _remote(hello, _peer_host(writer), hs.handshake_hash)
        conn = Connection(reader, writer, send, recv, remote, initiator=False)
        conn.write_frame(Profile(name=local.name_for(hello.id)))
        return conn

    return await _guarded_handshake(run(), writer, deadline)


async def _guarded_handshake(
    coro: Coroutine[Any, Any, Connection],
    writer: asyncio.StreamWriter,
    deadline: float,
) -> Connection:
    """Apply the deadline and turn every failure into a HandshakeError, closing the socket."""
    try:
        async with asyncio.timeout(deadline):
            return await coro
    except TimeoutError:
        _abort(writer)
        raise HandshakeError(f"handshake not finished within {deadline:g} s") from None
    except HandshakeError:
        _abort(writer)
        raise
    except (NoiseError, WireError) as exc:
        _abort(writer)
        raise HandshakeError(f"handshake failed: {exc}") from None
    except ConnectionClosedError as exc:
        _abort(writer)
        raise HandshakeError(f"handshake failed: {exc.reason}") from None
    except (ConnectionError, OSError) as exc:
        _abort(writer)
        raise HandshakeError(f"handshake failed: {exc}") from None


def _abort(writer: asyncio.StreamWriter) -> None:
    with contextlib.suppress(Exception):
        writer.transport.abort()


async def connect(
    host: str,
    port: int,
    local: LocalHello,
    *,
    expected_peer: bytes | None = None,
    deadline: float = HANDSHAKE_TIMEOUT,
    proxy: tuple[str, int] | None = None,
) -> Connection:
    """Dial ``host:port`` and run the initiator handshake within ``deadline`` seconds.

    ``expected_peer`` is the id we believe lives there (from mDNS or a stored address);
    if another id answers, PeerMismatchError is raised and the connection dropped.
    With ``proxy`` (tor's SOCKS port) the TCP stream is asked of the proxy by name, and
    the connection's remote host is ``host`` (the onion address) with no port: what a
    peer says about its LAN port means nothing on the far side of tor.
    """
    try:
        async with asyncio.timeout(deadline):
            if proxy is None:
                reader, writer = await asyncio.open_connection(host, port, limit=STREAM_LIMIT)
            else:
                reader, writer = await asyncio.open_connection(*proxy, limit=STREAM_LIMIT)
                try:
                    await socks5_connect(reader, writer, host, port)
                except BaseException:
                    _abort(writer)
                    raise
    except TimeoutError:
        raise HandshakeError(f"could not reach {host}:{port} within {deadline:g} s") from None
    except OSError as exc:
        raise HandshakeError(f"could not reach {host}:{port}: {exc.strerror or exc}") from None
    conn = await _guarded_handshake(
        _initiate(reader, writer, local, expected_peer), writer, deadline
    )
    if proxy is not None:
        conn.remote = replace(conn.remote, host=host, port=None)
    return conn


class Connection:
    """An established secure connection: send and receive frames, then close.

    ``send`` may be called from several tasks; frames go out in call order because each
    one is encrypted and written synchronously (no await between encrypt and write).
    ``recv`` must be used by one task at a time.
    """

    def __init__(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        send_cipher: CipherState,
        recv_cipher: CipherState,
        remote: RemotePeer,
        *,
        initiator: bool,
    ) -> None:
        self._reader = reader
        self._writer = writer
        self._send = send_cipher
        self._recv = recv_cipher
        self.remote = remote
        self.initiator = initiator
        self._closed_reason: str | None = None
        self.frames_sent = 0
        self.frames_received = 0
        # Transport messages read but not yet decrypted: at most one read's worth, and at
        # most one incomplete message inside the FrameReader.
        self._framer = FrameReader()
        self._ready: deque[bytes] = deque()
        # True while a batch is being encrypted in a worker thread (send_frames): no other
        # frame may take a nonce meanwhile.
        self._sealing = False
        # Armed while our write buffer is over WRITE_HIGH_WATER: drops the peer when it
        # is still over DRAIN_DEADLINE seconds later, whether or not a ``flush`` waits.
        self._stall_timer: asyncio.TimerHandle | None = None

    def __repr__(self) -> str:
        return (
            f"<Connection {short_id(self.remote.peer_id)}@{self.remote.host} {self.remote.purpose}>"
        )

    @property
    def is_closed(self) -> bool:
        """True once either side closed or a protocol error killed the connection."""
        return self._closed_reason is not None or self._writer.is_closing()

    @property
    def closed_reason(self) -> str | None:
        """Why the connection closed, if it did."""
        return self._closed_reason

    def _check_nonce(self, cipher: CipherState) -> None:
        if cipher.nonce >= NONCE_LIMIT:
            self._fail("nonce limit reached; reconnect")

    def write_frame(self, frame: Frame) -> None:
        """Encrypt and queue ``frame`` without waiting (callers drain with ``flush``)."""
        if self.is_closed:
            raise ConnectionClosedError(self._closed_reason or "connection closed")
        self.write_encoded(encode_frame(frame))

    def write_encoded(self, plaintext: bytes) -> None:
        """Encrypt and queue an already encoded frame (e.g. one kept in the outbox)."""
        if self.is_closed:
            raise ConnectionClosedError(self._closed_reason or "connection closed")
        if self._sealing:
            raise TransportError("a batch of frames is being encrypted; wait for send_frames")
        self._check_nonce(self._send)
        if self._stall_timer is not None:  # the buffer may have dipped under the mark since
            self._watch_buffer()
        ciphertext = self._send.encrypt(plaintext)
        self._writer.write(len(ciphertext).to_bytes(2, "big") + ciphertext)
        self.frames_sent += 1
        self._watch_buffer()

    def write_frames(self, frames: Iterable[Frame]) -> None:
        """Encrypt several frames and hand them to the socket in one write."""
        self.write_encoded_many([encode_frame(f) for f in frames])

    def write_encoded_many(self, plaintexts: Iterable[bytes]) -> None:
        """Encrypt several encoded frames, in order, and queue them."""
        if self.is_closed:
            raise ConnectionClosedError(self._closed_reason or "connection closed")
        if self._sealing:
            raise TransportError("a batch of frames is being encrypted; wait for send_frames")
        if self._stall_timer is not None:
            self._watch_buffer()
        send = self._send
        write = self._writer.write
        for plaintext in plaintexts:
            self._check_nonce(send)
            ciphertext = send.encrypt(plaintext)
            write(len(ciphertext).to_bytes(2, "big") + ciphertext)
            self.frames_sent += 1
        self._watch_buffer()

    def _seal(self, items: Sequence[T], encode: Callable[[T], bytes]) -> list[bytes]:
        """Encode and encrypt ``items`` into length-prefixed messages (any thread)."""
        send = self._send
        out: list[bytes] = []
        for item in items:
            if send.nonce >= NONCE_LIMIT:
                break  # the caller fails the connection
            ciphertext = send.encrypt(encode(item))
            out.append(len(ciphertext).to_bytes(2, "big") + ciphertext)
        return out

    async def send_frames(
        self,
        items: Sequence[T],
        executor: Executor,
        encode: Callable[[T], bytes] = encode_frame,  # type: ignore[assignment]
    ) -> None:
        """Send ``items`` in order, encoded by ``encode`` and encrypted in ``executor``.

        For bulk data (file chunks): the event loop stays free for chat meanwhile, and
        ``encode`` may be a specialised encoder that packs a chunk straight from a view
        of the file's read buffer (one copy fewer per byte). No other frame may be
        written on this connection until this returns.
        """
        if self.is_closed:
            raise ConnectionClosedError(self._closed_reason or "connection closed")
        if self._sealing:
            raise TransportError("send_frames is already running on this connection")
        loop = asyncio.get_running_loop()
        self._sealing = True
        try:
            sealed = await loop.run_in_executor(executor, self._seal, items, encode)
        except asyncio.CancelledError:
            # Nonces may have been spent on frames that will never be sent.
            self._closed_reason = self._closed_reason or "cancelled while encrypting"
            _abort(self._writer)
            raise
        finally:
            self._sealing = False
        if len(sealed) < len(items):
            self._fail("nonce limit reached; reconnect")
        if self.is_closed:
            raise ConnectionClosedError(self._closed_reason or "connection closed")
        if self._stall_timer is not None:  # the buffer may have dipped under the mark since
            self._watch_buffer()
        write = self._writer.write
        for message in sealed:
            write(message)
        self.frames_sent += len(sealed)
        await self.flush()

    async def flush(self) -> None:
        """Wait until the socket has taken our buffered bytes down to the high-water mark.

        A peer that leaves our buffer over the mark for ``DRAIN_DEADLINE`` seconds is
        dropped (ConnectionClosedError): waiting on it forever would stall whoever is
        sending. The deadline runs from when the buffer went over, so neither a later
        ``flush`` nor a cancelled one can put the drop off; and no flush waits longer
        than the deadline, however the peer paces its reading.
        """
        if not self._watch_buffer():
            return
        try:
            # drain() waits for the buffer to go down to the transport's low-water mark,
            # far below ours: a peer that takes just enough to clear the stall timer and
            # then trickles must not keep this caller waiting either.
            async with asyncio.timeout(DRAIN_DEADLINE):
                await self._writer.drain()
        except TimeoutError:
            self._fail(f"peer read nothing for {DRAIN_DEADLINE:g} s")
        except (ConnectionError, OSError) as exc:
            self._fail(f"connection lost: {exc}")
        # drain() also returns when the socket was dropped (by the stall timer or close).
        if self._closed_reason is not None:
            raise ConnectionClosedError(self._closed_reason)
        self._watch_buffer()

    @property
    def backed_up(self) -> bool:
        """True while our write buffer to the peer is over the high-water mark."""
        return self._writer.transport.get_write_buffer_size() > WRITE_HIGH_WATER

    def _watch_buffer(self) -> bool:
        """Start or stop the stall timer by the write buffer's size; True when over the mark."""
        over = self._writer.transport.get_write_buffer_size() > WRITE_HIGH_WATER
        if over and self._stall_timer is None and self._closed_reason is None:
            loop = asyncio.get_running_loop()
            self._stall_timer = loop.call_later(DRAIN_DEADLINE, self._stalled)
        elif not over and self._stall_timer is not None:
            self._stall_timer.cancel()
            self._stall_timer = None
        return over

    def _stalled(self) -> None:
        """Stall timer: the buffer went over the mark DRAIN_DEADLINE seconds ago."""
        self._stall_timer = None
        stuck = self._writer.transport.get_write_buffer_size() > WRITE_HIGH_WATER
        if stuck and self._closed_reason is None:
            with contextlib.suppress(ConnectionClosedError):
                self._fail(f"peer read nothing for {DRAIN_DEADLINE:g} s")

    async def send(self, frame: Frame) -> None:
        """Send one frame (encrypt, write, and wait only if the buffer is full)."""
        self.write_frame(frame)
        await self.flush()

    async def recv(self) -> Frame:
        """The next frame from the peer; unknown frame types are skipped.

        Raises ConnectionClosedError when the peer closes, a ciphertext fails to
        authenticate (tampered, replayed, reordered) or a frame is malformed; the
        connection is closed in each case with the reason recorded.
        """
        while True:
            if self._closed_reason is not None:
                raise ConnectionClosedError(self._closed_reason)
            ready = self._ready
            if not ready:
                await self._fill()
            ciphertext = ready.popleft()
            self._check_nonce(self._recv)
            try:
                plaintext = self._recv.decrypt(ciphertext)
            except NoiseError as exc:
                self._fail(f"decryption failed ({type(exc).__name__}): tampered or replayed data")
            try:
                frame = decode_frame(plaintext)
            except WireError as exc:
                self._fail(f"malformed frame: {exc}")
            self.frames_received += 1
            if frame is not None:
                return frame

    @property
    def has_buffered(self) -> bool:
        """True if ``recv`` can return a frame without waiting for the socket."""
        return bool(self._ready)

    async def _fill(self) -> None:
        """Read from the stream until at least one whole transport message is queued."""
        while not self._ready:
            try:
                data = await self._reader.read(READ_SIZE)
            except (ConnectionError, OSError) as exc:
                self._fail(f"connection lost: {exc}")
            if not data:
                self._fail("peer closed the connection")
            try:
                self._ready.extend(self._framer.feed(data))
            except FrameDecodeError as exc:
                self._fail(f"bad framing: {exc}")

    def _fail(self, reason: str) -> NoReturn:
        """Record ``reason``, drop the socket, and raise ConnectionClosedError."""
        if self._closed_reason is None:
            self._closed_reason = reason
            log.info("closing connection to %s: %s", short_id(self.remote.peer_id), reason)
            _abort(self._writer)
        self._stop_stall_timer()
        raise ConnectionClosedError(self._closed_reason)

    def _stop_stall_timer(self) -> None:
        if self._stall_timer is not None:
            self._stall_timer.cancel()
            self._stall_timer = None

    async def close(self, reason: str = "closed") -> None:
        """Close politely: let the socket send what is queued (CLOSE_GRACE s), then drop it.

        May be called any number of times, from any task (the keepalive and the link's own
        task both do).
        """
        if self._closed_reason is None:
            self._closed_reason = reason
        self._stop_stall_timer()
        try:
            with contextlib.suppress(Exception):
                self._writer.close()
                # wait_closed() awaits a future the stream protocol shares with every
                # caller: a timeout cancelling it would make every later close() raise
                # CancelledError (that killed a link's task before it reported the link
                # down, when the keepalive had closed a peer that stopped reading).
                async with asyncio.timeout(CLOSE_GRACE):
                    await asyncio.shield(self._writer.wait_closed())
        finally:
            _abort(self._writer)
