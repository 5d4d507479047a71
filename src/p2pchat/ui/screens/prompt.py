"""A small dialog asking for one line of text (your name, an address)."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Static


class PromptScreen(ModalScreen[str | None]):
    """Ask one question; dismiss with the answer (None when cancelled)."""

    BINDINGS = [Binding("escape", "cancel", "Cancel")]  # noqa: RUF012

    def __init__(
        self,
        title: str,
        explanation: str,
        *,
        value: str = "",
        placeholder: str = "",
        ok: str = "OK",
        can_cancel: bool = True,
        max_length: int | None = None,
    ) -> None:
        super().__init__()
        self.title_text = title
        self.explanation = explanation
        self.value = value
        self.placeholder = placeholder
        self.ok = ok
        self.can_cancel = can_cancel
        self.max_length = max_length

    def compose(self) -> ComposeResult:
        """Title, explanation, the input and buttons."""
        with Vertical(classes="dialog"):
            yield Static(Text(self.title_text, "bold"), classes="dialog-title")
            yield Static(Text(self.explanation), classes="dialog-text")
            yield Input(value=self.value, placeholder=self.placeholder, id="answer")
            yield Static("", id="error", classes="dialog-error")
            with Horizontal(classes="buttons"):
                yield Button(self.ok, variant="primary", id="ok")
                if self.can_cancel:
                    yield Button("Cancel", id="cancel")

    def on_mount(self) -> None:
        """Start typing at once."""
        self.query_one("#answer", Input).focus()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        """Enter in the input means OK."""
        event.stop()
        self._finish()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        """OK or Cancel."""
        event.stop()
        if event.button.id == "ok":
            self._finish()
        else:
            self.action_cancel()

    def show_error(self, text: str) -> None:
        """Explain why the answer was not taken."""
        error = self.query_one("#error", Static)
        error.update(Text(text, "bold red"))
        error.display = True

    def _finish(self) -> None:
        answer = self.query_one("#answer", Input).value.strip()
        if not answer:
            self.show_error("Please type something (or press escape).")
            return
        if self.max_length is not None and len(answer) > self.max_length:
            # Said, never cut silently: the person decides what to leave out.
            self.show_error(
                f"At most {self.max_length} characters, please (this has {len(answer)})."
            )
            return
        self.dismiss(answer)

    def action_cancel(self) -> None:
        """Close without an answer (unless the question must be answered)."""
        if self.can_cancel:
            self.dismiss(None)
