"""Membership resolution: one genesis, causal authority, the same room for the same set.

``rooms.resolve`` is a pure function of the set of operations; these tests check the
rules (docs/protocol.md, "Group membership") and, with hypothesis, that simulated members
receiving the same envelopes in any order, through the node's own admission rules,
end with the same members, roles, name and visible history.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from p2pchat.node.rooms import (
    MEMBER_OPS,
    Membership,
    OpEntry,
    SystemBodyError,
    SystemOp,
    decode_system,
    encode_system,
    resolve,
)
from tests.node.room_ops import History

OWNER, ADMIN, ALICE, BOB, EVE = (bytes([n]) * 32 for n in range(1, 6))


def basic_history() -> History:
    h = History(OWNER)
    h.add(OWNER, "invite", peer=ADMIN)
    h.add(ADMIN, "join")
    h.add(OWNER, "promote", peer=ADMIN)
    h.add(ADMIN, "invite", peer=ALICE)
    h.add(ALICE, "join")
    h.add(ADMIN, "invite", peer=BOB)
    h.add(BOB, "join")
    return h


def test_rights_are_enforced_and_refused_changes_are_not_applied() -> None:
    h = basic_history()
    by_alice = h.add(ALICE, "remove", peer=BOB)  # alice is no admin
    h.add(ADMIN, "remove", peer=BOB, upto=0)
    by_eve = h.add(EVE, "join")  # never invited
    promote = h.add(ALICE, "promote", peer=ALICE)
    h.add(ADMIN, "rename", name="the team")
    h.add(ALICE, "leave")
    m = h.resolve()
    assert m.name == "the team"
    assert m.owner == OWNER
    assert m.states == {OWNER: "joined", ADMIN: "joined", ALICE: "left", BOB: "removed"}
    assert m.role_of(ADMIN) == "admin"
    assert m.role_of(ALICE) == "member"
    assert {by_alice.id, by_eve.id, promote.id} <= set(m.refused)
    assert not {by_alice.id, by_eve.id, promote.id} & m.applied


def test_a_second_create_never_counts_whatever_its_author_or_position() -> None:
    h = basic_history()
    forged = [
        # An invited-only member, a member and the admin each forge a genesis (no deps).
        h.add(BOB, "create", name="pwned", nonce=b"\x07" * 16, deps=()),
        h.add(ALICE, "create", name="pwned", nonce=b"\x01" * 16, deps=(), id=b"\x00" * 16),
        h.add(ADMIN, "create", name="pwned", nonce=b"\x02" * 16, deps=[h.create.id]),
    ]
    m = h.resolve()
    assert (m.name, m.owner) == ("team", OWNER)
    assert m.role_of(OWNER) == "owner"
    assert m.state_of(OWNER) == "joined"
    assert all(f.id in m.refused for f in forged)


def test_a_removed_member_cannot_back_date_changes_or_posts() -> None:
    h = basic_history()
    before = h.resolve().heads  # what bob saw while still a member
    post_seq = h.next_seq(BOB)  # a post bob wrote before the removal (the admin held it)
    removal = h.add(ADMIN, "remove", peer=BOB, upto=post_seq)
    # Bob, removed, writes as if he had not seen it: back-dated deps, a fresh seq.
    late = h.add(BOB, "invite", peer=EVE, deps=before)
    late_post_seq = h.next_seq(BOB)
    m = h.resolve()
    assert removal.id in m.applied
    assert late.id in m.refused
    assert m.state_of(EVE) is None
    assert m.admits(BOB, post_seq, before) is None
    assert m.admits(BOB, late_post_seq, before) is not None


def test_posts_concurrent_with_a_removal_count_only_if_the_remover_had_them() -> None:
    h = basic_history()
    deps = h.resolve().heads
    seen = h.next_seq(ALICE)
    unseen = h.next_seq(ALICE)  # written during a partition, never reached the admin
    h.add(ADMIN, "remove", peer=ALICE, upto=seen)
    m = h.resolve()
    assert m.admits(ALICE, seen, deps) is None
    assert m.admits(ALICE, unseen, deps) == "author was not a member then"
    assert (unseen, 2**63 - 1) in m.outside(ALICE)


def test_changes_naming_unknown_changes_wait_and_are_not_shown() -> None:
    h = basic_history()
    waiting = h.add(ADMIN, "rename", name="later", deps=[b"\xee" * 16])
    m = h.resolve()
    assert m.name == "team"
    assert waiting.id not in m.applied
    assert waiting.id not in m.known
    assert m.admits(ALICE, 99, (b"\xee" * 16,)) == "names changes not held yet"


def test_an_admin_removed_concurrently_loses_what_it_did_unseen() -> None:
    h = basic_history()
    fork = h.resolve().heads
    # The admin removes alice while, concurrently, the owner removes the admin.
    admin_seq_seen = h._seq[ADMIN]
    by_admin = h.add(ADMIN, "remove", peer=ALICE, upto=0, deps=fork)
    by_owner = h.add(OWNER, "remove", peer=ADMIN, upto=admin_seq_seen, deps=fork)
    m = h.resolve()
    assert by_owner.id in m.applied
    assert by_admin.id in m.refused
    assert m.state_of(ALICE) == "joined"
    assert m.state_of(ADMIN) == "removed"


def test_two_admins_cannot_remove_each_other() -> None:
    h = basic_history()
    h.add(OWNER, "promote", peer=ALICE)
    fork = h.resolve().heads
    a = h.add(ADMIN, "remove", peer=ALICE, deps=fork)
    b = h.add(ALICE, "remove", peer=ADMIN, deps=fork)
    m = h.resolve()
    assert {a.id, b.id} <= set(m.refused)
    assert m.state_of(ADMIN) == m.state_of(ALICE) == "joined"


def test_a_promotion_needs_the_promoter_to_have_seen_its_own_role() -> None:
    h = basic_history()
    fork = h.resolve().heads
    h.add(OWNER, "promote", peer=ALICE, deps=fork)
    # Alice acts as an admin without having seen her promotion: refused.
    blind = h.add(ALICE, "rename", name="mine", deps=fork)
    m = h.resolve()
    assert m.role_of(ALICE) == "admin"
    assert blind.id in m.refused
    assert m.name == "team"


def test_a_join_and_a_concurrent_removal_of_the_invitee() -> None:
    h = basic_history()
    invite = h.add(OWNER, "invite", peer=EVE)
    join = h.add(EVE, "join", deps=[invite.id])
    h.add(OWNER, "remove", peer=EVE, upto=0, deps=[invite.id])
    m = h.resolve()
    assert join.id in m.applied
    assert m.state_of(EVE) == "removed"
    assert m.admits(EVE, 5, m.heads) is not None


def test_system_bodies_round_trip_and_reject_junk() -> None:
    op = SystemOp("remove", peer=BOB, upto=7)
    assert decode_system(encode_system(op)) == op
    for junk in (b"", b"\xc1", encode_system(SystemOp("invite")), b"\x91\x01"):
        with pytest.raises(SystemBodyError):
            decode_system(junk)


# ---------------------------------------------------------------- simulated members

MEMBERS = [OWNER, ADMIN, ALICE, BOB]
ACTIONS = ["post", "post", "invite", "remove", "promote", "rename", "leave", "join"]


@dataclass(frozen=True)
class Post:
    id: bytes
    author: bytes
    seq: int
    deps: tuple[bytes, ...]


@dataclass
class Replica:
    """What one member holds, admitted by the node's own rules (node/groups.py)."""

    room: bytes
    ops: dict[bytes, OpEntry] = field(default_factory=dict)
    posts: dict[bytes, Post] = field(default_factory=dict)
    _m: Membership | None = None

    def membership(self) -> Membership:
        if self._m is None:
            self._m = resolve(self.room, self.ops.values())
        return self._m

    def receive(self, item: OpEntry | Post) -> bool:
        """Hold ``item`` if the node would; True if anything changed."""
        m = self.membership()
        if isinstance(item, Post):
            if item.id in self.posts or m.admits(item.author, item.seq, item.deps) is not None:
                return False
            if not self._follows(m, item.author, item.seq):
                return False  # groups._ingest_room: no message above a gap
            self.posts[item.id] = item
            return True
        if item.id in self.ops:
            return False
        invited = {item.op.peer} if item.op.op == "invite" else set()
        if item.op.op != "create" and item.author not in set(m.states) | invited:
            return False  # groups._system_rows: its author is unknown to the room
        self.ops[item.id] = item
        self._m = None
        m = self.membership()
        for peer in m.states:
            for first, last in m.outside(peer):
                for post in [p for p in self.posts.values() if p.author == peer]:
                    if first <= post.seq <= last:
                        del self.posts[post.id]
        return True

    def _follows(self, m: Membership, author: bytes, seq: int) -> bool:
        """The author's seq before this one is held, or void (outside its spans)."""
        before = seq - 1
        held = {o.seq for o in self.ops.values() if o.author == author}
        held |= {p.seq for p in self.posts.values() if p.author == author}
        void = [(a, b) for a, b in m.outside(author) if b < 2**63 - 1]
        while before > 0 and before not in held:
            inside = [a for a, b in void if a <= before <= b]
            if not inside:
                return False
            before = inside[0] - 1
        return True

    def view(self) -> tuple[object, ...]:
        m = self.membership()
        return (
            m.name,
            m.owner,
            sorted(m.states.items()),
            sorted(m.roles.items()),
            sorted(m.applied),
            sorted(self.posts),
        )


