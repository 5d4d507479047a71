"""The members panel of a group room: who is in it, their role, online or not.

Names are chosen by the members themselves: every line is built with ``text.literal``.
"""

from __future__ import annotations

from rich.text import Text
from textual.widgets import Static

from p2pchat.node import MemberInfo
from p2pchat.ui.text import literal

STATE_WORDS = {"invited": "invited", "left": "left", "removed": "removed"}


def members_text(members: list[MemberInfo], me: bytes, width: int = 22) -> Text:
    """One line per member: ``● Name`` and, below, role and state."""
    joined = sum(1 for m in members if m.state == "joined")
    online = sum(1 for m in members if m.state == "joined" and m.online)
    plural = "member" if joined == 1 else "members"
    out = Text(f"{joined} {plural} · {online} online\n", "bold", end="")
    for m in members:
        current = m.state == "joined"
        dot = ("● ", "bright_green") if current and m.online else ("○ ", "grey50")
        out.append("\n")
        out.append(*dot)
        name = literal(
            m.name + (" (you)" if m.peer_id == me else ""),
            "" if current else "grey50",
            multiline=False,
        )
        name.truncate(max(4, width - 2), overflow="ellipsis")
        out.append_text(name)
        facts = []
        if m.role in ("owner", "admin"):
            facts.append(m.role)
        if not current:
            facts.append(STATE_WORDS.get(m.state, m.state))
        elif m.peer_id != me:
            facts.append("online" if m.online else "offline")
        if facts:
            out.append("\n  " + " · ".join(facts), "grey62")
    return out


class MembersPanel(Static):
    """Right-hand panel listing a group's members (f5 shows and hides it)."""

    def show_members(self, members: list[MemberInfo], me: bytes) -> None:
        """Redraw for ``members``."""
        width = self.scrollable_content_region.width or 22
        self.update(members_text(members, me, width))
