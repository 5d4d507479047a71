"""Message search (issue 14, item 1): the FTS5 trigram index on real store files.

The index is kept by triggers on ``messages``, so every way a message's text leaves the
store (delete, edit of the body, a forgotten or cleared room) leaves the index too.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from p2pchat.store import MIGRATIONS, NewMessage, SearchQueryError, Store, db
from p2pchat.store import search as search_mod
from p2pchat.store.recovery import rebuild_into

from .helpers import ROOM, SELF, msg, peer

OTHER = b"O" * 16


def texts(store: Store, query: str, **kw: object) -> list[str]:
    found, _complete = store.search_messages(query, **kw)  # type: ignore[arg-type]
    return [m.body.decode() for m in found]


def add(store: Store, *bodies: str, room: bytes = ROOM, author: bytes = b"") -> None:
    start = store.next_seq(room, author or peer(1))
    store.add_messages(
        [
            msg(room=room, author=author, seq=start + i, body=b.encode())
            for i, b in enumerate(bodies)
        ]
    )


def test_finds_substrings_in_any_case_newest_first(store: Store) -> None:
    add(store, "Meeting at noon", "no match here", "the MEETING moved", "meet me")
    assert texts(store, "meeting") == ["the MEETING moved", "Meeting at noon"]
    assert texts(store, "eetin") == ["the MEETING moved", "Meeting at noon"]


def test_finds_chinese_and_japanese_without_spaces(store: Store) -> None:
    add(store, "明天我们去东京旅行", "東京に行きたいです", "大阪で会いましょう")
    assert texts(store, "东京旅") == ["明天我们去东京旅行"]
    assert texts(store, "に行き") == ["東京に行きたいです"]
    # Two characters are below the trigram size: found by the bounded scan.
    assert texts(store, "東京") == ["東京に行きたいです"]
    assert texts(store, "大阪") == ["大阪で会いましょう"]


def test_every_word_must_occur_in_any_order(store: Store) -> None:
    add(store, "lunch with alice on friday", "friday lunch", "alice says hi")
    assert texts(store, "alice friday") == ["lunch with alice on friday"]
    assert texts(store, "hi alice") == ["alice says hi"]  # a long and a short word


@pytest.mark.parametrize(
    "query",
    ['"', 'say "hi', "AND", "OR NOT", "NEAR(a b)", "a*", "body:x", "^start", "(((", "-x", "+"],
)
def test_query_syntax_from_the_person_is_only_text(store: Store, query: str) -> None:
    add(store, f"literally {query} here", "something else")
    found = texts(store, query)
    assert found == [f"literally {query} here"]


def test_unusable_queries_get_a_clear_error(store: Store) -> None:
    for query, words in (("", "empty"), ("   ", "empty"), ("x" * 201, "too long")):
        with pytest.raises(SearchQueryError, match=words):
            store.search_messages(query)
    with pytest.raises(SearchQueryError, match="too many"):
        store.search_messages(" ".join(f"w{i}" for i in range(9)))


def test_room_filter_and_paging(store: Store) -> None:
    store.ensure_room(OTHER, "group", created_at=1)
    add(store, "apple one", "apple two", "apple three")
    add(store, "apple elsewhere", room=OTHER)
    assert texts(store, "apple", rooms=[OTHER]) == ["apple elsewhere"]
    assert texts(store, "apple", rooms=[ROOM]) == ["apple three", "apple two", "apple one"]
    assert texts(store, "apple", rooms=[]) == []
    first, _ = store.search_messages("apple", limit=2)
    assert [m.body for m in first] == [b"apple elsewhere", b"apple three"]
    rest, _ = store.search_messages("apple", before_rowid=first[-1].rowid)
    assert [m.body for m in rest] == [b"apple two", b"apple one"]


def test_only_text_messages_are_indexed(store: Store) -> None:
    row = msg(seq=1, body=b"secret manifest words")
    store.add_messages([NewMessage(**{**_fields(row), "kind": "file"})])
    store.add_messages([NewMessage(**{**_fields(msg(seq=2, body=b"words")), "kind": "reaction"})])
    assert texts(store, "words") == []


def _fields(m: NewMessage) -> dict[str, object]:
    return {f: getattr(m, f) for f in m.__dataclass_fields__}


def test_deleted_or_edited_text_leaves_the_index(store: Store) -> None:
    """The contract h-edit relies on: plain SQL on messages keeps the index right."""
    add(store, "password is hunter2", "keep this hunter2 note", "edit me banana")

    def sql(statement: str, *params: object) -> None:
        with store.transaction():  # as a Store method would run it
            store._db.execute(statement, params)

    sql("DELETE FROM messages WHERE body = ?", b"password is hunter2")
    assert texts(store, "hunter2") == ["keep this hunter2 note"]
    sql("UPDATE messages SET body = ? WHERE body = ?", b"now cherry", b"edit me banana")
    assert texts(store, "banana") == []
    assert texts(store, "cherry") == ["now cherry"]
    sql("UPDATE messages SET body = x'' WHERE body = ?", b"now cherry")
    assert texts(store, "cherry") == []
    store.purge_search_residue()
    assert texts(store, "hunter2") == ["keep this hunter2 note"]
    assert _index_is_sound(store)


def test_a_message_changed_before_its_commit_is_indexed_as_it_ends(store: Store) -> None:
    """Rows still queued for the index (same transaction) are edited or deleted safely."""
    with store.transaction():
        add(store, "first draft fig", "to be deleted fig", "becomes a file fig")
        store._db.execute(
            "UPDATE messages SET body = ? WHERE body = ?", (b"final fig", b"first draft fig")
        )
        store._db.execute("DELETE FROM messages WHERE body = ?", (b"to be deleted fig",))
        store._db.execute(
            "UPDATE messages SET kind = 'file' WHERE body = ?", (b"becomes a file fig",)
        )
    assert texts(store, "fig") == ["final fig"]
    assert texts(store, "draft") == []
    assert _index_is_sound(store)


def test_the_queue_is_indexed_in_steps_of_bounded_work(store: Store) -> None:
    """Indexing row by row made FTS5 write a segment per message, and indexing in the
    inserting commit delayed every message in a flood of long texts (store/search.py)."""
    assert f"1, {search_mod.INDEXED_CHARS})" in " ".join(search_mod._CREATE)  # one expression
    n = 200
    store.add_messages([msg(seq=i + 1, body=f"batch word {i}".encode()) for i in range(n)])
    assert _queued(store) == n  # the inserting commit did no indexing
    while store.index_queued(search_mod.FLUSH_CHARS):
        pass
    assert _queued(store) == 0
    segments = store._db.execute(
        "SELECT count(*) FROM message_search_data WHERE id > 10"
    ).fetchone()[0]
    assert segments <= 4  # row by row left 11 (segments merged in steps)
    assert len(texts(store, "batch word", limit=500)) == n


def test_long_texts_are_indexed_by_their_start_in_bounded_steps(store: Store) -> None:
    start = search_mod.INDEXED_CHARS
    long = "x" * (start - 20) + " early word " + "y" * 40_000 + " late word"
    store.add_messages([msg(seq=i + 1, body=long.encode()) for i in range(40)])
    assert store.index_queued(search_mod.FLUSH_CHARS)  # more is left for later steps
    done = 40 - _queued(store)
    assert 1 <= done <= search_mod.FLUSH_CHARS // start
    assert len(texts(store, "early word", limit=500)) == 40  # a search indexes the rest
    assert texts(store, "late word") == []  # past the indexed start
    with store.transaction():
        store._db.execute("DELETE FROM messages WHERE rowid % 2 = 0")
    assert len(texts(store, "early word", limit=500)) == 20
    assert _index_is_sound(store)


def test_single_messages_wait_in_the_queue_and_a_search_finds_them(store: Store) -> None:
    for i in range(3):
        add(store, f"one by one {i}")  # one transaction each, like sends
    assert _queued(store) == 3
    assert texts(store, "one by") == ["one by one 2", "one by one 1", "one by one 0"]
    assert _queued(store) == 0


def _queued(store: Store) -> int:
    return int(store._db.execute("SELECT count(*) FROM message_search_pending").fetchone()[0])


def test_forgetting_or_clearing_a_room_leaves_the_index(store: Store) -> None:
    store.ensure_room(OTHER, "direct", created_at=1)
    add(store, "orange group")
    add(store, "orange direct", room=OTHER)
    store.clear_room(OTHER)
    assert texts(store, "orange") == ["orange group"]
    store.delete_room(ROOM)  # DELETE FROM rooms: the messages go by ON DELETE CASCADE
    assert texts(store, "orange") == []
    assert _index_is_sound(store)


def _index_is_sound(store: Store) -> bool:
    """FTS5's own check: the index agrees with what the triggers fed it."""
    try:
        store._db.execute(
            "INSERT INTO message_search (message_search, rank) VALUES ('integrity-check', 0)"
        )
    except db.DatabaseError:
        return False
    return True


