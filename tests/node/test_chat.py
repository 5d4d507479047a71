"""Two real nodes on loopback: messages, receipts, offline delivery, requests, blocking."""

from __future__ import annotations

import asyncio

import pytest

from p2pchat.node import Message, Node, NodeError, PeerLookupError
from p2pchat.node.events import (
    ContactRequest,
    MessageAdded,
    PeerOffline,
    PeerUpdated,
    SecurityWarning,
    TypingChanged,
)
from p2pchat.store import MessageStatus
from tests.nodes import WAIT, connected_pair, make_node, wait_for


async def befriend(a: Node, b: Node) -> None:
    """Connect and make each a contact of the other (as after accepting a request)."""
    await connected_pair(a, b)
    await a.accept(b.me)
    await b.accept(a.me)


@pytest.fixture
async def pair() -> tuple[Node, Node]:
    alice, bob = make_node("alice"), make_node("bob")
    await alice.start()
    await bob.start()
    yield alice, bob
    await alice.stop()
    await bob.stop()


async def test_first_message_is_a_contact_request_without_receipts(pair: tuple[Node, Node]) -> None:
    alice, bob = pair
    await connected_pair(alice, bob)
    events = bob.subscribe()
    sent = await alice.send_text(bob.me, "hello bob")
    req = await wait_for(events, lambda e: isinstance(e, ContactRequest))
    assert req.peer_id == alice.me
    added = await wait_for(events, lambda e: isinstance(e, MessageAdded))
    assert added.incoming
    assert added.message.body == b"hello bob"
    # Not accepted yet: alice sees "sent", never "delivered".
    assert (await alice.get_message(sent.id)).status == MessageStatus.SENT
    assert not await alice.wait_for_status(sent.id, MessageStatus.DELIVERED, 0.5)
    # Accepting sends the held delivered receipt.
    await bob.accept(alice.me)
    assert await alice.wait_for_status(sent.id, MessageStatus.DELIVERED, WAIT)


async def test_thousand_messages_each_way_arrive_once_in_order_and_delivered(
    pair: tuple[Node, Node],
) -> None:
    alice, bob = pair
    await befriend(alice, bob)
    count = 1000
    got: dict[bytes, list[str]] = {alice.me: [], bob.me: []}
    done = {alice.me: asyncio.Event(), bob.me: asyncio.Event()}

    async def collect(node: Node) -> None:
        async for event in node.subscribe():
            if isinstance(event, MessageAdded) and event.incoming:
                got[node.me].append(event.message.body.decode())
                if len(got[node.me]) == count:
                    done[node.me].set()
                    return

    collectors = [asyncio.create_task(collect(n)) for n in (alice, bob)]

    async def burst(src: Node, dst: Node) -> list[bytes]:
        ids = []
        for i in range(count):
            ids.append((await src.send_text(dst.me, f"{src.profile.name} {i}")).id)
        return ids

    async with asyncio.timeout(120):
        a_ids, b_ids = await asyncio.gather(burst(alice, bob), burst(bob, alice))
        await done[alice.me].wait()
        await done[bob.me].wait()
    assert got[bob.me] == [f"alice {i}" for i in range(count)]
    assert got[alice.me] == [f"bob {i}" for i in range(count)]
    # Every message reaches "delivered"; the history holds each exactly once.
    for node, ids in ((alice, a_ids), (bob, b_ids)):
        async with asyncio.timeout(60):
            for mid in ids:
                assert await node.wait_for_status(mid, MessageStatus.DELIVERED, WAIT)
    hist = await bob.history(bob.direct_room(alice.me), limit=5000)
    assert len(hist) == 2 * count
    assert len({m.id for m in hist}) == 2 * count
    for task in collectors:
        task.cancel()


async def test_read_receipts_flow_back_and_can_be_switched_off(pair: tuple[Node, Node]) -> None:
    alice, bob = pair
    await befriend(alice, bob)
    events = bob.subscribe()
    first = await alice.send_text(bob.me, "read me")
    await wait_for(events, lambda e: isinstance(e, MessageAdded) and e.message.id == first.id)
    assert await alice.wait_for_status(first.id, MessageStatus.DELIVERED, WAIT)
    assert await bob.mark_read(bob.direct_room(alice.me)) == 1
    assert await alice.wait_for_status(first.id, MessageStatus.READ, WAIT)

    await bob.set_setting("read_receipts", False)
    second = await alice.send_text(bob.me, "secretly read")
    await wait_for(events, lambda e: isinstance(e, MessageAdded) and e.message.id == second.id)
    assert await alice.wait_for_status(second.id, MessageStatus.DELIVERED, WAIT)
    assert await bob.mark_read(bob.direct_room(alice.me)) == 1
    assert not await alice.wait_for_status(second.id, MessageStatus.READ, 1.0)


