"""One message in a conversation: name and time, quoted reply, body, reactions, ticks.

A widget per message (not a log line) because its delivery mark and reactions change
after it is shown. Everything the author wrote goes through ``text.literal``.

Layout: the header line (name, then the time on the right) starts at the left edge with
a visible character; every other line (quote, body, file card, reactions, receipt)
starts with the ``GUTTER`` bar. So no line a person writes can look like a header
("Bob    09:31" in a body shows as "│ Bob    09:31"), nor like a centred room-change
line, whatever colours the terminal shows (issue 10, hole 10).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field, replace

from rich.console import RenderableType
from rich.text import Text
from textual.binding import Binding
from textual.events import Click
from textual.geometry import Size
from textual.message import Message as TextualMessage
from textual.widget import Widget

from p2pchat.node import Message, ReactionInfo
from p2pchat.ui import markup
from p2pchat.ui.format import clock, tick, tick_meaning
from p2pchat.ui.media import FileCard, card_lines
from p2pchat.ui.text import header_name, literal, one_line, with_links
from p2pchat.ui.widgets.picture import picture_widget, preview_row

META_WIDTH = 9
#: Starts every line of a message but its header (see the module docstring).
GUTTER = "│ "
GUTTER_STYLE = "grey35"
RECEIPT_HINT = "  (i: who)"
#: After an edited message's text, and after one that will disappear with a timer.
EDITED_MARK = " (edited)"
TIMER_MARK = " ⏱"
#: Kinds of a deleted message's row (the node's tombstones): shown as the node says.
TOMBSTONE_KINDS = ("deleted", "removed")


@dataclass
class ItemView:
    """What a MessageItem shows, resolved by the list (names, quote, reactions)."""

    message: Message
    author: str
    author_style: str
    mine: bool
    show_header: bool = True
    quote: tuple[str, str] | None = None  # (author name, one-line text)
    reactions: list[ReactionInfo] = field(default_factory=list)
    me: bytes = b""
    text: str = ""  # what the node says to show (text, or a file/room-change sentence)
    file: FileCard | None = None  # a file message's card (manifest and transfer)
    receipt: str = ""  # own group message: "read by 2 of 4" (i shows who)


def body_text(message: Message) -> str:
    """A text message's text; a short stand-in for other kinds (see ``Node.display_text``)."""
    if message.kind == "file":
        return "📎 a file"
    return message.body.decode("utf-8", errors="replace")


def _in_gutter(line: Text) -> Text:
    """``line`` behind the gutter bar, as every line of a message but its header is."""
    out = Text(end="")
    out.append(GUTTER, GUTTER_STYLE)  # appended, so its style stays on the bar alone
    out.append_text(line)
    return out


