"""Messages: dedupe, display order, paging, heads, seqs, status, transactions."""

from __future__ import annotations

import os

import pytest

from p2pchat.store import MessageStatus, Store, UnknownRoomError, db

from .helpers import ROOM, SELF, msg, peer


def test_add_messages_dedupes_by_id(store: Store) -> None:
    m = msg(seq=1)
    assert store.add_messages([m]) == [True]
    assert store.add_messages([m]) == [False]
    assert store.message_count(ROOM) == 1


def test_duplicate_within_one_batch(store: Store) -> None:
    m = msg(seq=1)
    assert store.add_messages([m, msg(seq=2), m]) == [True, True, False]
    assert store.message_count(ROOM) == 2


def test_seq_clash_with_other_id_is_refused_not_raised(store: Store) -> None:
    first = msg(seq=1, body=b"first")
    assert store.add_messages([first, msg(seq=1, body=b"second")]) == [True, False]
    got = store.messages_by_seq(ROOM, peer(1), 1, 10)
    assert [m.id for m in got] == [first.id]


@pytest.mark.parametrize("more", [0, Store.MANY_ROWS], ids=["row by row", "one executemany"])
def test_each_stored_row_is_returned_once_for_the_row_that_was_stored(
    store: Store, more: int
) -> None:
    """A batch can name one id twice with different seqs (a hostile relay): only the
    copy that was stored comes back as stored, with its own seq and arrival order."""
    store.add_messages([msg(seq=1, body=b"held")])
    same_id = os.urandom(16)
    clash = msg(seq=1, mid=same_id, body=b"seq 1 is taken")
    fits = msg(seq=2, mid=same_id, body=b"seq 2 is free")
    again = msg(seq=2, mid=same_id, body=b"seq 2 is free")
    other = msg(seq=3)
    extra = [msg(seq=4 + i) for i in range(more)]
    got = store.insert_messages([clash, fits, again, other, *extra])
    assert all(m is not None for m in got[4:])
    assert got[0] is None
    assert got[2] is None
    stored_fits, stored_other = got[1], got[3]
    assert stored_fits is not None
    assert stored_other is not None
    assert (stored_fits.seq, stored_fits.body) == (2, b"seq 2 is free")
    assert stored_fits.rowid < stored_other.rowid
    assert store.get_messages([same_id])[0].rowid == stored_fits.rowid


def test_unknown_room_raises_and_stores_nothing(store: Store) -> None:
    with pytest.raises(UnknownRoomError):
        store.add_messages([msg(seq=1), msg(room=b"?" * 16, seq=1)])
    assert store.message_count(ROOM) == 0


def test_get_message_round_trips_every_field(store: Store) -> None:
    m = msg(seq=4, lamport=9, body=b"\x00bytes\xff", status=MessageStatus.SENT)
    store.add_messages([m])
    got = store.get_message(m.id)
    assert got is not None
    assert (got.id, got.room, got.author, got.seq, got.lamport) == (m.id, ROOM, peer(1), 4, 9)
    assert (got.sent_at, got.received_at, got.kind, got.body) == (1004, 1000, "text", m.body)
    assert (got.sig, got.reply_to, got.status) == (m.sig, None, 1)
    assert got.rowid > 0
    assert got.cursor == (9, peer(1), m.id)
    assert store.get_message(b"\x00" * 16) is None


def test_display_order_is_lamport_author_id(store: Store) -> None:
    a, b = peer(1), peer(2)
    rows = [
        msg(author=b, seq=1, lamport=2, mid=b"\x01" * 16),
        msg(author=a, seq=1, lamport=2, mid=b"\x02" * 16),
        msg(author=a, seq=2, lamport=3, mid=b"\x00" * 16),
        msg(author=b, seq=2, lamport=1, mid=b"\x03" * 16),
    ]
    # Arrival order differs from display order on purpose.
    store.add_messages(rows)
    got = [(m.lamport, m.author, m.id) for m in store.latest_messages(ROOM)]
    assert got == sorted(got)
    assert [m.id for m in store.latest_messages(ROOM)] == [
        b"\x03" * 16,
        b"\x02" * 16,
        b"\x01" * 16,
        b"\x00" * 16,
    ]


