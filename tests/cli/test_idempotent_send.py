"""Idempotent sends: a retry with the same client id never stores a second copy (issue 11)."""

from __future__ import annotations

import pytest

from p2pchat.control.api import ApiError, NodeApi
from p2pchat.identity import encode_peer_id
from p2pchat.node import MessageStatus
from tests.node.groups_helpers import befriend, form_room, start_nodes, texts, wait_texts
from tests.nodes import WAIT, make_node


async def test_a_retry_after_a_restart_finds_the_message_already_written() -> None:
    alice, bob = await start_nodes(["alice", "bob"])
    try:
        await befriend(alice, bob)
        params = {"peer": encode_peer_id(bob.me), "text": "pay 10", "client_id": "order-17"}
        first = await NodeApi(alice).call("send", params)
        await alice.stop()  # as if it crashed after storing, before the script heard back
        alice = make_node("alice")
        await alice.start()
        again = await NodeApi(alice).call("send", params)
        assert again["message"]["id"] == first["message"]["id"]
        sent = await alice.get_message(bytes.fromhex(first["message"]["id"]))
        assert sent is not None
        assert await alice.wait_for_status(sent.id, MessageStatus.DELIVERED, WAIT)
        bodies = [m.body for m in await bob.history(bob.direct_room(alice.me))]
        assert bodies.count(b"pay 10") == 1
        other = await NodeApi(alice).call("send", {**params, "client_id": "order-18"})
        assert other["message"]["id"] != first["message"]["id"]
    finally:
        for node in (alice, bob):
            await node.stop()


async def test_group_sends_are_idempotent_too() -> None:
    alice, bob = await start_nodes(["alice", "bob"])
    try:
        await befriend(alice, bob)
        room = await form_room(alice, [bob])
        one = await alice.send_message(room, "once", client_id="c1")
        two = await alice.send_message(room, "once", client_id="c1")
        assert one.id == two.id
        await wait_texts(bob, room, 1)
        assert await texts(bob, room) == ["once"]
    finally:
        for node in (alice, bob):
            await node.stop()


async def test_a_client_id_must_be_short_and_printable() -> None:
    alice, bob = await start_nodes(["alice", "bob"])
    try:
        await befriend(alice, bob)
        for bad in ("", "x" * 65, "a\nb", 7):
            with pytest.raises(ApiError, match="client_id"):
                await NodeApi(alice).call(
                    "send", {"peer": encode_peer_id(bob.me), "text": "hi", "client_id": bad}
                )
    finally:
        for node in (alice, bob):
            await node.stop()
