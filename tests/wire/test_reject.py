"""Each way a received frame can be malformed is rejected with a FrameDecodeError that
names the problem; unknown types and unknown extra keys are ignored."""

from __future__ import annotations

import dataclasses
from typing import Any

import msgpack
import pytest

from p2pchat.wire import (
    MAX_BODY,
    MAX_CAP_CHARS,
    MAX_CAPS,
    MAX_CHUNK_COUNT,
    MAX_CHUNK_DATA,
    MAX_HEADS,
    MAX_KIND_CHARS,
    MAX_MAP_KEYS,
    MAX_NAME_CHARS,
    MAX_PLAINTEXT,
    MAX_REASON_CHARS,
    MAX_WANT_COUNT,
    Bye,
    Chunk,
    ChunkError,
    ChunkRequest,
    Envelope,
    Frame,
    FrameDecodeError,
    FrameEncodeError,
    FrameTooLargeError,
    Hello,
    MessageFrame,
    Ping,
    Pong,
    Profile,
    Receipt,
    SyncHeads,
    Typing,
    Want,
    decode_envelope,
    decode_frame,
    encode_envelope,
    encode_frame,
)

MAX_INT = 2**63 - 1
ENV = Envelope(
    room=b"r" * 16,
    id=b"i" * 16,
    author=b"a" * 32,
    seq=1,
    lamport=2,
    ts=3,
    kind="text",
    body=b"hello",
    reply_to=b"p" * 16,
    sig=b"s" * 64,
)
SAMPLES: dict[str, Frame] = {
    "hello": Hello(id=b"i" * 32, sig=b"s" * 64, name="alice", caps=("x",), port=7000),
    "msg": MessageFrame(env=ENV),
    "rcpt": Receipt(room=b"r" * 32, ids=(b"1" * 16, b"2" * 16), st="read"),
    "typing": Typing(room=b"r" * 16, on=True),
    "ping": Ping(n=1),
    "pong": Pong(n=1),
    "profile": Profile(name="bob"),
    "sync": SyncHeads(room=b"r" * 16, heads=((b"a" * 32, 5),)),
    "want": Want(room=b"r" * 16, author=b"a" * 32, start=1, count=10),
    "get": ChunkRequest(req=1, hash=b"h" * 32, offset=0, length=100, count=4),
    "chunk": Chunk(req=1, hash=b"h" * 32, offset=0, data=b"d"),
    "nochunk": ChunkError(req=1, hash=b"h" * 32, reason="gone"),
    "bye": Bye(reason="later"),
}


def as_map(t: str) -> dict[str, Any]:
    """The decoded msgpack map of the sample frame of type ``t``, ready to tamper with."""
    m: dict[str, Any] = msgpack.unpackb(encode_frame(SAMPLES[t]))
    return m


def pack(obj: object) -> bytes:
    return msgpack.packb(obj, use_bin_type=True)


def rejects(data: bytes, match: str) -> None:
    with pytest.raises(FrameDecodeError, match=match):
        decode_frame(data)


# --- msgpack-level problems ---------------------------------------------------------------


def test_empty_input() -> None:
    rejects(b"", "empty")


@pytest.mark.parametrize("t", sorted(SAMPLES))
def test_every_truncation_is_rejected(t: str) -> None:
    data = encode_frame(SAMPLES[t])
    for cut in range(len(data)):
        with pytest.raises(FrameDecodeError):
            decode_frame(data[:cut])


def test_not_msgpack() -> None:
    rejects(b"\xc1", "not msgpack")


def test_invalid_utf8_str() -> None:
    rejects(b"\x81\xa1t\xa2\xff\xfe", "UTF-8")


def test_trailing_garbage() -> None:
    rejects(encode_frame(SAMPLES["ping"]) + b"\x00", "trailing")


def test_two_frames_in_one_plaintext() -> None:
    rejects(encode_frame(SAMPLES["ping"]) * 2, "trailing")


def test_input_over_max_plaintext() -> None:
    rejects(b"\x00" * (MAX_PLAINTEXT + 1), "exceeds")


