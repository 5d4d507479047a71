"""A newcomer's first day (issue 13): each stumble, driven like a person would.

Alice uses the app; Bob and Carol are plain nodes the test drives, on loopback. Every
wait is on a condition or a node event under a timeout, never a bare sleep.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import textual.constants
from rich.color import Color as RichColor
from rich.color import ColorSystem
from textual import events
from textual.binding import Binding
from textual.color import Color
from textual.pilot import Pilot
from textual.widgets import Input, Static

from p2pchat.control.api import NodeApi
from p2pchat.node import Node, RoomChanged, RoomInvitation
from p2pchat.store import now_ms
from p2pchat.ui.app import ChatApp
from p2pchat.ui.screens.chat import ChatScreen
from p2pchat.ui.screens.confirm import ConfirmScreen
from p2pchat.ui.screens.help import HelpScreen
from p2pchat.ui.screens.prompt import PromptScreen
from p2pchat.ui.screens.settings import SettingsScreen
from p2pchat.ui.screens.verify import VerifyScreen
from p2pchat.ui.widgets.composer import COMPOSER_PLACEHOLDER, Composer
from p2pchat.ui.widgets.message_item import MESSAGE_BINDINGS
from p2pchat.ui.widgets.message_list import MessageList
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

BIG = (120, 36)


@pytest.fixture
async def pair() -> AsyncIterator[tuple[Node, Node]]:
    alice, bob = make_node("alice"), make_node("bob")
    await alice.start()
    await bob.start()
    await befriend(alice, bob)
    yield alice, bob
    await alice.stop()
    await bob.stop()


@pytest.fixture
async def trio() -> AsyncIterator[tuple[Node, Node, Node]]:
    nodes = [make_node(n) for n in ("alice", "bob", "carol")]
    for node in nodes:
        await node.start()
    alice, bob, carol = nodes
    await befriend(alice, bob)
    await befriend(alice, carol)
    await befriend(bob, carol)
    yield alice, bob, carol
    for node in nodes:
        await node.stop()


async def invited(host: Node, guest: Node, room: bytes) -> None:
    """``host`` invites ``guest`` to ``room``; returns once the guest's node has it."""
    events_ = guest.subscribe()
    await host.groups.invite(room, guest.me)
    await wait_for(events_, lambda e: isinstance(e, RoomInvitation) and e.room == room)
    events_.close()


# ---------------------------------------------------------------- 1. paste once


async def test_pasted_text_is_inserted_once(pair: tuple[Node, Node]) -> None:
    alice, bob = pair
    app = app_for(alice)
    async with app.run_test(size=SIZE) as pilot:
        await open_chat_with(pilot, app, bob.me)
        composer = app.chat.query_one(Composer)
        # As a terminal's bracketed paste arrives: to the app, which hands it to the focus.
        app.post_message(events.Paste("Meet at the café at 8"))
        await until(pilot, lambda: composer.text)
        await pilot.pause()
        assert composer.text == "Meet at the café at 8"


# ---------------------------------------------------------------- 2. removed: closed composer


async def test_removed_member_composer_says_why_and_reopens_on_rejoin(
    trio: tuple[Node, Node, Node],
) -> None:
    alice, bob, _ = trio
    room = await bob.groups.create_room("Book club")
    await invited(bob, alice, room)
    await alice.groups.join(room)
    app = app_for(alice)
    async with app.run_test(size=BIG) as pilot:
        await until(pilot, lambda: any(e.room_id == room for e in sidebar(app).entries.values()))
        await app.chat.open_room(room)
        composer = app.chat.query_one(Composer)
        await until(pilot, lambda: app.chat.my_state == "joined")
        assert not composer.disabled
        assert str(composer.placeholder) == COMPOSER_PLACEHOLDER

        await bob.groups.remove(room, alice.me)
        await until(pilot, lambda: app.chat.my_state == "removed")
        await until(pilot, lambda: composer.disabled)
        assert "You were removed" in str(composer.placeholder)
        assert "You were removed" in screen_text(app)

        # Invited again and joined: writing works again, the old reason is gone.
        await bob.groups.invite(room, alice.me)
        await until(pilot, lambda: app.chat.my_state == "invited")
        # (my_state is set a store read before the bar: wait for the bar, not the state)
        await until(pilot, lambda: "Join" in str(composer.placeholder))
        assert composer.disabled
        await pilot.press("ctrl+a")
        await until(pilot, lambda: app.chat.my_state == "joined")
        await until(pilot, lambda: not composer.disabled)
        assert str(composer.placeholder) == COMPOSER_PLACEHOLDER


