"""Edit and delete (issue 14, item 2): signed envelopes that change a message everywhere.

Real nodes over loopback. An edit shows the latest text, marked edited; a delete turns
the message into a tombstone ("message deleted") on every node that receives it, text
gone from the store; both travel, queue and sync like messages.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from p2pchat.node import MessagesChanged, Node, PeerOffline
from p2pchat.store.changes import is_tombstone
from tests.node.groups_helpers import befriend, form_room, mesh, start_nodes, wait_until
from tests.nodes import make_node, wait_for


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


async def _arrived(node: Node, message_id: bytes) -> bool:
    return await node.get_message(message_id) is not None


async def _raw_body(node: Node, message_id: bytes) -> bytes | None:
    row = await node.store_read(lambda s: s.get_message(message_id))
    return None if row is None else row.body


async def test_an_edit_shows_the_latest_text_marked_edited_on_both_sides(
    pair: tuple[Node, Node],
) -> None:
    a, b = pair
    room = a.direct_room(b.me)
    sent = await a.send_text(b.me, "see you at 5")
    await wait_until(b, lambda: _arrived(b, sent.id))
    changed = b.subscribe()
    await a.edit_message(sent.id, "see you at 6")
    await wait_for(changed, lambda e: isinstance(e, MessagesChanged) and sent.id in e.message_ids)
    for node in (a, b):
        (shown,) = [m for m in await node.history(room) if m.id == sent.id]
        assert shown.body == b"see you at 6"
        assert shown.edited
        assert [m.id for m in await node.history(room)] == [sent.id]  # the edit is no line


async def test_a_delete_removes_the_text_from_both_stores(pair: tuple[Node, Node]) -> None:
    a, b = pair
    room = a.direct_room(b.me)
    sent = await a.send_text(b.me, "my secret plan")
    await wait_until(b, lambda: _arrived(b, sent.id))
    assert [h.message.id for h in (await b.chats.search("secret plan")).hits] == [sent.id]
    await a.edit_message(sent.id, "my secret plan, revised")
    changed = b.subscribe()
    await a.delete_message(sent.id)
    await wait_for(
        changed,
        lambda e: isinstance(e, MessagesChanged) and sent.id in e.message_ids,
    )

    async def gone(node: Node) -> bool:
        m = await node.get_message(sent.id)
        return m is not None and is_tombstone(m)

    await wait_until(b, lambda: gone(b))
    for node in (a, b):
        (shown,) = [m for m in await node.history(room) if m.id == sent.id]
        assert node.display_text(shown) == "message deleted"
        assert await _raw_body(node, sent.id) == b""
        assert (await node.chats.search("secret plan")).hits == []  # gone from the index
        # Neither the text nor its edit is left anywhere in the messages table.
        rows = await node.store_read(
            lambda s: s._all("SELECT body FROM messages WHERE body LIKE '%secret%'")
        )
        assert rows == []


async def test_a_delete_while_the_peer_is_away_arrives_without_the_text() -> None:
    a, b = make_node("alice"), make_node("bob")
    await a.start()
    await b.start()
    try:
        await befriend(a, b)
        gone = a.subscribe()
        await b.stop()
        await wait_for(gone, lambda e: isinstance(e, PeerOffline) and e.peer_id == b.me)
        sent = await a.send_text(b.me, "oops, wrong chat")
        await a.delete_message(sent.id)
        b = make_node("bob")
        await b.start()
        await befriend(a, b)

        async def tombstoned() -> bool:
            m = await b.get_message(sent.id)
            return m is not None and is_tombstone(m)

        await wait_until(b, tombstoned)
        # The queued original was withdrawn from the outbox: its text never travelled.
        assert await _raw_body(b, sent.id) == b""
    finally:
        await a.stop()
        await b.stop()


async def test_group_owner_deletes_a_members_message_everywhere() -> None:
    owner, member, other = await start_nodes(["owner", "member", "other"])
    try:
        await mesh([owner, member, other])
        room = await form_room(owner, [member, other])
        said = await member.send_message(room, "something rude")
        for node in (owner, other):
            await wait_until(node, lambda n=node: _arrived(n, said.id))
        await member.edit_message(said.id, "something ruder")

        async def edited(node: Node) -> bool:
            m = await node.get_message(said.id)
            return m is not None and m.edited and m.body == b"something ruder"

        for node in (owner, other):
            await wait_until(node, lambda n=node: edited(n))
        await owner.delete_message(said.id)

        async def gone(node: Node) -> bool:
            m = await node.get_message(said.id)
            return m is not None and is_tombstone(m)

        for node in (owner, member, other):
            await wait_until(node, lambda n=node: gone(n))
            assert await _raw_body(node, said.id) == b""
            rows = await node.store_read(
                lambda s: s._all("SELECT id FROM messages WHERE body LIKE '%rude%'")
            )
            assert rows == []  # the edit went with it
    finally:
        for node in (owner, member, other):
            await node.stop()


async def test_deleted_text_is_not_left_in_the_store_files(pair: tuple[Node, Node]) -> None:
    a, b = pair
    secret = "zebra-umbrella-4711 " * 20  # a long text, so it fills a page cell of its own
    sent = await a.send_text(b.me, secret)
    await wait_until(b, lambda: _arrived(b, sent.id))
    await a.delete_message(sent.id)

    async def gone() -> bool:
        m = await b.get_message(sent.id)
        return m is not None and is_tombstone(m)

    await wait_until(b, gone)
    for node in (a, b):
        path = node.profile.store_path
        await node.stop()  # a clean close checkpoints the write-ahead log into the file
        files = [p for p in path.parent.iterdir() if p.name.startswith(path.name)]
        for file in files:
            assert b"zebra-umbrella-4711" not in file.read_bytes(), file.name


async def test_a_deleted_file_offer_is_served_no_more(
    pair: tuple[Node, Node], tmp_path: Path
) -> None:
    a, b = pair
    await b.transfers.set_auto_accept_max(0)  # bob does not fetch it before the delete
    source = tmp_path / "plans.txt"
    source.write_bytes(b"the plans" * 1000)
    offer = await a.transfers.send_file(b.me, source)
    await wait_until(b, lambda: _arrived(b, offer.id))
    await a.delete_message(offer.id)

    async def revoked() -> bool:
        info = await a.transfers.get(offer.id)
        return info is not None and info.state == "cancelled"

    await wait_until(a, revoked)

    async def gone_at_bob() -> bool:
        m = await b.get_message(offer.id)
        return m is not None and is_tombstone(m)

    await wait_until(b, gone_at_bob)

    async def stopped_at_bob() -> bool:
        info = await b.transfers.get(offer.id)
        return info is None or info.state == "cancelled"

    await wait_until(b, stopped_at_bob)
