"""Full-text search over stored text messages: an SQLite FTS5 index kept by triggers.

The index (``message_search``) is a *contentless* FTS5 table (it keeps no copy of the
text, only the index) whose rowid is the message's rowid. Three triggers on ``messages``
are its only writers, so it can never disagree with the messages table:

* a text message inserted is indexed;
* a message deleted (directly, by ``forget_room``/``delete_room`` or by the cascade of
  ``DELETE FROM rooms``) leaves the index;
* an ``UPDATE`` of a message's ``body`` or ``kind`` re-indexes it: the old text leaves the
  index and the new text (if the row is still ``kind = 'text'``) enters it.

So code that edits or deletes a message's text (issue 14, edit/delete) needs nothing
from this module: ``UPDATE messages SET body = ? WHERE id = ?`` (the edited text, or an
empty body for a deleted message) or ``DELETE FROM messages`` is enough, and a search
never finds the old words again. Never write to ``message_search`` by hand: a contentless
FTS5 table removes a row only when given exactly the text that was indexed, which the
triggers always have (``old.body``) and nobody else reliably does. Note for security
claims: FTS5 removes words by writing delete markers; the old index pages can stay in
the file's free space until they are reused or the file is vacuumed (the same is true
of the message rows themselves), so "deleted" means "not found by p2pchat", not
"forensically erased". :func:`purge_search_residue` merges the index so no segment
still holds the removed words.

Why the **trigram** tokenizer: chat text is searched for substrings ("mee" should find
"meeting"), and scripts written without spaces (Chinese, Japanese, Thai) have no word
boundaries a word tokenizer could use, so a word index would find "東京" in "東京に行く"
never. Trigrams index every 3-character window, which makes any substring of three or
more characters a phrase query on the index, in every script, case-insensitively. The
cost is a larger index (about the size of the text again); the benchmark in
``bench/store.py`` measures it. A term of one or two characters cannot use a trigram
index; those queries scan messages newest first for at most :data:`SCAN_BUDGET_S` seconds
(and say in their result where they stopped, so the person can go on), which bounds their
time. Such short terms fold ASCII case
only (SQLite's ``lower()``); CJK, where two-character words are common, has no case.

User input is never FTS5 syntax: each whitespace-separated term is quoted as an FTS5
phrase (``"`` doubled inside), so ``AND``, ``NEAR(``, ``*`` or a stray quote are just
text to find. Any FTS5 error that still occurs becomes :class:`SearchQueryError`.
"""

from __future__ import annotations

import sqlite3
import time
from dataclasses import dataclass
from typing import Final

#: The FTS5 table; its shadow tables are ``message_search_*``.
SEARCH_TABLE: Final = "message_search"
#: Shortest term the trigram index can answer; shorter terms are found by a bounded scan.
MIN_INDEXED_CHARS: Final = 3
#: A query made only of 1- or 2-character terms reads messages newest first, this many
#: arrivals per step, and stops after a step that ends past this time budget (seconds).
SCAN_WINDOW_ROWS: Final = 4_000
SCAN_BUDGET_S: Final = 0.03
#: Longest query accepted, in characters, and most terms in one query.
MAX_QUERY_CHARS: Final = 200
MAX_QUERY_TERMS: Final = 8
#: Most results one search returns.
MAX_RESULTS: Final = 500

# The text of a message as the index sees it is CAST(body AS TEXT): the same expression
# on old.* and new.* in every trigger, so a delete always names exactly what was indexed.

_CREATE: Final[tuple[str, ...]] = (
    """
    CREATE VIRTUAL TABLE message_search USING fts5(
        body, content = '', tokenize = 'trigram'
    )
    """,
    """
    CREATE TRIGGER message_search_insert AFTER INSERT ON messages
    WHEN new.kind = 'text'
    BEGIN
        INSERT INTO message_search (rowid, body) VALUES (new.rowid, CAST(new.body AS TEXT));
    END
    """,
    """
    CREATE TRIGGER message_search_delete AFTER DELETE ON messages
    WHEN old.kind = 'text'
    BEGIN
        INSERT INTO message_search (message_search, rowid, body)
        VALUES ('delete', old.rowid, CAST(old.body AS TEXT));
    END
    """,
    # One trigger for both halves, so the old text always leaves before the new enters.
    """
    CREATE TRIGGER message_search_update AFTER UPDATE OF body, kind ON messages
    BEGIN
        INSERT INTO message_search (message_search, rowid, body)
        SELECT 'delete', old.rowid, CAST(old.body AS TEXT) WHERE old.kind = 'text';
        INSERT INTO message_search (rowid, body)
        SELECT new.rowid, CAST(new.body AS TEXT) WHERE new.kind = 'text';
    END
    """,
    # Index what the store already holds (the migration runs on existing stores).
    """
    INSERT INTO message_search (rowid, body)
    SELECT rowid, CAST(body AS TEXT) FROM messages WHERE kind = 'text'
    """,
)


