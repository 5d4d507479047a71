"""The app driven like a person would, against two real nodes on loopback.

Alice uses the app; Bob is a plain node the test drives. Every wait is on a condition
or a node event under a timeout (``until``, ``wait_for``), never a bare sleep.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from p2pchat.node import MessageAdded, MessageStatus, Node, SecurityWarning
from p2pchat.ui.screens.emoji_picker import EmojiPicker
from p2pchat.ui.screens.settings import SettingsScreen
from p2pchat.ui.screens.verify import VerifyScreen
from p2pchat.ui.widgets.composer import Composer
from p2pchat.ui.widgets.message_list import MessageList
from p2pchat.ui.widgets.message_rows import MarkerRow
from tests.nodes import connected_pair, make_node, wait_for
from tests.ui.helpers import (
    SIZE,
    app_for,
    befriend,
    file_state,
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


async def test_send_receive_and_ticks_turn_to_read(pair: tuple[Node, Node]) -> None:
    alice, bob = pair
    await befriend(alice, bob)
    bob_events = bob.subscribe()
    app = app_for(alice)
    async with app.run_test(size=SIZE) as pilot:
        await open_chat_with(pilot, app, bob.me)
        assert isinstance(app.focused, Composer)
        await pilot.press(*"hello bob")
        await pilot.press("enter")
        got = await wait_for(bob_events, lambda e: isinstance(e, MessageAdded) and e.incoming)
        assert isinstance(got, MessageAdded)
        assert got.message.body == b"hello bob"
        await until(pilot, lambda: items(app) and items(app)[-1].message.status >= 2)
        assert "✓✓" in screen_text(app)
        await bob.mark_read(bob.direct_room(alice.me), [got.message.id])
        await until(pilot, lambda: items(app)[-1].message.status == MessageStatus.READ)
        assert "✔✔" in screen_text(app)

        await bob.send_text(alice.me, "hi alice")
        await until(pilot, lambda: "hi alice" in screen_text(app))
        assert [i.message.body for i in items(app)] == [b"hello bob", b"hi alice"]


async def test_read_receipts_only_for_messages_shown(pair: tuple[Node, Node]) -> None:
    alice, bob = pair
    await befriend(alice, bob)
    app = app_for(alice)
    async with app.run_test(size=SIZE) as pilot:
        sent = [await bob.send_text(alice.me, f"unseen {i}") for i in range(3)]
        # Nothing open: the sidebar counts them, nobody reads them.
        await until(pilot, lambda: any(e.unread == 3 for e in sidebar(app).entries.values()))
        assert " 3 " in screen_text(app)
        assert not await bob.wait_for_status(sent[-1].id, MessageStatus.READ, 0.5)
        await open_chat_with(pilot, app, bob.me)
        for msg in sent:
            assert await bob.wait_for_status(msg.id, MessageStatus.READ, 10)
        assert any(isinstance(r, MarkerRow) for r in app.chat.query_one(MessageList).rows)
        await until(pilot, lambda: all(e.unread == 0 for e in sidebar(app).entries.values()))


async def test_messages_scrolled_out_of_view_are_not_read(pair: tuple[Node, Node]) -> None:
    alice, bob = pair
    await befriend(alice, bob)
    app = app_for(alice)
    async with app.run_test(size=(80, 24)) as pilot:
        for i in range(30):
            await bob.send_text(alice.me, f"earlier {i}")
        await open_chat_with(pilot, app, bob.me)
        await until(pilot, lambda: len(items(app)) == 30)
        listing = app.chat.query_one(MessageList)
        # The person scrolls up to older messages while new ones arrive below the view.
        listing.release_anchor()
        listing.scroll_home(animate=False, immediate=True)
        await pilot.pause()
        late = [await bob.send_text(alice.me, f"late {i}") for i in range(3)]
        await until(pilot, lambda: len(items(app)) == 33)
        assert not await bob.wait_for_status(late[-1].id, MessageStatus.READ, 0.5)
        await until(pilot, lambda: "↓ 3 new messages below" in screen_text(app))
        await pilot.press("ctrl+g")  # jump to the newest
        assert await bob.wait_for_status(late[-1].id, MessageStatus.READ, 10)
        await until(pilot, lambda: not app.chat.query_one("#below-bar").display)


async def test_unread_count_and_notification_for_other_rooms(pair: tuple[Node, Node]) -> None:
    alice, bob = pair
    await befriend(alice, bob)
    app = app_for(alice)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: sidebar(app).entries)
        await bob.send_text(alice.me, "are you there?")
        await until(pilot, lambda: any(e.unread == 1 for e in sidebar(app).entries.values()))
        await until(pilot, lambda: any("are you there?" in n.message for n in app._notifications))


async def test_contact_request_accept(pair: tuple[Node, Node]) -> None:
    alice, bob = pair
    await connected_pair(alice, bob)
    app = app_for(alice)
    async with app.run_test(size=SIZE) as pilot:
        hello = await bob.send_text(alice.me, "hello stranger")
        await until(pilot, lambda: "CONTACT REQUESTS" in screen_text(app))
        await open_chat_with(pilot, app, bob.me)
        await until(pilot, lambda: app.chat.query_one("#request-bar").display)
        assert "wants to chat" in screen_text(app)
        assert not await bob.wait_for_status(hello.id, MessageStatus.DELIVERED, 0.3)
        assert "^a Accept" in screen_text(app)
        await pilot.press("ctrl+a")
        assert await bob.wait_for_status(hello.id, MessageStatus.DELIVERED, 10)
        # Shown on screen all along, but read receipts go only to accepted contacts.
        assert await bob.wait_for_status(hello.id, MessageStatus.READ, 10)
        await until(pilot, lambda: not app.chat.query_one("#request-bar").display)
        assert (await alice.peer_info(bob.me)).state == "contact"  # type: ignore[union-attr]


async def test_block_from_request(pair: tuple[Node, Node]) -> None:
    alice, bob = pair
    await connected_pair(alice, bob)
    app = app_for(alice)
    async with app.run_test(size=SIZE) as pilot:
        await bob.send_text(alice.me, "spam")
        await open_chat_with(pilot, app, bob.me)
        await until(pilot, lambda: app.chat.query_one("#request-bar").display)
        await pilot.click("#block")  # the mouse works too
        await until(pilot, lambda: app.chat.peer_info and app.chat.peer_info.state == "blocked")
        assert app.chat.query_one(Composer).disabled


async def test_emoji_completion_and_shortcodes(pair: tuple[Node, Node]) -> None:
    alice, bob = pair
    await befriend(alice, bob)
    bob_events = bob.subscribe()
    app = app_for(alice)
    async with app.run_test(size=SIZE) as pilot:
        await open_chat_with(pilot, app, bob.me)
        composer = app.chat.query_one(Composer)
        await pilot.press(*"hi :smi")
        await until(pilot, lambda: app.chat.query_one("#completions").display)
        assert ":smile:" in screen_text(app)
        await pilot.press("tab")
        assert composer.text == "hi 😄"
        assert not app.chat.query_one("#completions").display
        await pilot.press(*" :tada:")
        assert composer.text == "hi 😄 🎉"
        await pilot.press("ctrl+j")
        composer.insert("👨‍👩‍👧 🇫🇷 👍🏽")
        await pilot.press("enter")
        got = await wait_for(bob_events, lambda e: isinstance(e, MessageAdded) and e.incoming)
        assert isinstance(got, MessageAdded)
        assert got.message.body.decode() == "hi 😄 🎉\n👨‍👩‍👧 🇫🇷 👍🏽"
        await until(pilot, lambda: "👨‍👩‍👧" in screen_text(app))


async def test_emoji_picker_inserts(pair: tuple[Node, Node]) -> None:
    alice, bob = pair
    await befriend(alice, bob)
    app = app_for(alice)
    async with app.run_test(size=SIZE) as pilot:
        await open_chat_with(pilot, app, bob.me)
        await pilot.press("ctrl+e")
        await until(pilot, lambda: isinstance(app.screen, EmojiPicker))
        await pilot.press(*"rocket", "enter")
        await until(pilot, lambda: app.chat.query_one(Composer).text == "🚀")


async def test_reply_quotes_the_original(pair: tuple[Node, Node]) -> None:
    alice, bob = pair
    await befriend(alice, bob)
    bob_events = bob.subscribe()
    app = app_for(alice)
    async with app.run_test(size=SIZE) as pilot:
        original = await bob.send_text(alice.me, "lunch at noon?")
        await open_chat_with(pilot, app, bob.me)
        await until(pilot, lambda: len(items(app)) == 1)
        await pilot.press("up")  # empty composer: select the last message
        listing = app.chat.query_one(MessageList)
        assert app.focused is listing
        assert listing.selected is items(app)[-1]
        await pilot.press("r")
        assert "Replying to" in screen_text(app)
        await pilot.press(*"yes!", "enter")
        got = await wait_for(bob_events, lambda e: isinstance(e, MessageAdded) and e.incoming)
        assert isinstance(got, MessageAdded)
        assert got.message.reply_to == original.id
        await until(pilot, lambda: len(items(app)) == 2)
        assert items(app)[-1].view.quote == ("bob", "lunch at noon?")
        assert "▎ bob: lunch at noon?" in screen_text(app)


async def test_reactions_shown_with_counts(pair: tuple[Node, Node]) -> None:
    alice, bob = pair
    await befriend(alice, bob)
    app = app_for(alice)
    async with app.run_test(size=SIZE) as pilot:
        msg = await bob.send_text(alice.me, "good news")
        await open_chat_with(pilot, app, bob.me)
        await until(pilot, lambda: len(items(app)) == 1)
        await bob.react(msg.id, "👍")
        await until(pilot, lambda: items(app)[0].view.reactions)
        await pilot.press("up", "1")  # quick reaction 1 is 👍 too
        await until(pilot, lambda: len(items(app)[0].view.reactions) == 2)
        assert "👍 2" in screen_text(app)


async def test_hostile_text_is_shown_literally(
    pair: tuple[Node, Node], monkeypatch: pytest.MonkeyPatch
) -> None:
    alice, bob = pair
    await befriend(alice, bob)
    hostile = "[bold]x[/] [@click=app.quit] \x1b[2J"
    # A peer's name can reach us with any characters; the UI must show it literally.
    real_name = alice.peer_name
    monkeypatch.setattr(alice, "peer_name", lambda p: hostile if p == bob.me else real_name(p))
    app = app_for(alice)
    async with app.run_test(size=SIZE) as pilot:
        await bob.send_text(alice.me, hostile)
        await open_chat_with(pilot, app, bob.me)
        await until(pilot, lambda: len(items(app)) == 1)
        await pilot.pause()
        text = screen_text(app)
        assert "[bold]x[/] [@click=app.quit] ␛[2J" in text  # the message
        assert text.count("[@click=app.quit]") >= 3  # sidebar, header, message
        assert "\x1b" not in text
        # Clicking the would-be link does nothing: the app is still running.
        await pilot.click(MessageList, offset=(5, 3))
        await pilot.pause()
        assert app.is_running
        await pilot.press("ctrl+p")
        await pilot.press(*"Open chat")
        await pilot.pause(0.3)
        assert app.is_running


async def test_typing_indicator_in_header(pair: tuple[Node, Node]) -> None:
    alice, bob = pair
    await befriend(alice, bob)
    bob_events = bob.subscribe()
    app = app_for(alice)
    async with app.run_test(size=SIZE) as pilot:
        await open_chat_with(pilot, app, bob.me)
        await bob.set_typing(alice.me, True)
        await until(pilot, lambda: "typing…" in screen_text(app))
        await bob.set_typing(alice.me, False)
        await until(pilot, lambda: "typing…" not in screen_text(app))
        # And we tell bob when we type.
        await pilot.press("h")
        typing = await wait_for(bob_events, lambda e: type(e).__name__ == "TypingChanged")
        assert getattr(typing, "typing", None) is True


async def test_security_warning_is_prominent(pair: tuple[Node, Node]) -> None:
    alice, _ = pair
    app = app_for(alice)
    async with app.run_test(size=SIZE) as pilot:
        alice.hub.emit(SecurityWarning(None, "[bold]mallory[/] claims to be bob"))
        await until(pilot, lambda: app.chat.query_one("#security").display)
        assert "SECURITY WARNING" in screen_text(app)
        assert "[bold]mallory[/] claims to be bob" in screen_text(app)
        await pilot.press("f4")
        await until(pilot, lambda: not app.chat.query_one("#security").display)


async def test_verify_screen_marks_verified(pair: tuple[Node, Node]) -> None:
    alice, bob = pair
    await befriend(alice, bob)
    app = app_for(alice)
    async with app.run_test(size=SIZE) as pilot:
        await open_chat_with(pilot, app, bob.me)
        await pilot.press("f3")
        await until(pilot, lambda: isinstance(app.screen, VerifyScreen))
        await pilot.pause()
        groups = alice.safety_number(bob.me).split()
        assert len(groups) == 12
        assert "  ".join(groups[:4]) in screen_text(app)
        assert "  ".join(groups[8:]) in screen_text(app)
        await pilot.press("v")
        await until(pilot, lambda: app.chat.peer_info and app.chat.peer_info.verified)
        assert "✔ verified" in screen_text(app)


async def test_settings_change_node_settings(pair: tuple[Node, Node]) -> None:
    alice, _ = pair
    app = app_for(alice)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("f2")
        await until(pilot, lambda: isinstance(app.screen, SettingsScreen))
        app.screen.query_one("#read_receipts").value = False  # type: ignore[attr-defined]
        app.screen.query_one("#bell").value = True  # type: ignore[attr-defined]
        name = app.screen.query_one("#display_name")
        name.value = "Alice Liddell"  # type: ignore[attr-defined]
        await pilot.click("#save")
        await until(pilot, lambda: not alice.setting("read_receipts"))
        await until(pilot, lambda: alice.profile.display_name == "Alice Liddell")
        assert app.prefs.bell
        # The app's own settings live in the profile's store, not in a file of their own.
        await until(pilot, lambda: app.prefs.bell)
        assert await alice.ui_setting("bell") == "1"


async def test_command_palette_reaches_settings(pair: tuple[Node, Node]) -> None:
    alice, _ = pair
    app = app_for(alice)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("ctrl+p")
        await pilot.press(*"Settings")
        await pilot.pause(0.3)
        await pilot.press("enter")
        await until(pilot, lambda: isinstance(app.screen, SettingsScreen))


async def test_replying_to_a_request_accepts_and_sends_receipts(pair: tuple[Node, Node]) -> None:
    alice, bob = pair
    await connected_pair(alice, bob)
    app = app_for(alice)
    async with app.run_test(size=SIZE) as pilot:
        hello = await bob.send_text(alice.me, "hi, it is bob")
        await open_chat_with(pilot, app, bob.me)
        await pilot.press(*"hi bob", "enter")
        assert await bob.wait_for_status(hello.id, MessageStatus.READ, 10)


async def test_file_offer_shows_its_name_literally_and_downloads(
    pair: tuple[Node, Node], tmp_path: Path
) -> None:
    alice, bob = pair
    await befriend(alice, bob)
    await alice.set_text_setting("download_dir", str(tmp_path / "downloads"))
    await alice.transfers.set_auto_accept_max(0)  # every file waits for the person
    source = tmp_path / "[bold]notes[-].txt"
    source.write_bytes(b"x" * 300_000)
    app = app_for(alice)
    async with app.run_test(size=SIZE) as pilot:
        await open_chat_with(pilot, app, bob.me)
        await bob.transfers.send_file(alice.me, source)
        await until(pilot, lambda: "[bold]notes[-].txt" in screen_text(app))
        await until(pilot, lambda: file_state(app) == "offered")
        await until(pilot, lambda: "a download · d decline" in screen_text(app))
        await pilot.press("up", "a")
        await until(pilot, lambda: file_state(app) == "done", within=30)
        await until(pilot, lambda: "✓ saved" in screen_text(app))
        assert (tmp_path / "downloads").exists()


async def test_group_invitation_join_and_chat(pair: tuple[Node, Node]) -> None:
    alice, bob = pair
    await befriend(alice, bob)
    bob_events = bob.subscribe()
    app = app_for(alice)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: sidebar(app).entries)
        room = await bob.groups.create_room("[b]Hikers[/b]")
        await bob.groups.invite(room, alice.me)
        await until(pilot, lambda: room in app.chat.invitations)
        join = next(c for c in app.palette_commands() if c[0].startswith("Join group"))
        assert join[0] == "Join group [b]Hikers[/b]"
        join[2]()
        await until(pilot, lambda: any(e.room_id == room for e in sidebar(app).entries.values()))
        entry = next(e for e in sidebar(app).entries.values() if e.room_id == room)
        await app.chat.open_entry(entry)
        await until(pilot, lambda: "group of 2" in screen_text(app))
        assert "[b]Hikers[/b]" in screen_text(app)
        await pilot.press(*"hello hikers", "enter")
        got = await wait_for(
            bob_events,
            lambda e: isinstance(e, MessageAdded) and e.incoming and e.message.kind == "text",
        )
        assert isinstance(got, MessageAdded)
        assert got.message.body == b"hello hikers"


async def test_long_history_opens_at_the_end_and_pages_back(pair: tuple[Node, Node]) -> None:
    alice, bob = pair
    await befriend(alice, bob)
    events = alice.subscribe()
    total = 150
    for i in range(total):
        await bob.send_text(alice.me, f"message {i}")
    await wait_for(
        events, lambda e: isinstance(e, MessageAdded) and e.message.body == b"message 149"
    )
    await alice.mark_read(alice.direct_room(bob.me))  # read before: no unread marker
    app = app_for(alice)
    async with app.run_test(size=(80, 24)) as pilot:
        await open_chat_with(pilot, app, bob.me)
        listing = app.chat.query_one(MessageList)
        assert len(items(app)) == 60  # only the latest page
        assert "message 149" in screen_text(app)
        listing.release_anchor()
        listing.scroll_home(animate=False, immediate=True)
        await until(pilot, lambda: len(items(app)) == 120 and not listing.fetching)
        # The view stays on what was shown, not on the newly loaded top.
        assert "message 90" in screen_text(app)
        listing.scroll_home(animate=False, immediate=True)
        await until(pilot, lambda: len(items(app)) == total and not listing.fetching)
        listing.scroll_home(animate=False, immediate=True)
        await until(pilot, lambda: not listing.has_more)
        bodies = [i.message.body for i in items(app)]
        assert bodies == [f"message {i}".encode() for i in range(total)]


async def test_a_page_loaded_before_the_list_has_a_size_is_not_taken_for_a_short_one(
    pair: tuple[Node, Node],
) -> None:
    """Opening a room can load its page before the list is laid out (it has no height
    yet): that page is not "shorter than the view", so no older page is fetched."""
    alice, bob = pair
    await befriend(alice, bob)
    events = alice.subscribe()
    for i in range(150):
        await bob.send_text(alice.me, f"message {i}")
    await wait_for(
        events, lambda e: isinstance(e, MessageAdded) and e.message.body == b"message 149"
    )
    app = app_for(alice)
    async with app.run_test(size=(80, 24)) as pilot:
        await open_chat_with(pilot, app, bob.me)
        listing = app.chat.query_one(MessageList)
        listing.display = False
        await until(pilot, lambda: listing.size.height == 0)
        await listing.show_room(alice.direct_room(bob.me))
        await pilot.pause()
        await pilot.pause()
        assert len(items(app)) == 60
        assert not listing.fetching
        listing.display = True
        await until(pilot, lambda: listing.size.height > 0 and "message 149" in screen_text(app))
        await pilot.pause()
        assert len(items(app)) == 60
        assert not listing.fetching


async def test_top_bar_shows_the_port_even_if_the_node_started_first(
    pair: tuple[Node, Node],
) -> None:
    """The node's status event can go by before the screen exists (a first-run dialog,
    an app opened on a running node): the top bar still shows port and discovery."""
    alice, _ = pair
    app = app_for(alice)  # alice started (and announced her status) before the app
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: app.chat.node_ready)
        await until(pilot, lambda: f"port {alice.port}" in screen_text(app))
        assert "discovery off" in screen_text(app)  # test nodes run without mDNS
