"""The node's plain data for interfaces, and the small text rules it applies.

What the node hands to the app, the CLI and the control socket (peers, rooms, reactions)
and the rules for text people type (message bodies, names, setting keys). Pure: no I/O,
no state.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass

from p2pchat.identity import encode_peer_id
from p2pchat.node.errors import NodeError
from p2pchat.store import Message
from p2pchat.wire import MAX_BODY

MAX_TEXT_BYTES = MAX_BODY


class PeerLookupError(NodeError):
    """A name or id matched no peer, or several; ``candidates`` lists the near misses."""

    def __init__(self, message: str, candidates: Sequence[PeerInfo] = ()) -> None:
        super().__init__(message)
        self.candidates = list(candidates)


@dataclass(frozen=True)
class PeerInfo:
    """A peer as people see it: name, state, whether online and where."""

    peer_id: bytes
    name: str | None
    state: str
    verified: bool
    online: bool
    address: str | None
    last_seen: int | None

    @property
    def peer_id_text(self) -> str:
        """The peer id as 52 base32 characters."""
        return encode_peer_id(self.peer_id)


@dataclass(frozen=True)
class RoomInfo:
    """A conversation as the room list shows it."""

    room_id: bytes
    kind: str
    name: str
    peer_id: bytes | None
    unread: int
    last_message: Message | None
    online: bool
    #: No notifications (still counted unread); see node/chats.py.
    muted: bool = False
    #: Archived and nothing new since: the sidebar leaves it out.
    archived: bool = False


@dataclass(frozen=True)
class ReactionInfo:
    """One emoji someone put on a message."""

    message_id: bytes
    author: bytes
    emoji: str


def human_size(size: int) -> str:
    """``1.5 MiB``-style size for people."""
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{size} B"


MAX_UI_SETTING = 10_000
_UI_KEY = re.compile(r"[a-z0-9_.-]{1,64}")


def ui_key(key: str) -> str:
    if not _UI_KEY.fullmatch(key):
        raise NodeError(f"bad setting name {key!r}")
    return "ui." + key


def name_key(name: str) -> str:
    """A display name reduced to what people see (for look-alike checks)."""
    normal = unicodedata.normalize("NFKC", name)
    visible = "".join(ch for ch in normal if unicodedata.category(ch) not in ("Cf", "Zs", "Cc"))
    return visible.casefold()


def text_body(text: str) -> bytes:
    """A message text as its envelope body; NodeError when empty or too long."""
    if not text.strip():
        raise NodeError("empty message")
    body = text.encode("utf-8")
    if len(body) > MAX_TEXT_BYTES:
        raise NodeError(
            f"message too long ({len(body)} bytes; the limit is {MAX_TEXT_BYTES}); "
            "send it as a file instead"
        )
    return body


@dataclass(frozen=True)
class MemberInfo:
    """One member of a room as people see it."""

    peer_id: bytes
    name: str
    role: str
    state: str
    online: bool


@dataclass(frozen=True, slots=True)
class TransferInfo:
    """A transfer as people (CLI, UI) see it."""

    message_id: bytes
    room: bytes
    peer: bytes
    incoming: bool
    name: str
    size: int
    mime: str
    sha256: bytes
    state: str
    done: int
    rate: float
    eta: float | None
    path: str | None
    detail: str
    created_at: int
    width: int | None = None
    height: int | None = None

    @property
    def id_text(self) -> str:
        """The message id as hex (what ``p2pchat get`` takes; a prefix of 4+ is enough)."""
        return self.message_id.hex()
