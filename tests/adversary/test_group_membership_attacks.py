"""Attacks on group membership found in review, each with valid signatures (issue 9).

Pure ones run ``rooms.resolve`` on a hand-built operation graph; the others run real
nodes on loopback and a hostile member that signs whatever it likes.
"""

from __future__ import annotations

import os

from p2pchat.identity import Identity
from p2pchat.node import Node
from p2pchat.node.envelopes import sign_envelope
from p2pchat.node.rooms import (
    KIND_SYSTEM,
    SystemOp,
    encode_system,
    group_envelope_id,
    group_room_id,
)
from p2pchat.store import MessageStatus, now_ms
from p2pchat.wire import RECEIPT_DELIVERED, Envelope, Receipt
from tests.adversary.hostile import Hostile
from tests.node.groups_helpers import (
    form_room,
    mesh,
    start_nodes,
    texts,
    wait_texts,
    wait_until,
)
from tests.node.room_ops import History
from tests.nodes import stop_all

OWNER, ADMIN, MEMBER, OTHER = (bytes([n]) * 32 for n in range(1, 5))


def _room_with_admin_and_member() -> tuple[History, object]:
    h = History(OWNER)
    h.add(OWNER, "invite", peer=ADMIN)
    h.add(ADMIN, "join")
    h.add(OWNER, "promote", peer=ADMIN)
    h.add(OWNER, "invite", peer=MEMBER)
    join = h.add(MEMBER, "join")
    return h, join


def test_a_member_cannot_stretch_its_span_with_a_far_ahead_seq() -> None:
    h, join = _room_with_admin_and_member()
    # The member plants a (refused) change numbered far ahead, which everyone may hold.
    h.add(MEMBER, "rename", name="x", seq=2**62)
    h.add(ADMIN, "remove", peer=MEMBER, upto=3)
    m = h.resolve()
    assert m.spans_of(MEMBER) == [(1, 3)]
    assert m.admits(MEMBER, 1000, (join.id,)) is not None


def test_a_removed_admin_cannot_act_with_seqs_far_ahead() -> None:
    h, _ = _room_with_admin_and_member()
    promote = h.entries[3]
    h.add(ADMIN, "topic", topic="mine", seq=2**62)  # planted while still an admin
    h.add(OWNER, "remove", peer=ADMIN, upto=2)
    late = h.add(ADMIN, "remove", peer=MEMBER, deps=[promote.id], seq=2**62 + 1)
    m = h.resolve()
    assert m.state_of(ADMIN) == "removed"
    assert late.id in m.refused
    assert m.state_of(MEMBER) == "joined"
    assert m.topic is None


def test_a_plain_member_cannot_invite_back_someone_an_admin_removed() -> None:
    h, _ = _room_with_admin_and_member()
    h.add(OWNER, "invite", peer=OTHER)
    h.add(OTHER, "join")
    h.add(ADMIN, "remove", peer=OTHER, upto=1)
    back = h.add(MEMBER, "invite", peer=OTHER)
    m = h.resolve()
    assert back.id in m.refused
    assert m.state_of(OTHER) == "removed"
    by_admin = h.add(ADMIN, "invite", peer=OTHER)
    assert by_admin.id in h.resolve().applied


def test_promoting_an_admin_again_is_refused_not_shown() -> None:
    h, _ = _room_with_admin_and_member()
    again = h.add(OWNER, "promote", peer=ADMIN)
    m = h.resolve()
    assert again.id in m.refused
    assert again.id not in m.applied


def test_refused_changes_are_never_named_as_deps() -> None:
    h, _ = _room_with_admin_and_member()
    junk = h.add(MEMBER, "rename", name="junk")  # refused: not an admin
    m = h.resolve()
    assert junk.id in m.refused
    assert junk.id not in m.heads  # so no honest envelope ever waits for it


async def _heads(node: Node, room: bytes) -> tuple[bytes, ...]:
    return await node._read(lambda s: node.groups.membership(s, room).heads)


async def _next_seq(node: Node, room: bytes) -> int:
    return await node._read(lambda s: s.next_seq(room, node.me))


async def test_a_member_cannot_squat_the_id_of_someone_elses_removal() -> None:
    alice, bob, mallory = await start_nodes(["alice", "bob", "mallory"])
    try:
        await mesh([alice, bob, mallory])
        room = await form_room(alice, [bob, mallory])
        # Mallory guesses the id of the removal alice is about to write and sends bob an
        # envelope of her own under it, hoping bob will then refuse the real removal.
        squat_id = group_envelope_id(room, alice.me, await _next_seq(alice, room))
        squat = Hostile(mallory).envelope(
            room,
            id=squat_id,
            kind="text",
            body=b"squatting",
            seq=await _next_seq(mallory, room),
            deps=await _heads(mallory, room),
        )
        Hostile(mallory).send_envelopes(bob.me, squat)
        fence = await mallory.send_text(bob.me, "fence")  # bob handles the squat first
        await wait_until(bob, lambda: _has(bob, fence.id))
        await alice.groups.remove(room, mallory.me)

        async def removed_at_bob() -> bool:
            members = {m.peer_id: m.state for m in await bob.groups.members(room)}
            return members.get(mallory.me) == "removed"

        await wait_until(bob, removed_at_bob)
        assert "squatting" not in await texts(bob, room)
    finally:
        for node in (alice, bob, mallory):
            await node.stop()


