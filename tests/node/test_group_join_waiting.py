"""A join whose invitation waits for changes we lack is held, not dropped.

In a room being formed, an invitation names the joins its author had seen. A member that
lacks one of those joins holds the invitation but cannot apply it yet; the invitee's own
join, arriving meanwhile, used to be dropped as "its author is unknown to the room", and
came back only with a later sync round (one round per level of such waiting: in a
50-member room, a member was seen still without everyone after 80 s).
"""

from __future__ import annotations

from p2pchat.node.envelopes import split_ids
from p2pchat.node.inbox import Inbound
from p2pchat.store import now_ms
from tests.node.room_ops import History, system_envelope
from tests.nodes import make_node

OWNER, V, W = b"O" * 32, b"V" * 32, b"W" * 32


async def test_a_join_is_held_while_its_invitation_waits_for_a_join_we_lack() -> None:
    node = make_node("x-holds-joins")
    await node.start()
    try:
        room_ops = History(OWNER)
        room_ops.add(OWNER, "invite", peer=node.me)
        room_ops.add(node.me, "join")
        room_ops.add(OWNER, "invite", peer=V)
        join_v = room_ops.add(V, "join")
        invite_w = room_ops.add(OWNER, "invite", peer=W)
        assert invite_w.deps == (join_v.id,)  # the owner had seen V join
        join_w = room_ops.add(W, "join")
        # We hold everything but V's join: W's invitation waits for it.
        held = room_ops.resolve([e for e in room_ops.entries if e is not join_v])
        assert held.state_of(W) is None
        env = system_envelope(room_ops.room, join_w)
        rows = await node.core.read(
            lambda s: node.groups._system_rows(
                s, room_ops.room, held, [Inbound(OWNER, env)], now_ms()
            )
        )
        assert [r.author for r in rows] == [W]
        assert split_ids(rows[0].deps or b"") == join_w.deps
        # Once V's join arrives, what is held resolves at once: W is a member.
        assert room_ops.resolve().state_of(W) == "joined"
    finally:
        await node.stop()


def test_a_refused_invitation_names_nobody() -> None:
    # A member who left invites someone: refused, so that invitee's changes stay
    # unknown to the room (a hostile member cannot bring in authors through it).
    room_ops = History(OWNER)
    room_ops.add(OWNER, "invite", peer=V)
    room_ops.add(V, "join")
    room_ops.add(V, "leave")
    refused = room_ops.add(V, "invite", peer=W)
    m = room_ops.resolve()
    assert refused.id in m.refused
    assert W not in m.named
    assert V in m.named  # the owner's invitation took effect
