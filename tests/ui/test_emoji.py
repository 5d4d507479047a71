"""Emoji names, search, the picker's first page and its recently used row.

The data comes from the ``emoji`` package; these tests pin what the app promises on top
of it: aliases people type (``:+1:``), a first page of faces (no 🅰 🅱 Ⓜ 🆎), only
glyphs of one agreed width in the lists, and recent picks kept in the node's store.
"""

from __future__ import annotations

import unicodedata
from collections.abc import AsyncIterator

import pytest
from rich.cells import cell_len
from textual.widgets import OptionList

from p2pchat.node import Node
from p2pchat.ui import emoji
from p2pchat.ui.emoji import RECENT_SETTING
from p2pchat.ui.screens.emoji_picker import EmojiPicker, chosen_emoji
from p2pchat.ui.widgets.composer import Composer
from tests.nodes import make_node
from tests.ui.helpers import SIZE, app_for, befriend, open_chat_with, screen_text, until

LETTERS = ("🅰", "🅱", "Ⓜ", "🆎", "🅾", "🅿")


@pytest.fixture
async def pair() -> AsyncIterator[tuple[Node, Node]]:
    alice, bob = make_node("alice"), make_node("bob")
    await alice.start()
    await bob.start()
    yield alice, bob
    await alice.stop()
    await bob.stop()


def test_cldr_names_and_common_aliases() -> None:
    assert emoji.lookup("thumbs_up") == "👍"
    assert emoji.lookup("+1") == "👍"
    assert emoji.lookup("thumbsup") == "👍"
    assert emoji.lookup("Thumbs_Up_Medium_Skin_Tone") == "👍🏽"
    assert emoji.lookup("cote_d_ivoire") == "🇨🇮"  # CLDR name has an accent and a curly quote
    assert emoji.lookup("no_such_emoji") is None
    assert emoji.replace_shortcodes("ok :+1: :thumbsup: at 10:30:00 :nope:") == (
        "ok 👍 👍 at 10:30:00 :nope:"
    )


def test_completion_offers_aliases_shortest_first() -> None:
    assert emoji.complete("+") == [("+1", "👍")]
    assert emoji.complete("thumbsu")[0] == ("thumbsup", "👍")
    assert emoji.complete("smi")[0] == ("smile", "😄")


def test_keyword_search() -> None:
    assert emoji.search("thumbs")[0].char in ("👍", "👎")
    assert "🐱" in [e.char for e in emoji.search("cat face")]
    assert [e.char for e in emoji.search("rocket")][:1] == ["🚀"]
    hearts = [e.char for e in emoji.search("heart")]
    assert "💙" in hearts
    assert emoji.search("zzzqqq") == []


def test_lists_hold_only_glyphs_of_one_agreed_width() -> None:
    # Two cells by Rich's measure, and nothing whose width terminals disagree on:
    # no variation selector, joiner, skin-tone modifier, or narrow (text-style) base.
    for entry in emoji.entries():
        assert cell_len(entry.char) == 2, entry
        assert "\ufe0f" not in entry.char
        assert "\u200d" not in entry.char
        assert not any(0x1F3FB <= ord(c) <= 0x1F3FF for c in entry.char), entry
        if len(entry.char) == 1:
            assert unicodedata.east_asian_width(entry.char) == "W", entry


def test_sections_in_order_faces_first() -> None:
    sections = [e.category for e in emoji.entries()]
    firsts = list(dict.fromkeys(sections))
    assert firsts == list(emoji.CATEGORIES)
    assert emoji.entries()[0].char == "😀"
    assert emoji.category("🆎") == "Symbols"
    assert emoji.category("🇫🇷") == "Flags"


def test_recent_setting_is_validated() -> None:
    assert emoji.parse_recent(None) == []
    assert emoji.parse_recent("🚀 x 🚀 <b> 👍 " + "😀 " * 40) == ["🚀", "👍", "😀"]
    many = " ".join(e.char for e in emoji.entries()[:40])
    assert len(emoji.parse_recent(many)) == emoji.MAX_RECENT


def _shown(app: object) -> list[str]:
    results = app.screen.query_one("#results", OptionList)  # type: ignore[attr-defined]
    chars = (chosen_emoji(results.get_option_at_index(i)) for i in range(results.option_count))
    return [c for c in chars if c]


async def test_picker_first_page_and_recently_used(pair: tuple[Node, Node]) -> None:
    alice, bob = pair
    await befriend(alice, bob)
    app = app_for(alice)
    async with app.run_test(size=SIZE) as pilot:
        await open_chat_with(pilot, app, bob.me)
        await pilot.press("ctrl+e")
        await until(pilot, lambda: isinstance(app.screen, EmojiPicker) and _shown(app))
        first_page = _shown(app)[:40]
        assert first_page[0] == "😀"
        assert not [c for c in first_page if c.rstrip("\ufe0f") in LETTERS]
        assert "Recently used" not in screen_text(app)
        await pilot.press(*"rocket", "enter")
        await until(pilot, lambda: app.chat.query_one(Composer).text == "🚀")
        assert await alice.ui_setting(RECENT_SETTING) == "🚀"

        await pilot.press("ctrl+e")
        await until(pilot, lambda: isinstance(app.screen, EmojiPicker) and _shown(app))
        await until(pilot, lambda: "Recently used" in screen_text(app))
        assert _shown(app)[0] == "🚀"
        await pilot.press(*"+1", "enter")
        await until(pilot, lambda: app.chat.query_one(Composer).text == "🚀👍")
    assert await alice.ui_setting(RECENT_SETTING) == "👍 🚀"


async def test_damaged_recent_setting_means_no_recent_row(pair: tuple[Node, Node]) -> None:
    alice, bob = pair
    await befriend(alice, bob)
    await alice.set_ui_setting(RECENT_SETTING, "\x1b[31m 🅰 not-an-emoji")
    app = app_for(alice)
    async with app.run_test(size=SIZE) as pilot:
        await open_chat_with(pilot, app, bob.me)
        await pilot.press("ctrl+e")
        await until(pilot, lambda: isinstance(app.screen, EmojiPicker) and _shown(app))
        assert _shown(app)[0] == "😀"
        assert "Recently used" not in screen_text(app)


async def test_completion_of_an_alias(pair: tuple[Node, Node]) -> None:
    alice, bob = pair
    await befriend(alice, bob)
    app = app_for(alice)
    async with app.run_test(size=SIZE) as pilot:
        await open_chat_with(pilot, app, bob.me)
        composer = app.chat.query_one(Composer)
        await pilot.press(*"ok :+1")
        await until(pilot, lambda: app.chat.query_one("#completions").display)
        assert ":+1:" in screen_text(app)
        await pilot.press("tab")
        assert composer.text == "ok 👍"
