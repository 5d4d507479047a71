"""Group-room membership: signed system messages replayed into a deterministic state.

A group room's membership is never stored as a fact someone asserts; it is *derived*
from the room's signed ``system`` envelopes (create, invite, join, leave, remove,
promote, rename, topic), replayed in display order ``(lamport, author, id)``. Every
member who holds the same set of system messages therefore computes the same members,
roles, name and topic, whatever order the messages arrived in. A change its author had
no right to make (at its position in that order) has no effect and is reported.

Pure logic: no I/O, no store, no network. The node feeds it envelopes' fields.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable
from dataclasses import dataclass, field

import msgpack

MAX_ROOM_NAME_CHARS = 64
MAX_TOPIC_CHARS = 200
MAX_MEMBERS = 256
KIND_SYSTEM = "system"

OPS = frozenset(
    {"create", "invite", "join", "decline", "leave", "remove", "promote", "rename", "topic"}
)
ROLE_RANK = {"member": 0, "admin": 1, "owner": 2}

#: A position in display order: (lamport, author, id).
Position = tuple[int, bytes, bytes]


class SystemBodyError(ValueError):
    """A system message body is malformed."""


@dataclass(frozen=True)
class SystemOp:
    """One decoded membership change."""

    op: str
    peer: bytes | None = None
    name: str | None = None
    topic: str | None = None


def encode_system(op: SystemOp) -> bytes:
    """The body of a ``system`` envelope (a small msgpack map)."""
    body: dict[str, object] = {"op": op.op}
    if op.peer is not None:
        body["peer"] = op.peer
    if op.name is not None:
        body["name"] = op.name
    if op.topic is not None:
        body["topic"] = op.topic
    return bytes(msgpack.packb(body, use_bin_type=True))


def decode_system(body: bytes) -> SystemOp:
    """Parse and validate a system body; raise SystemBodyError with the reason."""
    try:
        data = msgpack.unpackb(
            body,
            raw=False,
            max_bin_len=64,
            max_str_len=4 * MAX_TOPIC_CHARS,
            max_array_len=0,
            max_map_len=8,
            max_ext_len=0,
            strict_map_key=True,
        )
    except Exception as exc:  # msgpack raises several unrelated types
        raise SystemBodyError(f"not a system body: {type(exc).__name__}") from None
    if not isinstance(data, dict):
        raise SystemBodyError("system body must be a map")
    op = data.get("op")
    if op not in OPS:
        raise SystemBodyError(f"unknown op {op!r}")
    peer = data.get("peer")
    name = data.get("name")
    topic = data.get("topic")
    if peer is not None and not (isinstance(peer, bytes) and len(peer) == 32):
        raise SystemBodyError("peer must be a 32-byte id")
    if name is not None and not (isinstance(name, str) and 0 < len(name) <= MAX_ROOM_NAME_CHARS):
        raise SystemBodyError("bad room name")
    if topic is not None and not (isinstance(topic, str) and len(topic) <= MAX_TOPIC_CHARS):
        raise SystemBodyError("bad topic")
    if op in ("invite", "remove", "promote") and peer is None:
        raise SystemBodyError(f"{op} needs a peer")
    if op in ("create", "rename") and name is None:
        raise SystemBodyError(f"{op} needs a name")
    return SystemOp(op, peer, name, topic)


@dataclass(frozen=True)
class SystemEntry:
    """A stored system message, as the replay needs it."""

    position: Position
    author: bytes
    op: SystemOp


@dataclass
class Membership:
    """The state of a room after replaying its system messages."""

    name: str | None = None
    topic: str | None = None
    owner: bytes | None = None
    roles: dict[bytes, str] = field(default_factory=dict)
    states: dict[bytes, str] = field(default_factory=dict)
    # Per peer, sorted positions where they became joined / stopped being joined.
    _spans: dict[bytes, list[tuple[Position, Position | None]]] = field(default_factory=dict)
    rejected: list[tuple[SystemEntry, str]] = field(default_factory=list)
    created: bool = False

    def state_of(self, peer: bytes) -> str | None:
        """``invited``, ``joined``, ``left``, ``removed`` or None (never involved)."""
        return self.states.get(peer)

    def role_of(self, peer: bytes) -> str:
        """The peer's role (``member`` if it has none)."""
        return self.roles.get(peer, "member")

    def joined(self) -> list[bytes]:
        """Current members."""
        return [p for p, s in self.states.items() if s == "joined"]

    def was_member_at(self, peer: bytes, position: Position) -> bool:
        """True if ``peer`` was a joined member at ``position`` in display order."""
        spans = self._spans.get(peer, [])
        starts = [s for s, _ in spans]
        i = bisect.bisect_right(starts, position) - 1
        if i < 0:
            return False
        _, end = spans[i]
        return end is None or position < end

    def _set(self, peer: bytes, state: str, at: Position) -> None:
        before = self.states.get(peer)
        self.states[peer] = state
        spans = self._spans.setdefault(peer, [])
        if state == "joined" and before != "joined":
            spans.append((at, None))
        elif before == "joined" and state != "joined" and spans:
            start, _ = spans[-1]
            spans[-1] = (start, at)


