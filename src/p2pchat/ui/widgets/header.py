"""The conversation header: who, whether they are online or typing, verified or not."""

from __future__ import annotations

from rich.text import Text
from textual.widgets import Static

from p2pchat.node import MemberInfo, PeerInfo
from p2pchat.node.links import is_tor_host
from p2pchat.ui.format import last_seen
from p2pchat.ui.text import literal


def header_text(name: str, info: PeerInfo | None, typing: bool, now_ms: int) -> Text:
    """Two lines: name and badge; presence and short id."""
    line = literal(name, "bold", multiline=False)
    if info is not None and info.verified:
        line.append("  ✔ verified", "bold green")
    elif info is not None:
        line.append("  ⚠ not verified (f3)", "yellow")
    if info is not None and info.state == "request":
        line.append("  · contact request", "bold bright_yellow")
    elif info is not None and info.state == "blocked":
        line.append("  · blocked", "bold red")
    line.append("\n")
    if typing:
        line.append("typing…", "italic bright_green")
    elif info is not None and info.online:
        line.append("● online", "bright_green")
        if info.address is not None and is_tor_host(info.address):
            line.append(" through Tor (files are slower)", "magenta")
    else:
        line.append("○ " + last_seen(info.last_seen if info else None, now_ms), "grey62")
    if info is not None:
        line.append(f"   {info.peer_id_text[:8]}", "grey50")
    return line


def group_text(name: str, members: list[MemberInfo], typing: list[str]) -> Text:
    """Two lines: the group's name; members (online first) or who is typing."""
    line = literal(name or "Group", "bold", multiline=False)
    joined = [m for m in members if m.state == "joined"]
    line.append(f"  · group of {len(joined)}", "grey62")
    line.append("\n")
    if typing:
        line.append_text(literal(", ".join(typing), "italic bright_green", multiline=False))
        line.append(" typing…", "italic bright_green")
        return line
    online = sum(1 for m in joined if m.online)
    line.append(f"{online} online", "bright_green" if online else "grey62")
    names = ", ".join(m.name for m in sorted(joined, key=lambda m: not m.online))
    line.append("  ")
    line.append_text(literal(names, "grey62", multiline=False))
    return line


class ConversationHeader(Static):
    """Name, presence and verification of the open conversation."""

    def show(self, name: str, info: PeerInfo | None, typing: bool, now_ms: int) -> None:
        """Redraw for the given state."""
        self.update(header_text(name, info, typing, now_ms))

    def show_group(self, name: str, members: list[MemberInfo], typing: list[str]) -> None:
        """Redraw for a group room: its name, who is in it, who types."""
        self.update(group_text(name, members, typing))
