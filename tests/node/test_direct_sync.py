"""Direct chats repair themselves: a lost store tail comes back from the other side.

Losing the end of the store's log in a crash is outside our control; it is simulated
faithfully by putting back an earlier copy of the store file (cleanly closed), so
everything written after the copy is gone, as after losing the log tail.
"""

from __future__ import annotations

import shutil

from p2pchat.node import MessageStatus, Node
from tests.node.groups_helpers import befriend, start_nodes, wait_until
from tests.nodes import WAIT, connected_pair, make_node


async def _bodies(node: Node, peer: bytes) -> list[bytes]:
    return [m.body for m in await node.history(node.direct_room(peer), limit=10_000)]


async def test_a_lost_tail_comes_back_from_the_other_side_and_no_seq_is_reused() -> None:
    alice, bob = await start_nodes(["alice", "bob"], sync_interval=60.0)
    try:
        await befriend(alice, bob)
        first = await bob.send_text(alice.me, "before the copy")
        assert await bob.wait_for_status(first.id, MessageStatus.DELIVERED, WAIT)
        await bob.stop()
        store = bob.profile.store_path
        shutil.copy(store, store.with_name("copy.sqlite3"))
        bob = make_node("bob")
        await bob.start()
        await connected_pair(alice, bob)
        lost = []
        for i in range(5):
            lost.append(await bob.send_text(alice.me, f"bob {i}"))
            lost.append(await alice.send_text(bob.me, f"alice {i}"))
        for message in lost:
            sender = bob if message.author == bob.me else alice
            assert await sender.wait_for_status(message.id, MessageStatus.DELIVERED, WAIT)
        expected = await _bodies(alice, bob.me)
        await bob.stop()
        shutil.copy(store.with_name("copy.sqlite3"), store)  # the tail is lost
        for suffix in ("-wal", "-shm"):
            store.with_name(store.name + suffix).unlink(missing_ok=True)
        bob = make_node("bob")
        await bob.start()
        assert len(await _bodies(bob, alice.me)) < len(expected)
        await connected_pair(alice, bob)
        # One sync round (on connecting; the periodic one is a minute away).
        await wait_until(bob, lambda: _has_all(bob, alice.me, expected))
        after = await bob.send_text(alice.me, "after the repair")
        assert await bob.wait_for_status(after.id, MessageStatus.DELIVERED, WAIT)
        assert after.seq > max(m.seq for m in lost if m.author == bob.me)
        assert (await _bodies(alice, bob.me))[-1] == b"after the repair"
    finally:
        for node in (alice, bob):
            await node.stop()


async def _has_all(node: Node, peer: bytes, expected: list[bytes]) -> bool:
    return await _bodies(node, peer) == expected
