"""A hostile member's invitation that can never apply brings in no one who counts.

An invitation that waits for changes we lack names its invitee, whose changes are then
held (groups._system_rows), so a join arriving first is not lost. A member can write one
that waits for ever (its deps name an id nobody holds): its invitee's changes are held
only within the per-author cap, and never apply.
"""

from __future__ import annotations

import pytest

from p2pchat.node import groups as groups_module
from p2pchat.node.inbox import Inbound
from p2pchat.store import now_ms
from tests.node.room_ops import History, system_envelope
from tests.nodes import make_node

OWNER, MALLORY, SYBIL = b"O" * 32, b"M" * 32, b"S" * 32
AUTHOR_CAP = 3


async def test_a_never_applying_invitation_lets_its_invitee_fill_only_its_own_cap(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(groups_module, "MAX_OPS_PER_AUTHOR", AUTHOR_CAP)
    node = make_node("holder-of-a-room")
    await node.start()
    try:
        room_ops = History(OWNER)
        room_ops.add(OWNER, "invite", peer=node.me)
        room_ops.add(node.me, "join")
        room_ops.add(OWNER, "invite", peer=MALLORY)
        room_ops.add(MALLORY, "join")
        never = b"\xee" * 16  # an id nobody will ever hold
        room_ops.add(MALLORY, "invite", peer=SYBIL, deps=[never])
        held = room_ops.resolve()
        assert SYBIL in held.named  # it waits: its invitee's join would be held
        sybil_ops = [room_ops.add(SYBIL, "join")]
        sybil_ops += [room_ops.add(SYBIL, "rename", name=f"owned {i}") for i in range(4)]
        items = [Inbound(MALLORY, system_envelope(room_ops.room, e)) for e in sybil_ops]
        rows = await node.core.read(
            lambda s: node.groups._system_rows(s, room_ops.room, held, items, now_ms())
        )
        assert len(rows) == AUTHOR_CAP  # the rest: "the room holds too many changes"
        after = room_ops.resolve()  # everything, the sybil's changes included
        assert after.state_of(SYBIL) is None  # never a member
        assert after.name == "team"  # and none of its changes took effect
        assert not {e.id for e in sybil_ops} & after.applied
    finally:
        await node.stop()
