"""The app keeps up with live volume: a burst is shown whole, at a bounded cost (issue 12).

Alice's app shows the chat; Bob is a plain node sending as fast as it can. Costs are
counted (rows the list holds, messages laid out and rows placed per message, messages
laid out per turn of the loop, sidebar entries drawn again), never timed.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from textual.geometry import Region

from p2pchat.node import Node
from p2pchat.ui.widgets import message_rows
from p2pchat.ui.widgets.message_list import MAX_KEPT, PAGE, SLICE, MessageList
from p2pchat.ui.widgets.message_rows import DayRow
from tests.nodes import make_node
from tests.ui.helpers import (
    SIZE,
    app_for,
    befriend,
    open_chat_with,
    screen_text,
    sidebar,
    until,
)

BURST = 2000
WINDOW = 64


@pytest.fixture
async def pair() -> AsyncIterator[tuple[Node, Node]]:
    alice, bob = make_node("alice"), make_node("bob")
    await alice.start()
    await bob.start()
    yield alice, bob
    await alice.stop()
    await bob.stop()


async def send_burst(bob: Node, alice: Node, count: int, tag: str) -> None:
    """``count`` messages from Bob, ``WINDOW`` in flight (a script, not a person)."""
    gate = asyncio.Semaphore(WINDOW)

    async def one(i: int) -> None:
        async with gate:
            await bob.send_text(alice.me, f"{tag} {i}")

    await asyncio.gather(*(one(i) for i in range(count)))


async def test_a_burst_is_all_shown_and_the_rows_held_stay_bounded(
    pair: tuple[Node, Node],
) -> None:
    alice, bob = pair
    await befriend(alice, bob)
    app = app_for(alice)
    async with app.run_test(size=SIZE) as pilot:
        await open_chat_with(pilot, app, bob.me)
        listing = app.chat.query_one(MessageList)
        most = 0

        async def watch() -> None:
            nonlocal most
            while True:
                most = max(most, len(listing.rows))
                await asyncio.sleep(0.01)

        watcher = asyncio.create_task(watch())
        try:
            await send_burst(bob, alice, BURST, "burst")
            last = f"burst {BURST - 1}".encode()
            await until(
                pilot,
                lambda: (item := listing.last_item()) is not None and item.message.body == last,
                within=120,
            )
            await pilot.pause()
        finally:
            watcher.cancel()
        # Every message arrived in order (the newest ones are held, the rest page in).
        shown = [item.message.body for item in listing.message_rows()]
        assert shown == [f"burst {i}".encode() for i in range(BURST - len(shown), BURST)]
        assert f"burst {BURST - 1}" in screen_text(app)
        assert len(listing.items) <= MAX_KEPT + PAGE
        assert most <= MAX_KEPT + PAGE + 10  # a few day separators / markers, never the burst
        # The top of what stayed is laid out like the first message of a page.
        assert isinstance(listing.rows[0], DayRow)
        assert listing.message_rows()[0].view.show_header
        assert listing.has_more


async def test_scrolling_up_pages_trimmed_messages_back_in(pair: tuple[Node, Node]) -> None:
    alice, bob = pair
    await befriend(alice, bob)
    app = app_for(alice)
    async with app.run_test(size=SIZE) as pilot:
        await open_chat_with(pilot, app, bob.me)
        listing = app.chat.query_one(MessageList)
        total = MAX_KEPT + PAGE + 100
        await send_burst(bob, alice, total, "m")
        last = f"m {total - 1}".encode()
        await until(
            pilot,
            lambda: (item := listing.last_item()) is not None and item.message.body == last,
            within=60,
        )
        assert b"m 0" not in {i.message.body for i in listing.items.values()}

        def scrolled_to_the_start() -> bool:
            if not listing.fetching:
                listing.scroll_home(animate=False, immediate=True)  # as a person keeps doing
            return b"m 0" in {i.message.body for i in listing.items.values()}

        await until(pilot, scrolled_to_the_start, within=60)
        bodies = [item.message.body for item in listing.message_rows()]
        assert bodies == sorted(bodies, key=lambda b: int(b.split()[1]))  # no gap, no repeat
        assert len(set(bodies)) == len(bodies)


async def test_cost_of_a_message_does_not_grow_with_what_is_shown(
    pair: tuple[Node, Node], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The list's work per arriving message: the same after 10 and after 600.

    Counted as messages laid out (wrapped into lines) and rows placed (their top line
    set) per message. Before the line API every message stayed a mounted widget and
    each layout pass visited all of them.
    """
    alice, bob = pair
    await befriend(alice, bob)
    laid: list[bytes] = []
    layout = message_rows.layout_message

    def counting(view: message_rows.ItemView, width: int, console: object) -> object:
        laid.append(view.message.body)
        return layout(view, width, console)  # type: ignore[arg-type]

    monkeypatch.setattr(message_rows, "layout_message", counting)
    app = app_for(alice)
    async with app.run_test(size=SIZE) as pilot:
        await open_chat_with(pilot, app, bob.me)
        listing = app.chat.query_one(MessageList)
        placed: list[int] = []
        place = listing._place

        def counting_place(start: int, width: int) -> int:
            placed.append(len(listing.rows) - start)
            return place(start, width)

        listing._place = counting_place  # type: ignore[method-assign]

        async def cost_of(tag: str, count: int) -> tuple[int, int]:
            await pilot.pause()
            laid.clear()
            placed.clear()
            for i in range(count):  # one at a time: the worst case for batching
                await bob.send_text(alice.me, f"{tag} {i}")
                want = f"{tag} {i}".encode()
                await until(
                    pilot,
                    lambda want=want: (
                        (it := listing.last_item()) is not None  # type: ignore[misc]
                        and it.message.body == want
                    ),
                )
                await pilot.pause()
            return len(laid), sum(placed)

        early_laid, early_placed = await cost_of("early", 10)
        await send_burst(bob, alice, 600, "filler")
        await until(
            pilot,
            lambda: (it := listing.last_item()) is not None and it.message.body == b"filler 599",
            within=60,
        )
        late_laid, late_placed = await cost_of("late", 10)
        # Each message is laid out about once (a read mark repaints, it does not re-wrap),
        # and placing rows costs about the same with 10 or 600 messages above.
        assert late_laid <= early_laid + 5, (early_laid, late_laid)
        assert late_placed <= early_placed + MAX_KEPT + PAGE, (early_placed, late_placed)


