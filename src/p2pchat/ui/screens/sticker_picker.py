"""The sticker picker (ctrl+t, beside the emoji picker's ctrl+e): type to filter, enter
sends the highlighted sticker to the open chat.

It lists our own packs (``p2pchat sticker add`` makes them; a pack someone sent is
added with ``p2pchat sticker install``), each sticker as ``pack/name`` with a small
drawing of its picture. Pack and sticker names are plain ASCII, checked by the node.
"""

from __future__ import annotations

from typing import Any, Protocol

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, OptionList, Static
from textual.widgets.option_list import Option

from p2pchat.ui.media import decode_sticker_picture

#: Size of the drawing beside each sticker's name, in cells.
THUMB_COLUMNS = 8
THUMB_ROWS = 4
EMPTY_HINT = "No stickers yet: make a pack with `p2pchat sticker add PACK FILE...`"


class StickerSource(Protocol):
    """What the picker needs from the node's sticker service."""

    async def packs(self, pack: str | None = None) -> list[Any]: ...
    async def picture(self, sha256: bytes) -> bytes | None: ...


class StickerPicker(ModalScreen[str | None]):
    """Dismisses with the chosen sticker's ``pack/name``, or None."""

    BINDINGS = [  # noqa: RUF012
        Binding("escape", "cancel", "Close"),
        Binding("down", "down", "Next", show=False),
        Binding("up", "up", "Previous", show=False),
    ]

    def __init__(self, stickers: StickerSource) -> None:
        super().__init__()
        self.stickers = stickers
        self.labels: list[str] = []
        self.drawings: dict[str, Text] = {}

    def compose(self) -> ComposeResult:
        """Search box above the stickers."""
        with Vertical(classes="dialog picker"):
            yield Static(Text("Send a sticker", "bold"), classes="dialog-title")
            yield Input(placeholder="search: pack or name", id="query")
            yield OptionList(id="results")

    async def on_mount(self) -> None:
        """Load our stickers (with small drawings) and focus the search box."""
        for sticker in await self.stickers.packs():
            label = f"{sticker.pack}/{sticker.name}"
            self.labels.append(label)
            data = await self.stickers.picture(sticker.sha256)
            if data:
                try:
                    picture = decode_sticker_picture(data, THUMB_COLUMNS, THUMB_ROWS)
                except Exception:  # noqa: S112 - a picture we cannot draw: name only
                    continue
                self.drawings[label] = picture.halfcell
        self._fill("")
        self.query_one("#query", Input).focus()

    def _fill(self, query: str) -> None:
        results = self.query_one("#results", OptionList)
        results.clear_options()
        words = query.lower().split()
        shown = [lb for lb in self.labels if all(w in lb.lower() for w in words)]
        if not self.labels:
            results.add_option(Option(Text(EMPTY_HINT, "grey62"), disabled=True))
        for label in shown:
            drawing = self.drawings.get(label)
            lines = list(drawing.split("\n")) if drawing is not None else [Text(end="")]
            middle = len(lines) // 2
            for index, line in enumerate(lines):
                line.pad_right(THUMB_COLUMNS - line.cell_len)
                if index == middle:  # the name beside the picture's middle row
                    line.append(f"  {label}")
            results.add_option(Option(Text("\n", end="").join(lines), id=label))
        results.highlighted = 0 if shown else None

    def on_input_changed(self, event: Input.Changed) -> None:
        """Filter as the person types."""
        self._fill(event.value)

    def on_input_submitted(self, event: Input.Submitted) -> None:
        """Enter sends the highlighted sticker."""
        event.stop()
        results = self.query_one("#results", OptionList)
        if results.highlighted is not None and results.option_count:
            option = results.get_option_at_index(results.highlighted)
            if option.id:
                self.dismiss(option.id)

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        """A click (or enter in the list) sends that sticker."""
        event.stop()
        if event.option.id:
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
