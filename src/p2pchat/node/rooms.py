"""Group-room membership: a graph of signed operations, resolved the same way everywhere.

A room's membership is never a fact someone asserts; it is *derived* from the room's
signed ``system`` envelopes (create, invite, join, decline, leave, remove, promote, rename,
topic). Authority is decided causally, never by numbers an author chooses:

- **One genesis.** The room id is ``BLAKE2b-128(context || creator || nonce)`` and the
  ``create`` carries that nonce, so exactly one author can create a room and any other
  ``create`` (whatever its Lamport time) is refused.
- **A graph of operations.** Every operation names in ``deps`` the operations its author
  had seen last. An operation counts only once everything it names is held (until then
  it *waits*, unseen). It is judged against what its author had seen: the operation that
  made its author a member (or an admin) must be among its ancestors.
- **One order for concurrent operations.** Operations are replayed by ``(depth, id)``,
  where depth is one more than the deepest operation named: a causal order that every
  node derives from the set alone. The replayed state must grant the right, too.
- **Membership as spans of the author's own sequence numbers.** Joining opens a span at
  the join's ``seq``; leaving closes it at the leave's ``seq``; a removal closes it at
  ``upto``, the removed member's last ``seq`` the remover held (never below one of the
  member's operations the remover had seen). Anything the member wrote outside their
  spans (after their removal, or concurrently with it, unseen by the remover) counts
  nowhere, however it is back-dated: operations are then re-resolved without it.

Whoever holds the same envelopes therefore derives the same members, roles, name and
topic, and admits the same messages, whatever the arrival order. docs/protocol.md gives
the rules with worked examples. Pure logic: no I/O, no store, no network.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass, field

import msgpack

MAX_ROOM_NAME_CHARS = 64
MAX_TOPIC_CHARS = 200
MAX_MEMBERS = 256
#: Most operations one room may hold, and one author may add to it; more are refused
#: (each held operation costs every later resolution, so a member cannot flood them).
MAX_OPS = 4096
MAX_OPS_PER_AUTHOR = 512
#: Most deps an envelope names (the wire's limit, MAX_DEPS in wire/limits.py).
MAX_NAMED_DEPS = 16
#: Re-resolution rounds in which the cut set may still shrink (see resolve).
MAX_ROUNDS = 8
KIND_SYSTEM = "system"
GROUP_ROOM_ID_LEN = 16
NONCE_LEN = 16
ROOM_ID_CONTEXT = b"p2pchat/group-room/v2"
ENVELOPE_ID_CONTEXT = b"p2pchat/group-envelope-id/v2"

OPS = frozenset(
    {"create", "invite", "join", "decline", "leave", "remove", "promote", "rename", "topic"}
)
ROLE_RANK = {"member": 0, "admin": 1, "owner": 2}
#: Operations whose author must be a member (within a span) when writing them.
MEMBER_OPS = frozenset({"invite", "leave", "remove", "promote", "rename", "topic"})

#: A position in display order: (lamport, author, id).
Position = tuple[int, bytes, bytes]

#: Why a message waits: it names membership changes we do not hold yet (they are on their
#: way, or must be asked for).
DEPS_NOT_HELD = "names changes not held yet"


def group_room_id(creator: bytes, nonce: bytes) -> bytes:
    """The id a group room created by ``creator`` with ``nonce`` must have."""
    return hashlib.blake2b(
        ROOM_ID_CONTEXT + creator + nonce, digest_size=GROUP_ROOM_ID_LEN
    ).digest()


def group_envelope_id(room: bytes, author: bytes, seq: int) -> bytes:
    """The id a group envelope must have: bound to its room, author and seq.

    A member can then never store its own envelope under the id of someone else's (a
    removal it wants to keep from reaching people, say): ids are not the author's choice.
    """
    return hashlib.blake2b(
        ENVELOPE_ID_CONTEXT + room + author + seq.to_bytes(8, "big"), digest_size=16
    ).digest()


class SystemBodyError(ValueError):
    """A system message body is malformed."""


@dataclass(frozen=True)
class SystemOp:
    """One decoded membership change."""

    op: str
    peer: bytes | None = None
    name: str | None = None
    topic: str | None = None
    nonce: bytes | None = None
    upto: int | None = None


def encode_system(op: SystemOp) -> bytes:
    """The body of a ``system`` envelope (a small msgpack map)."""
    body: dict[str, object] = {"op": op.op}
    for key in ("peer", "name", "topic", "nonce", "upto"):
        value = getattr(op, key)
        if value is not None:
            body[key] = value
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
    peer, name, topic = data.get("peer"), data.get("name"), data.get("topic")
    nonce, upto = data.get("nonce"), data.get("upto")
    if peer is not None and not (isinstance(peer, bytes) and len(peer) == 32):
        raise SystemBodyError("peer must be a 32-byte id")
    if name is not None and not (isinstance(name, str) and 0 < len(name) <= MAX_ROOM_NAME_CHARS):
        raise SystemBodyError("bad room name")
    if topic is not None and not (isinstance(topic, str) and len(topic) <= MAX_TOPIC_CHARS):
        raise SystemBodyError("bad topic")
    if nonce is not None and not (isinstance(nonce, bytes) and len(nonce) == NONCE_LEN):
        raise SystemBodyError("nonce must be 16 bytes")
    if upto is not None and not (type(upto) is int and 0 <= upto < 2**63):
        raise SystemBodyError("upto must be a sequence number")
    if op in ("invite", "remove", "promote") and peer is None:
        raise SystemBodyError(f"{op} needs a peer")
    if op in ("create", "rename") and name is None:
        raise SystemBodyError(f"{op} needs a name")
    if op == "create" and nonce is None:
        raise SystemBodyError("create needs a nonce")
    return SystemOp(op, peer, name, topic, nonce, upto)


@dataclass(frozen=True)
class OpEntry:
    """A held system envelope, as the resolution needs it."""

    id: bytes
    author: bytes
    seq: int
    deps: tuple[bytes, ...]
    op: SystemOp


@dataclass
class _Span:
    """Seqs ``start..end`` of one member's own envelopes fall in one membership."""

    start: int
    end: int | None = None
    opened_by: int = 0  # index (in replay order) of the join or create that opened it

    def holds(self, seq: int) -> bool:
        return self.start <= seq and (self.end is None or seq <= self.end)


