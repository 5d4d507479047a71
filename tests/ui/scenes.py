"""Fixed scenes for snapshot tests: same keys, same clock, same conversation every run.

Identities come from constant seeds and the node's clock is replaced while the scene is
recorded, so peer ids, safety numbers and times on screen never change. The app is then
started with the network off, so nothing outside the store can change what it shows.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest
from PIL import Image

from p2pchat.identity import Identity, save_identity
from p2pchat.key_doc import KEY_FILE
from p2pchat.node import Message, MessageAdded, MessageStatus, Node, NodeConfig, RoomInvitation
from p2pchat.paths import profile_dir
from p2pchat.profile import open_profile
from p2pchat.ui.app import ChatApp
from p2pchat.ui.notify import DesktopNotifier
from tests.nodes import TEST_CONFIG, connected_pair, wait_for

#: "Now" in every snapshot: Tuesday 1 December 2026, 14:30 UTC.
NOW = datetime(2026, 12, 1, 14, 30, tzinfo=UTC).timestamp()
MINUTE = 60_000
SEEDS = {"alice": 1, "bob": 3, "mallory": 5, "carol": 7}
NAMES = {"alice": "Alice", "bob": "Bob", "mallory": "Mallory", "carol": "Carol"}


def make_profile(name: str) -> None:
    """Create profile ``name`` with a fixed identity and display name."""
    seed = SEEDS[name]
    directory = profile_dir(name)
    identity = Identity(signing_seed=bytes([seed]) * 32, noise_private=bytes([seed + 1]) * 32)
    save_identity(directory / KEY_FILE, identity)
    open_profile(name).set_display_name(NAMES[name])


def node(name: str, *, network: bool = True) -> Node:
    """A node for a fixed profile (created on first use)."""
    if not (profile_dir(name) / KEY_FILE).exists():
        make_profile(name)
    config = replace(TEST_CONFIG, network=network)
    return Node(open_profile(name), config)


class Clock:
    """A settable stand-in for the node's ``now_ms``."""

    def __init__(self, start_ms: int) -> None:
        self.ms = start_ms

    def __call__(self) -> int:
        return self.ms

    def at(self, ms: int) -> None:
        """Move to ``ms``."""
        self.ms = ms


@contextmanager
def utc() -> Iterator[None]:
    """Show times in UTC, whatever the machine's zone."""
    old = os.environ.get("TZ")
    os.environ["TZ"] = "UTC"
    time.tzset()
    try:
        yield
    finally:
        if old is None:
            del os.environ["TZ"]
        else:
            os.environ["TZ"] = old
        time.tzset()


async def said(sender: Node, to: Node, text: str, reply_to: bytes | None = None) -> Message:
    """Send ``text`` and wait until ``to`` stored it: each message of a scene is seen
    before the next is written, so the causal (Lamport) order is the same every run."""
    message = await sender.send_text(to.me, text, reply_to=reply_to)
    assert await sender.wait_for_status(message.id, MessageStatus.DELIVERED, 10)
    return message


async def _record_conversation(clock: Clock) -> None:
    alice, bob, mallory = node("alice"), node("bob"), node("mallory")
    for n in (alice, bob, mallory):
        await n.start()
    try:
        await connected_pair(alice, bob)
        await alice.accept(bob.me)
        await bob.accept(alice.me)
        room = alice.direct_room(bob.me)
        yesterday = int(NOW * 1000) - 24 * 60 * MINUTE - 4 * 60 * MINUTE  # Mon 10:30
        today = int(NOW * 1000) - 5 * 60 * MINUTE  # 09:30
        clock.at(yesterday)
        hike = await said(bob, alice, "Are we still on for the hike tomorrow? 🥾")
        clock.at(yesterday + 3 * MINUTE)
        await said(alice, bob, "Yes! Meet at the trailhead at 9")
        clock.at(today)
        late = await said(bob, alice, "Running 10 min late, sorry 🙏")
        clock.at(today + MINUTE)
        await said(bob, alice, "Traffic on the bridge…")
        clock.at(today + 2 * MINUTE)
        coffee = await said(alice, bob, "No worries, I brought coffee ☕", reply_to=late.id)
        clock.at(today + 3 * MINUTE)
        photos = await said(alice, bob, "Photos from last time: https://example.com/hike 🏔️")
        await bob.mark_read(room)
        await alice.wait_for_status(photos.id, 3, 10)
        await bob.react(coffee.id, "❤️")
        await alice.react(hike.id, "👍")
        clock.at(today + 4 * 60 * MINUTE)  # 13:30
        events = alice.subscribe()
        family = await bob.send_text(
            alice.me, "Next time the whole family comes 👨‍👩‍👧 and my cousin from 🇫🇷 👍🏽"
        )
        await wait_for(events, lambda e: isinstance(e, MessageAdded) and e.message.id == family.id)
        await alice.mark_read(room, [m.id for m in await alice.history(room) if m.id != family.id])
        await bob.stop()
        clock.at(today + 4 * 60 * MINUTE + 10 * MINUTE)
        await alice.send_text(bob.me, "Sounds great! See you Sunday 🎉")
        # A stranger writes too: a contact request.
        await connected_pair(mallory, alice)
        clock.at(today + 4 * 60 * MINUTE + 20 * MINUTE)
        hi = await mallory.send_text(alice.me, "Hi, we met at the meetup [bold]remember[/]?")
        await wait_for(events, lambda e: isinstance(e, MessageAdded) and e.message.id == hi.id)
    finally:
        for n in (alice, mallory):
            await n.stop()
        if bob.db is not None:
            await bob.stop()


