"""File cards: what a file message shows (type, size, progress, keys) and image previews.

A preview is the sender's small thumbnail. It is untrusted bytes: they are decoded only
by :func:`p2pchat.node.images.open_image` (JPEG or PNG only, a pixel cap checked before
any pixel is decoded), in a worker thread, and any decoding error simply means no
preview. What comes out is a small RGB Pillow image, and only that is handed to
``textual-image``, which draws it with real pixels where the terminal has a graphics
protocol (``ui.graphics`` decides, once, before the app starts) and with colour half
blocks (``▀``: two pixels a cell) everywhere else, including every test run.
"""

from __future__ import annotations

import asyncio
import io
import mimetypes
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from rich.console import Console
from rich.style import Style
from rich.text import Text

from p2pchat.node.images import THUMBNAIL_FORMATS, open_image
from p2pchat.node.sticker_body import MAX_STICKER_PIXELS, STICKER_FORMATS
from p2pchat.ui import graphics
from p2pchat.ui.format import size as size_text
from p2pchat.ui.text import literal

if TYPE_CHECKING:
    from PIL.Image import Image as PillowImage

#: Largest preview, in terminal cells (each cell shows two pixels, one above the other).
PREVIEW_COLUMNS = 32
PREVIEW_ROWS = 8
#: A thumbnail declaring more pixels than this is not decoded at all.
MAX_THUMB_PIXELS = 512 * 512

ACTIVE_STATES = ("waiting", "active", "paused")


class TransferLike(Protocol):
    """What TransferProgress events and TransferInfo rows both carry."""

    @property
    def state(self) -> str: ...
    @property
    def done(self) -> int: ...
    @property
    def rate(self) -> float: ...
    @property
    def eta(self) -> float | None: ...
    @property
    def detail(self) -> str: ...
    @property
    def incoming(self) -> bool: ...


#: Marks the rows a preview takes in a card, so a picture widget can be laid over them.
PREVIEW_ROW = Style(meta={"preview": True})


@dataclass(frozen=True)
class Preview:
    """A decoded, size-capped thumbnail and the cells it takes (``columns`` x ``rows``)."""

    picture: PillowImage
    columns: int
    rows: int
    halfcell: Text  # the half-block drawing, for terminals without graphics

    def placeholder(self) -> list[Text]:
        """Blank rows, marked, where a graphics widget draws the picture instead."""
        return [Text(" " * self.columns, PREVIEW_ROW, end="") for _ in range(self.rows)]


@dataclass
class FileCard:
    """A file message's manifest and the latest state of its transfer."""

    name: str
    size: int
    mime: str = ""
    duration: float | None = None
    width: int | None = None
    height: int | None = None
    preview: Preview | None = None
    state: str = "offered"
    done: int = 0
    rate: float = 0.0
    eta: float | None = None
    detail: str = ""
    incoming: bool = True
    path: str | None = None

    def update(self, progress: TransferLike, path: str | None = None) -> None:
        """Take a transfer's new figures (a TransferProgress event or TransferInfo row)."""
        self.state = progress.state
        self.done = progress.done
        self.rate = progress.rate
        self.eta = progress.eta
        self.detail = progress.detail
        self.incoming = progress.incoming
        if path is not None:
            self.path = path


def kind_label(mime: str, name: str) -> str:
    """``PNG image``, ``PDF document``, ``MP3 audio``, ``file``: a few words about the type."""
    mime = mime or mimetypes.guess_type(name, strict=False)[0] or ""
    major, _, minor = mime.partition("/")
    minor = minor.split(";")[0].split("+")[0]
    if minor.startswith(("x-", "vnd.")):
        minor = minor.split(".")[-1].removeprefix("x-")
    suffix = name.rsplit(".", 1)[-1] if "." in name else ""
    suffix = suffix if suffix.isalnum() and len(suffix) <= 5 else ""
    sub = suffix.upper() or (minor.upper() if 0 < len(minor) <= 5 else "")
    if major == "image":
        return f"{sub} image".strip()
    if major == "audio":
        return f"{sub} audio".strip()
    if major == "video":
        return f"{sub} video".strip()
    if mime == "application/pdf":
        return "PDF document"
    if major == "text":
        return "text"
    if minor in ("zip", "gzip", "x-tar", "tar", "7z"):
        return f"{sub} archive".strip()
    return f"{suffix.upper()} file" if suffix else "file"


def duration_text(seconds: float) -> str:
    """``0:42``, ``3:07``, ``1:02:03``."""
    total = max(0, round(seconds))
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02}:{secs:02}" if hours else f"{minutes}:{secs:02}"


def eta_text(seconds: float) -> str:
    """``8 s left``, ``3 min left``, ``2 h left``."""
    if seconds < 90:
        return f"{max(0, round(seconds))} s left"
    if seconds < 90 * 60:
        return f"{round(seconds / 60)} min left"
    return f"{round(seconds / 3600)} h left"


