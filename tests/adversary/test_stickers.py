"""Hostile stickers: bodies, pictures and names a stranger or a contact chose.

Every attack speaks the real protocol over loopback with valid signatures. A hostile
contact serves whatever bytes it likes for a hash (its node's sticker source is
replaced by one that serves the attacker's payload: that is the attacker's program).
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import os
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import msgpack
import pytest
from PIL import Image

from p2pchat.node import MessageAdded, Node
from p2pchat.node import stickers as stickers_module
from p2pchat.node.file_io import FileSource
from p2pchat.node.sticker_body import KIND_STICKER, MAX_STICKER_BYTES, StickerRef
from p2pchat.node.stickers import MAX_PULLING
from p2pchat.store import Message
from p2pchat.wire import ChunkError, ChunkRequest
from tests.adversary.hostile import Hostile, hostile_peer
from tests.adversary.test_images import EPS, ghostscript_calls, png_header_only  # noqa: F401
from tests.nodes import make_node, wait_for
from tests.transfer.helpers import befriend

SVG = b'<svg xmlns="http://www.w3.org/2000/svg" width="8" height="8"><rect/></svg>'


def png(colour: tuple[int, int, int, int] = (1, 2, 3, 128)) -> bytes:
    out = io.BytesIO()
    Image.new("RGBA", (16, 16), colour).save(out, "PNG")
    return out.getvalue()


def body(**fields: Any) -> bytes:
    base: dict[str, Any] = {
        "sha256": hashlib.sha256(b"x").digest(),
        "size": 100,
        "mime": "image/png",
        "pack": "p",
        "name": "n",
    }
    base.update(fields)
    return msgpack.packb({k: v for k, v in base.items() if v is not None}, use_bin_type=True)


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


@pytest.fixture
async def contact(bob: Node) -> AsyncIterator[Hostile]:
    peer = await hostile_peer("mallory", bob)
    await befriend(peer.node, bob)
    try:
        yield peer
    finally:
        await peer.node.stop()


def serve_payload(
    hostile: Hostile, payload: bytes, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> list[bytes]:
    """Make the hostile node serve ``payload`` for any hash; returns the hashes asked."""
    path = tmp_path / "payload"
    path.write_bytes(payload)
    asked: list[bytes] = []

    async def open_source(peer: bytes, sha256: bytes) -> FileSource:
        asked.append(sha256)
        fd = os.open(path, os.O_RDONLY)
        return FileSource(fd=fd, size=len(payload), offer=None)

    monkeypatch.setattr(hostile.node.stickers, "open_source", open_source)
    return asked


async def deliver(hostile: Hostile, bob: Node, sticker_body: bytes) -> Message:
    """Send a sticker envelope with ``sticker_body`` and a text after it; the stored
    sticker message (the text arriving proves a dropped sticker was not just slow)."""
    sticker = hostile.direct(bob.me, kind=KIND_STICKER, body=sticker_body)
    text = hostile.direct(bob.me, kind="text", body=b"after")
    events = bob.subscribe()
    try:
        hostile.send_envelopes(bob.me, sticker, text)
        await wait_for(events, lambda e: isinstance(e, MessageAdded) and e.message.id == text.id)
    finally:
        events.close()
    room = sticker.room
    found = [m for m in await bob.history(room) if m.id == sticker.id]
    return found[0] if found else None  # type: ignore[return-value]


def ref_body(payload: bytes, **changes: Any) -> bytes:
    ref = StickerRef(hashlib.sha256(payload).digest(), len(payload), "image/png", "p", "n")
    fields = {"sha256": ref.sha256, "size": ref.size, "mime": ref.mime, "pack": "p", "name": "n"}
    fields.update(changes)
    return body(**fields)


async def test_oversized_sticker_body_is_dropped(bob: Node, contact: Hostile) -> None:
    big = msgpack.packb({"sha256": b"\x00" * 32, "pad": "x" * 2000}, use_bin_type=True)
    assert await deliver(contact, bob, big) is None
    assert await deliver(contact, bob, body(size=MAX_STICKER_BYTES + 1)) is None


@pytest.mark.parametrize(
    "bad",
    [
        b"\xc1",  # not msgpack
        msgpack.packb([1, 2, 3]),
        body(sha256=b"\x00" * 31),
        body(sha256=None),
        body(size=0),
        body(size=True),
        body(mime="image/svg+xml"),
        body(mime="application/postscript"),
        body(pack=""),
        body(name="x" * 33),
        body(pack=b"bytes"),
    ],
)
async def test_malformed_sticker_body_is_dropped(bob: Node, contact: Hostile, bad: bytes) -> None:
    assert await deliver(contact, bob, bad) is None


@pytest.mark.parametrize(
    ("pack", "name"),
    [("../../x", "n"), ("p", "../../x"), ("p", "a/b"), ("/etc", "passwd"), ("p", "\x1b[2J")],
)
async def test_path_like_pack_or_name_is_dropped(
    bob: Node, contact: Hostile, pack: str, name: str
) -> None:
    assert await deliver(contact, bob, body(pack=pack, name=name)) is None
    assert await bob.stickers.packs() == []


async def test_eps_or_svg_sticker_from_a_contact_is_not_decoded_or_cached(
    bob: Node,
    contact: Hostile,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    ghostscript_calls: list[Any],  # noqa: F811
) -> None:
    for payload in (EPS, SVG):
        asked = serve_payload(contact, payload, tmp_path, monkeypatch)
        message = await deliver(contact, bob, ref_body(payload))
        assert message is not None  # the message stands; its picture does not
        assert await bob.stickers.fetch(message) is False
        assert asked == [hashlib.sha256(payload).digest()]  # it was fetched, then refused
        assert not bob.stickers.has(hashlib.sha256(payload).digest())
    assert ghostscript_calls == []
    assert not bob.stickers.cache_dir.exists() or not any(bob.stickers.cache_dir.iterdir())


async def test_decompression_bomb_sticker_is_not_decoded(
    bob: Node, contact: Hostile, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bomb = png_header_only(50_000, 50_000)
    decoded: list[object] = []
    real_load: Callable[..., Any] = Image.Image.load
    monkeypatch.setattr(Image.Image, "load", lambda self: decoded.append(self) or real_load(self))
    serve_payload(contact, bomb, tmp_path, monkeypatch)
    message = await deliver(contact, bob, ref_body(bomb))
    assert await bob.stickers.fetch(message) is False
    assert decoded == []  # refused on its declared size, before any pixel
    assert not bob.stickers.has(hashlib.sha256(bomb).digest())


async def test_sticker_whose_bytes_do_not_match_the_hash_is_not_cached(
    bob: Node, contact: Hostile, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Two valid pictures of the same length: only the hash tells them apart.
    by_length: dict[int, bytes] = {}
    for i in range(256):
        candidate = png((i, i, i, 255))
        if len(candidate) in by_length:
            announced, served = by_length[len(candidate)], candidate
            break
        by_length[len(candidate)] = candidate
    serve_payload(contact, served, tmp_path, monkeypatch)
    message = await deliver(contact, bob, ref_body(announced))
    assert await bob.stickers.fetch(message) is False
    assert not bob.stickers.has(hashlib.sha256(announced).digest())
    assert not bob.stickers.has(hashlib.sha256(served).digest())


async def test_sticker_from_a_stranger_is_never_fetched(
    bob: Node, stranger: Hostile, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    picture = png()
    asked = serve_payload(stranger, picture, tmp_path, monkeypatch)
    message = await deliver(stranger, bob, ref_body(picture))
    assert message is not None  # kept, like any contact request
    assert await bob.stickers.fetch(message) is False
    assert asked == []  # no connection was even tried
    assert bob.display_text(message) == "(sticker p/n)"


async def test_contact_cannot_fetch_a_sticker_from_a_room_it_is_not_in(
    bob: Node, contact: Hostile, tmp_path: Path
) -> None:
    # Bob has a sticker of his own (never sent to Mallory): Mallory probes for its hash.
    (tmp_path / "secret.png").write_bytes(png((9, 9, 9, 9)))
    (mine,) = await bob.stickers.add("private", [tmp_path / "secret.png"])
    conn = await contact.node.transfers.dial_files(bob.me)
    try:
        conn.write_frame(ChunkRequest(req=1, hash=mine.sha256, offset=0, length=65000, count=1))
        await conn.flush()
        answer = await conn.recv()
    finally:
        await conn.close("done")
    assert isinstance(answer, ChunkError)
    assert bob.stickers.sources_opened == 0


async def test_a_burst_of_stickers_opens_only_a_few_fetches_at_once(
    bob: Node, contact: Hostile, monkeypatch: pytest.MonkeyPatch
) -> None:
    gate = asyncio.Event()
    arrived: list[bytes] = []
    four = asyncio.Event()
    everyone = asyncio.Event()
    wanted = {hashlib.sha256(png((i, 0, 0, 255))).digest() for i in range(20)}

    async def held_source(peer: bytes, sha256: bytes) -> None:
        arrived.append(sha256)
        if len(arrived) == MAX_PULLING:
            four.set()
        if wanted <= set(arrived):
            everyone.set()
        await gate.wait()
        return None  # then refused: "not available"

    monkeypatch.setattr(contact.node.stickers, "open_source", held_source)
    bodies = [ref_body(png((i, 0, 0, 255))) for i in range(20)]
    envs = [contact.direct(bob.me, kind=KIND_STICKER, body=b) for b in bodies]
    contact.send_envelopes(bob.me, *envs)
    async with asyncio.timeout(15):
        await four.wait()
    # Everything else Bob does goes on meanwhile: a message gets through.
    await deliver(contact, bob, body(pack="later"))
    assert len(arrived) == MAX_PULLING  # the other 16 wait for a slot
    gate.set()
    async with asyncio.timeout(30):
        await everyone.wait()  # every one was tried in turn


async def test_a_full_sticker_cache_fetches_nothing_more(
    bob: Node, contact: Hostile, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    picture = png()
    asked = serve_payload(contact, picture, tmp_path, monkeypatch)
    monkeypatch.setattr(stickers_module, "MAX_CACHE_BYTES", len(picture) - 1)
    message = await deliver(contact, bob, ref_body(picture))
    assert await bob.stickers.fetch(message) is False
    assert asked == []