@dataclass
class Membership:
    """A room's state after resolving its operations."""

    name: str | None = None
    topic: str | None = None
    owner: bytes | None = None
    roles: dict[bytes, str] = field(default_factory=dict)
    states: dict[bytes, str] = field(default_factory=dict)
    created: bool = False
    #: Ids of operations that took effect (the only ones ever shown as changes).
    applied: set[bytes] = field(default_factory=set)
    #: Operations held whose deps are all held but that did not take effect, and why.
    refused: dict[bytes, str] = field(default_factory=dict)
    #: Ids of operations in the graph (everything they name is held).
    known: set[bytes] = field(default_factory=set)
    #: What a new envelope of ours names as ``deps``.
    heads: tuple[bytes, ...] = ()
    #: How many operations were resolved, counting those still waiting (for MAX_OPS).
    held: int = 0
    #: The same per author (for MAX_OPS_PER_AUTHOR).
    held_by: dict[bytes, int] = field(default_factory=dict)
    #: Everyone a held invitation names that was not refused (it took effect, or waits
    #: for changes it names, perhaps for ever): whose own changes (a join) are worth
    #: holding, within the room's caps.
    named: set[bytes] = field(default_factory=set)
    _spans: dict[bytes, list[_Span]] = field(default_factory=dict)
    _open_spans: int = 0
    _invited: set[bytes] = field(default_factory=set)
    _role_by: dict[bytes, int] = field(default_factory=dict)
    _since: dict[bytes, int] = field(default_factory=dict)
    # The invitation (or create) that began each peer's current stint as invitee/member.
    _stint: dict[bytes, int] = field(default_factory=dict)
    _index: dict[bytes, int] = field(default_factory=dict)
    _ancestors: list[int] = field(default_factory=list)
    _frontiers: dict[tuple[bytes, ...], int | None] = field(default_factory=dict)

    def state_of(self, peer: bytes) -> str | None:
        """``invited``, ``joined``, ``left``, ``removed`` or None (never involved)."""
        return self.states.get(peer)

    def role_of(self, peer: bytes) -> str:
        """The peer's role (``member`` if it has none)."""
        return self.roles.get(peer, "member")

    def joined(self) -> list[bytes]:
        """Current members."""
        return [p for p, s in self.states.items() if s == "joined"]

    def joined_count(self) -> int:
        """How many members there are now (kept as spans open and close)."""
        return self._open_spans

    def spans_of(self, peer: bytes) -> list[tuple[int, int | None]]:
        """The peer's membership spans, as (first seq, last seq or None while open)."""
        return [(s.start, s.end) for s in self._spans.get(peer, [])]

    def outside(self, peer: bytes) -> list[tuple[int, int]]:
        """Ranges ``(first, last)`` of the peer's seqs that lie outside its spans.

        Messages written there (after a removal, or before a join) count nowhere; a span's
        own first seq is the join itself, so it is in the range before the span.
        """
        ranges = []
        after = 0
        for span in self._spans.get(peer, []):
            if span.start > after + 1:
                ranges.append((after + 1, span.start))
            if span.end is None:
                return ranges
            after = span.end
        ranges.append((after + 1, 2**63 - 1))
        return ranges

    def admits(self, author: bytes, seq: int, deps: tuple[bytes, ...] | None) -> str | None:
        """Why a message by ``author`` at ``seq`` naming ``deps`` does not count, or None.

        It counts when ``seq`` lies in one of the author's membership spans and its
        author had seen the operation that opened that span (it is among ``deps`` or
        their ancestors). Deps not held yet make it wait (the reason says so).
        """
        if deps is None:
            return "written by an older p2pchat (no deps)"
        frontier = self._frontier(deps)
        if frontier is None:
            return DEPS_NOT_HELD
        for span in self._spans.get(author, []):
            if span.start < seq and span.holds(seq):
                if frontier >> span.opened_by & 1:
                    return None
                return "its author had not seen their own joining"
        return "author was not a member then"

    def seen(self, deps: tuple[bytes, ...]) -> set[bytes] | None:
        """Ids of the operations ``deps`` names and their ancestors (None: one unknown).

        What an envelope's author had seen of the room, so a right it claims (an owner
        or admin deleting someone else's message) can be judged in that state.
        """
        bits = self._frontier(deps)
        if bits is None:
            return None
        return {op for op, i in self._index.items() if bits >> i & 1}

    def _frontier(self, deps: tuple[bytes, ...]) -> int | None:
        """Bit set of the operations ``deps`` and their ancestors (None: one is unknown)."""
        if deps in self._frontiers:
            return self._frontiers[deps]
        bits: int | None = 0
        for dep in deps:
            i = self._index.get(dep)
            if i is None:
                bits = None
                break
            assert bits is not None
            bits |= self._ancestors[i] | 1 << i
        if len(self._frontiers) < 1024:
            self._frontiers[deps] = bits
        return bits


