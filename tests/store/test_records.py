"""Peers, addresses, rooms and unread counts, members, settings, receipts, outbox, reactions."""

from __future__ import annotations

from pathlib import Path

import pytest

from p2pchat.store import MessageStatus, Store

from .helpers import ROOM, SELF, msg, peer


def test_settings(store: Store) -> None:
    assert store.get_setting("read_receipts") is None
    assert store.get_setting("read_receipts", "on") == "on"
    store.set_setting("read_receipts", "off")
    store.set_setting("read_receipts", "off2")
    assert store.get_setting("read_receipts", "on") == "off2"
    assert store.delete_setting("read_receipts")
    assert not store.delete_setting("read_receipts")


def test_upsert_peer_changes_only_given_fields(store: Store) -> None:
    p = store.upsert_peer(peer(1), name="alice", last_seen=100)
    assert (p.name, p.state, p.verified, p.first_seen, p.last_seen) == (
        "alice",
        "unknown",
        False,
        100,
        100,
    )
    p = store.upsert_peer(peer(1), state="contact")
    assert (p.name, p.state, p.last_seen) == ("alice", "contact", 100)
    p = store.upsert_peer(peer(1), name="Alice B", last_seen=50)  # stale sighting
    assert (p.name, p.state, p.last_seen, p.first_seen) == ("Alice B", "contact", 100, 100)
    p = store.upsert_peer(peer(1), last_seen=200)
    assert p.last_seen == 200
    assert store.get_peer(peer(9)) is None


def test_peer_state_verified_and_listing(store: Store) -> None:
    store.upsert_peer(peer(2), name="bob")
    store.upsert_peer(peer(1), name="Ålice")
    store.upsert_peer(peer(3))
    assert store.set_peer_state(peer(2), "blocked")
    assert not store.set_peer_state(peer(9), "contact")
    assert store.set_verified(peer(1))
    assert [p.id for p in store.list_peers(state="blocked")] == [peer(2)]
    assert len(store.list_peers()) == 3
    got = store.get_peer(peer(1))
    assert got is not None
    assert got.verified
    store.upsert_peer(peer(4), name="ÅLICE")
    assert {p.id for p in store.find_peers_by_name("ålice")} == {peer(1), peer(4)}
    assert store.find_peers_by_name("carol") == []


def test_addresses(store: Store) -> None:
    store.upsert_peer(peer(1))
    a1 = store.add_address(peer(1), "10.0.0.2", 7000, "mdns")
    assert store.add_address(peer(1), "10.0.0.2", 7000, "mdns") == a1
    manual = store.add_address(None, "10.0.0.9", 7001, "manual")
    assert store.add_address(None, "10.0.0.9", 7001, "manual") == manual  # no NULL dupes
    store.mark_address_ok(peer(1), "10.0.0.3", 7000, at=500)
    store.mark_address_ok(peer(1), "10.0.0.2", 7000, at=400)
    got = store.addresses_for(peer(1))
    assert [(a.host, a.source, a.last_ok) for a in got] == [
        ("10.0.0.3", "last", 500),
        ("10.0.0.2", "mdns", 400),
    ]
    assert [(a.peer_id, a.host, a.port) for a in store.manual_addresses()] == [
        (None, "10.0.0.9", 7001)
    ]
    assert store.remove_address(None, "10.0.0.9", 7001)
    assert not store.remove_address(None, "10.0.0.9", 7001)
    assert store.manual_addresses() == []


def test_manual_source_sticks(store: Store) -> None:
    store.upsert_peer(peer(1))
    store.add_address(peer(1), "h", 1, "manual")
    store.add_address(peer(1), "h", 1, "mdns")
    assert store.addresses_for(peer(1))[0].source == "manual"


def test_rooms(store: Store) -> None:
    assert not store.ensure_room(ROOM, "direct", name="other", created_at=99)
    room = store.get_room(ROOM)
    assert room is not None
    assert (room.kind, room.name, room.owner, room.created_at) == ("group", "team", SELF, 1)
    assert store.set_room_name(ROOM, "renamed")
    assert store.set_room_topic(ROOM, "plans")
    room = store.get_room(ROOM)
    assert room is not None
    assert (room.name, room.topic) == ("renamed", "plans")
    assert store.get_room(b"?" * 16) is None


def test_unread_counts_and_room_list(store: Store) -> None:
    quiet = b"Q" * 16
    store.ensure_room(quiet, "direct", created_at=5)
    other = peer(2)
    store.add_messages([msg(author=other, seq=s, lamport=s) for s in (1, 2, 3)])
    store.add_messages([msg(author=SELF, seq=1, lamport=4, body=b"mine")])
    assert store.unread_count(ROOM) == 3  # our own message is never unread
    latest = store.latest_messages(ROOM)
    assert store.mark_room_read(ROOM, latest[1].rowid)
    assert store.unread_count(ROOM) == 1
    assert not store.mark_room_read(ROOM, latest[0].rowid)  # never backwards
    assert store.unread_count(ROOM) == 1
    summaries = store.list_rooms()
    assert [s.room.id for s in summaries] == [ROOM, quiet]
    top = summaries[0]
    assert top.unread == 1
    assert top.last_message is not None
    assert top.last_message.body == b"mine"
    assert summaries[1].last_message is None
    assert summaries[1].unread == 0
    assert store.unread_count(b"?" * 16) == 0


def test_unread_count_is_capped(store: Store) -> None:
    store.add_messages([msg(author=peer(2), seq=s) for s in range(1, 31)])
    assert store.unread_count(ROOM) == 30
    assert store.unread_count(ROOM, cap=10) == 10
    assert store.list_rooms(unread_cap=5)[0].unread == 5


