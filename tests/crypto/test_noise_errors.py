"""Every way a Noise session can go wrong raises the documented NoiseError subclass.

Peer faults (tampering, replay, reordering, bad keys) are NoiseProtocolError subclasses and
leave a transport CipherState usable; our own misuse is NoiseStateError; size and nonce
limits have their own errors.
"""

from __future__ import annotations

import nacl.bindings
import nacl.exceptions
import pytest

from p2pchat.crypto.noise import (
    MAX_MESSAGE_LEN,
    TAG_LEN,
    CipherState,
    DecryptError,
    HandshakeState,
    InvalidKeyError,
    KeyPair,
    MessageTooLargeError,
    NoiseProtocolError,
    NoiseStateError,
    NonceExhaustedError,
    protocol_name,
)
from p2pchat.crypto.patterns import PATTERN_NAMES, parse_pattern
from p2pchat.crypto.primitives import dh, hmac_blake2b, validate_public_key

P = 2**255 - 19
# u-coordinates of the small-order points of Curve25519 and its twist (libsodium's list).
SMALL_ORDER_U = [
    0,
    1,
    int.from_bytes(
        bytes.fromhex("e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800"), "little"
    ),
    int.from_bytes(
        bytes.fromhex("5f9c95bca3508c24b1d0b1559c83ef5b04445cc4581c8e86d8224eddd09f1157"), "little"
    ),
    P - 1,
]


def _encodings() -> list[bytes]:
    """Every 32-byte encoding of those points: canonical, u + p, and with bit 255 set."""
    values = set(SMALL_ORDER_U) | {u + P for u in SMALL_ORDER_U if u + P < 2**255}
    values |= {v | (1 << 255) for v in values}
    return sorted(v.to_bytes(32, "little") for v in values)


LOW_ORDER = _encodings()
WRONG_LENGTH = [b"", b"\x09" * 31, b"\x09" * 33, b"\x09" * 64]
PAYLOAD = b"payload"


def _xx_pair() -> tuple[HandshakeState, HandshakeState]:
    init = HandshakeState("XX", initiator=True, prologue=b"t", s=KeyPair.generate())
    resp = HandshakeState("XX", initiator=False, prologue=b"t", s=KeyPair.generate())
    return init, resp


def _session() -> tuple[CipherState, CipherState, CipherState, CipherState]:
    """A completed XX session: (initiator send, initiator recv, responder send, recv)."""
    init, resp = _xx_pair()
    resp.read_message(init.write_message())
    init.read_message(resp.write_message())
    resp.read_message(init.write_message())
    return (*init.split(), *resp.split())


# -- transport -------------------------------------------------------------------------


def test_tampered_ciphertext_is_rejected_and_nonce_does_not_advance() -> None:
    send, _, _, recv = _session()
    good = send.encrypt(PAYLOAD)
    for i in range(len(good)):
        bad = bytearray(good)
        bad[i] ^= 0x01
        with pytest.raises(DecryptError):
            recv.decrypt(bytes(bad))
        assert recv.nonce == 0
    with pytest.raises(DecryptError):
        recv.decrypt(good, b"wrong associated data")
    with pytest.raises(DecryptError):
        recv.decrypt(good[: TAG_LEN - 1])
    assert recv.nonce == 0
    # The genuine message still decrypts: a forgery cannot desynchronise the session.
    assert recv.decrypt(good) == PAYLOAD
    assert recv.nonce == 1


def test_replayed_message_is_rejected() -> None:
    send, _, _, recv = _session()
    first = send.encrypt(b"one")
    assert recv.decrypt(first) == b"one"
    with pytest.raises(DecryptError):
        recv.decrypt(first)
    assert recv.decrypt(send.encrypt(b"two")) == b"two"


def test_reordered_messages_are_rejected() -> None:
    send, _, _, recv = _session()
    first, second = send.encrypt(b"one"), send.encrypt(b"two")
    with pytest.raises(DecryptError):
        recv.decrypt(second)
    assert recv.decrypt(first) == b"one"
    assert recv.decrypt(second) == b"two"


def test_message_from_the_other_direction_is_rejected() -> None:
    i_send, i_recv, _, _ = _session()
    with pytest.raises(DecryptError):
        i_recv.decrypt(i_send.encrypt(b"reflected"))


def test_size_limits_on_transport() -> None:
    send, _, _, recv = _session()
    largest = bytes(MAX_MESSAGE_LEN - TAG_LEN)
    ciphertext = send.encrypt(largest)
    assert len(ciphertext) == MAX_MESSAGE_LEN
    assert recv.decrypt(ciphertext) == largest
    with pytest.raises(MessageTooLargeError):
        send.encrypt(largest + b"x")
    assert send.nonce == 1
    with pytest.raises(MessageTooLargeError):
        recv.decrypt(bytes(MAX_MESSAGE_LEN + 1))
    assert recv.nonce == 1