def resolve(room: bytes, entries: Iterable[OpEntry]) -> Membership:
    """Resolve a room's operations into its membership (a pure function of the set)."""
    ops = {e.id: e for e in entries}
    geneses = [
        e
        for e in ops.values()
        if e.op.op == "create"
        and not e.deps
        and e.op.nonce is not None
        and group_room_id(e.author, e.op.nonce) == room
    ]
    held_by: dict[bytes, int] = {}
    invites: dict[bytes, bytes] = {}  # invitation id -> the peer it names
    for e in ops.values():
        held_by[e.author] = held_by.get(e.author, 0) + 1
        if e.op.op == "invite" and e.op.peer is not None:
            invites[e.id] = e.op.peer
    if not geneses:
        return Membership(held=len(ops), held_by=held_by)  # no room yet: names nobody
    genesis = min(geneses, key=lambda e: e.id)
    held = len(ops)
    order, refused = _graph(ops, genesis)
    index = {e.id: i for i, e in enumerate(order)}
    ancestors: list[int] = []
    for e in order:
        bits = 0
        for dep in e.deps:
            bits |= ancestors[index[dep]] | 1 << index[dep]
        ancestors.append(bits)
    # Re-resolve without what lies outside its author's spans, until that set is stable.
    # An undone removal gives back what it had cut, so the set may shrink; if it has not
    # settled after MAX_ROUNDS (only contrived histories oscillate), it may only grow
    # from then on, which settles within len(order) more rounds.
    cut: frozenset[int] = frozenset()
    rounds = 0
    while True:
        m = _replay(order, ancestors, cut)
        outside = frozenset(
            i
            for i, e in enumerate(order)
            if e.op.op in MEMBER_OPS and not any(s.holds(e.seq) for s in m._spans.get(e.author, []))
        )
        rounds += 1
        if rounds > MAX_ROUNDS:
            outside |= cut
        if outside == cut:
            break
        cut = outside
    m.refused.update(refused)
    m.held, m.held_by = held, held_by
    m.named = {peer for i, peer in invites.items() if i not in m.refused}
    m.known = set(index)
    m._index, m._ancestors = index, ancestors
    # Heads: the changes that took effect that no other change that took effect names.
    # Refused changes are never named, so nobody's envelope ever depends on junk that
    # a node may not hold; the deepest first, if there are more than an envelope names.
    applied = [e for e in order if e.id in m.applied]
    cited = {dep for e in applied for dep in e.deps}
    m.heads = tuple(e.id for e in reversed(applied) if e.id not in cited)[:MAX_NAMED_DEPS]
    return m