def progress_bar(done: int, total: int, width: int) -> Text:
    """``━━━━━━━━╸───────`` with the finished part coloured."""
    width = max(4, width)
    fraction = 1.0 if total <= 0 else min(1.0, max(0.0, done / total))
    filled = int(fraction * width)
    bar = Text(end="")
    bar.append("━" * filled, "bright_cyan")
    bar.append("─" * (width - filled), "grey35")
    return bar


def card_lines(card: FileCard, column: int) -> list[Text]:
    """The lines of a file card for a column ``column`` cells wide (name first)."""
    lines: list[Text] = []
    title = Text("📎 ", end="")
    title.append_text(literal(card.name, "bold", multiline=False))
    lines.append(title)
    facts = [kind_label(card.mime, card.name), size_text(card.size)]
    if card.width and card.height:
        facts.append(f"{card.width}x{card.height}")
    if card.duration:
        facts.append(duration_text(card.duration))
    lines.append(Text(" · ".join(facts), "grey62", end=""))
    if card.preview is not None:
        if graphics.protocol() == "halfcell":
            lines.extend(card.preview.halfcell.split("\n"))
        else:
            lines.extend(card.preview.placeholder())
    lines.extend(_state_lines(card, column))
    return lines


def _state_lines(card: FileCard, column: int) -> list[Text]:
    """Progress, result and the keys that act on the file now."""
    lines: list[Text] = []
    state = card.state
    if state in ACTIVE_STATES:
        percent = 100 * card.done // card.size if card.size else 0
        bar = progress_bar(card.done, card.size, min(30, column - 8))
        bar.append(f" {percent:>3} %", "bold")
        lines.append(bar)
        parts = [f"{size_text(card.done)} of {size_text(card.size)}"]
        if state == "paused":
            parts.append("paused" + (f": {card.detail}" if card.detail else ""))
        elif state == "waiting":
            parts.append("waiting for the sender")
        else:
            if card.rate:
                parts.append(f"{size_text(card.rate)}/s")
            if card.eta is not None:
                parts.append(eta_text(card.eta))
        lines.append(Text(" · ".join(parts), "grey70", end=""))
        lines.append(_keys(("x", "cancel")))
    elif state == "offered":
        if card.incoming:
            if card.detail:  # why it was not downloaded (e.g. not enough free space)
                lines.append(literal(card.detail, "yellow", multiline=False))
            lines.append(_keys(("a", "download"), ("d", "decline")))
        else:
            lines.append(Text("offered: they download it when they choose", "grey70", end=""))
            lines.append(_keys(("o", "open"), ("f", "show in folder"), ("x", "withdraw")))
    elif state == "done":
        if card.incoming:
            saved = Text("✓ saved: ", "green", end="")
            saved.append_text(literal(card.path or card.detail or "", "grey70", multiline=False))
            lines.append(saved)
        else:
            lines.append(Text("✓ sent", "green", end=""))
        lines.append(_keys(("o", "open"), ("f", "show in folder")))
    elif state == "failed":
        failed = Text("✗ failed: ", "red", end="")
        failed.append_text(literal(card.detail or "unknown error", "", multiline=False))
        lines.append(failed)
        if card.incoming:
            lines.append(_keys(("a", "try again")))
    elif state in ("cancelled", "declined"):
        note = Text(f"{state}", "yellow", end="")
        if card.detail and card.detail != state:
            note.append(": ")
            note.append_text(literal(card.detail, "", multiline=False))
        lines.append(note)
    else:
        lines.append(literal(state, "grey70", multiline=False))
    return lines


def _keys(*pairs: tuple[str, str]) -> Text:
    out = Text(end="")
    for i, (key, what) in enumerate(pairs):
        if i:
            out.append(" · ", "grey50")
        out.append(key, "bold")
        out.append(f" {what}", "grey70")
    return out


