"""A chat both muted and archived stays silent when a message brings it back: the
message that un-archives it must not notify (the sidebar, where the app looked for
the muted flag, does not list archived chats)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from p2pchat.node import MessageAdded, Node
from tests.node.groups_helpers import form_room
from tests.nodes import make_node, wait_for
from tests.ui.helpers import SIZE, app_for, befriend, open_chat_with, sidebar, until


@pytest.fixture
async def pair() -> AsyncIterator[tuple[Node, Node]]:
    alice, bob = make_node("alice"), make_node("bob")
    await alice.start()
    await bob.start()
    yield alice, bob
    await alice.stop()
    await bob.stop()


def _command(app: object, title: str) -> object:
    for name, _help, callback in app.palette_commands():  # type: ignore[attr-defined]
        if name == title:
            return callback
    raise AssertionError(f"no palette command {title!r}")


def _entry(app: object, name: str) -> object:
    entries = sidebar(app).entries.values()  # type: ignore[arg-type]
    return next((e for e in entries if e.name == name), None)


async def test_a_muted_archived_chat_does_not_notify_the_message_that_brings_it_back(
    pair: tuple[Node, Node],
) -> None:
    alice, bob = pair
    await befriend(alice, bob)
    events = alice.subscribe()
    await bob.send_text(alice.me, "first")
    await wait_for(events, lambda e: isinstance(e, MessageAdded) and e.message.body == b"first")
    room = await form_room(alice, [bob], "team")
    app = app_for(alice)
    notified: list[str] = []
    app.notify_message = lambda author, body: notified.append(body)  # type: ignore[method-assign]
    async with app.run_test(size=SIZE) as pilot:
        await open_chat_with(pilot, app, bob.me)
        _command(app, "Mute bob")()  # type: ignore[operator]
        await until(pilot, lambda: getattr(_entry(app, "bob"), "muted", False))
        _command(app, "Archive bob")()  # type: ignore[operator]
        await until(pilot, lambda: _entry(app, "bob") is None)
        await app.chat.open_room(room)
        await bob.send_text(alice.me, "while muted and archived")
        await until(pilot, lambda: getattr(_entry(app, "bob"), "unread", 0) == 1)  # back
        assert notified == []
        # Not muted, an archived chat does notify the message that brings it back.
        await open_chat_with(pilot, app, bob.me)
        _command(app, "Unmute bob")()  # type: ignore[operator]
        await until(pilot, lambda: not getattr(_entry(app, "bob"), "muted", True))
        _command(app, "Archive bob")()  # type: ignore[operator]
        await until(pilot, lambda: _entry(app, "bob") is None)
        await app.chat.open_room(room)
        await bob.send_text(alice.me, "archived only")
        await until(pilot, lambda: notified == ["archived only"])
    events.close()
