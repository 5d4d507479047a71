"""A yes/no question (send this pasted file? leave this group?)."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Static


class ConfirmScreen(ModalScreen[bool | None]):
    """Dismisses with True (the first button, or enter), False (the second) or None
    (escape: cancelled, neither answer; "Paste as text" must not happen on escape)."""

    BINDINGS = [Binding("escape", "no", "Cancel")]  # noqa: RUF012

    def __init__(self, title: str, question: Text, yes: str = "OK", no: str = "Cancel") -> None:
        super().__init__()
        self.title_text = title
        self.question = question
        self.yes = yes
        self.no = no

    def compose(self) -> ComposeResult:
        """Title, question, two buttons."""
        with Vertical(classes="dialog"):
            yield Static(Text(self.title_text, "bold"), classes="dialog-title")
            yield Static(self.question, classes="dialog-text")
            with Horizontal(classes="buttons"):
                yield Button(self.yes, variant="primary", id="yes")
                yield Button(self.no, id="no")

    def on_mount(self) -> None:
        """Enter answers yes."""
        self.query_one("#yes", Button).focus()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        """Yes or no."""
        event.stop()
        self.dismiss(event.button.id == "yes")

    def action_no(self) -> None:
        """Escape: cancel."""
        self.dismiss(None)
