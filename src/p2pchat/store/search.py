"""Full-text search over stored text messages: an SQLite FTS5 index kept by triggers.

The index (``message_search``) is a *contentless* FTS5 table (it keeps no copy of the
text, only the index) whose rowid is the message's rowid. Triggers on ``messages`` keep
it in step with the messages table, whoever changes that table:

* a text message inserted is queued in ``message_search_pending`` (an ordinary table,
  so the queue is as durable as the message); the node indexes the queue in the
  background in steps of :data:`FLUSH_CHARS` characters (``Store.index_queued``), and
  every search first indexes whatever still waits, so a search sees every message.
  Why not index in the inserting transaction: FTS5 writes a segment at every statement
  savepoint and every transaction that touches it (indexing row by row cost 200-400 us
  per message, one message per transaction about 1 ms), and indexing costs about 0.5 ms
  per 1,000 characters, which on the commit path delayed every message during a flood
  of long texts. Only the first :data:`INDEXED_CHARS` characters of a message are
  indexed;
* a message deleted (directly, by ``forget_room``/``delete_room``/``clear_room`` or by the
  cascade of ``DELETE FROM rooms``) leaves the index, or the queue if not indexed yet;
* an ``UPDATE`` of a message's ``body`` or ``kind`` takes the old text out and queues the
  new text (if the row is still ``kind = 'text'``).

So code that edits or deletes a message's text (issue 14, edit/delete) needs nothing
from this module: ``UPDATE messages SET body = ? WHERE id = ?`` (the edited text, or an
empty body for a deleted message) or ``DELETE FROM messages`` through a ``Store`` method
(inside ``Store.transaction``) is enough, and a search never finds the old words again.
Never write to ``message_search`` by hand: a contentless FTS5 table removes a row only
when given exactly the text that was indexed, which the triggers always have
(``old.body``) and nobody else reliably does. Note for security claims: FTS5 removes
words by writing delete markers; the old index pages can stay in the file's free space
until they are reused or the file is vacuumed (the same is true of the message rows
themselves), so "deleted" means "not found by p2pchat", not "forensically erased".
:func:`purge_search_residue` merges the index so no segment still holds the removed
words.

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

import time
from dataclasses import dataclass
from typing import Final

from . import db

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
#: Characters indexed per step of the background indexer (about 5 ms of work; see
#: the module docstring).
FLUSH_CHARS: Final = 8000
#: Only a message's first characters are indexed: trigram indexing costs about 0.5 ms
#: per 1,000 characters, and a flood of 48 KB texts indexed whole would keep the store
#: busy (tests/adversary/test_combined_flood.py).
INDEXED_CHARS: Final = 1000
_FLUSH_ROWS: Final = 500
#: Most results one search returns.
MAX_RESULTS: Final = 500

# The text of a message as the index sees it is its first INDEXED_CHARS characters,
# substr(CAST(body AS TEXT), 1, 1000): the same expression in every statement, so a
# delete always names exactly what was indexed.

_CREATE: Final[tuple[str, ...]] = (
    """
    CREATE VIRTUAL TABLE message_search USING fts5(
        body, content = '', tokenize = 'trigram'
    )
    """,
    # Text messages inserted but not indexed yet (see the module docstring).
    """
    CREATE TABLE message_search_pending (rowid INTEGER PRIMARY KEY)
    """,
    """
    CREATE TRIGGER message_search_insert AFTER INSERT ON messages
    WHEN new.kind = 'text'
    BEGIN
        INSERT OR IGNORE INTO message_search_pending (rowid) VALUES (new.rowid);
    END
    """,
    # Only what was indexed is taken out (a queued row is just dequeued): removing a
    # document a contentless index never held would corrupt it.
    """
    CREATE TRIGGER message_search_delete AFTER DELETE ON messages
    WHEN old.kind = 'text'
    BEGIN
        INSERT INTO message_search (message_search, rowid, body)
        SELECT 'delete', old.rowid, substr(CAST(old.body AS TEXT), 1, 1000)
        WHERE NOT EXISTS (SELECT 1 FROM message_search_pending WHERE rowid = old.rowid);
        DELETE FROM message_search_pending WHERE rowid = old.rowid;
    END
    """,
    # One trigger for both halves, so the old text always leaves before the new enters.
    """
    CREATE TRIGGER message_search_update AFTER UPDATE OF body, kind ON messages
    BEGIN
        INSERT INTO message_search (message_search, rowid, body)
        SELECT 'delete', old.rowid, substr(CAST(old.body AS TEXT), 1, 1000)
        WHERE old.kind = 'text'
        AND NOT EXISTS (SELECT 1 FROM message_search_pending WHERE rowid = old.rowid);
        DELETE FROM message_search_pending WHERE rowid = old.rowid AND new.kind != 'text';
        INSERT OR IGNORE INTO message_search_pending (rowid)
        SELECT new.rowid WHERE new.kind = 'text';
    END
    """,
    # Index what the store already holds (the migration runs on existing stores).
    """
    INSERT INTO message_search (rowid, body)
    SELECT rowid, substr(CAST(body AS TEXT), 1, 1000) FROM messages WHERE kind = 'text'
    """,
)


def flush_search_index(conn: db.Connection, at_least: int = 1, budget: int | None = None) -> None:
    """Index queued messages, oldest first, if at least ``at_least`` wait.

    ``budget`` bounds the characters indexed in this call (at least one message is):
    trigram indexing costs about 0.5 ms per 1,000 characters, so a commit must not take
    on a flood of long texts at once. None indexes the whole queue. Call inside a write
    transaction. ``Store.index_queued`` calls it for the node's background indexer with
    :data:`FLUSH_CHARS`, and ``Store.search_messages`` before each search with no budget.
    """
    waiting = conn.execute(
        "SELECT 1 FROM message_search_pending LIMIT 1 OFFSET ?", (at_least - 1,)
    ).fetchone()
    if waiting is None:
        return
    spent = 0
    while budget is None or spent < budget:
        # The queue first, each message looked up by rowid (never a walk of messages).
        queued = conn.execute(
            "SELECT message_search_pending.rowid,"  # noqa: S608
            f" coalesce(length(substr(CAST(messages.body AS TEXT), 1, {INDEXED_CHARS})), 0)"
            " FROM message_search_pending LEFT JOIN messages"
            " ON messages.rowid = message_search_pending.rowid"
            " ORDER BY message_search_pending.rowid LIMIT ?",
            (_FLUSH_ROWS,),
        ).fetchall()
        if not queued:
            return
        chosen: list[int] = []
        for rowid, chars in queued:
            if chosen and budget is not None and spent + chars > budget:
                break
            chosen.append(int(rowid))
            spent += int(chars)
        marks = ",".join("?" * len(chosen))
        conn.execute(
            "INSERT INTO message_search (rowid, body)"  # noqa: S608
            f" SELECT rowid, substr(CAST(body AS TEXT), 1, {INDEXED_CHARS}) FROM messages"
            f" WHERE rowid IN ({marks}) AND kind = 'text'",
            chosen,
        )
        conn.execute(f"DELETE FROM message_search_pending WHERE rowid IN ({marks})", chosen)  # noqa: S608
        if len(chosen) < len(queued):
            return  # the budget is spent


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


def create_search_index(conn: db.Connection) -> None:
    """Create the index, its triggers, and index every stored text message (a migration).

    Raises db.OperationalError when this SQLite lacks FTS5 or the trigram tokenizer
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
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate: undecodable bytes passed along
        raise SearchQueryError("search text is not valid text (undecodable characters)") from None
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
    conn: db.Connection,
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
    # Any integer may come from the control socket; SQLite's stop at 2**63 - 1.
    before = min(before_rowid, 2**63 - 1) if before_rowid is not None else 2**63 - 1
    if rooms is not None and not rooms:
        return SearchResult((), True)
    try:
        if query.indexed_terms:
            return SearchResult(_indexed(conn, query, rooms, limit, before), True)
        return _scanned(conn, query, rooms, limit, before)
    except db.OperationalError as exc:
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
    conn: db.Connection,
    query: SearchQuery,
    rooms: tuple[bytes, ...] | None,
    limit: int,
    before: int,
) -> tuple[int, ...]:
    sql, params = indexed_sql(query, rooms, limit, before)
    return tuple(int(r[0]) for r in conn.execute(sql, params))


