"""The sticker picker (ctrl+t) sends a sticker, and both sides show its picture large."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from textual.widgets import OptionList

from p2pchat.node import Node
from p2pchat.node.sticker_body import KIND_STICKER
from p2pchat.ui.media import STICKER_ROWS
from p2pchat.ui.screens.sticker_picker import StickerPicker
from p2pchat.ui.widgets.message_list import MessageList
from tests.node.test_stickers import sticker_png
from tests.nodes import make_node
from tests.ui.helpers import SIZE, app_for, befriend, items, open_chat_with, screen_text, until


@pytest.fixture
async def pair() -> AsyncIterator[tuple[Node, Node]]:
    alice, bob = make_node("alice"), make_node("bob")
    await alice.start()
    await bob.start()
    yield alice, bob
    await alice.stop()
    await bob.stop()


def _options(app: object) -> list[str]:
    results = app.screen.query_one("#results", OptionList)  # type: ignore[attr-defined]
    ids = (results.get_option_at_index(i).id for i in range(results.option_count))
    return [i for i in ids if i]


async def test_picker_sends_a_sticker_shown_large_on_both_sides(
    pair: tuple[Node, Node], tmp_path: Path
) -> None:
    alice, bob = pair
    await befriend(alice, bob)
    sticker_png(tmp_path / "wave.png")
    sticker_png(tmp_path / "nod.png", (0, 0, 255, 255))
    await alice.stickers.add("hi", [tmp_path / "wave.png", tmp_path / "nod.png"])
    app = app_for(alice)
    async with app.run_test(size=SIZE) as pilot:
        await open_chat_with(pilot, app, bob.me)
        await pilot.press("ctrl+t")
        await until(pilot, lambda: isinstance(app.screen, StickerPicker) and _options(app))
        assert _options(app) == ["hi/nod", "hi/wave"]
        await pilot.press(*"wave", "enter")
        await until(pilot, lambda: not isinstance(app.screen, StickerPicker))
        await until(
            pilot,
            lambda: (
                bool(items(app))
                and items(app)[-1].message.kind == KIND_STICKER
                and items(app)[-1].view.sticker is not None
            ),
        )
        shown = items(app)[-1]
        assert shown.view.file is None  # no file card
        assert shown.view.sticker is not None
        assert shown.view.sticker.rows == STICKER_ROWS  # large: a square picture fills the box
        assert "(sticker hi/wave)" not in screen_text(app)

    app = app_for(bob)
    async with app.run_test(size=SIZE) as pilot:
        await open_chat_with(pilot, app, alice.me)
        await until(
            pilot,
            lambda: bool(items(app)) and items(app)[-1].view.sticker is not None,
        )
        # Bob likes it: the palette installs the selected sticker's pack.
        app.chat.query_one(MessageList).select(items(app)[-1])  # the row selected
        await pilot.pause()
        (install,) = [c for c in app.palette_commands() if c[0] == "Install the sticker pack hi"]
        calls: list[Any] = []  # the node call the command makes, run here to its end
        app.chat.run_node = lambda coro, done="": calls.append(coro)  # type: ignore[method-assign]
        install[2]()
        (call,) = calls
        await call
        assert [s.name for s in await bob.stickers.packs("hi")] == ["wave"]


def test_sticker_drawing_keeps_transparency() -> None:
    import io

    from PIL import Image

    from p2pchat.ui.media import decode_sticker_picture

    picture = Image.new("RGBA", (64, 64), (0, 0, 0, 0))  # clear, with a red left half
    picture.paste((255, 0, 0, 255), (0, 0, 32, 64))
    out = io.BytesIO()
    picture.save(out, "PNG")
    drawn = decode_sticker_picture(out.getvalue())
    assert (drawn.columns, drawn.rows) == (24, 12)
    first = drawn.halfcell.split("\n")[0]
    assert first.plain == "▀" * 12 + " " * 12  # the clear half is left to the terminal
    assert all(span.style.bgcolor is not None for span in first.spans if span.end <= 12)
    assert drawn.picture.mode == "RGBA"


def test_sticker_drawing_refuses_what_the_node_would() -> None:
    from p2pchat.node.images import UnsafeImageError
    from p2pchat.ui.media import decode_sticker_picture
    from tests.adversary.test_images import EPS, png_header_only

    for data in (EPS, png_header_only(5000, 5000)):
        with pytest.raises(UnsafeImageError):
            decode_sticker_picture(data)
