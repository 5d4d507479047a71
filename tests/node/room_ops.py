"""Build a group room's operation graph by hand, for tests of ``rooms.resolve``.

Each author keeps its own sequence numbers; by default an operation names everything
built so far (the heads), as an author who has seen it all would.
"""

from __future__ import annotations

from collections.abc import Iterable

from p2pchat.node.rooms import (
    KIND_SYSTEM,
    Membership,
    OpEntry,
    SystemOp,
    encode_system,
    group_envelope_id,
    group_room_id,
    resolve,
)
from p2pchat.store import now_ms
from p2pchat.wire import Envelope


class History:
    """One room's operations, in the order a test wrote them."""

    def __init__(self, owner: bytes, name: str = "team") -> None:
        nonce = b"\x07" * 16
        self.room = group_room_id(owner, nonce)
        self.entries: list[OpEntry] = []
        self._seq: dict[bytes, int] = {}
        self._ids = 0
        self.create = self.add(owner, "create", name=name, nonce=nonce, deps=())

    def next_seq(self, author: bytes) -> int:
        """The author's next sequence number (posts take them too)."""
        self._seq[author] = self._seq.get(author, 0) + 1
        return self._seq[author]

    def add(
        self,
        author: bytes,
        op: str,
        *,
        deps: Iterable[bytes] | None = None,
        seq: int | None = None,
        id: bytes | None = None,
        **fields: object,
    ) -> OpEntry:
        """Append an operation; ``deps`` defaults to the current heads of all of it."""
        if deps is None:
            deps = self.resolve().heads
        self._ids += 1
        entry = OpEntry(
            id=id or self._ids.to_bytes(16, "big"),
            author=author,
            seq=seq if seq is not None else self.next_seq(author),
            deps=tuple(deps),
            op=SystemOp(op, **fields),  # type: ignore[arg-type]
        )
        self.entries.append(entry)
        return entry

    def resolve(self, entries: Iterable[OpEntry] | None = None) -> Membership:
        return resolve(self.room, self.entries if entries is None else entries)


def system_envelope(room: bytes, entry: OpEntry) -> Envelope:
    """``entry`` as the envelope its author would send, with a blank signature (for
    tests of what a node holds: signatures are checked before that)."""
    return Envelope.unsigned(
        room=room,
        id=group_envelope_id(room, entry.author, entry.seq),
        author=entry.author,
        seq=entry.seq,
        lamport=1,
        ts=now_ms(),
        kind=KIND_SYSTEM,
        body=encode_system(entry.op),
        deps=entry.deps,
    ).with_sig(b"\x00" * 64)
