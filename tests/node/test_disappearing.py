"""Disappearing messages (issue 17, item 2): a per-chat timer, signed and synced.

Real nodes over loopback. The shortest timer is 5 minutes, so the sweeper's clock is
the one test double (``ExpiryService.clock``): each test moves it past the deadline.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from p2pchat.node import Node, NodeError
from p2pchat.node.edits import KIND_TIMER, encode_timer
from p2pchat.store import now_ms
from p2pchat.store.changes import is_tombstone
from tests.node.groups_helpers import befriend, form_room, mesh, start_nodes, wait_until
from tests.nodes import make_node

FIVE_MINUTES = 300
LATER = 301 * 1000  # ms: past a 5-minute deadline


def _later() -> int:
    return now_ms() + LATER


@pytest.fixture
async def pair() -> AsyncIterator[tuple[Node, Node]]:
    a, b = make_node("alice"), make_node("bob")
    await a.start()
    await b.start()
    await befriend(a, b)
    try:
        yield a, b
    finally:
        await a.stop()
        await b.stop()


async def _has(node: Node, message_id: bytes) -> bool:
    return await node.get_message(message_id) is not None


async def _gone(node: Node, message_id: bytes) -> bool:
    m = await node.store_read(lambda s: s.get_message(message_id))
    return m is not None and is_tombstone(m)


async def _text_anywhere(node: Node, text: bytes) -> list[str]:
    """Every table and column of the store that still holds ``text``."""

    def scan(store: object) -> list[str]:
        db = store._db  # type: ignore[attr-defined]
        found = []
        tables = [r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        for table in tables:
            columns = [r[1] for r in db.execute(f"PRAGMA table_info('{table}')")]
            for column in columns:
                hits = db.execute(
                    f'SELECT count(*) FROM "{table}" WHERE instr(CAST("{column}" AS BLOB), ?)',
                    (text,),
                ).fetchone()[0]
                if hits:
                    found.append(f"{table}.{column}")
        return found

    return await node.store_read(scan)


async def _timer_shown(node: Node, room: bytes) -> list[str]:
    return [node.display_text(m) for m in await node.history(room) if m.kind == KIND_TIMER]


async def test_either_person_sets_the_timer_and_both_see_it(pair: tuple[Node, Node]) -> None:
    alice, bob = pair
    room = alice.direct_room(bob.me)
    assert await alice.disappearing(room) == 0
    await bob.set_disappearing(room, 86400)
    await wait_until(alice, lambda: _timer_shown(alice, room))
    assert await _timer_shown(alice, room) == ["bob set messages to disappear after 1 day"]
    assert await alice.disappearing(room) == await bob.disappearing(room) == 86400
    await alice.set_disappearing(room, 0)

    async def off_at_bob() -> bool:
        return await bob.disappearing(room) == 0

    await wait_until(bob, off_at_bob)
    with pytest.raises(NodeError, match="5 minutes"):
        await alice.set_disappearing(room, 60)


async def test_messages_disappear_on_both_sides_when_their_time_is_up(
    pair: tuple[Node, Node],
) -> None:
    alice, bob = pair
    room = alice.direct_room(bob.me)
    before = await alice.send_text(bob.me, "said before the timer")
    await alice.set_disappearing(room, FIVE_MINUTES)
    secret = await alice.send_text(bob.me, "the door code is 4711")
    await wait_until(bob, lambda: _has(bob, secret.id))
    assert len((await bob.chats.search("door code")).hits) == 1
    await bob.react(secret.id, "👍")
    await alice.edit_message(secret.id, "the door code is 4712")
    await wait_until(bob, lambda: _has(bob, before.id))
    for node in (alice, bob):
        node.expiry.clock = _later
        node.expiry.poke()
    for node in (alice, bob):
        await wait_until(node, lambda n=node: _gone(n, secret.id))
        assert await _text_anywhere(node, b"door code") == []
        assert (await node.chats.search("door code")).hits == []
        shown = [node.display_text(m) for m in await node.history(room)]
        assert shown == [
            "said before the timer",  # written before the timer: it stays
            "alice set messages to disappear after 5 minutes",
        ]
        assert (await node.reactions([secret.id])).get(secret.id, []) == []


async def test_a_deadline_that_passed_while_stopped_is_met_at_start() -> None:
    alice, bob = make_node("alice"), make_node("bob")
    await alice.start()
    await bob.start()
    try:
        await befriend(alice, bob)
        room = alice.direct_room(bob.me)
        await bob.set_disappearing(room, FIVE_MINUTES)

        async def timer_on() -> bool:
            return await alice.disappearing(room) == FIVE_MINUTES

        await wait_until(alice, timer_on)
        said = await bob.send_text(alice.me, "gone by tomorrow")
        await wait_until(alice, lambda: _has(alice, said.id))
    finally:
        await alice.stop()
        await bob.stop()
    alice = make_node("alice")
    alice.expiry.clock = _later  # the node restarts after the deadline
    await alice.start()
    try:
        await wait_until(alice, lambda: _gone(alice, said.id))
        assert await _text_anywhere(alice, b"gone by tomorrow") == []
    finally:
        await alice.stop()


async def test_a_member_away_past_the_deadline_never_gets_the_text_and_is_not_stuck() -> None:
    owner, alice, carol = await start_nodes(["owner", "alice", "carol"])
    try:
        await mesh([owner, alice, carol])
        room = await form_room(owner, [alice, carol])
        await owner.set_disappearing(room, FIVE_MINUTES)

        async def timer_everywhere() -> bool:
            return all([await n.disappearing(room) == FIVE_MINUTES for n in (alice, carol)])

        await wait_until(owner, timer_everywhere)
        await carol.stop()
        said = await alice.send_message(room, "short-lived news")
        await wait_until(owner, lambda: _has(owner, said.id))
        for node in (owner, alice):
            node.expiry.clock = _later
            node.expiry.poke()
        for node in (owner, alice):
            await wait_until(node, lambda n=node: _gone(n, said.id))
            node.expiry.clock = now_ms  # back to the present
        # Alice writes on, then leaves: carol catches up from the owner alone.
        after = await alice.send_message(room, "still here")
        await wait_until(owner, lambda: _has(owner, after.id))
        await alice.stop()
        carol = make_node("carol")
        await carol.start()
        await befriend(carol, owner)
        # Carol fills alice's seq from alice's signed delete (relayed by the owner), so
        # alice's next message, above it, is held: nothing waits for an envelope nobody
        # has any more. (Waited for in the store, not as an event: carol dials the owner
        # as she starts, and on a busy machine the catch-up was over before start()
        # returned, so an event subscribed to afterwards never came.)
        await wait_until(carol, lambda: _has(carol, after.id))
        assert not await _has(carol, said.id) or await _gone(carol, said.id)
        assert await _text_anywhere(carol, b"short-lived") == []
    finally:
        for node in (owner, alice, carol):
            await node.stop()


async def test_only_owners_and_admins_set_a_rooms_timer() -> None:
    owner, member = await start_nodes(["owner", "member"])
    try:
        await mesh([owner, member])
        room = await form_room(owner, [member])
        with pytest.raises(NodeError, match="owners and admins"):
            await member.set_disappearing(room, FIVE_MINUTES)
        # Sent anyway, signed: stored (its author's seq) but neither applied nor shown.
        forged = await member.send_to_room(room, KIND_TIMER, encode_timer(FIVE_MINUTES), None)
        fence = await member.send_message(room, "fence")
        await wait_until(owner, lambda: _has(owner, fence.id))
        assert await owner.store_read(lambda s: s.get_message(forged.id)) is not None
        assert await owner.disappearing(room) == 0
        assert await _timer_shown(owner, room) == []
    finally:
        for node in (owner, member):
            await node.stop()
