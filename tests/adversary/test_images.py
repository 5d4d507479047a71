"""Hostile pictures: a stranger's "photo" must never reach a dangerous decoder.

An offer's thumbnail is bytes a stranger chose. Pillow, asked to open them without a
format list, identifies PostScript (EPS) and renders it by running Ghostscript on the
stranger's program. These tests send such offers over a real link and open them the way
the app does (``transfers.manifest`` then ``media.load_preview``), with Pillow's
Ghostscript hook and ``subprocess.Popen`` replaced by recorders: the one thing checked is
that no PostScript is ever handed to Ghostscript (an external program, outside our
control, which is why it is a recorder and not the real thing).
"""

from __future__ import annotations

import hashlib
import io
import struct
import subprocess
import zlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from PIL import EpsImagePlugin, Image

from p2pchat.node import Node
from p2pchat.node.events import MessageAdded
from p2pchat.node.files import Manifest, describe_local_file, make_thumbnail
from p2pchat.node.images import UnsafeImageError
from p2pchat.ui.media import load_preview, preview_from_jpeg
from tests.adversary.hostile import Hostile, hostile_peer
from tests.nodes import make_node, wait_for

#: A complete, tiny Encapsulated PostScript picture: what Pillow hands to Ghostscript.
EPS = (
    b"%!PS-Adobe-3.0 EPSF-3.0\n"
    b"%%BoundingBox: 0 0 8 8\n"
    b"%%EndComments\n"
    b"newpath 0 0 moveto 8 8 lineto stroke\n"
    b"showpage\n"
    b"%%EOF\n"
)


def png_header_only(width: int, height: int) -> bytes:
    """A PNG that declares ``width`` x ``height`` pixels and holds a few bytes of data:
    decoding it would allocate width*height*3 bytes (a decompression bomb)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    idat = zlib.compress(b"\x00" * 1024)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


@pytest.fixture
def ghostscript_calls(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """Every attempt to run Ghostscript (Pillow's hook, or any process at all)."""
    calls: list[Any] = []

    def fake_ghostscript(*args: Any, **kwargs: Any) -> Any:
        calls.append(("EpsImagePlugin.Ghostscript", args))
        return Image.new("RGB", (8, 8)).im  # what Pillow expects: the pixel core

    real_popen = subprocess.Popen

    def recording_popen(*args: Any, **kwargs: Any) -> Any:
        calls.append(("subprocess.Popen", args))
        return real_popen(*args, **kwargs)

    monkeypatch.setattr(EpsImagePlugin, "Ghostscript", fake_ghostscript)
    monkeypatch.setattr(EpsImagePlugin, "gs_binary", "gs")  # "installed", as on most desktops
    monkeypatch.setattr(subprocess, "Popen", recording_popen)
    return calls


@pytest.fixture
async def bob() -> AsyncIterator[Node]:
    node = make_node("bob")
    await node.start()
    try:
        yield node
    finally:
        await node.stop()


@pytest.fixture
async def stranger(bob: Node) -> AsyncIterator[Hostile]:
    peer = await hostile_peer("mallory", bob)
    try:
        yield peer
    finally:
        await peer.node.stop()


async def offer_with_thumbnail(stranger: Hostile, bob: Node, thumb: bytes) -> bytes:
    """Have ``stranger`` offer Bob a "photo" with ``thumb``; the message id once stored."""
    manifest = Manifest(
        name="holiday.jpg",
        size=1000,
        mime="image/jpeg",
        sha256=hashlib.sha256(b"x").digest(),
        width=8,
        height=8,
        thumb=thumb,
    )
    env = stranger.direct(bob.me, kind="file", body=manifest.encode())
    events = bob.subscribe()
    try:
        stranger.send_envelopes(bob.me, env)
        await wait_for(events, lambda e: isinstance(e, MessageAdded) and e.message.id == env.id)
    finally:
        events.close()
    return env.id


async def test_eps_thumbnail_from_a_stranger_never_runs_ghostscript(
    bob: Node, stranger: Hostile, ghostscript_calls: list[Any]
) -> None:
    # The reference check that the recorder works: Pillow, unrestricted, does call it.
    with Image.open(io.BytesIO(EPS)) as img:
        img.load()
    assert ghostscript_calls, "the Ghostscript recorder is not wired to Pillow"
    ghostscript_calls.clear()

    message_id = await offer_with_thumbnail(stranger, bob, EPS)
    manifest = await bob.transfers.manifest(message_id)
    assert manifest is not None
    assert manifest.thumb == EPS
    # What the chat view does when the offer is on screen.
    assert await load_preview(manifest.thumb) is None
    with pytest.raises(UnsafeImageError):
        preview_from_jpeg(EPS)
    assert ghostscript_calls == []


async def test_thumbnail_decompression_bomb_is_not_decoded(
    bob: Node, stranger: Hostile, monkeypatch: pytest.MonkeyPatch
) -> None:
    decoded: list[object] = []
    real_load = Image.Image.load

    def recording_load(self: Image.Image) -> Any:
        decoded.append(self.size)
        return real_load(self)

    monkeypatch.setattr(Image.Image, "load", recording_load)
    # Beyond Pillow's own bomb limit, and below it (81 Mpx: only our cap stops that one).
    for side in (60000, 9000):
        bomb = png_header_only(side, side)
        assert len(bomb) < 8192
        message_id = await offer_with_thumbnail(stranger, bob, bomb)
        manifest = await bob.transfers.manifest(message_id)
        assert manifest is not None
        assert await load_preview(manifest.thumb) is None
        with pytest.raises(UnsafeImageError):
            preview_from_jpeg(bomb)
    assert decoded == []  # refused from the header, before any pixel was decoded


def test_a_shared_eps_named_like_a_photo_gets_no_thumbnail(
    tmp_path: Path, ghostscript_calls: list[Any]
) -> None:
    # A file received from anyone and shared on: the name says PNG, the bytes are EPS.
    path = tmp_path / "photo.png"
    path.write_bytes(EPS)
    assert make_thumbnail(path) is None
    local = describe_local_file(path)
    assert local.manifest.thumb is None
    assert ghostscript_calls == []


def test_real_pictures_still_get_previews(tmp_path: Path) -> None:
    """The allow-list keeps what the project makes: JPEG thumbnails of PNG/JPEG/GIF."""
    for fmt in ("PNG", "JPEG", "GIF"):
        path = tmp_path / f"pic.{fmt.lower()}"
        Image.new("RGB", (300, 200), (200, 30, 30)).save(path, format=fmt)
        made = make_thumbnail(path)
        assert made is not None, fmt
        width, height, thumb = made
        assert (width, height) == (300, 200)
        assert preview_from_jpeg(thumb).plain.startswith("▀")
