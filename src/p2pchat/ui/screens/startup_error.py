"""Shown instead of the chat when the node cannot start (port taken, profile in use)."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import Screen
from textual.widgets import Footer, Static


class StartupErrorScreen(Screen[None]):
    """A clear explanation and a way out; never a traceback."""

    BINDINGS = [  # noqa: RUF012
        Binding("q,escape,enter", "app.quit", "Quit"),
    ]

    def __init__(self, reason: str) -> None:
        super().__init__()
        self.reason = reason

    def compose(self) -> ComposeResult:
        """The problem, what to do about it, and the quit key."""
        with Vertical(classes="dialog error-dialog"):
            yield Static(Text("p2pchat could not start", "bold red"), classes="dialog-title")
            yield Static(Text(self.reason), id="reason", classes="dialog-text")
            yield Static(Text("Press q or ctrl+q to quit.", "grey62"), classes="dialog-text")
        yield Footer()
