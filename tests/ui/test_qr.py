"""The safety-number QR code on the verification screen: what is drawn decodes.

The code is encoded by ``segno``; what the app adds is the drawing with half blocks.
So the test reads the drawing back into pixels (a glyph's upper/lower ink is a dark
module) and decodes it with an independent reader (zxing-cpp), as a phone would.
"""

from __future__ import annotations

import pytest
from PIL import Image

from p2pchat.ui.screens.verify import QR_QUIET, qr_lines, qr_text

zxingcpp = pytest.importorskip("zxingcpp")

DIGITS = "123456789012345678901234567890123456789012345678901234567890"
SCALE = 8
_INK = {" ": (False, False), "▀": (True, False), "▄": (False, True), "█": (True, True)}


def _picture(lines: list[str]) -> Image.Image:
    """The half-block drawing as a black-on-white image, ``SCALE`` pixels a module."""
    rows: list[list[bool]] = []
    for line in lines:
        rows.append([_INK[ch][0] for ch in line])
        rows.append([_INK[ch][1] for ch in line])
    img = Image.new("L", (len(rows[0]) * SCALE, len(rows) * SCALE), 255)
    for y, row in enumerate(rows):
        for x, dark in enumerate(row):
            if dark:
                img.paste(0, (x * SCALE, y * SCALE, (x + 1) * SCALE, (y + 1) * SCALE))
    return img


@pytest.mark.parametrize("digits", [DIGITS, "0" * 60, "98765 43210 " * 6])
def test_drawn_code_decodes_to_the_60_digits(digits: str) -> None:
    results = zxingcpp.read_barcodes(_picture(qr_lines(digits)))
    assert [r.text for r in results] == ["".join(digits.split())]
    assert results[0].format == zxingcpp.BarcodeFormat.QRCode


def test_size_fits_the_dialog() -> None:
    lines = qr_lines(DIGITS)
    side = 25 + 2 * QR_QUIET  # version 2 with its quiet zone
    assert len(lines) == (side + 1) // 2 == 15
    assert all(len(line) == side for line in lines)
    assert set("".join(lines)) <= set(_INK)


def test_drawn_dark_on_light() -> None:
    text = qr_text(DIGITS)
    assert str(text.style) == "black on white"
    assert text.plain.split("\n") == qr_lines(DIGITS)
