"""A room's sync summary in frames: never truncated, never read as 'holds nothing'."""

from __future__ import annotations

from p2pchat.node.group_heads import Heads as _Heads
from p2pchat.node.group_heads import heads_frames as _heads_frames
from p2pchat.wire import MAX_HEADS

ROOM = b"r" * 16


def test_a_small_room_is_one_complete_frame() -> None:
    heads = {bytes([i]) * 32: i for i in range(1, 10)}
    (frame,) = _heads_frames(ROOM, heads)
    assert dict(frame.heads) == heads
    assert len(frame.heads) < MAX_HEADS  # complete: an author left out is one not held


def test_a_room_with_more_authors_than_a_frame_holds_names_every_one_in_full_frames() -> None:
    heads = {i.to_bytes(32, "big"): i for i in range(1, MAX_HEADS * 2 + 40)}
    frames = _heads_frames(ROOM, heads)
    assert len(frames) == 3
    assert all(len(f.heads) == MAX_HEADS for f in frames)  # none reads as complete
    named: dict[bytes, int] = {}
    for f in frames:
        named.update(dict(f.heads))
    assert named == heads


def test_partial_summaries_add_up_and_a_complete_one_replaces_them() -> None:
    a, b = b"a" * 32, b"b" * 32
    first = _Heads(ROOM, {a: 3}, complete=False)
    second = _Heads(ROOM, {b: 5, a: 2}, complete=False)
    assert first.merged(second).heads == {a: 3, b: 5}
    complete = _Heads(ROOM, {a: 1}, complete=True)
    assert first.merged(complete) == complete
