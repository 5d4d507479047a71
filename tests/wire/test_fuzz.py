"""Fuzzing the decoders: any input either decodes or raises FrameDecodeError, nothing else,
and whatever decodes is a frame this side could have sent."""

from __future__ import annotations

import tracemalloc

import msgpack
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from p2pchat.wire import (
    MAX_PLAINTEXT,
    Frame,
    FrameDecodeError,
    decode_envelope,
    decode_frame,
    encode_envelope,
    encode_frame,
)

from .strategies import envelopes, frames

# Transient memory the decoder may use for one input. msgpack preallocates each array it
# opens, so ~1000 nested 512-item headers cost a few MB for a moment; anything beyond this
# would mean a peer-chosen length got allocated.
MEMORY_BUDGET = 8 * 1024 * 1024


def check_decode(data: bytes) -> Frame | None:
    """Decode ``data``; if it is accepted, it must re-encode and round-trip exactly."""
    reason: str | None = None
    try:
        frame = decode_frame(data)
    except FrameDecodeError as e:
        reason = str(e)
    if reason is not None:
        assert reason  # a rejection always says what was wrong
        return None
    if frame is not None:
        again = encode_frame(frame)
        assert decode_frame(again) == frame
    return frame


@st.composite
def mutated(draw: st.DrawFn, base: st.SearchStrategy[bytes]) -> bytes:
    """A valid encoding with a few bytes flipped, inserted, deleted, or cut off."""
    data = bytearray(draw(base))
    for _ in range(draw(st.integers(min_value=1, max_value=4))):
        op = draw(st.sampled_from(["flip", "set", "insert", "delete", "truncate", "dup"]))
        i = draw(st.integers(min_value=0, max_value=max(len(data) - 1, 0)))
        if op == "flip" and data:
            data[i] ^= 1 << draw(st.integers(min_value=0, max_value=7))
        elif op == "set" and data:
            data[i] = draw(st.integers(min_value=0, max_value=255))
        elif op == "insert":
            data[i:i] = draw(st.binary(min_size=1, max_size=8))
        elif op == "delete" and data:
            del data[i : i + draw(st.integers(min_value=1, max_value=8))]
        elif op == "truncate":
            del data[i:]
        elif op == "dup":
            data[i:i] = data[i : i + draw(st.integers(min_value=1, max_value=16))]
    return bytes(data)


encoded_frames = frames.map(encode_frame)


@settings(max_examples=500, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=256))
def test_random_bytes(data: bytes) -> None:
    check_decode(data)


@settings(max_examples=200)
@given(st.binary(min_size=1, max_size=64).map(lambda b: b"\x83\xa1t" + b))
def test_random_bytes_after_a_map_header(data: bytes) -> None:
    check_decode(data)


@settings(max_examples=1000, suppress_health_check=[HealthCheck.too_slow])
@given(mutated(encoded_frames))
def test_mutated_frames(data: bytes) -> None:
    check_decode(data)


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(mutated(envelopes.map(encode_envelope)))
def test_mutated_envelopes(data: bytes) -> None:
    try:
        env = decode_envelope(data)
    except FrameDecodeError:
        return
    assert decode_envelope(encode_envelope(env)) == env


# Structured garbage: msgpack values of every type in frame-shaped maps, so the validators
# (not only the unpacker) see wrong types in every position.
msgpack_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**64 - 1)
    | st.floats()
    | st.text(max_size=8)
    | st.binary(max_size=40),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=4), inner, max_size=4)
    ),
    max_leaves=12,
)
frame_keys = st.sampled_from(
    [
        "id",
        "sig",
        "name",
        "v",
        "caps",
        "purpose",
        "port",
        "env",
        "room",
        "ids",
        "st",
        "on",
        "n",
        "heads",
        "author",
        "start",
        "count",
        "req",
        "hash",
        "offset",
        "length",
        "data",
        "reason",
    ]
)


@settings(max_examples=1000, suppress_health_check=[HealthCheck.too_slow])
@given(
    t=st.sampled_from(
        [
            "hello",
            "msg",
            "rcpt",
            "typing",
            "ping",
            "pong",
            "profile",
            "sync",
            "want",
            "get",
            "chunk",
            "nochunk",
            "bye",
            "other",
        ]
    ),
    fields=st.dictionaries(frame_keys, msgpack_values, max_size=8),
)
def test_frame_shaped_garbage(t: str, fields: dict[str, object]) -> None:
    check_decode(msgpack.packb({"t": t, **fields}, use_bin_type=True))


@settings(max_examples=200, suppress_health_check=[HealthCheck.too_slow])
@given(
    frames.flatmap(
        lambda f: st.tuples(
            st.just(f),
            st.sampled_from(list(msgpack.unpackb(encode_frame(f)))),
            msgpack_values,
        )
    )
)
def test_one_field_replaced_by_anything(case: tuple[Frame, str, object]) -> None:
    frame, key, value = case
    m = msgpack.unpackb(encode_frame(frame))
    m[key] = value
    check_decode(msgpack.packb(m, use_bin_type=True))


@settings(max_examples=100, suppress_health_check=[HealthCheck.too_slow])
@given(mutated(encoded_frames) | st.binary(max_size=2048))
def test_memory_stays_bounded(data: bytes) -> None:
    tracemalloc.start()
    try:
        check_decode(data)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < MEMORY_BUDGET


def test_memory_worst_case_nested_array_headers() -> None:
    # Each 3-byte header announces 512 items that never come; msgpack preallocates them.
    for data in (b"\xdc\x02\x00" * 1100, b"\xdc\x02\x00" * (MAX_PLAINTEXT // 3)):
        tracemalloc.start()
        try:
            check_decode(data)
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
        assert peak < MEMORY_BUDGET
