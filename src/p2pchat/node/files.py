"""File manifests, safe file names, hashing while reading, and cheap media metadata.

A ``file`` envelope's body is a msgpack map (the *manifest*, see docs/files.md). This
module builds it on the sender (hashing the file in one streaming pass, never holding it
in memory), checks one received from a peer, and turns the name a peer chose into one
that is safe to create inside the download folder.

It must never trust a manifest: every field is bounded and typed before use, and a name
from a peer is only ever used through :func:`safe_name` (which cannot produce a path
separator, a parent reference, an absolute path, a control character, a leading dot or
a Windows reserved name). It does no network I/O and never touches the store.
"""

from __future__ import annotations

import hashlib
import io
import mimetypes
import os
import re
import struct
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import msgpack

from p2pchat.node.images import MAX_PICTURE_PIXELS, PICTURE_FORMATS, open_image
from p2pchat.wire import MAX_CHUNK_DATA

#: Chunk size the sender announces (and the receiver asks for): one ``chunk`` frame.
DEFAULT_CHUNK: Final = 64000
#: The largest file we offer or accept (1 TiB): far beyond a LAN chat's needs, but a
#: bound keeps arithmetic and progress meaningful.
MAX_FILE_SIZE: Final = 1 << 40
#: A declared name longer than this (in code points) makes the manifest invalid.
MAX_MANIFEST_NAME: Final = 1024
#: A sanitised name is at most this many UTF-8 bytes: common filesystems allow 255, and
#: the rest leaves room for a " (12345)" suffix.
MAX_NAME_BYTES: Final = 200
MAX_MIME_CHARS: Final = 127
#: A thumbnail travels inside the envelope, so it must stay small.
MAX_THUMB_BYTES: Final = 8192
MAX_DIMENSION: Final = 1 << 16
MAX_MANIFEST_KEYS: Final = 32
#: Edge of the thumbnail box, in pixels.
THUMB_BOX: Final = 96
HASH_BLOCK: Final = 1 << 20
FALLBACK_NAME: Final = "file"
DEFAULT_MIME: Final = "application/octet-stream"

_MIME_RE: Final = re.compile(r"^[a-z0-9][a-z0-9!#$&^_.+-]{0,63}/[a-z0-9][a-z0-9!#$&^_.+-]{0,63}$")
# Characters Windows (and so USB sticks, shares) refuse in names, plus both separators.
_FORBIDDEN_CHARS: Final = frozenset('<>:"/\\|?*')
#: Categories never kept in a name: controls, format characters (bidi, zero-width,
#: BOM), surrogates, private use, unassigned, line and paragraph separators.
_DROPPED_CATEGORIES: Final = frozenset(("Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"))
#: Unicode's Default_Ignorable_Code_Point ranges (DerivedCoreProperties.txt), most of
#: which are Cf already; the rest are invisible fillers (Hangul fillers U+115F, U+1160,
#: U+3164, U+FFA0), the combining grapheme joiner, variation selectors (which also
#: change an emoji's width in some terminals) and tags. Plus the emoji skin-tone
#: modifiers: alone they draw a swatch whose width terminals disagree on.
_DEFAULT_IGNORABLE: Final = (
    (0x00AD, 0x00AD),
    (0x034F, 0x034F),
    (0x061C, 0x061C),
    (0x115F, 0x1160),
    (0x17B4, 0x17B5),
    (0x180B, 0x180F),
    (0x200B, 0x200F),
    (0x202A, 0x202E),
    (0x2060, 0x206F),
    (0x3164, 0x3164),
    (0xFE00, 0xFE0F),
    (0xFEFF, 0xFEFF),
    (0xFFA0, 0xFFA0),
    (0xFFF0, 0xFFF8),
    (0x1BCA0, 0x1BCA3),
    (0x1D173, 0x1D17A),
    (0x1F3FB, 0x1F3FF),
    (0xE0000, 0xE0FFF),
)
#: Combining marks, drawn on the character before them.
_MARK_CATEGORIES: Final = frozenset(("Mn", "Mc", "Me"))
#: Hangul vowel and final-consonant jamo: they join the syllable before them (zero
#: cells of their own), like marks.
_JAMO_MARKS: Final = ((0x1161, 0x11FF), (0xD7B0, 0xD7FF))
#: Marks kept on one character: enough for any script's syllables, not for a tower of
#: accents spilling onto the lines around ("Zalgo" text).
MAX_MARKS: Final = 2
#: What may not begin a name: dots (hidden files, ``..``), spaces, and ``-``/``~``
#: (``-rf`` is an option to a shell command, ``~`` a home folder).
_LEADING: Final = re.compile(r"^[ .\-~]+")
_RESERVED: Final = frozenset(
    {"con", "prn", "aux", "nul", "conin$", "conout$"}
    | {f"com{c}" for c in "123456789¹²³"}
    | {f"lpt{c}" for c in "123456789¹²³"}
)


