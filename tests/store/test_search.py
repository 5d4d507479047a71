"""Message search (issue 14, item 1): the FTS5 trigram index on real store files.

The index is kept by triggers on ``messages``, so every way a message's text leaves the
store (delete, edit of the body, a forgotten or cleared room) leaves the index too.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from p2pchat.store import MIGRATIONS, NewMessage, SearchQueryError, Store
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
    store._db.execute("DELETE FROM messages WHERE body = ?", (b"password is hunter2",))
    assert texts(store, "hunter2") == ["keep this hunter2 note"]
    store._db.execute(
        "UPDATE messages SET body = ? WHERE body = ?", (b"now cherry", b"edit me banana")
    )
    assert texts(store, "banana") == []
    assert texts(store, "cherry") == ["now cherry"]
    store._db.execute("UPDATE messages SET body = x'' WHERE body = ?", (b"now cherry",))
    assert texts(store, "cherry") == []
    store.purge_search_residue()
    assert texts(store, "hunter2") == ["keep this hunter2 note"]
    assert _index_is_sound(store)


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
    except sqlite3.DatabaseError:
        return False
    return True


def test_migration_indexes_messages_an_older_store_holds(db_path: Path) -> None:
    adds_search = next(i for i, m in enumerate(MIGRATIONS) if "search" in (m.__doc__ or ""))
    with Store.open(db_path, self_id=SELF, migrations=MIGRATIONS[:adds_search]) as old:
        old.ensure_room(ROOM, "group", created_at=1)
        old.add_messages([msg(seq=1, body="older 东京旅行 words".encode())])
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
