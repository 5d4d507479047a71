"""The 2-byte length framing of Noise messages: FrameReader and frame_prefix."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from p2pchat.wire import (
    MAX_NOISE_MESSAGE,
    PREFIX_LEN,
    FrameDecodeError,
    FrameEncodeError,
    FrameReader,
    FrameTooLargeError,
    frame_prefix,
)

LIMIT = PREFIX_LEN + MAX_NOISE_MESSAGE
messages = st.lists(st.binary(min_size=1, max_size=300), min_size=1, max_size=8)


def test_frame_prefix_is_big_endian_length() -> None:
    assert frame_prefix(b"abc") == b"\x00\x03abc"
    assert frame_prefix(b"x" * 258)[:2] == b"\x01\x02"
    assert frame_prefix(b"x" * MAX_NOISE_MESSAGE)[:2] == b"\xff\xff"


def test_frame_prefix_too_large() -> None:
    with pytest.raises(FrameTooLargeError, match="65536"):
        frame_prefix(b"x" * (MAX_NOISE_MESSAGE + 1))


def test_frame_prefix_empty() -> None:
    with pytest.raises(FrameEncodeError, match="empty"):
        frame_prefix(b"")


def test_every_split_point_of_a_stream() -> None:
    msgs = [b"a", b"bc" * 100, b"\x00" * 3, b"z" * 256]
    stream = b"".join(frame_prefix(m) for m in msgs)
    for cut in range(len(stream) + 1):
        reader = FrameReader()
        out = reader.feed(stream[:cut]) + reader.feed(stream[cut:])
        assert out == msgs
        assert reader.buffered == 0


def test_one_byte_at_a_time() -> None:
    msgs = [b"first", b"x" * 300, b"third"]
    reader = FrameReader()
    out: list[bytes] = []
    for byte in b"".join(frame_prefix(m) for m in msgs):
        out += reader.feed(bytes([byte]))
        assert reader.buffered <= LIMIT
    assert out == msgs


def test_many_messages_in_one_feed() -> None:
    msgs = [i.to_bytes(2, "big") * (i % 7 + 1) for i in range(1000)]
    reader = FrameReader()
    assert reader.feed(b"".join(frame_prefix(m) for m in msgs)) == msgs
    assert reader.buffered == 0


def test_empty_feed() -> None:
    reader = FrameReader()
    assert reader.feed(b"") == []
    reader.feed(b"\x00")
    assert reader.feed(b"") == []
    assert reader.buffered == 1


def test_partial_message_is_buffered_and_completed() -> None:
    reader = FrameReader()
    assert reader.feed(b"\x00\x05ab") == []
    assert reader.buffered == 4
    assert reader.feed(b"cde\x00\x01") == [b"abcde"]
    assert reader.buffered == 2
    assert reader.feed(b"!") == [b"!"]
    assert reader.buffered == 0


def test_largest_message_in_pieces_never_over_buffers() -> None:
    big = bytes(range(256)) * 255 + b"x" * 255  # exactly 65535 bytes
    assert len(big) == MAX_NOISE_MESSAGE
    stream = frame_prefix(big) + frame_prefix(b"after")
    reader = FrameReader()
    out: list[bytes] = []
    for i in range(0, len(stream), 4096):
        out += reader.feed(stream[i : i + 4096])
        assert reader.buffered < LIMIT
    assert out == [big, b"after"]


def test_huge_feed_buffers_only_the_incomplete_tail() -> None:
    # 1000 maximal messages and a partial one in a single call: only the tail is kept.
    big = b"m" * MAX_NOISE_MESSAGE
    stream = frame_prefix(big) * 20 + frame_prefix(big)[:-1]
    reader = FrameReader()
    assert reader.feed(stream) == [big] * 20
    assert reader.buffered == LIMIT - 1


def test_zero_length_is_a_protocol_error() -> None:
    reader = FrameReader()
    with pytest.raises(FrameDecodeError, match="zero-length"):
        reader.feed(b"\x00\x01a\x00\x00")
    # The stream cannot be resynchronised: the reader stays broken.
    with pytest.raises(FrameDecodeError, match="broken"):
        reader.feed(b"\x00\x01a")
    assert reader.buffered == 0


def test_zero_length_split_across_feeds() -> None:
    reader = FrameReader()
    assert reader.feed(b"\x00") == []
    with pytest.raises(FrameDecodeError, match="zero-length"):
        reader.feed(b"\x00")


def test_accepts_bytearray_and_memoryview() -> None:
    reader = FrameReader()
    assert reader.feed(bytearray(b"\x00\x02h")) == []
    assert reader.feed(memoryview(b"i\x00\x01!")) == [b"hi", b"!"]


@settings(max_examples=300)
@given(msgs=messages, cuts=st.lists(st.integers(min_value=0, max_value=3000), max_size=10))
def test_arbitrary_chunking(msgs: list[bytes], cuts: list[int]) -> None:
    stream = b"".join(frame_prefix(m) for m in msgs)
    points = sorted({min(c, len(stream)) for c in cuts} | {0, len(stream)})
    reader = FrameReader()
    out: list[bytes] = []
    for a, b in itertools.pairwise(points):
        out += reader.feed(stream[a:b])
        assert reader.buffered <= LIMIT
    assert out == msgs
    assert reader.buffered == 0


@settings(max_examples=300)
@given(chunks=st.lists(st.binary(max_size=70000), max_size=6))
def test_random_streams_never_over_buffer(chunks: list[bytes]) -> None:
    reader = FrameReader()
    for chunk in chunks:
        try:
            for message in reader.feed(chunk):
                assert 1 <= len(message) <= MAX_NOISE_MESSAGE
        except FrameDecodeError:
            return
        assert reader.buffered <= LIMIT
