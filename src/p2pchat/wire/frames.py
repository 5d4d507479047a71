"""Typed application frames of the p2pchat protocol, and the signed message envelope.

Each frame is a frozen dataclass whose class attribute ``TYPE`` is its ``t`` value on the
wire; field names are the wire keys. Validation and msgpack encoding live in
:mod:`p2pchat.wire.codec`; constructing a dataclass here checks nothing, so values that
came from a peer must only ever be obtained through ``decode_frame``/``decode_envelope``.

This module never signs, verifies or encrypts anything: :meth:`Envelope.signing_bytes`
only produces the canonical bytes the *identity* layer signs.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import ClassVar, Final, TypeAlias

import msgpack

from .limits import PROTOCOL_VERSION

__all__ = [
    "ENVELOPE_SIGNING_CONTEXT",
    "ENVELOPE_SIGNING_CONTEXT_V2",
    "PURPOSE_CHAT",
    "PURPOSE_FILES",
    "RECEIPT_DELIVERED",
    "RECEIPT_READ",
    "Bye",
    "Chunk",
    "ChunkError",
    "ChunkRequest",
    "Envelope",
    "Frame",
    "Hello",
    "MessageFrame",
    "OnionAddress",
    "Ping",
    "Pong",
    "Profile",
    "Receipt",
    "SyncHeads",
    "Typing",
    "Want",
]

#: First element of the array an envelope signature covers (domain separation, versioned).
ENVELOPE_SIGNING_CONTEXT: Final = "p2pchat/envelope/v1"
#: The same for envelopes that carry ``deps`` (group rooms, protocol 2): a v1 signature
#: can never be replayed as a v2 envelope or the other way round.
ENVELOPE_SIGNING_CONTEXT_V2: Final = "p2pchat/envelope/v2"

#: ``hello.purpose`` of a chat connection.
PURPOSE_CHAT: Final = "chat"
#: ``hello.purpose`` of a connection used only to pull file chunks.
PURPOSE_FILES: Final = "files"
#: ``rcpt.st``: the recipient stored the messages durably.
RECEIPT_DELIVERED: Final = "delivered"
#: ``rcpt.st``: the messages were shown to the person.
RECEIPT_READ: Final = "read"


@dataclass(frozen=True, slots=True, kw_only=True)
class Hello:
    """Handshake payload (Noise messages 2 and 3): who I am and what I speak.

    ``sig`` is the identity key's Ed25519 signature over
    ``b"p2pchat/noise-static/v1" || noise_static_public_key``; ``port`` is the sender's
    listening TCP port, if it has one. ``name`` is empty in message 2: the responder
    tells its name in a :class:`Profile` frame once the initiator proved its id.
    """

    TYPE: ClassVar[str] = "hello"
    id: bytes
    sig: bytes
    name: str
    v: int = PROTOCOL_VERSION
    caps: tuple[str, ...] = ()
    purpose: str = PURPOSE_CHAT
    port: int | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Envelope:
    """One message as its author signed it; relayed unchanged between room members.

    Not a frame by itself: it travels inside :class:`MessageFrame` and is stored as the
    bytes of ``encode_envelope``. ``sig`` covers :meth:`signing_bytes`.
    """

    room: bytes
    id: bytes
    author: bytes
    seq: int
    lamport: int
    ts: int
    kind: str
    body: bytes
    reply_to: bytes | None = None
    #: Group rooms only: ids of the room's membership operations its author had seen
    #: last (the heads of the room's operation graph), which authority is judged against.
    deps: tuple[bytes, ...] | None = None
    sig: bytes

    @classmethod
    def unsigned(
        cls,
        *,
        room: bytes,
        id: bytes,
        author: bytes,
        seq: int,
        lamport: int,
        ts: int,
        kind: str,
        body: bytes,
        reply_to: bytes | None = None,
        deps: tuple[bytes, ...] | None = None,
    ) -> Envelope:
        """Build an envelope with an empty ``sig``, to be signed then :meth:`with_sig`."""
        return cls(
            room=room,
            id=id,
            author=author,
            seq=seq,
            lamport=lamport,
            ts=ts,
            kind=kind,
            body=body,
            reply_to=reply_to,
            deps=deps,
            sig=b"",
        )

    def with_sig(self, sig: bytes) -> Envelope:
        """Return a copy of this envelope carrying ``sig``."""
        return dataclasses.replace(self, sig=sig)

    def signing_bytes(self) -> bytes:
        """Canonical bytes the author signs (every field but ``sig``).

        ``msgpack.packb([ENVELOPE_SIGNING_CONTEXT, room, id, author, seq, lamport, ts,
        kind, body, reply_to], use_bin_type=True)``; an envelope with ``deps`` signs
        ``[ENVELOPE_SIGNING_CONTEXT_V2, ..., reply_to, [deps...]]``. An array, so there is
        no key order to disagree on, and msgpack-python always picks the shortest encoding
        of each value, so the result is deterministic. docs/protocol.md spells out the bytes.
        """
        fields: list[object] = [
            ENVELOPE_SIGNING_CONTEXT if self.deps is None else ENVELOPE_SIGNING_CONTEXT_V2,
            self.room,
            self.id,
            self.author,
            self.seq,
            self.lamport,
            self.ts,
            self.kind,
            self.body,
            self.reply_to,
        ]
        if self.deps is not None:
            fields.append(list(self.deps))
        return msgpack.packb(fields, use_bin_type=True)


@dataclass(frozen=True, slots=True, kw_only=True)
class MessageFrame:
    """Delivers (or relays) one signed envelope."""

    TYPE: ClassVar[str] = "msg"
    env: Envelope


@dataclass(frozen=True, slots=True, kw_only=True)
class Receipt:
    """Reports that messages of a room were delivered (stored) or read (shown)."""

    TYPE: ClassVar[str] = "rcpt"
    room: bytes
    ids: tuple[bytes, ...]
    st: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Typing:
    """The sender started (``on``) or stopped typing in a room."""

    TYPE: ClassVar[str] = "typing"
    room: bytes
    on: bool


@dataclass(frozen=True, slots=True, kw_only=True)
class Ping:
    """Liveness probe; the peer answers with a :class:`Pong` carrying the same ``n``."""

    TYPE: ClassVar[str] = "ping"
    n: int


@dataclass(frozen=True, slots=True, kw_only=True)
class Pong:
    """Answer to a :class:`Ping`."""

    TYPE: ClassVar[str] = "pong"
    n: int


@dataclass(frozen=True, slots=True, kw_only=True)
class Profile:
    """The sender's display name: after a rename, and as a responder's first frame.

    A responder names itself here rather than in its hello, which goes to an initiator
    not yet authenticated; an empty name there means it withholds it from that peer.
    """

    TYPE: ClassVar[str] = "profile"
    name: str


@dataclass(frozen=True, slots=True, kw_only=True)
class SyncHeads:
    """Anti-entropy summary: for each author, the highest contiguous ``seq`` held in a room."""

    TYPE: ClassVar[str] = "sync"
    room: bytes
    heads: tuple[tuple[bytes, int], ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class Want:
    """Asks for ``count`` envelopes of ``author`` in ``room``, from seq ``start`` on."""

    TYPE: ClassVar[str] = "want"
    room: bytes
    author: bytes
    start: int
    count: int


@dataclass(frozen=True, slots=True, kw_only=True)
class ChunkRequest:
    """Asks for ``length`` bytes at ``offset`` of the file whose SHA-256 is ``hash``.

    With ``count`` > 1, asks for ``count`` consecutive pieces of ``length`` bytes from
    ``offset`` on, each answered by its own ``chunk`` (all with this ``req``), stopping
    early after the piece that reaches the end of the file. ``count`` 1 is not sent on
    the wire (servers that predate it answer the first piece only).
    """

    TYPE: ClassVar[str] = "get"
    req: int
    hash: bytes
    offset: int
    length: int
    count: int = 1


@dataclass(frozen=True, slots=True, kw_only=True)
class Chunk:
    """Bytes of a file, answering the :class:`ChunkRequest` with the same ``req``."""

    TYPE: ClassVar[str] = "chunk"
    req: int
    hash: bytes
    offset: int
    data: bytes


@dataclass(frozen=True, slots=True, kw_only=True)
class ChunkError:
    """Refusal to serve the :class:`ChunkRequest` with the same ``req``."""

    TYPE: ClassVar[str] = "nochunk"
    req: int
    hash: bytes
    reason: str


@dataclass(frozen=True, slots=True, kw_only=True)
class OnionAddress:
    """The sender's onion service: where contacts reach it through tor, off the LAN.

    ``addr`` is the 56-character v3 address (no ".onion"), ``port`` its virtual port and
    ``ts`` when it was signed (ms; a newer one replaces an older one). ``sig`` is the
    sender's identity key's signature over :func:`p2pchat.wire.onion.onion_signing_bytes`,
    so the address is bound to the identity: no link in between can swap it.
    """

    TYPE: ClassVar[str] = "onion"
    addr: str
    port: int
    ts: int
    sig: bytes


@dataclass(frozen=True, slots=True, kw_only=True)
class Bye:
    """The sender is closing the connection on purpose."""

    TYPE: ClassVar[str] = "bye"
    reason: str


Frame: TypeAlias = (
    Hello
    | MessageFrame
    | Receipt
    | Typing
    | Ping
    | Pong
    | Profile
    | SyncHeads
    | Want
    | ChunkRequest
    | Chunk
    | ChunkError
    | OnionAddress
    | Bye
)
