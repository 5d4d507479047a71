"""Interoperability with an independent implementation: ``noiseprotocol`` from PyPI.

Our HandshakeState talks to noiseprotocol's NoiseConnection in both roles: full handshake
with payloads, equal handshake hashes, then transport messages in both directions, and a
rekey. XX is the pattern p2pchat ships; the other fundamental interactive patterns come
along because it is cheap (noiseprotocol 0.3.1 has no deferred patterns such as XK1).
"""

from __future__ import annotations

from typing import Any

import pytest
from noise.connection import Keypair, NoiseConnection  # type: ignore[import-untyped]

from p2pchat.crypto.noise import CipherState, HandshakeState, KeyPair, protocol_name
from p2pchat.crypto.patterns import parse_pattern

PROLOGUE = b"p2pchat/1"


def _theirs(pattern: str, *, initiator: bool, s: KeyPair | None, rs: bytes | None) -> Any:
    conn = NoiseConnection.from_name(protocol_name(pattern))
    if initiator:
        conn.set_as_initiator()
    else:
        conn.set_as_responder()
    conn.set_prologue(PROLOGUE)
    if s is not None:
        conn.set_keypair_from_private_bytes(Keypair.STATIC, s.private)
    if rs is not None:
        conn.set_keypair_from_public_bytes(Keypair.REMOTE_STATIC, rs)
    conn.start_handshake()
    return conn


def _needs(pattern: str, *, initiator: bool) -> tuple[bool, bool]:
    """(needs our static, has the peer's static pre-shared) for the given role."""
    p = parse_pattern(pattern)
    ours = p.initiator_pre if initiator else p.responder_pre
    theirs = p.responder_pre if initiator else p.initiator_pre
    sends_s = "s" in ours or any(
        "s" in m for i, m in enumerate(p.messages) if (i % 2 == 0) == initiator
    )
    return sends_s, "s" in theirs


FUNDAMENTAL = ["XX", "NN", "NK", "NX", "XN", "XK", "KN", "KK", "KX", "IN", "IK", "IX"]


@pytest.mark.parametrize("pattern", FUNDAMENTAL)
@pytest.mark.parametrize("we_initiate", [True, False], ids=["ours-initiator", "ours-responder"])
def test_handshake_and_transport_interop(pattern: str, we_initiate: bool) -> None:
    our_static, their_static = KeyPair.generate(), KeyPair.generate()
    our_needs_s, our_knows_rs = _needs(pattern, initiator=we_initiate)
    their_needs_s, their_knows_rs = _needs(pattern, initiator=not we_initiate)

    ours = HandshakeState(
        pattern,
        initiator=we_initiate,
        prologue=PROLOGUE,
        s=our_static if our_needs_s else None,
        rs=their_static.public if our_knows_rs else None,
    )
    theirs = _theirs(
        pattern,
        initiator=not we_initiate,
        s=their_static if their_needs_s else None,
        rs=our_static.public if their_knows_rs else None,
    )

    step = 0
    while not ours.is_complete:
        payload = f"handshake payload {step}".encode()
        if ours.is_our_turn:
            assert bytes(theirs.read_message(ours.write_message(payload))) == payload
        else:
            assert ours.read_message(bytes(theirs.write_message(payload))) == payload
        step += 1
    assert theirs.handshake_finished
    assert ours.handshake_hash == theirs.get_handshake_hash()
    if their_needs_s:
        assert ours.remote_static == their_static.public

    send, recv = ours.split()
    for i in range(5):
        to_them = f"ours->theirs {i}".encode() * (i + 1)
        assert theirs.decrypt(send.encrypt(to_them)) == to_them
        to_us = f"theirs->ours {i}".encode() * (i + 1)
        assert recv.decrypt(theirs.encrypt(to_us)) == to_us

    # Large frame at the limit both ways.
    big = bytes(range(256)) * 255 + bytes(65519 - 256 * 255)
    assert theirs.decrypt(send.encrypt(big)) == big
    assert recv.decrypt(theirs.encrypt(big)) == big

    # Rekey stays in step with the other implementation.
    send.rekey()
    theirs.rekey_inbound_cipher()
    assert theirs.decrypt(send.encrypt(b"after rekey")) == b"after rekey"
    recv.rekey()
    theirs.rekey_outbound_cipher()
    assert recv.decrypt(theirs.encrypt(b"after rekey too")) == b"after rekey too"


def test_split_ciphers_are_oriented_for_our_role() -> None:
    init_s, resp_s = KeyPair.generate(), KeyPair.generate()
    init = HandshakeState("XX", initiator=True, s=init_s)
    resp = HandshakeState("XX", initiator=False, s=resp_s)
    resp.read_message(init.write_message())
    init.read_message(resp.write_message())
    resp.read_message(init.write_message())
    (i_send, i_recv), (r_send, r_recv) = init.split(), resp.split()
    assert all(isinstance(c, CipherState) for c in (i_send, i_recv, r_send, r_recv))
    assert r_recv.decrypt(i_send.encrypt(b"to responder")) == b"to responder"
    assert i_recv.decrypt(r_send.encrypt(b"to initiator")) == b"to initiator"
    assert init.remote_static == resp_s.public
    assert resp.remote_static == init_s.public
