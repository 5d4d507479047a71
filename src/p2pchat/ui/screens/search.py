"""Message search (ctrl+f, or the palette): type, see the messages found in context,
pick one to jump to it in its chat (issue 14, item 1).

Results come from the node's search (an FTS5 index, see ``store/search.py``). Every
piece of a result (room name, author, text) is shown through ``literal``: a peer's
``[bold]`` stays text here too. The found words are highlighted by position in the
plain text, never by building markup.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, OptionList, Static
from textual.widgets.option_list import Option

from p2pchat.node import NodeError, SearchHit, SearchPage
from p2pchat.timefmt import local_stamp
from p2pchat.ui.text import literal, one_line

Search = Callable[[str], Awaitable[SearchPage]]

#: Wait this long after the last key before searching (each key would be wasted work).
DEBOUNCE = 0.25
#: Characters of context shown before the first word found.
LEAD = 24
WIDTH = 200
HIGHLIGHT = "bold black on yellow"


class SearchScreen(ModalScreen[SearchHit | None]):
    """Dismisses with the chosen hit (to jump to), or None."""

    BINDINGS = [  # noqa: RUF012
        Binding("escape", "cancel", "Close"),
        Binding("down", "down", "Next", show=False),
        Binding("up", "up", "Previous", show=False),
    ]

    def __init__(self, search: Search, scope: str = "all chats", query: str = "") -> None:
        super().__init__()
        self.search = search
        self.scope = scope
        self.initial = query
        self.hits: list[SearchHit] = []
        self._timer: asyncio.TimerHandle | None = None

    def compose(self) -> ComposeResult:
        """Search box, a status line, the results."""
        with Vertical(classes="dialog picker search"):
            title = Text("Search ", "bold")
            title.append_text(literal(self.scope, "bold", multiline=False))
            yield Static(title, classes="dialog-title")
            yield Input(
                value=self.initial,
                placeholder="words or parts of words, any language",
                id="query",
            )
            yield Static("", id="status", classes="dialog-text")
            yield OptionList(id="results")

    def on_mount(self) -> None:
        """Focus the box; search at once when opened with a query."""
        self.query_one("#query", Input).focus()
        if self.initial.strip():
            self.run_search(self.initial)

    def on_input_changed(self, event: Input.Changed) -> None:
        """Search shortly after typing stops."""
        event.stop()
        if self._timer is not None:
            self._timer.cancel()
        loop = asyncio.get_running_loop()
        self._timer = loop.call_later(DEBOUNCE, self.run_search, event.value)

    def on_input_submitted(self, event: Input.Submitted) -> None:
        """Enter jumps to the highlighted result (or searches now if there is none)."""
        event.stop()
        results = self.query_one("#results", OptionList)
        if results.highlighted is not None and self.hits:
            self.dismiss(self.hits[results.highlighted])
        else:
            self.run_search(event.value)

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        """A click (or enter in the list) jumps to that message."""
        event.stop()
        if 0 <= event.option_index < len(self.hits):
            self.dismiss(self.hits[event.option_index])

    @work(exclusive=True, group="search", exit_on_error=False)
    async def run_search(self, query: str) -> None:
        """Search and show the results (a newer search replaces a running one)."""
        status = self.query_one("#status", Static)
        results = self.query_one("#results", OptionList)
        if not query.strip():
            self.hits = []
            results.clear_options()
            status.update("")
            return
        try:
            page = await self.search(query)
        except NodeError as exc:
            self.hits = []
            results.clear_options()
            status.update(literal(str(exc), "bold red", multiline=False))
            return
        self.hits = page.hits
        results.clear_options()
        results.add_options(_option(hit, query) for hit in page.hits)
        count = len(page.hits)
        note = Text(f"{count} message{'' if count == 1 else 's'} found" if count else "No match")
        if count:
            note.append(" · enter opens the chat there", "grey62")
        if page.resume_before is not None:
            note.append(
                " · words this short: only the newest messages were searched", "italic grey62"
            )
        status.update(note)
        if count:
            results.highlighted = 0

    def action_down(self) -> None:
        """Move the highlight while typing."""
        self.query_one("#results", OptionList).action_cursor_down()

    def action_up(self) -> None:
        """Move the highlight while typing."""
        self.query_one("#results", OptionList).action_cursor_up()

    def action_cancel(self) -> None:
        """Close without jumping."""
        if self._timer is not None:
            self._timer.cancel()
        self.dismiss(None)

    def on_unmount(self) -> None:
        """No search may fire after the screen is gone."""
        if self._timer is not None:
            with contextlib.suppress(Exception):
                self._timer.cancel()


def _option(hit: SearchHit, query: str) -> Option:
    """Two lines: where and who and when, then the text around the words found."""
    head = Text(end="")
    where = hit.room_name if hit.room_kind == "group" else f"with {hit.room_name}"
    head.append_text(literal(one_line(where, 40), "bold", multiline=False))
    head.append(" · ", "grey50")
    head.append_text(literal(one_line(hit.author_name, 40), "italic", multiline=False))
    head.append(f"  {local_stamp(hit.message.sent_at)}", "grey50")  # results span days
    head.append("\n")
    head.append_text(excerpt(hit.text, query))
    return Option(head)


def excerpt(text: str, query: str) -> Text:
    """One line of ``text`` starting a little before the first word found, with every
    occurrence of each word highlighted (by position, on plain text)."""
    flat = one_line(text, 10_000)
    folded = flat.casefold()
    words = [w.casefold() for w in query.split() if w]
    found = [i for i in (folded.find(w) for w in words) if i >= 0]
    start = max(0, min(found) - LEAD) if found else 0
    shown = flat[start : start + WIDTH]
    line = Text(("…" if start else "") + shown, end="")
    offset = 1 if start else 0
    lowered = shown.casefold()
    # casefold can change lengths (ß -> ss); highlight only where positions still agree.
    if len(lowered) == len(shown):
        for word in words:
            at = lowered.find(word)
            while at >= 0:
                line.stylize(HIGHLIGHT, offset + at, offset + at + len(word))
                at = lowered.find(word, at + len(word))
    return line


__all__ = ["SearchScreen", "excerpt"]
