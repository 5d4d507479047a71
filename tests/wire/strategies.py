"""Hypothesis strategies producing valid instances of every wire frame type."""

from __future__ import annotations

from hypothesis import strategies as st

from p2pchat.wire import (
    MAX_BODY,
    MAX_CAP_CHARS,
    MAX_CAPS,
    MAX_CHUNK_COUNT,
    MAX_CHUNK_DATA,
    MAX_HEADS,
    MAX_IDS_PER_RECEIPT,
    MAX_KIND_CHARS,
    MAX_NAME_CHARS,
    MAX_REASON_CHARS,
    MAX_WANT_COUNT,
    Bye,
    Chunk,
    ChunkError,
    ChunkRequest,
    Envelope,
    Frame,
    Hello,
    MessageFrame,
    OnionAddress,
    Ping,
    Pong,
    Profile,
    Receipt,
    SyncHeads,
    Typing,
    Want,
)
from p2pchat.wire.onion import onion_address

MAX_INT = 2**63 - 1

ids16 = st.binary(min_size=16, max_size=16)
keys32 = st.binary(min_size=32, max_size=32)
sigs = st.binary(min_size=64, max_size=64)
rooms = st.one_of(ids16, keys32)
uints = st.integers(min_value=0, max_value=MAX_INT)


def texts(max_chars: int) -> st.SearchStrategy[str]:
    """Any text of at most ``max_chars`` code points (hypothesis never makes surrogates)."""
    return st.text(max_size=max_chars)


hellos = st.builds(
    Hello,
    id=keys32,
    sig=sigs,
    name=texts(MAX_NAME_CHARS),
    v=uints,
    caps=st.lists(texts(MAX_CAP_CHARS), max_size=MAX_CAPS).map(tuple),
    purpose=st.sampled_from(["chat", "files"]),
    port=st.none() | st.integers(min_value=1, max_value=65535),
)

envelopes = st.builds(
    Envelope,
    room=rooms,
    id=ids16,
    author=keys32,
    seq=st.integers(min_value=1, max_value=MAX_INT),
    lamport=uints,
    ts=uints,
    kind=st.sampled_from(["text", "system", "file", "reaction"]) | texts(MAX_KIND_CHARS),
    body=st.binary(max_size=MAX_BODY),
    reply_to=st.none() | ids16,
    sig=sigs,
)

frames_by_type: dict[str, st.SearchStrategy[Frame]] = {
    "hello": hellos,
    "msg": st.builds(MessageFrame, env=envelopes),
    "rcpt": st.builds(
        Receipt,
        room=rooms,
        ids=st.lists(ids16, min_size=1, max_size=MAX_IDS_PER_RECEIPT).map(tuple),
        st=st.sampled_from(["delivered", "read"]),
    ),
    "typing": st.builds(Typing, room=rooms, on=st.booleans()),
    "ping": st.builds(Ping, n=uints),
    "pong": st.builds(Pong, n=uints),
    "profile": st.builds(Profile, name=texts(MAX_NAME_CHARS)),
    "sync": st.builds(
        SyncHeads,
        room=rooms,
        heads=st.lists(st.tuples(keys32, uints), max_size=MAX_HEADS, unique_by=lambda h: h[0]).map(
            tuple
        ),
    ),
    "want": st.builds(
        Want,
        room=rooms,
        author=keys32,
        start=st.integers(min_value=1, max_value=MAX_INT),
        count=st.integers(min_value=1, max_value=MAX_WANT_COUNT),
    ),
    "get": st.builds(
        ChunkRequest,
        req=uints,
        hash=keys32,
        offset=uints,
        length=st.integers(min_value=1, max_value=MAX_CHUNK_DATA),
        count=st.integers(min_value=1, max_value=MAX_CHUNK_COUNT),
    ),
    "chunk": st.builds(
        Chunk, req=uints, hash=keys32, offset=uints, data=st.binary(max_size=MAX_CHUNK_DATA)
    ),
    "nochunk": st.builds(ChunkError, req=uints, hash=keys32, reason=texts(MAX_REASON_CHARS)),
    "onion": st.builds(
        OnionAddress,
        addr=keys32.map(onion_address),
        port=st.integers(min_value=1, max_value=65535),
        ts=uints,
        sig=sigs,
    ),
    "bye": st.builds(Bye, reason=texts(MAX_REASON_CHARS)),
}

frames: st.SearchStrategy[Frame] = st.one_of(*frames_by_type.values())
