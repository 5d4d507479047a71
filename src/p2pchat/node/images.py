"""Opening pictures we did not make, without handing them to a dangerous decoder.

Pillow identifies an image by its first bytes and, left to itself, tries every format
it knows: a "photo" that is really PostScript (EPS) is rendered by running Ghostscript
on the sender's program, and many rarely used decoders have had memory bugs. Pictures
reach us from peers (offer thumbnails) and from the disk (a file the person shares may
itself have come from a stranger, under any name), so every decode in p2pchat goes
through :func:`open_image`: only the formats listed here are ever tried, and an image
declaring more pixels than the caller's cap is refused before a single pixel is decoded
(a few kilobytes of PNG can declare gigapixels: a decompression bomb).

Pillow is imported only when a picture is opened (it is slow to import).
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    from PIL.ImageFile import ImageFile

#: What a thumbnail inside an offer may be: the reference sends JPEG; PNG is the other
#: format a compatible sender would plausibly pick. Nothing else is decoded.
THUMBNAIL_FORMATS: Final = ("JPEG", "PNG")
#: The pictures we make thumbnails of when offering a file: the ones we recognise by
#: their first bytes (files.guess_mime). A file of another format gets no thumbnail.
PICTURE_FORMATS: Final = ("JPEG", "PNG", "GIF", "WEBP")
#: A local picture larger than this is not decoded for a thumbnail.
MAX_PICTURE_PIXELS: Final = 100_000_000


class UnsafeImageError(ValueError):
    """The bytes are not an image we are willing to decode (format or size)."""


@contextlib.contextmanager
def open_image(
    source: bytes | Path, *, formats: tuple[str, ...], max_pixels: int
) -> Iterator[ImageFile]:
    """The image in ``source`` (bytes or a file), identified only among ``formats``.

    Raises UnsafeImageError when it is none of them or declares more than
    ``max_pixels`` pixels, and Pillow's own errors (OSError, ValueError...) for damaged
    data; callers treat any failure as "no picture". Pixels are decoded only when the
    caller asks (``convert``, ``load``), after these checks.
    """
    from PIL import Image, UnidentifiedImageError

    fp = io.BytesIO(source) if isinstance(source, bytes) else source
    try:
        img = Image.open(fp, formats=list(formats))
    except UnidentifiedImageError:
        raise UnsafeImageError(f"not one of the accepted formats {', '.join(formats)}") from None
    except Image.DecompressionBombError as exc:  # Pillow's own, much higher, cap
        raise UnsafeImageError(str(exc)) from None
    with img:
        # Belt and braces: the plugin that claimed the bytes must be one we asked for.
        if img.format not in formats:
            raise UnsafeImageError(f"unexpected image format {img.format!r}")
        width, height = img.size
        if width <= 0 or height <= 0 or width * height > max_pixels:
            raise UnsafeImageError(f"image of {width}x{height} pixels is too large")
        yield img