async def test_a_reaction_lays_out_its_own_message_only(
    pair: tuple[Node, Node], monkeypatch: pytest.MonkeyPatch
) -> None:
    """An update (here a reaction) redraws one row in place: no other message is laid
    out again and nothing above it moves."""
    alice, bob = pair
    await befriend(alice, bob)
    laid: list[bytes] = []
    layout = message_rows.layout_message

    def counting(view: message_rows.ItemView, width: int, console: object) -> object:
        laid.append(view.message.body)
        return layout(view, width, console)  # type: ignore[arg-type]

    monkeypatch.setattr(message_rows, "layout_message", counting)
    app = app_for(alice)
    async with app.run_test(size=SIZE) as pilot:
        await open_chat_with(pilot, app, bob.me)
        listing = app.chat.query_one(MessageList)
        await send_burst(bob, alice, 40, "r")
        await until(
            pilot,
            lambda: (it := listing.last_item()) is not None and it.message.body == b"r 39",
        )
        await pilot.pause()
        target = next(r for r in listing.message_rows() if r.message.body == b"r 30")
        tops = [r.top for r in listing.rows]
        laid.clear()
        await bob.react(target.message.id, "👍")
        await until(pilot, lambda: bool(target.view.reactions))
        await pilot.pause()
        assert laid == [b"r 30"]
        moved = [r.top for r in listing.rows]
        index = listing.rows.index(target)
        assert moved[: index + 1] == tops[: index + 1]  # nothing above it moved
        assert "👍 1" in screen_text(app)


