"""The list of conversations: contact requests, chats, and people nearby.

Entries are rebuilt from the node (``list_rooms``/``list_peers``) whenever something
changes; the highlighted entry survives a rebuild. Names are peer-chosen: every label
is built with ``text.literal``.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from rich.text import Text
from textual.message import Message as TextualMessage
from textual.widgets import OptionList
from textual.widgets.option_list import Option

from p2pchat.node import Node, PeerInfo, RoomInfo
from p2pchat.node.links import is_tor_host
from p2pchat.ui.markup import render as render_markup
from p2pchat.ui.text import literal, one_line

UNREAD_CAP = 999


@dataclass(frozen=True)
class Entry:
    """One line of the sidebar: an existing room, or a peer to start a chat with."""

    key: str
    name: str
    peer_id: bytes | None
    room_id: bytes | None
    state: str
    online: bool
    unread: int
    verified: bool
    preview: str = ""
    typing: bool = False
    group: bool = False
    #: No notifications; its unread badge is grey (node/chats.py).
    muted: bool = False


Sections = tuple[list[Entry], list[Entry], list[Entry], list[PeerInfo]]


async def load_entries(node: Node) -> Sections:
    """(requests, chats, nearby, every known peer) as the sidebar shows them."""
    rooms: list[RoomInfo] = await node.list_rooms()
    peers: list[PeerInfo] = await node.list_peers()
    by_id = {p.peer_id: p for p in peers}
    requests: list[Entry] = []
    chats: list[Entry] = []
    with_room: set[bytes] = set()
    for room in rooms:
        info = by_id.get(room.peer_id) if room.peer_id else None
        state = info.state if info else "contact"
        if room.peer_id:
            with_room.add(room.peer_id)
        if state == "blocked" or room.archived:
            continue  # an archived chat returns with its next message
        last = room.last_message
        preview = ""
        if last is not None:
            who = "You: " if last.author == node.me else ""
            if not who and room.kind == "group" and last.kind != "system":
                who = one_line(node.peer_name(last.author), 20) + ": "
            text = node.display_text(last)
            if last.kind == "text":  # as the chat shows it: "**bold**" without asterisks
                text = render_markup(text).plain
            preview = who + one_line(text, 60)
        entry = Entry(
            key="room:" + room.room_id.hex(),
            name=room.name,
            peer_id=room.peer_id,
            room_id=room.room_id,
            state=state,
            online=room.online,
            unread=room.unread,
            verified=bool(info and info.verified),
            preview=preview,
            group=room.kind == "group",
            muted=room.muted,
        )
        (requests if state == "request" else chats).append(entry)

    def presence(p: PeerInfo) -> str:
        if not p.online:
            return ""
        return "through Tor" if p.address and is_tor_host(p.address) else "on your network"

    nearby = [
        Entry(
            key="peer:" + p.peer_id.hex(),
            name=node.peer_name(p.peer_id),
            peer_id=p.peer_id,
            room_id=None,
            state=p.state,
            online=p.online,
            unread=0,
            verified=p.verified,
            preview=presence(p),
        )
        for p in peers
        if p.peer_id not in with_room
        and p.state != "blocked"
        and (p.online or p.state == "contact")
    ]
    return requests, chats, nearby, peers


def entry_label(entry: Entry, width: int = 22) -> Text:
    """Two lines: ``● Name ✔  3`` and a preview (or ``typing…``), each cut to ``width``."""
    if entry.group:
        dot = Text("# ", "bold bright_green" if entry.online else "bold grey50")
    else:
        dot = Text("● ", "bright_green") if entry.online else Text("○ ", "grey50")
    badge = Text(end="")
    if entry.verified:
        badge.append(" ✔", "green")
    if entry.unread:
        count = f"{UNREAD_CAP}+" if entry.unread >= UNREAD_CAP else str(entry.unread)
        badge.append(" ")
        badge.append(
            f" {count} ", "bold black on grey50" if entry.muted else "bold black on bright_yellow"
        )
    name = literal(entry.name, "bold" if entry.unread else "", multiline=False)
    name.truncate(max(4, width - 2 - badge.cell_len), overflow="ellipsis")
    line = Text(end="")
    line.append_text(dot)
    line.append_text(name)
    line.append_text(badge)
    sub = "typing…" if entry.typing else entry.preview
    if sub:
        second = literal("  " + sub, "italic bright_green" if entry.typing else "grey62")
        second.truncate(width, overflow="ellipsis")
        line.append("\n")
        line.append_text(second)
    return line


class Sidebar(OptionList):
    """Rooms and people; enter or click opens one."""

    class Opened(TextualMessage):
        """The person chose ``entry``."""

        def __init__(self, entry: Entry) -> None:
            super().__init__()
            self.entry = entry

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.entries: dict[str, Entry] = {}
        self.typing: set[bytes] = set()  # rooms where someone types
        self.invited: set[bytes] = set()  # groups we are invited to (not answered yet)
        self._shape: list[object] = []  # what the options were built for (see ``show``)
        self.border_title = "Chats"

    def show(
        self,
        requests: list[Entry],
        chats: list[Entry],
        nearby: list[Entry],
        held_back: int = 0,
    ) -> None:
        """Show these entries, keeping the highlighted one highlighted.

        ``held_back``: contact requests that made way for newer ones (too many at once),
        shown in the requests' heading so the person knows some were not kept.

        When the same entries are listed in the same order at the same width (a new
        message in a chat, a name, presence), only the entries that changed get a new
        label; the list is rebuilt only when its shape changed.
        """
        entries: dict[str, Entry] = {}
        shape: list[object] = [self._label_width(), held_back]
        for title, listed in (("requests", requests), ("chats", chats), ("nearby", nearby)):
            shape.append(title)
            for one in listed:
                entry = replace(one, typing=one.room_id in self.typing)
                if entry.room_id in self.invited:
                    entry = replace(entry, preview="you are invited")
                entries[entry.key] = entry
                shape.append(entry.key)
        if shape == self._shape:
            changed = [e for key, e in entries.items() if self.entries.get(key) != e]
            self.entries = entries
            for entry in changed:
                self.replace_option_prompt(entry.key, entry_label(entry, self._label_width()))
            return
        self._shape = shape
        self._rebuild(entries, [requests, chats, nearby], held_back)

    def _rebuild(self, entries: dict[str, Entry], sections: list[list[Entry]], held: int) -> None:
        """All options anew, in sections with headings."""
        current = self.highlighted_key
        self.entries = entries
        options: list[Option | None] = []
        titles = ("Contact requests", "Chats", "Nearby")
        for title, listed in zip(titles, sections, strict=True):
            if not listed:
                continue
            if options:
                options.append(None)
            options.append(Option(Text(title.upper(), "bold grey70"), disabled=True))
            if title == titles[0] and held:
                held_text = Text(f"+{held} held back", "italic bright_yellow")
                options.append(Option(held_text, disabled=True))
            for one in listed:
                entry = entries[one.key]
                options.append(Option(entry_label(entry, self._label_width()), id=entry.key))
        if not self.entries:
            options.append(
                Option(
                    Text(
                        "No one here yet.\nPeople running p2pchat on your network appear "
                        "here; or use ctrl+p → Connect to an address.",
                        "grey62",
                    ),
                    disabled=True,
                )
            )
        self.clear_options()
        self.add_options(options)
        if current in self.entries:
            self.highlighted = self.get_option_index(current)
        elif self.entries:
            self.highlighted = self.get_option_index(next(iter(self.entries)))

    def _label_width(self) -> int:
        width = self.scrollable_content_region.width
        return max(10, width - 2) if width else 22

    @property
    def highlighted_key(self) -> str | None:
        """The key of the highlighted entry."""
        if self.highlighted is None or self.option_count == 0:
            return None
        return self.get_option_at_index(self.highlighted).id

    def select_key(self, key: str) -> None:
        """Highlight ``key`` if it is listed."""
        if key in self.entries:
            self.highlighted = self.get_option_index(key)

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        """Open the chosen entry."""
        event.stop()
        entry = self.entries.get(event.option.id or "")
        if entry is not None:
            self.post_message(self.Opened(entry))
