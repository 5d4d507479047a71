"""Every valid frame survives encode -> decode unchanged, including at its size limits."""

from __future__ import annotations

import msgpack
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from p2pchat.wire import (
    FRAME_TYPES,
    MAX_BODY,
    MAX_CAP_CHARS,
    MAX_CAPS,
    MAX_CHUNK_DATA,
    MAX_HEADS,
    MAX_IDS_PER_RECEIPT,
    MAX_KIND_CHARS,
    MAX_NAME_CHARS,
    MAX_PLAINTEXT,
    MAX_REASON_CHARS,
    Bye,
    Chunk,
    ChunkError,
    Envelope,
    Frame,
    Hello,
    MessageFrame,
    Ping,
    Profile,
    Receipt,
    SyncHeads,
    decode_envelope,
    decode_frame,
    encode_envelope,
    encode_frame,
)

from .strategies import envelopes, frames, frames_by_type

# The widest code point takes 4 bytes of UTF-8: the worst case for every str limit.
WIDE = "\U0001f600"
MAX_INT = 2**63 - 1


def test_strategies_cover_every_frame_type() -> None:
    assert set(frames_by_type) == set(FRAME_TYPES)


@pytest.mark.parametrize("t", sorted(FRAME_TYPES))
@settings(max_examples=60)
@given(data=st.data())
def test_round_trip_each_type(t: str, data: st.DataObject) -> None:
    frame = data.draw(frames_by_type[t])
    encoded = encode_frame(frame)
    assert len(encoded) <= MAX_PLAINTEXT
    decoded = decode_frame(encoded)
    assert decoded == frame
    assert type(decoded) is type(frame)
    assert msgpack.unpackb(encoded)["t"] == t == type(frame).TYPE


@given(frames)
def test_encoding_is_a_msgpack_map_with_t(frame: Frame) -> None:
    m = msgpack.unpackb(encode_frame(frame))
    assert isinstance(m, dict)
    assert m["t"] == frame.TYPE


@given(envelopes)
def test_envelope_round_trip(env: Envelope) -> None:
    assert decode_envelope(encode_envelope(env)) == env


def test_optional_fields_absent_or_nil_both_decode_to_none() -> None:
    hello = Hello(id=b"i" * 32, sig=b"s" * 64, name="a")
    m = msgpack.unpackb(encode_frame(hello))
    assert "port" not in m
    m["port"] = None
    assert decode_frame(msgpack.packb(m)) == hello
    env = Envelope.unsigned(
        room=b"r" * 16,
        id=b"i" * 16,
        author=b"a" * 32,
        seq=1,
        lamport=0,
        ts=0,
        kind="text",
        body=b"",
    ).with_sig(b"s" * 64)
    em = msgpack.unpackb(encode_envelope(env))
    assert "reply_to" not in em
    em["reply_to"] = None
    assert decode_envelope(msgpack.packb(em)) == env


def _largest_frames() -> list[Frame]:
    env = Envelope(
        room=b"r" * 32,
        id=b"i" * 16,
        author=b"a" * 32,
        seq=MAX_INT,
        lamport=MAX_INT,
        ts=MAX_INT,
        kind=WIDE * MAX_KIND_CHARS,
        body=b"b" * MAX_BODY,
        reply_to=b"p" * 16,
        sig=b"s" * 64,
    )
    return [
        Hello(
            id=b"i" * 32,
            sig=b"s" * 64,
            name=WIDE * MAX_NAME_CHARS,
            v=MAX_INT,
            caps=(WIDE * MAX_CAP_CHARS,) * MAX_CAPS,
            purpose="files",
            port=65535,
        ),
        MessageFrame(env=env),
        Receipt(room=b"r" * 32, ids=(b"i" * 16,) * MAX_IDS_PER_RECEIPT, st="delivered"),
        SyncHeads(
            room=b"r" * 32,
            heads=tuple((i.to_bytes(32, "big"), MAX_INT) for i in range(MAX_HEADS)),
        ),
        Chunk(req=MAX_INT, hash=b"h" * 32, offset=MAX_INT, data=b"d" * MAX_CHUNK_DATA),
        ChunkError(req=MAX_INT, hash=b"h" * 32, reason=WIDE * MAX_REASON_CHARS),
        Bye(reason=WIDE * MAX_REASON_CHARS),
        Profile(name=WIDE * MAX_NAME_CHARS),
    ]


@pytest.mark.parametrize("frame", _largest_frames(), ids=lambda f: f.TYPE)
def test_frames_at_every_limit_fit_and_round_trip(frame: Frame) -> None:
    encoded = encode_frame(frame)
    assert len(encoded) <= MAX_PLAINTEXT
    assert decode_frame(encoded) == frame


def test_largest_envelope_round_trips_alone() -> None:
    frame = _largest_frames()[1]
    assert isinstance(frame, MessageFrame)
    assert decode_envelope(encode_envelope(frame.env)) == frame.env


def test_documented_ping_example() -> None:
    # docs/protocol.md, "Frames" > "Example".
    assert encode_frame(Ping(n=1)) == bytes.fromhex("82 a1 74 a4 70 69 6e 67 a1 6e 01")