class SearchQueryError(ValueError):
    """A query that cannot be run; the message says why, in words for the person."""


@dataclass(frozen=True, slots=True)
class SearchQuery:
    """A person's query split into terms; every term must occur in a hit (any order)."""

    terms: tuple[str, ...]

    @property
    def indexed_terms(self) -> tuple[str, ...]:
        """Terms long enough for the trigram index."""
        return tuple(t for t in self.terms if len(t) >= MIN_INDEXED_CHARS)

    @property
    def short_terms(self) -> tuple[str, ...]:
        """Terms of one or two characters, checked row by row."""
        return tuple(t for t in self.terms if len(t) < MIN_INDEXED_CHARS)


@dataclass(frozen=True, slots=True)
class SearchResult:
    """Rowids of the matching messages, newest arrival first.

    ``complete`` is False when a short-term query spent its time budget before reaching
    the oldest message; the caller says so to the person and may go on.
    """

    rowids: tuple[int, ...]
    complete: bool
    #: When not complete: pass this as ``before_rowid`` to search the older messages.
    resume_before: int | None = None


def create_search_index(conn: sqlite3.Connection) -> None:
    """Create the index, its triggers, and index every stored text message (a migration).

    Raises sqlite3.OperationalError when this SQLite lacks FTS5 or the trigram tokenizer
    (SQLite 3.34 or newer is needed).
    """
    for statement in _CREATE:
        conn.execute(statement)


def is_search_table(name: str) -> bool:
    """Whether ``name`` is the index or one of its shadow tables: derived data, which a
    store rebuild must not copy row by row (the triggers rebuild it from the messages)."""
    return name == SEARCH_TABLE or name.startswith(SEARCH_TABLE + "_")


def parse_query(text: str) -> SearchQuery:
    """Split a person's query into terms; raise SearchQueryError for an unusable one."""
    if len(text) > MAX_QUERY_CHARS:
        raise SearchQueryError(f"search text is too long (at most {MAX_QUERY_CHARS} characters)")
    if "\x00" in text:
        raise SearchQueryError("search text must not contain a NUL character")
    terms = tuple(dict.fromkeys(text.split()))
    if not terms:
        raise SearchQueryError("search text is empty")
    if len(terms) > MAX_QUERY_TERMS:
        raise SearchQueryError(f"too many words to search for (at most {MAX_QUERY_TERMS})")
    return SearchQuery(terms)


def fts_phrase(term: str) -> str:
    """``term`` as an FTS5 string (a phrase): never read as query syntax."""
    return '"' + term.replace('"', '""') + '"'


def contains_all(text: str, terms: tuple[str, ...]) -> bool:
    """Whether ``text`` holds every term, ignoring case (as the trigram index does)."""
    folded = text.casefold()
    return all(t.casefold() in folded for t in terms)


def _short_clause(terms: tuple[str, ...], column: str) -> tuple[str, list[object]]:
    """SQL that keeps rows holding every short term, and its parameters.

    ``instr`` on SQLite's ``lower()`` runs in C (a Python function per row was ten times
    slower); ``lower()`` folds ASCII only, so outside ASCII a short term matches its
    exact case (CJK has none).
    """
    sql = "".join(f" AND instr(lower(CAST({column} AS TEXT)), ?) > 0" for _ in terms)
    return sql, [t.lower() if t.isascii() else t for t in terms]


def search_rowids(
    conn: sqlite3.Connection,
    query: SearchQuery,
    *,
    rooms: tuple[bytes, ...] | None = None,
    limit: int = 50,
    before_rowid: int | None = None,
) -> SearchResult:
    """The newest ``limit`` text messages matching ``query``, optionally within ``rooms``.

    ``before_rowid`` pages back: only messages that arrived before that one.
    """
    limit = max(1, min(limit, MAX_RESULTS))
    before = before_rowid if before_rowid is not None else 2**63 - 1
    if rooms is not None and not rooms:
        return SearchResult((), True)
    try:
        if query.indexed_terms:
            return SearchResult(_indexed(conn, query, rooms, limit, before), True)
        return _scanned(conn, query, rooms, limit, before)
    except sqlite3.OperationalError as exc:
        if "fts5" in str(exc).lower():
            raise SearchQueryError(f"cannot search for that: {exc}") from None
        raise


