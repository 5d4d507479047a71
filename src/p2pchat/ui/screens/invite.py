"""Your invite code, for someone never met on the LAN: as text and as a QR code.

The code (peer id + onion address + check, ``wire/invite.py``) is read aloud, pasted,
or scanned from this screen with a phone. It is encoded by ``segno`` in alphanumeric
mode (upper case: the code is case-insensitive) and drawn with half blocks, as on the
verification screen. Tor's state is shown with it: a code works only while tor runs.
"""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Static

# The dialog with the QR code (about 25 rows of half blocks) needs this many rows.
QR_MIN_HEIGHT = 40
_HALF_BLOCKS = {(True, True): "█", (True, False): "▀", (False, True): "▄", (False, False): " "}


def invite_qr_lines(code: str) -> list[str]:
    """``code`` as QR half blocks (error level M; about 45 columns, 23 rows)."""
    import segno  # imported when the invite is shown, not at start-up

    from p2pchat.ui.screens.verify import QR_QUIET

    qr = segno.make_qr(code.upper(), error="m", boost_error=False)
    rows = [[bool(m) for m in row] for row in qr.matrix_iter(scale=1, border=QR_QUIET)]
    if len(rows) % 2:
        rows.append([False] * len(rows[0]))
    return [
        "".join(_HALF_BLOCKS[top, bottom] for top, bottom in zip(upper, lower, strict=True))
        for upper, lower in zip(rows[::2], rows[1::2], strict=True)
    ]


def tor_line(state: str, percent: int, enabled: bool) -> Text:
    """Tor's state in a few words, coloured by how usable the code is now."""
    if not enabled:
        return Text("Tor is off: this code works once you turn Tor on (f2, settings).", "yellow")
    if state == "ready":
        return Text("Tor is ready: your contacts can reach you at this code.", "green")
    if state == "failed":
        return Text("Tor failed; p2pchat tries again by itself.", "red")
    if state == "bootstrapping":
        return Text(f"Tor is starting ({percent} %)…", "yellow")
    return Text(f"Tor is {state}…", "yellow")


class InviteScreen(ModalScreen[None]):
    """Shows the invite code and its QR code; escape closes."""

    BINDINGS = [Binding("escape", "close", "Close")]  # noqa: RUF012

    DEFAULT_CSS = """
    InviteScreen #invite-code { margin-bottom: 1; }
    InviteScreen #invite-qr { width: auto; height: auto; margin-bottom: 1; }
    """

    def __init__(self, code: str, status: Text) -> None:
        super().__init__()
        self.code = code
        self.status = status

    def compose(self) -> ComposeResult:
        """Title, how to use it, the code, the QR code, tor's state, a button."""
        with Vertical(classes="dialog"):
            yield Static(Text("Your invite code", "bold"), classes="dialog-title")
            yield Static(
                "Give it to someone not on your network: they run `p2pchat add CODE`, or "
                "paste it under “Add a contact by invite code” in the palette (ctrl+p).",
                classes="dialog-text",
            )
            yield Static(Text(self.code, "bold"), id="invite-code")
            if self.app.size.height >= QR_MIN_HEIGHT:
                yield Static(
                    Text("\n".join(invite_qr_lines(self.code)), "black on white", end=""),
                    id="invite-qr",
                )
            yield Static(self.status, id="invite-tor")
            with Horizontal(classes="buttons"):
                yield Button("Close", id="close")

    def on_button_pressed(self, event: Button.Pressed) -> None:
        """Close."""
        self.dismiss(None)

    def action_close(self) -> None:
        """Close."""
        self.dismiss(None)