@dataclass
class Author:
    """An honest member's own view while it writes (partitions make views differ)."""

    peer: bytes
    view: Replica
    seq: int = 0

    def next_seq(self) -> int:
        self.seq = max(
            [self.seq, *(o.seq for o in self.view.ops.values() if o.author == self.peer)]
        )
        self.seq += 1
        return self.seq


def script(data: st.DataObject) -> tuple[bytes, list[OpEntry | Post]]:
    """Play a random history: honest members in partitions, and a hostile EVE."""
    h = History(OWNER)
    pool: list[OpEntry | Post] = [h.create]
    authors = {p: Author(p, Replica(h.room)) for p in [*MEMBERS, EVE]}
    authors[OWNER].view.receive(h.create)
    authors[OWNER].seq = 1
    n = [0]

    def new_id() -> bytes:
        n[0] += 1
        return b"\xaa" + n[0].to_bytes(15, "big")

    def write(author: Author, op: str | None, **fields: object) -> None:
        m = author.view.membership()
        if op is None:
            item: OpEntry | Post = Post(new_id(), author.peer, author.next_seq(), m.heads)
        else:
            item = OpEntry(
                new_id(),
                author.peer,
                author.next_seq(),
                m.heads,
                SystemOp(op, **fields),  # type: ignore[arg-type]
            )
        pool.append(item)
        author.view.receive(item)

    def sync(a: Author, b: Author) -> None:
        for _ in range(3):
            for item in pool:
                if item.id in a.view.ops or item.id in a.view.posts:
                    b.view.receive(item)

    # Everyone joins; the admin is promoted; EVE is a member.
    for peer in [ADMIN, ALICE, BOB, EVE]:
        write(authors[OWNER], "invite", peer=peer)
        sync(authors[OWNER], authors[peer])
        write(authors[peer], "join")
        sync(authors[peer], authors[OWNER])
    write(authors[OWNER], "promote", peer=ADMIN)
    for a in authors.values():
        sync(authors[OWNER], a)

    for _ in range(data.draw(st.integers(4, 18), label="steps")):
        kind = data.draw(st.sampled_from(["act", "act", "sync", "evil"]), label="kind")
        if kind == "sync":
            a, b = data.draw(st.permutations(list(authors)), label="pair")[:2]
            sync(authors[a], authors[b])
        elif kind == "act":
            author = authors[data.draw(st.sampled_from(MEMBERS), label="author")]
            action = data.draw(st.sampled_from(ACTIONS), label="action")
            target = data.draw(st.sampled_from([*MEMBERS, EVE]), label="target")
            m = author.view.membership()
            state = m.state_of(author.peer)
            if action == "join" and state == "invited":
                write(author, "join")
            elif state != "joined":
                continue
            elif action == "post":
                write(author, None)
            elif action == "invite" and m.state_of(target) not in ("joined", "invited"):
                write(author, "invite", peer=target)
            elif action == "remove" and m.role_of(author.peer) != "member":
                write(author, "remove", peer=target, upto=author.view_upto(target))  # type: ignore[attr-defined]
            elif action in ("promote", "rename") and m.role_of(author.peer) != "member":
                extra = {"peer": target} if action == "promote" else {"name": f"n{len(pool)}"}
                write(author, action, **extra)
            elif action == "leave" and author.peer != OWNER:
                write(author, "leave")
        else:  # EVE, with valid signatures, tries everything
            eve = authors[EVE]
            known = sorted({*eve.view.ops} | {e.id for e in pool if isinstance(e, OpEntry)})
            trick = data.draw(
                st.sampled_from(["backdate", "forge", "create", "rights", "post", "jump"])
            )
            deps: tuple[bytes, ...]
            if trick == "forge":
                deps = (b"\xee" * 16,)
            elif trick == "create":
                deps = ()
            else:
                deps = tuple(data.draw(st.lists(st.sampled_from(known), max_size=2, unique=True)))
                deps = deps or (h.create.id,)
            if trick in ("post", "jump"):
                seq = eve.next_seq()
                if trick == "jump":  # a seq far ahead, leaving a gap
                    seq = data.draw(st.sampled_from([seq + 5, 2**40]))
                    eve.seq = max(eve.seq, seq)
                item: OpEntry | Post = Post(new_id(), EVE, seq, deps)
            else:
                op = {
                    "create": SystemOp("create", name="pwned", nonce=b"\x07" * 16),
                    "rights": SystemOp("remove", peer=OWNER),
                }.get(trick) or data.draw(
                    st.sampled_from(
                        [
                            SystemOp("promote", peer=EVE),
                            SystemOp("remove", peer=ALICE),
                            SystemOp("rename", name="eve's"),
                            SystemOp("invite", peer=b"\x09" * 32),
                        ]
                    )
                )
                item = OpEntry(new_id(), EVE, eve.next_seq(), deps, op)
            pool.append(item)
            eve.view.receive(item)
    return h.room, pool


