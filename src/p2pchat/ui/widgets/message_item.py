"""One message laid out as lines: name and time, quoted reply, body, reactions, receipt.

The one place a message's text is turned into screen lines (the list draws those lines
with Textual's line API, see ``widgets.message_list``). Everything the author wrote
goes through ``text.literal``.

Layout: the header line (name, then the time on the right) starts at the left edge with
a visible character; every other line (quote, body, file card, reactions, receipt)
starts with the ``GUTTER`` bar. So no line a person writes can look like a header
("Bob    09:31" in a body shows as "│ Bob    09:31"), nor like a centred room-change
line, whatever colours the terminal shows (issue 10, hole 10).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from rich.console import Console
from rich.text import Text
from textual.binding import Binding, BindingType

from p2pchat.node import Message, ReactionInfo
from p2pchat.node.sticker_body import KIND_STICKER
from p2pchat.ui import markup
from p2pchat.ui.format import clock, tick
from p2pchat.ui.media import FileCard, Preview, card_lines, sticker_lines
from p2pchat.ui.text import header_name, literal, one_line, with_links
from p2pchat.ui.widgets.picture import preview_row

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

#: Keys for the selected message (the list handles them; help and the footer list them).
MESSAGE_BINDINGS: list[BindingType] = [
    Binding("r,enter", "reply", "Reply"),
    Binding("e,plus", "react", "React"),
    Binding("c", "copy", "Copy", show=False),
    Binding("E", "edit", "Edit", show=False),
    Binding("delete", "delete", "Delete", show=False),
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


@dataclass
class ItemView:
    """What a message shows, resolved by the list (names, quote, reactions)."""

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
    sticker: Preview | None = None  # a sticker message's picture, once cached and decoded


@dataclass
class Laid:
    """A message laid out for one width: its lines, and where clickable parts sit."""

    lines: list[Text]
    receipt_row: int = -1  # the "read by …" line, or -1
    preview_row: int = -1  # first line a picture preview covers, or -1
    head: Text | None = None  # the first line before the time and mark (see ``restamp``)

    @property
    def plain(self) -> str:
        """The lines as plain text (tests, copying)."""
        return "\n".join(line.plain for line in self.lines)


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


def layout_message(view: ItemView, width: int, console: Console) -> Laid:
    """``view`` laid out for ``width`` cells: the only way a message becomes lines.

    The name line, then quote, body and reactions wrapped behind the gutter; the time
    and delivery mark sit right-aligned on the first line. Wrapping here (not in a rich
    Table) is several times cheaper, which keeps opening a room fast.
    """
    msg = view.message
    text = view.text or body_text(msg)
    if msg.kind == "system":
        sentence = literal(text, "italic grey62")
        centred = sentence.wrap(console, max(8, width), justify="center")
        return Laid(list(centred))
    column = max(8, width - META_WIDTH)
    inner = max(4, column - len(GUTTER))
    body = _body(view, text, inner)
    lines: list[Text] = []
    if view.show_header:
        # Appended, not used as the base: a Text's own style would colour the time too.
        name = Text(end="")
        name.append_text(literal(header_name(view.author), view.author_style, multiline=False))
        name.truncate(column, overflow="ellipsis")
        lines.append(name)
    if "\n" not in body.plain and body.cell_len <= inner:
        wrapped: list[Text] = [body]  # one short line (most messages): nothing to wrap
    else:
        wrapped = list(body.wrap(console, inner, overflow="fold"))
    for line in wrapped:
        lines.append(_in_gutter(line))
    laid = Laid(lines, preview_row=preview_row(lines))
    if view.receipt:
        laid.receipt_row = len(lines)
        receipt = Text(view.receipt, "grey62", end="")
        if receipt.cell_len + len(RECEIPT_HINT) <= inner:
            receipt.append(RECEIPT_HINT, "grey42")
        receipt.truncate(inner, overflow="ellipsis")
        lines.append(_in_gutter(receipt))
    first = lines[0]
    first.pad_right(column - first.cell_len)
    laid.head = first.copy()
    lines[0] = _stamped(laid.head, view, width)
    for line in lines:
        line.end = ""
    return laid


def _stamped(head: Text, view: ItemView, width: int) -> Text:
    """The first line: ``head`` with the time (and your delivery mark) on the right."""
    meta = Text(clock(view.message.sent_at), style="grey50", end="")
    if view.mine:
        meta.append(" ")
        meta.append_text(tick(view.message.status))
    meta.align("right", min(META_WIDTH, width - head.cell_len))
    line = head.copy()
    line.append_text(meta)
    line.end = ""
    return line


def restamp(laid: Laid, view: ItemView, width: int) -> Laid:
    """``laid`` with a new delivery mark: only the first line changes (the mark's width
    is fixed, so nothing wraps differently). A receipt costs this, not a layout."""
    if laid.head is None:
        return laid  # a room change: no mark
    lines = [_stamped(laid.head, view, width), *laid.lines[1:]]
    return Laid(lines, laid.receipt_row, laid.preview_row, laid.head)


def _body(view: ItemView, text: str, inner: int) -> Text:
    """Quote, text (or file card) and reactions, not yet wrapped to ``inner`` cells."""
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
    elif view.message.kind == KIND_STICKER and view.sticker is not None:
        # Large, and no file card: the picture alone.
        body.append_text(Text("\n", end="").join(sticker_lines(view.sticker)))
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
        body.append_text(reactions_text(view.reactions, view.me))
    return body


def reactions_text(reactions: list[ReactionInfo], me: bytes) -> Text:
    """`` 👍 2  ❤️ 1 `` chips, most used first; yours on a lighter ground."""
    counts = Counter(r.emoji for r in reactions)
    mine = {r.emoji for r in reactions if r.author == me}
    out = Text(end="")
    for i, (emoji, count) in enumerate(counts.most_common()):
        if i:
            out.append(" ")
        style = "on grey30" if emoji in mine else "on grey19"
        out.append_text(literal(f" {one_line(emoji, 16)} {count} ", style, multiline=False))
    return out
