"""store/db.py: APSW behind the DB-API calls the store makes, with DB-API errors.

The store's code was written against the standard sqlite3 module; these tests pin the
parts of that contract it relies on (error classes and messages, rowcount, lastrowid,
lazy rows, transactions, the progress handler, backup) on real files.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from p2pchat.store import db

KEY = bytes(range(32))


@pytest.fixture
def conn(tmp_path: Path) -> db.Connection:
    c = db.connect(tmp_path / "t.sqlite", None)
    c.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT UNIQUE, n INTEGER CHECK (n >= 0))")
    return c


def test_a_broken_constraint_is_an_integrity_error_with_sqlites_message(
    conn: db.Connection,
) -> None:
    conn.execute("INSERT INTO t (v, n) VALUES ('a', 1)")
    with pytest.raises(db.IntegrityError, match=r"UNIQUE constraint failed: t\.v"):
        conn.execute("INSERT INTO t (v, n) VALUES ('a', 2)")
    with pytest.raises(db.IntegrityError, match="CHECK constraint failed"):
        conn.execute("INSERT INTO t (v, n) VALUES ('b', -1)")
    assert issubclass(db.IntegrityError, db.DatabaseError)


def test_an_sql_error_is_operational_and_a_wrong_key_a_database_error(tmp_path: Path) -> None:
    c = db.connect(tmp_path / "e.sqlite", KEY)
    c.execute("CREATE TABLE x (a)")
    with pytest.raises(db.OperationalError, match="no such table: nope"):
        c.execute("SELECT * FROM nope")
    c.close()
    wrong = db.connect(tmp_path / "e.sqlite", bytes(32))
    with pytest.raises(db.DatabaseError, match="file is not a database") as caught:
        wrong.execute("SELECT * FROM x")
    assert not isinstance(caught.value, db.OperationalError)
    assert not db.key_opens(wrong)
    wrong.close()


def test_a_write_lock_held_elsewhere_is_operational_and_says_locked(tmp_path: Path) -> None:
    path = tmp_path / "l.sqlite"
    holder = db.connect(path, None)
    holder.execute("CREATE TABLE t (a)")
    holder.execute("BEGIN IMMEDIATE")
    other = db.connect(path, None)
    other.execute("PRAGMA busy_timeout = 0")
    with pytest.raises(db.OperationalError, match="locked"):
        other.execute("INSERT INTO t VALUES (1)")
    holder.execute("ROLLBACK")
    other.execute("INSERT INTO t VALUES (1)")  # free again


def test_rowcount_and_lastrowid_are_those_of_the_statement(conn: db.Connection) -> None:
    cur = conn.execute("INSERT INTO t (v, n) VALUES ('a', 1)")
    assert (cur.rowcount, cur.lastrowid) == (1, 1)
    cur = conn.execute("INSERT INTO t (v, n) VALUES ('b', 2)")
    assert (cur.rowcount, cur.lastrowid) == (1, 2)
    assert conn.execute("INSERT OR IGNORE INTO t (v, n) VALUES ('a', 3)").rowcount == 0
    assert conn.execute("UPDATE t SET n = n + 1").rowcount == 2
    assert conn.execute("UPDATE t SET n = 0 WHERE v = 'zzz'").rowcount == 0
    assert conn.execute("DELETE FROM t WHERE v = 'a'").rowcount == 1


def test_rows_read_one_by_one_all_at_once_or_iterated(conn: db.Connection) -> None:
    conn.executemany("INSERT INTO t (v, n) VALUES (?, ?)", [(f"r{i}", i) for i in range(5)])
    assert conn.execute("SELECT count(*) FROM t").fetchone() == (5,)
    assert conn.execute("SELECT n FROM t WHERE n > 10").fetchone() is None
    assert conn.execute("SELECT n FROM t ORDER BY n").fetchall() == [(i,) for i in range(5)]
    assert [n for (n,) in conn.execute("SELECT n FROM t ORDER BY n DESC")] == [4, 3, 2, 1, 0]
    assert conn.execute("DELETE FROM t WHERE n = 0 RETURNING v").fetchall() == [("r0",)]
    assert conn.execute("SELECT v FROM t WHERE n = 0").fetchall() == []


def test_transactions_are_the_callers_and_a_rollback_undoes(conn: db.Connection) -> None:
    assert not conn.in_transaction
    conn.execute("BEGIN")
    conn.execute("INSERT INTO t (v, n) VALUES ('a', 1)")
    assert conn.in_transaction
    conn.execute("ROLLBACK")
    assert not conn.in_transaction
    assert conn.execute("SELECT count(*) FROM t").fetchone() == (0,)


def test_a_progress_handler_that_says_stop_interrupts_the_query(conn: db.Connection) -> None:
    conn.executemany("INSERT INTO t (v, n) VALUES (?, ?)", [(f"r{i}", i) for i in range(2000)])
    deadline = time.monotonic() - 1  # already past: the first check stops it
    conn.set_progress_handler(lambda: time.monotonic() > deadline, 100)
    with pytest.raises(db.OperationalError, match="interrupt"):
        conn.execute("SELECT a.n FROM t a, t b WHERE a.v > b.v").fetchall()
    conn.set_progress_handler(None, 0)
    assert conn.execute("SELECT count(*) FROM t").fetchone() == (2000,)


def test_a_backup_of_an_encrypted_store_is_encrypted_with_the_same_key(tmp_path: Path) -> None:
    source = db.connect(tmp_path / "s.sqlite", KEY)
    source.execute("CREATE TABLE x (a)")
    source.execute("INSERT INTO x VALUES ('a secret line')")
    target = db.connect(tmp_path / "b.sqlite", KEY)
    source.backup(target)
    target.close()
    assert b"a secret line" not in (tmp_path / "b.sqlite").read_bytes()
    copy = db.connect(tmp_path / "b.sqlite", KEY)
    assert copy.execute("SELECT a FROM x").fetchall() == [("a secret line",)]


def test_a_file_name_that_looks_like_a_uri_is_still_a_file_name(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    c = db.connect("file:odd?mode=ro#1.sqlite", None)  # relative: a name, not a URI
    c.execute("CREATE TABLE x (a)")
    c.close()
    assert (tmp_path / "file:odd?mode=ro#1.sqlite").exists()


def test_closed_connections_refuse_with_a_driver_error(tmp_path: Path) -> None:
    c = db.connect(tmp_path / "c.sqlite", None)
    c.close()
    with pytest.raises(db.Error):
        c.execute("SELECT 1")


def test_sql_with_a_second_statement_is_refused_before_any_of_it_runs(
    conn: db.Connection,
) -> None:
    with pytest.raises(db.ProgrammingError, match="one statement at a time"):
        conn.execute("INSERT INTO t (v, n) VALUES ('a', 1); DROP TABLE t")
    with pytest.raises(db.ProgrammingError, match="one statement at a time"):
        conn.executemany("INSERT INTO t (v, n) VALUES (?, ?); DELETE FROM t", [("b", 2)])
    assert conn.execute("SELECT count(*) FROM t").fetchone() == (0,)  # nothing ran
    # One statement with semicolons inside (a trigger, a literal), or a trailing comment.
    conn.execute(
        "CREATE TRIGGER t_log AFTER INSERT ON t BEGIN"
        " UPDATE t SET n = n + 1 WHERE id = new.id; SELECT 1; END"
    )
    conn.execute("INSERT INTO t (v, n) VALUES ('x;y', 1); -- the end")
    assert conn.execute("SELECT v, n FROM t").fetchall() == [("x;y", 2)]


def test_text_that_is_not_utf8_is_an_operational_error_not_a_crash(
    conn: db.Connection,
) -> None:
    conn.execute("INSERT INTO t (v, n) VALUES (CAST(x'41ff42' AS TEXT), 1)")
    with pytest.raises(db.OperationalError, match="UTF-8"):
        conn.execute("SELECT v FROM t").fetchall()
    with pytest.raises(db.OperationalError, match="UTF-8"):
        list(conn.execute("SELECT v FROM t"))
    assert conn.execute("SELECT hex(v) FROM t").fetchone() == ("41FF42",)


def test_no_key_reaches_an_error_message(tmp_path: Path) -> None:
    c = db.connect(tmp_path / "k.sqlite", KEY)
    c.execute("CREATE TABLE x (a)")
    unreachable = tmp_path / "no such folder" / "copy.sqlite"
    with pytest.raises(db.OperationalError) as caught:
        c.execute("VACUUM INTO ?", (db.target_uri(unreachable, KEY),))
    message = str(caught.value)
    assert "unable to open" in message
    assert KEY.hex() not in message
    assert KEY.hex()[:16] not in message
    assert caught.value.__context__ is None  # no chained driver error holds the text
    assert db.scrubbed("file:/a?cipher=aegis&key=x%27" + KEY.hex() + "%27&b=1") == (
        "file:/a?cipher=aegis&key=…&b=1"
    )


def test_a_locked_file_is_probed_once_not_once_per_format(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "busy.sqlite"
    made = db.connect(path, KEY)
    made.execute("CREATE TABLE x (a)")
    made.execute("BEGIN EXCLUSIVE")  # rollback-journal mode: readers are locked out
    monkeypatch.setattr(db, "DEFAULT_BUSY_TIMEOUT_MS", 0)
    opened: list[str] = []
    real_open = db._open

    def counting(name: str, key: bytes | None, cipher: db.Cipher | None) -> db.Connection:
        opened.append(cipher.name if cipher else "plain")
        return real_open(name, key, cipher)

    monkeypatch.setattr(db, "_open", counting)
    other = db.connect(path, KEY)
    assert opened == [db.CIPHER.name]  # not three waits, and not taken for a wrong key
    with pytest.raises(db.OperationalError, match="locked"):
        other.execute("SELECT count(*) FROM x")
    made.execute("ROLLBACK")
    assert other.execute("SELECT count(*) FROM x").fetchone() == (0,)
