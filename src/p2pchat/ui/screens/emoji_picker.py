"""A searchable emoji picker (ctrl+e): type to filter, enter to insert.

With an empty search it shows the person's recently used emoji, then every section
(Smileys & people first, symbols and flags last, so the first page is faces and hands,
not enclosed letters such as 🅰 or 🆎). Recent picks are kept as a UI setting in the
profile's store through the node, like the app's other preferences.
"""

from __future__ import annotations

import contextlib

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, OptionList, Static
from textual.widgets.option_list import Option

from p2pchat.ui.emoji import (
    CATEGORIES,
    QUICK_REACTIONS,
    Entry,
    SettingStore,
    entries,
    load_recent,
    remember,
    search,
)

MAX_FOUND = 150
RECENT_TITLE = "Recently used"


def _header(title: str) -> Option:
    return Option(Text(title, "bold grey62"), disabled=True)


def _row(char: str, label: str | Text | tuple[str, str], row: str = "") -> Option:
    """An emoji's line; ``row`` tells apart an emoji shown twice (recent, quick)."""
    return Option(Text.assemble(f" {char}  ", label), id=f"{row}|{char}")


def chosen_emoji(option: Option) -> str | None:
    """The emoji of an option of the picker (None for a section title)."""
    return option.id.partition("|")[2] or None if option.id else None


class EmojiPicker(ModalScreen[str | None]):
    """Dismisses with the chosen emoji, or None."""

    BINDINGS = [  # noqa: RUF012
        Binding("escape", "cancel", "Close"),
        Binding("down", "down", "Next", show=False),
        Binding("up", "up", "Previous", show=False),
    ]

    def __init__(
        self,
        title: str = "Insert emoji",
        *,
        quick: bool = False,
        store: SettingStore | None = None,
    ) -> None:
        super().__init__()
        self.title_text = title
        self.quick = quick
        self.store = store
        self.recent: list[str] = []

    def compose(self) -> ComposeResult:
        """Search box above the results."""
        with Vertical(classes="dialog picker"):
            yield Static(Text(self.title_text, "bold"), classes="dialog-title")
            yield Input(placeholder="search: heart, smile, +1, flag…", id="query")
            yield OptionList(id="results")

    async def on_mount(self) -> None:
        """Show recent picks and the sections, and focus the search box."""
        if self.store is not None:
            with contextlib.suppress(Exception):  # no recent row beats no picker
                self.recent = await load_recent(self.store)
        self._fill("")
        self.query_one("#query", Input).focus()

    def _options(self, query: str) -> list[Option]:
        options: list[Option] = []
        if query.strip():
            found = search(query, MAX_FOUND)
            options.extend(_row(e.char, e.name) for e in found)
            return options
        names = {e.char: e.name for e in entries()}
        if self.quick:
            options.append(_header("Quick reactions"))
            options.extend(
                _row(e, (f"quick reaction {i + 1}", "grey62"), "quick")
                for i, e in enumerate(QUICK_REACTIONS)
            )
        if self.recent:
            options.append(_header(RECENT_TITLE))
            options.extend(_row(e, names[e], "recent") for e in self.recent if e in names)
        by_section: dict[str, list[Entry]] = {c: [] for c in CATEGORIES}
        for entry in entries():
            by_section[entry.category].append(entry)
        for section in CATEGORIES:
            options.append(_header(section))
            options.extend(_row(e.char, e.name) for e in by_section[section])
        return options

    def _fill(self, query: str) -> None:
        results = self.query_one("#results", OptionList)
        results.clear_options()
        results.add_options(self._options(query))
        results.highlighted = None
        results.action_first()  # the first emoji, skipping section titles

    def on_input_changed(self, event: Input.Changed) -> None:
        """Filter as the person types."""
        self._fill(event.value)

    async def on_input_submitted(self, event: Input.Submitted) -> None:
        """Enter picks the highlighted emoji."""
        event.stop()
        results = self.query_one("#results", OptionList)
        if results.highlighted is not None and results.option_count:
            await self._choose(chosen_emoji(results.get_option_at_index(results.highlighted)))

    async def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        """A click (or enter in the list) picks that emoji."""
        event.stop()
        await self._choose(chosen_emoji(event.option))

    async def _choose(self, char: str | None) -> None:
        if char and self.store is not None:
            with contextlib.suppress(Exception):  # failing to remember must not lose the pick
                self.recent = await remember(self.store, char)
        self.dismiss(char)

    def action_down(self) -> None:
        """Move the highlight while typing in the search box."""
        self.query_one("#results", OptionList).action_cursor_down()

    def action_up(self) -> None:
        """Move the highlight while typing in the search box."""
        self.query_one("#results", OptionList).action_cursor_up()

    def action_cancel(self) -> None:
        """Close without choosing."""
        self.dismiss(None)
