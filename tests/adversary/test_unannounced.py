"""Hole 12: an unannounced node tells its name to no TCP client that proved no identity.

The attacker here is a raw Noise initiator written by hand: it connects to the node's
port, reads everything the node sends, decrypts it, and looks for the display name.
The name travels only after the initiator proved an identity (Noise message 3 with a
valid certificate), and only to contacts and room members: a fresh identity that
completes the handshake is a stranger and gets an empty name. What an unannounced node
still reveals (its peer id, that it runs p2pchat, ...) is listed in docs/security.md.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import pytest

from p2pchat.crypto.noise import CipherState, HandshakeState, KeyPair
from p2pchat.identity import Identity, short_id
from p2pchat.node import MessageAdded, Node, PeerOnline, PeerUpdated, TypingChanged
from p2pchat.transport import PROLOGUE
from p2pchat.wire import Hello, Ping, Pong, Profile, Typing, decode_frame, encode_frame
from tests.node.groups_helpers import befriend, form_room, start_nodes, wait_until
from tests.nodes import WAIT, connected_pair, make_node, wait_for

NAME = "harriet-the-hidden"


async def _read_message(reader: asyncio.StreamReader) -> bytes:
    header = await reader.readexactly(2)
    return await reader.readexactly(int.from_bytes(header, "big"))


def _send(writer: asyncio.StreamWriter, message: bytes) -> None:
    writer.write(len(message).to_bytes(2, "big") + message)


class RawClient:
    """A hand-driven Noise XX initiator that keeps every plaintext the node sent it."""

    def __init__(self) -> None:
        self.identity = Identity.generate()
        self.plaintexts: list[bytes] = []
        self.hello: Hello | None = None

    async def handshake_until_message_2(self, port: int) -> None:
        """Send message 1, read and decrypt message 2, then hang up."""
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            hs = HandshakeState("XX", initiator=True, prologue=PROLOGUE, s=KeyPair.generate())
            _send(writer, hs.write_message(b""))
            self._read_hello(hs.read_message(await _read_message(reader)))
        finally:
            writer.transport.abort()

    async def full_handshake(self, port: int, *, claim: Identity | None = None) -> None:
        """Complete the handshake, then read until the node answers our ping or hangs up.

        With ``claim``, message 3 claims that identity's id and certificate while our
        static key is our own: the node cannot accept that proof.
        """
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            static = KeyPair.from_private(self.identity.noise_private)
            hs = HandshakeState("XX", initiator=True, prologue=PROLOGUE, s=static)
            _send(writer, hs.write_message(b""))
            self._read_hello(hs.read_message(await _read_message(reader)))
            who = claim or self.identity
            hello = Hello(id=who.peer_id, sig=who.static_key_signature(), name="probe")
            _send(writer, hs.write_message(encode_frame(hello)))
            send, recv = hs.split()
            _send(writer, send.encrypt(encode_frame(Ping(n=7))))
            # Frames arrive in order: everything the node sent before the pong is here.
            with contextlib.suppress(asyncio.IncompleteReadError, ConnectionError):
                await self._read_until_pong(reader, recv)
        finally:
            writer.transport.abort()

    def _read_hello(self, payload: bytes) -> None:
        self.plaintexts.append(payload)
        frame = decode_frame(payload)
        assert isinstance(frame, Hello)
        self.hello = frame

    async def _read_until_pong(self, reader: asyncio.StreamReader, recv: CipherState) -> None:
        while True:
            plaintext = recv.decrypt(await _read_message(reader))
            self.plaintexts.append(plaintext)
            if isinstance(decode_frame(plaintext), Pong):
                return

    def saw_name(self) -> bool:
        return any(NAME.encode() in p for p in self.plaintexts)


@pytest.fixture
async def hidden() -> AsyncIterator[Node]:
    """A node whose person chose ``--no-announce``."""
    node = make_node("hidden", announce=False)
    node.profile.set_display_name(NAME)
    await node.start()
    yield node
    await node.stop()


async def test_raw_client_reading_message_2_never_sees_the_display_name(hidden: Node) -> None:
    client = RawClient()
    async with asyncio.timeout(WAIT):
        await client.handshake_until_message_2(hidden.port)
    assert client.hello is not None
    assert client.hello.id == hidden.me  # needed by Noise XX: documented as revealed
    assert client.hello.name == ""
    assert not client.saw_name()


async def test_raw_client_that_proves_no_identity_never_sees_the_display_name(
    hidden: Node,
) -> None:
    client = RawClient()
    async with asyncio.timeout(WAIT):
        # Message 3 replays a real peer's certificate for another static key.
        await client.full_handshake(hidden.port, claim=Identity.generate())
    assert client.hello is not None
    assert client.hello.name == ""
    assert len(client.plaintexts) == 1  # message 2 only: the node hung up after message 3
    assert not client.saw_name()


async def test_a_stranger_that_completes_the_handshake_never_sees_the_display_name(
    hidden: Node,
) -> None:
    client = RawClient()  # a fresh identity, proven: any TCP client can make one
    async with asyncio.timeout(WAIT):
        await client.full_handshake(hidden.port)
    assert client.hello is not None
    assert client.hello.name == ""  # message 2 goes to an unauthenticated initiator
    # The first transport message, once message 3 proved the initiator's id, would
    # name the node to someone it accepted; a stranger gets an empty name.
    assert decode_frame(client.plaintexts[1]) == Profile(name="")
    assert not client.saw_name()


async def test_a_stranger_node_sees_only_the_short_id_even_after_writing(hidden: Node) -> None:
    stranger = make_node("stranger")
    await stranger.start()
    try:
        events = hidden.subscribe()
        await connected_pair(stranger, hidden)
        sent = await stranger.send_text(hidden.me, "hello, who are you?")
        await wait_for(events, lambda e: isinstance(e, MessageAdded) and e.message.id == sent.id)
        seen = stranger.subscribe()
        await hidden.rename(NAME + "-renamed")  # a rename is not told to strangers either
        # A frame written after the rename: once it is here, so is the rename, if sent.
        hidden.links.write(stranger.me, Typing(room=hidden.direct_room(stranger.me), on=True))
        await wait_for(seen, lambda e: isinstance(e, TypingChanged) and e.peer_id == hidden.me)
        seen.close()
        assert stranger.peer_name(hidden.me) == short_id(hidden.me)
    finally:
        await stranger.stop()


async def test_a_peer_learns_the_name_once_accepted_and_contacts_from_the_start(
    hidden: Node,
) -> None:
    friend = make_node("friend")
    await friend.start()
    try:
        events = friend.subscribe()
        friend.links.add_target("127.0.0.1", hidden.port, "manual", hidden.me)
        up = await wait_for(events, lambda e: isinstance(e, PeerOnline) and e.peer_id == hidden.me)
        assert isinstance(up, PeerOnline)
        assert up.name == ""  # a stranger, until accepted
        await hidden.accept(friend.me)  # told at once, over the live link
        await wait_for(events, lambda e: isinstance(e, PeerUpdated) and e.name == NAME)
        assert friend.peer_name(hidden.me) == NAME
        await friend.accept(hidden.me)
        # A new connection (after a break) carries it from the start, whoever dials.
        await friend.links.links[hidden.me].conn.close("break")
        back = await wait_for(
            events, lambda e: isinstance(e, PeerOnline) and e.peer_id == hidden.me
        )
        assert isinstance(back, PeerOnline)
        assert back.name == NAME
        assert friend.links.links[hidden.me].conn.remote.name == NAME
    finally:
        await friend.stop()


async def test_a_room_member_who_is_no_contact_learns_the_name(hidden: Node) -> None:
    alice, bob = await start_nodes(["alice", "bob"])
    try:
        await befriend(alice, hidden)
        await befriend(alice, bob)
        await connected_pair(bob, hidden)
        assert bob.peer_name(hidden.me) == short_id(hidden.me)
        await form_room(alice, [hidden, bob])
        await wait_until(bob, lambda: _named(bob, hidden.me))
    finally:
        for node in (alice, bob):
            await node.stop()


async def _named(node: Node, peer: bytes) -> bool:
    return node.peer_name(peer) == NAME
