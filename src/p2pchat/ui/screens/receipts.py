"""Who of a group has one of your messages: read, delivered, or not yet."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Button, Static

from p2pchat.node import MessageStatus
from p2pchat.ui.format import tick
from p2pchat.ui.text import literal

WORDS: dict[int, str] = {
    int(MessageStatus.READ): "read",
    int(MessageStatus.DELIVERED): "delivered",
}


def receipts_text(rows: list[tuple[str, int]]) -> Text:
    """One line per member, read first: ``✔✔ Bob  read``."""
    out = Text(end="")
    ordered = sorted(rows, key=lambda r: (-r[1], r[0].casefold()))
    for i, (name, status) in enumerate(ordered):
        if i:
            out.append("\n")
        mark = tick(status) if status >= MessageStatus.DELIVERED else Text("·", "grey50")
        mark.pad_right(3 - mark.cell_len)
        out.append_text(mark)
        out.append_text(literal(name, "bold", multiline=False))
        out.append("  " + WORDS.get(status, "not yet"), "grey62")
    if not rows:
        out.append("Nobody else is in this group.", "grey62")
    return out


class ReceiptsScreen(ModalScreen[None]):
    """A small list of the members and how far this message got with each."""

    BINDINGS = [Binding("escape,i,q", "close", "Close")]  # noqa: RUF012

    def __init__(self, summary: str, rows: list[tuple[str, int]]) -> None:
        super().__init__()
        self.summary = summary
        self.rows = rows

    def compose(self) -> ComposeResult:
        """Title, the list, Close."""
        with Vertical(classes="dialog receipts"):
            yield Static(Text(self.summary or "Your message", "bold"), classes="dialog-title")
            with VerticalScroll(id="receipts-body"):
                yield Static(receipts_text(self.rows), id="receipts-list")
            with Horizontal(classes="buttons"):
                yield Button("Close", id="close", compact=True)

    def on_button_pressed(self, event: Button.Pressed) -> None:
        """Close."""
        event.stop()
        self.dismiss(None)

    def action_close(self) -> None:
        """Close the list."""
        self.dismiss(None)
