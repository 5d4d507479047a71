"""The app's side of search and chat management (issue 14, items 1 and 5): ctrl+f, the
palette entries, and jumping to a message found.

Kept out of ``app.py`` and ``screens/chat.py`` (which only call in here), so those stay
small. Everything goes through the node's ``chats`` service, as the CLI does.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from rich.text import Text

from p2pchat.node import NodeError, SearchHit, StoreError
from p2pchat.node.sticker_body import KIND_STICKER, StickerError, decode_sticker
from p2pchat.ui.commands import safe_title
from p2pchat.ui.screens.confirm import ConfirmScreen
from p2pchat.ui.screens.prompt import PromptScreen
from p2pchat.ui.screens.search import SearchScreen
from p2pchat.ui.text import literal
from p2pchat.ui.widgets.message_list import MessageList

if TYPE_CHECKING:
    from textual.notifications import SeverityLevel
    from textual.screen import Screen

    from p2pchat.node import Node
    from p2pchat.ui.commands import Command
    from p2pchat.ui.screens.chat import ChatScreen


class ChatApp(Protocol):
    """What these commands need of the app (``ui.app.ChatApp``, which imports this module)."""

    @property
    def node(self) -> Node: ...

    @property
    def chat(self) -> ChatScreen: ...

    def notify(
        self,
        message: str,
        *,
        title: str = ...,
        severity: SeverityLevel = ...,
        timeout: float | None = ...,
        markup: bool = ...,
    ) -> None: ...

    def run_worker(
        self, work: Coroutine[Any, Any, None], *, exit_on_error: bool = ...
    ) -> object: ...

    def push_screen(
        self, screen: Screen[Any], callback: Callable[[Any], Any] | None = ...
    ) -> Any: ...


#: Pages of older messages loaded at most while looking for a message to jump to.
MAX_JUMP_PAGES = 100
EXPORT_FORMATS = (("md", "Markdown"), ("json", "JSON"), ("html", "HTML with its pictures"))


def open_search(app: ChatApp, room: bytes | None = None, scope: str = "all chats") -> None:
    """Show the search screen; a chosen result opens its chat at that message."""
    search = functools.partial(app.node.chats.search, room=room)

    async def chosen(hit: SearchHit | None) -> None:
        if hit is not None:
            await jump_to(app.chat, hit)

    app.push_screen(SearchScreen(search, scope), chosen)


async def jump_to(chat: ChatScreen, hit: SearchHit) -> bool:
    """Open the hit's chat and bring its message into view, selected; False if it lies
    further back than MAX_JUMP_PAGES pages (the person is told to scroll)."""
    message = hit.message
    if chat.room != message.room:
        await chat.open_room(message.room)
    listing = chat.query_one(MessageList)
    for _ in range(MAX_JUMP_PAGES):
        item = listing.items.get(message.id)
        if item is not None:
            break
        if not listing.has_more:
            break
        await listing.load_older().wait()
    item = listing.items.get(message.id)
    if item is None:
        chat.app.notify("That message is far back in this chat: scroll up to reach it.", timeout=5)
        return False
    listing.release_anchor()
    listing.select(item)  # scrolled into view, selected, the list focused
    # Opening the chat may have queued a scroll to its end for after the next refresh;
    # bring the message back into view once that has run.
    listing.call_after_refresh(listing.select, item)
    return True


def commands(app: ChatApp) -> list[Command]:
    """Palette entries: search always; mute, archive, export, delete for the open chat."""
    chat = app.chat
    cmds: list[Command] = [
        ("Search messages", "In every chat and group (ctrl+f)", functools.partial(open_search, app))
    ]
    room = chat.room
    if room is None:
        return cmds
    entry = next((e for e in chat.entries() if e.room_id == room), None)
    name = safe_title(entry.name if entry else chat.room_name or "this chat")
    cmds.append(
        (
            f"Search in {name}",
            "Only this conversation",
            functools.partial(open_search, app, room, f"in {name}"),
        )
    )
    muted = bool(entry and entry.muted)
    cmds.append(
        (f"Unmute {name}", "Notifications again", functools.partial(_set_muted, app, room, False))
        if muted
        else (
            f"Mute {name}",
            "No notifications; unread still counted",
            functools.partial(_set_muted, app, room, True),
        )
    )
    cmds.append(
        (
            f"Archive {name}",
            "Out of the chat list until a new message",
            functools.partial(_archive, app, room),
        )
    )
    for fmt, label in EXPORT_FORMATS:
        cmds.append(
            (
                f"Export {name} as {label}",
                "Write the whole conversation to a file",
                functools.partial(_ask_export, app, room, fmt, name),
            )
        )
    cmds.append(
        (
            f"Delete {name} from this computer",
            "Its messages go from your store only; a group is left first",
            functools.partial(_ask_delete, app, room, name),
        )
    )
    return cmds


def _set_muted(app: ChatApp, room: bytes, muted: bool) -> None:
    async def go() -> None:
        await app.node.chats.set_muted(room, muted)
        app.notify("Muted: no notifications from this chat" if muted else "Unmuted", timeout=3)
        await app.chat.reload_sidebar()

    app.run_worker(_reporting(app, go()), exit_on_error=False)


def _archive(app: ChatApp, room: bytes) -> None:
    async def go() -> None:
        await app.node.chats.set_archived(room, True)
        app.notify("Archived: it comes back when a new message arrives", timeout=4)
        await app.chat.reload_sidebar()

    app.run_worker(_reporting(app, go()), exit_on_error=False)


def _ask_export(app: ChatApp, room: bytes, fmt: str, name: str) -> None:
    suggested = Path.home() / f"{_file_stem(name)}.{fmt}"

    async def done(answer: str | None) -> None:
        if not answer:
            return
        path = _export_path(answer)
        try:
            result = await app.node.chats.export(room, fmt, path)
        except (NodeError, StoreError, OSError) as exc:
            app.notify(str(exc), title="Not exported", severity="error", markup=False)
            return
        pictures = f" and {result.pictures} picture(s)" if result.pictures else ""
        app.notify(
            f"Wrote {result.messages} message(s){pictures} to {result.path}",
            markup=False,
            timeout=6,
        )

    app.push_screen(
        PromptScreen(
            "Export this chat",
            "Where to write it (readable by you only). An existing file is never replaced.",
            value=str(suggested),
            placeholder="a file path",
            ok="Export",
        ),
        done,
    )


def _export_path(answer: str) -> Path:
    """The path typed, with ``~`` expanded; relative to the home folder."""
    path = Path(answer).expanduser()
    return path if path.is_absolute() else Path.home() / path


def _file_stem(name: str) -> str:
    """A file name from a chat's name: letters, digits, ``-`` and ``_`` only."""
    stem = "".join(c if c.isalnum() or c in "-_" else "-" for c in name).strip("-")
    return f"p2pchat-{stem[:40] or 'chat'}"