class ManifestError(ValueError):
    """A manifest is malformed or out of bounds; the message says which field."""


@dataclass(frozen=True, slots=True)
class Manifest:
    """What a ``file`` message says about the file it offers."""

    name: str
    size: int
    mime: str
    sha256: bytes
    chunk: int = DEFAULT_CHUNK
    width: int | None = None
    height: int | None = None
    thumb: bytes | None = None
    duration: float | None = None

    @property
    def is_image(self) -> bool:
        """True when the sender said it is a picture (and gave its dimensions)."""
        return self.mime.startswith("image/") and self.width is not None

    def encode(self) -> bytes:
        """The msgpack body of the ``file`` envelope (optional fields only when set)."""
        body: dict[str, Any] = {
            "name": self.name,
            "size": self.size,
            "mime": self.mime,
            "sha256": self.sha256,
            "chunk": self.chunk,
        }
        if self.width is not None and self.height is not None:
            body["w"] = self.width
            body["h"] = self.height
        if self.thumb:
            body["thumb"] = self.thumb
        if self.duration is not None:
            body["dur"] = self.duration
        return msgpack.packb(body, use_bin_type=True)


def _int(m: dict[str, Any], key: str, lo: int, hi: int, *, required: bool = True) -> int | None:
    value = m.get(key)
    if value is None and not required:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise ManifestError(f"{key!r} must be an integer")
    if not lo <= value <= hi:
        raise ManifestError(f"{key!r} must be between {lo} and {hi}")
    return value


def decode_manifest(body: bytes) -> Manifest:
    """Parse and check a ``file`` envelope body from anyone; raise ManifestError.

    Unknown keys are ignored (a newer sender may add some); values must be scalars.
    """
    try:
        m = msgpack.unpackb(
            body,
            raw=False,
            strict_map_key=True,
            max_str_len=4 * MAX_MANIFEST_NAME,
            max_bin_len=max(MAX_THUMB_BYTES, 32),
            max_array_len=0,
            max_map_len=MAX_MANIFEST_KEYS,
            max_ext_len=0,
        )
    except (ValueError, msgpack.UnpackException, TypeError) as exc:
        raise ManifestError(f"not a msgpack map: {exc}") from None
    if not isinstance(m, dict):
        raise ManifestError("a manifest is a map")
    name = m.get("name")
    if not isinstance(name, str) or not 1 <= len(name) <= MAX_MANIFEST_NAME:
        raise ManifestError(f"'name' must be text of 1 to {MAX_MANIFEST_NAME} characters")
    size = _int(m, "size", 0, MAX_FILE_SIZE)
    assert size is not None
    mime = m.get("mime")
    if not isinstance(mime, str) or len(mime) > MAX_MIME_CHARS:
        raise ManifestError("'mime' must be text")
    digest = m.get("sha256")
    if not isinstance(digest, bytes) or len(digest) != 32:
        raise ManifestError("'sha256' must be 32 bytes")
    chunk = _int(m, "chunk", 1, MAX_CHUNK_DATA)
    assert chunk is not None
    width = _int(m, "w", 1, MAX_DIMENSION, required=False)
    height = _int(m, "h", 1, MAX_DIMENSION, required=False)
    if (width is None) != (height is None):
        raise ManifestError("'w' and 'h' come together")
    thumb = m.get("thumb")
    if thumb is not None and (not isinstance(thumb, bytes) or len(thumb) > MAX_THUMB_BYTES):
        raise ManifestError(f"'thumb' must be at most {MAX_THUMB_BYTES} bytes")
    duration = m.get("dur")
    if duration is not None:
        if isinstance(duration, bool) or not isinstance(duration, int | float):
            raise ManifestError("'dur' must be a number")
        if not 0 <= duration < 1e9:
            raise ManifestError("'dur' is out of range")
        duration = float(duration)
    return Manifest(
        name=name,
        size=size,
        mime=clean_mime(mime),
        sha256=digest,
        chunk=chunk,
        width=width,
        height=height,
        thumb=thumb or None,
        duration=duration,
    )


def clean_mime(mime: str) -> str:
    """A peer's mime type if it looks like ``type/subtype``, else the neutral default."""
    lowered = mime.strip().lower()
    return lowered if _MIME_RE.fullmatch(lowered) else DEFAULT_MIME


# ------------------------------------------------------------------ names


def _truncate_utf8(text: str, limit: int) -> str:
    encoded = text.encode("utf-8")
    if len(encoded) <= limit:
        return text
    return encoded[:limit].decode("utf-8", errors="ignore")


def _invisible(ch: str) -> bool:
    """Characters that draw nothing (or not reliably) and so can hide what a name says."""
    code = ord(ch)
    return unicodedata.category(ch) in _DROPPED_CATEGORIES or any(
        lo <= code <= hi for lo, hi in _DEFAULT_IGNORABLE
    )


