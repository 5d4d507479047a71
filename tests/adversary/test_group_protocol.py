"""Group envelopes from before protocol 2, and rooms made by an older p2pchat."""

from __future__ import annotations

import os

import pytest

from p2pchat.node import GroupError, MessageStatus, SecurityWarning
from p2pchat.node.envelopes import envelope_to_row, new_message_id, sign_envelope
from p2pchat.node.rooms import KIND_SYSTEM, SystemOp, encode_system
from p2pchat.store import now_ms
from p2pchat.wire import Envelope
from tests.adversary.hostile import Hostile
from tests.node.groups_helpers import form_room, mesh, start_nodes, texts
from tests.nodes import wait_for


async def test_a_member_on_protocol_1_is_refused_with_a_clear_warning() -> None:
    owner, bob = await start_nodes(["owner", "bob"])
    try:
        await mesh([owner, bob])
        room = await form_room(owner, [bob])
        warnings = owner.subscribe()
        old = Hostile(bob).envelope(room, kind="text", body=b"from the past", seq=5)
        assert old.deps is None  # what an older p2pchat sends
        Hostile(bob).send_envelopes(owner.me, old)
        got = await wait_for(warnings, lambda e: isinstance(e, SecurityWarning))
        assert isinstance(got, SecurityWarning)
        assert "older p2pchat" in got.text
        assert "from the past" not in await texts(owner, room)
    finally:
        for node in (owner, bob):
            await node.stop()


async def test_a_room_made_by_an_older_p2pchat_stays_readable_but_takes_nothing_new() -> None:
    (alice,) = await start_nodes(["alice"])
    try:
        room = os.urandom(16)
        create = sign_envelope(
            alice.identity,
            Envelope.unsigned(
                room=room,
                id=new_message_id(),
                author=alice.me,
                seq=1,
                lamport=1,
                ts=now_ms(),
                kind=KIND_SYSTEM,
                body=encode_system(SystemOp("create", name="old room")),
            ),
        )

        def legacy(store):  # type: ignore[no-untyped-def]
            store.ensure_room(room, "group", name="old room", owner=alice.me, created_at=1)
            store.add_messages([envelope_to_row(create, 1, MessageStatus.DELIVERED)])

        await alice._write(legacy)
        with pytest.raises(GroupError, match="older p2pchat"):
            await alice.send_message(room, "hello")
        assert [m.id for m in await alice.history(room)] == []  # its create is not shown
    finally:
        await alice.stop()
