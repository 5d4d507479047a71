"""Typed events the node emits: the one stream that feeds the UI, the CLI and scripts.

Events carry plain data (ids as bytes, store rows) so consumers never need to reach
into the node's internals. They are facts that already happened and are stored; a
consumer that misses some can always re-read the store.
"""

from __future__ import annotations

from dataclasses import dataclass

from p2pchat.store import Message


@dataclass(frozen=True, slots=True)
class PeerOnline:
    """An authenticated connection to this peer is up."""

    peer_id: bytes
    name: str
    host: str


@dataclass(frozen=True, slots=True)
class PeerOffline:
    """The last connection to this peer closed."""

    peer_id: bytes
    reason: str


@dataclass(frozen=True, slots=True)
class PeerUpdated:
    """A peer's display name or contact state changed.

    Our own rename comes as one too, with our id and state ``"self"``: it may come from
    another client of this node (``p2pchat name`` while the app is open).
    """

    peer_id: bytes
    name: str | None
    state: str


@dataclass(frozen=True, slots=True)
class MessageAdded:
    """A message was stored: received from a peer or written here."""

    message: Message
    incoming: bool


@dataclass(frozen=True, slots=True)
class ReceiptChanged:
    """Our own messages reached a new status (sent, delivered or read)."""

    room: bytes
    message_ids: tuple[bytes, ...]
    peer: bytes | None
    status: int


@dataclass(frozen=True, slots=True)
class ReactionChanged:
    """Someone (maybe we) reacted to a message, or took a reaction back."""

    room: bytes
    message_id: bytes


@dataclass(frozen=True, slots=True)
class TypingChanged:
    """A peer started or stopped typing in a room."""

    room: bytes
    peer_id: bytes
    typing: bool


@dataclass(frozen=True, slots=True)
class TransferProgress:
    """A file transfer moved on: bytes done, rate, ETA, and its state.

    Emitted often while a transfer runs; consumers should keep only the latest per id.
    ``state`` is one of: offered, waiting, active, paused, done, failed, cancelled.
    """

    message_id: bytes
    room: bytes
    name: str
    size: int
    done: int
    rate: float
    eta: float | None
    state: str
    detail: str = ""
    incoming: bool = True


@dataclass(frozen=True, slots=True)
class RoomChanged:
    """A room's members, roles, name or topic changed (or the room was created)."""

    room: bytes


@dataclass(frozen=True, slots=True)
class MessagesWithdrawn:
    """Messages shown before must go: a removal showed they were written outside their
    author's membership, or a room change turned out not to take effect."""

    room: bytes
    message_ids: tuple[bytes, ...]


@dataclass(frozen=True, slots=True)
class MessagesChanged:
    """Messages shown before look different now: edited, deleted, or gone with a timer.

    Read them again (``Node.get_messages``): an edited one carries its latest text and
    ``edited``; a deleted or expired one is a tombstone (kind ``deleted``, no text).
    """

    room: bytes
    message_ids: tuple[bytes, ...]


@dataclass(frozen=True, slots=True)
class RoomInvitation:
    """Someone invited us to a group room; ``join`` or ``decline`` it."""

    room: bytes
    name: str
    inviter: bytes


@dataclass(frozen=True, slots=True)
class ContactRequest:
    """Someone not yet accepted wrote to us; their messages wait for accept or block."""

    peer_id: bytes
    name: str


@dataclass(frozen=True, slots=True)
class RequestsHeldBack:
    """Contact requests, or messages of open requests, were not kept: too many at once.

    Counts since the person last cleared their requests. ``requests``: whole requests
    that made way for newer ones (their messages were removed here; the senders' apps
    still hold them and send them again when they reconnect). ``messages``: messages of
    open requests past the per-request limit (count or size). Both zero after a clear.
    """

    requests: int
    messages: int


@dataclass(frozen=True, slots=True)
class SecurityWarning:
    """Something a person must know about: impersonation, identity mismatch, ..."""

    peer_id: bytes | None
    text: str


@dataclass(frozen=True, slots=True)
class PeerThrottled(SecurityWarning):
    """A peer sent more than its quota: some messages were held back or refused.

    A kind of :class:`SecurityWarning` (``text`` says it in a sentence), so every
    interface that shows warnings shows this one. ``held_back`` messages were only
    slowed down; ``refused`` ones were not stored and not acknowledged (they stay in
    the sender's outbox). Counts are since the previous notice about this peer.
    """

    held_back: int = 0
    refused: int = 0


@dataclass(frozen=True, slots=True)
class NodeStatus:
    """The node started (or failed to): listening port and whether discovery runs."""

    port: int
    announcing: bool
    discovery: bool
    note: str = ""


@dataclass(frozen=True, slots=True)
class TorStatus:
    """Tor for this profile (node/onion.py): off, starting, bootstrapping (``percent``),
    publishing, ready (``onion`` is our address) or failed (``detail`` says why)."""

    state: str
    percent: int = 0
    detail: str = ""
    onion: str = ""


Event = (
    PeerOnline
    | PeerOffline
    | PeerUpdated
    | MessageAdded
    | ReceiptChanged
    | ReactionChanged
    | TypingChanged
    | TransferProgress
    | RoomChanged
    | RoomInvitation
    | MessagesWithdrawn
    | MessagesChanged
    | ContactRequest
    | RequestsHeldBack
    | SecurityWarning
    | PeerThrottled
    | NodeStatus
    | TorStatus
)
