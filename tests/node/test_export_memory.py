"""An export of a big chat is written page by page: memory stays bounded by a page,
never by the chat (issue 14, item 5; node/chats.py)."""

from __future__ import annotations

import tracemalloc
from pathlib import Path

import pytest

from p2pchat.identity import Identity
from p2pchat.node import chats
from tests.nodes import make_node

MESSAGES = 400
TEXT_BYTES = 8_000
PAGE = 10


async def test_exporting_a_big_chat_holds_a_page_in_memory_not_the_chat(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(chats, "EXPORT_PAGE", PAGE)
    node = make_node("keeper", network=False)
    await node.start()
    try:
        peer = Identity.generate().peer_id
        for n in range(MESSAGES):
            await node.send_text(peer, f"{n:05d} " + "x" * TEXT_BYTES)
        room = node.direct_room(peer)
        for fmt in ("md", "json", "html"):
            target = tmp_path / f"chat.{fmt}"
            tracemalloc.start()
            try:
                result = await node.chats.export(room, fmt, target)
                _, peak = tracemalloc.get_traced_memory()
            finally:
                tracemalloc.stop()
            assert result.messages == MESSAGES
            written = target.read_text(encoding="utf-8")
            # Every message, oldest first, exactly once.
            order = [written.index(f"{n:05d} ") for n in range(MESSAGES)]
            assert order == sorted(order)
            assert written.count(" xxx") == MESSAGES
            # The chat is 3.2 MB of text; a page of it is 80 KB.
            assert peak < MESSAGES * TEXT_BYTES / 4, f"{fmt}: peak {peak} bytes"
    finally:
        await node.stop()