def test_members(store: Store) -> None:
    store.set_member(ROOM, peer(2), "member", "invited")
    store.set_member(ROOM, SELF, "owner", "joined")
    store.set_member(ROOM, peer(2), "admin", "joined")
    got = store.members(ROOM)
    assert [(m.peer, m.role, m.state) for m in got] == [
        (peer(2), "admin", "joined"),
        (SELF, "owner", "joined"),
    ]
    member = store.get_member(ROOM, peer(2))
    assert member is not None
    assert member.role == "admin"
    assert store.get_member(ROOM, peer(3)) is None


def test_receipts_only_rise(store: Store) -> None:
    m1, m2 = msg(author=SELF, seq=1), msg(author=SELF, seq=2)
    store.add_messages([m1, m2])
    bob = peer(2)
    assert store.record_receipt([m1.id, m2.id], bob, MessageStatus.DELIVERED, at=10) == [
        m1.id,
        m2.id,
    ]
    assert store.record_receipt([m1.id], bob, MessageStatus.DELIVERED, at=11) == []
    assert store.record_receipt([m1.id], bob, MessageStatus.READ, at=12) == [m1.id]
    assert store.record_receipt([m1.id], bob, MessageStatus.DELIVERED, at=13) == []
    assert store.record_receipt([b"\x00" * 16], bob, MessageStatus.READ, at=14) == []
    store.record_receipt([m1.id], peer(3), MessageStatus.DELIVERED, at=15)
    got = store.receipts_for(m1.id)
    assert [(r.peer, r.status, r.at) for r in got] == [(bob, 3, 12), (peer(3), 2, 15)]


def test_outbox_fifo_and_survives_reopen(db_path: Path) -> None:
    bob, carol = peer(2), peer(3)
    with Store.open(db_path) as s:
        ids = [s.enqueue(bob, f"f{i}".encode(), created_at=i) for i in range(5)]
        s.enqueue(carol, b"c0", message_id=b"m" * 16)
        s.enqueue_many([(bob, b"f5", None), (carol, b"c1", None)])
        assert ids == sorted(ids)
    with Store.open(db_path) as s:
        assert [i.frame for i in s.pending_for(bob)] == [f"f{i}".encode() for i in range(6)]
        assert [i.frame for i in s.pending_for(bob, limit=2)] == [b"f0", b"f1"]
        assert s.pending_for(carol)[0].message_id == b"m" * 16
        assert set(s.peers_with_pending()) == {bob, carol}
        first_two = [i.id for i in s.pending_for(bob, limit=2)]
        assert s.bump_attempts(first_two) == 2
        assert [i.attempts for i in s.pending_for(bob)][:3] == [1, 1, 0]
        assert s.remove_outbox(first_two) == 2
        assert s.pending_for(bob)[0].frame == b"f2"
        assert s.remove_outbox(i.id for i in s.pending_for(carol)) == 2
        assert s.peers_with_pending() == [bob]
        # Removed ids are never handed out again.
        new = s.enqueue(bob, b"late")
        assert new > max(first_two)
        assert new not in first_two


def test_remove_many_outbox_rows_in_chunks(store: Store) -> None:
    ids = store.enqueue_many((peer(2), b"x", None) for _ in range(1200))
    assert store.remove_outbox(ids) == 1200


def test_reactions(store: Store) -> None:
    m1, m2 = msg(seq=1), msg(seq=2)
    store.add_messages([m1, m2])
    assert store.add_reaction(m1.id, peer(2), "👍")
    assert not store.add_reaction(m1.id, peer(2), "👍")
    assert store.add_reaction(m1.id, peer(3), "👍")
    assert store.add_reaction(m2.id, peer(2), "🎉")
    got = store.reactions_for([m1.id, m2.id, b"\x00" * 16])
    assert [(r.author, r.emoji) for r in got[m1.id]] == [(peer(2), "👍"), (peer(3), "👍")]
    assert [r.emoji for r in got[m2.id]] == ["🎉"]
    assert b"\x00" * 16 not in got
    assert store.remove_reaction(m1.id, peer(2), "👍")
    assert not store.remove_reaction(m1.id, peer(2), "👍")
    assert len(store.reactions_for([m1.id])[m1.id]) == 1


@pytest.mark.parametrize("bad", ["nobody", "friend"])
def test_check_constraints_reject_unknown_states(store: Store, bad: str) -> None:
    from p2pchat.store import db

    store.upsert_peer(peer(1))
    with pytest.raises(db.IntegrityError):
        store.set_peer_state(peer(1), bad)  # type: ignore[arg-type]


def test_prune_strangers_keeps_the_newest_and_never_touches_contacts(store: Store) -> None:
    for i in range(10):
        store.upsert_peer(peer(i), name=f"stranger {i}", last_seen=1000 + i)
        store.add_address(peer(i), "10.0.0.1", 4000 + i, "last")
    store.upsert_peer(peer(50), state="contact", last_seen=1)
    store.upsert_peer(peer(51), state="blocked", last_seen=1)
    store.upsert_peer(peer(52), state="request", last_seen=1)
    assert store.prune_strangers(3) == 7
    left = {p.id for p in store.list_peers()}
    assert left == {peer(9), peer(8), peer(7), peer(50), peer(51), peer(52)}
    assert store.addresses_for(peer(0)) == []
    assert len(store.addresses_for(peer(9))) == 1