async def test_leaving_closes_the_composer_with_a_reason(trio: tuple[Node, Node, Node]) -> None:
    alice, bob, _ = trio
    room = await bob.groups.create_room("Chess")
    await invited(bob, alice, room)
    await alice.groups.join(room)
    app = app_for(alice)
    async with app.run_test(size=BIG) as pilot:
        await until(pilot, lambda: any(e.room_id == room for e in sidebar(app).entries.values()))
        await app.chat.open_room(room)
        composer = app.chat.query_one(Composer)
        await until(pilot, lambda: app.chat.my_state == "joined")
        alice_events = alice.subscribe()
        await alice.groups.leave(room)
        await wait_for(alice_events, lambda e: isinstance(e, RoomChanged) and e.room == room)
        await until(pilot, lambda: composer.disabled)
        assert "You left" in str(composer.placeholder)


# ---------------------------------------------------------------- 4. last seen = when they left


async def test_last_seen_is_when_the_peer_went_offline() -> None:
    alice, bob = make_node("alice"), make_node("bob")
    await alice.start()
    await bob.start()
    try:
        await befriend(alice, bob)
        app = app_for(alice)
        async with app.run_test(size=SIZE) as pilot:
            await open_chat_with(pilot, app, bob.me)
            info = app.chat.peer_info
            assert info is not None
            assert info.online
            assert info.last_seen is not None
            connected_at = info.last_seen
            # Bob stays a while (the clock must move on), then quits.
            await until(pilot, lambda: now_ms() > connected_at + 50)
            leaving_at = now_ms()
            await bob.stop()
            await until(pilot, lambda: app.chat.peer_info and not app.chat.peer_info.online)
            info = app.chat.peer_info
            assert info is not None
            assert info.last_seen is not None
            assert info.last_seen >= leaving_at
            assert "last seen" in screen_text(app)
        # Kept in the store, not only shown.
        stored = next(p for p in await alice.list_peers() if p.peer_id == bob.me)
        assert stored.last_seen is not None
        assert stored.last_seen >= leaving_at
    finally:
        await alice.stop()


# ---------------------------------------------------------------- 5. invitation answered elsewhere


async def test_sidebar_drops_the_invitation_when_joined_elsewhere(
    trio: tuple[Node, Node, Node],
) -> None:
    alice, bob, _ = trio
    app = app_for(alice)
    async with app.run_test(size=BIG) as pilot:
        await until(pilot, lambda: sidebar(app).entries)
        room = await bob.groups.create_room("Book club")
        await bob.groups.invite(room, alice.me)
        await until(pilot, lambda: "you are invited" in screen_text(app))
        # `p2pchat room join` through this node's control socket makes the same call.
        await alice.groups.join(room)
        await until(pilot, lambda: room not in app.chat.invitations)
        await until(pilot, lambda: "you are invited" not in screen_text(app))


# ---------------------------------------------------------------- 7. verify needs a choice


async def test_f3_then_enter_does_not_mark_verified(pair: tuple[Node, Node]) -> None:
    alice, bob = pair
    app = app_for(alice)
    async with app.run_test(size=SIZE) as pilot:
        await open_chat_with(pilot, app, bob.me)
        await pilot.press("f3")
        await until(pilot, lambda: isinstance(app.screen, VerifyScreen))
        await pilot.pause()
        await pilot.press("enter")
        await until(pilot, lambda: not isinstance(app.screen, VerifyScreen))
        await app.chat.refresh_peer()
        assert app.chat.peer_info is not None
        assert not app.chat.peer_info.verified
        assert not (await alice.peer_info(bob.me)).verified


# ---------------------------------------------------------------- 9. help from the bindings


def all_bindings() -> list[Binding]:
    found = [*ChatApp.BINDINGS, *ChatScreen.BINDINGS, *MESSAGE_BINDINGS]
    return [b for b in found if isinstance(b, Binding)]