def test_latest_and_paging_cover_history_exactly_once(store: Store) -> None:
    authors = [peer(1), peer(2), peer(3)]
    rows = [msg(author=authors[i % 3], seq=i // 3 + 1, lamport=i // 2) for i in range(1000)]
    store.add_messages(rows)
    page = store.latest_messages(ROOM, limit=200)
    assert len(page) == 200
    seen = list(page)
    while True:
        older = store.messages_before(ROOM, seen[0].cursor, limit=150)
        if not older:
            break
        assert older[-1].cursor < seen[0].cursor
        seen = older + seen
    keys = [m.cursor for m in seen]
    assert keys == sorted(keys)
    assert len(set(keys)) == 1000
    assert {m.id for m in seen} == {r.id for r in rows}


def test_other_rooms_do_not_leak_into_a_room(store: Store) -> None:
    other = b"O" * 16
    store.ensure_room(other, "direct", created_at=1)
    store.add_messages([msg(seq=1), msg(room=other, seq=1), msg(room=other, seq=2)])
    assert len(store.latest_messages(ROOM)) == 1
    assert store.message_count(other) == 2
    assert store.messages_before(ROOM, (10**9, b"\xff" * 32, b"\xff" * 16), 10)[0].room == ROOM


def test_heads_are_contiguous_from_one(store: Store) -> None:
    a, b, c = peer(1), peer(2), peer(3)
    store.add_messages([msg(author=a, seq=s) for s in (1, 2, 3, 5)])
    store.add_messages([msg(author=b, seq=s) for s in (2, 3)])  # seq 1 missing
    store.add_messages([msg(author=c, seq=1)])
    assert store.heads(ROOM) == {a: 3, c: 1}
    # Filling the gap moves the head over everything already held.
    store.add_messages([msg(author=a, seq=4), msg(author=b, seq=1)])
    assert store.heads(ROOM) == {a: 5, b: 3, c: 1}
    assert store.heads(b"?" * 16) == {}


def test_heads_survive_out_of_order_batches(store: Store) -> None:
    a = peer(1)
    store.add_messages([msg(author=a, seq=s) for s in (5, 4, 3, 2, 1)])
    assert store.heads(ROOM) == {a: 5}


def test_next_seq_and_max_lamport(store: Store) -> None:
    assert store.next_seq(ROOM, SELF) == 1
    assert store.max_lamport(ROOM) == 0
    store.add_messages([msg(author=SELF, seq=1, lamport=7), msg(author=SELF, seq=3, lamport=4)])
    store.add_messages([msg(author=peer(2), seq=1, lamport=12)])
    assert store.next_seq(ROOM, SELF) == 4
    assert store.next_seq(ROOM, peer(2)) == 2
    assert store.max_lamport(ROOM) == 12


def test_messages_by_seq_window(store: Store) -> None:
    a = peer(1)
    store.add_messages([msg(author=a, seq=s) for s in range(1, 11)])
    store.add_messages([msg(author=peer(2), seq=s) for s in range(1, 11)])
    got = store.messages_by_seq(ROOM, a, 4, 3)
    assert [m.seq for m in got] == [4, 5, 6]
    assert {m.author for m in got} == {a}
    assert [m.seq for m in store.messages_by_seq(ROOM, a, 9, 100)] == [9, 10]


def test_status_only_rises(store: Store) -> None:
    m1, m2 = msg(seq=1), msg(seq=2)
    store.add_messages([m1, m2])
    assert store.set_status([m1.id, m2.id], MessageStatus.DELIVERED) == [m1.id, m2.id]
    assert store.set_status([m1.id], MessageStatus.SENT) == []
    assert store.set_status([m1.id, b"\x00" * 16], MessageStatus.READ) == [m1.id]
    got1, got2 = store.get_message(m1.id), store.get_message(m2.id)
    assert got1 is not None
    assert got2 is not None
    assert (got1.status, got2.status) == (3, 2)


def test_transaction_groups_calls_and_rolls_back_on_error(store: Store) -> None:
    def grouped_then_fail() -> None:
        with store.transaction():
            store.add_messages([msg(seq=1)])
            store.enqueue(peer(2), b"f")
            raise RuntimeError("caller changed its mind")

    with pytest.raises(RuntimeError):
        grouped_then_fail()
    assert store.message_count(ROOM) == 0
    assert store.peers_with_pending() == []
    with store.transaction():
        store.add_messages([msg(seq=1)])
        store.enqueue(peer(2), b"f")
    assert store.message_count(ROOM) == 1


def test_nested_transaction_is_a_savepoint(store: Store) -> None:
    def inner() -> None:
        with store.transaction():
            store.set_setting("inner", "1")
            store.upsert_peer(b"short")  # violates the 32-byte CHECK

    with store.transaction():
        store.set_setting("outer", "1")
        with pytest.raises(db.IntegrityError):
            inner()
        store.set_setting("after", "1")
    assert store.get_setting("outer") == "1"
    assert store.get_setting("inner") is None
    assert store.get_setting("after") == "1"


def test_head_cache_survives_a_rolled_back_batch(store: Store) -> None:
    store.ensure_room(ROOM, "group", created_at=1)
    store.add_messages([msg(author=SELF, seq=s) for s in (1, 2, 3)])
    assert store.heads(ROOM) == {SELF: 3}

    def failing_caller() -> None:
        with store.transaction():
            store.add_messages([msg(author=SELF, seq=4)])
            raise RuntimeError("the caller fails after the insert")

    with pytest.raises(RuntimeError):
        failing_caller()
    assert store.heads(ROOM) == {SELF: 3}
    store.add_messages([msg(author=SELF, seq=6)])
    assert store.heads(ROOM) == {SELF: 3}
    store.add_messages([msg(author=SELF, seq=4)])
    assert store.heads(ROOM) == {SELF: 4}
    store.add_messages([msg(author=SELF, seq=5)])
    assert store.heads(ROOM) == {SELF: 6}


def test_heads_kept_in_memory_always_match_the_file(store: Store) -> None:
    """``heads`` answers from memory once read: every way a head changes (new messages,
    a void skipped, a range deleted, a rolled back batch, a room deleted) must show
    exactly as a fresh read of the file shows it."""
    a, b = peer(1), peer(2)

    def from_file() -> dict[bytes, int]:
        # The store's own connection (another one may not see its WAL), past its caches.
        rows = store._db.execute("SELECT author, seq FROM heads WHERE room = ?", (ROOM,))
        return {bytes(author): int(seq) for author, seq in rows}

    def same() -> None:
        assert store.heads(ROOM) == from_file()

    same()
    store.add_messages([msg(author=a, seq=s) for s in (1, 2, 3)])
    same()
    store.add_messages([msg(author=b, seq=s) for s in range(1, 12)])  # one executemany
    same()
    store.add_messages([msg(author=a, seq=s) for s in (6, 7)])
    store.skip_void(ROOM, a, 4, 5)
    same()
    assert store.heads(ROOM)[a] == 7
    store.delete_seq_range(ROOM, b, 5, 11)
    same()
    assert store.heads(ROOM)[b] == 4

    def rolled_back() -> None:
        with store.transaction():
            store.add_messages([msg(author=b, seq=5)])
            raise RuntimeError("rolled back")

    with pytest.raises(RuntimeError):
        rolled_back()
    same()
    store.heads(ROOM)[a] = 99  # a caller's copy, not the store's
    same()
    store.delete_room(ROOM)
    same()
    assert store.heads(ROOM) == {}


def test_a_rooms_kind_kept_in_memory_goes_with_the_room(store: Store) -> None:
    """``room_kind`` answers from memory once read: a room created in a transaction that
    rolled back, or deleted since, must be unknown again (messages to it refused)."""
    other = b"O" * 16

    def created_then_rolled_back() -> None:
        with store.transaction():
            store.ensure_room(other, "direct", created_at=1)
            assert store.room_kind(other) == "direct"
            raise RuntimeError("rolled back")

    with pytest.raises(RuntimeError):
        created_then_rolled_back()
    assert store.room_kind(other) is None
    with pytest.raises(UnknownRoomError):
        store.add_messages([msg(room=other)])
    assert store.room_kind(ROOM) == "group"
    store.add_messages([msg(seq=1)])
    store.delete_room(ROOM)
    assert store.room_kind(ROOM) is None
    with pytest.raises(UnknownRoomError):
        store.add_messages([msg(seq=2)])


def test_heads_of_a_room_that_does_not_exist_are_not_kept(store: Store) -> None:
    """A peer can name any room id; asking for its heads must not leave a copy behind
    per made-up id (memory a stranger could fill), and a room created later reads true."""
    made_up = [os.urandom(16) for _ in range(50)]
    for room in made_up:
        assert store.heads(room) == {}
    assert not any(room in store._room_heads for room in made_up)  # the cache, no copy
    late = made_up[0]
    store.ensure_room(late, "group", created_at=1)
    store.add_messages([msg(room=late, seq=s) for s in (1, 2)])
    assert store.heads(late) == {peer(1): 2}
