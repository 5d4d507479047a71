"""The cacophony test vectors for every ``*_25519_ChaChaPoly_BLAKE2b`` case, byte for byte.

Both roles are pinned to the vector's keys (fixed ephemerals), every handshake message and
the handshake hash must match, and the transport messages that follow must match too. The
vectors keep alternating direction after the handshake, except for one-way patterns (N, K,
X and their psk variants) where every message goes initiator -> responder.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from p2pchat.crypto.noise import HandshakeState, KeyPair, NoiseStateError
from p2pchat.crypto.patterns import parse_pattern

VECTORS = (
    Path(__file__).parent.parent / "data" / "noise" / "cacophony-25519-chachapoly-blake2b.json"
)
SUFFIX = "_25519_ChaChaPoly_BLAKE2b"


def _load() -> list[dict[str, Any]]:
    cases: list[dict[str, Any]] = json.loads(VECTORS.read_text())["vectors"]
    return cases


def _name(case: dict[str, Any]) -> str:
    # Some copies of the set call the field "name" rather than "protocol_name".
    name = case.get("protocol_name", case.get("name"))
    assert isinstance(name, str)
    return name


CASES = _load()


def _pattern_of(case: dict[str, Any]) -> str:
    name = _name(case)
    assert name.startswith("Noise_")
    assert name.endswith(SUFFIX)
    return name[len("Noise_") : -len(SUFFIX)]


def _hex(case: dict[str, Any], key: str) -> bytes | None:
    return bytes.fromhex(case[key]) if key in case else None


def _pair(case: dict[str, Any], key: str) -> KeyPair | None:
    raw = _hex(case, key)
    return KeyPair.from_private(raw) if raw is not None else None


def _side(case: dict[str, Any], prefix: str) -> HandshakeState:
    return HandshakeState(
        _pattern_of(case),
        initiator=prefix == "init",
        prologue=_hex(case, f"{prefix}_prologue") or b"",
        s=_pair(case, f"{prefix}_static"),
        e=_pair(case, f"{prefix}_ephemeral"),
        rs=_hex(case, f"{prefix}_remote_static"),
        psks=[bytes.fromhex(k) for k in case.get(f"{prefix}_psks", [])],
    )


def _supported(pattern: str) -> str | None:
    """None if we run this pattern, else the reason it is skipped."""
    try:
        parse_pattern(pattern)
    except NoiseStateError as exc:
        return f"pattern not implemented: {exc}"
    return None


def test_vector_file_has_all_59_cases_including_xx() -> None:
    names = [_name(c) for c in CASES]
    assert len(names) == 59
    assert "Noise_XX_25519_ChaChaPoly_BLAKE2b" in names
    assert all(n.endswith(SUFFIX) for n in names)


@pytest.mark.parametrize("case", CASES, ids=_name)
def test_vector(case: dict[str, Any]) -> None:
    pattern = _pattern_of(case)
    reason = _supported(pattern)
    if reason is not None:
        pytest.skip(reason)
    one_way = parse_pattern(pattern).one_way
    init, resp = _side(case, "init"), _side(case, "resp")
    messages = case["messages"]

    index = 0
    while not init.is_complete:
        msg = messages[index]
        payload, expected = bytes.fromhex(msg["payload"]), bytes.fromhex(msg["ciphertext"])
        writer, reader = (init, resp) if index % 2 == 0 else (resp, init)
        assert writer.write_message(payload).hex() == expected.hex(), f"message {index}"
        assert reader.read_message(expected) == payload
        index += 1
    assert resp.is_complete
    assert init.handshake_hash.hex() == case["handshake_hash"]
    assert resp.handshake_hash.hex() == case["handshake_hash"]

    # Each side learned (or was given) the other's static key, where the pattern has one.
    if "resp_static" in case:
        assert init.remote_static == KeyPair.from_private(bytes.fromhex(case["resp_static"])).public
    if "init_static" in case:
        assert resp.remote_static == KeyPair.from_private(bytes.fromhex(case["init_static"])).public

    init_send, init_recv = init.split()
    resp_send, resp_recv = resp.split()
    assert index < len(messages), "vectors should include transport messages"
    for i in range(index, len(messages)):
        payload = bytes.fromhex(messages[i]["payload"])
        expected = bytes.fromhex(messages[i]["ciphertext"])
        sender, receiver = (
            (init_send, resp_recv) if one_way or i % 2 == 0 else (resp_send, init_recv)
        )
        assert sender.encrypt(payload).hex() == expected.hex(), f"transport message {i}"
        assert receiver.decrypt(expected) == payload


def test_name_field_alias_is_accepted() -> None:
    case = dict(next(c for c in CASES if _name(c) == "Noise_XX" + SUFFIX))
    case["name"] = case.pop("protocol_name")
    test_vector(case)
