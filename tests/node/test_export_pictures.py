"""An HTML export carries the chat's pictures inside (issue 14, item 5): a real transfer
between two nodes, then each side exports."""

from __future__ import annotations

from pathlib import Path

from PIL import Image

from tests.transfer.helpers import start_pair, wait_final


async def test_html_export_embeds_downloaded_and_sent_pictures(tmp_path: Path) -> None:
    alice, bob = await start_pair(tmp_path)
    try:
        src = tmp_path / "dot.png"
        Image.new("RGBA", (4, 4), (255, 0, 0, 128)).save(src)
        stream = bob.subscribe()
        msg = await alice.transfers.send_file(bob.me, src)
        info = await wait_final(bob, stream, msg.id, within=20)
        assert info.state == "done", info
        for node, peer in ((bob, alice), (alice, bob)):
            out = tmp_path / f"{node.profile.display_name}.html"
            result = await node.chats.export(node.direct_room(peer.me), "html", out)
            assert result.pictures == 1
            assert "data:image/png;base64," in out.read_text()
            md = tmp_path / f"{node.profile.display_name}.md"
            await node.chats.export(node.direct_room(peer.me), "md", md)
            assert "base64" not in md.read_text()  # only HTML embeds pictures
    finally:
        await alice.stop()
        await bob.stop()
