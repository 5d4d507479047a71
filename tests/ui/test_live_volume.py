"""The app keeps up with live volume: a burst is shown whole, at a bounded cost (issue 12).

Alice's app shows the chat; Bob is a plain node sending as fast as it can. Costs are
counted (mounted widgets, layout passes of the list per message), never timed.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from p2pchat.node import Node
from p2pchat.ui.widgets.message_item import MessageItem
from p2pchat.ui.widgets.message_list import MAX_MOUNTED, DaySeparator, MessageList
from tests.nodes import make_node
from tests.ui.helpers import SIZE, app_for, befriend, open_chat_with, screen_text, until

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


async def test_a_burst_is_all_shown_and_mounted_widgets_stay_bounded(
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
                most = max(most, len(listing.children))
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
        # Every message arrived in order (the newest ones are mounted, the rest page in).
        shown = [item.message.body for item in listing.query(MessageItem)]
        assert shown == [f"burst {i}".encode() for i in range(BURST - len(shown), BURST)]
        assert f"burst {BURST - 1}" in screen_text(app)
        assert len(listing.items) <= MAX_MOUNTED
        assert most <= MAX_MOUNTED + 10  # a few day separators / markers, never the burst
        # The top of what stayed is laid out like the first message of a page.
        assert isinstance(listing.children[0], DaySeparator)
        assert listing.query(MessageItem).first().view.show_header
        assert listing.has_more


async def test_scrolling_up_pages_trimmed_messages_back_in(pair: tuple[Node, Node]) -> None:
    alice, bob = pair
    await befriend(alice, bob)
    app = app_for(alice)
    async with app.run_test(size=SIZE) as pilot:
        await open_chat_with(pilot, app, bob.me)
        listing = app.chat.query_one(MessageList)
        total = MAX_MOUNTED + 100
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
        bodies = [item.message.body for item in listing.query(MessageItem)]
        assert bodies == sorted(bodies, key=lambda b: int(b.split()[1]))  # no gap, no repeat
        assert len(set(bodies)) == len(bodies)


async def test_cost_of_a_message_does_not_grow_with_what_is_shown(
    pair: tuple[Node, Node],
) -> None:
    """The list's layout work per arriving message: the same after 10 and after 600.

    Counted as layout passes of the list and the children each pass visits.
    """
    alice, bob = pair
    await befriend(alice, bob)
    app = app_for(alice)
    async with app.run_test(size=SIZE) as pilot:
        await open_chat_with(pilot, app, bob.me)
        listing = app.chat.query_one(MessageList)
        passes: list[int] = []
        original = listing.arrange

        def counting(size: object, **kwargs: object) -> object:
            passes.append(len(listing.children))  # a layout pass visits every child
            return original(size, **kwargs)  # type: ignore[arg-type]

        listing.arrange = counting  # type: ignore[assignment,method-assign]

        async def cost_of(tag: str, count: int) -> list[int]:
            await pilot.pause()
            passes.clear()
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
            return list(passes)

        early = await cost_of("early", 10)
        await send_burst(bob, alice, 600, "filler")
        await until(
            pilot,
            lambda: (it := listing.last_item()) is not None and it.message.body == b"filler 599",
            within=60,
        )
        late = await cost_of("late", 10)
        # Before issue 12 every message stayed mounted, so each pass visited all 620.
        assert max(late) <= MAX_MOUNTED + 10
        assert len(late) <= 3 * len(early) + 10