def replay(entries: Iterable[SystemEntry]) -> Membership:
    """Replay system messages (in display order) into the room's membership."""
    m = Membership()
    for entry in sorted(entries, key=lambda e: e.position):
        problem = _apply(m, entry)
        if problem is not None:
            m.rejected.append((entry, problem))
    return m


def _apply(m: Membership, e: SystemEntry) -> str | None:
    """Apply one change if its author had the right; return why not otherwise."""
    op, author, at = e.op, e.author, e.position
    if op.op == "create":
        if m.created:
            return "room already created"
        m.created = True
        m.name, m.topic, m.owner = op.name, op.topic, author
        m.roles[author] = "owner"
        m._set(author, "joined", at)
        return None
    if not m.created:
        return "room not created yet"
    author_state = m.states.get(author)
    rank = ROLE_RANK[m.role_of(author)]
    if op.op == "invite":
        assert op.peer is not None
        if author_state != "joined":
            return "only members can invite"
        if m.states.get(op.peer) == "joined":
            return "already a member"
        if len(m.joined()) >= MAX_MEMBERS:
            return "room is full"
        m._set(op.peer, "invited", at)
        return None
    if op.op in ("join", "decline"):
        if author_state != "invited":
            return f"{op.op} without an invitation"
        if op.op == "join" and len(m.joined()) >= MAX_MEMBERS:
            return "room is full"
        m._set(author, "joined" if op.op == "join" else "left", at)
        return None
    if op.op == "leave":
        if author_state != "joined":
            return "not a member"
        if author == m.owner:
            # An owner leaving hands the room to the longest-standing admin, else member.
            _hand_over(m, author)
        m._set(author, "left", at)
        m.roles.pop(author, None)
        return None
    if author_state != "joined" or rank < ROLE_RANK["admin"]:
        return f"{op.op} needs an owner or admin"
    if op.op == "remove":
        assert op.peer is not None
        if op.peer == m.owner:
            return "the owner cannot be removed"
        if ROLE_RANK[m.role_of(op.peer)] >= rank:
            return "cannot remove someone of equal or higher role"
        if m.states.get(op.peer) not in ("joined", "invited"):
            return "not a member"
        m._set(op.peer, "removed", at)
        m.roles.pop(op.peer, None)
        return None
    if op.op == "promote":
        assert op.peer is not None
        if m.states.get(op.peer) != "joined":
            return "only members can be promoted"
        m.roles[op.peer] = "admin"
        return None
    if op.op == "rename":
        m.name = op.name
        return None
    if op.op == "topic":
        m.topic = op.topic
        return None
    return f"unknown op {op.op}"


def _hand_over(m: Membership, leaving: bytes) -> None:
    admins = [p for p, r in m.roles.items() if r == "admin" and m.states.get(p) == "joined"]
    others = [p for p in m.joined() if p != leaving]
    candidates = admins or others
    successor = candidates[0] if candidates else None
    m.owner = successor
    if successor is not None:
        m.roles[successor] = "owner"


def describe_system(op: SystemOp, author: str, target: str | None) -> str:
    """A membership change as a sentence for people ("bob joined")."""
    who = target or "someone"
    if op.op == "create":
        topic = f" ({op.topic})" if op.topic else ""
        return f"{author} created the room “{op.name}”{topic}"
    if op.op == "invite":
        return f"{author} invited {who}"
    if op.op == "join":
        return f"{author} joined"
    if op.op == "decline":
        return f"{author} declined the invitation"
    if op.op == "leave":
        return f"{author} left"
    if op.op == "remove":
        return f"{author} removed {who}"
    if op.op == "promote":
        return f"{author} made {who} an admin"
    if op.op == "rename":
        return f"{author} renamed the room to “{op.name}”"
    if op.op == "topic":
        return f"{author} set the topic: {op.topic}" if op.topic else f"{author} cleared the topic"
    return f"{author} changed the room"