def _ask_delete(app: ChatApp, room: bytes, name: str) -> None:
    question = Text("Delete every message of ")
    question.append_text(literal(name, "bold", multiline=False))
    question.append(
        " from this computer? The others keep theirs. A group is left first: you need a "
        "new invitation to come back."
    )

    async def done(yes: bool | None) -> None:
        if not yes:
            return
        try:
            removed = await app.node.chats.delete_locally(room)
        except (NodeError, StoreError) as exc:
            app.notify(str(exc), title="Not deleted", severity="error", markup=False)
            return
        app.notify(f"Deleted {removed} message(s) from this computer", timeout=4)
        chat = app.chat
        await chat.reload_sidebar()
        if chat.room != room:
            return
        if any(r.room_id == room for r in await app.node.list_rooms()):
            await chat.open_room(room)  # a direct chat stays, empty
            return
        other = next((e.room_id for e in chat.entries() if e.room_id is not None), None)
        if other is not None:
            await chat.open_room(other)
        else:
            await chat.query_one(MessageList).show_room(None)

    app.push_screen(ConfirmScreen("Delete this chat?", question, "Delete", "Keep"), done)


async def _reporting(app: ChatApp, coro: Coroutine[Any, Any, None]) -> None:
    try:
        await coro
    except (NodeError, StoreError) as exc:
        app.notify(str(exc), severity="error", markup=False)


__all__ = ["commands", "jump_to", "open_search"]


def sticker_commands(app: ChatApp) -> list[Command]:
    """ "Install this sticker's pack", when the selected message is someone's sticker."""
    item = app.chat.selected_item()
    if item is None or item.message.kind != KIND_STICKER or item.message.author == app.node.me:
        return []
    try:
        pack = decode_sticker(item.message.body).pack  # plain ASCII (checked)
    except StickerError:
        return []
    author = item.message.author

    def install() -> None:
        app.chat.run_node(
            app.node.stickers.install(pack, author), f"The pack {pack} is now one of yours"
        )

    return [(f"Install the sticker pack {pack}", "Add the stickers you got to your packs", install)]
