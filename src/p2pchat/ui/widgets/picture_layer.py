"""Real pixels over the message list's preview rows (graphics protocols only).

The list draws text lines (line API) and holds no widgets, so a picture drawn with the
terminal's graphics protocol (kitty, sixel; see ``ui.graphics``) is a widget of the
conversation pane, placed with absolute positioning over the blank rows its file card
keeps (``media.PREVIEW_ROW``), and moved when the list scrolls. A picture not wholly in
view is hidden (its rows stay blank), so it never covers the header or the composer.
With half blocks (every test run, any terminal without a protocol) the card draws the
picture itself and this layer holds nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from textual.scroll_view import ScrollView
from textual.widget import Widget

from p2pchat.ui import graphics
from p2pchat.ui.widgets.message_item import GUTTER
from p2pchat.ui.widgets.message_rows import MAX_WIDTH, MessageRow
from p2pchat.ui.widgets.picture import picture_widget


class PictureLayer:
    """The picture widgets of one message list, keyed by the row they cover."""

    def __init__(self, listing: ScrollView, rows: Callable[[], Sequence[object]]) -> None:
        # The list's widget and its rows, given apart so this module need not import
        # the list's (which imports this one).
        self.listing = listing
        self.rows = rows
        self.widgets: dict[MessageRow, Widget] = {}

    def clear(self) -> None:
        """Forget every picture (another room, or the list starts afresh)."""
        for widget in self.widgets.values():
            widget.remove()
        self.widgets = {}

    def drop(self, row: MessageRow) -> None:
        """``row`` left the list."""
        widget = self.widgets.pop(row, None)
        if widget is not None:
            widget.remove()

    def place(self) -> None:
        """Put each picture over its rows as the list now lies (hidden if not in view)."""
        listing = self.listing
        parent = listing.parent
        if graphics.protocol() == "halfcell" or not isinstance(parent, Widget):
            return
        width = min(MAX_WIDTH, listing.scrollable_content_region.width)
        if width <= 0:
            return
        console = listing.app.console
        for row in self.rows():
            if not isinstance(row, MessageRow):
                continue
            # A file card's preview, or a sticker's picture (drawn large, no card).
            preview = row.view.file.preview if row.view.file else row.view.sticker
            laid = row.laid(width, console)
            if preview is None or laid.preview_row < 0:
                self.drop(row)
                continue
            widget = self.widgets.get(row)
            if widget is None:
                made = picture_widget(preview)
                if made is None:
                    continue
                self.widgets[row] = widget = made
                parent.mount(widget)
            self._put(widget, row.top + row.gap + laid.preview_row, preview.rows)

    def _put(self, widget: Widget, line: int, rows: int) -> None:
        """Place ``widget`` at list line ``line`` (content coordinates), or hide it."""
        listing = self.listing
        parent = listing.parent
        if not isinstance(parent, Widget):
            return
        y = line - round(listing.scroll_y)
        view = listing.scrollable_content_region
        shown = y >= 0 and y + rows <= view.height
        widget.display = shown
        if shown:
            origin = parent.content_region.offset
            widget.styles.offset = (
                view.x - origin.x + len(GUTTER),
                view.y - origin.y + y,
            )
