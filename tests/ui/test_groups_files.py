"""Groups and files in the app, driven like a person would, against real loopback nodes.

Alice uses the app; Bob and Carol are plain nodes the test drives. Every wait is on a
condition or a node event under a timeout, never a bare sleep.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from PIL import Image
from rich.color_triplet import ColorTriplet
from rich.style import Style
from textual import events
from textual.pilot import Pilot

from p2pchat.node import MessageAdded, Node, RoomInvitation, TransferProgress
from p2pchat.ui.app import ChatApp
from p2pchat.ui.events import NodeEvent
from p2pchat.ui.opener import Opener
from p2pchat.ui.screens.confirm import ConfirmScreen
from p2pchat.ui.screens.file_picker import FilePickerScreen, FilteredTree
from p2pchat.ui.screens.prompt import PromptScreen
from p2pchat.ui.screens.receipts import ReceiptsScreen
from p2pchat.ui.widgets.composer import Composer, pasted_path
from p2pchat.ui.widgets.members import MembersPanel
from p2pchat.ui.widgets.message_list import MessageList
from tests.nodes import make_node, wait_for
from tests.ui.helpers import (
    app_for,
    befriend,
    file_state,
    items,
    open_chat_with,
    screen_text,
    sidebar,
    until,
)
from tests.ui.scenes import wait_until

BIG = (120, 36)


async def own_downloads(nodes: list[Node], folder: Path) -> None:
    """Every node saves into a folder of the test's own, never the person's Downloads."""
    for node in nodes:
        await node.set_text_setting("download_dir", str(folder / node.profile.display_name))


@pytest.fixture
async def trio(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[tuple[Node, Node, Node]]:
    nodes = [make_node(n) for n in ("alice", "bob", "carol")]
    for node in nodes:
        await node.start()
    await own_downloads(nodes, tmp_path_factory.mktemp("downloads"))
    alice, bob, carol = nodes
    await befriend(alice, bob)
    await befriend(alice, carol)
    await befriend(bob, carol)
    yield alice, bob, carol
    for node in nodes:
        await node.stop()


@pytest.fixture
async def pair(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[tuple[Node, Node]]:
    alice, bob = make_node("alice"), make_node("bob")
    await alice.start()
    await bob.start()
    await own_downloads([alice, bob], tmp_path_factory.mktemp("downloads"))
    await befriend(alice, bob)
    yield alice, bob
    await alice.stop()
    await bob.stop()


def notes(app: ChatApp) -> list[str]:
    """The texts of the notifications on screen."""
    return [n.message for n in app._notifications]


async def palette(pilot: Pilot[int], title: str) -> None:
    """Run the palette command whose title is ``title``, as typed by a person."""
    await pilot.press("ctrl+p")
    await pilot.press(*title)
    await pilot.pause(0.3)
    await pilot.press("enter")


async def test_create_invite_receipts_and_members(trio: tuple[Node, Node, Node]) -> None:
    alice, bob, carol = trio
    bob_events, carol_events = bob.subscribe(), carol.subscribe()
    app = app_for(alice)
    async with app.run_test(size=BIG) as pilot:
        await until(pilot, lambda: sidebar(app).entries)
        await palette(pilot, "Create a group")
        await until(pilot, lambda: isinstance(app.screen, PromptScreen))
        await pilot.press(*"Hikers", "enter")
        await until(pilot, lambda: app.chat.room is not None and app.chat.peer is None)
        room = app.chat.room
        assert room is not None
        await until(pilot, lambda: "Hikers" in screen_text(app))
        assert any(e.group and e.room_id == room for e in sidebar(app).entries.values())

        for node, stream in ((bob, bob_events), (carol, carol_events)):
            await palette(pilot, f"Invite {node.profile.display_name} to Hikers")
            await wait_for(stream, lambda e: isinstance(e, RoomInvitation) and e.room == room)
            await node.groups.join(room)
        panel = app.chat.query_one(MembersPanel)
        await until(pilot, lambda: "3 members" in str(panel.render()))
        shown = screen_text(app)
        assert "bob joined" in shown
        assert "carol joined" in shown
        assert "owner" in shown  # the panel gives roles

        # The room-change sentence is centred in the conversation.
        joined = next(i for i in items(app) if i.message.kind == "system")
        line = app.chat.query_one(MessageList).lines_of(joined)[0]
        left, right = len(line) - len(line.lstrip()), len(line) - len(line.rstrip())
        assert left > 4
        assert abs(left - right) <= 1

        await pilot.press(*"hello team", "enter")
        got = await wait_for(
            bob_events,
            lambda e: isinstance(e, MessageAdded) and e.message.body == b"hello team",
        )
        assert isinstance(got, MessageAdded)
        mine = got.message.id
        await until(pilot, lambda: "delivered to 2 of 2" in screen_text(app))
        await bob.mark_read(room, [mine])
        await until(pilot, lambda: "read by 1 of 2" in screen_text(app))
        await carol.mark_read(room, [mine])
        await until(pilot, lambda: "read by 2 of 2" in screen_text(app))

        # Who read it: i on the selected message lists the members.
        await pilot.press("up", "i")
        await until(pilot, lambda: isinstance(app.screen, ReceiptsScreen))
        await pilot.pause()
        listing_text = screen_text(app)
        assert "bob  read" in listing_text
        assert "carol  read" in listing_text
        await pilot.press("escape")
        await until(pilot, lambda: not isinstance(app.screen, ReceiptsScreen))
        # A click on the delivery mark shows the same list.
        mine_item = items(app)[-1]
        listing = app.chat.query_one(MessageList)
        width = len(listing.lines_of(mine_item)[0])
        line = mine_item.top + mine_item.gap - round(listing.scroll_y)
        await pilot.click(listing, offset=(1 + width - 2, line))
        await until(pilot, lambda: isinstance(app.screen, ReceiptsScreen))
        await pilot.press("escape")
        await until(pilot, lambda: not isinstance(app.screen, ReceiptsScreen))

        # The members panel hides and comes back with f5.
        assert panel.display
        await pilot.press("f5")
        assert not panel.display
        await pilot.press("f5")
        assert panel.display

        # Typing in a group shows in its header.
        await bob.set_typing_room(room, True)
        await until(pilot, lambda: "bob typing…" in screen_text(app))

        # Rename from the palette; everyone sees the sentence.
        await palette(pilot, "Rename group Hikers")
        await until(pilot, lambda: isinstance(app.screen, PromptScreen))
        await pilot.press("end", "ctrl+u", *"[b]Summit[/b]", "enter")
        await until(pilot, lambda: app.chat.room_name == "[b]Summit[/b]")
        await until(pilot, lambda: "renamed the room to “[b]Summit[/b]”" in screen_text(app))

        # Leave from the palette (it asks first); the composer is then closed.
        await palette(pilot, "Leave group [b]Summit[/b]")
        await until(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        await pilot.press("enter")
        await until(pilot, lambda: app.chat.my_state == "left")
        await until(pilot, lambda: "You left [b]Summit[/b]." in screen_text(app))
        assert app.chat.query_one(Composer).disabled


async def test_invitation_bar_joins_an_open_group(trio: tuple[Node, Node, Node]) -> None:
    alice, bob, _ = trio
    app = app_for(alice)
    async with app.run_test(size=BIG) as pilot:
        await until(pilot, lambda: sidebar(app).entries)
        room = await bob.groups.create_room("Book club")
        await bob.groups.invite(room, alice.me)
        await until(pilot, lambda: room in app.chat.invitations)
        await until(pilot, lambda: any(e.room_id == room for e in sidebar(app).entries.values()))
        await until(pilot, lambda: "you are invited" in screen_text(app))
        entry = next(e for e in sidebar(app).entries.values() if e.room_id == room)
        await app.chat.open_entry(entry)
        await until(pilot, lambda: "You are invited to Book club" in screen_text(app))
        assert app.chat.query_one(Composer).disabled
        await pilot.press("ctrl+a")
        await until(pilot, lambda: app.chat.my_state == "joined", within=15)
        await until(pilot, lambda: not app.chat.query_one(Composer).disabled)
        await until(pilot, lambda: "you are invited" not in screen_text(app))

        # With another chat open, the group counts what arrives in the sidebar.
        await open_chat_with(pilot, app, bob.me)

        def group_unread() -> int:
            return next(e.unread for e in sidebar(app).entries.values() if e.room_id == room)

        async def bob_sees_alice() -> bool:
            return any(
                m.peer_id == alice.me and m.state == "joined"
                for m in await bob.groups.members(room)
            )

        await wait_until(bob, bob_sees_alice)  # else his message may sort before her join
        # What she saw while the group was open is marked read, but the marks may still be
        # on their way (at most one write every READ_MIN_GAP): count from after them.
        await until(pilot, lambda: group_unread() == 0)
        before = group_unread()
        await bob.send_message(room, "first chapter by Friday", None)
        await until(pilot, lambda: group_unread() == before + 1)
        # The node may order a message sent right after a join before it (same Lamport
        # time, reported); a second one is surely the newest.
        await bob.send_message(room, "see you there", None)
        await until(pilot, lambda: group_unread() == before + 2)
        await until(pilot, lambda: "bob: see you there" in screen_text(app))  # who wrote it


async def test_file_card_progress_cancel_and_decline(
    pair: tuple[Node, Node], tmp_path: Path
) -> None:
    alice, bob = pair
    await alice.transfers.set_auto_accept_max(0)
    await bob.transfers.set_auto_accept_max(0)
    source = tmp_path / "clip.mp3"
    source.write_bytes(b"\xff\xfb" * 40_000)
    app = app_for(alice)
    async with app.run_test(size=BIG) as pilot:
        await open_chat_with(pilot, app, bob.me)
        offer = await bob.transfers.send_file(alice.me, source)
        await until(pilot, lambda: file_state(app) == "offered")
        await until(pilot, lambda: "📎 clip.mp3" in screen_text(app))  # painted
        text = screen_text(app)
        assert "MP3 audio · 78.1 KiB" in text
        assert "a download · d decline" in text

        # A transfer under way: bar, percent, speed, time left, cancel key. The app
        # keeps only the newest of queued progress events of one transfer.
        room = alice.direct_room(bob.me)
        for done in (10_000, 40_000):
            app.post_message(
                NodeEvent(
                    TransferProgress(
                        offer.id, room, "clip.mp3", 80_000, done, 2_000_000.0, 3.0, "active"
                    )
                )
            )
        await until(pilot, lambda: "50 %" in screen_text(app))
        text = screen_text(app)
        assert "━" in text
        assert "1.9 MiB/s" in text
        assert "3 s left" in text
        assert "x cancel" in text

        # x cancels a transfer under way.
        await pilot.press("up", "x")
        await until(pilot, lambda: file_state(app) == "cancelled")

        # d declines an offer.
        await bob.transfers.send_file(alice.me, source)
        await until(pilot, lambda: len(items(app)) == 2 and file_state(app) == "offered")
        await pilot.press("down", "d")
        await until(pilot, lambda: file_state(app) == "cancelled")
        await until(pilot, lambda: "declined" in screen_text(app))

        # Our own offer can be withdrawn with x.
        await pilot.press("escape")
        await pilot.press(*f"/send {source}", "enter")
        await until(pilot, lambda: items(app)[-1].message.author == alice.me)
        await until(pilot, lambda: file_state(app) == "offered")
        await until(pilot, lambda: "x withdraw" in screen_text(app))
        await pilot.press("up", "x")
        await until(pilot, lambda: file_state(app) == "cancelled")


async def test_download_open_and_reveal(pair: tuple[Node, Node], tmp_path: Path) -> None:
    alice, bob = pair
    await alice.set_text_setting("download_dir", str(tmp_path / "downloads"))
    await alice.transfers.set_auto_accept_max(0)
    source = tmp_path / "notes.txt"
    source.write_bytes(b"n" * 200_000)
    opener = Opener(program="/bin/true")
    app = app_for(alice, opener=opener)
    async with app.run_test(size=BIG) as pilot:
        await open_chat_with(pilot, app, bob.me)
        await bob.transfers.send_file(alice.me, source)
        await until(pilot, lambda: file_state(app) == "offered")
        await pilot.press("up", "a")
        await until(pilot, lambda: file_state(app) == "done", within=30)
        await until(pilot, lambda: "o open · f show in folder" in screen_text(app))
        saved = tmp_path / "downloads" / "notes.txt"
        assert saved.read_bytes() == source.read_bytes()
        await pilot.press("o")
        await until(pilot, lambda: opener.opened == [saved])
        await pilot.press("f")
        await until(pilot, lambda: opener.opened == [saved, saved.parent])


async def test_without_an_opener_the_path_is_shown(pair: tuple[Node, Node], tmp_path: Path) -> None:
    alice, bob = pair
    source = tmp_path / "sent.txt"
    source.write_text("hello")
    app = app_for(alice, opener=Opener(program=""))
    async with app.run_test(size=BIG) as pilot:
        await open_chat_with(pilot, app, bob.me)
        await pilot.press(*f"/send {source}", "enter")
        await until(pilot, lambda: file_state(app) != "")
        await pilot.press("up", "o")
        await until(pilot, lambda: any(str(source) in n for n in notes(app)))
        assert any("the path was copied" in n for n in notes(app))


async def test_picker_sends_a_file(pair: tuple[Node, Node], tmp_path: Path) -> None:
    alice, bob = pair
    (tmp_path / "docs").mkdir()
    (tmp_path / "other.bin").write_bytes(b"o")
    (tmp_path / "report.txt").write_text("the report")
    bob_events = bob.subscribe()
    app = app_for(alice)
    app.chat.picker_start = tmp_path
    async with app.run_test(size=BIG) as pilot:
        await open_chat_with(pilot, app, bob.me)
        await pilot.press("ctrl+o")
        await until(pilot, lambda: isinstance(app.screen, FilePickerScreen))
        await pilot.press(*"report")
        tree = app.screen.query_one(FilteredTree)

        def names() -> list[str]:
            return [str(child.label) for child in tree.root.children]

        await until(pilot, lambda: "report.txt" in names() and "other.bin" not in names())
        assert "docs" in names()  # folders stay so you can walk into them
        await pilot.press("down")
        for _ in range(5):
            node = tree.cursor_node
            if node is not None and node.data is not None and node.data.path.name == "report.txt":
                break
            await pilot.press("down")
        await pilot.press("enter")
        got = await wait_for(
            bob_events, lambda e: isinstance(e, MessageAdded) and e.message.kind == "file"
        )
        assert isinstance(got, MessageAdded)
        assert "report.txt" in bob.display_text(got.message)
        await until(pilot, lambda: "📎 report.txt" in screen_text(app))


async def test_send_command_and_pasted_path(pair: tuple[Node, Node], tmp_path: Path) -> None:
    alice, bob = pair
    first = tmp_path / "typed.txt"
    first.write_text("typed")
    second = tmp_path / "dropped file.txt"
    second.write_text("dropped")
    bob_events = bob.subscribe()
    app = app_for(alice)
    async with app.run_test(size=BIG) as pilot:
        await open_chat_with(pilot, app, bob.me)
        await pilot.press(*"/send ~/surely-not-here.txt", "enter")
        await until(pilot, lambda: any("No file at" in n for n in notes(app)))

        await pilot.press(*f"/send {first}", "enter")
        got = await wait_for(
            bob_events, lambda e: isinstance(e, MessageAdded) and e.message.kind == "file"
        )
        assert isinstance(got, MessageAdded)
        assert "typed.txt" in bob.display_text(got.message)

        # A terminal pastes a dropped file as a quoted path: the app offers to send it.
        composer = app.chat.query_one(Composer)
        composer.post_message(events.Paste(f"'{second}'"))
        await until(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        await pilot.pause()
        assert "dropped file.txt" in screen_text(app)
        await pilot.press("enter")
        got = await wait_for(
            bob_events,
            lambda e: (
                isinstance(e, MessageAdded)
                and e.message.kind == "file"
                and "dropped" in bob.display_text(e.message)
            ),
        )
        assert composer.text == ""

        # Answering "paste as text" puts the text in the composer instead.
        composer.post_message(events.Paste(str(second)))
        await until(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        # A click lands only once the dialog is laid out (its button has a place).
        await until(pilot, lambda: app.screen.query_one("#no").region.width > 0)
        await pilot.click("#no")
        await until(pilot, lambda: composer.text == str(second))


def test_pasted_path_forms(tmp_path: Path) -> None:
    target = tmp_path / "my photo.jpg"
    target.write_bytes(b"x")
    assert pasted_path(f"'{target}'") == target
    assert pasted_path(f'"{target}"') == target
    assert pasted_path(str(target).replace(" ", "\\ ")) == target
    assert pasted_path("file://" + str(target).replace(" ", "%20")) == target
    assert pasted_path(f"  {target}\n") == target
    assert pasted_path("my photo.jpg") is None  # relative: just text
    assert pasted_path(str(tmp_path)) is None  # a folder
    assert pasted_path(f"{target}\n{target}") is None  # two lines are text
    assert pasted_path("see /etc/passwd please") is None


def _colours(style: str | Style) -> tuple[str, str]:
    """A half block's top pixel (foreground) and bottom one (ground): red, blue or other."""
    assert isinstance(style, Style)
    assert style.color is not None
    assert style.bgcolor is not None

    def name(rgb: ColorTriplet) -> str:
        return "red" if rgb.red > 200 > rgb.blue else "blue" if rgb.blue > 200 > rgb.red else "?"

    return name(style.color.get_truecolor()), name(style.bgcolor.get_truecolor())


