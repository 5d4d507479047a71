"""Showing text that other people wrote, safely.

Everything a peer controls (display names, message bodies, file names) reaches the
screen only through :func:`literal`: it becomes a ``rich.text.Text`` built from plain
characters, so it is never parsed as Textual markup (``[bold]``, ``[@click=...]``), and
control characters are swapped for visible stand-ins so a message can never send an
escape sequence (``\\x1b[2J``) to the terminal or reorder a line with bidi overrides.
Emoji sequences (ZWJ, skin tones, flags, variation selectors) pass through untouched:
they are printable and Rich measures them as one grapheme.
"""

from __future__ import annotations

import re
import unicodedata

from rich.style import Style
from rich.text import Text

# Bidi embedding/override/isolate controls and line/paragraph separators: they can make
# a line read differently from how it is stored ("Trojan Source"), so show them.
_SUSPECT = frozenset([*range(0x202A, 0x202F), *range(0x2066, 0x206A), 0x2028, 0x2029])
_LINK = re.compile(r"\bhttps?://[^\s<>\"'\x00-\x1f]+", re.IGNORECASE)
_TRAILING_PUNCT = ".,;:!?)]}'\""
#: What counts as a link in a message (ui.markup leaves these unformatted).
URL_PATTERN = _LINK
TAB = "    "
# Characters that draw nothing, or a bar, at the start of a name: blank fillers that are
# letters to Unicode (Hangul fillers, the braille blank), box-drawing and block bars and
# ASCII bars. A header line must start with something visible that no gutter starts with.
_BLANK_LOOKING = frozenset([0x115F, 0x1160, 0x2800, 0x3164, 0xFFA0, ord("|"), ord("¦")])
_BARS = range(0x2500, 0x25A0)  # box drawing and block elements


def clean(text: str, *, multiline: bool = True) -> str:
    """``text`` with every control character replaced by a visible symbol.

    C0 controls become their Unicode "control picture" (ESC shows as ␛), DEL shows
    as ␡, C1 controls and bidi overrides as �. Newlines are kept when ``multiline``
    (otherwise shown as ⏎) and tabs become spaces.
    """
    if text.isprintable():
        return text
    out: list[str] = []
    for ch in text:
        code = ord(ch)
        if ch == "\n":
            out.append("\n" if multiline else "⏎")
        elif ch == "\t":
            out.append(TAB)
        elif code < 0x20:
            out.append(chr(0x2400 + code))
        elif code == 0x7F:
            out.append("␡")
        elif 0x80 <= code < 0xA0 or code in _SUSPECT:
            out.append("\ufffd")
        else:
            out.append(ch)
    return "".join(out)


def one_line(text: str, limit: int = 200) -> str:
    """A cleaned single-line preview of ``text`` (sidebar, notifications, quotes)."""
    first = clean(text[: limit * 2], multiline=False)
    return first if len(first) <= limit else first[: limit - 1] + "…"


def header_name(name: str) -> str:
    """``name`` for the header line of a message: without leading characters that look
    blank or like the message gutter (``│``), so a name can never make its header line
    pass for a line of the message above. ``?`` if nothing visible is left.
    """
    start = 0
    for ch in name:
        code = ord(ch)
        if (
            ch.isspace()
            or unicodedata.category(ch)[0] in "CMZ"
            or code in _BLANK_LOOKING
            or code in _BARS
        ):
            start += 1
            continue
        break
    return name[start:] or "?"


def literal(text: str, style: str | Style = "", *, multiline: bool = True) -> Text:
    """A Text showing ``text`` exactly as written (never markup, never escapes)."""
    return Text(clean(text, multiline=multiline), style=style, end="")


def with_links(text: Text) -> Text:
    """Underline http(s) URLs in ``text`` and make them terminal hyperlinks (OSC 8)."""
    for match in _LINK.finditer(text.plain):
        url = match.group(0).rstrip(_TRAILING_PUNCT)
        start = match.start()
        text.stylize(Style(link=url, underline=True, color="bright_cyan"), start, start + len(url))
    return text


def links_in(text: str) -> list[str]:
    """Every URL in ``text``, in order (for the "open link" command)."""
    return [m.group(0).rstrip(_TRAILING_PUNCT) for m in _LINK.finditer(text)]
