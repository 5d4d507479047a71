"""Node API the app relies on: read marker, replying to requests, paging, typing, settings."""

from __future__ import annotations

import pytest

from p2pchat.node import MessageAdded, MessageStatus, NodeError, TypingChanged
from tests.node.groups_helpers import befriend, form_room, mesh, start_nodes, wait_texts
from tests.nodes import WAIT, connected_pair, stop_all, wait_for


async def test_read_marker_moves_only_as_far_as_what_was_shown() -> None:
    alice, bob = await start_nodes(["alice", "bob"])
    try:
        await befriend(alice, bob)
        events = bob.subscribe()
        sent = [await alice.send_text(bob.me, f"m{i}") for i in range(5)]
        await wait_for(
            events, lambda e: isinstance(e, MessageAdded) and e.message.id == sent[-1].id
        )
        room = bob.direct_room(alice.me)
        assert await bob.mark_read(room, [sent[0].id, sent[1].id]) == 2
        assert (await bob.list_rooms())[0].unread == 3
        assert await alice.wait_for_status(sent[1].id, MessageStatus.READ, WAIT)
        assert (await alice.get_message(sent[2].id)).status == MessageStatus.DELIVERED  # type: ignore[union-attr]
    finally:
        await stop_all([alice, bob])


async def test_replying_to_a_request_accepts_it_and_acknowledges_what_waited() -> None:
    alice, bob = await start_nodes(["alice", "bob"])
    try:
        await connected_pair(alice, bob)
        events = bob.subscribe()
        first = await alice.send_text(bob.me, "hello stranger")
        await wait_for(events, lambda e: isinstance(e, MessageAdded) and e.message.id == first.id)
        await bob.send_text(alice.me, "hi back")  # bob never pressed "accept"
        assert await alice.wait_for_status(first.id, MessageStatus.DELIVERED, WAIT)
    finally:
        await stop_all([alice, bob])


async def test_pages_are_full_even_with_reactions_in_between() -> None:
    alice, bob = await start_nodes(["alice", "bob"])
    try:
        await befriend(alice, bob)
        room = alice.direct_room(bob.me)
        for i in range(30):
            msg = await alice.send_text(bob.me, f"m{i}")
            await alice.react(msg.id, "👍")
        latest = await alice.history(room, limit=10)
        assert [m.body.decode() for m in latest] == [f"m{i}" for i in range(20, 30)]
        older = await alice.older_messages(room, latest[0], limit=10)
        assert [m.body.decode() for m in older] == [f"m{i}" for i in range(10, 20)]
    finally:
        await stop_all([alice, bob])


async def test_typing_in_a_group_room_reaches_members() -> None:
    alice, bob, carol = await start_nodes(["alice", "bob", "carol"])
    try:
        await mesh([alice, bob, carol])
        room = await form_room(alice, [bob, carol])
        events = carol.subscribe()
        await bob.set_typing_room(room, True)
        ev = await wait_for(events, lambda e: isinstance(e, TypingChanged))
        assert (ev.room, ev.peer_id, ev.typing) == (room, bob.me, True)
        await alice.send_message(room, "noted")
        await wait_texts(carol, room, 1)
    finally:
        await stop_all([alice, bob, carol])


async def test_ui_settings_round_trip_and_validate_names() -> None:
    (alice,) = await start_nodes(["alice"])
    try:
        assert await alice.ui_setting("bell") is None
        await alice.set_ui_setting("bell", "on")
        assert await alice.ui_setting("bell") == "on"
        with pytest.raises(NodeError, match="bad setting name"):
            await alice.set_ui_setting("../etc", "x")
    finally:
        await alice.stop()