def _graph(ops: dict[bytes, OpEntry], genesis: OpEntry) -> tuple[list[OpEntry], dict[bytes, str]]:
    """The operations reachable from the genesis through held deps, by (depth, id)."""
    refused: dict[bytes, str] = {}
    depth = {genesis.id: 0}
    children: dict[bytes, list[OpEntry]] = {}
    missing: dict[bytes, int] = {}
    for e in ops.values():
        if e is genesis:
            continue
        if e.op.op == "create":
            refused[e.id] = "a room has one create"
            continue
        if not e.deps or e.id in e.deps:
            refused[e.id] = "names no earlier change"
            continue
        missing[e.id] = len(set(e.deps))
        for dep in set(e.deps):
            children.setdefault(dep, []).append(e)
    ready = [genesis.id]
    while ready:
        done = ready.pop()
        for child in children.get(done, []):
            missing[child.id] -= 1
            if missing[child.id] == 0:
                depth[child.id] = 1 + max(depth[d] for d in child.deps)
                ready.append(child.id)
    order = sorted((ops[i] for i in depth), key=lambda e: (depth[e.id], e.id))
    return order, refused


def _replay(order: list[OpEntry], ancestors: list[int], cut: frozenset[int]) -> Membership:
    m = Membership()
    for i, e in enumerate(order):
        problem = "written outside its author's membership" if i in cut else None
        problem = problem or _apply(m, order, i, ancestors[i])
        if problem is None:
            m.applied.add(e.id)
        else:
            m.refused[e.id] = problem
    return m


def _open(m: Membership, peer: bytes, seq: int, at: int) -> None:
    m._open_spans += 1
    m._invited.discard(peer)
    m.states[peer] = "joined"
    m._since[peer] = at
    m._spans.setdefault(peer, []).append(_Span(seq, None, at))


def _close(m: Membership, peer: bytes, state: str, end: int | None, at: int) -> None:
    spans = m._spans.get(peer)
    if m.states.get(peer) == "joined" and spans and spans[-1].end is None:
        spans[-1].end = max(end if end is not None else spans[-1].start, spans[-1].start)
        m._open_spans -= 1
    m.states[peer] = state
    m._invited.discard(peer)
    m._since[peer] = at
    m.roles.pop(peer, None)
    m._role_by.pop(peer, None)


