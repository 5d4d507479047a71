"""The node indexes new texts for search in the background (store/search.py), so the
queue drains without anyone searching, and a search finds everything meanwhile."""

from __future__ import annotations

import asyncio

from p2pchat.node import MessageAdded
from p2pchat.store import Store
from tests.node.groups_helpers import befriend, start_nodes
from tests.nodes import WAIT, wait_for


def _queued(store: Store) -> int:
    row = store._db.execute("SELECT count(*) FROM message_search_pending").fetchone()
    return int(row[0])


async def test_received_texts_are_indexed_without_a_search() -> None:
    alice, bob = await start_nodes(["alice", "bob"])
    try:
        await befriend(alice, bob)
        events = bob.subscribe()
        for i in range(5):
            await alice.send_text(bob.me, f"indexed later {i}")
        await wait_for(
            events,
            lambda e: isinstance(e, MessageAdded) and e.message.body == b"indexed later 4",
        )
        assert bob.db is not None
        # Polled at the indexer's own pace (no event says "indexed"), within WAIT.
        for _ in range(int(WAIT / 0.05)):
            if not await bob.db.run(_queued):
                break
            await asyncio.sleep(0.05)
        assert await bob.db.run(_queued) == 0
        page = await bob.chats.search("indexed later")
        assert len(page.hits) == 5
    finally:
        await alice.stop()
        await bob.stop()
