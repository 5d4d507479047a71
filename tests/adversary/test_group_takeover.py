"""Attacks on a group room from inside it: a second genesis, unauthorised changes,
invitation spam, and a removed member who keeps posting (issue 9).

Every attacker is a real node speaking the real protocol with valid signatures
(tests/adversary/hostile.py). The tests judge only what people see: the room's name,
owner and members (``groups.members``, ``list_rooms``), its history as it is displayed
(``Node.display_text``, what the UI and the CLI print), events, and whether the owner can
still use the room, also after a restart.

Hostile envelopes are built in one place, :func:`forge`: when envelopes change shape (a
``deps`` field naming the membership operations their author had seen), adapt it there.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import Awaitable, Callable

import pytest

from p2pchat.node import MessageAdded, Node
from p2pchat.node.envelopes import row_to_envelope
from p2pchat.node.events import RoomInvitation
from p2pchat.node.rooms import KIND_SYSTEM, SystemOp, encode_system, group_envelope_id
from p2pchat.store import now_ms
from p2pchat.wire import Envelope
from tests.adversary.hostile import Hostile
from tests.node.groups_helpers import form_room, mesh, start_nodes, texts, wait_texts, wait_until
from tests.nodes import WAIT, connected_pair, make_node, stop_all, wait_for

# ---------------------------------------------------------------------------- helpers


def forge(
    attacker: Hostile,
    room: bytes,
    *,
    kind: str,
    body: bytes,
    seq: int,
    lamport: int,
    context: Envelope | None = None,
) -> Envelope:
    """The one place hostile group envelopes are built, signed by the attacker.

    ``context``: a genuine envelope the attacker wrote earlier; the forgery claims the
    causal context that one had (its ``deps``: the membership operations its author had
    seen), as a client that kept old state would. None: no context at all (empty
    ``deps``, as a genesis ``create`` has).
    """
    if context is None:
        return attacker.envelope(room, kind=kind, body=body, seq=seq, lamport=lamport, deps=())
    return Hostile.resigned(
        attacker.node,
        context,
        id=group_envelope_id(room, attacker.me, seq),
        kind=kind,
        body=body,
        seq=seq,
        lamport=lamport,
        ts=now_ms(),
        reply_to=None,
    )


async def genuine(node: Node, message_id: bytes) -> Envelope:
    """The signed envelope ``node`` stored for its own message (to reuse its context)."""
    message = await node.get_message(message_id)
    assert message is not None
    return row_to_envelope(message)


async def next_seq(node: Node, room: bytes) -> int:
    """The next per-author sequence number ``node`` would use in ``room`` (so a forgery
    is in order, and refused for what it claims, not for a gap)."""
    mine = [m.seq for m in await node.history(room, limit=100_000) if m.author == node.me]
    return max(mine, default=0) + 1


async def settle(sender: Node, receiver: Node) -> None:
    """Return once ``receiver`` has handled every frame ``sender`` wrote to it so far.

    Frames of one link are handled in order: once a direct message written after them
    has arrived, and then one more (which cannot share a batch with them), so have they.
    """
    for i in range(2):
        events = receiver.subscribe()
        try:
            sent = await sender.send_text(receiver.me, f"barrier {i}")
            await wait_for(events, lambda e, s=sent.id: _added(e, s))
        finally:
            events.close()


def _added(event: object, message_id: bytes) -> bool:
    return isinstance(event, MessageAdded) and event.message.id == message_id


async def wait_everywhere(
    nodes: list[Node], check: Callable[[], Awaitable[bool]], within: float = WAIT
) -> None:
    """Wait until ``await check()`` holds, re-checking whenever any of ``nodes`` emits an
    event (and at least once a second, for a change that comes without one)."""
    streams = [n.subscribe() for n in nodes]
    try:
        async with asyncio.timeout(within):
            while not await check():
                getters = [asyncio.ensure_future(s.get()) for s in streams]
                _, pending = await asyncio.wait(
                    getters, timeout=1.0, return_when=asyncio.FIRST_COMPLETED
                )
                for getter in pending:
                    getter.cancel()
    finally:
        for stream in streams:
            stream.close()


Snapshot = tuple[str, list[tuple[bytes, str, str]]]


async def room_view(node: Node, room: bytes) -> Snapshot:
    """What a person sees of a room: its name, and each member's role and state."""
    names = [r.name for r in await node.list_rooms() if r.room_id == room]
    members = sorted((m.peer_id, m.role, m.state) for m in await node.groups.members(room))
    return names[0], members


async def shown(node: Node, room: bytes) -> list[str]:
    """The room's history as displayed (system messages as sentences)."""
    return [node.display_text(m) for m in await node.history(room, limit=100_000)]


