"""Membership replay: deterministic whatever the arrival order, and rights enforced."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from p2pchat.node.rooms import (
    SystemBodyError,
    SystemEntry,
    SystemOp,
    decode_system,
    encode_system,
    replay,
)

OWNER, ADMIN, ALICE, BOB, EVE = (bytes([n]) * 32 for n in range(1, 6))


def entry(lamport: int, author: bytes, op: str, **kw: object) -> SystemEntry:
    return SystemEntry((lamport, author, bytes([lamport]) * 16), author, SystemOp(op, **kw))  # type: ignore[arg-type]


HISTORY = [
    entry(1, OWNER, "create", name="team"),
    entry(2, OWNER, "invite", peer=ADMIN),
    entry(3, ADMIN, "join"),
    entry(4, OWNER, "promote", peer=ADMIN),
    entry(5, ADMIN, "invite", peer=ALICE),
    entry(6, ALICE, "join"),
    entry(7, ADMIN, "invite", peer=BOB),
    entry(8, BOB, "join"),
    entry(9, ALICE, "remove", peer=BOB),  # alice is no admin: ignored
    entry(10, ADMIN, "remove", peer=BOB),
    entry(11, EVE, "join"),  # never invited: ignored
    entry(12, ADMIN, "rename", name="the team"),
    entry(13, ALICE, "leave"),
]


def test_replay_applies_rights() -> None:
    m = replay(HISTORY)
    assert m.name == "the team"
    assert m.owner == OWNER
    assert m.states == {OWNER: "joined", ADMIN: "joined", ALICE: "left", BOB: "removed"}
    assert m.role_of(ADMIN) == "admin"
    assert sorted(e.author for e, _ in m.rejected) == sorted([ALICE, EVE])
    # Membership over time: bob was a member between his join and his removal.
    assert m.was_member_at(BOB, (9, BOB, b"x" * 16))
    assert not m.was_member_at(BOB, (10, ADMIN, b"\xff" * 16))
    assert not m.was_member_at(BOB, (7, ADMIN, b"\xff" * 16))
    assert not m.was_member_at(EVE, (20, EVE, b"x" * 16))


@given(st.permutations(HISTORY))
def test_replay_is_the_same_for_any_arrival_order(order: list[SystemEntry]) -> None:
    a, b = replay(HISTORY), replay(order)
    assert (a.name, a.owner, a.states, a.roles) == (b.name, b.owner, b.states, b.roles)


def test_owner_cannot_be_removed_and_admins_cannot_remove_admins() -> None:
    history = [
        *HISTORY[:8],
        entry(9, OWNER, "promote", peer=ALICE),
        entry(10, ADMIN, "remove", peer=ALICE),
        entry(11, ADMIN, "remove", peer=OWNER),
    ]
    m = replay(history)
    assert m.states[ALICE] == "joined"
    assert m.states[OWNER] == "joined"
    assert len(m.rejected) == 2


def test_owner_leaving_hands_the_room_to_an_admin() -> None:
    m = replay([*HISTORY[:6], entry(7, OWNER, "leave")])
    assert m.owner == ADMIN
    assert m.role_of(ADMIN) == "owner"


def test_a_second_create_is_ignored() -> None:
    m = replay([HISTORY[0], entry(2, EVE, "create", name="hijack")])
    assert m.owner == OWNER
    assert m.name == "team"


def test_system_bodies_round_trip_and_reject_garbage() -> None:
    op = SystemOp("invite", peer=ALICE)
    assert decode_system(encode_system(op)) == op
    for bad in [b"", b"\xc1", encode_system(SystemOp("explode")), b"\x91\x01"]:
        with pytest.raises(SystemBodyError):
            decode_system(bad)
    with pytest.raises(SystemBodyError, match="needs a peer"):
        decode_system(encode_system(SystemOp("remove")))