@pytest.mark.parametrize(
    "ext",
    [
        msgpack.packb(msgpack.ExtType(5, b"abc")),
        msgpack.packb(msgpack.ExtType(1, b"")),
        msgpack.packb(msgpack.Timestamp(1, 0)),
        msgpack.packb(msgpack.Timestamp(1, 1)),
        msgpack.packb(msgpack.Timestamp(2**40, 1)),
    ],
)
def test_ext_types_rejected_even_in_ignored_fields(ext: bytes) -> None:
    # {"t": "ping", "n": 1, "x": <ext>}, built by hand around the raw ext bytes.
    data = b"\x83" + pack("t") + pack("ping") + pack("n") + pack(1) + pack("x") + ext
    with pytest.raises(FrameDecodeError):
        decode_frame(data)


def test_non_str_map_key_rejected() -> None:
    rejects(b"\x82\xa1t\xa4ping\x01\x02", "map key")


def test_bin_map_key_in_extras_rejected() -> None:
    m: dict[Any, Any] = as_map("ping")
    m[b"k"] = 1
    rejects(pack(m), "map key must be str")


def test_top_level_not_a_map() -> None:
    rejects(pack(["ping", 1]), "frame: expected map, got array")
    rejects(pack(7), "frame: expected map, got int")


def test_missing_t() -> None:
    rejects(pack({"n": 1}), r"frame\.t: missing")


def test_t_not_str() -> None:
    rejects(pack({"t": 1}), r"frame\.t: expected str, got int")
    rejects(pack({"t": b"ping"}), r"frame\.t: expected str, got 4-byte bin")


# --- oversized containers (refused by the msgpack limits) -------------------------------------


def test_oversized_map() -> None:
    m = as_map("ping")
    m.update({f"x{i}": 0 for i in range(MAX_MAP_KEYS)})
    rejects(pack(m), "max_map_len")


def test_oversized_str() -> None:
    # Bigger than any str field can be: refused by the unpacker before allocating.
    m = as_map("bye")
    m["reason"] = "x" * 1000
    rejects(pack(m), "max_str_len")


def test_oversized_bin() -> None:
    m = as_map("chunk")
    m["data"] = b"d" * (MAX_CHUNK_DATA + 1)
    rejects(pack(m), "max_bin_len")


def test_oversized_array() -> None:
    m = as_map("rcpt")
    m["ids"] = [b"i" * 16] * 600
    rejects(pack(m), "max_array_len")


@pytest.mark.parametrize(
    "header", [b"\xdb\xff\xff\xff\xff", b"\xc6\xff\xff\xff\xff", b"\xdd\xff\xff\xff\xff"]
)
def test_huge_declared_length_fails_without_allocating(header: bytes) -> None:
    with pytest.raises(FrameDecodeError):
        decode_frame(b"\x81\xa1t" + header)


def test_msgpack_stack_depth() -> None:
    rejects(b"\x91" * 5000 + b"\x00", "nested too deep")


# --- schema problems ----------------------------------------------------------------------