class Screen:
    """Every message a node announces (``MessageAdded``), rendered as the UI renders it."""

    def __init__(self, node: Node) -> None:
        self.node = node
        self.lines: list[str] = []
        self.invitations: list[RoomInvitation] = []
        self._stream = node.subscribe()
        self._task = asyncio.ensure_future(self._watch())

    async def _watch(self) -> None:
        async for event in self._stream:
            if isinstance(event, MessageAdded):
                self.lines.append(self.node.display_text(event.message))
            elif isinstance(event, RoomInvitation):
                self.invitations.append(event)

    @property
    def complete(self) -> bool:
        """False if events were dropped (a full backlog): what it saw would be partial."""
        return self._stream.dropped == 0

    async def close(self) -> None:
        self._stream.close()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task


def as_applied(line: str, sentence: str) -> bool:
    """True if ``line`` presents ``sentence`` as something that happened (hiding the
    refused change, or saying it was refused, are both fine)."""
    return sentence in line and "refused" not in line.casefold()


# ---------------------------------------------------------------------------- (a) genesis


@pytest.mark.parametrize("attacker_state", ["invited", "joined"])
async def test_second_create_at_lamport_zero_does_not_take_over_the_room(
    attacker_state: str,
) -> None:
    alice, bob, mallory = await start_nodes(["alice", "bob", "mallory"])
    nodes = [alice, bob, mallory]
    try:
        await mesh(nodes)
        attacker = Hostile(mallory)
        room = await form_room(alice, [bob])
        invited = mallory.subscribe()
        await alice.groups.invite(room, mallory.me)
        await wait_for(invited, lambda e: isinstance(e, RoomInvitation) and e.room == room)
        invited.close()
        if attacker_state == "joined":
            await mallory.groups.join(room)
            for node in (alice, bob):
                await wait_until(node, lambda n=node: _joined(n, room, mallory.me))
        before = {n.me: await room_view(n, room) for n in (alice, bob)}
        assert before[alice.me][0] == "team"

        fake = forge(
            attacker,
            room,
            kind=KIND_SYSTEM,
            body=encode_system(SystemOp("create", name="pwned", nonce=os.urandom(16))),
            seq=await next_seq(mallory, room),
            lamport=0,
        )
        for victim in (alice, bob):
            attacker.send_envelopes(victim.me, fake)
            await settle(mallory, victim)

        for victim in (alice, bob):
            assert await room_view(victim, room) == before[victim.me]
            assert not any(as_applied(line, "pwned") for line in await shown(victim, room))
        await alice.send_message(room, "still my room")
        await wait_texts(bob, room, 1)

        # The owner's node restarts from its store: still the owner's room.
        await alice.stop()
        alice = nodes[0] = make_node("alice")
        await alice.start()
        await connected_pair(alice, bob)
        assert await room_view(alice, room) == before[alice.me]
        await alice.send_message(room, "and after a restart")
        await wait_texts(bob, room, 2)
        assert await texts(bob, room) == ["still my room", "and after a restart"]
    finally:
        await stop_all(nodes)


async def _joined(node: Node, room: bytes, peer: bytes) -> bool:
    return any(m.peer_id == peer and m.state == "joined" for m in await node.groups.members(room))


# ------------------------------------------------------------- (b) unauthorised changes


@pytest.mark.parametrize("attack", ["remove_owner", "remove_member", "promote_self", "rename"])
async def test_plain_member_remove_promote_rename_change_nothing_and_never_show_as_done(
    attack: str,
) -> None:
    alice, bob, mallory = await start_nodes(["alice", "bob", "mallory"])
    nodes = [alice, bob, mallory]
    screens: list[Screen] = []
    try:
        await mesh(nodes)
        attacker = Hostile(mallory)
        room = await form_room(alice, [bob, mallory])
        hello = await mallory.send_message(room, "hi, just a member here")
        for node in (alice, bob):
            await wait_texts(node, room, 1)
        op, sentence = {
            "remove_owner": (SystemOp("remove", peer=alice.me), "mallory removed alice"),
            "remove_member": (SystemOp("remove", peer=bob.me), "mallory removed bob"),
            "promote_self": (SystemOp("promote", peer=mallory.me), "mallory made mallory an"),
            "rename": (SystemOp("rename", name="pwned"), "mallory renamed the room"),
        }[attack]
        before = {n.me: await room_view(n, room) for n in (alice, bob)}
        screens = [Screen(alice), Screen(bob)]

        context = await genuine(mallory, hello.id)
        forged = forge(
            attacker,
            room,
            kind=KIND_SYSTEM,
            body=encode_system(op),
            seq=await next_seq(mallory, room),
            lamport=context.lamport + 1,
            context=context,
        )
        for victim in (alice, bob):
            attacker.send_envelopes(victim.me, forged)
            await settle(mallory, victim)

        for victim, screen in zip((alice, bob), screens, strict=True):
            assert screen.complete
            assert await room_view(victim, room) == before[victim.me]
            history = await shown(victim, room)
            assert not [line for line in history if as_applied(line, sentence)], history
            assert not [line for line in screen.lines if as_applied(line, sentence)]
        # The member who was "removed" still writes, and the owner still reads it.
        await bob.send_message(room, "still here")
        await wait_texts(alice, room, 2)
    finally:
        for screen in screens:
            await screen.close()
        await stop_all(nodes)


