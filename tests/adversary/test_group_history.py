"""A member flooding a room with changes it has no right to make cannot hide its history."""

from __future__ import annotations

from p2pchat.node.envelopes import split_ids
from p2pchat.node.rooms import KIND_SYSTEM, SystemOp, encode_system
from p2pchat.wire import Envelope
from tests.adversary.hostile import Hostile
from tests.node.groups_helpers import form_room, mesh, start_nodes, wait_texts


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
