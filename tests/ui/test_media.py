"""File cards and previews without a node: words, bars, and untrusted thumbnails."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from p2pchat.ui.media import (
    FileCard,
    card_lines,
    duration_text,
    eta_text,
    kind_label,
    load_preview,
    preview_from_jpeg,
)


def jpeg(width: int, height: int, colour: tuple[int, int, int] = (200, 30, 30)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (width, height), colour).save(out, format="JPEG")
    return out.getvalue()


@pytest.mark.parametrize(
    ("mime", "name", "label"),
    [
        ("audio/mpeg", "song.mp3", "MP3 audio"),
        ("image/png", "a.png", "PNG image"),
        ("video/mp4", "clip.mp4", "MP4 video"),
        ("application/pdf", "x.pdf", "PDF document"),
        ("application/octet-stream", "x.bin", "BIN file"),
        ("application/octet-stream", "README", "file"),
        ("", "voice.flac", "FLAC audio"),
    ],
)
def test_kind_label(mime: str, name: str, label: str) -> None:
    assert kind_label(mime, name) == label


def test_durations_and_time_left() -> None:
    assert duration_text(42) == "0:42"
    assert duration_text(187) == "3:07"
    assert duration_text(3723) == "1:02:03"
    assert eta_text(8) == "8 s left"
    assert eta_text(180) == "3 min left"
    assert eta_text(4 * 3600) == "4 h left"


def test_card_shows_what_each_state_allows() -> None:
    card = FileCard(name="talk.ogg", size=3 * 1024 * 1024, mime="audio/ogg", duration=95)
    plain = [line.plain for line in card_lines(card, 50)]
    assert plain[:2] == ["📎 talk.ogg", "OGG audio · 3.0 MiB · 1:35"]
    assert plain[-1] == "a download · d decline"
    card.state, card.done, card.rate, card.eta = "active", 1024 * 1024, 512 * 1024, 4
    plain = [line.plain for line in card_lines(card, 50)]
    assert "33 %" in plain[2]
    assert plain[3] == "1.0 MiB of 3.0 MiB · 512.0 KiB/s · 4 s left"
    assert plain[-1] == "x cancel"
    card.state, card.path = "done", "/home/me/Downloads/talk.ogg"
    plain = [line.plain for line in card_lines(card, 50)]
    assert plain[-2:] == ["✓ saved: /home/me/Downloads/talk.ogg", "o open · f show in folder"]


def test_card_names_are_literal() -> None:
    card = FileCard(name="[bold]x[/]\x1b[2J.txt", size=1)
    assert card_lines(card, 40)[0].plain == "📎 [bold]x[/]␛[2J.txt"


def test_preview_fits_its_box_and_keeps_the_shape() -> None:
    text = preview_from_jpeg(jpeg(96, 48), columns=32, rows=8)
    lines = text.plain.split("\n")
    assert len(lines) == 8  # 96x48 -> 32x16 pixels -> 8 rows of half blocks
    assert {len(line) for line in lines} == {32}
    assert set(text.plain) <= {"▀", "\n"}


async def test_untrusted_thumbnails_never_break_the_card() -> None:
    assert await load_preview(None) is None
    assert await load_preview(b"not a picture") is None
    assert await load_preview(jpeg(1000, 1000)) is None  # too many pixels: not decoded
    assert await load_preview(jpeg(64, 64)) is not None