class MessageItem(Widget, can_focus=True):
    """A message; focus it (click, or ↑ from an empty composer) to reply or react."""

    BINDINGS = [  # noqa: RUF012 - Textual's convention
        Binding("r,enter", "reply", "Reply"),
        Binding("e,plus", "react", "React"),
        Binding("c", "copy", "Copy", show=False),
        Binding("o", "open_link", "Open", show=False),
        Binding("a", "download", "Download", show=False),
        Binding("d", "decline", "Decline", show=False),
        Binding("x", "cancel_transfer", "Cancel transfer", show=False),
        Binding("f", "reveal", "Show in folder", show=False),
        Binding("i", "receipts", "Read by", show=False),
        Binding("up", "move('up')", "Previous", show=False),
        Binding("down", "move('down')", "Next", show=False),
        Binding("escape", "move('back')", "Back to composer", show=False),
        *[Binding(str(i + 1), f"quick_react({i})", f"React {i + 1}", show=False) for i in range(6)],
    ]

    class Action(TextualMessage):
        """The person asked to do ``action`` with this message (handled by the pane)."""

        def __init__(self, item: MessageItem, action: str, arg: int = -1) -> None:
            super().__init__()
            self.item = item
            self.action = action
            self.arg = arg

    def __init__(self, view: ItemView) -> None:
        # Classes go to the constructor: add_class() would restyle the widget each time,
        # which in a burst of messages cost more than everything else together.
        classes = ["mine" if view.mine else "theirs"]
        if view.message.kind == "system":
            classes.append("system")
        if not view.show_header:
            classes.append("grouped")
        super().__init__(classes=" ".join(classes))
        self.view = view
        self._cache: tuple[int, Text] | None = None
        self._receipt_row = -1
        self._picture: Widget | None = None  # real pixels over a preview (ui.graphics)
        if view.mine:
            self.tooltip = tick_meaning(view.message.status)

    @property
    def message(self) -> Message:
        """The stored message shown here."""
        return self.view.message

    def set_status(self, status: int) -> None:
        """Show a new delivery state (it only moves forward)."""
        msg = self.view.message
        if status > msg.status:
            self.view.message = replace(msg, status=status)
            if self.view.mine:
                self.tooltip = tick_meaning(status)
            self._invalidate()
            self.refresh(layout=False)

    def set_grouped(self, grouped: bool = True) -> None:
        """Drop the name line (an older message by the same author now sits above), or
        bring it back (``grouped=False``: the messages above were unmounted)."""
        if self.view.show_header == grouped:
            self.view.show_header = not grouped
            self.set_class(grouped, "grouped")
            self._invalidate()
            self.refresh(layout=True)

    def set_file(self, card: FileCard) -> None:
        """Show a file card's new state (its height may change)."""
        self.view.file = card
        self._invalidate()
        self.refresh(layout=True)

    def set_receipt(self, summary: str) -> None:
        """Show who of the group has this (own) message: ``read by 2 of 4``."""
        if summary != self.view.receipt:
            had = bool(self.view.receipt)
            self.view.receipt = summary
            self._invalidate()
            self.refresh(layout=had != bool(summary))

    def set_reactions(self, reactions: list[ReactionInfo]) -> None:
        """Show a new set of reactions."""
        self.view.reactions = reactions
        self._invalidate()
        self.refresh(layout=True)

    def _invalidate(self) -> None:
        self._cache = None

    def _layout(self, width: int) -> Text:
        """The message laid out for ``width`` cells (cached until something changes).

        The name line, then quote, body and reactions wrapped behind the gutter; the time
        and delivery mark sit right-aligned on the first line. Wrapping here (not in a rich
        Table) is several times cheaper, which keeps opening a room fast.
        """
        if self._cache is not None and self._cache[0] == width:
            return self._cache[1]
        view = self.view
        msg = view.message
        text = view.text or body_text(msg)
        if msg.kind == "system":
            sentence = literal(text, "italic grey62")
            centred = sentence.wrap(self.app.console, max(8, width), justify="center")
            laid = Text("\n", end="").join(centred)
            self._cache = (width, laid)
            return laid
        column = max(8, width - META_WIDTH)
        inner = max(4, column - len(GUTTER))
        body = self._body(text, inner)
        lines: list[Text] = []
        if view.show_header:
            # Appended, not used as the base: a Text's own style would colour the time too.
            name = Text(end="")
            name.append_text(literal(header_name(view.author), view.author_style, multiline=False))
            name.truncate(column, overflow="ellipsis")
            lines.append(name)
        for line in body.wrap(self.app.console, inner, overflow="fold"):
            lines.append(_in_gutter(line))
        self._place_picture(preview_row(lines))
        self._receipt_row = -1
        if view.receipt:
            self._receipt_row = len(lines)
            receipt = Text(view.receipt, "grey62", end="")
            if receipt.cell_len + len(RECEIPT_HINT) <= inner:
                receipt.append(RECEIPT_HINT, "grey42")
            receipt.truncate(inner, overflow="ellipsis")
            lines.append(_in_gutter(receipt))
        meta = Text(clock(msg.sent_at), style="grey50", end="")
        if view.mine:
            meta.append(" ")
            meta.append_text(tick(msg.status))
        first = lines[0]
        first.pad_right(column - first.cell_len)
        meta.align("right", min(META_WIDTH, width - first.cell_len))
        first.append_text(meta)
        laid = Text("\n", end="").join(lines)
        self._cache = (width, laid)
        return laid

    def _body(self, text: str, inner: int) -> Text:
        """Quote, text (or file card) and reactions, not yet wrapped to ``inner`` cells."""
        view = self.view
        body = Text(end="")
        if view.quote is not None:
            who, what = view.quote
            body.append("▎ ", "grey50")
            body.append_text(literal(who, "italic grey70", multiline=False))
            body.append(": ", "grey50")
            body.append_text(literal(what, "italic grey62", multiline=False))
            body.append("\n")
        if view.file is not None:
            body.append_text(Text("\n", end="").join(card_lines(view.file, inner)))
        elif view.message.kind in TOMBSTONE_KINDS:
            body.append_text(literal(text, "italic grey50"))
        elif view.message.kind == "text":
            body.append_text(markup.render(text))  # the one place a body is formatted
            if view.message.edited:
                body.append(EDITED_MARK, "grey50")
        else:
            body.append_text(with_links(literal(text)))
        if view.message.expires_at:
            body.append(TIMER_MARK, "grey50")
        if view.reactions:
            body.append("\n")
            body.append_text(self._reactions_text())
        return body

    def _place_picture(self, row: int) -> None:
        """Lay a graphics-protocol picture over the card's preview rows (see widgets.picture)."""
        preview = self.view.file.preview if self.view.file else None
        if row < 0 or preview is None:
            return
        if self._picture is None:
            self._picture = picture_widget(preview)
            if self._picture is None:
                return
            self.call_later(self.mount, self._picture)
        self._picture.styles.offset = (len(GUTTER), row)  # beside the gutter bar

    def get_content_height(self, container: Size, viewport: Size, width: int) -> int:
        """As many lines as the layout for ``width`` has."""
        return len(self._layout(width).plain.split("\n"))

    def render(self) -> RenderableType:
        """The cached layout for the current width."""
        return self._layout(self.size.width)

    def _reactions_text(self) -> Text:
        counts = Counter(r.emoji for r in self.view.reactions)
        mine = {r.emoji for r in self.view.reactions if r.author == self.view.me}
        out = Text(end="")
        for i, (emoji, count) in enumerate(counts.most_common()):
            if i:
                out.append(" ")
            style = "on grey30" if emoji in mine else "on grey19"
            out.append_text(literal(f" {one_line(emoji, 16)} {count} ", style, multiline=False))
        return out

    def action_reply(self) -> None:
        """Reply to this message."""
        self.post_message(self.Action(self, "reply"))

    def action_react(self) -> None:
        """Pick a reaction for this message."""
        self.post_message(self.Action(self, "react"))

    def action_quick_react(self, index: int) -> None:
        """Toggle one of the quick reactions (keys 1-6)."""
        self.post_message(self.Action(self, "quick_react", index))

    def action_move(self, where: str) -> None:
        """Select the previous/next message, or go back to the composer."""
        self.post_message(self.Action(self, where))

    def action_download(self) -> None:
        """Download the file this message offers."""
        self.post_message(self.Action(self, "download"))

    def action_decline(self) -> None:
        """Decline the file this message offers."""
        self.post_message(self.Action(self, "decline"))

    def action_reveal(self) -> None:
        """Show the received (or sent) file in its folder."""
        self.post_message(self.Action(self, "reveal"))

    def action_receipts(self) -> None:
        """List who of the group received and read this message."""
        self.post_message(self.Action(self, "receipts"))

    def on_click(self, event: Click) -> None:
        """A click on the delivery mark or on "read by …" lists who has the message."""
        if not self.view.mine:
            return
        on_tick = event.y == 0 and event.x >= self.size.width - META_WIDTH
        self._layout(self.size.width)
        on_receipt = self._receipt_row >= 0 and event.y == self._receipt_row
        if on_tick or on_receipt:
            self.post_message(self.Action(self, "receipts"))

    def action_cancel_transfer(self) -> None:
        """Stop this file transfer (or decline the offer)."""
        self.post_message(self.Action(self, "cancel_transfer"))

    def action_copy(self) -> None:
        """Copy the message text to the clipboard."""
        self.app.copy_to_clipboard(self.view.text or body_text(self.message))
        self.app.notify("Message copied", timeout=2)

    def action_open_link(self) -> None:
        """Open the first link of the message in the browser."""
        self.post_message(self.Action(self, "open_link"))