# (type, key, bad value, expected message). Covers wrong types, bool-vs-int, ranges,
# lengths, enumerations and containers where scalars belong (nesting deeper than schema).
BAD_FIELDS: list[tuple[str, str, object, str]] = [
    ("hello", "id", b"i" * 31, r"hello\.id: expected 32-byte bin, got 31-byte bin"),
    ("hello", "id", "i" * 32, r"hello\.id: expected 32-byte bin, got str"),
    ("hello", "sig", b"s" * 65, r"hello\.sig: expected 64-byte bin"),
    ("hello", "name", "n" * (MAX_NAME_CHARS + 1), r"hello\.name: 65 characters exceeds 64"),
    ("hello", "name", b"bob", r"hello\.name: expected str, got 3-byte bin"),
    ("hello", "v", True, r"hello\.v: expected int, got bool"),
    ("hello", "v", -1, r"hello\.v: -1 out of range"),
    ("hello", "v", 1.0, r"hello\.v: expected int, got float"),
    ("hello", "caps", ["x"] * (MAX_CAPS + 1), r"hello\.caps: 17 items"),
    ("hello", "caps", ["c" * (MAX_CAP_CHARS + 1)], r"hello\.caps\[0\]"),
    ("hello", "caps", ["ok", 3], r"hello\.caps\[1\]"),
    ("hello", "caps", "x", r"hello\.caps: expected array, got str"),
    ("hello", "purpose", "admin", r"hello\.purpose: 'admin' is not one of chat \| files"),
    ("hello", "port", 0, r"hello\.port: 0 out of range 1\.\.65535"),
    ("hello", "port", 65536, r"hello\.port: 65536 out of range"),
    ("hello", "port", "80", r"hello\.port: expected int, got str"),
    ("rcpt", "room", b"r" * 20, r"rcpt\.room: expected 16- or 32-byte bin, got 20-byte bin"),
    ("rcpt", "ids", [], r"rcpt\.ids: 0 items, expected 1\.\.512"),
    ("rcpt", "ids", [b"1" * 16] * 3 + ["x"], r"rcpt\.ids\[3\]: expected 16-byte bin, got str"),
    ("rcpt", "ids", [[b"1" * 16]], r"rcpt\.ids\[0\]: expected 16-byte bin, got array"),
    ("rcpt", "st", "seen", r"rcpt\.st: 'seen' is not one of delivered \| read"),
    ("typing", "on", 1, r"typing\.on: expected bool, got int"),
    ("typing", "on", None, r"typing\.on: expected bool, got nil"),
    ("ping", "n", True, r"ping\.n: expected int, got bool"),
    ("ping", "n", 2**63, r"ping\.n: 9223372036854775808 out of range"),
    ("ping", "n", -(2**63), r"ping\.n: .* out of range"),
    ("ping", "n", [1], r"ping\.n: expected int, got array"),
    ("ping", "n", {"n": 1}, r"ping\.n: expected int, got map"),
    ("pong", "n", None, r"pong\.n: expected int, got nil"),
    ("profile", "name", "x" * 65, r"profile\.name: 65 characters exceeds 64"),
    ("sync", "heads", [[b"a" * 32, 1]] * (MAX_HEADS + 1), r"sync\.heads: 257 items"),
    ("sync", "heads", [[b"a" * 32]], r"sync\.heads\[0\]"),
    ("sync", "heads", [[b"a" * 32, -1]], r"sync\.heads\[0\]"),
    ("sync", "heads", [[b"a" * 32, True]], r"sync\.heads\[0\]"),
    ("sync", "heads", [[b"a" * 32, 1, 2]], r"sync\.heads\[0\]"),
    ("sync", "heads", [[[b"a" * 32], 1]], r"sync\.heads\[0\]"),
    ("sync", "heads", [[b"a" * 32, 1], [b"a" * 32, 2]], r"sync\.heads: an author appears"),
    ("want", "start", 0, r"want\.start: 0 out of range 1\.\."),
    ("want", "count", 0, r"want\.count: 0 out of range 1\.\.1000"),
    ("want", "count", MAX_WANT_COUNT + 1, r"want\.count: 1001 out of range"),
    ("want", "author", b"a" * 16, r"want\.author: expected 32-byte bin"),
    ("get", "length", 0, r"get\.length: 0 out of range"),
    ("get", "length", MAX_CHUNK_DATA + 1, r"get\.length: 65001 out of range"),
    ("get", "offset", -5, r"get\.offset: -5 out of range"),
    ("get", "count", 0, r"get\.count: 0 out of range 1\.\.64"),
    ("get", "count", MAX_CHUNK_COUNT + 1, r"get\.count: 65 out of range"),
    ("get", "count", True, r"get\.count: expected int, got bool"),
    ("get", "hash", b"h" * 64, r"get\.hash: expected 32-byte bin"),
    ("chunk", "data", "text", r"chunk\.data: expected bin, got str"),
    ("chunk", "req", False, r"chunk\.req: expected int, got bool"),
    ("nochunk", "reason", "r" * (MAX_REASON_CHARS + 1), r"nochunk\.reason: 201 characters"),
    ("bye", "reason", 3, r"bye\.reason: expected str, got int"),
    ("bye", "reason", ["a"], r"bye\.reason: expected str, got array"),
]


