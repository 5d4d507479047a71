"""How the main screens look, pinned with pytest-textual-snapshot (80x24, the minimum).

Run ``pytest tests/ui/test_snapshots.py --snapshot-update`` after an intended change
and look at the SVGs under ``__snapshots__`` before committing them.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from textual.pilot import Pilot
from textual.widgets import Input, TextArea

from p2pchat.node import Node
from p2pchat.paths import profile_dir
from p2pchat.ui.app import ChatApp
from p2pchat.ui.launch import Launch, LaunchError
from p2pchat.ui.notify import DesktopNotifier
from p2pchat.ui.screens.shell import ShellScreen
from p2pchat.ui.widgets.message_list import MessageList
from p2pchat.ui.widgets.sidebar import Sidebar
from tests.ui.helpers import WAIT, until
from tests.ui.scenes import record_conversation, record_group, scene_app, utc

SnapCompare = Callable[..., bool]


@pytest.fixture(autouse=True)
def _utc() -> Iterator[None]:
    with utc():
        yield


def _freeze(app: ChatApp) -> None:
    """No blinking cursors: a snapshot must not depend on when it was taken."""
    for widget in app.screen.query("*"):
        if isinstance(widget, Input | TextArea):
            widget.cursor_blink = False


async def _ready(pilot: Pilot[Any]) -> None:
    app = pilot.app
    assert isinstance(app, ChatApp)
    await until(pilot, lambda: app.chat.node_ready and app.chat.query_one(Sidebar).entries)


def _entry(bar: Sidebar, name: str) -> Any:
    return next(e for e in bar.entries.values() if e.name == name)


def _open(key: str) -> Callable[[Pilot[Any]], Any]:
    """run_before: open the sidebar entry whose name is ``key``, then settle."""

    async def run(pilot: Pilot[Any]) -> None:
        app = pilot.app
        assert isinstance(app, ChatApp)
        await _ready(pilot)
        bar = app.chat.query_one(Sidebar)
        entry = next(e for e in bar.entries.values() if e.name == key)
        await app.chat.open_entry(entry)
        listing = app.chat.query_one(MessageList)
        await until(pilot, lambda: listing.loaded)
        if entry.unread and entry.state == "contact":  # a request stays unread
            # The read marks of what is now on screen land a moment later and the name
            # loses its bold: wait for that, or the picture depends on the timing.
            await until(pilot, lambda: _entry(bar, key).unread == 0)
        await pilot.pause()
        _freeze(app)

    return run


def test_empty(snap_compare: SnapCompare) -> None:
    app = scene_app("carol")

    async def run(pilot: Pilot[Any]) -> None:
        await until(pilot, lambda: app.chat.node_ready)
        _freeze(app)

    assert snap_compare(app, run_before=run)


def test_conversation(snap_compare: SnapCompare, monkeypatch: pytest.MonkeyPatch) -> None:
    record_conversation(monkeypatch)
    assert snap_compare(scene_app("alice"), run_before=_open("Bob"))


def test_request(snap_compare: SnapCompare, monkeypatch: pytest.MonkeyPatch) -> None:
    record_conversation(monkeypatch)
    assert snap_compare(scene_app("alice"), run_before=_open("Mallory"))


def test_verification(snap_compare: SnapCompare, monkeypatch: pytest.MonkeyPatch) -> None:
    record_conversation(monkeypatch)
    open_bob = _open("Bob")

    async def run(pilot: Pilot[Any]) -> None:
        await open_bob(pilot)
        await pilot.press("f3")
        await pilot.pause()
        _freeze(pilot.app)  # type: ignore[arg-type]

    assert snap_compare(scene_app("alice"), run_before=run)


def test_settings(snap_compare: SnapCompare, monkeypatch: pytest.MonkeyPatch) -> None:
    record_conversation(monkeypatch)

    async def run(pilot: Pilot[Any]) -> None:
        await _ready(pilot)
        await pilot.press("f2")
        await pilot.pause()
        _freeze(pilot.app)  # type: ignore[arg-type]

    assert snap_compare(scene_app("alice"), run_before=run)


def test_verification_with_qr_code(
    snap_compare: SnapCompare, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A tall terminal has room for the safety number's QR code too."""
    record_conversation(monkeypatch)
    open_bob = _open("Bob")

    async def run(pilot: Pilot[Any]) -> None:
        await open_bob(pilot)
        await pilot.press("f3")
        await pilot.pause()
        _freeze(pilot.app)  # type: ignore[arg-type]

    assert snap_compare(scene_app("alice"), run_before=run, terminal_size=(90, 40))


