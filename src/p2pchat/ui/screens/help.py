"""The help screen (f1): every key of the app, read from the bindings themselves.

Nothing here is written by hand twice: the rows come from the ``BINDINGS`` of the app,
the chat screen and a message, and from the composer's own key list, so a key added,
changed or removed shows here as it is (tests check every binding appears).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Button, Static

#: One section: a heading and its rows of (keys, what they do).
Section = tuple[str, list[tuple[str, str]]]


def key_name(binding: Binding) -> str:
    """How the app's hints write a key: ``ctrl+e``, ``f1``, ``alt+up``."""
    return binding.key_display or binding.key


def binding_rows(
    bindings: Iterable[BindingType], key_display: Callable[[Binding], str] = key_name
) -> list[tuple[str, str]]:
    """(keys, what they do) per binding: its tooltip (the longer words), else the footer's.

    The same row twice shows once.
    """
    rows: list[tuple[str, str]] = []
    for item in bindings:
        binding = item if isinstance(item, Binding) else Binding(*item)  # tuples are allowed
        keys = " / ".join(key_display(b) for b in _split_keys(binding))
        row = (keys, binding.tooltip or binding.description or binding.action)
        if row not in rows:
            rows.append(row)
    return rows


def _split_keys(binding: Binding) -> list[Binding]:
    """``Binding("r,enter", …)`` as one binding per key (each shown its own way)."""
    return [
        Binding(key.strip(), binding.action, binding.description, key_display=binding.key_display)
        for key in binding.key.split(",")
    ]


def help_text(sections: Sequence[Section]) -> Text:
    """The sections as aligned columns of keys and descriptions."""
    width = max((len(keys) for _, rows in sections for keys, _ in rows), default=0) + 2
    out = Text(end="")
    for index, (heading, rows) in enumerate(sections):
        if index:
            out.append("\n\n")
        out.append(heading, "bold")
        for keys, description in rows:
            out.append("\n  ")
            out.append(keys.ljust(width), "bold")
            out.append(description)
    return out


class HelpScreen(ModalScreen[None]):
    """A scrollable list of the app's keys; escape, f1 or q closes it."""

    BINDINGS = [Binding("escape,f1,q", "close", "Close")]  # noqa: RUF012

    def __init__(self, sections: Sequence[Section]) -> None:
        super().__init__()
        self.sections = list(sections)

    def compose(self) -> ComposeResult:
        """Title, the keys, Close."""
        with Vertical(classes="dialog help"):
            yield Static(Text("Keys of p2pchat", "bold"), classes="dialog-title")
            with VerticalScroll(id="help-body"):
                yield Static(help_text(self.sections), id="help-keys", markup=False)
            yield Static(
                Text("↑/↓ scroll · ctrl+p finds every command by name", "italic"),
                classes="dialog-text",
            )
            with Horizontal(classes="buttons"):
                yield Button("Close", id="close", compact=True)

    def on_mount(self) -> None:
        """Focus the list, so ↑/↓ and page keys scroll it."""
        self.query_one("#help-body").focus()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        """Close."""
        event.stop()
        self.dismiss(None)

    def action_close(self) -> None:
        """Close the help."""
        self.dismiss(None)
