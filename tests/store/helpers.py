"""Helpers for the store tests: ids and messages with sensible defaults."""

from __future__ import annotations

import os

from p2pchat.store import NewMessage

SELF = b"S" * 32
ROOM = b"R" * 16


def peer(n: int) -> bytes:
    """A 32-byte peer id distinct for each n."""
    return n.to_bytes(32, "big")


def msg(
    room: bytes = ROOM,
    author: bytes = b"",
    seq: int = 1,
    lamport: int | None = None,
    *,
    mid: bytes | None = None,
    body: bytes = b"hi",
    status: int = 0,
    received_at: int = 1000,
) -> NewMessage:
    """A message with sensible defaults; a random id unless given."""
    return NewMessage(
        id=mid if mid is not None else os.urandom(16),
        room=room,
        author=author or peer(1),
        seq=seq,
        lamport=seq if lamport is None else lamport,
        sent_at=1000 + seq,
        received_at=received_at,
        kind="text",
        body=body,
        sig=b"sig" * 21 + b"!",
        status=status,
    )
