"""A chat written out as Markdown, JSON or one self-contained HTML file (issue 14, item 5).

Pure rendering: the caller (``ChatService.export``) reads the store and the pictures and
writes the file. Every value here came from peers (names, texts, file names), so:

* HTML escapes everything it prints (``html.escape`` with quotes) and embeds pictures only
  as ``data:`` URIs of an allow-list of raster types whose bytes start with that type's
  signature (no SVG, which can carry scripts); the page carries a Content-Security-Policy
  that forbids scripts, so even a mistake here could not run code;
* Markdown escapes the characters Markdown would read as markup, so a peer's text cannot
  turn into a link or an image fetched from the network when the file is viewed;
* JSON is plain ``json.dumps`` (it escapes what JSON must).
"""

from __future__ import annotations

import base64
import html
import json
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Final

from p2pchat.timefmt import iso_utc

FORMATS: Final = ("md", "json", "html")
#: Raster picture types embedded in HTML, by the bytes their files start with.
PICTURE_SIGNATURES: Final[dict[str, tuple[bytes, ...]]] = {
    "image/png": (b"\x89PNG\r\n\x1a\n",),
    "image/jpeg": (b"\xff\xd8\xff",),
    "image/gif": (b"GIF87a", b"GIF89a"),
    "image/webp": (b"RIFF",),
}
#: Largest picture embedded, and most picture bytes in one export.
MAX_PICTURE_BYTES: Final = 5 * 1024 * 1024
MAX_EMBEDDED_BYTES: Final = 50 * 1024 * 1024

_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]()<>#+\-.!|~])")
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


@dataclass(frozen=True)
class ExportItem:
    """One message as an export shows it."""

    id: str
    author: str
    author_id: str
    sent_at: int
    kind: str
    text: str
    #: For a picture that may be embedded: its checked mime type and bytes.
    picture: tuple[str, bytes] | None = None


@dataclass(frozen=True)
class ExportHeader:
    """What the export is of."""

    title: str
    kind: str
    room_id: str
    exported_at: int


def picture_mime(declared: str, data: bytes) -> str | None:
    """``declared`` if it is an allowed raster type and ``data`` really starts like one."""
    signatures = PICTURE_SIGNATURES.get(declared.lower())
    if signatures is None or len(data) > MAX_PICTURE_BYTES:
        return None
    if not any(data.startswith(sig) for sig in signatures):
        return None
    if declared.lower() == "image/webp" and data[8:12] != b"WEBP":
        return None
    return declared.lower()


def _time(ms: int) -> str:
    return iso_utc(ms) or "unknown time"


def _plain(text: str) -> str:
    """Control characters (terminal escapes among them) shown as U+FFFD."""
    return _CONTROL.sub("\ufffd", text)


def md_escape(text: str) -> str:
    """``text`` as literal Markdown: markup characters backslash-escaped."""
    return _MD_SPECIAL.sub(r"\\\1", _plain(text))


def render_markdown(header: ExportHeader, items: Iterable[ExportItem]) -> Iterator[str]:
    """The chat as Markdown, in pieces (a big room is never one string in memory)."""
    yield f"# {md_escape(header.title)}\n\n"
    yield f"Exported from p2pchat on {_time(header.exported_at)}.\n\n"
    for item in items:
        yield f"**{md_escape(item.author)}** · {_time(item.sent_at)}\n\n"
        lines = _plain(item.text).splitlines() or [""]
        # Quoted and escaped: a peer's text stays text in any Markdown viewer.
        yield "".join(f"> {md_escape(line)}\n" for line in lines) + "\n"


def render_json(header: ExportHeader, items: Iterable[ExportItem]) -> Iterator[str]:
    """The chat as one JSON object: ``{"room": {...}, "messages": [...]}``."""
    room = {
        "title": header.title,
        "kind": header.kind,
        "id": header.room_id,
        "exported_at": iso_utc(header.exported_at),
    }
    yield '{"room": ' + json.dumps(room, ensure_ascii=False) + ', "messages": ['
    first = True
    for item in items:
        entry = {
            "id": item.id,
            "author": item.author,
            "author_id": item.author_id,
            "sent_at": iso_utc(item.sent_at),
            "kind": item.kind,
            "text": item.text,
        }
        yield ("" if first else ",") + "\n" + json.dumps(entry, ensure_ascii=False)
        first = False
    yield "\n]}\n"


_HTML_HEAD = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy"
 content="default-src 'none'; img-src data:; style-src 'unsafe-inline'">
<meta name="referrer" content="no-referrer">
<title>{title}</title>
<style>
body {{ font-family: sans-serif; max-width: 50em; margin: 2em auto; color: #222; }}
.m {{ margin: 0.8em 0; }} .a {{ font-weight: bold; }} .t {{ color: #777; font-size: 0.85em; }}
.b {{ white-space: pre-wrap; overflow-wrap: anywhere; }} img {{ max-width: 100%; }}
</style>
</head>
<body>
<h1>{title}</h1>
<p class="t">Exported from p2pchat on {when}.</p>
"""


def h(text: str) -> str:
    """``text`` safe anywhere in HTML (content or a quoted attribute)."""
    return html.escape(_plain(text), quote=True)


def render_html(header: ExportHeader, items: Iterable[ExportItem]) -> Iterator[str]:
    """The chat as one HTML file with its pictures inside (no request leaves the page)."""
    yield _HTML_HEAD.format(title=h(header.title), when=h(_time(header.exported_at)))
    for item in items:
        yield (
            f'<div class="m"><span class="a">{h(item.author)}</span>'
            f' <span class="t">{h(_time(item.sent_at))}</span>'
            f'<div class="b">{h(item.text)}</div>'
        )
        if item.picture is not None:
            mime, data = item.picture
            encoded = base64.b64encode(data).decode("ascii")
            yield f'<img alt="{h(item.text)}" src="data:{h(mime)};base64,{encoded}">'
        yield "</div>\n"
    yield "</body>\n</html>\n"


RENDERERS: Final = {"md": render_markdown, "json": render_json, "html": render_html}

__all__ = [
    "FORMATS",
    "MAX_EMBEDDED_BYTES",
    "MAX_PICTURE_BYTES",
    "RENDERERS",
    "ExportHeader",
    "ExportItem",
    "h",
    "md_escape",
    "picture_mime",
    "render_html",
    "render_json",
    "render_markdown",
]