@pytest.mark.parametrize(("t", "key", "value", "message"), BAD_FIELDS)
def test_bad_field_rejected_on_decode(t: str, key: str, value: object, message: str) -> None:
    m = as_map(t)
    assert key in m
    m[key] = value
    rejects(pack(m), message)


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("room", b"r" * 15, r"msg\.env\.room: expected 16- or 32-byte bin"),
        ("id", b"i" * 32, r"msg\.env\.id: expected 16-byte bin"),
        ("author", b"a" * 31, r"msg\.env\.author: expected 32-byte bin"),
        ("seq", 0, r"msg\.env\.seq: 0 out of range 1\.\."),
        ("seq", True, r"msg\.env\.seq: expected int, got bool"),
        ("lamport", -1, r"msg\.env\.lamport: -1 out of range"),
        ("ts", 1.5, r"msg\.env\.ts: expected int, got float"),
        ("kind", "k" * (MAX_KIND_CHARS + 1), r"msg\.env\.kind: 17 characters exceeds 16"),
        ("kind", b"text", r"msg\.env\.kind: expected str, got 4-byte bin"),
        ("body", "text", r"msg\.env\.body: expected bin, got str"),
        ("body", b"b" * (MAX_BODY + 1), r"msg\.env\.body: 49153 bytes exceeds 49152"),
        ("reply_to", b"p" * 15, r"msg\.env\.reply_to: expected 16-byte bin"),
        ("reply_to", False, r"msg\.env\.reply_to: expected 16-byte bin, got bool"),
        ("sig", b"", r"msg\.env\.sig: expected 64-byte bin, got 0-byte bin"),
    ],
)
def test_bad_envelope_field_rejected(key: str, value: object, message: str) -> None:
    m = as_map("msg")
    m["env"][key] = value
    rejects(pack(m), message)
    with pytest.raises(FrameDecodeError, match=message.replace(r"msg\.env", "env")):
        decode_envelope(pack(m["env"]))


def test_env_not_a_map() -> None:
    rejects(pack({"t": "msg", "env": [1, 2]}), r"msg\.env: expected map, got array")
    rejects(pack({"t": "msg", "env": pack({"a": 1})}), r"msg\.env: expected map, got")
    with pytest.raises(FrameDecodeError, match="env: expected map"):
        decode_envelope(pack([1]))


@pytest.mark.parametrize("t", sorted(SAMPLES))
def test_every_missing_field_rejected(t: str) -> None:
    optional = {"port", "reply_to"} | ({"count"} if t == "get" else set())
    for key in as_map(t):
        if key in ("t", *optional):
            continue
        m = as_map(t)
        del m[key]
        rejects(pack(m), rf"{t}\.{key}: missing")


@pytest.mark.parametrize("key", ["room", "id", "author", "seq", "lamport", "ts", "kind", "body"])
def test_missing_envelope_field_rejected(key: str) -> None:
    m = as_map("msg")
    del m["env"][key]
    rejects(pack(m), rf"msg\.env\.{key}: missing")


# --- forward compatibility ------------------------------------------------------------------


def test_unknown_type_is_ignored() -> None:
    assert decode_frame(pack({"t": "future", "x": [1, {"y": b"z"}]})) is None


def test_unknown_type_still_bounded() -> None:
    # Well-formedness still applies to frames we ignore.
    rejects(pack({"t": "future", "x": [[[[1]]]]}), "nested deeper")
    rejects(pack({"t": "future", 1: 2}), "map key")


@pytest.mark.parametrize("t", sorted(SAMPLES))
def test_unknown_extra_keys_are_ignored(t: str) -> None:
    m = as_map(t)
    m["future"] = [1, "two", {"three": b"3"}]
    assert decode_frame(pack(m)) == SAMPLES[t]


def test_unknown_extra_keys_in_envelope_are_dropped() -> None:
    m = as_map("msg")
    m["env"]["edited"] = 5
    frame = decode_frame(pack(m))
    assert frame == SAMPLES["msg"]
    assert decode_envelope(pack(m["env"])) == ENV


@pytest.mark.parametrize(
    ("value", "ok"),
    [
        ([[1]], True),  # frame map > array > array: depth 3
        ([[[1]]], True),  # depth 4 = MAX_NESTING
        ([[[[1]]]], False),
        ({"a": {"b": {"c": {"d": 1}}}}, False),
    ],
)
def test_nesting_in_ignored_fields_is_bounded(value: object, ok: bool) -> None:
    m = as_map("ping")
    m["x"] = value
    if ok:
        assert decode_frame(pack(m)) == SAMPLES["ping"]
    else:
        rejects(pack(m), r"ping\.x[.a-c]*: nested deeper than 4")


def test_nesting_in_envelope_extras_counts_the_msg_map() -> None:
    m = as_map("msg")
    m["env"]["x"] = [[1]]  # msg > env > array > array: depth 4
    assert decode_frame(pack(m)) == SAMPLES["msg"]
    m["env"]["x"] = [[[1]]]
    rejects(pack(m), r"msg\.env\.x: nested deeper")