async def test_a_receipt_redraws_the_mark_without_a_layout(
    pair: tuple[Node, Node], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Delivered and read receipts on your messages change one line each: no message is
    laid out (wrapped) again, and the marks on screen turn to read."""
    alice, bob = pair
    await befriend(alice, bob)
    laid: list[bytes] = []
    layout = message_rows.layout_message

    def counting(view: message_rows.ItemView, width: int, console: object) -> object:
        laid.append(view.message.body)
        return layout(view, width, console)  # type: ignore[arg-type]

    monkeypatch.setattr(message_rows, "layout_message", counting)
    app = app_for(alice)
    async with app.run_test(size=SIZE) as pilot:
        await open_chat_with(pilot, app, bob.me)
        listing = app.chat.query_one(MessageList)
        sent = [await alice.send_text(bob.me, f"mine {i}") for i in range(5)]
        await until(pilot, lambda: len(listing.message_rows()) == 5)
        await until(pilot, lambda: all(r.message.status >= 2 for r in listing.message_rows()))
        await pilot.pause()
        laid.clear()
        await bob.mark_read(bob.direct_room(alice.me), [m.id for m in sent])
        await until(pilot, lambda: all(r.message.status == 3 for r in listing.message_rows()))
        await pilot.pause()
        assert laid == []
        assert screen_text(app).count("✔✔") == 5


async def test_a_burst_is_laid_out_a_slice_at_a_time(
    pair: tuple[Node, Node], monkeypatch: pytest.MonkeyPatch
) -> None:
    """However fast messages come, one turn of the app's loop lays out at most ``SLICE``
    new ones (the rest wait a turn, so a key pressed meanwhile goes in between), and
    following the end never more than the view has lines. Before, a flush laid out up
    to 60 messages in one go (10-16 ms in front of a key)."""
    alice, bob = pair
    await befriend(alice, bob)
    laid: list[bytes] = []
    layout = message_rows.layout_message

    def counting(view: message_rows.ItemView, width: int, console: object) -> object:
        laid.append(view.message.body)
        return layout(view, width, console)  # type: ignore[arg-type]

    monkeypatch.setattr(message_rows, "layout_message", counting)
    app = app_for(alice)
    async with app.run_test(size=SIZE) as pilot:
        await open_chat_with(pilot, app, bob.me)
        listing = app.chat.query_one(MessageList)
        per_turn: list[int] = []
        flush = listing._flush

        async def counting_flush() -> None:
            before = set(laid)
            await flush()
            per_turn.append(len(set(laid) - before))  # new messages (a scrollbar that
            # comes lays the kept ones out again at the new width: bounded, not new)

        listing._flush = counting_flush  # type: ignore[method-assign]
        await send_burst(bob, alice, 600, "s")
        await until(
            pilot,
            lambda: (it := listing.last_item()) is not None and it.message.body == b"s 599",
            within=60,
        )
        view_lines = listing.scrollable_content_region.height
        assert per_turn
        assert max(per_turn) <= min(SLICE, view_lines), per_turn
        # Every message is still there in order: shown, or paged in from the store.
        shown = [item.message.body for item in listing.message_rows()]
        assert shown == [f"s {i}".encode() for i in range(600 - len(shown), 600)]


async def test_a_burst_relabels_its_sidebar_entry_without_rebuilding_the_list(
    pair: tuple[Node, Node], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A burst in one chat gives that chat's sidebar entry new labels (its preview) and
    touches nothing else: no other entry is drawn again, the list is never cleared and
    refilled. Before, every update (twice a second in a burst) rebuilt every entry."""
    alice, bob = pair
    carol = make_node("carol")
    await carol.start()
    try:
        await befriend(alice, carol)
        await befriend(alice, bob)
        await carol.send_text(alice.me, "from carol")
        app = app_for(alice)
        async with app.run_test(size=SIZE) as pilot:
            await open_chat_with(pilot, app, bob.me)
            bar = sidebar(app)
            bob_key = next(k for k, e in bar.entries.items() if e.peer_id == bob.me)
            carol_key = next(k for k, e in bar.entries.items() if e.peer_id == carol.me)
            await bob.send_text(alice.me, "first")  # Bob's chat goes (and stays) on top
            await until(pilot, lambda: "first" in bar.entries[bob_key].preview)
            await until(pilot, lambda: next(iter(bar.entries)) == bob_key)
            rebuilt: list[int] = []
            relabelled: list[str] = []
            clear, relabel = bar.clear_options, bar.replace_option_prompt

            def counting_clear() -> object:
                rebuilt.append(1)
                return clear()

            def counting_relabel(option_id: str, prompt: object) -> object:
                relabelled.append(option_id)
                return relabel(option_id, prompt)  # type: ignore[arg-type]

            monkeypatch.setattr(bar, "clear_options", counting_clear)
            monkeypatch.setattr(bar, "replace_option_prompt", counting_relabel)
            await send_burst(bob, alice, 300, "b")
            await until(pilot, lambda: "b 299" in bar.entries[bob_key].preview, within=60)
            assert rebuilt == []
            assert relabelled
            assert set(relabelled) == {bob_key}
            assert carol_key in bar.entries
            assert "b 299" in screen_text(app)
    finally:
        await carol.stop()


async def test_a_frame_of_the_list_works_out_its_style_once(
    pair: tuple[Node, Node], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Drawing the whole list asks for the widget's style (which walks every ancestor's
    colours) once, not once per line: on ``main`` a screenful asked 24 times."""
    alice, bob = pair
    await befriend(alice, bob)
    app = app_for(alice)
    async with app.run_test(size=SIZE) as pilot:
        await open_chat_with(pilot, app, bob.me)
        listing = app.chat.query_one(MessageList)
        await send_burst(bob, alice, 40, "s")
        await until(
            pilot,
            lambda: (it := listing.last_item()) is not None and it.message.body == b"s 39",
        )
        await pilot.pause()
        asked: list[int] = []
        style = MessageList.rich_style

        def counting(self: MessageList) -> object:
            asked.append(1)
            return style.fget(self)  # type: ignore[attr-defined]

        monkeypatch.setattr(MessageList, "rich_style", property(counting))
        listing.refresh()  # every line is drawn anew, as when the list scrolls
        height = listing.size.height
        strips = listing.render_lines(Region(0, 0, listing.size.width, height))
        assert len(strips) == height
        assert any("s 39" in strip.text for strip in strips)
        assert len(asked) <= 2, len(asked)


async def test_typing_does_not_draw_the_sidebar_again(
    pair: tuple[Node, Node], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A frame draws the widgets whose container overlaps what changed: the sidebar sits
    in a pane of its own, so keys typed (and messages shown) in the conversation never
    draw it again. Straight in the screen's main row, it was drawn with every frame."""
    alice, bob = pair
    await befriend(alice, bob)
    app = app_for(alice)
    async with app.run_test(size=SIZE) as pilot:
        await open_chat_with(pilot, app, bob.me)
        await pilot.pause()
        drawn: list[int] = []
        bar = sidebar(app)
        draw = bar.render_lines

        def counting(crop: Region) -> object:
            drawn.append(1)
            return draw(crop)

        monkeypatch.setattr(bar, "render_lines", counting)
        for key in "hello world, again":
            await pilot.press(key)
            await pilot.pause()
        assert "hello world, again" in screen_text(app)
        # Once at most (a frame that lays the screen out draws everything); on main, once
        # per key (19 for these 18).
        assert len(drawn) <= 1, len(drawn)
