"""Readable text in light themes: every glyph at least WCAG AA contrast (4.5:1).

The app's secondary text, ticks and presence marks use fixed colours (``grey62``,
``bright_green``) chosen for dark backgrounds; on a light background some fall to 2:1,
and borders drawn in a lightened panel colour vanish. Rather than a second set of
colours in every widget (which would drift), a line filter runs over what is drawn
and darkens any foreground that is too close to its background, only as far as
needed (so colours keep their hue). Dark themes are left exactly as they are.

Contrast is judged on the colours the terminal will really show: a 256-colour terminal
(tmux, macOS Terminal) gets each colour rounded to its palette, which can lose a third
of the contrast (4.6:1 drawn became 3.8:1 shown), so there the rounded colours are
measured.
"""

from __future__ import annotations

from functools import lru_cache

from rich.color import Color as RichColor
from rich.color import ColorSystem
from rich.segment import Segment
from rich.style import Style
from textual.color import Color
from textual.filter import LineFilter

#: WCAG 2.1 AA for normal text.
AA_TEXT = 4.5
_STEP = 0.05


def luminance(color: Color) -> float:
    """WCAG relative luminance (0 black … 1 white)."""

    def channel(value: int) -> float:
        c = value / 255
        return c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4

    return 0.2126 * channel(color.r) + 0.7152 * channel(color.g) + 0.0722 * channel(color.b)


def contrast_ratio(a: Color, b: Color) -> float:
    """WCAG contrast ratio of two opaque colours (1 … 21)."""
    la, lb = luminance(a), luminance(b)
    light, dark = max(la, lb), min(la, lb)
    return (light + 0.05) / (dark + 0.05)


def shown(color: Color, system: ColorSystem = ColorSystem.TRUECOLOR) -> Color:
    """``color`` as a terminal of colour system ``system`` shows it (its palette's nearest)."""
    if system == ColorSystem.TRUECOLOR:
        return color
    rich = RichColor.from_rgb(color.r, color.g, color.b).downgrade(system)
    red, green, blue = rich.get_truecolor()
    return Color(red, green, blue)


@lru_cache(4096)
def readable(
    foreground: Color,
    background: Color,
    minimum: float = AA_TEXT,
    system: ColorSystem = ColorSystem.TRUECOLOR,
) -> Color:
    """``foreground``, moved toward black or white (away from ``background``) until
    it reaches ``minimum`` contrast as shown in colour system ``system``; unchanged
    when it already does."""
    ground = shown(background, system)

    def enough(color: Color) -> bool:  # as drawn, and as the terminal rounds it
        return (
            contrast_ratio(color, background) >= minimum
            and contrast_ratio(shown(color, system), ground) >= minimum
        )

    if enough(foreground):
        return foreground
    target = Color(0, 0, 0) if luminance(background) > 0.18 else Color(255, 255, 255)
    amount = _STEP
    while amount < 1:
        candidate = foreground.blend(target, amount)
        if enough(candidate):
            return candidate
        amount += _STEP
    return target


#: WCAG 2.1 AA for user-interface parts (borders, rules).
AA_GRAPHICS = 3.0
_BOX_DRAWING = range(0x2500, 0x2580)
_BLOCKS = range(0x2580, 0x25A0)


def needed_contrast(text: str) -> float:
    """What ``text`` must reach: 4.5 for text, 3 for lines, 0 for blocks.

    Block elements draw pictures (image previews, the QR code) and Textual's shaded
    borders and scrollbars, whose colours are the picture itself: never changed.
    """
    minimum = 0.0
    for char in text:
        code = ord(char)
        if char == " " or code in _BLOCKS:
            continue
        if code in _BOX_DRAWING:
            minimum = max(minimum, AA_GRAPHICS)
        else:
            return AA_TEXT
    return minimum


@lru_cache(4096)
def _readable_style(
    style: Style, screen_background: Color, minimum: float, system: ColorSystem
) -> Style:
    if style.color is None or style.reverse:
        return style
    foreground = Color.from_rich_color(style.color).with_alpha(1)
    background = (
        Color.from_rich_color(style.bgcolor) if style.bgcolor is not None else screen_background
    )
    fixed = readable(foreground, background.with_alpha(1), minimum, system)
    if fixed == foreground:
        return style
    return style + Style(color=RichColor.from_rgb(fixed.r, fixed.g, fixed.b))


def readable_segment(
    segment: Segment, background: Color, system: ColorSystem = ColorSystem.TRUECOLOR
) -> Segment:
    """``segment`` with its foreground raised to the contrast its glyphs need."""
    text, style, control = segment
    if style is None or control:
        return segment
    minimum = needed_contrast(text)
    if not minimum:
        return segment
    return Segment(text, _readable_style(style, background, minimum, system), control)


class ContrastFilter(LineFilter):
    """Raise too-faint foregrounds to AA contrast (enabled for light themes only).

    ``system`` is the terminal's colour system (the app's console knows it).
    """

    def __init__(self, enabled: bool = True, system: ColorSystem = ColorSystem.TRUECOLOR) -> None:
        super().__init__(enabled)
        self.system = system

    def apply(self, segments: list[Segment], background: Color) -> list[Segment]:
        """Each segment with a foreground too close to its background gets a darker one."""
        return [readable_segment(segment, background, self.system) for segment in segments]