# --------------------------------------------------------------- (c) invitation spam

SPAM = 300
MAX_INVITATIONS_PER_INVITER = 5


async def test_invitation_spam_from_one_contact_stores_only_a_handful_of_rooms() -> None:
    alice, bob, mallory = await start_nodes(["alice", "bob", "mallory"])
    nodes = [alice, bob, mallory]
    screen = Screen(alice)
    try:
        await mesh(nodes)
        # Genuine create + invite logs, as mallory's own node writes them: valid whatever
        # the room id commits to. Nothing stops a hostile client from sending 300.
        async with asyncio.timeout(120):
            for i in range(SPAM):
                spam_room = await mallory.groups.create_room(f"free prizes {i}")
                await mallory.groups.invite(spam_room, alice.me)
            await settle(mallory, alice)

        assert screen.complete
        from_mallory = [i for i in screen.invitations if i.inviter == mallory.me]
        assert len(from_mallory) <= MAX_INVITATIONS_PER_INVITER
        pending = [i for i in await alice.groups.invitations() if i.inviter == mallory.me]
        assert len(pending) <= MAX_INVITATIONS_PER_INVITER
        stored = [r for r in await alice.list_rooms() if r.kind == "group"]
        assert len(stored) <= MAX_INVITATIONS_PER_INVITER

        # A real invitation from another contact still gets through, and works.
        real = await bob.groups.create_room("Book club")
        await bob.groups.invite(real, alice.me)
        await wait_until(alice, lambda: _invited(alice, real))
        await alice.groups.join(real)
        await wait_until(bob, lambda: _joined(bob, real, alice.me))
    finally:
        await screen.close()
        await stop_all(nodes)


async def _invited(node: Node, room: bytes) -> bool:
    return any(i.room == room for i in await node.groups.invitations())


# ------------------------------------------------- (d) a removed member keeps posting


async def test_removed_member_backdated_posts_with_old_deps_appear_nowhere() -> None:
    """Mallory, removed, writes posts that claim to come from before her removal (old
    Lamport time, old causal context) and hands them to carol, who was away during the
    removal and has not heard of it. Once everyone has met again, they show nowhere."""
    alice, bob, carol, mallory = await start_nodes(["alice", "bob", "carol", "mallory"])
    nodes = [alice, bob, carol, mallory]
    try:
        await mesh(nodes)
        attacker = Hostile(mallory)
        room = await form_room(alice, [bob, carol, mallory])
        hello = await mallory.send_message(room, "hello from mallory")
        for node in (alice, bob, carol):
            await wait_texts(node, room, 1)
        context = await genuine(mallory, hello.id)

        await carol.stop()
        await alice.groups.remove(room, mallory.me)
        await wait_until(bob, lambda: _removed(bob, room, mallory.me))
        await alice.stop()
        await bob.stop()

        # Carol is back, with only mallory to talk to.
        carol = nodes[2] = make_node("carol")
        await carol.start()
        await connected_pair(carol, mallory)
        seq = await next_seq(mallory, room)
        forged = [
            forge(
                attacker,
                room,
                kind="text",
                body=f"backdated {i}".encode(),
                seq=seq + i,
                lamport=context.lamport,
                context=context,
            )
            for i in range(3)
        ]
        attacker.send_envelopes(carol.me, *forged)
        await settle(mallory, carol)

        # Everyone meets again; mallory also hands the posts straight to alice and bob.
        alice = nodes[0] = make_node("alice")
        bob = nodes[1] = make_node("bob")
        for node in (alice, bob):
            await node.start()
            await connected_pair(node, carol)
            await connected_pair(node, mallory)
        await connected_pair(alice, bob)
        for victim in (alice, bob):
            attacker.send_envelopes(victim.me, *forged)
            await settle(mallory, victim)

        members = [alice, bob, carol]

        async def agreed() -> bool:
            if not await _removed(carol, room, mallory.me):
                return False
            views = [[m.id for m in await n.history(room, limit=10_000)] for n in members]
            return all(v == views[0] for v in views)

        await wait_everywhere(members, agreed, within=30)
        forged_ids = {e.id for e in forged}
        for node in members:
            held = {m.id for m in await node.history(room, limit=10_000)}
            assert held.isdisjoint(forged_ids), f"{node.profile.display_name} shows them"
            assert "hello from mallory" in await texts(node, room)  # the past stays
            assert not any("backdated" in line for line in await shown(node, room))
    finally:
        await stop_all(nodes)


async def _removed(node: Node, room: bytes, peer: bytes) -> bool:
    return any(m.peer_id == peer and m.state == "removed" for m in await node.groups.members(room))
