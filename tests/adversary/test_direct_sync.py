"""Attacks on anti-entropy: a contact's ``sync`` heads for our direct room, and a
member's heads for a group room (issue 10).

A contact tells us what it holds of our room, and we believe it enough to never reuse a
seq it holds of ours (our store may have lost its tail in a crash). The contact below
lies, with a valid signature on everything, to make us do or hold too much, or to break
our sending.
"""

from __future__ import annotations

import asyncio
import os

import pytest

from p2pchat.node import MessageStatus, Node
from p2pchat.node import groups as groups_module
from p2pchat.node.direct_sync import MAX_LOST_TAIL
from p2pchat.transport import Connection
from p2pchat.wire import MAX_HEADS, MAX_INT, Frame, MessageFrame, SyncHeads
from tests.adversary.test_group_takeover import settle
from tests.node.groups_helpers import befriend, form_room, mesh, start_nodes
from tests.nodes import WAIT, connected_pair


def _answers(node: Node, monkeypatch: pytest.MonkeyPatch) -> asyncio.Event:
    """An event set when ``node`` (the attacker) receives heads for a direct room."""
    got = asyncio.Event()
    original = node.direct_sync.on_sync_heads

    def spy(peer: bytes, frame: SyncHeads) -> None:
        got.set()
        original(peer, frame)

    monkeypatch.setattr(node.direct_sync, "on_sync_heads", spy)
    return got


@pytest.mark.parametrize("claim", [MAX_INT, MAX_INT - 1, 2**62])
async def test_a_contact_claiming_to_hold_our_seq_near_the_limit_cannot_stop_us_writing(
    claim: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    alice, mallory = nodes = await start_nodes(["alice", "mallory"], sync_interval=600.0)
    try:
        await befriend(alice, mallory)
        first = await alice.send_text(mallory.me, "before")
        assert await alice.wait_for_status(first.id, MessageStatus.DELIVERED, WAIT)
        answered = _answers(mallory, monkeypatch)
        room = alice.direct_room(mallory.me)
        mallory.links.write(alice.me, SyncHeads(room=room, heads=((alice.me, claim),)))
        # Alice, told that mallory holds more of hers than she does, answers with her
        # heads: by then the claim was weighed.
        async with asyncio.timeout(WAIT):
            await answered.wait()
        after = [await alice.send_text(mallory.me, f"after {i}") for i in range(3)]
        for message in after:
            assert await alice.wait_for_status(message.id, MessageStatus.DELIVERED, WAIT)
        assert max(m.seq for m in after) <= first.seq + MAX_LOST_TAIL + len(after)
    finally:
        for node in nodes:
            await node.stop()


async def test_a_stranger_sending_heads_is_sent_nothing_and_moves_nothing() -> None:
    """Only contacts take part in direct anti-entropy: a stranger claiming to hold
    nothing gets no push (not even its own messages back), and its claim on our seq
    changes nothing."""
    alice, mallory = nodes = await start_nodes(["alice", "mallory"], sync_interval=600.0)
    try:
        await connected_pair(mallory, alice)
        await mallory.send_text(alice.me, "hello")  # a contact request, held by alice
        room = alice.direct_room(mallory.me)
        mallory.links.write(alice.me, SyncHeads(room=room, heads=((alice.me, 1000),)))
        returned: list[bytes] = []
        original = mallory.links._on_frame

        async def spy(conn: Connection, frame: Frame) -> None:
            if isinstance(frame, MessageFrame) and frame.env.author == mallory.me:
                returned.append(frame.env.id)
            await original(conn, frame)

        mallory.links._on_frame = spy  # type: ignore[method-assign]
        await settle(mallory, alice)  # the heads were handled: no push was started
        assert not alice.direct_sync._pushes.running
        await alice.accept(mallory.me)
        first = await alice.send_text(mallory.me, "hi, who are you?")
        assert await alice.wait_for_status(first.id, MessageStatus.DELIVERED, WAIT)
        assert first.seq == 1
        assert returned == []
    finally:
        for node in nodes:
            await node.stop()


async def test_a_contact_claiming_again_and_again_to_hold_nothing_gets_one_push_at_a_time() -> None:
    """Each claim to hold nothing asks for the whole history; a flood of them costs one
    push after the one running, never one per frame."""
    alice, mallory = nodes = await start_nodes(["alice", "mallory"], sync_interval=600.0)
    try:
        await befriend(alice, mallory)
        sent = [await alice.send_text(mallory.me, f"message {i}") for i in range(200)]
        assert await alice.wait_for_status(sent[-1].id, MessageStatus.DELIVERED, WAIT)
        room = alice.direct_room(mallory.me)
        pushes = alice.direct_sync._pushes
        peak = 0
        for _ in range(300):
            mallory.links.write(alice.me, SyncHeads(room=room, heads=()))
            peak = max(peak, len(pushes.running))
            await asyncio.sleep(0)
        async with asyncio.timeout(WAIT):
            while pushes.running:
                peak = max(peak, len(pushes.running))
                await asyncio.sleep(0.01)
        assert peak == 1
        assert alice.links.is_online(mallory.me)
    finally:
        for node in nodes:
            await node.stop()


async def test_a_member_flooding_partial_heads_cannot_grow_the_waiting_summary(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Full ``sync`` frames (256 heads each) read as parts of one summary and are merged
    while they wait for the push; a member naming fresh random authors in each must not
    make that summary, and the work of merging into it, grow without bound."""
    peak = 0
    merged = groups_module._Heads.merged

    def measured(self: groups_module._Heads, newer: groups_module._Heads) -> groups_module._Heads:
        nonlocal peak
        out = merged(self, newer)
        peak = max(peak, len(out.heads))
        return out

    monkeypatch.setattr(groups_module._Heads, "merged", measured)  # before nodes use it
    alice, mallory = nodes = await start_nodes(["alice", "mallory"], sync_interval=600.0)
    try:
        await mesh(nodes)
        room = await form_room(alice, [mallory])
        frames = [
            SyncHeads(room=room, heads=tuple(sorted((os.urandom(32), 1) for _ in range(MAX_HEADS))))
            for _ in range(600)
        ]
        for frame in frames:
            mallory.links.write(alice.me, frame)
        await settle(mallory, alice)
        assert MAX_HEADS < peak <= groups_module.MAX_SUMMARY_AUTHORS  # merged, bounded
    finally:
        for node in nodes:
            await node.stop()
