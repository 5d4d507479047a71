"""The app shows edits, deletes and disappearing-message timers as they arrive."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from p2pchat.node import Node
from tests.nodes import make_node
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