def _is_mark(ch: str) -> bool:
    """A character drawn on top of the one before it (zero cells of its own)."""
    code = ord(ch)
    return unicodedata.category(ch) in _MARK_CATEGORIES or any(
        lo <= code <= hi for lo, hi in _JAMO_MARKS
    )


def _visible_chars(text: str) -> str:
    """``text`` without invisible characters, each mark kept only after a visible
    character and at most MAX_MARKS of them in a row (so every character has cells of
    its own, or is one of a few marks on the one before it)."""
    kept: list[str] = []
    marks = 0
    for ch in text:
        if _invisible(ch):
            continue
        if _is_mark(ch):
            if not kept or marks >= MAX_MARKS:
                continue
            marks += 1
            kept.append(ch)
            continue
        marks = 0
        if ch in _FORBIDDEN_CHARS:
            kept.append("_")
        elif unicodedata.category(ch) == "Zs" or ch == "\u2800":
            kept.append(" ")  # odd-width and invisible blanks become a plain space
        else:
            kept.append(ch)
    return "".join(kept)


def safe_name(name: str) -> str:
    """A file name (no directory part) that is safe to create inside the download folder.

    Takes the last path component (so ``../../etc/passwd`` becomes ``passwd``), drops
    control, format and other invisible characters (escape sequences, bidi overrides
    that would disguise an extension, BOM, zero-width and filler characters that make a
    name look like another or misalign a list), keeps at most MAX_MARKS combining marks
    per character, replaces characters Windows forbids, removes leading dots (no hidden
    files, no ``..``), leading ``-`` and ``~`` (a name a shell would read as an option
    or a home folder) and trailing dots and spaces, defuses reserved device names
    (``CON``, ``NUL.txt``, ``COM1`` ...), limits the length while keeping the extension,
    and never returns an empty string. Idempotent.
    """
    text = unicodedata.normalize("NFC", name)
    for sep in ("/", "\\"):
        parts = [p for p in text.split(sep) if p.strip(" .")]
        text = parts[-1] if parts else ""
    # Removing characters can leave marks next to new neighbours: normalise and clean
    # until nothing changes (twice is the most it takes).
    while True:
        cleaned = _visible_chars(text)
        cleaned = _LEADING.sub("", cleaned).rstrip(" .")
        # Collapse runs of spaces a peer may use to push the extension out of view.
        cleaned = re.sub(r" {2,}", " ", cleaned)
        cleaned = unicodedata.normalize("NFC", cleaned)
        if cleaned == text:
            break
        text = cleaned
    if not text:
        text = FALLBACK_NAME
    stem = text.partition(".")[0]
    if stem.rstrip(" ").lower() in _RESERVED:
        text = "_" + text
    if len(text.encode("utf-8")) > MAX_NAME_BYTES:
        base, ext = os.path.splitext(text)
        ext = _truncate_utf8(ext, 20) if len(ext) <= 21 else ""
        base = _truncate_utf8(base, MAX_NAME_BYTES - len(ext.encode("utf-8")))
        text = (base.rstrip(" .") or FALLBACK_NAME) + ext
    return text


def numbered_name(name: str, n: int) -> str:
    """``photo (n).jpg`` for ``photo.jpg``: the n-th alternative when a name is taken."""
    if n == 0:
        return name
    base, ext = os.path.splitext(name)
    if not base:  # ".bashrc"-like names never reach here (safe_name strips the dot)
        base, ext = name, ""
    return f"{base} ({n}){ext}"


def inside(folder: Path, name: str) -> Path:
    """``folder / name``, checked to stay directly inside ``folder`` (defence in depth)."""
    target = folder / name
    if target.parent != folder or name in ("", ".", "..") or os.sep in name:
        raise ValueError(f"unsafe file name {name!r}")
    return target


# ------------------------------------------------------------------ reading local files


@dataclass(frozen=True, slots=True)
class LocalFile:
    """A file we are about to offer: its manifest and what identifies this version of it."""

    path: Path
    manifest: Manifest
    mtime_ns: int


def hash_file(path: Path, progress: Callable[[int], None] | None = None) -> tuple[bytes, int]:
    """SHA-256 and length of ``path``, read in 1 MiB blocks (never the whole file)."""
    digest = hashlib.sha256()
    total = 0
    with path.open("rb") as f:
        while block := f.read(HASH_BLOCK):
            digest.update(block)
            total += len(block)
            if progress is not None:
                progress(total)
    return digest.digest(), total


def guess_mime(name: str, head: bytes) -> str:
    """The mime type from the first bytes (common media) or else the file name."""
    sniffed = _sniff(head)
    if sniffed is not None:
        return sniffed
    guessed, _ = mimetypes.guess_type(name, strict=False)
    return clean_mime(guessed) if guessed else DEFAULT_MIME