def test_nonce_exhaustion() -> None:
    key = bytes(range(32))
    send = CipherState(key, nonce=2**64 - 2)
    recv = CipherState(key, nonce=2**64 - 2)
    # 2**64 - 2 is the last usable nonce; 2**64 - 1 is reserved for rekey.
    assert recv.decrypt(send.encrypt(b"last")) == b"last"
    assert send.nonce == recv.nonce == 2**64 - 1
    with pytest.raises(NonceExhaustedError):
        send.encrypt(b"one too many")
    with pytest.raises(NonceExhaustedError):
        recv.decrypt(bytes(32))
    with pytest.raises(NoiseStateError):
        CipherState(key, nonce=2**64)


def test_rekey_changes_key_not_nonce() -> None:
    send, _, _, recv = _session()
    recv.decrypt(send.encrypt(b"before"))
    send.rekey()
    message = send.encrypt(b"after")
    with pytest.raises(DecryptError):
        recv.decrypt(message)
    recv.rekey()
    assert recv.nonce == send.nonce - 1 == 1
    assert recv.decrypt(message) == b"after"


def test_unkeyed_cipherstate_refuses_instead_of_sending_cleartext() -> None:
    empty = CipherState()
    assert not empty.has_key
    with pytest.raises(NoiseStateError):
        empty.encrypt(b"secret")
    with pytest.raises(NoiseStateError):
        empty.decrypt(bytes(32))
    with pytest.raises(NoiseStateError):
        empty.rekey()
    with pytest.raises(NoiseStateError):
        CipherState(b"short")


def test_cipherstate_repr_hides_the_key() -> None:
    key = bytes.fromhex("ab" * 32)
    assert "ab" * 4 not in repr(CipherState(key))


# -- handshake: bad keys -----------------------------------------------------------------


def test_low_order_list_really_is_low_order() -> None:
    """Our blocklist matches libsodium: each point yields an all-zero secret there."""
    assert len(LOW_ORDER) == 14
    scalar = KeyPair.generate().private
    for point in LOW_ORDER:
        with pytest.raises(nacl.exceptions.RuntimeError):
            nacl.bindings.crypto_scalarmult(scalar, point)
        with pytest.raises(InvalidKeyError):
            validate_public_key(point)
        # The libsodium backstop is translated too, should validation ever be bypassed.
        with pytest.raises(InvalidKeyError):
            dh(scalar, point)


def test_ordinary_public_keys_are_accepted() -> None:
    for _ in range(20):
        key = KeyPair.generate().public
        assert validate_public_key(key) == key
    # The base point u = 9 is a valid key.
    assert validate_public_key(b"\x09" + bytes(31))


@pytest.mark.parametrize("point", LOW_ORDER, ids=lambda b: b.hex()[:8] + ".." + b.hex()[-2:])
def test_low_order_remote_ephemeral_is_rejected(point: bytes) -> None:
    resp = HandshakeState("XX", initiator=False, s=KeyPair.generate())
    with pytest.raises(InvalidKeyError):
        resp.read_message(point)
    with pytest.raises(NoiseStateError):  # the handshake is dead after a bad message
        resp.write_message()


@pytest.mark.parametrize("key", WRONG_LENGTH, ids=len)
def test_short_remote_ephemeral_is_rejected(key: bytes) -> None:
    resp = HandshakeState("NN", initiator=False)
    if len(key) > 32:
        # Extra bytes after e are the (unencrypted) payload in NN: the key itself is fine.
        assert resp.read_message(key) == key[32:]
        return
    with pytest.raises(InvalidKeyError):
        resp.read_message(key)


@pytest.mark.parametrize("point", LOW_ORDER[:4], ids=lambda b: b.hex()[:8])
def test_low_order_remote_static_in_message_is_rejected(point: bytes) -> None:
    """A malicious XX responder sends a small-order static key, correctly encrypted."""
    init = HandshakeState("XX", initiator=True, s=KeyPair.generate())
    liar = HandshakeState("XX", initiator=False, s=KeyPair(private=bytes(range(32)), public=point))
    liar.read_message(init.write_message())
    message = liar.write_message()
    with pytest.raises(InvalidKeyError):
        init.read_message(message)
    assert init.remote_static is None


def test_cleartext_low_order_static_is_rejected() -> None:
    """IN sends the initiator's static key unencrypted in message 1."""
    resp = HandshakeState("IN", initiator=False)
    with pytest.raises(InvalidKeyError):
        resp.read_message(KeyPair.generate().public + LOW_ORDER[0])
    resp = HandshakeState("IN", initiator=False)
    with pytest.raises(InvalidKeyError):
        resp.read_message(KeyPair.generate().public + b"\x09" * 20)


