"""A scrolling list of message rows drawn line by line (Textual's line API).

A ``ScrollView`` whose ``render_line`` draws only the lines on screen, like Textual's
``Log`` and the ``toolong`` viewer. It holds rows (``widgets.message_rows``), each laid
out once for the width and kept until it changes, and the table of the line each row
starts on, so drawing a line is a binary search and a cached strip. A changed row (a
receipt, a reaction) is laid out again alone; the rows after it move only when its
height changed. One message can be selected; its keys (reply, react…) act on it.

What rows the list holds (a room's pages, live messages) is ``MessageList``'s job.
"""

from __future__ import annotations

from bisect import bisect_right

from rich.style import Style
from textual import events
from textual.geometry import Region, Size
from textual.message import Message as TextualMessage
from textual.scroll_view import ScrollView
from textual.strip import Strip

from p2pchat.ui.format import tick_meaning
from p2pchat.ui.widgets.message_item import MESSAGE_BINDINGS, META_WIDTH, body_text
from p2pchat.ui.widgets.message_rows import (
    MAX_WIDTH,
    DayRow,
    MarkerRow,
    MessageRow,
    Row,
    row_strips,
)
from p2pchat.ui.widgets.picture_layer import PictureLayer


class RowView(ScrollView, can_focus=True):
    """Rows of messages, oldest at the top; one of them can be selected."""

    BINDINGS = MESSAGE_BINDINGS
    COMPONENT_CLASSES = {  # noqa: RUF012 - Textual's convention
        "message-list--day",
        "message-list--marker",
        "message-list--selected",
    }
    DEFAULT_CSS = """
    RowView {
        overflow-x: hidden;
        & > .message-list--day { background: $panel; color: $text-muted; }
        & > .message-list--marker { color: $error; text-style: bold; }
        & > .message-list--selected { background: $boost; }
    }
    """

    class Action(TextualMessage):
        """The person asked to do ``action`` with the selected message (the screen acts)."""

        def __init__(self, item: MessageRow, action: str, arg: int = -1) -> None:
            super().__init__()
            self.item = item
            self.action = action
            self.arg = arg

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.rows: list[Row] = []
        self.items: dict[bytes, MessageRow] = {}
        self.selected: MessageRow | None = None
        self._tops: list[int] = []  # first line of each row (rows are in order)
        self._laid_width = -1
        self._laid_height = -1
        self._tall = False  # the rows overflow the view (a scrollbar shows)
        self._pad = 0  # blank lines above the rows when they do not fill the view
        self._style_epoch = 0  # bumped when the theme or CSS changes: strips redrawn
        self._base: Style | None = None  # the widget's style while a frame is drawn
        self.pictures = PictureLayer(self, lambda: self.rows)

    # ------------------------------------------------------------------ following

    @property
    def following(self) -> bool:
        """Whether the view sticks to the newest message (Textual's anchor: the person
        is at the end; scrolling up releases it, scrolling back to the end restores it)."""
        return self.is_anchored and not self._anchor_released

    # ------------------------------------------------------------------ layout

    def _width(self) -> int:
        """The width rows get: the view's, less the scrollbar when the rows overflow
        (Textual shows it exactly then), so a new scrollbar never clips the times."""
        full = self.region.width - self.styles.gutter.width
        return full - self.styles.scrollbar_size_vertical if self._tall else full

    def _relayout(self, start: int = 0) -> None:
        """Place rows from ``start`` on (all of them when the width changed)."""
        was_tall = self._tall
        for _ in range(2):  # a second pass when the scrollbar comes or goes
            width = self._width()
            if width <= 0:
                self._laid_width = -1
                return  # not shown yet: laid out on the first resize
            view = self.region.height - self.styles.gutter.height
            if width != self._laid_width or view != self._laid_height:
                start = 0
                self._laid_width, self._laid_height = width, view
            top = self._place(start, width)
            # Fewer lines than the view: they sit at its bottom, by the composer.
            pad = max(0, view - (top - self._pad))
            if pad != self._pad:
                self._pad = pad
                top = self._place(0, width)
            tall = top > view
            if tall == self._tall:
                break
            self._tall = tall
        size = Size(width, top)
        if size.width != self.virtual_size.width or self._tall != was_tall:
            self.virtual_size = size  # a scrollbar comes or goes: the screen lays out
        elif size != self.virtual_size:
            # Only longer or shorter: the scrollbar and the scroll range follow, and only
            # this widget is repainted. Through the reactive, every appended message
            # would lay out the whole screen (every widget arranged) once per frame.
            self.set_reactive(RowView.virtual_size, size)
            self._scroll_update(size)
        if self.following:
            self.scroll_end(animate=False, immediate=True, x_axis=False)
        self.pictures.place()
        self.refresh()

    def _place(self, start: int, width: int) -> int:
        """Set the top line of rows from ``start`` on; the total height."""
        console, inner = self.app.console, min(MAX_WIDTH, width)
        del self._tops[start:]
        top = self._pad
        if start:
            before = self.rows[start - 1]
            top = before.top + before.height(inner, console)
        for row in self.rows[start:]:
            row.top = top
            self._tops.append(top)
            top += row.height(inner, console)
        return top

    def _repaint(self, row: Row) -> None:
        """``row`` looks different at the same height: draw its lines again."""
        row.strips = None
        if self._laid_width > 0:
            self.refresh_lines(row.top, self._height_of(row))

    def _changed(self, row: Row) -> None:
        """``row`` changed: lay it out again, and what follows it if its height moved."""
        width = self._laid_width
        if width <= 0:
            return
        console, inner = self.app.console, min(MAX_WIDTH, width)
        old = row.last_height  # from before the change
        row.invalidate()
        if row.height(inner, console) != old:
            self._relayout(self._index(row))
        else:
            self.refresh_lines(row.top, old)
        self.pictures.place()

    def _index(self, row: Row) -> int:
        index = bisect_right(self._tops, row.top) - 1
        while index > 0 and self.rows[index] is not row:
            index -= 1  # rows of height 0 share a top
        return max(0, index)

    def on_resize(self, event: events.Resize) -> None:
        """A new width lays every kept row out again (bounded by ``MAX_KEPT`` or paging)."""
        view = self.region.height - self.styles.gutter.height
        if self._width() != self._laid_width or view != self._laid_height:
            self._relayout()
        elif self.following:
            self.scroll_end(animate=False, immediate=True, x_axis=False)
        self.view_changed()

    def view_changed(self) -> None:
        """The view was resized (subclasses react)."""

    def notify_style_update(self) -> None:
        """The theme or CSS changed: draw every line again."""
        super().notify_style_update()
        self._style_epoch += 1

    def render_lines(self, crop: Region) -> list[Strip]:
        """The lines in ``crop``, with the widget's style worked out once for all of them
        (``rich_style`` walks every ancestor's colours: per line it was a fifth of a
        frame's drawing during a burst)."""
        self._base = self.rich_style
        try:
            return super().render_lines(crop)
        finally:
            self._base = None

    def render_line(self, y: int) -> Strip:
        """Line ``y`` of the view: the part of the row under it (line API)."""
        width = self.size.width
        base = self.rich_style if self._base is None else self._base
        line = y + self.scroll_offset.y
        index = bisect_right(self._tops, line) - 1
        if index < 0 or index >= len(self.rows):
            return Strip.blank(width, base)
        row = self.rows[index]
        strips = self._strips(row, width, base)
        offset = line - row.top
        if offset >= len(strips):
            return Strip.blank(width, base)
        return strips[offset]

    def _strips(self, row: Row, width: int, base: Style) -> list[Strip]:
        selected = row is self.selected and self.has_focus
        key = (width, self._laid_width, selected, self._style_epoch, base)
        if row.strips is not None and row.strips[0] == key:
            return row.strips[1]
        style: Style | None = None
        if isinstance(row, DayRow):
            style = self.get_component_rich_style("message-list--day")
        elif isinstance(row, MarkerRow):
            style = self.get_component_rich_style("message-list--marker", partial=True)
        elif selected:
            style = self.get_component_rich_style("message-list--selected", partial=True)
        inner = min(MAX_WIDTH, self._laid_width)
        strips = row_strips(row, width, inner, self.app.console, base=base, style=style)
        row.strips = (key, strips)
        return strips

    def last_item(self) -> MessageRow | None:
        """The newest message shown."""
        for row in reversed(self.rows):
            if isinstance(row, MessageRow):
                return row
        return None

    def lines_of(self, row: MessageRow) -> list[str]:
        """``row``'s lines as laid out now, as plain text (tests, checks)."""
        return row.laid(min(MAX_WIDTH, self._laid_width), self.app.console).plain.split("\n")

    def message_rows(self) -> list[MessageRow]:
        """Every message held, oldest first."""
        return [r for r in self.rows if isinstance(r, MessageRow)]

    # ------------------------------------------------------------------ selection

    def select(self, row: MessageRow | None, *, focus: bool = True) -> None:
        """Select ``row`` (its keys apply: reply, react…) and bring it into view."""
        old, self.selected = self.selected, row
        for changed in (old, row):
            if changed is not None:
                changed.strips = None
                self.refresh_lines(changed.top, self._height_of(changed))
        if row is not None:
            self.scroll_to_region(
                Region(0, row.top, 1, self._height_of(row)), animate=False, immediate=True
            )
        if focus:
            self.focus()

    def _height_of(self, row: Row) -> int:
        return row.height(min(MAX_WIDTH, max(1, self._laid_width)), self.app.console)

    def move_selection(self, step: int) -> bool:
        """Select the previous (-1) / next (1) message; False past either end."""
        rows = self.message_rows()
        if self.selected is None or self.selected not in rows:
            return False
        index = rows.index(self.selected) + step
        if not 0 <= index < len(rows):
            return False
        self.select(rows[index])
        return True

    def row_at(self, y: int) -> MessageRow | None:
        """The message on line ``y`` of the view, if any."""
        line = y + self.scroll_offset.y
        index = bisect_right(self._tops, line) - 1
        if 0 <= index < len(self.rows):
            row = self.rows[index]
            if isinstance(row, MessageRow) and line - row.top >= row.gap:
                return row
        return None

    def on_focus(self) -> None:
        """Show the selection."""
        self.refresh()

    def on_blur(self) -> None:
        """Hide the selection."""
        self.refresh()

    def on_mouse_move(self, event: events.MouseMove) -> None:
        """Over one of your messages, the tooltip says what its delivery mark means."""
        offset = event.get_content_offset(self)
        row = self.row_at(offset.y) if offset is not None else None
        tip = tick_meaning(row.message.status) if row is not None and row.view.mine else None
        if tip != self.tooltip:
            self.tooltip = tip

    def on_click(self, event: events.Click) -> None:
        """Select the message clicked; a click on a delivery mark or on "read by …" lists
        who has the message."""
        offset = event.get_content_offset(self)
        if offset is None:
            return
        row = self.row_at(offset.y)
        if row is None:
            return
        self.select(row)
        if not row.view.mine:
            return
        width = min(MAX_WIDTH, self._laid_width)
        line = offset.y + self.scroll_offset.y - row.top - row.gap
        laid = row.laid(width, self.app.console)
        on_tick = line == 0 and width - META_WIDTH <= offset.x < width
        if on_tick or (laid.receipt_row >= 0 and line == laid.receipt_row):
            self.post_message(self.Action(row, "receipts"))

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """Message keys only with a message selected (the footer shows them then)."""
        names = {"reply", "react", "quick_react", "copy", "open_link", "download"}
        names |= {"decline", "cancel_transfer", "reveal", "receipts", "move", "edit", "delete"}
        if action in names:
            return self.selected is not None
        return True

    def _act(self, action: str, arg: int = -1) -> None:
        if self.selected is not None:
            self.post_message(self.Action(self.selected, action, arg))

    def action_reply(self) -> None:
        """Reply to the selected message."""
        self._act("reply")

    def action_edit(self) -> None:
        """Change the text of the selected message (ours)."""
        self._act("edit")

    def action_delete(self) -> None:
        """Delete the selected message for everyone (after asking)."""
        self._act("delete")

    def action_react(self) -> None:
        """Pick a reaction for the selected message."""
        self._act("react")

    def action_quick_react(self, index: int) -> None:
        """Toggle one of the quick reactions (keys 1-6)."""
        self._act("quick_react", index)

    def action_move(self, where: str) -> None:
        """Select the previous/next message, or go back to the composer."""
        self._act(where)

    def action_download(self) -> None:
        """Download the file the selected message offers."""
        self._act("download")

    def action_decline(self) -> None:
        """Decline the file the selected message offers."""
        self._act("decline")

    def action_reveal(self) -> None:
        """Show the received (or sent) file in its folder."""
        self._act("reveal")

    def action_receipts(self) -> None:
        """List who of the group received and read the selected message."""
        self._act("receipts")

    def action_cancel_transfer(self) -> None:
        """Stop this file transfer (or decline the offer)."""
        self._act("cancel_transfer")

    def action_open_link(self) -> None:
        """Open the first link of the selected message in the browser."""
        self._act("open_link")

    def action_copy(self) -> None:
        """Copy the selected message's text to the clipboard."""
        row = self.selected
        if row is not None:
            self.app.copy_to_clipboard(row.view.text or body_text(row.message))
            self.app.notify("Message copied", timeout=2)

    def visible_items(self) -> list[MessageRow]:
        """Messages at least partly inside the viewport now."""
        top = round(self.scroll_y)
        bottom = top + self.scrollable_content_region.height
        start = max(0, bisect_right(self._tops, top) - 1)
        end = bisect_right(self._tops, bottom - 1)
        return [r for r in self.rows[start:end] if isinstance(r, MessageRow)]
