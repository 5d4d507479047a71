"""What group sync sends: heads per author, merged while a push waits, and the frames."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from p2pchat.node.rooms import MAX_OPS
from p2pchat.wire import MAX_HEADS, SyncHeads

if TYPE_CHECKING:
    pass


# A summary of a room in several full ``sync`` frames names at most this many authors
# (a room's authors are bounded by its operations, MAX_OPS).
MAX_SUMMARY_AUTHORS = MAX_OPS + MAX_HEADS


@dataclass(frozen=True)
class Heads:
    """A member's summary of a room: per author, the highest seq held without a gap.

    ``complete``: it names every author the member holds (a lone frame with fewer than
    MAX_HEADS entries), so an author it leaves out is one it holds nothing of. A room
    with more authors is summarised in several full frames, each partial.
    """

    room: bytes
    heads: dict[bytes, int]
    complete: bool

    def merged(self, newer: Heads) -> Heads:
        """Several frames of one summary add up; a complete one replaces the rest.

        At most MAX_SUMMARY_AUTHORS authors add up: a member sending full frames of fresh
        authors must not grow the waiting summary (nor the cost of each merge) without
        bound. An author left out is only pushed in a later round.
        """
        if newer.complete:
            return newer
        heads = dict(self.heads)
        for author, seq in newer.heads.items():
            if author in heads or len(heads) < MAX_SUMMARY_AUTHORS:
                heads[author] = max(heads.get(author, 0), seq)
        return Heads(self.room, heads, self.complete)


def heads_frames(room: bytes, heads: dict[bytes, int]) -> list[SyncHeads]:
    """Our summary of ``room`` in as many frames as it takes (each full when several)."""
    items = sorted(heads.items())
    if len(items) < MAX_HEADS:
        return [SyncHeads(room=room, heads=tuple(items))]
    chunks = [items[i : i + MAX_HEADS] for i in range(0, len(items), MAX_HEADS)]
    # Every frame full, so none reads as complete: the last is topped up from the first.
    chunks[-1] = (chunks[-1] + items)[:MAX_HEADS]
    return [SyncHeads(room=room, heads=tuple(chunk)) for chunk in chunks]
