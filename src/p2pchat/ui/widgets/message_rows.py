"""The rows of the message list: day separators, the unread marker, messages.

A row is plain data, not a widget: the list (``widgets.message_list``) stacks rows and
draws only the lines on screen (Textual's line API). A row lays itself out for a width
once and keeps the lines until it changes (a receipt, a reaction, a file's progress), so
a change costs the layout of that one message, and an arriving one costs its own.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import date

from rich.console import Console
from rich.segment import Segment
from rich.style import Style
from rich.text import Text
from textual.strip import Strip

from p2pchat.node import Message
from p2pchat.ui.format import day_label
from p2pchat.ui.media import FileCard, Preview
from p2pchat.ui.widgets.message_item import ItemView, Laid, layout_message, restamp

#: On a wide terminal the time stays near the text it belongs to.
MAX_WIDTH = 110


class Row:
    """One entry of the list; ``top`` is its first line in the list (set by the list)."""

    gap = 1  # blank lines above the row (a margin)

    def __init__(self) -> None:
        self.top = 0
        self._width = -1
        self._height = 0
        # Drawn lines and what they were drawn for (width, selection, theme), kept by the list.
        self.strips: tuple[object, list[Strip]] | None = None

    @property
    def last_height(self) -> int:
        """The height from the last layout (before a change made it stale)."""
        return self._height

    def invalidate(self) -> None:
        """Forget the layout (its content changed)."""
        self._width = -1
        self.strips = None

    def height(self, width: int, console: Console) -> int:
        """Lines the row takes at ``width`` (its gap included)."""
        if width != self._width:
            self._height = self.gap + len(self.content(width, console))
            self._width = width
        return self._height

    def content(self, width: int, console: Console) -> list[Text]:
        """The row's lines for ``width`` cells, without the gap above."""
        raise NotImplementedError


class DayRow(Row):
    """``── Today ──`` between messages of different days."""

    def __init__(self, day: date | None, today: date | None) -> None:
        super().__init__()
        self.day = day
        self.label = f" {day_label(day, today)} "

    def content(self, width: int, console: Console) -> list[Text]:
        """The day, centred."""
        line = Text(self.label, end="")
        line.align("center", width)
        return [line]


class MarkerRow(Row):
    """Where the person left off: messages below arrived since they last looked."""

    def content(self, width: int, console: Console) -> list[Text]:
        """`` new messages ``, centred."""
        line = Text(" new messages ", end="")
        line.align("center", width)
        return [line]


class MessageRow(Row):
    """One message; the list selects it (click, or ↑ from an empty composer)."""

    def __init__(self, view: ItemView) -> None:
        super().__init__()
        self.view = view
        self._laid: Laid | None = None
        self._laid_width = -1

    @property
    def gap(self) -> int:  # type: ignore[override]
        """A blank line above the first message of a run, none inside a run."""
        return 1 if self.view.show_header else 0

    @property
    def message(self) -> Message:
        """The stored message shown here."""
        return self.view.message

    def laid(self, width: int, console: Console) -> Laid:
        """The message laid out for ``width`` (cached until it changes)."""
        if self._laid is None or self._laid_width != width:
            self._laid = layout_message(self.view, width, console)
            self._laid_width = width
        return self._laid

    def content(self, width: int, console: Console) -> list[Text]:
        """The message's lines."""
        return self.laid(width, console).lines

    def invalidate(self) -> None:
        """Forget the layout (its content changed)."""
        super().invalidate()
        self._laid = None

    def set_status(self, status: int) -> bool:
        """A new delivery state (it only moves forward); whether its lines must be drawn
        again (their height never changes)."""
        if status <= self.view.message.status:
            return False
        self.view.message = replace(self.view.message, status=status)
        if not self.view.mine:
            return False  # only our own messages show a mark: nothing to draw again
        if self._laid is not None:  # same height: only the first line is drawn again
            self._laid = restamp(self._laid, self.view, self._laid_width)
        self.strips = None
        return True

    def set_grouped(self, grouped: bool = True) -> bool:
        """Drop the name line (an older message by the same author now sits above), or
        bring it back (the messages above were dropped); whether anything changed."""
        if self.view.show_header != grouped:
            return False
        self.view.show_header = not grouped
        self.invalidate()
        return True

    def set_file(self, card: FileCard) -> None:
        """A file card's new state (its height may change)."""
        self.view.file = card
        self.invalidate()

    def set_sticker(self, picture: Preview) -> None:
        """A sticker's picture, shown in place of its ``(sticker pack/name)`` line."""
        self.view.sticker = picture
        self.invalidate()

    def set_receipt(self, summary: str) -> bool:
        """Who of the group has this (own) message; whether anything changed."""
        if summary == self.view.receipt:
            return False
        self.view.receipt = summary
        self.invalidate()
        return True


def row_strips(
    row: Row, width: int, inner: int, console: Console, *, base: Style, style: Style | None
) -> list[Strip]:
    """``row``'s lines (laid out ``inner`` cells wide) as strips ``width`` cells wide: the
    gap, then its content on ``base`` with ``style`` (a selection, a separator's colours)
    over the row's own width."""
    blank = Strip.blank(width, base)
    strips = [blank] * row.gap
    over = base + style if style is not None else base
    for line in row.content(inner, console):
        # The line's own style, then ``over`` beneath both it and its spans (Text.render
        # yields the spans' styles only). One strip per line, built in one go.
        under = over + console.get_style(line.style) if line.style else over
        segments = list(Segment.apply_style(line.render(console), under))
        used = line.cell_len
        if used > width:
            strips.append(Strip(segments, used).crop(0, width))
            continue
        if used < inner:
            segments.append(Segment(" " * (inner - used), over))
        if max(used, inner) < width:
            segments.append(Segment(" " * (width - max(used, inner)), base))
        strips.append(Strip(segments, width))
    return strips
