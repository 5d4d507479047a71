"""Helpers for app tests: apps around in-process nodes, waiting on conditions, screen text."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from textual.pilot import Pilot

from p2pchat.node import Node
from p2pchat.ui.app import ChatApp
from p2pchat.ui.notify import DesktopNotifier
from p2pchat.ui.widgets.message_list import MessageList
from p2pchat.ui.widgets.message_rows import MessageRow
from p2pchat.ui.widgets.sidebar import Sidebar
from tests.nodes import connected_pair

WAIT = 15.0
SIZE = (100, 30)


async def befriend(a: Node, b: Node) -> None:
    """Connect and make each a contact of the other."""
    await connected_pair(a, b)
    await a.accept(b.me)
    await b.accept(a.me)


def app_for(node: Node, **kwargs: object) -> ChatApp:
    """An app showing an already started node (the test stops it), no desktop pop-ups."""
    kwargs.setdefault("owns_node", False)
    kwargs.setdefault("serve_control", False)
    return ChatApp(node, desktop=DesktopNotifier(enabled=False), **kwargs)  # type: ignore[arg-type]


async def until(pilot: Pilot[int], check: Callable[[], object], within: float = WAIT) -> None:
    """Let the app run until ``check()`` is true; fail after ``within`` seconds."""
    async with asyncio.timeout(within):
        while not check():
            await pilot.pause(0.02)


def screen_text(app: ChatApp) -> str:
    """What the terminal would show now, as plain text."""
    strips = app.screen._compositor.render_strips()
    return "\n".join(strip.text for strip in strips)


def items(app: ChatApp) -> list[MessageRow]:
    """Messages held by the open conversation's list, oldest first."""
    return app.chat.query_one(MessageList).message_rows()


def sidebar(app: ChatApp) -> Sidebar:
    """The chat list."""
    return app.chat.query_one(Sidebar)


async def open_chat_with(pilot: Pilot[int], app: ChatApp, peer: bytes) -> None:
    """Open the conversation with ``peer`` from the sidebar, as a person would."""
    bar = sidebar(app)
    await until(pilot, lambda: any(e.peer_id == peer for e in bar.entries.values()))
    key = next(k for k, e in bar.entries.items() if e.peer_id == peer)
    bar.focus()
    bar.select_key(key)
    await pilot.press("enter")
    listing = app.chat.query_one(MessageList)
    await until(pilot, lambda: app.chat.peer == peer and listing.loaded)
    await pilot.pause()


def file_state(app: ChatApp, index: int = -1) -> str:
    """The transfer state the file card of message ``index`` shows ("" when none)."""
    shown = items(app)
    if not shown or shown[index].view.file is None:
        return ""
    card = shown[index].view.file
    return card.state if card is not None else ""
