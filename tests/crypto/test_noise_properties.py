"""Property tests: payloads round-trip, and arbitrary peer bytes only raise NoiseError.

The second property is the contract the transport layer relies on: it catches NoiseError
(and nothing broader) around read_message/decrypt, so any other exception type escaping on
hostile input would crash a connection handler.
"""

from __future__ import annotations

import contextlib

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from p2pchat.crypto.noise import (
    MAX_MESSAGE_LEN,
    TAG_LEN,
    CipherState,
    HandshakeState,
    KeyPair,
    NoiseError,
)
from p2pchat.crypto.patterns import PATTERN_NAMES, parse_pattern

# Fixed static keys keep examples cheap; ephemerals are fresh per handshake as in real use.
INIT_S = KeyPair.from_private(bytes(range(32)))
RESP_S = KeyPair.from_private(bytes(range(32, 64)))
PROPS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _pair(pattern: str, prologue: bytes = b"") -> tuple[HandshakeState, HandshakeState]:
    p = parse_pattern(pattern)
    init = HandshakeState(
        pattern,
        initiator=True,
        prologue=prologue,
        s=INIT_S,
        rs=RESP_S.public if "s" in p.responder_pre else None,
    )
    resp = HandshakeState(
        pattern,
        initiator=False,
        prologue=prologue,
        s=RESP_S,
        rs=INIT_S.public if "s" in p.initiator_pre else None,
    )
    return init, resp


@PROPS
@given(
    pattern=st.sampled_from(PATTERN_NAMES),
    prologue=st.binary(max_size=64),
    handshake_payloads=st.lists(st.binary(max_size=200), min_size=4, max_size=4),
    transport=st.lists(
        st.tuples(st.booleans(), st.binary(max_size=MAX_MESSAGE_LEN - TAG_LEN)), max_size=6
    ),
)
def test_payloads_round_trip(
    pattern: str,
    prologue: bytes,
    handshake_payloads: list[bytes],
    transport: list[tuple[bool, bytes]],
) -> None:
    init, resp = _pair(pattern, prologue)
    step = 0
    while not init.is_complete:
        writer, reader = (init, resp) if init.is_our_turn else (resp, init)
        payload = handshake_payloads[step]
        assert reader.read_message(writer.write_message(payload)) == payload
        step += 1
    assert resp.is_complete
    assert init.handshake_hash == resp.handshake_hash
    (i_send, i_recv), (r_send, r_recv) = init.split(), resp.split()
    one_way = parse_pattern(pattern).one_way
    for from_initiator, payload in transport:
        if from_initiator or one_way:
            assert r_recv.decrypt(i_send.encrypt(payload)) == payload
        else:
            assert i_recv.decrypt(r_send.encrypt(payload)) == payload


def _only_noise_errors(hs: HandshakeState, data: bytes) -> None:
    # Anything but a NoiseError propagates and fails the test.
    with contextlib.suppress(NoiseError):
        hs.read_message(data)


@PROPS
@given(
    pattern=st.sampled_from([*PATTERN_NAMES, "NNpsk0", "XXpsk3", "IKpsk2"]),
    stage=st.integers(min_value=0, max_value=3),
    garbage=st.binary(max_size=300),
    mutate=st.booleans(),
)
def test_random_bytes_only_raise_noise_errors(
    pattern: str, stage: int, garbage: bytes, mutate: bool
) -> None:
    p = parse_pattern(pattern)
    psks = [bytes(32)] * p.psk_count
    init = HandshakeState(
        pattern,
        initiator=True,
        s=INIT_S,
        rs=RESP_S.public if "s" in p.responder_pre else None,
        psks=psks,
    )
    resp = HandshakeState(
        pattern,
        initiator=False,
        s=RESP_S,
        rs=INIT_S.public if "s" in p.initiator_pre else None,
        psks=psks,
    )
    # Run the genuine handshake up to `stage`, then feed the reader garbage (or a genuine
    # message with random bytes spliced in) instead of the next message.
    stage = min(stage, len(p.messages) - 1)
    for _ in range(stage):
        writer, reader = (init, resp) if init.is_our_turn else (resp, init)
        reader.read_message(writer.write_message(b"x"))
    writer, reader = (init, resp) if init.is_our_turn else (resp, init)
    data = garbage
    if mutate:
        genuine = writer.write_message(b"payload")
        cut = len(garbage) % (len(genuine) + 1)
        data = genuine[:cut] + garbage + genuine[cut + len(garbage) :]
    _only_noise_errors(reader, data)
    # Whatever happened, later calls are either valid steps or NoiseErrors too.
    _only_noise_errors(reader, garbage)


@PROPS
@given(garbage=st.binary(max_size=MAX_MESSAGE_LEN + 10), ad=st.binary(max_size=32))
def test_random_ciphertext_only_raises_noise_errors_and_keeps_nonce(
    garbage: bytes, ad: bytes
) -> None:
    recv = CipherState(bytes(32), nonce=7)
    try:
        recv.decrypt(garbage, ad)
    except NoiseError:
        assert recv.nonce == 7
    else:  # pragma: no cover - a random forgery of Poly1305 would be astonishing
        raise AssertionError("random bytes authenticated")
