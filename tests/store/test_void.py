"""Seq ranges that group membership declares void: deleted, and passed over by heads."""

from __future__ import annotations

from p2pchat.store import Store
from tests.store.helpers import ROOM, msg, peer


def test_deleting_a_range_lowers_the_head_and_skipping_it_passes_over_it(store: Store) -> None:
    store.ensure_room(ROOM, "group", name="g", owner=peer(9), created_at=1)
    author = peer(1)
    store.add_messages([msg(author=author, seq=s) for s in range(1, 10)])
    assert store.heads(ROOM)[author] == 9
    gone = store.delete_seq_range(ROOM, author, 6, 8)
    assert len(gone) == 3
    assert store.heads(ROOM)[author] == 5  # 6..8 are no longer held
    store.skip_void(ROOM, author, 6, 8)
    assert store.heads(ROOM)[author] == 9  # ... but void: the head passes over them
    store.add_messages([msg(author=author, seq=10)])
    assert store.heads(ROOM)[author] == 10


def test_a_void_range_above_the_head_is_passed_once_reached(store: Store) -> None:
    store.ensure_room(ROOM, "group", name="g", owner=peer(9), created_at=1)
    author = peer(1)
    store.add_messages([msg(author=author, seq=s) for s in (1, 2, 7)])
    store.skip_void(ROOM, author, 5, 6)  # the head (2) has not reached it: nothing yet
    assert store.heads(ROOM)[author] == 2
    store.add_messages([msg(author=author, seq=s) for s in (3, 4)])
    store.skip_void(ROOM, author, 5, 6)
    assert store.heads(ROOM)[author] == 7