def _sniff(head: bytes) -> str | None:
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if head.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if head[:6] in (b"GIF87a", b"GIF89a"):
        return "image/gif"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "image/webp"
    if head[:4] == b"RIFF" and head[8:12] == b"WAVE":
        return "audio/wav"
    if head.startswith(b"%PDF-"):
        return "application/pdf"
    return None


def image_size(head: bytes) -> tuple[int, int] | None:
    """Width and height of a PNG, GIF or JPEG from its first bytes, without decoding it."""
    try:
        if head.startswith(b"\x89PNG\r\n\x1a\n") and head[12:16] == b"IHDR":
            w, h = struct.unpack(">II", head[16:24])
        elif head[:6] in (b"GIF87a", b"GIF89a"):
            w, h = struct.unpack("<HH", head[6:10])
        elif head.startswith(b"\xff\xd8"):
            found = _jpeg_size(head)
            if found is None:
                return None
            w, h = found
        else:
            return None
    except struct.error:
        return None
    if 1 <= w <= MAX_DIMENSION and 1 <= h <= MAX_DIMENSION:
        return int(w), int(h)
    return None


def _jpeg_size(data: bytes) -> tuple[int, int] | None:
    i = 2
    while i + 9 < len(data):
        if data[i] != 0xFF:
            return None
        marker = data[i + 1]
        if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7:
            i += 2
            continue
        length = int.from_bytes(data[i + 2 : i + 4], "big")
        # SOF0..SOF15 except DHT (C4), JPG (C8) and DAC (CC) carry the frame size.
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
            h, w = struct.unpack(">HH", data[i + 5 : i + 9])
            return w, h
        i += 2 + length
    return None


def _wav_duration(path: Path) -> float | None:
    import wave

    try:
        with wave.open(str(path), "rb") as w:
            rate = w.getframerate()
            return w.getnframes() / rate if rate else None
    except (wave.Error, EOFError, OSError):
        return None


def make_thumbnail(path: Path) -> tuple[int, int, bytes] | None:
    """(width, height, JPEG thumbnail ≤ MAX_THUMB_BYTES) of an image, if Pillow is here.

    Pillow is optional: without it pictures still get their dimensions (read from the
    header by :func:`image_size`) but no thumbnail.
    """
    try:
        # The file may have come from anyone, under any name: only the picture formats
        # we recognise are decoded (never EPS, which runs Ghostscript), size-capped.
        with open_image(path, formats=PICTURE_FORMATS, max_pixels=MAX_PICTURE_PIXELS) as img:
            width, height = img.size
            img.draft("RGB", (THUMB_BOX * 2, THUMB_BOX * 2))
            small = img.convert("RGB")
            small.thumbnail((THUMB_BOX, THUMB_BOX))
            for quality in (75, 60, 45, 30):
                out = io.BytesIO()
                small.save(out, format="JPEG", quality=quality, optimize=True)
                if out.tell() <= MAX_THUMB_BYTES:
                    return width, height, out.getvalue()
    except Exception:  # any decoder failure (or no Pillow) just means "no thumbnail"
        return None
    return None


def describe_local_file(path: Path, progress: Callable[[int], None] | None = None) -> LocalFile:
    """Hash ``path`` and build its manifest (blocking: run it in a thread).

    Raises OSError if the file cannot be read and ValueError if it is not a regular file
    or too large. The file's size and mtime are taken before hashing and checked after,
    so a file that changes while being read is reported rather than mis-described.
    """
    before = path.stat()
    if not path.is_file():
        raise ValueError(f"{path} is not a regular file")
    if before.st_size > MAX_FILE_SIZE:
        raise ValueError(f"{path} is larger than {MAX_FILE_SIZE} bytes")
    with path.open("rb") as f:
        head = f.read(65536)
    digest, size = hash_file(path, progress)
    after = path.stat()
    if size != after.st_size or after.st_mtime_ns != before.st_mtime_ns:
        raise ValueError(f"{path} changed while it was being read; try again")
    name = safe_name(path.name)
    mime = guess_mime(name, head)
    width = height = None
    thumb = None
    duration = None
    if mime.startswith("image/"):
        made = make_thumbnail(path)
        if made is not None:
            width, height, thumb = made
        else:
            dims = image_size(head)
            if dims is not None:
                width, height = dims
    elif mime == "audio/wav":
        duration = _wav_duration(path)
    manifest = Manifest(
        name=name,
        size=size,
        mime=mime,
        sha256=digest,
        chunk=DEFAULT_CHUNK,
        width=width,
        height=height,
        thumb=thumb,
        duration=duration,
    )
    return LocalFile(path=path, manifest=manifest, mtime_ns=after.st_mtime_ns)