def _upto(self: Author, target: bytes) -> int:
    """The removed member's highest contiguous seq this author holds (its ``upto``)."""
    held = {o.seq for o in self.view.ops.values() if o.author == target}
    held |= {p.seq for p in self.view.posts.values() if p.author == target}
    upto = 0
    while upto + 1 in held:
        upto += 1
    return upto


Author.view_upto = _upto  # type: ignore[attr-defined]


def converge(replica: Replica, pool: list[OpEntry | Post], order: list[int]) -> Replica:
    """Deliver ``pool`` in ``order``, then anti-entropy rounds until nothing changes."""
    for i in order:
        replica.receive(pool[i])
    for _ in range(len(pool)):
        if not any([replica.receive(item) for item in pool]):  # noqa: C419 (all of them)
            break
    return replica


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(st.data())
def test_same_envelopes_in_any_order_give_the_same_room(data: st.DataObject) -> None:
    room, pool = script(data)
    seed = data.draw(st.integers(0, 2**32), label="seed")
    rng = random.Random(seed)
    views = []
    for _ in range(3):
        order = list(range(len(pool)))
        rng.shuffle(order)
        views.append(converge(Replica(room), pool, order).view())
    assert views[0] == views[1] == views[2]
    # Security, whatever happened: the owner stays; EVE gains nothing by herself.
    reference = converge(Replica(room), pool, list(range(len(pool)))).membership()
    assert reference.owner == OWNER
    assert reference.name != "pwned"
    ops = [o for o in pool if isinstance(o, OpEntry)]
    if not any(
        o.op.op == "promote" and o.op.peer == EVE and o.id in reference.applied for o in ops
    ):
        assert reference.role_of(EVE) == "member"
        admin_only = MEMBER_OPS - {"invite", "leave"}
        assert not [
            o
            for o in ops
            if o.author == EVE and o.op.op in admin_only and o.id in reference.applied
        ]