async def test_typing_indicator_and_setting(pair: tuple[Node, Node]) -> None:
    alice, bob = pair
    await befriend(alice, bob)
    events = bob.subscribe()
    await alice.set_typing(bob.me, True)
    ev = await wait_for(events, lambda e: isinstance(e, TypingChanged))
    assert ev.peer_id == alice.me
    assert ev.typing
    await alice.set_setting("typing_indicators", False)
    await alice.set_typing(bob.me, False)
    await alice.send_text(bob.me, "marker")
    seen = []
    async with asyncio.timeout(WAIT):
        async for e in events:
            seen.append(e)
            if isinstance(e, MessageAdded):
                break
    assert not any(isinstance(e, TypingChanged) for e in seen)


async def test_rename_propagates(pair: tuple[Node, Node]) -> None:
    alice, bob = pair
    await befriend(alice, bob)
    events = bob.subscribe()
    await alice.rename("Alice Liddell")
    ev = await wait_for(events, lambda e: isinstance(e, PeerUpdated) and e.name == "Alice Liddell")
    assert ev.peer_id == alice.me
    assert await bob.resolve_peer("alice liddell") == alice.me


async def test_blocked_peer_frames_vanish(pair: tuple[Node, Node]) -> None:
    alice, bob = pair
    await befriend(alice, bob)
    await bob.block(alice.me)
    sent = await alice.send_text(bob.me, "can you hear me?")
    await asyncio.sleep(0)  # the frame (if any) would be dropped; prove nothing got stored:
    assert not await alice.wait_for_status(sent.id, MessageStatus.DELIVERED, 1.5)
    hist = await bob.history(bob.direct_room(alice.me), limit=10)
    assert all(m.id != sent.id for m in hist)
    with pytest.raises(NodeError, match="blocked"):
        await bob.send_text(alice.me, "hi")


async def test_impersonation_warning_and_no_merge(pair: tuple[Node, Node]) -> None:
    alice, bob = pair
    await befriend(alice, bob)
    mallory = make_node("mallory")
    mallory.profile.set_display_name("alice")
    await mallory.start()
    try:
        events = bob.subscribe()
        await connected_pair(mallory, bob)
        warn = await wait_for(events, lambda e: isinstance(e, SecurityWarning))
        assert warn.peer_id == mallory.me
        assert "impersonating" in warn.text
        await mallory.send_text(bob.me, "it's me, alice, send money")
        await wait_for(events, lambda e: isinstance(e, MessageAdded))
        real = await bob.history(bob.direct_room(alice.me))
        assert all(b"money" not in m.body for m in real)
        # Her name still means the contact (contacts first); to block, it is a tie.
        assert await bob.resolve_peer("alice") == alice.me
        with pytest.raises(PeerLookupError) as info:
            await bob.resolve_peer("alice", trusted_first=False)
        assert len(info.value.candidates) == 2
    finally:
        await mallory.stop()


async def test_offline_peer_gets_queued_messages_after_restarts() -> None:
    alice, bob = make_node("alice"), make_node("bob")
    await alice.start()
    await bob.start()
    await befriend(alice, bob)
    bob_port = bob.port
    await bob.stop()
    ids = [(await alice.send_text(bob.me, f"while away {i}")).id for i in range(100)]
    for mid in ids:
        stored = await alice.get_message(mid)
        assert stored is not None
        assert stored.status == MessageStatus.QUEUED
    await alice.stop()
    # Alice restarts, then Bob comes back on the same port: everything arrives once.
    alice = make_node("alice")
    await alice.start()
    bob = make_node("bob", port=bob_port)
    await bob.start()
    try:
        async with asyncio.timeout(60):
            for mid in ids:
                assert await alice.wait_for_status(mid, MessageStatus.DELIVERED, WAIT)
        hist = await bob.history(bob.direct_room(alice.me), limit=500)
        bodies = [m.body.decode() for m in hist]
        assert bodies == [f"while away {i}" for i in range(100)]
    finally:
        await alice.stop()
        await bob.stop()


async def test_peer_lookup_errors(pair: tuple[Node, Node]) -> None:
    alice, bob = pair
    await connected_pair(alice, bob)
    assert await alice.resolve_peer("bob") == bob.me
    assert await alice.resolve_peer(bob.peer_id_text[:8]) == bob.me
    assert await alice.resolve_peer(bob.peer_id_text) == bob.me
    with pytest.raises(PeerLookupError, match="no peer"):
        await alice.resolve_peer("carol")