# --- the encoder refuses what the decoder would refuse -------------------------------------


@pytest.mark.parametrize(
    ("frame", "message"),
    [
        (Ping(n=-1), r"ping\.n: -1 out of range"),
        (Ping(n=True), r"ping\.n: expected int, got bool"),
        (Typing(room=b"r" * 16, on=1), r"typing\.on: expected bool"),  # type: ignore[arg-type]
        (Hello(id=b"i" * 32, sig=b"s" * 64, name="x", purpose="admin"), r"hello\.purpose"),
        (Hello(id=b"i" * 32, sig=b"s" * 64, name="x", port=0), r"hello\.port"),
        (Receipt(room=b"r" * 16, ids=(), st="read"), r"rcpt\.ids: 0 items"),
        (Receipt(room=b"r" * 16, ids=[b"i" * 16], st="read"), r"expected array"),  # type: ignore[arg-type]
        (Bye(reason="x" * 201), r"bye\.reason: 201 characters"),
        (Bye(reason="\ud800"), "not encodable as UTF-8"),
        (MessageFrame(env=ENV.with_sig(b"")), r"msg\.env\.sig: expected 64-byte bin"),
        (Chunk(req=1, hash=b"h" * 32, offset=0, data=bytearray(b"x")), r"expected bin"),  # type: ignore[arg-type]
    ],
)
def test_encoder_rejects_invalid_frames(frame: Frame, message: str) -> None:
    with pytest.raises(FrameEncodeError, match=message):
        encode_frame(frame)


def test_encoder_rejects_non_frames() -> None:
    with pytest.raises(FrameEncodeError, match="not a frame"):
        encode_frame(ENV)  # type: ignore[arg-type]


def test_encode_envelope_rejects_unsigned() -> None:
    unsigned = Envelope.unsigned(
        room=b"r" * 16,
        id=b"i" * 16,
        author=b"a" * 32,
        seq=1,
        lamport=0,
        ts=0,
        kind="t",
        body=b"",
    )
    with pytest.raises(FrameEncodeError, match=r"env\.sig"):
        encode_envelope(unsigned)


def test_encode_error_is_a_value_error_and_wire_error() -> None:
    from p2pchat.wire import WireError

    assert issubclass(FrameEncodeError, ValueError)
    assert issubclass(FrameEncodeError, WireError)
    assert issubclass(FrameDecodeError, WireError)
    assert issubclass(FrameTooLargeError, WireError)


@pytest.mark.parametrize("t", sorted(SAMPLES))
def test_frames_without_extras_skip_the_extras_walk(
    t: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The per-type key counts decide whether the (slower) walk over unknown keys runs; a
    # wrong count would only cost speed, so pin it here.
    from p2pchat.wire import codec

    def walked(*args: object) -> None:
        raise AssertionError(f"extras walk ran for a plain {t!r} frame")

    monkeypatch.setattr(codec, "_check_depth", walked)
    assert decode_frame(encode_frame(SAMPLES[t])) == SAMPLES[t]


def test_optional_fields_absent_skip_the_extras_walk(monkeypatch: pytest.MonkeyPatch) -> None:
    from p2pchat.wire import codec

    def walked(*args: object) -> None:
        raise AssertionError("extras walk ran")

    monkeypatch.setattr(codec, "_check_depth", walked)
    hello = Hello(id=b"i" * 32, sig=b"s" * 64, name="a", port=None)
    assert decode_frame(encode_frame(hello)) == hello
    msg = MessageFrame(env=dataclasses.replace(ENV, reply_to=None))
    assert decode_frame(encode_frame(msg)) == msg
    assert decode_envelope(encode_envelope(msg.env)) == msg.env


def test_get_count_is_optional_and_one_is_not_sent() -> None:
    one = ChunkRequest(req=1, hash=b"h" * 32, offset=0, length=100)
    assert "count" not in msgpack.unpackb(encode_frame(one))
    assert decode_frame(encode_frame(one)) == one
    many = ChunkRequest(req=1, hash=b"h" * 32, offset=0, length=100, count=MAX_CHUNK_COUNT)
    assert msgpack.unpackb(encode_frame(many))["count"] == MAX_CHUNK_COUNT
    assert decode_frame(encode_frame(many)) == many
