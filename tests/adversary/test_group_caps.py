"""A room's caps on membership changes: a full room refuses a plain member's change, and
no cap ever refuses the changes that run the room (issue 10, docs/security.md *Group
abuse*).

The room is filled by its owner, whose changes no cap refuses: renames forged by the
owner's own node with valid signatures and sent straight to bob, the node under test.
Each envelope is judged by bob alone, so what bob holds is what its caps let in.

The caps are lowered for these tests (room 4096 -> 300, per author 512 -> 64): filling a
room with 4096 changes makes every member push them to every other, about 25 s on this
machine, and the code paths are the same. The owner's 300 changes are then past the
per-author cap too, so the owner's exemption from both caps is shown.
"""

from __future__ import annotations

import pytest

from p2pchat.node import Node, rooms
from p2pchat.node import groups as groups_module
from p2pchat.node.envelopes import row_to_envelope
from p2pchat.node.rooms import KIND_SYSTEM, SystemOp, encode_system, group_envelope_id
from p2pchat.store import now_ms
from p2pchat.wire import Envelope
from tests.adversary.hostile import Hostile
from tests.adversary.test_group_takeover import settle
from tests.node.groups_helpers import befriend, form_room, start_nodes, wait_texts

ROOM_CAP = 300
AUTHOR_CAP = 64


@pytest.fixture(autouse=True)
def small_caps(monkeypatch: pytest.MonkeyPatch) -> None:
    assert (rooms.MAX_OPS, rooms.MAX_OPS_PER_AUTHOR) == (4096, 512)  # as docs/security.md says
    monkeypatch.setattr(groups_module, "MAX_OPS", ROOM_CAP)
    monkeypatch.setattr(groups_module, "MAX_OPS_PER_AUTHOR", AUTHOR_CAP)


async def _context(node: Node, room: bytes) -> Envelope:
    """A genuine envelope ``node`` wrote in ``room`` (its causal context, to reuse)."""
    sent = await node.send_message(room, f"hello from {node.profile.display_name}")
    stored = await node.get_message(sent.id)
    assert stored is not None
    return row_to_envelope(stored)


def _change(author: Node, context: Envelope, seq: int, op: SystemOp) -> Envelope:
    """A membership change by ``author`` at ``seq``, with the causal context of ``context``."""
    return Hostile.resigned(
        author,
        context,
        id=group_envelope_id(context.room, author.me, seq),
        kind=KIND_SYSTEM,
        body=encode_system(op),
        seq=seq,
        lamport=context.lamport + seq,
        ts=now_ms(),
        reply_to=None,
    )


async def _held(node: Node, env: Envelope) -> bool:
    return await node.get_message(env.id) is not None


async def _changes_held(node: Node, room: bytes) -> int:
    return len(await node._read(lambda s: s.messages_of_kind(room, KIND_SYSTEM)))


async def _room(owner: Node, bob: Node, members: list[Node]) -> bytes:
    """A room of ``owner``, ``bob`` and ``members``, each connected to the owner and bob."""
    for node in (bob, *members):
        await befriend(owner, node)
    for node in members:
        await befriend(bob, node)
    return await form_room(owner, [bob, *members])


async def _fill(owner: Node, bob: Node, room: bytes) -> Envelope:
    """Fill the room, as bob holds it, with the owner's renames; returns the owner's
    context for its later changes (from seq ``context.seq + ROOM_CAP + 1`` on: the
    owner's node never stored the fill, so it must not write through its own API)."""
    context = await _context(owner, room)
    await wait_texts(bob, room, 1)
    fill = [
        _change(owner, context, context.seq + 1 + i, SystemOp("rename", name=f"fill {i}"))
        for i in range(ROOM_CAP)
    ]
    Hostile(owner).send_envelopes(bob.me, *fill)
    await settle(owner, bob)
    assert await _changes_held(bob, room) >= ROOM_CAP
    return context


async def test_a_full_room_refuses_a_plain_members_change() -> None:
    alice, bob, carol = nodes = await start_nodes(["alice", "bob", "carol"])
    try:
        room = await _room(alice, bob, [carol])
        await _fill(alice, bob, room)
        context = await _context(carol, room)
        change = _change(carol, context, context.seq + 1, SystemOp("rename", name="carol's"))
        Hostile(carol).send_envelopes(bob.me, change)
        await settle(carol, bob)
        assert not await _held(bob, change)
        assert [r.name for r in await bob.list_rooms() if r.room_id == room] != ["carol's"]
    finally:
        for node in nodes:
            await node.stop()


async def test_a_full_room_still_takes_the_owners_an_admins_and_an_invitees_answer() -> None:
    alice, bob, eve, dave = nodes = await start_nodes(["alice", "bob", "eve", "dave"])
    try:
        await befriend(alice, dave)
        await befriend(bob, dave)
        room = await _room(alice, bob, [eve])
        # Promoted and invited before the room fills; dave answers once it is full.
        await alice.groups.promote(room, eve.me)
        await alice.groups.invite(room, dave.me)
        await settle(alice, dave)
        assert any(i.room == room for i in await dave.groups.invitations())
        owner = await _fill(alice, bob, room)
        # The owner's next change (forged past the fill: the owner's node never stored it).
        by_owner = _change(
            alice, owner, owner.seq + ROOM_CAP + 1, SystemOp("rename", name="owner's")
        )
        Hostile(alice).send_envelopes(bob.me, by_owner)
        admin = await _context(eve, room)
        by_admin = _change(eve, admin, admin.seq + 1, SystemOp("topic", topic="admin's"))
        Hostile(eve).send_envelopes(bob.me, by_admin)
        await dave.groups.join(room)
        for sender in (alice, eve, dave):
            await settle(sender, bob)
        assert await _held(bob, by_owner)
        assert await _held(bob, by_admin)
        joined = [m.peer_id for m in await bob.groups.members(room) if m.state == "joined"]
        assert dave.me in joined
    finally:
        for node in nodes:
            await node.stop()
