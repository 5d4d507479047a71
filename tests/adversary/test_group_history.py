"""A member flooding a room with changes it has no right to make cannot hide its history."""

from __future__ import annotations

from p2pchat.node.envelopes import split_ids
from p2pchat.node.rooms import KIND_SYSTEM, MAX_OPS_PER_AUTHOR, SystemOp, encode_system
from p2pchat.wire import Envelope
from tests.adversary.hostile import Hostile
from tests.node.groups_helpers import form_room, mesh, start_nodes, wait_texts, wait_until


async def test_a_run_of_refused_changes_does_not_end_the_history_early() -> None:
    alice, mallory = await start_nodes(["alice", "mallory"])
    try:
        await mesh([alice, mallory])
        room = await form_room(alice, [mallory])
        for i in range(5):
            await alice.send_message(room, f"before {i}")
        last = await mallory.send_message(room, "hi")
        await wait_texts(alice, room, 6)
        stored = await mallory.get_message(last.id)
        assert stored is not None
        assert stored.deps is not None
        attacker = Hostile(mallory)
        floods: list[Envelope] = [
            attacker.envelope(
                room,
                kind=KIND_SYSTEM,
                body=encode_system(SystemOp("promote", peer=mallory.me)),
                seq=last.seq + 1 + i,
                lamport=last.lamport + 1 + i,
                deps=split_ids(stored.deps),
            )
            for i in range(30)
        ]
        attacker.send_envelopes(alice.me, *floods)
        await alice.send_message(room, "after")  # a fence: sent after the flood is stored
        await wait_texts(alice, room, 7)
        # Page through the whole room as the app does when scrolling up.
        page = await alice.history(room, limit=10)
        seen = list(page)
        while page:
            page = await alice.older_messages(room, page[0], limit=10)
            seen = page + seen
        texts = [m.body.decode() for m in seen if m.kind == "text"]
        assert sorted(texts) == sorted([*(f"before {i}" for i in range(5)), "hi", "after"])
        assert not [m for m in seen if "admin" in alice.display_text(m)]
    finally:
        for node in (alice, mallory):
            await node.stop()


async def test_a_member_cannot_flood_the_room_with_changes() -> None:
    alice, mallory = await start_nodes(["alice", "mallory"])
    try:
        await mesh([alice, mallory])
        room = await form_room(alice, [mallory])
        last = await mallory.send_message(room, "hi")
        await wait_texts(alice, room, 1)
        stored = await mallory.get_message(last.id)
        assert stored is not None
        assert stored.deps is not None
        attacker = Hostile(mallory)
        flood = [
            attacker.envelope(
                room,
                kind=KIND_SYSTEM,
                body=encode_system(SystemOp("rename", name=f"spam {i}")),
                seq=last.seq + 1 + i,
                deps=split_ids(stored.deps),
            )
            for i in range(MAX_OPS_PER_AUTHOR + 100)
        ]
        for start in range(0, len(flood), 64):
            attacker.send_envelopes(alice.me, *flood[start : start + 64])
        await alice.send_message(room, "after")
        await mallory.send_text(alice.me, "fence")  # direct: handled after the flood
        await wait_texts(alice, room, 2)

        def by_mallory(store):  # type: ignore[no-untyped-def]
            return [m for m in store.messages_of_kind(room, KIND_SYSTEM) if m.author == mallory.me]

        async def flood_handled() -> bool:
            return await alice._read(by_mallory) and alice.peer_name(mallory.me) != ""

        await wait_until(alice, flood_handled)
        held = await alice._read(by_mallory)
        assert len(held) <= MAX_OPS_PER_AUTHOR
        assert (await alice.groups.members(room))[0].name  # the room still answers
    finally:
        for node in (alice, mallory):
            await node.stop()