def _room_clause(rooms: tuple[bytes, ...] | None, column: str = "messages.room") -> str:
    if rooms is None:
        return ""
    return f" AND {column} IN ({','.join('?' * len(rooms))})"


def indexed_sql(
    query: SearchQuery, rooms: tuple[bytes, ...] | None, limit: int, before: int
) -> tuple[str, list[object]]:
    """The statement (and its parameters) for a query with indexed terms; tests read its plan."""
    # CROSS JOIN keeps the index first: FTS5 hands out matches newest first and the
    # LIMIT stops the walk, instead of visiting every message of a room.
    match = " ".join(fts_phrase(t) for t in query.indexed_terms)
    short, short_params = _short_clause(query.short_terms, "messages.body")
    sql = (
        f"SELECT messages.rowid FROM {SEARCH_TABLE} CROSS JOIN messages"  # noqa: S608
        " ON messages.rowid = message_search.rowid"
        f" WHERE {SEARCH_TABLE} MATCH ? AND message_search.rowid < ?"
        f"{_room_clause(rooms)}{short}"
        " ORDER BY message_search.rowid DESC LIMIT ?"
    )
    return sql, [match, before, *(rooms or ()), *short_params, limit]


def _indexed(
    conn: sqlite3.Connection,
    query: SearchQuery,
    rooms: tuple[bytes, ...] | None,
    limit: int,
    before: int,
) -> tuple[int, ...]:
    sql, params = indexed_sql(query, rooms, limit, before)
    return tuple(int(r[0]) for r in conn.execute(sql, params))


def _scanned(
    conn: sqlite3.Connection,
    query: SearchQuery,
    rooms: tuple[bytes, ...] | None,
    limit: int,
    before: int,
) -> SearchResult:
    # Windows of SCAN_WINDOW_ROWS arrivals, newest first, until the page is full, the
    # oldest message is passed, or the time budget is spent (then the caller may go on
    # from ``resume_before``). Each window is a rowid range: one index range per room.
    short, short_params = _short_clause(query.short_terms, "body")
    rooms_sql = _room_clause(rooms, "room")
    sql = (
        "SELECT rowid FROM messages"  # noqa: S608
        f" WHERE rowid < ? AND rowid >= ? AND kind = 'text'{rooms_sql}{short}"
        " ORDER BY rowid DESC LIMIT ?"
    )
    # Two subqueries: SQLite answers a lone min() or max() from the b-tree's edge, but
    # both in one SELECT scan the whole table.
    oldest, newest = conn.execute(
        "SELECT coalesce((SELECT min(rowid) FROM messages), 0),"
        " coalesce((SELECT max(rowid) FROM messages), 0)"
    ).fetchone()
    oldest = int(oldest)
    deadline = time.monotonic() + SCAN_BUDGET_S
    found: list[int] = []
    upper = min(before, int(newest) + 1)
    while upper > oldest:
        lower = max(oldest, upper - SCAN_WINDOW_ROWS)
        params = [upper, lower, *(rooms or ()), *short_params, limit - len(found)]
        found.extend(int(r[0]) for r in conn.execute(sql, params))
        if len(found) >= limit:
            break
        upper = lower
        if upper > oldest and time.monotonic() > deadline:
            return SearchResult(tuple(found), complete=False, resume_before=upper)
    return SearchResult(tuple(found), complete=True)


def purge_search_residue(conn: sqlite3.Connection) -> None:
    """Merge the whole index into one segment, so removed words are gone from it.

    Costly on a big store (it rewrites the index); meant for an explicit clean-up, never
    for every delete.
    """
    conn.execute("INSERT INTO message_search (message_search) VALUES ('optimize')")


__all__ = [
    "MAX_QUERY_CHARS",
    "MAX_QUERY_TERMS",
    "MAX_RESULTS",
    "MIN_INDEXED_CHARS",
    "SCAN_BUDGET_S",
    "SCAN_WINDOW_ROWS",
    "SEARCH_TABLE",
    "SearchQuery",
    "SearchQueryError",
    "SearchResult",
    "contains_all",
    "create_search_index",
    "fts_phrase",
    "is_search_table",
    "parse_query",
    "purge_search_residue",
    "search_rowids",
]
