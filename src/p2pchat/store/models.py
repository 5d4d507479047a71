"""Row types handed out and taken in by the store.

Plain frozen dataclasses holding bytes, ints and strings, so callers never see a
sqlite3.Row. This module must never import sqlite3 or other p2pchat modules: peer, room
and message ids are plain ``bytes`` here. All times are integer milliseconds since the
Unix epoch, chosen by the caller.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum
from typing import Literal

PeerState = Literal["unknown", "request", "contact", "blocked"]
AddressSource = Literal["mdns", "manual", "last"]
RoomKind = Literal["direct", "group"]
MemberRole = Literal["owner", "admin", "member"]
MemberState = Literal["invited", "joined", "left", "removed"]

#: Position of a message in display order: (lamport, author, id).
Cursor = tuple[int, bytes, bytes]


class MessageStatus(IntEnum):
    """Delivery status of a message; it only ever goes up."""

    QUEUED = 0
    SENT = 1
    DELIVERED = 2
    READ = 3


@dataclass(frozen=True, slots=True)
class Peer:
    """Someone we have seen, talked to, or blocked."""

    id: bytes
    name: str | None
    state: PeerState
    verified: bool
    first_seen: int
    last_seen: int | None


@dataclass(frozen=True, slots=True)
class Address:
    """A way to reach a peer; manual addresses may not know their peer yet."""

    id: int
    peer_id: bytes | None
    host: str
    port: int
    source: AddressSource
    last_ok: int | None


@dataclass(frozen=True, slots=True)
class Room:
    """A conversation: a direct chat or a group."""

    id: bytes
    kind: RoomKind
    name: str | None
    topic: str | None
    owner: bytes | None
    created_at: int
    last_read_rowid: int
    #: No notifications for new messages (they still count as unread).
    muted: bool = False
    #: Set while archived: the room's newest arrival (rowid) when it was archived. The
    #: room stays out of the room list until a message arrives after that one.
    archived_rowid: int | None = None


@dataclass(frozen=True, slots=True)
class Member:
    """One peer's place in one room."""

    room: bytes
    peer: bytes
    role: MemberRole
    state: MemberState


@dataclass(frozen=True, slots=True)
class NewMessage:
    """A message about to be stored (received, relayed or written here)."""

    id: bytes
    room: bytes
    author: bytes
    seq: int
    lamport: int
    sent_at: int
    received_at: int
    kind: str
    body: bytes
    sig: bytes
    reply_to: bytes | None = None
    status: int = MessageStatus.QUEUED
    #: Group envelopes only: the ids of ``Envelope.deps``, concatenated.
    deps: bytes | None = None


@dataclass(frozen=True, slots=True)
class Message:
    """A stored message; ``rowid`` is its local arrival order."""

    rowid: int
    id: bytes
    room: bytes
    author: bytes
    seq: int
    lamport: int
    sent_at: int
    received_at: int
    kind: str
    body: bytes
    reply_to: bytes | None
    sig: bytes
    status: int
    #: Filled only by the queries that relay envelopes (see ``Store.messages_by_seq``).
    deps: bytes | None = None
    #: True when ``body`` is the latest text of an edit (the node's history fills it in).
    edited: bool = False
    #: When it disappears (ms since the epoch) under a chat's timer; None: it stays.
    expires_at: int | None = None

    @property
    def cursor(self) -> Cursor:
        """This message's position in display order, for messages_before()."""
        return (self.lamport, self.author, self.id)


@dataclass(frozen=True, slots=True)
class RoomSummary:
    """A room as the room list shows it: last message and how many are unread."""

    room: Room
    last_message: Message | None
    unread: int
    #: Archived and nothing arrived since: left out of the sidebar.
    archived: bool = False


@dataclass(frozen=True, slots=True)
class Receipt:
    """What one peer reported about one message."""

    message_id: bytes
    peer: bytes
    status: int
    at: int


@dataclass(frozen=True, slots=True)
class OutboxItem:
    """A frame waiting to be sent to a peer."""

    id: int
    peer: bytes
    frame: bytes
    message_id: bytes | None
    created_at: int
    attempts: int


@dataclass(frozen=True, slots=True)
class Reaction:
    """An emoji one author put on one message."""

    message_id: bytes
    author: bytes
    emoji: str