async def test_f1_opens_help_with_every_key_of_the_app(pair: tuple[Node, Node]) -> None:
    alice, bob = pair
    app = app_for(alice)
    async with app.run_test(size=BIG) as pilot:
        await open_chat_with(pilot, app, bob.me)
        await pilot.press("f1")
        await until(pilot, lambda: isinstance(app.screen, HelpScreen))
        await pilot.pause()
        shown = str(app.screen.query_one("#help-keys", Static).content)
        for binding in all_bindings():
            for key in binding.key.split(","):
                assert key in shown, key
            assert (binding.tooltip or binding.description) in shown
        for keys, what in Composer.HELP_KEYS:
            assert keys in shown
            assert what in shown
        assert "Keys of p2pchat" in screen_text(app)
        assert "Emoji" in screen_text(app)
        await pilot.press("f1")
        await until(pilot, lambda: not isinstance(app.screen, HelpScreen))


async def test_palette_keys_command_opens_our_help(pair: tuple[Node, Node]) -> None:
    alice, _ = pair
    app = app_for(alice)
    async with app.run_test(size=BIG) as pilot:
        await until(pilot, lambda: sidebar(app).entries)
        commands = {c.title: c for c in app.get_system_commands(app.screen)}
        assert "Every key of p2pchat" in commands["Keys"].help
        await pilot.press("ctrl+p", *"Keys")
        await until(pilot, lambda: "Every key of p2pchat" in screen_text(app))
        await pilot.press("enter")
        await until(pilot, lambda: isinstance(app.screen, HelpScreen))


# ---------------------------------------------------------------- 6. light theme


def wcag_ratio(a: Color, b: Color) -> float:
    """WCAG 2.1 contrast ratio, computed here independently of the app's code."""

    def lum(c: Color) -> float:
        def ch(v: int) -> float:
            x = v / 255
            return x / 12.92 if x <= 0.04045 else ((x + 0.055) / 1.055) ** 2.4

        return 0.2126 * ch(c.r) + 0.7152 * ch(c.g) + 0.0722 * ch(c.b)

    hi, lo = sorted((lum(a), lum(b)), reverse=True)
    return (hi + 0.05) / (lo + 0.05)


def faint_glyphs(
    app: ChatApp, system: ColorSystem = ColorSystem.TRUECOLOR
) -> list[tuple[str, float]]:
    """Text below 4.5:1 and lines below 3:1 on screen now (blocks are pictures: skipped),
    in the colours a terminal of colour system ``system`` shows (its palette's nearest)."""

    def shown(color: RichColor) -> Color:
        if system != ColorSystem.TRUECOLOR:
            color = color.downgrade(system)
        return Color(*color.get_truecolor())

    bad: list[tuple[str, float]] = []
    for strip in app.screen._compositor.render_strips():
        for text, style, _ in strip:
            if style is None or style.color is None or style.bgcolor is None or style.reverse:
                continue
            glyphs = [c for c in text if c != " " and not 0x2580 <= ord(c) < 0x25A0]
            if not glyphs:
                continue
            lines_only = all(0x2500 <= ord(c) < 0x2580 for c in glyphs)
            ratio = wcag_ratio(shown(style.color), shown(style.bgcolor))
            if ratio < (3.0 if lines_only else 4.5):
                bad.append((text, round(ratio, 2)))
    return bad


async def test_light_theme_is_readable_and_remembered(pair: tuple[Node, Node]) -> None:
    alice, bob = pair
    await bob.send_text(alice.me, "hello from bob")
    app = app_for(alice)
    async with app.run_test(size=BIG) as pilot:
        await open_chat_with(pilot, app, bob.me)
        await until(pilot, lambda: "hello from bob" in screen_text(app))
        app.theme = "textual-light"
        await pilot.pause()
        await until(pilot, lambda: not faint_glyphs(app), within=5)
        assert not faint_glyphs(app)
        # Remembered in the profile's store through the node's UI settings.
        async with asyncio.timeout(10):
            while await alice.ui_setting("theme") != "textual-light":
                await pilot.pause(0.02)
    again = app_for(alice)
    async with again.run_test(size=BIG) as pilot:
        await until(pilot, lambda: again.theme == "textual-light")
        await until(pilot, lambda: sidebar(again).entries)
        await pilot.pause()
        assert not faint_glyphs(again)


async def test_light_theme_is_readable_in_a_256_colour_terminal(
    pair: tuple[Node, Node], monkeypatch: pytest.MonkeyPatch
) -> None:
    # tmux and macOS Terminal show 256 colours: each colour is rounded to the palette's
    # nearest, which took the footer keys from 4.6:1 down to 3.8:1.
    monkeypatch.setattr(textual.constants, "COLOR_SYSTEM", "256")
    alice, bob = pair
    await bob.send_text(alice.me, "hello from bob")
    app = app_for(alice)
    assert app.console.color_system == "256"
    async with app.run_test(size=BIG) as pilot:
        await open_chat_with(pilot, app, bob.me)
        await until(pilot, lambda: "hello from bob" in screen_text(app))
        app.theme = "textual-light"
        await pilot.pause()
        await until(pilot, lambda: not faint_glyphs(app, ColorSystem.EIGHT_BIT), within=5)