def record_conversation(monkeypatch: pytest.MonkeyPatch) -> None:
    """Alice's store: a chat with Bob over two days, and a request from Mallory."""
    clock = Clock(int(NOW * 1000))
    monkeypatch.setattr("p2pchat.node.service.now_ms", clock)
    asyncio.run(_record_conversation(clock))


async def wait_until(node: Node, check: Callable[[], Awaitable[bool]], within: float = 15) -> None:
    """Wait on ``node``'s events (never on time) until ``await check()`` is true."""
    events = node.subscribe()
    try:
        async with asyncio.timeout(within):
            while not await check():
                await events.get()
    finally:
        events.close()


async def _record_group(clock: Clock, folder: Path) -> None:
    alice, bob, carol = node("alice"), node("bob"), node("carol")
    for n in (alice, bob, carol):
        await n.start()
    try:
        for a, b in ((alice, bob), (alice, carol), (bob, carol)):
            await connected_pair(a, b)
            await a.accept(b.me)
            await b.accept(a.me)
        await alice.transfers.set_auto_accept_max(0)
        for n in (alice, bob, carol):  # never into the person's own Downloads
            await n.set_text_setting(
                "download_dir", str(folder / "downloads" / n.profile.display_name)
            )
        today = int(NOW * 1000) - 4 * 60 * MINUTE  # 10:30
        clock.at(today)
        room = await alice.groups.create_room("Hikers")
        for member in (bob, carol):
            events = member.subscribe()
            await alice.groups.invite(room, member.me)
            await wait_for(events, lambda e: isinstance(e, RoomInvitation) and e.room == room)
            events.close()
            clock.at(clock.ms + MINUTE)
            await member.groups.join(room)

            async def seen_joined(member: Node = member) -> bool:
                # The next invitation comes after this join (a fixed causal order).
                members = await alice.groups.members(room)
                return any(m.peer_id == member.me and m.state == "joined" for m in members)

            await wait_until(alice, seen_joined)

        async def everyone_joined() -> bool:
            return sum(m.state == "joined" for m in await alice.groups.members(room)) == 3

        await wait_until(alice, everyone_joined)
        clock.at(today + 10 * MINUTE)
        events = alice.subscribe()
        asked = await bob.send_message(room, "Who is in for Saturday? 🥾", None)
        await wait_for(events, lambda e: isinstance(e, MessageAdded) and e.message.id == asked.id)
        clock.at(today + 12 * MINUTE)
        answer = await alice.send_message(room, "Me! I will bring the map", None)

        async def receipts_in() -> bool:
            got = dict(await alice.groups.receipts(answer.id))
            return got.get(bob.me, 0) >= 2 and got.get(carol.me, 0) >= 2

        await wait_until(alice, receipts_in)
        await bob.mark_read(room, [answer.id])

        async def bob_read() -> bool:
            return dict(await alice.groups.receipts(answer.id)).get(bob.me, 0) >= 3

        await wait_until(alice, bob_read)
        picture = folder / "ridge.png"
        img = Image.new("RGB", (96, 64), (70, 130, 210))
        img.paste((250, 200, 40), (36, 12, 60, 36))
        img.paste((40, 120, 60), (0, 44, 96, 64))
        img.save(picture)
        clock.at(today + 14 * MINUTE)
        photo = await carol.transfers.send_file_to_room(room, picture)
        await wait_for(events, lambda e: isinstance(e, MessageAdded) and e.message.id == photo.id)
        await alice.mark_read(room, [m.id for m in await alice.history(room)])
    finally:
        for n in (alice, bob, carol):
            await n.stop()


def record_group(monkeypatch: pytest.MonkeyPatch, folder: Path) -> None:
    """Alice's store: the group "Hikers" with Bob and Carol, receipts, a photo offer."""
    clock = Clock(int(NOW * 1000))
    monkeypatch.setattr("p2pchat.node.service.now_ms", clock)
    monkeypatch.setattr("p2pchat.node.groups.now_ms", clock)
    monkeypatch.setattr("p2pchat.node.transfer.now_ms", clock)
    asyncio.run(_record_group(clock, folder))


def scene_app(name: str) -> ChatApp:
    """The app for profile ``name``, network off, clock frozen at NOW."""
    return ChatApp(
        node(name, network=False),
        serve_control=False,
        now=lambda: NOW,
        desktop=DesktopNotifier(enabled=False),
    )


__all__ = ["NOW", "NodeConfig", "record_conversation", "record_group", "scene_app", "utc"]