def test_migration_indexes_messages_an_older_store_holds(db_path: Path) -> None:
    adds_search = next(i for i, m in enumerate(MIGRATIONS) if "search" in (m.__doc__ or ""))
    with Store.open(db_path, self_id=SELF, migrations=MIGRATIONS[:adds_search]) as old:
        old.ensure_room(ROOM, "group", created_at=1)
        # As an older p2pchat wrote it: its own columns, not this code's insert.
        m = msg(seq=1, body="older 东京旅行 words".encode())
        old._db.execute(
            "INSERT INTO messages (id, room, author, seq, lamport, sent_at, received_at, kind,"
            " body, sig) VALUES (?, ?, ?, ?, ?, 0, 0, 'text', ?, ?)",
            (m.id, m.room, m.author, m.seq, m.lamport, m.body, m.sig),
        )
    with Store.open(db_path, self_id=SELF) as store:
        assert texts(store, "东京旅") == ["older 东京旅行 words"]
        add(store, "newer words")
        assert texts(store, "words") == ["newer words", "older 东京旅行 words"]


def test_rebuilt_store_searches_like_the_original(db_path: Path, tmp_path: Path) -> None:
    with Store.open(db_path, self_id=SELF) as store:
        store.ensure_room(ROOM, "group", created_at=1)
        add(store, "salvaged kiwi", "another kiwi")
        store._db.execute("DELETE FROM messages WHERE body = ?", (b"another kiwi",))
    fresh = tmp_path / "fresh.sqlite"
    rebuild_into(db_path, fresh, MIGRATIONS)
    with Store.open(fresh, self_id=SELF) as rebuilt:
        assert texts(rebuilt, "kiwi") == ["salvaged kiwi"]
        assert _index_is_sound(rebuilt)