# ---------------------------------------------------------------- 10. smaller ones


async def test_group_toast_names_the_group(trio: tuple[Node, Node, Node]) -> None:
    alice, bob, _ = trio
    room = await bob.groups.create_room("Book club")
    await invited(bob, alice, room)
    await alice.groups.join(room)
    app = app_for(alice)
    async with app.run_test(size=BIG) as pilot:
        await until(pilot, lambda: any(e.room_id == room for e in sidebar(app).entries.values()))
        await open_chat_with(pilot, app, bob.me)  # another chat is on screen

        async def bob_sees_alice() -> bool:
            members = await bob.groups.members(room)
            return any(m.peer_id == alice.me and m.state == "joined" for m in members)

        async with asyncio.timeout(15):
            while not await bob_sees_alice():
                await pilot.pause(0.05)
        await bob.send_message(room, "chapter two tonight", None)
        await until(pilot, lambda: any("chapter two" in n.message for n in app._notifications))
        toast = next(n for n in app._notifications if "chapter two" in n.message)
        assert toast.title == "bob in Book club"


async def test_escape_in_the_send_file_dialog_cancels_the_paste(
    pair: tuple[Node, Node], tmp_path: Path
) -> None:
    alice, bob = pair
    dropped = tmp_path / "photo.jpg"
    dropped.write_bytes(b"not really a photo")
    app = app_for(alice)
    async with app.run_test(size=SIZE) as pilot:
        await open_chat_with(pilot, app, bob.me)
        composer = app.chat.query_one(Composer)
        app.post_message(events.Paste(str(dropped)))
        await until(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        await pilot.press("escape")
        await until(pilot, lambda: not isinstance(app.screen, ConfirmScreen))
        await pilot.pause()
        assert composer.text == ""
        assert not await alice.history(alice.direct_room(bob.me), 10)


async def test_a_too_long_first_name_is_refused_with_a_reason(pair: tuple[Node, Node]) -> None:
    alice, _ = pair
    app = app_for(alice)
    long_name = "Maximilian " * 9 + "X"  # 100 characters
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: sidebar(app).entries)
        app.ask_name(first_run=True)
        await until(
            pilot, lambda: isinstance(app.screen, PromptScreen) and app.screen.query("#answer")
        )
        app.screen.query_one("#answer", Input).value = long_name
        await pilot.press("enter")
        await pilot.pause()
        assert isinstance(app.screen, PromptScreen)  # still asking, nothing was cut
        assert "At most 64 characters" in screen_text(app)
        assert alice.profile.display_name == "alice"
        app.screen.query_one("#answer", Input).value = "Maximilian"
        await pilot.press("enter")
        await until(pilot, lambda: alice.profile.display_name == "Maximilian")


async def test_a_too_long_name_in_settings_is_refused_with_a_reason(
    pair: tuple[Node, Node],
) -> None:
    alice, _ = pair
    app = app_for(alice)
    long_name = "Maximilian " * 9 + "X"  # 100 characters
    async with app.run_test(size=BIG) as pilot:
        await until(pilot, lambda: sidebar(app).entries)
        await pilot.press("f2")
        await until(pilot, lambda: isinstance(app.screen, SettingsScreen))
        field = app.screen.query_one("#display_name", Input)
        field.value = ""
        field.post_message(events.Paste(long_name))  # pasted, as a person would
        await until(pilot, lambda: field.value != "")
        assert field.value == long_name  # not cut at 64 without a word
        await pilot.press("enter")
        await pilot.pause()
        assert isinstance(app.screen, SettingsScreen)  # still open, nothing was cut
        assert "At most 64 characters, please (this has 100)" in screen_text(app)
        assert alice.profile.display_name == "alice"


