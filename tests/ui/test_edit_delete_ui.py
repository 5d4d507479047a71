"""The app shows edits, deletes and disappearing-message timers as they arrive."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from p2pchat.node import Node
from tests.nodes import WAIT, make_node
from tests.ui.helpers import SIZE, app_for, befriend, items, open_chat_with, screen_text, until


@pytest.fixture
async def pair() -> AsyncIterator[tuple[Node, Node]]:
    alice, bob = make_node("alice"), make_node("bob")
    await alice.start()
    await bob.start()
    await befriend(alice, bob)
    yield alice, bob
    await alice.stop()
    await bob.stop()


async def test_an_edit_a_delete_and_a_timer_show_in_the_open_chat(
    pair: tuple[Node, Node],
) -> None:
    alice, bob = pair
    room = bob.direct_room(alice.me)
    app = app_for(alice)
    async with app.run_test(size=SIZE) as pilot:
        await open_chat_with(pilot, app, bob.me)
        said = await bob.send_text(alice.me, "meet at noon")
        await until(pilot, lambda: "meet at noon" in screen_text(app))
        await bob.edit_message(said.id, "meet at one")
        await until(pilot, lambda: "meet at one (edited)" in screen_text(app))
        assert [i.view.text for i in items(app)] == ["meet at one"]
        await bob.delete_message(said.id)
        await until(pilot, lambda: "message deleted" in screen_text(app))
        assert [i.view.text for i in items(app)] == ["message deleted"]
        await bob.set_disappearing(room, 3600)
        await until(pilot, lambda: "bob set messages to disappear after 1 hour" in screen_text(app))
        await bob.send_text(alice.me, "this one goes")
        await until(pilot, lambda: "this one goes ⏱" in screen_text(app))


async def _latest_text(node: Node, room: bytes) -> str:
    shown = await node.history(room)
    return node.display_text(shown[-1]) if shown else ""


async def test_a_person_edits_and_deletes_their_message_from_the_app(
    pair: tuple[Node, Node],
) -> None:
    alice, bob = pair
    room = bob.direct_room(alice.me)
    app = app_for(alice)
    async with app.run_test(size=SIZE) as pilot:
        await open_chat_with(pilot, app, bob.me)
        await pilot.press(*"see you at 5", "enter")
        await until(pilot, lambda: [i.view.text for i in items(app)] == ["see you at 5"])
        # Up selects the message; E puts its text in the composer; enter saves the edit.
        await pilot.press("up", "E")
        await until(pilot, lambda: "Editing your message" in screen_text(app))
        await pilot.press("backspace", "6", "enter")
        await until(pilot, lambda: "see you at 6 (edited)" in screen_text(app))
        async with asyncio.timeout(WAIT):  # Bob has the new text once the edit arrives
            while await _latest_text(bob, room) != "see you at 6":
                await pilot.pause(0.05)
        # delete asks first; its button deletes the message for everyone.
        await pilot.press("up", "delete")
        await until(pilot, lambda: "Delete message" in screen_text(app))
        await pilot.press("enter")
        await until(pilot, lambda: [i.view.text for i in items(app)] == ["message deleted"])
        async with asyncio.timeout(WAIT):
            while await _latest_text(bob, room) != "message deleted":
                await pilot.pause(0.05)
