"""A searchable emoji picker (ctrl+e): type to filter, enter to insert."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, OptionList, Static
from textual.widgets.option_list import Option

from p2pchat.ui.emoji import QUICK_REACTIONS, search

MAX_SHOWN = 150


class EmojiPicker(ModalScreen[str | None]):
    """Dismisses with the chosen emoji, or None."""

    BINDINGS = [  # noqa: RUF012
        Binding("escape", "cancel", "Close"),
        Binding("down", "down", "Next", show=False),
        Binding("up", "up", "Previous", show=False),
    ]

    def __init__(self, title: str = "Insert emoji", *, quick: bool = False) -> None:
        super().__init__()
        self.title_text = title
        self.quick = quick

    def compose(self) -> ComposeResult:
        """Search box above the results."""
        with Vertical(classes="dialog picker"):
            yield Static(Text(self.title_text, "bold"), classes="dialog-title")
            yield Input(placeholder="search: heart, smile, flag…", id="query")
            yield OptionList(id="results")

    def on_mount(self) -> None:
        """Show the favourites and focus the search box."""
        self._fill("")
        self.query_one("#query", Input).focus()

    def _fill(self, query: str) -> None:
        results = self.query_one("#results", OptionList)
        results.clear_options()
        options: list[Option] = []
        if self.quick and not query:
            options.extend(
                Option(Text.assemble(f" {e}  ", (f"quick reaction {i + 1}", "grey62")), id=e)
                for i, e in enumerate(QUICK_REACTIONS)
            )
        options.extend(
            Option(Text.assemble(f" {e}  ", name.replace("_", " ")), id=e)
            for name, e in search(query, MAX_SHOWN)
            if not any(o.id == e for o in options)
        )
        results.add_options(options)
        if options:
            results.highlighted = 0

    def on_input_changed(self, event: Input.Changed) -> None:
        """Filter as the person types."""
        self._fill(event.value)

    def on_input_submitted(self, event: Input.Submitted) -> None:
        """Enter picks the highlighted emoji."""
        event.stop()
        results = self.query_one("#results", OptionList)
        if results.highlighted is not None and results.option_count:
            self.dismiss(results.get_option_at_index(results.highlighted).id)

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        """A click (or enter in the list) picks that emoji."""
        event.stop()
        self.dismiss(event.option.id)

    def action_down(self) -> None:
        """Move the highlight while typing in the search box."""
        self.query_one("#results", OptionList).action_cursor_down()

    def action_up(self) -> None:
        """Move the highlight while typing in the search box."""
        self.query_one("#results", OptionList).action_cursor_up()

    def action_cancel(self) -> None:
        """Close without choosing."""
        self.dismiss(None)
