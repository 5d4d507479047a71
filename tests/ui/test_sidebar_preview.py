"""The chat list's preview of a chat's last message reads as the chat shows it."""

from __future__ import annotations

from p2pchat.ui.widgets.sidebar import load_entries
from tests.nodes import make_node, stop_all
from tests.ui.helpers import befriend


async def test_the_preview_shows_formatted_text_without_its_markers() -> None:
    alice, bob = make_node("alice"), make_node("bob")
    await alice.start()
    await bob.start()
    try:
        await befriend(alice, bob)
        await alice.send_text(bob.me, "see **this** and `that`, my_file_name.txt")
        _, chats, _, _ = await load_entries(alice)
        (entry,) = [e for e in chats if e.peer_id == bob.me]
        assert entry.preview == "You: see this and that, my_file_name.txt"
    finally:
        await stop_all([alice, bob])
