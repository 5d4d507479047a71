"""Unit tests of manifests and file names: everything a peer sends is hostile."""

from __future__ import annotations

import contextlib
import hashlib
import os
import unicodedata
from pathlib import Path

import msgpack
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from p2pchat.node.files import (
    MAX_NAME_BYTES,
    MAX_THUMB_BYTES,
    Manifest,
    ManifestError,
    decode_manifest,
    describe_local_file,
    image_size,
    inside,
    numbered_name,
    safe_name,
)

DIGEST = hashlib.sha256(b"x").digest()


def good(**changes: object) -> dict[str, object]:
    m: dict[str, object] = {
        "name": "a.txt",
        "size": 10,
        "mime": "text/plain",
        "sha256": DIGEST,
        "chunk": 64000,
    }
    m.update(changes)
    return m


def pack(m: object) -> bytes:
    return msgpack.packb(m, use_bin_type=True)


@given(
    name=st.text(min_size=1, max_size=300),
    size=st.integers(0, 1 << 40),
    chunk=st.integers(1, 65000),
    dims=st.none() | st.tuples(st.integers(1, 65536), st.integers(1, 65536)),
    thumb=st.none() | st.binary(min_size=1, max_size=MAX_THUMB_BYTES),
)
def test_manifest_round_trip(
    name: str, size: int, chunk: int, dims: tuple[int, int] | None, thumb: bytes | None
) -> None:
    m = Manifest(
        name=name,
        size=size,
        mime="image/png",
        sha256=DIGEST,
        chunk=chunk,
        width=dims[0] if dims else None,
        height=dims[1] if dims else None,
        thumb=thumb,
    )
    assert decode_manifest(m.encode()) == m


@pytest.mark.parametrize(
    "bad",
    [
        pack([1, 2]),
        b"\xc1",
        pack(good(name="")),
        pack(good(name=5)),
        pack(good(name="x" * 1025)),
        pack(good(size=-1)),
        pack(good(size=1 << 41)),
        pack(good(size=True)),
        pack(good(size="10")),
        pack(good(sha256=b"short")),
        pack(good(sha256="a" * 32)),
        pack(good(chunk=0)),
        pack(good(chunk=65001)),
        pack(good(w=10)),
        pack(good(w=0, h=10)),
        pack(good(thumb=b"x" * (MAX_THUMB_BYTES + 1))),
        pack(good(dur="long")),
        pack(good(extra=[1, 2])),
        pack({f"k{i}": i for i in range(40)}),
        pack({k: v for k, v in good().items() if k != "sha256"}),
    ],
)
def test_bad_manifests_rejected(bad: bytes) -> None:
    with pytest.raises(ManifestError):
        decode_manifest(bad)


@given(st.binary(max_size=300))
def test_decoder_never_crashes(data: bytes) -> None:
    with contextlib.suppress(ManifestError):
        decode_manifest(data)


def test_unknown_keys_ignored_and_mime_cleaned() -> None:
    m = decode_manifest(pack(good(future="x", mime="Text/HTML; charset=\x1b[2J")))
    assert m.mime == "application/octet-stream"
    assert decode_manifest(pack(good(mime="Image/PNG"))).mime == "image/png"


HOSTILE = [
    "../../etc/passwd",
    "/abs",
    "/",
    "..",
    ".",
    "...",
    "CON",
    "con.txt",
    "NUL.tar.gz",
    "COM1",
    "lpt9.log",
    "a\nb.txt",
    "\x1b[2J.txt",
    "\x1b]0;pwned\x07",
    "evil\u202egnp.exe",
    "..\\..\\windows\\system32",
    "C:\\x.txt",
    "x" * 1000 + ".jpg",
    "é" * 500,
    " . ",
    "\x00",
    ".bashrc",
    "trailing. . ",
]


@pytest.mark.parametrize("name", HOSTILE)
def test_hostile_names_are_defused(name: str, tmp_path: Path) -> None:
    cleaned = safe_name(name)
    check_safe(cleaned, tmp_path)


def check_safe(cleaned: str, folder: Path) -> None:
    assert cleaned
    assert "/" not in cleaned
    assert "\\" not in cleaned
    assert "\x00" not in cleaned
    assert not cleaned.startswith(".")
    assert not cleaned.endswith((".", " "))
    assert all(unicodedata.category(c)[0] != "C" for c in cleaned)
    assert len(cleaned.encode("utf-8")) <= MAX_NAME_BYTES
    assert cleaned.split(".", maxsplit=1)[0].lower() not in {
        "con",
        "prn",
        "aux",
        "nul",
        "com1",
        "lpt9",
    }
    target = inside(folder, cleaned)
    assert target.resolve().parent == folder.resolve()
    assert safe_name(cleaned) == cleaned


@settings(max_examples=300)
@given(st.text(max_size=400))
def test_any_name_is_safe(name: str) -> None:
    folder = Path("/tmp/p2pchat-names")
    check_safe(safe_name(name), folder)


def test_examples() -> None:
    assert safe_name("../../etc/passwd") == "passwd"
    assert safe_name("/abs") == "abs"
    assert safe_name("CON") == "_CON"
    assert safe_name("a\nb.txt") == "ab.txt"
    assert safe_name("\x1b[2J.txt") == "[2J.txt"
    assert safe_name("..") == "file"
    assert safe_name("photo.jpg") == "photo.jpg"
    long = safe_name("x" * 1000 + ".jpg")
    assert long.endswith(".jpg")
    assert numbered_name("photo.jpg", 2) == "photo (2).jpg"
    assert numbered_name("README", 1) == "README (1)"


def test_inside_refuses_escapes(tmp_path: Path) -> None:
    for bad in ("../x", "a/b", "..", "", "/etc"):
        with pytest.raises(ValueError, match="unsafe"):
            inside(tmp_path, bad)


def test_image_size_without_decoding() -> None:
    png = b"\x89PNG\r\n\x1a\n" + b"\x00\x00\x00\rIHDR" + (640).to_bytes(4, "big")
    png += (480).to_bytes(4, "big") + b"\x08\x02\x00\x00\x00"
    assert image_size(png) == (640, 480)
    gif = b"GIF89a" + (32).to_bytes(2, "little") + (16).to_bytes(2, "little")
    assert image_size(gif) == (32, 16)
    assert image_size(b"not an image") is None


def test_describe_local_file_hashes_and_detects(tmp_path: Path) -> None:
    path = tmp_path / "data.bin"
    data = os.urandom(3 * 1024 * 1024 + 7)
    path.write_bytes(data)
    local = describe_local_file(path)
    assert local.manifest.sha256 == hashlib.sha256(data).digest()
    assert local.manifest.size == len(data)
    assert local.manifest.mime == "application/octet-stream"


def test_picture_gets_dimensions_and_small_thumbnail(tmp_path: Path) -> None:
    pil = pytest.importorskip("PIL.Image", reason="Pillow not installed: no thumbnails")
    path = tmp_path / "pic.png"
    img = pil.new("RGB", (800, 600))
    for x in range(0, 800, 7):
        for y in range(0, 600, 5):
            img.putpixel((x, y), (x % 256, y % 256, (x * y) % 256))
    img.save(path)
    m = describe_local_file(path).manifest
    assert (m.mime, m.width, m.height) == ("image/png", 800, 600)
    assert m.thumb is not None
    assert len(m.thumb) <= MAX_THUMB_BYTES
    assert m.thumb.startswith(b"\xff\xd8")
    assert len(m.encode()) < 49152
