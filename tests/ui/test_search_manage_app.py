"""Search, formatting and chat management in the app (issue 14, items 1, 3 and 5), driven
like a person would against real nodes on loopback. Waits are on conditions (``until``,
``wait_for``), never bare sleeps."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from p2pchat.node import MessageAdded, Node
from p2pchat.ui.screens.search import SearchScreen
from p2pchat.ui.widgets.message_list import PAGE, MessageList
from tests.node.groups_helpers import form_room
from tests.nodes import make_node, wait_for
from tests.ui.helpers import (
    SIZE,
    app_for,
    befriend,
    items,
    open_chat_with,
    screen_text,
    sidebar,
    until,
)


@pytest.fixture
async def pair() -> AsyncIterator[tuple[Node, Node]]:
    alice, bob = make_node("alice"), make_node("bob")
    await alice.start()
    await bob.start()
    yield alice, bob
    await alice.stop()
    await bob.stop()


async def _bob_says(alice: Node, bob: Node, texts: list[str]) -> None:
    events = alice.subscribe()
    for text in texts:
        await bob.send_text(alice.me, text)
    last = texts[-1].encode()
    await wait_for(events, lambda e: isinstance(e, MessageAdded) and e.message.body == last)
    events.close()


def _command(app: object, title: str) -> object:
    for name, _help, callback in app.palette_commands():  # type: ignore[attr-defined]
        if name == title:
            return callback
    raise AssertionError(f"no palette command {title!r}")


async def test_ctrl_f_finds_an_old_message_and_jumps_to_it(pair: tuple[Node, Node]) -> None:
    alice, bob = pair
    await befriend(alice, bob)
    # The message lies more than two pages back: the jump must load older pages.
    fillers = [f"filler {i}" for i in range(2 * PAGE + 10)]
    await _bob_says(alice, bob, ["the secret word is pineapple", *fillers])
    app = app_for(alice)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("ctrl+f")
        await until(pilot, lambda: isinstance(app.screen, SearchScreen))
        await pilot.press(*"PINEAPP")
        screen = app.screen
        assert isinstance(screen, SearchScreen)
        await until(pilot, lambda: len(screen.hits) == 1)
        assert "1 message found" in screen_text(app)
        assert "with bob · bob" in screen_text(app)
        await pilot.press("enter")
        await until(
            pilot,
            lambda: (
                isinstance(app.focused, MessageList)
                and app.focused.selected is not None
                and app.focused.selected.message.body == b"the secret word is pineapple"
            ),
        )
        assert app.chat.room == alice.direct_room(bob.me)
        # Selected first, then scrolled into view and drawn on the next refresh.
        await until(pilot, lambda: "the secret word is pineapple" in screen_text(app))


async def test_search_input_errors_are_shown_not_raised(pair: tuple[Node, Node]) -> None:
    alice, _bob = pair
    app = app_for(alice)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("ctrl+f")
        await until(pilot, lambda: isinstance(app.screen, SearchScreen))
        await pilot.press(*('"AND NEAR(' + "x" * 200))
        await until(pilot, lambda: "too long" in screen_text(app))
        await pilot.press("escape")
        await until(pilot, lambda: not isinstance(app.screen, SearchScreen))


async def test_formatting_shows_styles_and_keeps_markup_literal(pair: tuple[Node, Node]) -> None:
    alice, bob = pair
    await befriend(alice, bob)
    await _bob_says(alice, bob, ["*bold* and `code` [bold]x[/] [@click=app.quit]q[/]"])
    app = app_for(alice)
    async with app.run_test(size=SIZE) as pilot:
        await open_chat_with(pilot, app, bob.me)
        await until(pilot, lambda: "[bold]x[/]" in screen_text(app))
        text = screen_text(app)
        assert "bold and code [bold]x[/] [@click=app.quit]q[/]" in text
        assert app.is_running  # the click action was never wired up


async def test_mute_archive_and_delete_from_the_palette(pair: tuple[Node, Node]) -> None:
    alice, bob = pair
    await befriend(alice, bob)
    await _bob_says(alice, bob, ["first"])
    room = await form_room(alice, [bob], "team")
    app = app_for(alice)
    notified: list[str] = []
    app.notify_message = lambda author, body: notified.append(body)  # type: ignore[method-assign]
    async with app.run_test(size=SIZE) as pilot:
        await open_chat_with(pilot, app, bob.me)
        _command(app, "Mute bob")()  # type: ignore[operator]
        await until(pilot, lambda: any(e.muted for e in sidebar(app).entries.values()))
        await app.chat.open_room(room)
        await _bob_says(alice, bob, ["while muted"])
        await until(pilot, lambda: _unread(app, "bob") == 1)  # still counted
        assert notified == []
        await open_chat_with(pilot, app, bob.me)
        _command(app, "Unmute bob")()  # type: ignore[operator]
        await until(pilot, lambda: not any(e.muted for e in sidebar(app).entries.values()))
        await app.chat.open_room(room)
        await _bob_says(alice, bob, ["unmuted now"])
        await until(pilot, lambda: notified == ["unmuted now"])

        _command(app, "Archive team")()  # type: ignore[operator]
        await until(pilot, lambda: "team" not in _names(app))
        await bob.send_message(room, "back again")
        await until(pilot, lambda: "team" in _names(app))

        await open_chat_with(pilot, app, bob.me)
        _command(app, "Delete bob from this computer")()  # type: ignore[operator]
        await until(pilot, lambda: "Delete this chat?" in screen_text(app))
        await pilot.press("enter")
        await until(pilot, lambda: not items(app))
        assert await alice.history(alice.direct_room(bob.me)) == []


def _unread(app: object, name: str) -> int:
    entries = sidebar(app).entries.values()  # type: ignore[arg-type]
    return next((e.unread for e in entries if e.name == name), -1)


def _names(app: object) -> list[str]:
    return [e.name for e in sidebar(app).entries.values()]  # type: ignore[arg-type]


def test_the_suggested_export_name_never_leaves_the_folder() -> None:
    from p2pchat.ui.chat_manage import _file_stem

    assert _file_stem("../../etc/passwd") == "p2pchat-etc-passwd"
    assert _file_stem("/\\:*?") == "p2pchat-chat"
    assert "/" not in _file_stem("a/b\x00c")
