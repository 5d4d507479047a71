"""``encode_chunk`` (the file server's fast path) writes exactly what ``encode_frame`` would."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from p2pchat.wire import (
    MAX_CHUNK_DATA,
    MAX_INT,
    Chunk,
    FrameEncodeError,
    decode_frame,
    encode_chunk,
    encode_frame,
)

HASH = bytes(range(32))


@given(
    req=st.integers(0, MAX_INT),
    offset=st.integers(0, MAX_INT),
    data=st.binary(max_size=2048),
    skip=st.integers(0, 64),
)
def test_same_bytes_as_the_general_encoder(req: int, offset: int, data: bytes, skip: int) -> None:
    # A view into the middle of a bigger buffer, as the server passes it.
    view = memoryview(bytes(skip) + data)[skip:]
    encoded = encode_chunk(req, HASH, offset, view)
    assert encoded == encode_frame(Chunk(req=req, hash=HASH, offset=offset, data=data))
    assert decode_frame(encoded) == Chunk(req=req, hash=HASH, offset=offset, data=data)


def test_largest_chunk() -> None:
    data = bytes(MAX_CHUNK_DATA)
    assert encode_chunk(1, HASH, 0, memoryview(data)) == encode_frame(
        Chunk(req=1, hash=HASH, offset=0, data=data)
    )


@pytest.mark.parametrize(
    ("req", "hash_", "offset", "size", "problem"),
    [
        (-1, HASH, 0, 1, "req"),
        (1, HASH[:31], 0, 1, "hash"),
        (1, HASH, -5, 1, "offset"),
        (1, HASH, 0, MAX_CHUNK_DATA + 1, "data"),
    ],
)
def test_refuses_what_the_schema_refuses(
    req: int, hash_: bytes, offset: int, size: int, problem: str
) -> None:
    with pytest.raises(FrameEncodeError, match=problem):
        encode_chunk(req, hash_, offset, memoryview(bytes(size)))