def test_short_words_scan_within_a_time_budget_and_can_go_on(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(search_mod, "SCAN_WINDOW_ROWS", 5)
    monkeypatch.setattr(search_mod, "SCAN_BUDGET_S", 0.0)  # one window per call
    add(store, "ab old", *(f"filler {i}" for i in range(12)))
    found, resume = store.search_messages("ab")
    assert found == []
    assert resume is not None  # it stopped before the oldest message
    seen: list[bytes] = []
    while resume is not None:
        found, resume = store.search_messages("ab", before_rowid=resume)
        seen.extend(m.body for m in found)
    assert seen == [b"ab old"]
    found, resume = store.search_messages("ab old")  # "old" can use the index
    assert [m.body for m in found] == [b"ab old"]
    assert resume is None


def test_short_words_fold_ascii_case(store: Store) -> None:
    add(store, "OK then", "ok", "東京")
    assert texts(store, "Ok") == ["ok", "OK then"]


def test_searches_use_the_index_not_a_scan_of_messages(store: Store) -> None:
    add(store, *(f"message number {i}" for i in range(300)))
    store._db.execute("ANALYZE")
    query = search_mod.parse_query("number 17")
    for rooms in (None, (ROOM,)):
        sql, params = search_mod.indexed_sql(query, rooms, 5, 2**62)
        plan = " | ".join(store.explain(sql, params))
        assert "VIRTUAL TABLE INDEX" in plan, plan
        assert "SCAN messages" not in plan, plan
        assert "TEMP B-TREE" not in plan, plan


def test_short_word_scan_stops_at_its_deadline_inside_a_window_of_huge_messages(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A window of 4,000 messages of 64 KB each is 256 MB to fold and search (0.9 s
    here): the deadline must be watched while SQLite reads a window, not only between
    windows. With no time budget at all, a call stops inside the first window (yet
    always moves on), and going on finds the match exactly once."""
    monkeypatch.setattr(search_mod, "SCAN_BUDGET_S", 0.0)
    big = "x" * 65_000
    add(store, "ab " + big, *(big for _ in range(59)))
    found, resume = store.search_messages("ab")
    assert found == []
    assert resume is not None  # stopped inside the one window that holds them all
    calls = 1
    seen: list[bytes] = []
    while resume is not None:
        before = resume
        found, resume = store.search_messages("ab", before_rowid=resume)
        assert resume is None or resume < before  # every call made progress
        seen.extend(m.body for m in found)
        calls += 1
    assert seen == [("ab " + big).encode()]
    assert calls > 2


def test_text_that_is_not_unicode_and_a_page_mark_past_any_rowid_are_answered(
    store: Store,
) -> None:
    """A query from the control socket can hold a lone surrogate (undecodable bytes in
    argv arrive so) and ``before`` any integer: a sentence or an answer, never an
    encoding or overflow error."""
    add(store, "abc def")
    for query in ("abc\udcff", "a\udcff"):
        with pytest.raises(SearchQueryError, match="not valid text"):
            store.search_messages(query)
    for query in ("abc", "ab"):
        found, _ = store.search_messages(query, before_rowid=2**70)
        assert [m.body for m in found] == [b"abc def"]