def _example_history() -> tuple[History, bytes, bytes, bytes]:
    """docs/protocol.md, worked example 3, up to #6 (ids #1..#6 in order)."""
    owner, admin, evil = OWNER, ADMIN, EVE
    h = History(owner)
    h.add(owner, "invite", peer=admin)
    h.add(admin, "join")
    h.add(owner, "promote", peer=admin)
    h.add(owner, "invite", peer=evil)
    h.add(evil, "join")
    return h, owner, admin, evil


def test_worked_example_3_a_removal_during_a_partition() -> None:
    h, _, admin, evil = _example_history()
    join = h.entries[-1]
    removal = h.add(admin, "remove", peer=evil, upto=2, deps=[join.id])
    late = h.add(evil, "invite", peer=b"\x09" * 32, deps=[join.id], seq=5)
    m = h.resolve()
    assert removal.id in m.applied
    assert late.id in m.refused
    assert m.spans_of(evil) == [(1, 2)]
    assert m.admits(evil, 2, (join.id,)) is None
    assert m.admits(evil, 3, (join.id,)) is not None
    # Had the back-dated invite sorted first, it would be cut all the same.
    early = h.add(evil, "invite", peer=b"\x08" * 32, deps=[join.id], seq=6, id=b"\x00" * 16)
    m = h.resolve()
    assert early.id in m.refused
    assert m.state_of(b"\x08" * 32) is None


def test_worked_example_4_an_admin_removed_while_acting() -> None:
    h, owner, admin, evil = _example_history()
    join = h.entries[-1]
    by_owner = h.add(owner, "remove", peer=admin, upto=1, deps=[join.id])
    by_admin = h.add(admin, "remove", peer=evil, upto=1, deps=[join.id])
    m = h.resolve()
    assert by_owner.id in m.applied
    assert by_admin.id in m.refused
    assert m.state_of(evil) == "joined"
    assert m.state_of(admin) == "removed"
