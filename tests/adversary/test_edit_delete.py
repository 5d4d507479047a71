"""Attacks on edit and delete (issue 14, item 2), each with valid signatures.

A hostile contact or group member signs whatever it likes: edits of messages it did
not write, deletes of others' messages, deletes claiming an admin right it had not seen,
edits before their message, oversized or malformed bodies, unknown ids and replays.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator

import pytest

from p2pchat.node import Node, NodeError
from p2pchat.node.edits import KIND_DELETE, KIND_EDIT, Target, encode_delete
from p2pchat.node.rooms import group_envelope_id
from p2pchat.store.changes import is_tombstone
from p2pchat.wire import MAX_BODY
from tests.adversary.hostile import Hostile, hostile_peer
from tests.node.groups_helpers import form_room, mesh, start_nodes, wait_until
from tests.nodes import make_node


@pytest.fixture
async def pair() -> AsyncIterator[tuple[Node, Hostile]]:
    target = make_node("target")
    await target.start()
    hostile = await hostile_peer("mallory", target)
    await target.accept(hostile.me)
    await hostile.node.accept(target.me)
    try:
        yield target, hostile
    finally:
        await hostile.node.stop()
        await target.stop()


async def _has(node: Node, message_id: bytes) -> bool:
    return await node.get_message(message_id) is not None


async def _fence(hostile: Hostile, target: Node) -> None:
    """Wait until ``target`` handled everything ``hostile`` sent before (one inbox)."""
    fence = hostile.direct(target.me, body=b"fence", lamport=2**20)
    hostile.send_envelopes(target.me, fence)
    await wait_until(target, lambda: _has(target, fence.id))


async def _shown(node: Node, message_id: bytes) -> tuple[str, bool]:
    message = await node.get_message(message_id)
    assert message is not None
    return node.display_text(message), message.edited


async def test_a_contact_cannot_edit_someone_elses_message(pair: tuple[Node, Hostile]) -> None:
    target, hostile = pair
    mine = await target.send_text(hostile.me, "I owe you nothing")
    await wait_until(hostile.node, lambda: _has(hostile.node, mine.id))
    forged = hostile.direct(target.me, kind=KIND_EDIT, body=b"I owe you 1000", reply_to=mine.id)
    hostile.send_envelopes(target.me, forged)
    await _fence(hostile, target)
    assert await _shown(target, mine.id) == ("I owe you nothing", False)
    history = await target.history(target.direct_room(hostile.me))
    assert [target.display_text(m) for m in history] == ["I owe you nothing", "fence"]


async def test_a_contact_cannot_delete_someone_elses_message(pair: tuple[Node, Hostile]) -> None:
    target, hostile = pair
    mine = await target.send_text(hostile.me, "evidence")
    await wait_until(hostile.node, lambda: _has(hostile.node, mine.id))
    forged = hostile.direct(
        target.me, kind=KIND_DELETE, body=encode_delete([Target(mine.id, target.me, mine.seq)])
    )
    hostile.send_envelopes(target.me, forged)
    await _fence(hostile, target)
    assert await _shown(target, mine.id) == ("evidence", False)


async def test_an_edit_arriving_before_its_message_applies_when_it_comes(
    pair: tuple[Node, Hostile],
) -> None:
    target, hostile = pair
    original = hostile.direct(target.me, body=b"meet at noon", seq=1, lamport=5)
    edit = hostile.direct(
        target.me, kind=KIND_EDIT, body=b"meet at one", reply_to=original.id, seq=2, lamport=6
    )
    hostile.send_envelopes(target.me, edit)
    await _fence(hostile, target)
    assert not await _has(target, original.id)
    hostile.send_envelopes(target.me, original)
    await _fence(hostile, target)
    assert await _shown(target, original.id) == ("meet at one", True)


async def test_edits_cannot_exceed_a_messages_size_or_be_garbage(
    pair: tuple[Node, Hostile],
) -> None:
    target, hostile = pair
    original = hostile.direct(target.me, body=b"short")
    hostile.send_envelopes(target.me, original)
    # Not UTF-8, and empty: dropped (never acknowledged, never shown).
    bad = hostile.direct(target.me, kind=KIND_EDIT, body=b"\xff\xfe", reply_to=original.id)
    empty = hostile.direct(target.me, kind=KIND_EDIT, body=b"  ", reply_to=original.id)
    hostile.send_envelopes(target.me, bad, empty)
    await _fence(hostile, target)
    assert not await _has(target, bad.id)
    assert not await _has(target, empty.id)
    assert await _shown(target, original.id) == ("short", False)
    # The largest edit is the largest message, no more: our own node refuses beyond it.
    mine = await target.send_text(hostile.me, "x")
    with pytest.raises(NodeError, match="too long"):
        await target.edit_message(mine.id, "y" * (MAX_BODY + 1))
    big = "z" * MAX_BODY
    await target.edit_message(mine.id, big)
    assert await _shown(target, mine.id) == (big, True)


async def test_a_delete_for_an_unknown_or_foreign_id_changes_nothing(
    pair: tuple[Node, Hostile],
) -> None:
    target, hostile = pair
    mine = await target.send_text(hostile.me, "still here")
    await wait_until(hostile.node, lambda: _has(hostile.node, mine.id))
    unknown, ahead = os.urandom(16), os.urandom(16)
    # Someone else's seq under an unknown id, an id it claims for a seq it has not
    # written yet, and a real id of ours under a wrong author.
    delete = hostile.direct(
        target.me,
        kind=KIND_DELETE,
        body=encode_delete(
            [
                Target(unknown, target.me, 1),
                Target(ahead, hostile.me, 99),
                Target(mine.id, hostile.me, mine.seq),
            ]
        ),
        seq=3,
    )
    hostile.send_envelopes(target.me, delete)
    await _fence(hostile, target)
    assert await target.get_message(unknown) is None
    assert await target.get_message(ahead) is None  # would block its own seq 99
    assert await _shown(target, mine.id) == ("still here", False)
    held = await target.get_message(delete.id)
    assert held is not None  # stored (it is part of its author's sequence), harmless


async def test_replayed_edits_and_deletes_change_nothing_more(
    pair: tuple[Node, Hostile],
) -> None:
    target, hostile = pair
    original = hostile.direct(target.me, body=b"v1", seq=1, lamport=10)
    first = hostile.direct(
        target.me, kind=KIND_EDIT, body=b"v2", reply_to=original.id, seq=2, lamport=11
    )
    second = hostile.direct(
        target.me, kind=KIND_EDIT, body=b"v3", reply_to=original.id, seq=3, lamport=12
    )
    hostile.send_envelopes(target.me, original, first, second)
    await _fence(hostile, target)
    hostile.send_envelopes(target.me, first)  # an old edit again: v3 stays
    await _fence(hostile, target)
    assert await _shown(target, original.id) == ("v3", True)
    delete = hostile.direct(
        target.me,
        kind=KIND_DELETE,
        body=encode_delete([Target(original.id, hostile.me, 1), Target(second.id, hostile.me, 3)]),
        seq=5,
        lamport=14,
    )
    hostile.send_envelopes(target.me, delete)
    await _fence(hostile, target)
    # The deleted message and its edit replayed, signatures intact: it stays deleted.
    hostile.send_envelopes(target.me, original, second, delete)
    await _fence(hostile, target)
    gone = await target.get_message(original.id)
    assert gone is not None
    assert is_tombstone(gone)
    assert target.display_text(gone) == "message deleted"
    rows = await target.store_read(
        lambda s: s._all("SELECT count(*) FROM messages WHERE body IN (x'7631', x'7633')")
    )
    assert rows[0][0] == 0


async def _heads(node: Node, room: bytes) -> tuple[bytes, ...]:
    return await node.store_read(lambda s: node.groups.membership(s, room).heads)


async def _next_seq(node: Node, room: bytes) -> int:
    return await node.store_read(lambda s: s.next_seq(room, node.me))


async def test_a_group_member_cannot_delete_others_messages() -> None:
    alice, bob, mallory = await start_nodes(["alice", "bob", "mallory"])
    try:
        await mesh([alice, bob, mallory])
        room = await form_room(alice, [bob, mallory])
        said = await bob.send_message(room, "bob's point")
        for node in (alice, mallory):
            await wait_until(node, lambda n=node: _has(n, said.id))
        with pytest.raises(NodeError, match="owners and admins"):
            await mallory.delete_message(said.id)
        seq = await _next_seq(mallory, room)
        forged = Hostile(mallory).envelope(
            room,
            kind=KIND_DELETE,
            body=encode_delete([Target(said.id, bob.me, said.seq)]),
            seq=seq,
            lamport=said.lamport + 1,
            deps=await _heads(mallory, room),
        )
        for node in (alice, bob):
            Hostile(mallory).send_envelopes(node.me, forged)
            fence = await mallory.send_text(node.me, "fence")
            await wait_until(node, lambda n=node, f=fence: _has(n, f.id))
        for node in (alice, bob):
            assert await _shown(node, said.id) == ("bob's point", False)
    finally:
        for node in (alice, bob, mallory):
            await node.stop()


async def test_a_delete_written_before_its_author_was_made_admin_is_refused() -> None:
    alice, bob, mallory = await start_nodes(["alice", "bob", "mallory"])
    try:
        await mesh([alice, bob, mallory])
        room = await form_room(alice, [bob, mallory])
        said = await bob.send_message(room, "bob's point")
        await wait_until(mallory, lambda: _has(mallory, said.id))
        # Mallory signs a delete naming the room as she saw it (a plain member), then
        # is made admin, then sends it: her right is judged where she wrote it.
        seq = await _next_seq(mallory, room)
        early = Hostile(mallory).envelope(
            room,
            kind=KIND_DELETE,
            body=encode_delete([Target(said.id, bob.me, said.seq)]),
            seq=seq + 5,  # numbered past what her node writes meanwhile
            lamport=said.lamport + 1000,
            deps=await _heads(mallory, room),
        )
        await alice.groups.promote(room, mallory.me)

        async def admin_at(node: Node) -> bool:
            roles = {m.peer_id: m.role for m in await node.groups.members(room)}
            return roles.get(mallory.me) == "admin"

        for node in (bob, mallory):
            await wait_until(node, lambda n=node: admin_at(n))
        # Fill her seqs up to the forged one with real messages, then send it.
        for i in range(seq, seq + 5):
            await mallory.send_message(room, f"filler {i}")
        Hostile(mallory).send_envelopes(bob.me, early)
        fence = await mallory.send_text(bob.me, "fence")
        await wait_until(bob, lambda: _has(bob, fence.id))
        assert await _shown(bob, said.id) == ("bob's point", False)
        # An admin's delete naming her promotion does count (numbered after the forged
        # one, which bob holds).
        await mallory.store_write(lambda s: mallory.raise_seq_floor(s, room, seq + 5))
        await mallory.delete_message(said.id)

        async def gone() -> bool:
            m = await bob.get_message(said.id)
            return m is not None and is_tombstone(m)

        await wait_until(bob, gone)
    finally:
        for node in (alice, bob, mallory):
            await node.stop()


async def test_a_delete_with_an_id_not_bound_to_its_target_is_ignored() -> None:
    alice, bob, mallory = await start_nodes(["alice", "bob", "mallory"])
    try:
        await mesh([alice, bob, mallory])
        room = await form_room(alice, [bob, mallory])
        said = await bob.send_message(room, "kept")
        await wait_until(mallory, lambda: _has(mallory, said.id))
        # A delete of "her own" seq 40 under the id of bob's message.
        seq = await _next_seq(mallory, room)
        assert group_envelope_id(room, mallory.me, 40) != said.id
        forged = Hostile(mallory).envelope(
            room,
            kind=KIND_DELETE,
            body=encode_delete([Target(said.id, mallory.me, 1)]),
            seq=seq,
            lamport=said.lamport + 1,
            deps=await _heads(mallory, room),
        )
        Hostile(mallory).send_envelopes(bob.me, forged)
        fence = await mallory.send_text(bob.me, "fence")
        await wait_until(bob, lambda: _has(bob, fence.id))
        assert await _shown(bob, said.id) == ("kept", False)
    finally:
        for node in (alice, bob, mallory):
            await node.stop()
