"""Forward secrecy of the Noise link: traffic recorded today stays secret even if both
long-term keys are stolen later (issue 10, docs/security.md *Reading messages*).

An eavesdropper records every byte of a real session between two nodes; afterwards it
gets both profiles' keys (the key files, as a thief of both laptops would). It then
does everything those keys allow: it replays each side of the handshake with the
stolen static key and the exact payload that side sent, the only thing missing being
the ephemeral key, which is fresh for each handshake and never kept. If the ephemeral
keys were derived from the static ones (or reused), the replay would reproduce them and
open the recorded traffic; the control below shows that it does as soon as the
attacker has the ephemeral key.
"""

from __future__ import annotations

import pytest

from p2pchat.crypto.noise import CipherState, HandshakeState, KeyPair, NoiseError
from p2pchat.identity import Identity
from p2pchat.node.events import PeerOnline
from p2pchat.transport import LocalHello
from p2pchat.transport.connection import PROLOGUE, _hello_bytes
from p2pchat.wire import MessageFrame, decode_frame
from tests.adversary.test_security_claims import is_added, stop_all
from tests.nodes import make_node, wait_for
from tests.proxy import FaultProxy

SECRET = "the vault code is 48151623"

Recording = dict[str, list[bytes]]  # direction ("c2s", "s2c") -> Noise messages in order


def replay_as_responder(
    recorded: Recording, static: KeyPair, message2_payload: bytes, ephemeral: KeyPair | None
) -> list[bytes] | None:
    """What an attacker holding the responder's static key (and ``ephemeral``, if it
    has it) reads of the initiator's transport messages; None if it reads nothing."""
    hs = HandshakeState("XX", initiator=False, prologue=PROLOGUE, s=static, e=ephemeral)
    try:
        hs.read_message(recorded["c2s"][0])
        hs.write_message(message2_payload)  # the same bytes as recorded, if e is the same
        hs.read_message(recorded["c2s"][1])
    except NoiseError:
        return None
    _, from_initiator = hs.split()
    return [from_initiator.decrypt(m) for m in recorded["c2s"][2:]]


def replay_as_initiator(
    recorded: Recording, static: KeyPair, message3_payload: bytes
) -> list[bytes] | None:
    """What an attacker holding the initiator's static key reads of the responder's
    transport messages; None if it reads nothing."""
    hs = HandshakeState("XX", initiator=True, prologue=PROLOGUE, s=static)
    try:
        hs.write_message(b"")
        hs.read_message(recorded["s2c"][0])
        hs.write_message(message3_payload)
    except NoiseError:
        return None
    _, from_responder = hs.split()
    return [from_responder.decrypt(m) for m in recorded["s2c"][1:]]


def _texts(plaintexts: list[bytes]) -> list[bytes]:
    frames = [decode_frame(p) for p in plaintexts]
    return [f.env.body for f in frames if isinstance(f, MessageFrame)]


async def test_recorded_traffic_stays_secret_after_both_long_term_keys_are_stolen(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    alice, bob = make_node("alice"), make_node("bob")
    await alice.start()
    await bob.start()
    recorded: Recording = {"c2s": [], "s2c": []}

    def record(direction: str, index: int, message: bytes) -> list[bytes]:
        recorded[direction].append(message)
        return [message]

    proxy = await FaultProxy("127.0.0.1", bob.port, hook=record).start()
    # Bob must not dial Alice directly (he would, from her hello): only the recorded link.
    bob_add_target = bob.links.add_target

    def only_through_the_proxy(
        host: str, port: int, source: str, expected_peer: bytes | None = None
    ) -> None:
        if expected_peer != alice.me:
            bob_add_target(host, port, source, expected_peer)

    monkeypatch.setattr(bob.links, "add_target", only_through_the_proxy)
    try:
        events = bob.subscribe()
        alice.links.add_target("127.0.0.1", proxy.port, "manual", bob.me)
        await wait_for(events, lambda e: isinstance(e, PeerOnline) and e.peer_id == alice.me)
        await alice.accept(bob.me)
        await bob.accept(alice.me)
        sent = await alice.send_text(bob.me, SECRET)
        await wait_for(events, is_added(sent.id))  # type: ignore[arg-type]
        ports = alice.port, bob.port
    finally:
        await proxy.stop()
        await stop_all([alice, bob])
    assert proxy.connections == 1

    # Later, both key files are stolen.
    stolen_alice: Identity = alice.identity
    stolen_bob: Identity = bob.identity
    # Every byte of both hellos is known: ids, certificates, ports, alice's name.
    bob_hello = _hello_bytes(LocalHello(identity=stolen_bob, name="", port=ports[1]), "")
    alice_hello = _hello_bytes(LocalHello(identity=stolen_alice, name="", port=ports[0]), "alice")

    bob_static = KeyPair.from_private(stolen_bob.noise_private)
    read = replay_as_responder(recorded, bob_static, bob_hello, None)
    assert read is None, f"alice's texts read: {_texts(read)}"
    alice_static = KeyPair.from_private(stolen_alice.noise_private)
    read = replay_as_initiator(recorded, alice_static, alice_hello)
    assert read is None, f"bob's frames read: {read}"


def test_the_same_replay_opens_the_traffic_once_it_has_the_ephemeral_key() -> None:
    """The control: the replay above is a real attack, defeated only by the ephemeral
    key. Given the responder's ephemeral key too, it reads everything."""
    initiator_static, responder_static = KeyPair.generate(), KeyPair.generate()
    responder_ephemeral = KeyPair.generate()
    initiator = HandshakeState("XX", initiator=True, prologue=PROLOGUE, s=initiator_static)
    responder = HandshakeState(
        "XX", initiator=False, prologue=PROLOGUE, s=responder_static, e=responder_ephemeral
    )
    hello = b"the responder's hello"
    recorded: Recording = {"c2s": [initiator.write_message(b"")], "s2c": []}
    responder.read_message(recorded["c2s"][0])
    recorded["s2c"].append(responder.write_message(hello))
    initiator.read_message(recorded["s2c"][0])
    recorded["c2s"].append(initiator.write_message(b"the initiator's hello"))
    responder.read_message(recorded["c2s"][1])
    send: CipherState = initiator.split()[0]
    recorded["c2s"].append(send.encrypt(SECRET.encode()))

    # Once complete, the handshake keeps no reference to its ephemeral key.
    assert all(value is not responder_ephemeral for value in vars(responder).values())
    assert replay_as_responder(recorded, responder_static, hello, None) is None
    assert replay_as_responder(recorded, responder_static, hello, responder_ephemeral) == [
        SECRET.encode()
    ]