@pytest.mark.parametrize("key", LOW_ORDER[:3] + WRONG_LENGTH, ids=lambda b: b.hex()[:8] or "empty")
def test_bad_preshared_remote_static_is_rejected(key: bytes) -> None:
    with pytest.raises(InvalidKeyError):
        HandshakeState("IK", initiator=True, s=KeyPair.generate(), rs=key)


def test_bad_local_keys() -> None:
    for raw in WRONG_LENGTH:
        with pytest.raises(InvalidKeyError):
            KeyPair.from_private(raw)
    with pytest.raises(InvalidKeyError):
        KeyPair(private=bytes(32), public=bytes(31))
    # dh() guards PyNaCl, which would hand a short buffer to C unchecked.
    good = KeyPair.generate()
    for raw in WRONG_LENGTH:
        with pytest.raises(InvalidKeyError):
            dh(good.private, raw)
        with pytest.raises(InvalidKeyError):
            dh(raw, good.public)


def test_keypair_repr_hides_private_key() -> None:
    pair = KeyPair.from_private(bytes.fromhex("cd" * 32))
    assert "cd" * 4 not in repr(pair)
    assert pair.public.hex() in repr(pair) or repr(pair.public) in repr(pair)


# -- handshake: tampering and sizes ------------------------------------------------------


@pytest.mark.parametrize("index", [0, 31, 32, 40, 79, 80, 95, -1])
def test_tampered_handshake_message_is_rejected(index: int) -> None:
    init, resp = _xx_pair()
    resp.read_message(init.write_message())
    message = bytearray(resp.write_message(b"hello"))  # e (32) | enc s (48) | enc payload
    message[index] ^= 0x80 if index in (31, -1) else 0x01
    with pytest.raises(NoiseProtocolError):
        init.read_message(bytes(message))
    with pytest.raises(NoiseStateError):
        init.read_message(bytes(message))


def test_truncated_handshake_message_is_rejected() -> None:
    init, resp = _xx_pair()
    resp.read_message(init.write_message())
    message = resp.write_message()
    for cut in (0, 20, 32, 50, 80, len(message) - 1):
        victim, _ = _xx_pair()
        helper = HandshakeState("XX", initiator=False, s=KeyPair.generate())
        helper.read_message(victim.write_message())
        with pytest.raises(NoiseProtocolError):
            victim.read_message(helper.write_message()[:cut])


def test_prologue_mismatch_fails_the_handshake() -> None:
    init = HandshakeState("XX", initiator=True, prologue=b"p2pchat/1", s=KeyPair.generate())
    resp = HandshakeState("XX", initiator=False, prologue=b"p2pchat/2", s=KeyPair.generate())
    resp.read_message(init.write_message())  # message 1 is not authenticated yet
    with pytest.raises(DecryptError):
        init.read_message(resp.write_message())


def test_handshake_size_limits() -> None:
    init, resp = _xx_pair()
    # Message 1 of XX is e (32 bytes) + cleartext payload.
    with pytest.raises(MessageTooLargeError):
        init.write_message(bytes(MAX_MESSAGE_LEN - 32 + 1))
    # Nothing changed: a payload that fits can still be sent.
    message = init.write_message(bytes(MAX_MESSAGE_LEN - 32))
    assert len(message) == MAX_MESSAGE_LEN
    assert len(resp.read_message(message)) == MAX_MESSAGE_LEN - 32
    # Message 2: e (32) + encrypted s (48) + payload + tag (16).
    with pytest.raises(MessageTooLargeError):
        resp.write_message(bytes(MAX_MESSAGE_LEN - 96 + 1))
    assert len(resp.write_message(bytes(MAX_MESSAGE_LEN - 96))) == MAX_MESSAGE_LEN

    reader = HandshakeState("XX", initiator=False, s=KeyPair.generate())
    with pytest.raises(MessageTooLargeError):
        reader.read_message(bytes(MAX_MESSAGE_LEN + 1))


# -- handshake: our misuse ---------------------------------------------------------------


def test_out_of_turn_calls() -> None:
    init, resp = _xx_pair()
    with pytest.raises(NoiseStateError):
        resp.write_message()
    with pytest.raises(NoiseStateError):
        init.read_message(bytes(32))
    with pytest.raises(NoiseStateError):
        init.split()
    message = init.write_message()
    with pytest.raises(NoiseStateError):
        init.write_message()  # now it is the responder's turn
    resp.read_message(message)
    init.read_message(resp.write_message())
    resp.read_message(init.write_message())
    assert init.is_complete
    assert resp.is_complete
    for hs in (init, resp):
        with pytest.raises(NoiseStateError):
            hs.write_message()
        with pytest.raises(NoiseStateError):
            hs.read_message(bytes(64))
    assert init.split() == init.split()  # idempotent: the same CipherState objects


