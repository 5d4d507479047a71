"""Envelope.signing_bytes: canonical, deterministic, and covering every signed field."""

from __future__ import annotations

import dataclasses
from typing import Any

import msgpack
import pytest
from hypothesis import given
from hypothesis import strategies as st

from p2pchat.wire import ENVELOPE_SIGNING_CONTEXT, Envelope

from .strategies import envelopes

BASE = Envelope.unsigned(
    room=b"R" * 16,
    id=b"I" * 16,
    author=b"A" * 32,
    seq=1,
    lamport=7,
    ts=1_700_000_000_000,
    kind="text",
    body="héllo".encode(),
    reply_to=None,
)


def test_unsigned_then_with_sig() -> None:
    assert BASE.sig == b""
    signed = BASE.with_sig(b"s" * 64)
    assert signed.sig == b"s" * 64
    assert dataclasses.replace(signed, sig=b"") == BASE
    assert signed.signing_bytes() == BASE.signing_bytes()  # the signature is not signed


def test_signing_bytes_exact_layout() -> None:
    # Pinned so that a third-party client can reproduce it byte for byte (docs/protocol.md).
    expected = (
        b"\x9a"  # fixarray of 10
        + b"\xb3p2pchat/envelope/v1"  # fixstr of 19
        + b"\xc4\x10"
        + b"R" * 16  # bin8 room
        + b"\xc4\x10"
        + b"I" * 16  # bin8 id
        + b"\xc4\x20"
        + b"A" * 32  # bin8 author
        + b"\x01"  # seq, positive fixint
        + b"\x07"  # lamport
        + b"\xcf\x00\x00\x01\x8b\xcf\xe5\x68\x00"  # ts, uint64
        + b"\xa4text"  # kind, fixstr
        + b"\xc4\x06h\xc3\xa9llo"  # body, bin8
        + b"\xc0"  # reply_to: nil
    )
    assert BASE.signing_bytes() == expected


def test_signing_bytes_is_the_documented_array() -> None:
    assert msgpack.unpackb(BASE.signing_bytes()) == [
        ENVELOPE_SIGNING_CONTEXT,
        b"R" * 16,
        b"I" * 16,
        b"A" * 32,
        1,
        7,
        1_700_000_000_000,
        "text",
        "héllo".encode(),
        None,
    ]


@given(envelopes)
def test_signing_bytes_deterministic(env: Envelope) -> None:
    copy = dataclasses.replace(env)
    assert env.signing_bytes() == copy.signing_bytes() == env.signing_bytes()


CHANGES = [
    ("room", b"R" * 32),
    ("room", b"S" * 16),
    ("id", b"J" * 16),
    ("author", b"B" * 32),
    ("seq", 2),
    ("lamport", 8),
    ("ts", 1_700_000_000_001),
    ("kind", "file"),
    ("body", b"hello"),
    ("body", b""),
    ("reply_to", b"P" * 16),
]


@pytest.mark.parametrize(("field", "value"), CHANGES)
def test_signing_bytes_change_with_every_field(field: str, value: Any) -> None:
    assert dataclasses.replace(BASE, **{field: value}).signing_bytes() != BASE.signing_bytes()


@given(envelopes, envelopes)
def test_distinct_envelopes_have_distinct_signing_bytes(a: Envelope, b: Envelope) -> None:
    same_content = dataclasses.replace(a, sig=b"") == dataclasses.replace(b, sig=b"")
    assert (a.signing_bytes() == b.signing_bytes()) == same_content


@given(st.binary(max_size=64))
def test_body_boundaries_cannot_shift(extra: bytes) -> None:
    # Moving bytes between adjacent fields must change the signed bytes (length-prefixed).
    a = dataclasses.replace(BASE, kind="te", body=b"xt" + extra)
    b = dataclasses.replace(BASE, kind="text", body=extra)
    assert a.signing_bytes() != b.signing_bytes()
