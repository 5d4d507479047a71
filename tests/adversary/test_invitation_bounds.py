"""Invitations cannot fill our memory or our store (issue 10, docs/security.md *Group
abuse*).

An invitation arrives as the room's membership log, envelope by envelope; until the log
invites us, it waits in memory, buffered only from contacts, two rooms per contact and
16 in all. Adopted invitations wait in the store, at most 3 per inviter and 24 in all.
Every sender here is a real node on loopback, with valid signatures.
"""

from __future__ import annotations

import os

import pytest

from p2pchat.identity import Identity
from p2pchat.node import Node
from p2pchat.node import groups as groups_module
from p2pchat.node.envelopes import row_to_envelope, sign_envelope
from p2pchat.node.events import SecurityWarning
from p2pchat.node.groups import (
    MAX_INVITATIONS,
    MAX_INVITATIONS_PER_INVITER,
    MAX_PENDING_ROOMS,
    MAX_PENDING_ROOMS_PER_CONTACT,
)
from p2pchat.node.rooms import (
    KIND_SYSTEM,
    SystemOp,
    encode_system,
    group_envelope_id,
    group_room_id,
)
from p2pchat.store import now_ms
from p2pchat.wire import Envelope
from tests.adversary.hostile import Hostile
from tests.adversary.test_group_caps import _change, _context
from tests.adversary.test_group_takeover import settle
from tests.node.groups_helpers import befriend, form_room, start_nodes, wait_texts
from tests.nodes import connected_pair, wait_for


def _signed(
    identity: Identity, room: bytes, seq: int, deps: tuple[bytes, ...] | None, op: SystemOp
) -> Envelope:
    return sign_envelope(
        identity,
        Envelope.unsigned(
            room=room,
            id=group_envelope_id(room, identity.peer_id, seq),
            author=identity.peer_id,
            seq=seq,
            lamport=seq,
            ts=now_ms(),
            kind=KIND_SYSTEM,
            body=encode_system(op),
            deps=deps,
        ),
    )


def _log_starts(count: int) -> list[Envelope]:
    """The first envelope (``create``) of ``count`` rooms' logs: each waits for the rest."""
    out = []
    for _ in range(count):
        owner = Identity.generate()
        nonce = os.urandom(16)
        room = group_room_id(owner.peer_id, nonce)
        out.append(_signed(owner, room, 1, (), SystemOp("create", name="later", nonce=nonce)))
    return out


async def _send(sender: Node, to: Node, envs: list[Envelope]) -> None:
    """Send ``envs`` and return once ``to`` has handled them."""
    Hostile(sender).send_envelopes(to.me, *envs)
    await settle(sender, to)


def _buffered_from(node: Node, sender: Node) -> int:
    return sum(1 for who in node.groups._pending_by.values() if who == sender.me)


async def test_one_contact_sending_many_room_logs_cannot_crowd_out_anothers_invitation() -> None:
    alice, carol, mallory = nodes = await start_nodes(["alice", "carol", "mallory"])
    try:
        await befriend(alice, carol)
        await befriend(alice, mallory)
        room = await carol.groups.create_room("book club")  # sent to nobody yet
        log = await carol._read(lambda s: s.messages_of_kind(room, KIND_SYSTEM))
        create = row_to_envelope(log[0])
        invite = _signed(carol.identity, room, 2, (create.id,), SystemOp("invite", peer=alice.me))
        await _send(carol, alice, [create])  # the log's start waits in alice's memory...
        await _send(mallory, alice, _log_starts(MAX_PENDING_ROOMS + 4))  # ...through this
        await _send(carol, alice, [invite])
        assert [i.room for i in await alice.groups.invitations()] == [room]
    finally:
        for node in nodes:
            await node.stop()


async def test_room_logs_are_buffered_only_from_contacts_two_each_and_16_in_all() -> None:
    names = ["alice", "stranger", *(f"contact{i}" for i in range(9))]
    alice, stranger, *contacts = nodes = await start_nodes(names)
    try:
        for contact in contacts:
            await befriend(alice, contact)
        await connected_pair(stranger, alice)
        for contact in contacts[1:]:
            await _send(contact, alice, _log_starts(MAX_PENDING_ROOMS_PER_CONTACT))
        await _send(contacts[0], alice, _log_starts(5))
        await _send(stranger, alice, _log_starts(3))
        assert _buffered_from(alice, stranger) == 0
        assert _buffered_from(alice, contacts[0]) == MAX_PENDING_ROOMS_PER_CONTACT
        assert len(alice.groups._pending) == MAX_PENDING_ROOMS
    finally:
        for node in nodes:
            await node.stop()


