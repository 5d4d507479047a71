"""Compare safety numbers with a contact and mark them verified.

The 60-digit number is derived from both ids; if both people see the same digits (read
aloud, or side by side), nobody sits in the middle. The number is also drawn as a QR
code when the terminal is tall enough to show it whole: ``segno`` encodes it (a
maintained, standard-conformant encoder, including the mask penalty rules) and this
module only draws its modules with half blocks.
"""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Static

from p2pchat.ui.text import literal

GROUP = 5
PER_ROW = 4
# The dialog with a QR code (15 rows of half blocks) needs about this many rows.
QR_MIN_HEIGHT = 36
#: Light modules around the code; scanners want some, and the dialog is small.
QR_QUIET = 2
_HALF_BLOCKS = {(True, True): "█", (True, False): "▀", (False, True): "▄", (False, False): " "}


def qr_lines(number: str) -> list[str]:
    """The safety number as QR half blocks: a glyph's ink is a dark module.

    Numeric mode, error level M: the 60 digits fit version 2 (25x25 modules, 15 text
    rows with the quiet zone), small enough for the dialog and easy for a phone.
    """
    import segno  # only when a safety number is shown: not at start-up

    code = segno.make_qr("".join(number.split()), error="m", boost_error=False)
    rows = [[bool(m) for m in row] for row in code.matrix_iter(scale=1, border=QR_QUIET)]
    if len(rows) % 2:
        rows.append([False] * len(rows[0]))
    return [
        "".join(_HALF_BLOCKS[top, bottom] for top, bottom in zip(upper, lower, strict=True))
        for upper, lower in zip(rows[::2], rows[1::2], strict=True)
    ]


def qr_text(number: str) -> Text:
    """The safety number's digits as a QR code, dark (black ink) on light (white)."""
    return Text("\n".join(qr_lines(number)), style="black on white", end="")


def safety_rows(number: str) -> list[str]:
    """60 digits as three rows of four groups of five."""
    digits = "".join(number.split())
    groups = [digits[i : i + GROUP] for i in range(0, len(digits), GROUP)]
    return ["  ".join(groups[i : i + PER_ROW]) for i in range(0, len(groups), PER_ROW)]


class VerifyScreen(ModalScreen[bool | None]):
    """Dismisses with the new verified state, or None when closed unchanged."""

    BINDINGS = [  # noqa: RUF012
        Binding("escape", "close", "Close"),
        Binding("v", "verify", "Mark verified"),
    ]

    def __init__(self, name: str, their_id: str, my_id: str, number: str, verified: bool) -> None:
        super().__init__()
        self.peer_name = name
        self.their_id = their_id
        self.my_id = my_id
        self.number = number
        self.verified = verified

    def compose(self) -> ComposeResult:
        """Who, the number, the ids, and the buttons."""
        title = Text("Verify ", "bold").append_text(
            literal(self.peer_name, "bold", multiline=False)
        )
        status = (
            Text("✔ You marked this contact as verified.", "bold green")
            if self.verified
            else Text("⚠ Not verified yet.", "bold yellow")
        )
        digits = Text("\n".join(safety_rows(self.number)), "bold bright_white")
        ids = Text.assemble(
            ("Their id  ", "grey62"),
            literal(self.their_id, multiline=False),
            ("\nYour id   ", "grey62"),
            self.my_id,
        )
        with Vertical(classes="dialog verify"):
            yield Static(title, classes="dialog-title")
            yield Static(status, id="verify-status")
            yield Static(
                Text(
                    "Compare this number with the one on their screen (in person or on a "
                    "call). If every digit matches, nobody is listening in between."
                ),
                classes="dialog-text",
            )
            if self.app.size.height >= QR_MIN_HEIGHT:
                with Horizontal(id="safety-row"):
                    yield Static(digits, id="safety-number")
                    yield Static(qr_text(self.number), id="safety-qr")
            else:
                yield Static(digits, id="safety-number")
            yield Static(ids, id="ids")
            with Horizontal(classes="buttons"):
                if self.verified:
                    yield Button("Mark as not verified", variant="warning", id="unverify")
                else:
                    yield Button("Numbers match: mark verified", variant="success", id="verify")
                yield Button("Close", id="close")

    def on_mount(self) -> None:
        """Focus Close: enter out of habit must never mark anyone verified unchecked."""
        self.query_one("#close", Button).focus()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        """Verify, unverify or close."""
        event.stop()
        if event.button.id == "verify":
            self.dismiss(True)
        elif event.button.id == "unverify":
            self.dismiss(False)
        else:
            self.dismiss(None)

    def action_verify(self) -> None:
        """Mark verified (the v key)."""
        self.dismiss(True)

    def action_close(self) -> None:
        """Close without changes."""
        self.dismiss(None)