async def test_a_removal_undone_by_a_concurrent_one_lets_the_member_back_in() -> None:
    owner, admin, member = await start_nodes(["owner", "admin", "member"])
    try:
        await mesh([owner, admin, member])
        room = await form_room(owner, [admin, member])
        await owner.groups.promote(room, admin.me)
        await wait_until(member, lambda: _role(member, room, admin.me, "admin"))
        fork = await _heads(member, room)
        # Concurrently: the admin removes the member, the owner removes the admin.
        by_admin = _signed(
            admin, room, await _next_seq(admin, room), fork, SystemOp("remove", peer=member.me)
        )
        by_owner = _signed(
            owner,
            room,
            await _next_seq(owner, room),
            fork,
            SystemOp("remove", peer=admin.me, upto=1),
        )
        Hostile(admin).send_envelopes(member.me, by_admin)
        await wait_until(member, lambda: _state(member, room, member.me, "removed"))
        Hostile(owner).send_envelopes(member.me, by_owner)
        # Holding both, the member counts again (the admin's removal lies outside its span).
        await wait_until(member, lambda: _state(member, room, member.me, "joined"))
        assert await _state(member, room, admin.me, "removed")
    finally:
        for node in (owner, admin, member):
            await node.stop()


def _signed(node: Node, room: bytes, seq: int, deps: tuple[bytes, ...], op: SystemOp) -> Envelope:
    return Hostile(node).envelope(
        room, kind=KIND_SYSTEM, body=encode_system(op), seq=seq, deps=deps
    )


async def _state(node: Node, room: bytes, peer: bytes, state: str) -> bool:
    return any(m.peer_id == peer and m.state == state for m in await node.groups.members(room))


async def _role(node: Node, room: bytes, peer: bytes, role: str) -> bool:
    return any(m.peer_id == peer and m.role == role for m in await node.groups.members(room))


async def test_invitations_from_throwaway_identities_are_held_back() -> None:
    alice, mallory = await start_nodes(["alice", "mallory"])
    try:
        await mesh([alice, mallory])
        logs = []
        for _ in range(10):
            fake = Identity.generate()
            nonce = os.urandom(16)
            room = group_room_id(fake.peer_id, nonce)
            create = _as(fake, room, 1, (), SystemOp("create", name="spam", nonce=nonce))
            invite = _as(fake, room, 2, (create.id,), SystemOp("invite", peer=alice.me))
            logs += [create, invite]
        events = alice.subscribe()
        Hostile(mallory).send_envelopes(alice.me, *logs)
        fence = await mallory.send_text(alice.me, "fence")
        await wait_until(alice, lambda: _has(alice, fence.id))
        assert await alice.groups.invitations() == []
        events.close()
    finally:
        for node in (alice, mallory):
            await node.stop()


def _as(
    identity: Identity, room: bytes, seq: int, deps: tuple[bytes, ...], op: SystemOp
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


async def _has(node: Node, message_id: bytes) -> bool:
    return await node.get_message(message_id) is not None


async def test_a_member_skipping_a_seq_cannot_show_different_members_different_posts() -> None:
    alice, bob, mallory = await start_nodes(["alice", "bob", "mallory"])
    try:
        await mesh([alice, bob, mallory])
        room = await form_room(alice, [bob, mallory])
        seq = await _next_seq(mallory, room)
        deps = await _heads(mallory, room)
        # Seq ``seq`` is never sent; alice gets one post above the gap, bob another.
        to_alice = Hostile(mallory).envelope(room, body=b"for alice", seq=seq + 1, deps=deps)
        to_bob = Hostile(mallory).envelope(room, body=b"for bob", seq=seq + 2, deps=deps)
        Hostile(mallory).send_envelopes(alice.me, to_alice)
        Hostile(mallory).send_envelopes(bob.me, to_bob)
        for node in (alice, bob):
            fence = await mallory.send_text(node.me, "fence")
            await wait_until(node, lambda n=node, f=fence: _has(n, f.id))
        # Neither holds a post above the gap: what they hold of mallory stays a prefix.
        assert await texts(alice, room) == await texts(bob, room) == []
    finally:
        for node in (alice, bob, mallory):
            await node.stop()


async def test_receipts_from_outside_the_room_never_complete_a_message() -> None:
    """Dave shares another room with Alice (so his receipts are kept, in case his join
    is on its way) and acknowledges her message in a room he is not in, while Carol, a
    member, is away: there are now as many receipts as members, but the message is not
    delivered to everyone, and must not say so."""
    alice, bob, carol, dave = await start_nodes(["alice", "bob", "carol", "dave"])
    try:
        await mesh([alice, bob, carol, dave])
        room = await form_room(alice, [bob, carol])
        await form_room(alice, [dave], name="other")
        await carol.stop()
        msg = await alice.send_message(room, "hi")
        await wait_texts(bob, room, 1)
        dave.links.write(alice.me, Receipt(room=room, ids=(msg.id,), st=RECEIPT_DELIVERED))

        async def two_receipts() -> bool:  # Bob's and Dave's, stored
            held = await alice.store_read(
                lambda s: s.receipts_at_least(msg.id, MessageStatus.DELIVERED)
            )
            return held >= 2

        await wait_until(alice, two_receipts)
        own = next(m.status for m in await alice.history(room) if m.id == msg.id)
        assert own < MessageStatus.DELIVERED
    finally:
        await stop_all([alice, bob, dave])
