"""The ``sticker`` envelope body, sticker names, and checking a sticker's picture.

A sticker message carries no picture: its body is a small msgpack map naming the
picture by its SHA-256 (``sha256``, ``size``, ``mime``, ``pack``, ``name``); the bytes
are pulled once per person over a files connection and cached by that hash
(:mod:`p2pchat.node.stickers`). So sending a sticker again costs a few dozen bytes.

Everything here is untrusted input from a peer: the body is decoded with msgpack limits
and every field bounded; pack and sticker names are a small ASCII alphabet (letters,
digits, ``-``, ``_``), so they are safe on a terminal, in a command line and never a
path; a picture is decoded only through :func:`p2pchat.node.images.open_image` with the
sticker formats and a pixel cap. No I/O beyond what the caller hands in.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import msgpack

from p2pchat.node.images import UnsafeImageError, open_image

KIND_STICKER: Final = "sticker"
#: The picture formats a sticker may be (transparency kept): nothing else is decoded.
STICKER_FORMATS: Final = ("PNG", "WEBP", "GIF")
STICKER_MIMES: Final = {"PNG": "image/png", "WEBP": "image/webp", "GIF": "image/gif"}
#: Largest sticker picture, in bytes: a sticker is small (a 512x512 WebP is ~30 KB).
MAX_STICKER_BYTES: Final = 256 * 1024
#: Largest declared picture: refused before a pixel is decoded (decompression bombs).
MAX_STICKER_SIDE: Final = 1024
MAX_STICKER_PIXELS: Final = MAX_STICKER_SIDE * MAX_STICKER_SIDE
#: Animated stickers: at most this many frames (each frame is decoded to be shown).
MAX_STICKER_FRAMES: Final = 100
#: Pack and sticker names: 1 to 32 of these characters.
MAX_NAME: Final = 32
_NAME = re.compile(r"[A-Za-z0-9_-]{1,32}")
#: The body's msgpack map: at most this many keys (unknown ones are ignored).
MAX_BODY_KEYS: Final = 16


class StickerError(ValueError):
    """A sticker body, name or picture is unacceptable; the message says why."""


def valid_name(name: object) -> bool:
    """True for a pack or sticker name we accept (ASCII letters, digits, ``-``, ``_``)."""
    return isinstance(name, str) and _NAME.fullmatch(name) is not None


def name_from_file(path: Path) -> str:
    """A sticker name made from a file's name: unsupported characters become ``_``."""
    stem = re.sub(r"[^A-Za-z0-9_-]", "_", path.stem)[:MAX_NAME].strip("_") or "sticker"
    return stem


@dataclass(frozen=True, slots=True)
class StickerRef:
    """What a ``sticker`` message says: which picture, and the pack it came from."""

    sha256: bytes
    size: int
    mime: str
    pack: str
    name: str

    @property
    def label(self) -> str:
        """``pack/name``: how people type and see it (both names are plain ASCII)."""
        return f"{self.pack}/{self.name}"

    def encode(self) -> bytes:
        """The msgpack body of the ``sticker`` envelope."""
        body = {
            "sha256": self.sha256,
            "size": self.size,
            "mime": self.mime,
            "pack": self.pack,
            "name": self.name,
        }
        return msgpack.packb(body, use_bin_type=True)


def decode_sticker(body: bytes) -> StickerRef:
    """Parse and check a ``sticker`` envelope body from anyone; raise StickerError."""
    if len(body) > 1024:
        raise StickerError("a sticker body is at most 1024 bytes")
    try:
        m: Any = msgpack.unpackb(
            body,
            raw=False,
            strict_map_key=True,
            max_str_len=256,
            max_bin_len=32,
            max_array_len=0,
            max_map_len=MAX_BODY_KEYS,
            max_ext_len=0,
        )
    except (ValueError, msgpack.UnpackException, TypeError) as exc:
        raise StickerError(f"not a msgpack map: {exc}") from None
    if not isinstance(m, dict):
        raise StickerError("a sticker body is a map")
    digest = m.get("sha256")
    if not isinstance(digest, bytes) or len(digest) != 32:
        raise StickerError("'sha256' must be 32 bytes")
    size = m.get("size")
    if isinstance(size, bool) or not isinstance(size, int) or not 1 <= size <= MAX_STICKER_BYTES:
        raise StickerError(f"'size' must be between 1 and {MAX_STICKER_BYTES}")
    mime = m.get("mime")
    if mime not in STICKER_MIMES.values():
        raise StickerError("'mime' must be image/png, image/webp or image/gif")
    pack, name = m.get("pack"), m.get("name")
    if not valid_name(pack) or not valid_name(name):
        raise StickerError("'pack' and 'name' must be 1-32 letters, digits, '-' or '_'")
    assert isinstance(pack, str)
    assert isinstance(name, str)
    return StickerRef(sha256=digest, size=size, mime=str(mime), pack=pack, name=name)


def check_picture(data: bytes) -> tuple[str, int, int]:
    """The mime type, width and height of a sticker picture; StickerError if unsafe.

    Decodes every frame (bounded in pixels and frames) so a damaged picture is refused
    here, once, rather than failing wherever it is shown.
    """
    if not 0 < len(data) <= MAX_STICKER_BYTES:
        raise StickerError(f"a sticker is 1 byte to {MAX_STICKER_BYTES // 1024} KiB")
    try:
        with open_image(data, formats=STICKER_FORMATS, max_pixels=MAX_STICKER_PIXELS) as img:
            fmt = str(img.format)
            width, height = img.size
            frames = int(getattr(img, "n_frames", 1))
            if frames > MAX_STICKER_FRAMES:
                raise StickerError(f"an animated sticker has at most {MAX_STICKER_FRAMES} frames")
            img.load()
    except UnsafeImageError as exc:
        raise StickerError(f"not a sticker picture: {exc}") from None
    except StickerError:
        raise
    except Exception as exc:
        raise StickerError(f"damaged picture: {type(exc).__name__}") from None
    return STICKER_MIMES[fmt], width, height