async def test_bad_input_is_refused_clearly(pair: tuple[Node, Node]) -> None:
    alice, bob = pair
    with pytest.raises(NodeError, match="empty"):
        await alice.send_text(bob.me, "   ")
    with pytest.raises(NodeError, match="too long"):
        await alice.send_text(bob.me, "x" * 100_000)
    with pytest.raises(NodeError, match="yourself"):
        await alice.send_text(alice.me, "hi me")


async def test_link_down_is_reported(pair: tuple[Node, Node]) -> None:
    alice, bob = pair
    await connected_pair(alice, bob)
    events = alice.subscribe()
    await bob.stop()
    ev = await wait_for(events, lambda e: isinstance(e, PeerOffline))
    assert ev.peer_id == bob.me
    await bob.start()  # so the fixture can stop it again


async def test_reactions_rooms_and_paging(pair: tuple[Node, Node]) -> None:
    from p2pchat.node import ReactionChanged

    alice, bob = pair
    await befriend(alice, bob)
    events = bob.subscribe()
    first = await alice.send_text(bob.me, "react to me")
    await wait_for(events, lambda e: isinstance(e, MessageAdded) and e.message.id == first.id)
    await alice.react(first.id, "👍")
    await wait_for(events, lambda e: isinstance(e, ReactionChanged) and e.message_id == first.id)
    got = await bob.reactions([first.id])
    assert [(r.author, r.emoji) for r in got[first.id]] == [(alice.me, "👍")]
    # Taking it back removes it on both sides.
    await alice.react(first.id, "👍", on=False)
    await wait_for(events, lambda e: isinstance(e, ReactionChanged) and e.message_id == first.id)
    assert (await bob.reactions([first.id])).get(first.id, []) == []
    # Reactions are not messages: not in history, not unread.
    room = bob.direct_room(alice.me)
    assert [m.body for m in await bob.history(room)] == [b"react to me"]
    rooms = await bob.list_rooms()
    assert [(r.name, r.kind, r.unread, r.peer_id) for r in rooms] == [
        ("alice", "direct", 1, alice.me)
    ]
    await bob.mark_read(room)
    assert (await bob.list_rooms())[0].unread == 0
    # Paging back through older messages.
    for i in range(30):
        await alice.send_text(bob.me, f"n{i}")
    await wait_for(events, lambda e: isinstance(e, MessageAdded) and e.message.body == b"n29")
    latest = await bob.history(room, limit=10)
    older = await bob.older_messages(room, latest[0], limit=10)
    assert [m.body for m in older] == [f"n{i}".encode() for i in range(10, 20)]
    assert alice.safety_number(bob.me) == bob.safety_number(alice.me)
    with pytest.raises(NodeError, match="one emoji"):
        await alice.react(first.id, "not an emoji at all, far too long")


async def test_a_burst_of_sends_shares_commits(
    pair: tuple[Node, Node], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Group commit: 200 sends started together take a handful of transactions (one
    fsync each), not 200, while a lone send still commits on its own."""
    alice, bob = pair
    await befriend(alice, bob)
    assert alice.db is not None
    transactions = 0
    submit = alice.db.submit

    def counting_submit(fn, *, quick=False):  # type: ignore[no-untyped-def]
        nonlocal transactions
        transactions += 1
        return submit(fn, quick=quick)

    monkeypatch.setattr(alice.db, "submit", counting_submit)
    await alice.send_text(bob.me, "alone")
    assert transactions == 1
    transactions = 0
    sent = await asyncio.gather(*(alice.send_text(bob.me, f"burst {i}") for i in range(200)))
    assert len({m.id for m in sent}) == 200
    assert transactions <= 10, f"{transactions} transactions for 200 sends"
    history = await bob_history_when_complete(bob, alice, 201)
    assert [m.body for m in history[1:]] == [f"burst {i}".encode() for i in range(200)]


async def bob_history_when_complete(bob: Node, alice: Node, count: int) -> list[Message]:
    """Bob's history with Alice once it holds ``count`` messages."""
    events = bob.subscribe()
    room = bob.direct_room(alice.me)
    async with asyncio.timeout(WAIT):
        while len(history := await bob.history(room, limit=count + 1)) < count:
            await events.next_matching(lambda e: isinstance(e, MessageAdded))
    events.close()
    return history


async def test_read_before_accepting_turns_read_once_accepted(pair: tuple[Node, Node]) -> None:
    """Bob reads a stranger's message (no receipts to strangers), then accepts them:
    the read receipt follows the acceptance."""
    alice, bob = pair
    await connected_pair(alice, bob)
    events = bob.subscribe()
    sent = await alice.send_text(bob.me, "hi, it's alice")
    await wait_for(events, lambda e: isinstance(e, MessageAdded) and e.message.id == sent.id)
    await bob.mark_read(bob.direct_room(alice.me))
    await bob.accept(alice.me)
    assert await alice.wait_for_status(sent.id, MessageStatus.READ, WAIT)
