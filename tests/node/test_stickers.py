"""Stickers between real nodes on loopback: sent, fetched once, cached, installed."""

from __future__ import annotations

import hashlib
import io
from pathlib import Path

import pytest
from PIL import Image

from p2pchat.node import MessageAdded, Node
from p2pchat.node.events import StickerReady
from p2pchat.node.sticker_body import KIND_STICKER, decode_sticker
from p2pchat.node.stickers import StickerLookupError
from tests.node.groups_helpers import form_room, mesh, start_nodes
from tests.nodes import connected_pair, make_node, wait_for
from tests.transfer.helpers import start_pair


def sticker_png(path: Path, colour: tuple[int, int, int, int] = (255, 0, 0, 128)) -> bytes:
    """A small PNG with transparency; returns its bytes."""
    out = io.BytesIO()
    Image.new("RGBA", (64, 64), colour).save(out, "PNG")
    path.write_bytes(out.getvalue())
    return out.getvalue()


async def test_sticker_is_sent_fetched_once_and_cached(tmp_path: Path) -> None:
    alice, bob = await start_pair(tmp_path)
    try:
        data = sticker_png(tmp_path / "wave.png")
        (added,) = await alice.stickers.add("hello", [tmp_path / "wave.png"])
        assert (added.pack, added.name) == ("hello", "wave")
        digest = hashlib.sha256(data).digest()

        events = bob.subscribe()
        message = await alice.stickers.send(bob.me, "hello/wave")
        assert message.kind == KIND_STICKER
        assert len(message.body) < 200
        await wait_for(events, lambda e: isinstance(e, StickerReady) and e.sha256 == digest)
        assert await bob.stickers.picture(digest) == data
        assert bob.stickers.bytes_fetched == len(data)
        assert alice.stickers.sources_opened == 1
        (received,) = [m for m in await bob.history(message.room) if m.kind == KIND_STICKER]
        assert decode_sticker(received.body).label == "hello/wave"
        assert bob.display_text(received) == "(sticker hello/wave)"

        # The second send of the same sticker: a message arrives, no picture byte moves.
        second = await alice.stickers.send(bob.me, "hello/wave")
        await wait_for(events, lambda e: isinstance(e, MessageAdded) and e.message.id == second.id)
        assert bob.stickers.want(second) is True  # shown from the cache
        assert bob.stickers.bytes_fetched == len(data)
        assert alice.stickers.sources_opened == 1
        events.close()
    finally:
        await alice.stop()
        await bob.stop()


async def test_received_pack_is_installed(tmp_path: Path) -> None:
    alice, bob = await start_pair(tmp_path)
    try:
        sticker_png(tmp_path / "a.png", (0, 255, 0, 255))
        sticker_png(tmp_path / "b.png", (0, 0, 255, 0))
        await alice.stickers.add("cats", [tmp_path / "a.png", tmp_path / "b.png"])
        events = bob.subscribe()
        for label in ("cats/a", "cats/b"):
            await alice.stickers.send(bob.me, label)
            await wait_for(events, lambda e: isinstance(e, StickerReady))
        events.close()
        with pytest.raises(StickerLookupError):
            await bob.stickers.find("cats/a")  # not ours until installed
        installed = await bob.stickers.install("cats", alice.me)
        assert sorted(s.name for s in installed) == ["a", "b"]
        assert (await bob.stickers.find("cats/a")).sha256 == hashlib.sha256(
            (tmp_path / "a.png").read_bytes()
        ).digest()
        # Bob can now send it on (to Alice, who has it: nothing is fetched).
        await bob.stickers.send(alice.me, "cats/b")
    finally:
        await alice.stop()
        await bob.stop()


async def test_sticker_in_a_group_room(tmp_path: Path) -> None:
    nodes: list[Node] = await start_nodes(["alice", "bob", "carol"])
    alice, bob, carol = nodes
    try:
        await mesh(nodes)
        room = await form_room(alice, [bob, carol])
        data = sticker_png(tmp_path / "party.png")
        await alice.stickers.add("fun", [tmp_path / "party.png"])
        digest = hashlib.sha256(data).digest()
        streams = [n.subscribe() for n in (bob, carol)]
        await alice.stickers.send_to_room(room, "fun/party")
        for stream in streams:
            await wait_for(stream, lambda e: isinstance(e, StickerReady) and e.sha256 == digest)
            stream.close()
        assert await carol.stickers.picture(digest) == data
    finally:
        for node in nodes:
            await node.stop()


async def test_add_refuses_what_is_not_a_sticker(tmp_path: Path) -> None:
    (node,) = await start_nodes(["alice"], network=False)
    try:
        (tmp_path / "notes.txt").write_text("hello")
        with pytest.raises(StickerLookupError, match="not a sticker picture"):
            await node.stickers.add("p", [tmp_path / "notes.txt"])
        sticker_png(tmp_path / "ok.png")
        with pytest.raises(StickerLookupError, match="pack name"):
            await node.stickers.add("../x", [tmp_path / "ok.png"])
        with pytest.raises(StickerLookupError, match="PACK/NAME"):
            await node.stickers.find("../../x")
        assert await node.stickers.packs() == []
    finally:
        await node.stop()


async def test_group_member_gets_the_picture_from_another_member_when_the_author_is_away(
    tmp_path: Path,
) -> None:
    nodes: list[Node] = await start_nodes(["alice", "bob", "carol"])
    alice, bob, carol = nodes
    try:
        await mesh(nodes)
        room = await form_room(alice, [bob, carol])
        await bob.stop()  # Bob is away when Alice sends
        data = sticker_png(tmp_path / "moon.png", (200, 200, 255, 200))
        digest = hashlib.sha256(data).digest()
        await alice.stickers.add("sky", [tmp_path / "moon.png"])
        events = carol.subscribe()
        await alice.stickers.send_to_room(room, "sky/moon")
        await wait_for(events, lambda e: isinstance(e, StickerReady) and e.sha256 == digest)
        events.close()
        await alice.stop()  # and Alice is gone when Bob comes back

        bob = nodes[1] = make_node("bob")
        await bob.start()
        events = bob.subscribe()
        await connected_pair(bob, carol)
        await wait_for(events, lambda e: isinstance(e, StickerReady) and e.sha256 == digest)
        events.close()
        assert await bob.stickers.picture(digest) == data
        assert carol.stickers.sources_opened == 1  # Carol served it
    finally:
        for node in nodes:
            await node.stop()