async def test_settings_dialog_is_as_tall_as_its_content(pair: tuple[Node, Node]) -> None:
    alice, _ = pair
    app = app_for(alice)
    async with app.run_test(size=(100, 60)) as pilot:
        await until(pilot, lambda: sidebar(app).entries)
        await pilot.press("f2")
        await until(pilot, lambda: isinstance(app.screen, SettingsScreen))
        await pilot.pause()
        dialog = app.screen.query_one(".settings")
        assert dialog.region.height < 45, dialog.region
    small = app_for(alice)
    async with small.run_test(size=(80, 24)) as pilot:  # it fits, Save stays visible
        await until(pilot, lambda: sidebar(small).entries)
        await pilot.press("f2")
        await until(pilot, lambda: isinstance(small.screen, SettingsScreen))
        await pilot.pause()
        assert "Save" in screen_text(small)


async def test_footer_fits_80_columns(pair: tuple[Node, Node]) -> None:
    alice, bob = pair
    await bob.send_text(alice.me, "hello")
    room = await alice.groups.create_room("Hikers")
    app = app_for(alice)
    async with app.run_test(size=(80, 24)) as pilot:

        def footer_whole() -> bool:
            last = screen_text(app).splitlines()[-1]
            return "^q Quit" in last and "f1 Help" in last and "^p palette" in last

        await open_chat_with(pilot, app, bob.me)
        app.chat.show_warning("Bob's key changed")  # the fullest footer: a warning too
        await until(pilot, footer_whole, within=5)
        last = items(app)[-1]
        app.chat.query_one(MessageList).select(last)  # a selected message adds its keys
        await until(pilot, footer_whole, within=5)
        await app.chat.open_room(room)
        await until(pilot, footer_whole, within=5)


async def palette(pilot: Pilot[int], title: str) -> None:
    """Run the palette command whose title is ``title``, as typed by a person."""
    await pilot.press("ctrl+p")
    await pilot.press(*title)
    await pilot.pause(0.3)
    await pilot.press("enter")


async def test_removing_a_member_asks_first_and_says_who(trio: tuple[Node, Node, Node]) -> None:
    alice, bob, _ = trio
    room = await alice.groups.create_room("Hikers")
    await invited(alice, bob, room)
    await bob.groups.join(room)
    app = app_for(alice)

    async def bob_state() -> str:
        members = await alice.groups.members(room)
        return next((m.state for m in members if m.peer_id == bob.me), "")

    async with app.run_test(size=BIG) as pilot:
        await until(pilot, lambda: any(e.room_id == room for e in sidebar(app).entries.values()))
        await app.chat.open_room(room)
        await until(
            pilot,
            lambda: any(m.peer_id == bob.me and m.state == "joined" for m in app.chat.members),
        )
        await palette(pilot, "Remove bob from Hikers")
        await until(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        await pilot.pause()
        assert "Remove bob from Hikers?" in screen_text(app)
        await pilot.press("escape")  # changed their mind
        await until(pilot, lambda: not isinstance(app.screen, ConfirmScreen))
        assert await bob_state() == "joined"

        await palette(pilot, "Remove bob from Hikers")
        await until(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        await pilot.pause()
        await pilot.press("enter")
        await until(
            pilot,
            lambda: any("bob was removed from Hikers" in n.message for n in app._notifications),
        )
        assert await bob_state() == "removed"


async def test_time_stays_near_the_text_on_a_wide_terminal(pair: tuple[Node, Node]) -> None:
    alice, bob = pair
    await bob.send_text(alice.me, "hello from bob")
    app = app_for(alice)
    async with app.run_test(size=(200, 24)) as pilot:
        await open_chat_with(pilot, app, bob.me)
        await until(pilot, lambda: "hello from bob" in screen_text(app))
        item = items(app)[-1]
        assert max(len(line) for line in app.chat.query_one(MessageList).lines_of(item)) <= 110
        header = next(line for line in screen_text(app).splitlines() if "│ bob " in line)
        name_at = header.index("│ bob ") + 2
        time_at = len(header.rstrip()) - 5  # HH:MM at the right of the name line
        assert time_at - name_at < 110, header


# ---------------------------------------------------------------- 3. names kept current


async def test_a_rename_from_the_cli_shows_in_the_top_bar(pair: tuple[Node, Node]) -> None:
    alice, _ = pair
    app = app_for(alice)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: sidebar(app).entries)
        topbar = app.chat.query_one("#topbar", Static)
        assert "alice" in str(topbar.render())
        # `p2pchat name "Alice L"` while the app is open: the control API, same node.
        await NodeApi(alice).call("name", {"name": "Alice L"})
        await until(pilot, lambda: "Alice L" in str(topbar.render()), within=5)
