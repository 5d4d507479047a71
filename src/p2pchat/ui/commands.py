"""The command palette (ctrl+p): every action of the app, plus one entry per chat.

Textual's built-in commands stay (``COMMANDS = App.COMMANDS | {ChatCommands}``). Peer
names appear in command titles, so titles are built as plain ``Content`` (Textual's
fuzzy highlighter would parse them as markup).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from textual.command import DiscoveryHit, Hit, Hits, Provider
from textual.content import Content

from p2pchat.ui.text import one_line

Command = tuple[str, str, Callable[[], Any]]


class ChatCommands(Provider):
    """Commands from the app's ``palette_commands()``, which depend on what is open."""

    def _commands(self) -> list[Command]:
        source = getattr(self.app, "palette_commands", None)
        return list(source()) if callable(source) else []

    def _content(self, title: str, query: str = "") -> Content:
        content = Content(title)
        if query:
            matcher = self.matcher(query)
            _, offsets = matcher.fuzzy_search.match(query, title)
            for offset in offsets:
                content = content.stylize(self.match_style or "bold", offset, offset + 1)
        return content

    async def discover(self) -> Hits:
        """All commands, for an empty palette."""
        for title, help_text, callback in self._commands():
            yield DiscoveryHit(self._content(title), callback, text=title, help=help_text)

    async def search(self, query: str) -> Hits:
        """Commands matching ``query`` (fuzzy)."""
        matcher = self.matcher(query)
        for title, help_text, callback in self._commands():
            score = matcher.match(title)
            if score > 0:
                yield Hit(score, self._content(title, query), callback, text=title, help=help_text)


def safe_title(text: str) -> str:
    """A peer name fit for a command title (one line, no control characters)."""
    return one_line(text, 60)
