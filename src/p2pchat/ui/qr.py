"""A tiny QR encoder for the safety number (numeric mode, version 2, error level M).

The verification screen draws the 60-digit safety number as a QR code so a phone can
read it. No QR package is among the project's dependencies and this is the only code
the app needs, so it is written out here: ISO/IEC 18004, just the parts a fixed
60-digit numeric payload uses (version 2-M holds up to 63 digits). The mask is chosen
by a simplified form of the standard's penalty rules (any of the eight masks decodes; the
penalty only favours the most readable one). Every mask's output was checked module for
module against an independent encoder (segno) while writing this; the tests pin it.
"""

from __future__ import annotations

import itertools

VERSION = 2
SIZE = 17 + 4 * VERSION  # 25 modules
DATA_CODEWORDS = 28  # version 2-M
EC_CODEWORDS = 16
MAX_DIGITS = 63
FORMAT_M = 0b00  # error correction level M in the format bits
ALIGNMENT = 18  # the one alignment pattern centre of version 2 (row and column)

Matrix = list[list[bool]]


class QrError(ValueError):
    """The text cannot be drawn by this encoder (not digits, or too many)."""


# ------------------------------------------------------------------ Reed-Solomon


def _gf_tables() -> tuple[list[int], list[int]]:
    exp = [0] * 512
    log = [0] * 256
    x = 1
    for i in range(255):
        exp[i] = x
        log[x] = i
        x <<= 1
        if x & 0x100:
            x ^= 0x11D
    for i in range(255, 512):
        exp[i] = exp[i - 255]
    return exp, log


_EXP, _LOG = _gf_tables()


def _gf_mul(a: int, b: int) -> int:
    if a == 0 or b == 0:
        return 0
    return _EXP[_LOG[a] + _LOG[b]]


def _generator(degree: int) -> list[int]:
    poly = [1]
    for i in range(degree):
        nxt = [0] * (len(poly) + 1)
        for j, c in enumerate(poly):
            nxt[j] ^= c
            nxt[j + 1] ^= _gf_mul(c, _EXP[i])
        poly = nxt
    return poly


def ec_codewords(data: list[int], count: int = EC_CODEWORDS) -> list[int]:
    """The Reed-Solomon error correction codewords for ``data``."""
    gen = _generator(count)
    rem = [*data, *([0] * count)]
    for i in range(len(data)):
        factor = rem[i]
        if factor:
            for j in range(1, len(gen)):
                rem[i + j] ^= _gf_mul(gen[j], factor)
    return rem[len(data) :]


# ------------------------------------------------------------------ data


def data_codewords(digits: str) -> list[int]:
    """Numeric-mode bit stream for ``digits``, padded to version 2-M's 28 codewords."""
    if not digits.isdigit() or not digits.isascii() or len(digits) > MAX_DIGITS:
        raise QrError("only up to 63 digits fit")
    bits: list[int] = []

    def put(value: int, width: int) -> None:
        bits.extend((value >> i) & 1 for i in reversed(range(width)))

    put(0b0001, 4)  # numeric mode
    put(len(digits), 10)
    for i in range(0, len(digits), 3):
        chunk = digits[i : i + 3]
        put(int(chunk), {3: 10, 2: 7, 1: 4}[len(chunk)])
    capacity = DATA_CODEWORDS * 8
    put(0, min(4, capacity - len(bits)))
    while len(bits) % 8:
        bits.append(0)
    words = [int("".join(map(str, bits[i : i + 8])), 2) for i in range(0, len(bits), 8)]
    pad = 0xEC
    while len(words) < DATA_CODEWORDS:
        words.append(pad)
        pad ^= 0xEC ^ 0x11
    return words


# ------------------------------------------------------------------ matrix


def _function_patterns() -> tuple[Matrix, Matrix]:
    """(modules, reserved): finders, separators, timing, alignment, dark module."""
    dark = [[False] * SIZE for _ in range(SIZE)]
    fixed = [[False] * SIZE for _ in range(SIZE)]

    def setm(r: int, c: int, on: bool) -> None:
        dark[r][c] = on
        fixed[r][c] = True

    for top, left in ((0, 0), (0, SIZE - 7), (SIZE - 7, 0)):
        for dr in range(-1, 8):
            for dc in range(-1, 8):
                r, c = top + dr, left + dc
                if 0 <= r < SIZE and 0 <= c < SIZE:
                    ring = max(abs(dr - 3), abs(dc - 3))
                    setm(r, c, ring not in {2, 4})
    for i in range(8, SIZE - 8):
        setm(6, i, i % 2 == 0)
        setm(i, 6, i % 2 == 0)
    for dr in range(-2, 3):
        for dc in range(-2, 3):
            setm(ALIGNMENT + dr, ALIGNMENT + dc, max(abs(dr), abs(dc)) != 1)
    # Format areas (filled later) and the dark module.
    for i in range(9):
        fixed[8][i] = fixed[i][8] = True
    for i in range(8):
        fixed[8][SIZE - 1 - i] = fixed[SIZE - 1 - i][8] = True
    setm(SIZE - 8, 8, True)
    return dark, fixed