async def test_image_preview_and_hostile_file_name(pair: tuple[Node, Node], tmp_path: Path) -> None:
    alice, bob = pair
    await alice.transfers.set_auto_accept_max(0)
    picture = tmp_path / "sunset.png"
    img = Image.new("RGB", (200, 100), (255, 0, 0))
    img.paste((0, 0, 255), (0, 50, 200, 100))
    img.save(picture)
    hostile = tmp_path / "evil\x1b[2J[bold]x[@click=app.quit]y.txt"  # "/" cannot be in a name
    hostile.write_text("boo")
    app = app_for(alice)
    async with app.run_test(size=BIG) as pilot:
        await open_chat_with(pilot, app, bob.me)
        await bob.transfers.send_file(alice.me, picture)
        await until(pilot, lambda: file_state(app) == "offered")
        await pilot.pause()  # mounted is not yet painted
        card = items(app)[-1].view.file
        assert card is not None
        assert card.preview is not None
        # The card is drawn on the next refresh after its state changed.
        await until(pilot, lambda: "PNG image · " in screen_text(app))
        assert "200x100" in screen_text(app)
        # Red on top, blue below: the first half block is red, the last blue.
        spans = card.preview.halfcell.spans
        assert _colours(spans[0].style) == ("red", "red")
        assert _colours(spans[-1].style) == ("blue", "blue")
        assert "▀" in screen_text(app)

        await bob.transfers.send_file(alice.me, hostile)
        await until(pilot, lambda: "[@click=app.quit]" in screen_text(app))
        # Markup stays literal; the node already took the ESC out of the name.
        assert "[2J[bold]x[@click=app.quit]y.txt" in screen_text(app)
        assert "\x1b" not in screen_text(app)
        assert app.is_running


async def test_picker_follows_a_typed_path(pair: tuple[Node, Node], tmp_path: Path) -> None:
    """A full path typed (or pasted) into the filter shows its folder, filtered by the
    name part, and enter sends it."""
    alice, bob = pair
    photos = tmp_path / "photos"
    photos.mkdir()
    (photos / "holiday.jpg").write_bytes(b"jpg")
    (photos / "notes.txt").write_text("notes")
    app = app_for(alice)
    app.chat.picker_start = tmp_path
    async with app.run_test(size=BIG) as pilot:
        await open_chat_with(pilot, app, bob.me)
        await pilot.press("ctrl+o")
        await until(pilot, lambda: isinstance(app.screen, FilePickerScreen))
        tree = app.screen.query_one(FilteredTree)

        def names() -> list[str]:
            return [str(child.label) for child in tree.root.children]

        await pilot.press(*f"{photos}/holi")
        await until(pilot, lambda: tree.path == photos and names() == ["holiday.jpg"])
        await pilot.press(*"day.jpg", "enter")
        await until(pilot, lambda: "📎 holiday.jpg" in screen_text(app))
