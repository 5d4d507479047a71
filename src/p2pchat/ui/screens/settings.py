"""Settings: your name, privacy (read receipts, typing, announce), notifications, folder.

Changes apply when the person presses Save; escape leaves everything as it was.
"""

from __future__ import annotations

from dataclasses import dataclass

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Button, Checkbox, Input, Label, Static

from p2pchat.profile import MAX_DISPLAY_NAME


@dataclass
class SettingsValues:
    """Everything the settings screen edits."""

    display_name: str
    read_receipts: bool
    typing: bool
    announce: bool
    bell: bool
    desktop: bool
    download_dir: str
    desktop_available: bool = True
    tor: bool = False


SWITCHES = (
    ("read_receipts", "Send read receipts", "others see ✔✔ when you have read their message"),
    ("typing", "Send typing indicators", "others see when you are writing"),
    ("announce", "Announce me on the network", "takes effect the next time p2pchat starts"),
    ("bell", "Terminal bell on new messages", ""),
    ("desktop", "Desktop notifications", "through your desktop's notification service"),
    ("tor", "Reach contacts beyond the LAN (Tor)", "needs the tor program; starts at once"),
)


class SettingsScreen(ModalScreen[SettingsValues | None]):
    """Dismisses with the edited values (Save) or None (escape)."""

    BINDINGS = [Binding("escape", "cancel", "Cancel")]  # noqa: RUF012

    def __init__(self, values: SettingsValues) -> None:
        super().__init__()
        self.values = values

    def compose(self) -> ComposeResult:
        """One row per setting, Save and Cancel at the bottom."""
        v = self.values
        with Vertical(classes="dialog settings"):
            yield Static(Text("Settings", "bold"), classes="dialog-title")
            with VerticalScroll(id="settings-body"):
                yield Label("Your display name")
                # No max_length: it would cut a long name without a word; Save says why.
                yield Input(value=v.display_name, id="display_name", compact=True)
                for key, label, note in SWITCHES:
                    box = Checkbox(label, bool(getattr(v, key)), id=key, compact=True)
                    shown_note = note
                    if key == "desktop" and not v.desktop_available:
                        box.disabled = True
                        shown_note = "no desktop notification service found here"
                    yield box
                    if shown_note:
                        yield Static(Text("    " + shown_note, "grey62"), classes="note")
                yield Label("Download folder (empty: the default)")
                yield Input(value=v.download_dir, id="download_dir", compact=True)
            yield Static("", id="error", classes="dialog-error")
            with Horizontal(classes="buttons"):
                yield Button("Save", variant="primary", id="save", compact=True)
                yield Button("Cancel", id="cancel", compact=True)

    def on_mount(self) -> None:
        """Focus the first field."""
        self.query_one("#display_name", Input).focus()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        """Save or cancel."""
        event.stop()
        if event.button.id == "save":
            self.action_save()
        else:
            self.action_cancel()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        """Enter in a field saves."""
        event.stop()
        self.action_save()

    def action_save(self) -> None:
        """Collect the values and close."""
        name = self.query_one("#display_name", Input).value.strip()
        problem = ""
        if not name:
            problem = "Your name cannot be empty."
        elif len(name) > MAX_DISPLAY_NAME:
            problem = f"At most {MAX_DISPLAY_NAME} characters, please (this has {len(name)})."
        if problem:
            error = self.query_one("#error", Static)
            error.update(Text(problem, "red"))
            error.display = True
            return
        values = SettingsValues(
            display_name=name,
            download_dir=self.query_one("#download_dir", Input).value.strip(),
            desktop_available=self.values.desktop_available,
            **{key: self.query_one(f"#{key}", Checkbox).value for key, _, _ in SWITCHES},
        )
        self.dismiss(values)

    def action_cancel(self) -> None:
        """Close without changes."""
        self.dismiss(None)
