"""Group envelopes' deps live in their message rows: stores that kept them in a table
of their own are moved on open, and salvaged from it when damaged."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from p2pchat.store import MIGRATIONS, NewMessage, Store, db
from p2pchat.store.recovery import rebuild_into

from .helpers import ROOM, SELF, msg
from .test_integrity import overwrite_page, pages_of

DEPS = bytes(range(32))  # two 16-byte ids of membership operations


def _write_as_older(
    path: Path, rows: list[NewMessage], with_deps: list[NewMessage], head: int = 0
) -> None:
    """Write ``rows`` as the p2pchat before the move did: the message columns of then,
    and the deps of ``with_deps`` in envelope_deps (and the author's head, if given)."""
    with Store.open(path, self_id=SELF, migrations=MIGRATIONS[:-1]) as old:
        old.ensure_room(ROOM, "group", created_at=1)
        for m in rows:
            old._db.execute(
                "INSERT INTO messages (id, room, author, seq, lamport, sent_at, received_at,"
                " kind, body, sig) VALUES (?, ?, ?, ?, ?, 0, 0, 'text', ?, ?)",
                (m.id, m.room, m.author, m.seq, m.lamport, m.body, m.sig),
            )
        for m in with_deps:
            old._db.execute(
                "INSERT INTO envelope_deps (message_id, deps) VALUES (?, ?)", (m.id, DEPS)
            )
        if head:
            old._db.execute(
                "INSERT INTO heads (room, author, seq) VALUES (?, ?, ?)", (ROOM, msg().author, head)
            )


def _older_store(path: Path) -> tuple[bytes, bytes]:
    """One group message with deps (in envelope_deps), one direct-style message without,
    as the p2pchat before the move wrote them. Returns their ids."""
    with_deps, without = msg(seq=1), msg(seq=2)
    _write_as_older(path, [with_deps, without], [with_deps])
    return with_deps.id, without.id


def _tables(store: Store) -> set[str]:
    rows = store._db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
    return {str(r[0]) for r in rows}


def test_opening_an_older_store_moves_each_deps_into_its_message_row(db_path: Path) -> None:
    with_deps, without = _older_store(db_path)
    with Store.open(db_path, self_id=SELF) as store:
        assert "envelope_deps" not in _tables(store)
        got = {m.id: m.deps for m in store.get_messages([with_deps, without])}
        assert got == {with_deps: DEPS, without: None}
        assert [m.deps for m in store.messages_by_seq(ROOM, msg().author, 1, 3)] == [DEPS, None]


def test_new_messages_keep_their_deps_in_the_row_and_read_back(db_path: Path) -> None:
    with Store.open(db_path, self_id=SELF) as store:
        store.ensure_room(ROOM, "group", created_at=1)
        one = dataclasses.replace(msg(seq=1), deps=DEPS)
        many = [dataclasses.replace(msg(seq=s), deps=DEPS[:16]) for s in range(2, 12)]
        store.add_messages([one])
        store.add_messages(many)  # the executemany path
        stored = {m.id: m.deps for m in store.get_messages([one.id, *(m.id for m in many)])}
        assert stored == {one.id: DEPS, **{m.id: DEPS[:16] for m in many}}


def test_salvaging_a_damaged_older_store_keeps_the_deps(db_path: Path, tmp_path: Path) -> None:
    with_deps, without = _older_store(db_path)
    fresh = tmp_path / "fresh.sqlite"
    report = rebuild_into(db_path, fresh, MIGRATIONS)
    assert report.lossless
    assert report.table("envelope_deps") is not None
    conn = db.connect(fresh, None)
    try:
        rows = dict(conn.execute("SELECT id, deps FROM messages").fetchall())
    finally:
        conn.close()
    assert rows == {with_deps: DEPS, without: None}


def test_deps_lost_with_a_damaged_older_table_drop_their_messages_to_fetch_again(
    db_path: Path, tmp_path: Path
) -> None:
    rows = [msg(seq=s) for s in range(1, 3001)]
    _write_as_older(db_path, rows, rows, head=3000)
    pages = pages_of(db_path, "envelope_deps")
    assert len(pages) > 4
    overwrite_page(db_path, pages[len(pages) // 2])

    report = rebuild_into(db_path, tmp_path / "fresh.sqlite", MIGRATIONS)

    deps = report.table("envelope_deps")
    assert deps is not None
    assert deps.damaged
    assert deps.orphans > 0
    conn = db.connect(tmp_path / "fresh.sqlite", None)
    try:
        kept = conn.execute("SELECT seq, deps FROM messages ORDER BY seq").fetchall()
        row = conn.execute("SELECT seq FROM heads").fetchone()
    finally:
        conn.close()
    assert all(d == DEPS for _, d in kept)  # none is left without its deps
    assert len(kept) == 3000 - deps.orphans
    first_lost = min(set(range(1, 3001)) - {s for s, _ in kept})
    # The others send the rest again. (Ids are random: the damaged page may hold seq 1's
    # deps, and a head of 0 is no row at all.)
    assert (row[0] if row is not None else 0) == first_lost - 1
