"""Hole 12: an unannounced node tells its name to no TCP client that proved no identity.

The attacker here is a raw Noise initiator written by hand: it connects to the node's
port, reads everything the node sends, decrypts it, and looks for the display name.
The name travels only after the initiator proved an identity (Noise message 3 with a
valid certificate). What an unannounced node still reveals (its peer id, that it runs
p2pchat, its name to any peer that completes a handshake, ...) is listed in
docs/security.md.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import pytest

from p2pchat.crypto.noise import CipherState, HandshakeState, KeyPair
from p2pchat.identity import Identity
from p2pchat.node import Node, PeerOnline
from p2pchat.transport import PROLOGUE
from p2pchat.wire import Hello, Ping, Pong, Profile, decode_frame, encode_frame
from tests.nodes import WAIT, make_node, wait_for

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


async def test_the_name_comes_only_after_the_initiator_proved_its_id(hidden: Node) -> None:
    client = RawClient()
    async with asyncio.timeout(WAIT):
        await client.full_handshake(hidden.port)
    assert client.hello is not None
    assert client.hello.name == ""  # message 2 goes to an unauthenticated initiator
    # The first transport message, once message 3 proved the initiator's id, names it:
    # any peer that completes a handshake learns it (docs/security.md says so).
    assert decode_frame(client.plaintexts[1]) == Profile(name=NAME)


async def test_contacts_see_the_name_of_an_unannounced_node(hidden: Node) -> None:
    friend = make_node("friend")
    await friend.start()
    try:
        events = friend.subscribe()
        friend.links.add_target("127.0.0.1", hidden.port, "manual", hidden.me)
        up = await wait_for(events, lambda e: isinstance(e, PeerOnline) and e.peer_id == hidden.me)
        assert isinstance(up, PeerOnline)
        assert up.name == NAME
        assert friend.peer_name(hidden.me) == NAME
        await hidden.accept(friend.me)
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