def decode_preview(
    data: bytes, columns: int = PREVIEW_COLUMNS, rows: int = PREVIEW_ROWS
) -> Preview:
    """The thumbnail ``data`` decoded and fitted into ``columns`` by ``rows`` cells.

    Raises ValueError (UnsafeImageError for a format we do not decode or too many
    pixels, or Pillow's errors) for bytes that are not a small JPEG or PNG picture.
    """
    # Only JPEG/PNG are even identified (an EPS "thumbnail" would run Ghostscript), and
    # the pixel cap is checked before any pixel is decoded.
    with open_image(data, formats=THUMBNAIL_FORMATS, max_pixels=MAX_THUMB_PIXELS) as img:
        width, height = img.size
        rgb = img.convert("RGB")
    box_w, box_h = columns, rows * 2
    # Terminal cells are about twice as tall as wide; a half block is about square.
    scale = min(box_w / width, box_h / height)
    out_w = max(1, min(box_w, round(width * scale)))
    out_h = max(2, min(box_h, round(height * scale)))
    return Preview(rgb, out_w, (out_h + 1) // 2, halfcell_text(rgb, out_w, (out_h + 1) // 2))


def halfcell_text(picture: PillowImage, columns: int, rows: int) -> Text:
    """``picture`` drawn by textual-image's half-cell renderer, as ``rows`` lines of Text."""
    from textual_image.renderable.halfcell import Image as HalfcellImage

    console = Console(width=columns, height=rows, color_system="truecolor", file=io.StringIO())
    lines = console.render_lines(HalfcellImage(picture, width=columns, height=rows), pad=False)
    text = Text(end="")
    for i, line in enumerate(lines[:rows]):
        if i:
            text.append("\n")
        for segment in line:
            text.append(segment.text, segment.style)
    return text


def preview_from_jpeg(
    data: bytes, columns: int = PREVIEW_COLUMNS, rows: int = PREVIEW_ROWS
) -> Text:
    """The half-block drawing of thumbnail ``data`` (raises as :func:`decode_preview`)."""
    return decode_preview(data, columns, rows).halfcell


async def load_preview(data: bytes | None) -> Preview | None:
    """The preview of a thumbnail, decoded off the event loop; None if it is unusable."""
    if not data:
        return None
    try:
        return await asyncio.to_thread(decode_preview, data)
    except Exception:  # untrusted bytes: any failure means no preview
        return None


# ---------------------------------------------------------------------- stickers

#: A sticker is shown large: up to this many cells (two pixels a cell, one above the other).
STICKER_COLUMNS = 24
STICKER_ROWS = 12
#: The picture handed to a graphics protocol is at most this many pixels a side.
STICKER_SHARP_SIDE = 256


def _alpha_halfcell(picture: PillowImage, columns: int, rows: int) -> Text:
    """``picture`` (RGBA, ``columns`` x ``2 * rows`` pixels) as half blocks that keep
    its transparency: a transparent pixel is left as the terminal's own background."""
    pixels = picture.load()
    assert pixels is not None
    text = Text(end="")
    for row in range(rows):
        if row:
            text.append("\n")
        for col in range(columns):
            top = pixels[col, 2 * row]
            bottom = pixels[col, 2 * row + 1] if 2 * row + 1 < picture.height else (0, 0, 0, 0)
            assert isinstance(top, tuple)
            assert isinstance(bottom, tuple)
            top_on, bottom_on = top[3] >= 128, bottom[3] >= 128
            if top_on and bottom_on:
                text.append("▀", Style(color=_rgb(top), bgcolor=_rgb(bottom)))
            elif top_on:
                text.append("▀", Style(color=_rgb(top)))
            elif bottom_on:
                text.append("▄", Style(color=_rgb(bottom)))
            else:
                text.append(" ")
    return text


def _rgb(pixel: tuple[int, ...]) -> str:
    return f"#{pixel[0]:02x}{pixel[1]:02x}{pixel[2]:02x}"


def decode_sticker_picture(
    data: bytes, columns: int = STICKER_COLUMNS, rows: int = STICKER_ROWS
) -> Preview:
    """A cached sticker (already checked by the node) decoded again, the same way: only
    PNG, WebP or GIF, the pixel cap before any pixel; its first frame, transparency kept."""
    with open_image(data, formats=STICKER_FORMATS, max_pixels=MAX_STICKER_PIXELS) as img:
        width, height = img.size
        rgba = img.convert("RGBA")
    box_w, box_h = columns, rows * 2
    scale = min(box_w / width, box_h / height)
    out_w = max(1, min(box_w, round(width * scale)))
    out_h = max(2, min(box_h, round(height * scale)))
    out_h += out_h % 2
    small = rgba.resize((out_w, out_h))
    # A graphics protocol (kitty, sixel) draws real pixels: give it a sharper copy.
    sharp = rgba.copy()
    sharp.thumbnail((STICKER_SHARP_SIDE, STICKER_SHARP_SIDE))
    return Preview(sharp, out_w, out_h // 2, _alpha_halfcell(small, out_w, out_h // 2))


def sticker_lines(picture: Preview) -> list[Text]:
    """A sticker's rows: the half-block drawing, or blank rows a graphics widget covers."""
    if graphics.protocol() == "halfcell":
        return list(picture.halfcell.split("\n"))
    return picture.placeholder()


async def load_sticker(data: bytes | None) -> Preview | None:
    """A sticker's picture, decoded off the event loop; None if it is unusable."""
    if not data:
        return None
    try:
        return await asyncio.to_thread(decode_sticker_picture, data)
    except Exception:  # never trust bytes, even cached ones: failure means no picture
        return None