def test_one_way_responder_never_writes() -> None:
    resp_static = KeyPair.generate()
    init = HandshakeState("N", initiator=True, rs=resp_static.public)
    resp = HandshakeState("N", initiator=False, s=resp_static)
    with pytest.raises(NoiseStateError):
        resp.write_message()
    assert resp.read_message(init.write_message(b"hi")) == b"hi"
    assert init.is_complete
    assert resp.is_complete
    send, _ = init.split()
    _, recv = resp.split()
    assert recv.decrypt(send.encrypt(b"one way")) == b"one way"


@pytest.mark.parametrize(
    ("pattern", "initiator", "kwargs"),
    [
        ("XX", True, {}),  # missing s
        ("XX", False, {}),
        ("IK", True, {"s": KeyPair.from_private(bytes(32))}),  # missing rs
        ("XX", True, {"s": KeyPair.from_private(bytes(32)), "rs": b"\x09" * 32}),  # unused rs
        ("NN", True, {"re": b"\x09" * 32}),  # no pre-shared ephemeral in NN
        ("NNpsk0", True, {}),  # missing psk
        ("NNpsk0", True, {"psks": [bytes(31)]}),
        ("NN", True, {"psks": [bytes(32)]}),
    ],
)
def test_missing_or_superfluous_keys(
    pattern: str, initiator: bool, kwargs: dict[str, object]
) -> None:
    with pytest.raises(NoiseStateError):
        HandshakeState(pattern, initiator=initiator, **kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize("name", ["", "xx", "XY", "XXfallback", "XXpsk9", "Noise_XX", "XX+psk0"])
def test_unknown_patterns(name: str) -> None:
    with pytest.raises(NoiseStateError):
        HandshakeState(name, initiator=True)
    with pytest.raises(NoiseStateError):
        protocol_name(name)


def test_protocol_name() -> None:
    assert protocol_name("XX") == b"Noise_XX_25519_ChaChaPoly_BLAKE2b"
    assert protocol_name("NNpsk0+psk2") == b"Noise_NNpsk0+psk2_25519_ChaChaPoly_BLAKE2b"


def test_hmac_is_rfc2104_not_keyed_blake2b() -> None:
    import hashlib
    import hmac

    key, data = b"k" * 64, b"data"
    assert hmac_blake2b(key, data) == hmac.new(key, data, hashlib.blake2b).digest()
    assert hmac_blake2b(key, data) != hashlib.blake2b(data, key=key).digest()


FIXED = {
    "init": (KeyPair.from_private(bytes([1]) * 32), KeyPair.from_private(bytes([2]) * 32)),
    "resp": (KeyPair.from_private(bytes([3]) * 32), KeyPair.from_private(bytes([4]) * 32)),
}


def _fixed_pair(pattern: str) -> tuple[HandshakeState, HandshakeState]:
    """Deterministic handshake (fixed ephemerals), so two runs produce the same sizes."""
    p = parse_pattern(pattern)
    (i_s, i_e), (r_s, r_e) = FIXED["init"], FIXED["resp"]
    psks = [bytes(32)] * p.psk_count
    init = HandshakeState(
        pattern,
        initiator=True,
        s=i_s,
        e=i_e,
        rs=r_s.public if "s" in p.responder_pre else None,
        psks=psks,
    )
    resp = HandshakeState(
        pattern,
        initiator=False,
        s=r_s,
        e=r_e,
        rs=i_s.public if "s" in p.initiator_pre else None,
        psks=psks,
    )
    return init, resp


@pytest.mark.parametrize("pattern", [*PATTERN_NAMES, "NNpsk0", "XXpsk3", "IKpsk1+psk2"])
def test_handshake_size_limit_is_exact_for_every_pattern(pattern: str) -> None:
    """Probe each message's overhead, then send the largest payload that fits, and one byte
    more (refused without disturbing the handshake)."""
    init, resp = _fixed_pair(pattern)
    overheads = []
    while not init.is_complete:
        writer, reader = (init, resp) if init.is_our_turn else (resp, init)
        message = writer.write_message()
        overheads.append(len(message))
        reader.read_message(message)

    init, resp = _fixed_pair(pattern)
    for overhead in overheads:
        writer, reader = (init, resp) if init.is_our_turn else (resp, init)
        room = MAX_MESSAGE_LEN - overhead
        with pytest.raises(MessageTooLargeError):
            writer.write_message(bytes(room + 1))
        message = writer.write_message(bytes(room))
        assert len(message) == MAX_MESSAGE_LEN
        assert reader.read_message(message) == bytes(room)
    assert init.is_complete
    assert resp.is_complete