async def test_at_most_24_unanswered_invitations_are_stored_and_the_rest_are_counted() -> None:
    inviters = [f"inviter{i}" for i in range(MAX_INVITATIONS // MAX_INVITATIONS_PER_INVITER + 1)]
    alice, *others = nodes = await start_nodes(["alice", *inviters])
    events = None
    try:
        for inviter in others:
            await befriend(alice, inviter)
        events = alice.subscribe()
        sent = 0
        for inviter in others:
            for i in range(MAX_INVITATIONS_PER_INVITER):
                room = await inviter.groups.create_room(f"room {i}")
                await inviter.groups.invite(room, alice.me)
                sent += 1
            await settle(inviter, alice)
        assert sent > MAX_INVITATIONS
        assert len(await alice.groups.invitations()) == MAX_INVITATIONS
        assert len([r for r in await alice.list_rooms() if r.kind == "group"]) == MAX_INVITATIONS
        # The person is told of the rest.
        await wait_for(events, lambda e: isinstance(e, SecurityWarning) and "held back" in e.text)
    finally:
        if events is not None:
            events.close()
        for node in nodes:
            await node.stop()


async def test_an_invitation_to_a_room_with_hundreds_of_changes_is_adopted() -> None:
    """The in-memory bounds hold a whole log: an invitation to a busy room (more changes
    than the 512 envelopes a log could once hold) must still arrive."""
    alice, bob, dave = nodes = await start_nodes(["alice", "bob", "dave"])
    try:
        await befriend(alice, bob)
        await befriend(bob, dave)
        room = await form_room(alice, [bob])
        context = await _context(alice, room)
        await wait_texts(bob, room, 1)
        renames = [
            _change(alice, context, context.seq + 1 + i, SystemOp("rename", name=f"name {i}"))
            for i in range(600)
        ]
        await _send(alice, bob, renames)
        await bob.groups.invite(room, dave.me)  # bob hands dave the whole log
        await settle(bob, dave)
        assert [i.room for i in await dave.groups.invitations()] == [room]
    finally:
        for node in nodes:
            await node.stop()


def _log(length: int) -> list[Envelope]:
    """The first ``length`` envelopes of a room's log (create, then renames): no invite
    of ours, so it waits in memory."""
    owner = Identity.generate()
    nonce = os.urandom(16)
    room = group_room_id(owner.peer_id, nonce)
    create = _signed(owner, room, 1, (), SystemOp("create", name="later", nonce=nonce))
    renames = [
        _signed(owner, room, seq, (create.id,), SystemOp("rename", name=f"n{seq}"))
        for seq in range(2, length + 1)
    ]
    return [create, *renames]


async def test_buffered_room_logs_hold_a_bounded_number_of_well_formed_changes(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Only well-formed changes are buffered, and a few whole logs in all (bounds
    lowered here: 40 per room, 100 in all, instead of 4352 and 17408)."""
    monkeypatch.setattr(groups_module, "MAX_PENDING_ENVELOPES", 40)
    monkeypatch.setattr(groups_module, "MAX_PENDING_TOTAL", 100)
    alice, *contacts = nodes = await start_nodes(["alice", "c0", "c1", "c2"])
    try:
        for contact in contacts:
            await befriend(alice, contact)
        owner, room = Identity.generate(), os.urandom(16)
        junk = [
            _signed(owner, room, 1, (), SystemOp("nope")),  # no such operation
            _signed(owner, room, 2, None, SystemOp("rename", name="old")),  # no deps
        ]
        await _send(contacts[0], alice, junk)
        assert alice.groups._pending == {}
        for contact in contacts:
            await _send(contact, alice, _log(35) + _log(35))
        held = sum(len(bucket) for bucket in alice.groups._pending.values())
        assert 35 <= held <= 100
    finally:
        for node in nodes:
            await node.stop()


async def test_changes_in_rooms_we_share_do_not_push_out_a_contacts_waiting_invitation() -> None:
    alice, carol = nodes = await start_nodes(["alice", "carol"])
    try:
        await befriend(alice, carol)
        shared = [await form_room(carol, [alice], name=f"shared {i}") for i in range(2)]
        room = await carol.groups.create_room("book club")  # sent to nobody yet
        log = await carol._read(lambda s: s.messages_of_kind(room, KIND_SYSTEM))
        create = row_to_envelope(log[0])
        invite = _signed(carol.identity, room, 2, (create.id,), SystemOp("invite", peer=alice.me))
        await _send(carol, alice, [create])  # the log's start waits in alice's memory
        for i, other in enumerate(shared):  # carol's everyday changes in rooms we share
            await carol.groups.rename(other, f"renamed {i}")
        await settle(carol, alice)
        await _send(carol, alice, [invite])
        assert room in [i.room for i in await alice.groups.invitations()]
    finally:
        for node in nodes:
            await node.stop()
