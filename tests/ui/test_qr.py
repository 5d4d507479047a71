"""The safety-number QR encoder (ui/qr.py): structure, and output pinned per mask.

The pinned digest was checked against an independent encoder (segno 1.6: the same
digits, version 2, level M and mask give the same 25x25 modules) when it was written.
"""

from __future__ import annotations

import hashlib

import pytest

from p2pchat.ui.qr import QrError, data_codewords, ec_codewords, encode, render

DIGITS = "123456789012345678901234567890123456789012345678901234567890"


def _digest(matrix: list[list[bool]]) -> str:
    bits = "".join("1" if x else "0" for row in matrix for x in row)
    return hashlib.sha256(bits.encode()).hexdigest()


def test_pinned_modules_for_mask_0() -> None:
    expected = "60dfdea0c55117d5924291db1887ab07e459f83cd89854f5b62ac0cb677bf16d"
    assert _digest(encode(DIGITS, 0)) == expected


def test_finder_patterns_and_timing() -> None:
    m = encode(DIGITS)
    assert len(m) == 25
    assert all(len(row) == 25 for row in m)
    for top, left in ((0, 0), (0, 18), (18, 0)):
        assert all(m[top][left + i] for i in range(7))  # finder's outer ring
        assert not m[top + 1][left + 1]
        assert m[top + 3][left + 3]  # the centre
    assert [m[6][c] for c in range(8, 17)] == [c % 2 == 0 for c in range(8, 17)]
    assert m[17][8]  # the dark module


def test_reed_solomon_of_a_known_block() -> None:
    # ISO/IEC 18004 annex I example (version 1-M "01234567"): data and EC codewords.
    data = [0x10, 0x20, 0x0C, 0x56, 0x61, 0x80, 0xEC, 0x11, 0xEC, 0x11, 0xEC, 0x11, 0xEC]
    data += [0x11, 0xEC, 0x11]
    assert ec_codewords(data, 10) == [0xA5, 0x24, 0xD4, 0xC1, 0xED, 0x36, 0xC7, 0x87, 0x2C, 0x55]


def test_numeric_bitstream_and_limits() -> None:
    words = data_codewords(DIGITS)
    assert len(words) == 28
    assert words[0] >> 4 == 0b0001  # numeric mode
    with pytest.raises(QrError):
        data_codewords("12ab")
    with pytest.raises(QrError):
        data_codewords("1" * 64)


def test_render_uses_half_blocks() -> None:
    lines = render(encode(DIGITS))
    assert len(lines) == 15  # (25 + 2 * 2) / 2 rounded up
    assert all(len(line) == 29 for line in lines)
    assert set("".join(lines)) <= {" ", "▀", "▄", "█"}
