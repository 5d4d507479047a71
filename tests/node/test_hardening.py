"""Regressions for attacks and failure paths found in review: each test fails on the
code before its fix."""

from __future__ import annotations

import asyncio
import sqlite3

import pytest

from p2pchat.node import MessageAdded, MessageStatus
from p2pchat.node.envelopes import direct_room_id, new_message_id, sign_envelope
from p2pchat.node.rooms import MAX_MEMBERS
from p2pchat.store.store import Store
from p2pchat.wire import MAX_INT, Envelope, MessageFrame, SyncHeads
from tests.node.groups_helpers import befriend, form_room, mesh, start_nodes, wait_texts
from tests.node.room_ops import History
from tests.nodes import WAIT, connected_pair, make_node, stop_all, wait_for


async def test_an_absurd_lamport_from_a_stranger_is_dropped_and_sending_still_works() -> None:
    alice, bob, mallory = await start_nodes(["alice", "bob", "mallory"])
    try:
        await befriend(alice, bob)
        await connected_pair(mallory, alice)
        env = sign_envelope(
            mallory.identity,
            Envelope.unsigned(
                room=direct_room_id(mallory.me, alice.me),
                id=new_message_id(),
                author=mallory.me,
                seq=1,
                lamport=MAX_INT,
                ts=0,
                kind="text",
                body=b"overflow",
            ),
        )
        mallory.links.write(alice.me, MessageFrame(env=env))
        fence = await mallory.send_text(alice.me, "fence")  # ingested after the bad one
        events = alice.subscribe()
        await wait_for(events, lambda e: isinstance(e, MessageAdded) and e.message.id == fence.id)
        assert await alice.get_message(env.id) is None
        sent = await alice.send_text(bob.me, "still working")
        assert sent.lamport < 2**62
        assert await alice.wait_for_status(sent.id, MessageStatus.DELIVERED, WAIT)
    finally:
        await stop_all([alice, bob, mallory])


async def test_a_flood_of_sync_requests_runs_one_push_at_a_time() -> None:
    alice, bob = await start_nodes(["alice", "bob"])
    try:
        await mesh([alice, bob])
        room = await form_room(alice, [bob])
        for i in range(200):
            await alice.send_message(room, f"m{i}")
        await wait_texts(bob, room, 200)
        peak = 0
        for _ in range(300):  # bob claims, again and again, to hold nothing
            bob.links.write(alice.me, SyncHeads(room=room, heads=()))
            peak = max(peak, len(alice.groups._push_queue.running))
            await asyncio.sleep(0)
        async with asyncio.timeout(WAIT):
            while alice.groups._push_queue.running or alice.groups._pushes:
                peak = max(peak, len(alice.groups._push_queue.running))
                await asyncio.sleep(0.01)
        assert peak <= 1
        assert alice.links.is_online(bob.me)
    finally:
        await stop_all([alice, bob])


async def test_large_outboxes_both_ways_are_delivered_not_deadlocked() -> None:
    alice, bob = await start_nodes(["alice", "bob"])
    try:
        await befriend(alice, bob)
        a_port, b_port = alice.port, bob.port
        await alice.stop()
        await bob.stop()
        # Each queues ~12 MB for the other while both are offline...
        alice, bob = make_node("alice", port=a_port), make_node("bob", port=b_port)
        await alice.start()
        await bob.start()
        for node in (alice, bob):
            node.links.targets.clear()  # stay offline while queueing
        big = "x" * 40_000
        a_ids = [(await alice.send_text(bob.me, big)).id for _ in range(300)]
        b_ids = [(await bob.send_text(alice.me, big)).id for _ in range(300)]
        # ...then they meet, and both flush at once.
        alice.links.add_target("127.0.0.1", b_port, "manual", bob.me)
        async with asyncio.timeout(60):
            for mid in a_ids:
                assert await alice.wait_for_status(mid, MessageStatus.DELIVERED, 60)
            for mid in b_ids:
                assert await bob.wait_for_status(mid, MessageStatus.DELIVERED, 60)
    finally:
        await stop_all([alice, bob])