def test_group(snap_compare: SnapCompare, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """A group: room changes, "read by 1 of 2", a photo offer with its preview, members."""
    record_group(monkeypatch, tmp_path)
    assert snap_compare(scene_app("alice"), run_before=_open("Hikers"), terminal_size=(100, 34))


def test_emoji_picker(snap_compare: SnapCompare, monkeypatch: pytest.MonkeyPatch) -> None:
    """The picker's first page: faces in their section, no enclosed letters, whole border."""
    record_conversation(monkeypatch)
    open_bob = _open("Bob")

    async def run(pilot: Pilot[Any]) -> None:
        await open_bob(pilot)
        await pilot.press("ctrl+e")
        await until(pilot, lambda: pilot.app.screen.query("#results OptionList, #results"))
        await pilot.pause()
        _freeze(pilot.app)  # type: ignore[arg-type]

    assert snap_compare(scene_app("alice"), run_before=run)


def test_search(snap_compare: SnapCompare, monkeypatch: pytest.MonkeyPatch) -> None:
    """ctrl+f: results in context (where, who, when), the words found highlighted."""
    record_conversation(monkeypatch)
    open_bob = _open("Bob")

    async def run(pilot: Pilot[Any]) -> None:
        from p2pchat.ui.screens.search import SearchScreen

        await open_bob(pilot)
        await pilot.press("ctrl+f")
        await until(pilot, lambda: isinstance(pilot.app.screen, SearchScreen))
        await pilot.press(*"hike")
        screen = pilot.app.screen
        await until(pilot, lambda: len(screen.hits) == 2)  # type: ignore[attr-defined]
        await pilot.pause()
        _freeze(pilot.app)  # type: ignore[arg-type]

    assert snap_compare(scene_app("alice"), run_before=run)


@pytest.mark.parametrize("picker", [False, True], ids=["in_chat", "picker"])
def test_sticker(
    snap_compare: SnapCompare, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, picker: bool
) -> None:
    """A sticker just sent: large, transparent, no card; then ctrl+t, the picker."""
    from PIL import Image

    from p2pchat.ui.screens.sticker_picker import StickerPicker

    record_conversation(monkeypatch)
    open_bob = _open("Bob")
    files = []
    for name, colour in (("star", (255, 200, 0, 255)), ("leaf", (40, 180, 60, 255))):
        picture = Image.new("RGBA", (64, 64), (0, 0, 0, 0))
        picture.paste(colour, (16, 8, 48, 56))
        picture.save(tmp_path / f"{name}.png")
        files.append(tmp_path / f"{name}.png")

    async def run(pilot: Pilot[Any]) -> None:
        app = pilot.app
        assert isinstance(app, ChatApp)
        await open_bob(pilot)
        await app.node.stickers.add("fun", files)
        await app.node.stickers.send_to_room(app.chat.room, "fun/star")  # type: ignore[arg-type]
        listing = app.chat.query_one(MessageList)
        await until(
            pilot,
            lambda: any(r.view.sticker is not None for r in listing.items.values()),
        )
        bar = app.chat.query_one(Sidebar)
        await until(pilot, lambda: "sticker" in _entry(bar, "Bob").preview)
        if picker:
            await pilot.press("ctrl+t")
            await until(pilot, lambda: isinstance(app.screen, StickerPicker))
            await until(pilot, lambda: app.screen.query_one("#results").option_count == 2)  # type: ignore[attr-defined]
        await pilot.pause()
        _freeze(app)

    assert snap_compare(scene_app("alice"), run_before=run)


def test_shell_before_the_node_is_built(snap_compare: SnapCompare) -> None:
    """``p2pchat``'s first frame: the chat screen's frame, opening (ui/launch.py)."""
    gate = threading.Event()

    def build() -> Node:
        gate.wait(WAIT)
        raise LaunchError("not built in this test")

    class Shell(ChatApp):
        async def shutdown(self) -> None:
            gate.set()  # the build ends once the picture is taken
            await super().shutdown()

    app = Shell(Launch(profile_dir("carol"), build), desktop=DesktopNotifier(enabled=False))

    async def run(pilot: Pilot[Any]) -> None:
        await pilot.pause()
        assert isinstance(app.screen, ShellScreen)

    assert snap_compare(app, run_before=run)
