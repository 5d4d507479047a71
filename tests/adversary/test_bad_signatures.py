"""An attack that already held: floods of envelopes with bad signatures.

A contact (or a group member) that sends thousands of envelopes whose signatures do not
verify must get none of them stored or acknowledged, in a direct room or a group room,
and must not delay an honest contact's messages while it does. Each flood is bounded in
count, and every wait in time.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
from collections.abc import AsyncIterator

import pytest

from p2pchat.node import Node, checks_ahead
from p2pchat.node.envelopes import direct_room_id, envelope_is_authentic
from p2pchat.node.events import MessageAdded
from p2pchat.node.stream import EventStream
from p2pchat.wire import Envelope
from tests.adversary.hostile import Hostile
from tests.node.groups_helpers import form_room, mesh, start_nodes
from tests.nodes import WAIT, connected_pair, make_node, wait_for

FLOOD = 2_000
CHUNK = 50


def forged(env: Envelope) -> Envelope:
    """``env`` with one bit of its signature flipped: well-formed, but not authentic."""
    sig = bytearray(env.sig)
    sig[0] ^= 1
    return dataclasses.replace(env, sig=bytes(sig))


async def befriend(a: Node, b: Node) -> None:
    await connected_pair(a, b)
    await a.accept(b.me)
    await b.accept(a.me)


async def send_forged(
    hostile: Hostile, to: Node, room: bytes | None = None, **fields: object
) -> None:
    """Send FLOOD forged envelopes to ``to`` (in ``room``, else our direct room)."""
    for start in range(0, FLOOD, CHUNK):
        envs = [
            forged(
                hostile.envelope(room, body=b"forged %d" % i, **fields)
                if room is not None
                else hostile.direct(to.me, body=b"forged %d" % i)
            )
            for i in range(start, start + CHUNK)
        ]
        hostile.send_envelopes(to.me, *envs)
        await hostile.node.links.flush(to.me)


async def test_a_contact_flooding_bad_signatures_stores_nothing_and_delays_no_one() -> None:
    victim, bob, mallory_node = (make_node(n) for n in ("victim", "bob", "mallory"))
    for node in (victim, bob, mallory_node):
        await node.start()
    try:
        await befriend(victim, bob)
        await befriend(victim, mallory_node)
        mallory = Hostile(mallory_node)
        events = victim.subscribe()
        flood = asyncio.create_task(send_forged(mallory, victim))
        # Bob keeps writing while the flood runs: every message arrives.
        sent = [(await bob.send_text(victim.me, f"honest {i}")).id for i in range(10)]
        got: set[bytes] = set()
        async with asyncio.timeout(WAIT):
            while not got >= set(sent):
                event = await wait_for(events, lambda e: isinstance(e, MessageAdded))
                assert isinstance(event, MessageAdded)
                assert event.message.author != mallory.me, "a forged envelope was stored"
                got.add(event.message.id)
        async with asyncio.timeout(WAIT * 2):
            await flood
        # Every forged frame was read (the flood ended), and one authentic message sent
        # after all of them is stored: so the victim judged each forged one, and kept none.
        real = mallory.direct(victim.me, body=b"authentic after the flood")
        mallory.send_envelopes(victim.me, real)
        stored = await wait_for(
            events, lambda e: isinstance(e, MessageAdded) and e.message.id == real.id
        )
        assert isinstance(stored, MessageAdded)
        room = direct_room_id(victim.me, mallory.me)
        held = await victim.history(room, limit=FLOOD + 10)
        assert [m.id for m in held] == [real.id]
    finally:
        for node in (victim, bob, mallory_node):
            await node.stop()


@dataclasses.dataclass
class HostileRoom:
    """A room of three running nodes (owner, member, mallory), owner's events open."""

    owner: Node
    member: Node
    mallory_node: Node
    mallory: Hostile
    room: bytes
    events: EventStream


@contextlib.asynccontextmanager
async def hostile_room() -> AsyncIterator[HostileRoom]:
    """Owner, member and mallory in one room, all linked; stopped afterwards."""
    nodes = await start_nodes(["owner", "member", "mallory"])
    try:
        owner, member, mallory_node = nodes
        await mesh(nodes)
        room = await form_room(owner, [member, mallory_node])
        yield HostileRoom(
            owner, member, mallory_node, Hostile(mallory_node), room, owner.subscribe()
        )
    finally:
        for node in nodes:
            await node.stop()