async def test_a_failed_write_does_not_poison_the_conversation(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    alice, bob = make_node("alice"), make_node("bob")
    await alice.start()
    try:
        original = Store.enqueue_many
        calls = {"n": 0}

        def flaky(self: Store, *args: object, **kwargs: object) -> list[int]:
            calls["n"] += 1
            if calls["n"] == 1:  # a disk that fills up once, outside our control
                raise sqlite3.OperationalError("database or disk is full")
            return original(self, *args, **kwargs)  # type: ignore[arg-type]

        monkeypatch.setattr(Store, "enqueue_many", flaky)
        with pytest.raises(Exception, match="is full"):
            await alice.send_text(bob.me, "first")
        second = await alice.send_text(bob.me, "second")
        third = await alice.send_text(bob.me, "third")
        assert (second.seq, third.seq) == (1, 2)  # no gap left by the rolled-back write
    finally:
        await alice.stop()


def test_joins_beyond_the_member_limit_are_refused() -> None:
    owner = b"\x01" * 32
    history = History(owner, "big")
    for n in range(MAX_MEMBERS + 20):
        peer = (n + 2).to_bytes(32, "big")
        invite = history.add(owner, "invite", peer=peer, deps=[history.entries[-1].id])
        history.add(peer, "join", deps=[invite.id])
    m = history.resolve()
    assert len(m.joined()) == MAX_MEMBERS
    assert "room is full" in m.refused.values()


async def test_cli_errors_never_print_peer_chosen_escapes() -> None:
    from p2pchat.cli.common import CliError
    from p2pchat.cli.session import Session, call
    from p2pchat.control.api import ApiError

    class Refusing:
        async def call(self, method: str, params: dict[str, object] | None = None) -> object:
            raise ApiError(
                "no peer called 'bo'",
                candidates=[
                    {"short_id": "abcdefgh", "name": "\x1b]0;pwned\x07bob", "state": "unknown"}
                ],
            )

    with pytest.raises(CliError) as info:
        await call(Session(Refusing(), remote=True), "send", {})
    assert "\x1b" not in str(info.value)
    assert "\x07" not in str(info.value)


def test_look_alike_names_compare_equal() -> None:
    from p2pchat.node.model import name_key

    assert (
        name_key("Alice")
        == name_key("alice\u200b")
        == name_key("\uff41lice")
        == name_key(" alice ")
    )
    assert name_key("alice") != name_key("alicia")


async def test_an_invisible_character_does_not_hide_an_impersonator() -> None:
    from p2pchat.node import SecurityWarning

    alice, bob = await start_nodes(["alice", "bob"])
    mallory = make_node("mallory")
    mallory.profile.set_display_name("alice\u200b")
    await mallory.start()
    try:
        await befriend(alice, bob)
        events = bob.subscribe()
        await connected_pair(mallory, bob)
        warning = await wait_for(events, lambda e: isinstance(e, SecurityWarning))
        assert warning.peer_id == mallory.me
    finally:
        await stop_all([alice, bob, mallory])


async def test_a_contact_request_cannot_park_large_messages() -> None:
    alice, stranger = await start_nodes(["alice", "stranger"])
    try:
        await connected_pair(stranger, alice)
        big = await stranger.send_text(alice.me, "x" * 10_000)
        small = await stranger.send_text(alice.me, "hello")
        events = alice.subscribe()
        await wait_for(events, lambda e: isinstance(e, MessageAdded) and e.message.id == small.id)
        assert await alice.get_message(big.id) is None
    finally:
        await stop_all([alice, stranger])


def test_an_id_reused_by_another_envelope_is_not_acknowledged(tmp_path: object) -> None:
    from pathlib import Path

    from p2pchat.node.envelopes import held_intact
    from p2pchat.store import NewMessage

    store = Store.open(Path(str(tmp_path)) / "s.sqlite3")
    try:
        store.ensure_room(b"R" * 32, "direct", created_at=1)
        store.ensure_room(b"Q" * 32, "direct", created_at=1)

        def row(room: bytes, sig: bytes) -> NewMessage:
            return NewMessage(
                id=b"X" * 16,
                room=room,
                author=b"A" * 32,
                seq=1,
                lamport=1,
                sent_at=1,
                received_at=1,
                kind="text",
                body=b"hi",
                sig=sig,
            )

        first = row(b"R" * 32, b"s" * 64)
        assert held_intact(store, [first], store.insert_messages([first])) == {b"X" * 16}
        again = row(b"R" * 32, b"s" * 64)  # the same envelope once more: a true duplicate
        assert held_intact(store, [again], store.insert_messages([again])) == {b"X" * 16}
        squat = row(b"Q" * 32, b"t" * 64)  # another envelope claiming the same id
        assert held_intact(store, [squat], store.insert_messages([squat])) == set()
    finally:
        store.close()
