"""Message formatting for the app: ``*bold*`` (or ``**bold**``), ``_italic_``,
``~strike~``, `` `code` ``, fenced code blocks, ``> quotes`` and lists (issue 14, item 3).

One pure function, :func:`render`, turns a message's text into a ``rich.text.Text``;
the chat list calls it where it shows a text message's body, and nothing else formats
messages. What it guarantees:

* The text is never parsed as Textual or Rich markup: every piece is appended to the
  ``Text`` as plain characters with one of *our* styles, so ``[bold]x[/]`` or
  ``[@click=quit]`` from a peer show exactly as typed. Control characters go through
  :func:`p2pchat.ui.text.clean` first (no terminal escapes, no bidi tricks).
* Formatting is only ever a style on the person's own characters: the markers
  (``*``, ``_``, ``~``, backticks, fence lines) are hidden, quotes and list items get a
  drawn prefix, nothing else is added or removed. Copying a message copies its raw text.
* The rules are the ones chat apps use, so plain text stays plain: a marker opens only
  at the start or after a non-word character and closes only before one, with no space
  just inside (``snake_case_name``, ``2*3*4`` and ``a * b`` are left alone); URLs are
  never formatted inside (``https://x.org/a_b_c`` keeps its underscores), and become
  links as before.
* The CLI never formats: it prints the text as written.
"""

from __future__ import annotations

import re
from typing import Final

from rich.text import Text

from p2pchat.ui.text import URL_PATTERN, clean, with_links

BOLD: Final = "bold"
ITALIC: Final = "italic"
STRIKE: Final = "strike"
CODE: Final = "bright_white on grey23"
CODE_BLOCK: Final = "bright_white on grey15"
QUOTE_BAR: Final = "grey50"
QUOTE_TEXT: Final = "grey70"
BULLET: Final = "bright_cyan"
QUOTE_PREFIX: Final = "▍ "
#: How deep spans nest (``*bold _italic ~strike~_*``); deeper markers stay as text.
MAX_DEPTH: Final = 3

_FENCE = re.compile(r"^\s{0,3}```")
_QUOTE = re.compile(r"^> ?")
_BULLET = re.compile(r"^(\s*)[-*+•] (?=\S)")
_NUMBERED = re.compile(r"^(\s*)(\d{1,3})[.)] (?=\S)")
# Inline spans: `code` first (nothing inside it is formatted), then the three markers.
_INLINE = re.compile(
    r"`(?P<code>[^`\n]+)`"
    r"|(?<![\w*])\*\*(?=\S)(?P<strong>[^*\n]*?[^*\s])\*\*(?![\w*])"
    r"|(?<![\w*])\*(?=\S)(?P<bold>[^*\n]*?[^*\s])\*(?![\w*])"
    r"|(?<![\w_])_(?=\S)(?P<italic>[^_\n]*?\S)_(?![\w_])"
    r"|(?<![\w~])~(?=\S)(?P<strike>[^~\n]*?\S)~(?![\w~])"
)
# ``**bold**`` too: people used to Markdown type it, and seeing the asterisks is a surprise.
_STYLES: Final = {"bold": BOLD, "strong": BOLD, "italic": ITALIC, "strike": STRIKE}
# A text without any of these characters has nothing to format: the common fast path.
_MARKERS = frozenset("*_~`>-+•0123456789")


def render(text: str) -> Text:
    """``text`` (a message body) formatted for the chat list; see the module docstring."""
    cleaned = clean(text)
    if not _MARKERS.intersection(cleaned):
        return with_links(Text(cleaned, end=""))
    out = Text(end="")
    in_code = False
    first = True
    for line in cleaned.split("\n"):
        if _FENCE.match(line):
            in_code = not in_code
            continue  # the fence itself is a marker: hidden
        if not first:
            out.append("\n")
        first = False
        if in_code:
            out.append(line or " ", CODE_BLOCK)
            continue
        _block_line(out, line)
    return out


def _block_line(out: Text, line: str) -> None:
    """One line outside code blocks: a quote, a list item or a paragraph line."""
    quote = _QUOTE.match(line)
    if quote:
        out.append(QUOTE_PREFIX, QUOTE_BAR)
        start = len(out)
        _inline(out, line[quote.end() :])
        out.stylize(QUOTE_TEXT, start, len(out))
        return
    bullet = _BULLET.match(line)
    if bullet:
        out.append(bullet.group(1))
        out.append("• ", BULLET)
        _inline(out, line[bullet.end() :])
        return
    numbered = _NUMBERED.match(line)
    if numbered:
        out.append(numbered.group(1))
        out.append(f"{numbered.group(2)}. ", BULLET)
        _inline(out, line[numbered.end() :])
        return
    _inline(out, line)


def _inline(out: Text, line: str, depth: int = 0) -> None:
    """Append ``line`` with its inline spans styled; URLs pass through unformatted."""
    start = len(out)
    pos = 0
    for link in URL_PATTERN.finditer(line):
        _spans(out, line[pos : link.start()], depth)
        out.append(link.group(0))
        pos = link.end()
    _spans(out, line[pos:], depth)
    if depth == 0:
        # Links across the whole line, as with_links does for unformatted text.
        tail = Text(out.plain[start:], end="")
        with_links(tail)
        for span in tail.spans:
            out.stylize(span.style, start + span.start, start + span.end)


def _spans(out: Text, part: str, depth: int) -> None:
    pos = 0
    for match in _INLINE.finditer(part):
        out.append(part[pos : match.start()])
        kind = match.lastgroup or ""
        inner = match.group(kind)
        if kind == "code":
            out.append(inner, CODE)
        elif depth + 1 < MAX_DEPTH:
            begin = len(out)
            _spans(out, inner, depth + 1)
            out.stylize(_STYLES[kind], begin, len(out))
        else:
            out.append(match.group(0))
        pos = match.end()
    out.append(part[pos:])


__all__ = ["render"]