def _apply(m: Membership, order: list[OpEntry], i: int, seen: int) -> str | None:
    """Apply operation number ``i`` of the replay if its author had the right.

    ``seen`` is the bit set of the operations it names, directly or not.
    """
    e = order[i]
    op, author = e.op, e.author
    if op.op == "create":
        m.created = True
        m.name, m.topic, m.owner = op.name, op.topic, author
        m.roles[author] = "owner"
        m._role_by[author] = i
        m._stint[author] = i
        _open(m, author, e.seq, i)
        return None
    state = m.states.get(author)
    if op.op in ("join", "decline"):
        if state != "invited" or not seen >> m._since[author] & 1:
            return f"{op.op} without an invitation"
        if op.op == "join" and m.joined_count() >= MAX_MEMBERS:
            return "room is full"
        if op.op == "join":
            _open(m, author, e.seq, i)
        else:
            _close(m, author, "left", None, i)
        return None
    spans = m._spans.get(author)
    current = spans[-1] if spans else None
    if (
        state != "joined"
        or current is None
        or current.end is not None
        or e.seq <= current.start
        or not seen >> current.opened_by & 1
    ):
        return "only members can do that"
    rank = ROLE_RANK[m.role_of(author)]
    if op.op == "leave":
        if author == m.owner:
            _hand_over(m, author, i)
        _close(m, author, "left", e.seq, i)
        return None
    if op.op == "invite":
        assert op.peer is not None
        if m.states.get(op.peer) in ("joined", "invited"):
            return "already a member"
        if m.states.get(op.peer) == "removed" and rank < ROLE_RANK["admin"]:
            return "only owners and admins may invite someone who was removed"
        if m.joined_count() >= MAX_MEMBERS:
            return "room is full"
        if len(m._invited) >= MAX_MEMBERS:
            return "too many open invitations"
        m.states[op.peer] = "invited"
        m._invited.add(op.peer)
        m._since[op.peer] = m._stint[op.peer] = i
        return None
    if rank < ROLE_RANK["admin"] or not seen >> m._role_by[author] & 1:
        return f"{op.op} needs an owner or admin"
    return _apply_admin(m, order, i, seen, rank)


def _apply_admin(m: Membership, order: list[OpEntry], i: int, seen: int, rank: int) -> str | None:
    """The operations only owners and admins may make (the author's rank is checked)."""
    op = order[i].op
    if op.op == "remove":
        assert op.peer is not None
        target = op.peer
        if target == m.owner:
            return "the owner cannot be removed"
        if ROLE_RANK[m.role_of(target)] >= rank:
            return "cannot remove someone of equal or higher role"
        # The remover must have seen the invitation; a join concurrent with it is undone.
        if m.states.get(target) not in ("joined", "invited") or not seen >> m._stint[target] & 1:
            return "not a member"
        # The span closes at ``upto`` (what the remover held of the member's own), never
        # at a seq the member chose: a member cannot stretch its span by writing far ahead.
        _close(m, target, "removed", op.upto or 0, i)
        return None
    if op.op == "promote":
        assert op.peer is not None
        if m.states.get(op.peer) != "joined":
            return "only members can be promoted"
        if m.role_of(op.peer) != "member":
            return "already an admin"
        m.roles[op.peer] = "admin"
        m._role_by[op.peer] = i
        return None
    if op.op == "rename":
        m.name = op.name
        return None
    if op.op == "topic":
        m.topic = op.topic
        return None
    return f"unknown op {op.op}"


def _hand_over(m: Membership, leaving: bytes, at: int) -> None:
    admins = [p for p, r in m.roles.items() if r == "admin" and m.states.get(p) == "joined"]
    others = [p for p in m.joined() if p != leaving]
    candidates = admins or others
    successor = candidates[0] if candidates else None
    m.owner = successor
    if successor is not None:
        m.roles[successor] = "owner"
        m._role_by[successor] = at


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