def _place_data(dark: Matrix, fixed: Matrix, codewords: list[int]) -> None:
    bits = [(w >> (7 - i)) & 1 for w in codewords for i in range(8)]
    index = 0
    col = SIZE - 1
    upward = True
    while col > 0:
        if col == 6:
            col -= 1
        rows = range(SIZE - 1, -1, -1) if upward else range(SIZE)
        for r in rows:
            for c in (col, col - 1):
                if not fixed[r][c]:
                    dark[r][c] = bool(bits[index]) if index < len(bits) else False
                    index += 1
        upward = not upward
        col -= 2


_MASKS = (
    lambda r, c: (r + c) % 2 == 0,
    lambda r, c: r % 2 == 0,
    lambda r, c: c % 3 == 0,
    lambda r, c: (r + c) % 3 == 0,
    lambda r, c: (r // 2 + c // 3) % 2 == 0,
    lambda r, c: (r * c) % 2 + (r * c) % 3 == 0,
    lambda r, c: ((r * c) % 2 + (r * c) % 3) % 2 == 0,
    lambda r, c: ((r + c) % 2 + (r * c) % 3) % 2 == 0,
)


def _format_bits(mask: int) -> int:
    data = (FORMAT_M << 3) | mask
    rem = data
    for _ in range(10):
        rem = (rem << 1) ^ ((rem >> 9) * 0x537)
    return ((data << 10) | rem) ^ 0x5412


def _draw_format(dark: Matrix, mask: int) -> None:
    bits = _format_bits(mask)

    def bit(i: int) -> bool:
        return bool((bits >> i) & 1)

    for i in range(6):
        dark[i][8] = bit(i)
    dark[7][8] = bit(6)
    dark[8][8] = bit(7)
    dark[8][7] = bit(8)
    for i in range(9, 15):
        dark[8][14 - i] = bit(i)
    for i in range(8):
        dark[8][SIZE - 1 - i] = bit(i)
    for i in range(8, 15):
        dark[SIZE - 15 + i][8] = bit(i)
    dark[SIZE - 8][8] = True


def _penalty(m: Matrix) -> int:
    score = 0
    lines = [*m, *[list(col) for col in zip(*m, strict=True)]]
    for line in lines:  # runs of five or more
        run = 1
        for a, b in itertools.pairwise(line):
            if a == b:
                run += 1
            else:
                score += run - 2 if run >= 5 else 0
                run = 1
        score += run - 2 if run >= 5 else 0
        text = "".join("1" if x else "0" for x in line)  # finder-like patterns
        score += 40 * (text.count("10111010000") + text.count("00001011101"))
    for r in range(SIZE - 1):  # 2x2 blocks
        for c in range(SIZE - 1):
            if m[r][c] == m[r][c + 1] == m[r + 1][c] == m[r + 1][c + 1]:
                score += 3
    dark = sum(map(sum, m))
    score += abs(dark * 20 - SIZE * SIZE * 10) // (SIZE * SIZE) * 10
    return score


def encode(digits: str, mask: int | None = None) -> Matrix:
    """The QR matrix (True = dark) for up to 63 ``digits``."""
    data = data_codewords(digits)
    codewords = data + ec_codewords(data)
    base, fixed = _function_patterns()
    _place_data(base, fixed, codewords)
    best: Matrix | None = None
    best_score = 0
    for m in range(8) if mask is None else (mask,):
        test = [row[:] for row in base]
        for r in range(SIZE):
            for c in range(SIZE):
                if not fixed[r][c] and _MASKS[m](r, c):
                    test[r][c] = not test[r][c]
        _draw_format(test, m)
        score = _penalty(test)
        if best is None or score < best_score:
            best, best_score = test, score
    assert best is not None
    return best


def render(matrix: Matrix, quiet: int = 2) -> list[str]:
    """Text lines drawing ``matrix`` with half blocks: two modules per character row.

    Dark modules are drawn as spaces on light ground (▀▄█ for light parts), so the code
    reads as dark-on-light whatever the terminal's colours: callers show it with a
    light background and dark foreground.
    """
    size = len(matrix) + 2 * quiet

    def dark(r: int, c: int) -> bool:
        r, c = r - quiet, c - quiet
        return 0 <= r < len(matrix) and 0 <= c < len(matrix) and matrix[r][c]

    lines = []
    for r in range(0, size, 2):
        row = []
        for c in range(size):
            top, bottom = dark(r, c), dark(r + 1, c) if r + 1 < size else False
            row.append(
                {(True, True): "█", (True, False): "▀", (False, True): "▄"}.get((top, bottom), " ")
            )
        lines.append("".join(row))
    return lines
