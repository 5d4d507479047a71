"""Per-chat settings in the store (issue 14, item 5): mute, archive, delete locally."""

from __future__ import annotations

from p2pchat.store import Store

from .helpers import ROOM, SELF, msg, peer


def test_mute_is_kept_and_still_counts_unread(store: Store) -> None:
    assert store.set_room_muted(ROOM, True)
    store.add_messages([msg(seq=1)])
    room = store.get_room(ROOM)
    assert room is not None
    assert room.muted
    assert store.unread_count(ROOM) == 1
    store.set_room_muted(ROOM, False)
    assert not store.get_room(ROOM).muted  # type: ignore[union-attr]
    assert not store.set_room_muted(b"?" * 16, True)


def test_archived_room_returns_when_a_new_message_arrives(store: Store) -> None:
    store.add_messages([msg(seq=1)])
    store.set_room_archived(ROOM, True)
    (summary,) = store.list_rooms()
    assert summary.archived
    store.add_messages([msg(seq=2)])
    (summary,) = store.list_rooms()
    assert not summary.archived
    store.set_room_archived(ROOM, True)
    store.set_room_archived(ROOM, False)
    assert not store.list_rooms()[0].archived


def test_archiving_an_empty_room_hides_it_until_its_first_message(store: Store) -> None:
    store.set_room_archived(ROOM, True)
    assert store.list_rooms()[0].archived
    store.add_messages([msg(seq=1)])
    assert not store.list_rooms()[0].archived


def test_cleared_room_keeps_its_place_in_seq_and_lamport_order(store: Store) -> None:
    store.add_messages([msg(author=SELF, seq=s, lamport=100 + s) for s in (1, 2, 3)])
    store.add_messages([msg(author=peer(2), seq=1, lamport=500)])
    assert store.clear_room(ROOM) == 4
    assert store.latest_messages(ROOM) == []
    assert store.get_room(ROOM) is not None
    # Our next message must not reuse seq 3 (the others hold it) nor sort before 500.
    assert store.next_seq(ROOM, SELF) == 4
    assert store.max_lamport(ROOM) == 500
    assert store.heads(ROOM) == {SELF: 3, peer(2): 1}  # sync does not fetch it all back


def test_next_seq_and_max_lamport_of_an_unknown_room(store: Store) -> None:
    assert store.next_seq(b"?" * 16, SELF) == 1
    assert store.max_lamport(b"?" * 16) == 0
