"""``p2pchat sticker add|list|install`` and ``send --sticker`` on real profiles.

Bob's commands run the CLI in-process (a short-lived node, as when no app is open, in
a worker thread since the CLI runs its own event loop) while Alice's node runs here.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from pathlib import Path

import pytest

from p2pchat.cli import main
from p2pchat.node import MessageAdded
from p2pchat.node.events import StickerReady
from p2pchat.node.sticker_body import KIND_STICKER
from tests.node.groups_helpers import befriend, start_nodes
from tests.node.test_stickers import sticker_png
from tests.nodes import wait_for


def run_cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(["--profile", "bob", "--no-mdns", *args])
    out = capsys.readouterr()
    return code, out.out, out.err


async def test_add_list_send_and_install(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    alice, bob = await start_nodes(["alice", "bob"])
    try:
        await befriend(alice, bob)
    finally:
        await bob.stop()  # bob's profile is the CLI's from here
    try:
        data = sticker_png(tmp_path / "thumbs up.png")
        (tmp_path / "evil.txt").write_bytes(b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 1 1\n")

        code, out, _ = await asyncio.to_thread(
            run_cli, capsys, "sticker", "add", "mine", str(tmp_path / "thumbs up.png")
        )
        assert code == 0
        assert "mine/thumbs_up" in out
        code, _, err = await asyncio.to_thread(
            run_cli, capsys, "sticker", "add", "mine", str(tmp_path / "evil.txt")
        )
        assert code != 0
        assert "not a sticker picture" in err
        code, out, _ = await asyncio.to_thread(run_cli, capsys, "sticker", "list", "--json")
        assert code == 0
        (listed,) = json.loads(out)
        assert listed["label"] == "mine/thumbs_up"
        assert listed["sha256"] == hashlib.sha256(data).hexdigest()

        events = alice.subscribe()
        code, out, err = await asyncio.to_thread(
            run_cli, capsys, "send", "alice", "--sticker", "mine/thumbs_up"
        )
        assert code == 0, err
        assert "delivered" in out
        added = await wait_for(
            events, lambda e: isinstance(e, MessageAdded) and e.message.kind == KIND_STICKER
        )
        assert isinstance(added, MessageAdded)
        code, _, err = await asyncio.to_thread(
            run_cli, capsys, "send", "alice", "--sticker", "mine/nope"
        )
        assert code != 0
        assert "no sticker mine/nope" in err

        # Bob's node is back: Alice fetches the picture then (the CLI's node left early).
        (bob,) = await start_nodes(["bob"])
        try:
            await befriend(alice, bob)
            if not alice.stickers.want(added.message):
                await wait_for(events, lambda e: isinstance(e, StickerReady))
            assert await alice.stickers.picture(hashlib.sha256(data).digest()) == data
            # Alice installs Bob's pack and sends it back: Bob has the picture already.
            installed = await alice.stickers.install("mine")
            assert [s.name for s in installed] == ["thumbs_up"]
            before = bob.stickers.sources_opened
            await alice.stickers.send(bob.me, "mine/thumbs_up")
            assert bob.stickers.sources_opened == before
        finally:
            await bob.stop()
        events.close()
    finally:
        await alice.stop()


def test_install_says_what_is_missing(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run_cli(capsys, "sticker", "install", "cats")
    assert code != 0
    assert "no received sticker of the pack 'cats'" in err
    code, out, _ = run_cli(capsys, "sticker", "list")
    assert code == 0
    assert "no stickers yet" in out
