"""Real pixels for a file card's preview, laid over the rows the card keeps for it.

Only used when ``ui.graphics`` found a graphics protocol at start-up (kitty graphics or
sixel); otherwise the card itself holds the half-block drawing and no widget is needed.
The card's text keeps blank rows marked :data:`~p2pchat.ui.media.PREVIEW_ROW`, so the
message's height and wrapping are the same either way; this widget is placed over them
with absolute positioning.
"""

from __future__ import annotations

from rich.text import Text
from textual.widget import Widget

from p2pchat.ui import graphics
from p2pchat.ui.media import PREVIEW_ROW, Preview


def preview_row(lines: list[Text]) -> int:
    """The index of the first line holding preview rows, or -1."""
    for index, line in enumerate(lines):
        for span in line.spans:
            if span.style == PREVIEW_ROW:
                return index
    return -1


def picture_widget(preview: Preview) -> Widget | None:
    """A textual-image widget showing ``preview`` with the detected protocol, if any."""
    drawing = graphics.protocol()
    if drawing == "halfcell":
        return None
    from textual_image.widget import SixelImage, TGPImage

    kind = SixelImage if drawing == "sixel" else TGPImage
    widget = kind(preview.picture, classes="preview-picture")
    widget.styles.position = "absolute"
    widget.styles.width = preview.columns
    widget.styles.height = preview.rows
    return widget
