"""The app's first frame while its node is still being built (see ``ui/launch.py``).

The same frame as the chat screen (top bar, chat list, conversation area, footer, with
the same ids, so the same styles), saying that the chats are being opened. It imports
only Textual: the point is to be on screen before the node's modules have loaded.
"""

from __future__ import annotations

from rich.style import Style
from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.screen import Screen
from textual.widgets import Footer, Static

OPENING = "Opening your chats…"
# Style objects, not names: Textual reads a style name as one of its colours first, and
# a Rich-only name ("grey62") costs a did-you-mean search on the way to the first frame.
_TITLE = Style(bold=True, color="bright_cyan")
_DIM = Style(color="grey62")
_BOLD = Style(bold=True)


class ShellScreen(Screen[None]):
    """The chat screen's frame, empty, with a clear "opening" state."""

    def compose(self) -> ComposeResult:
        """Top bar, chat list | conversation, footer: the chat screen's layout."""
        yield Static(
            Text.assemble(("p2pchat", _TITLE), ("  ·  starting…", _DIM)),
            id="topbar",
        )
        with Horizontal(id="main"):
            yield Static(Text("  Chats", _BOLD + _DIM), id="sidebar")
            with Vertical(id="conversation"):
                yield Static(Text(OPENING, _BOLD), id="empty")
        yield Footer(compact=True)