def _scanned(
    conn: db.Connection,
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
    window = SCAN_WINDOW_ROWS
    moved = False  # whether this call has read a window (each call must move on)
    while upper > oldest:
        lower = max(oldest, upper - window)
        params = [upper, lower, *(rooms or ()), *short_params, limit - len(found)]
        hits = _window(conn, sql, params, deadline if moved or window > 1 else None)
        if hits is None:
            # The deadline passed inside the window. A window of 4,000 messages of
            # 64 KB each (peers can send those) takes most of a second to search: the
            # deadline is watched while SQLite reads, not only between windows.
            if moved:
                return SearchResult(tuple(found), complete=False, resume_before=upper)
            # Nothing read yet: a smaller window, with the budget once more, so a call
            # moves on by more than a message (at most three budgets, then one row).
            window = max(1, window // 16)
            deadline = time.monotonic() + SCAN_BUDGET_S
            continue
        moved = True
        found.extend(hits)
        if len(found) >= limit:
            break
        upper = lower
        if upper > oldest and time.monotonic() > deadline:
            return SearchResult(tuple(found), complete=False, resume_before=upper)
    return SearchResult(tuple(found), complete=True)


#: SQLite virtual-machine steps between two looks at a scan's deadline.
SCAN_PROGRESS_STEPS: Final = 100


def _window(
    conn: db.Connection, sql: str, params: list[object], deadline: float | None
) -> list[int] | None:
    """The matches of one scan window, or None when ``deadline`` passed first."""
    if deadline is not None:
        conn.set_progress_handler(lambda: time.monotonic() > deadline, SCAN_PROGRESS_STEPS)
    try:
        return [int(r[0]) for r in conn.execute(sql, params)]
    except db.OperationalError as exc:
        if deadline is not None and "interrupt" in str(exc):
            return None
        raise
    finally:
        if deadline is not None:
            conn.set_progress_handler(None, 0)


def purge_search_residue(conn: db.Connection) -> None:
    """Merge the whole index into one segment, so removed words are gone from it.

    Costly on a big store (it rewrites the index); meant for an explicit clean-up, never
    for every delete.
    """
    conn.execute("INSERT INTO message_search (message_search) VALUES ('optimize')")


__all__ = [
    "FLUSH_CHARS",
    "INDEXED_CHARS",
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
    "flush_search_index",
    "fts_phrase",
    "is_search_table",
    "parse_query",
    "purge_search_residue",
    "search_rowids",
]