async def test_a_group_member_flooding_bad_signatures_gets_nothing_stored() -> None:
    async with hostile_room() as h:
        room, mallory_node = h.room, h.mallory_node
        deps = await mallory_node._read(lambda s: mallory_node.groups.membership(s, room).heads)
        await send_forged(h.mallory, h.owner, room, deps=deps)
        honest = await h.member.send_message(room, "still here")
        await wait_for(
            h.events, lambda e: isinstance(e, MessageAdded) and e.message.id == honest.id
        )
        held = await h.owner.history(room, limit=FLOOD + 50)
        assert not [m for m in held if m.author == h.mallory.me and m.kind == "text"]


def altered(env: Envelope) -> Envelope:
    """``env`` with its body changed and its (authentic) signature kept: same message id,
    other bytes, so not authentic."""
    return dataclasses.replace(env, body=env.body + b" (altered)")


async def next_posts(mallory: Hostile, room: bytes, count: int) -> list[Envelope]:
    """``count`` authentic posts by ``mallory`` in ``room``, seqs right after what she
    holds there (her join came first), naming the membership she has seen."""
    node = mallory.node
    deps = await node._read(lambda s: node.groups.membership(s, room).heads)
    held = (await node._read(lambda s: s.heads(room))).get(mallory.me, 0)
    return [
        mallory.envelope(room, body=b"real %d" % i, deps=deps, seq=held + 1 + i)
        for i in range(count)
    ]


def send_each_after_a_false_copy(mallory: Hostile, to: bytes, real: list[Envelope]) -> None:
    """Each of ``real`` right after a copy under its id that does not verify (a flipped
    signature, or its body altered under the original signature), CHUNK at a time."""
    for start in range(0, len(real), CHUNK):
        frames: list[Envelope] = []
        for i, env in enumerate(real[start : start + CHUNK]):
            frames += [forged(env) if i % 2 else altered(env), env]
        mallory.send_envelopes(to, *frames)


async def stored(events: EventStream, env: Envelope) -> None:
    """Wait until the node behind ``events`` has stored ``env``."""
    await wait_for(events, lambda e: isinstance(e, MessageAdded) and e.message.id == env.id)


async def test_forged_copies_mixed_into_a_catch_up_never_displace_the_authentic_ones() -> None:
    """Large batches are checked ahead, in another thread, while the one before is stored.

    Each authentic envelope comes right after a copy under the same message id that does
    not verify (a flipped signature, or its body altered under the original signature):
    a verdict must belong to the very envelope it was made for, so every authentic one
    is stored once, with its own body, and no copy ever is.
    """
    count = 300
    async with hostile_room() as h:
        real = await next_posts(h.mallory, h.room, count)
        send_each_after_a_false_copy(h.mallory, h.owner.me, real)
        await stored(h.events, real[-1])
        held = await h.owner.history(h.room, limit=count + 50)
        mine = [m for m in held if m.author == h.mallory.me and m.kind == "text"]
        missing = sorted({env.body for env in real} - {m.body for m in mine})
        assert not missing, missing
        assert len({m.id for m in mine}) == count


async def test_forged_copies_mixed_into_a_contacts_backlog_never_displace_the_authentic_ones() -> (
    None
):
    """The same in a one-to-one room (the direct path asks for its verdicts on the loop)."""
    count = 300
    victim, mallory_node = make_node("victim"), make_node("mallory")
    for node in (victim, mallory_node):
        await node.start()
    try:
        await befriend(victim, mallory_node)
        mallory = Hostile(mallory_node)
        events = victim.subscribe()
        real = [mallory.direct(victim.me, body=b"real %d" % i) for i in range(count)]
        send_each_after_a_false_copy(mallory, victim.me, real)
        await stored(events, real[-1])
        held = await victim.history(direct_room_id(victim.me, mallory.me), limit=count + 50)
        assert sorted(m.body for m in held) == sorted(env.body for env in real)
        assert len({m.id for m in held}) == count
    finally:
        for node in (victim, mallory_node):
            await node.stop()


async def test_a_member_resending_what_we_hold_costs_no_signature_checks(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A copy of a message we already hold is not checked again (it is never stored
    again, and its acknowledgement needs the stored copy's signature to match): nor in a
    large batch, whose checks start before the batch is stored."""
    count = 200
    async with hostile_room() as h:
        real = await next_posts(h.mallory, h.room, count + 1)
        h.mallory.send_envelopes(h.owner.me, *real[:count])
        await stored(h.events, real[count - 1])
        checked: list[bytes] = []

        def counted(env: Envelope) -> bool:
            checked.append(env.id)
            return envelope_is_authentic(env)

        monkeypatch.setattr(checks_ahead, "envelope_is_authentic", counted)
        # All of them again, then one new message: frames of a link are taken in order,
        # so once the new one is stored every copy before it was judged.
        h.mallory.send_envelopes(h.owner.me, *real)
        await stored(h.events, real[count])
        assert checked == [real[count].id]
