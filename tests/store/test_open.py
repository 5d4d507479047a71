"""Opening the store: pragmas, file modes, migrations, and every refusal to touch a file."""

from __future__ import annotations

import os
import signal
import sqlite3
import stat
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from p2pchat.store import (
    APPLICATION_ID,
    MIGRATIONS,
    SCHEMA_VERSION,
    CorruptStoreError,
    ForeignDatabaseError,
    NewerSchemaError,
    Store,
    StoreClosedError,
    StoreError,
    StoreLockedError,
)

from .helpers import ROOM, SELF, msg


def _pragma(path: Path, name: str) -> object:
    conn = sqlite3.connect(path)
    try:
        return conn.execute(f"PRAGMA {name}").fetchone()[0]
    finally:
        conn.close()


def test_new_store_has_schema_and_pragmas(db_path: Path) -> None:
    with Store.open(db_path) as s:
        conn = s._db
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert conn.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
        assert conn.execute("PRAGMA foreign_keys").fetchone()[0] == 1
        assert 0 < conn.execute("PRAGMA busy_timeout").fetchone()[0] <= 5000
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert {
        "peers",
        "addresses",
        "rooms",
        "members",
        "messages",
        "receipts",
        "outbox",
        "settings",
        "reactions",
        "heads",
    } <= tables
    assert _pragma(db_path, "application_id") == APPLICATION_ID
    assert _pragma(db_path, "user_version") == SCHEMA_VERSION == len(MIGRATIONS)


def test_files_are_private(db_path: Path) -> None:
    old = os.umask(0o022)
    try:
        with Store.open(db_path) as s:
            s.set_setting("k", "v")
            for p in db_path.parent.iterdir():
                assert stat.S_IMODE(p.stat().st_mode) == 0o600, p.name
            names = {p.name for p in db_path.parent.iterdir()}
    finally:
        os.umask(old)
    assert {"store.sqlite", "store.sqlite.lock", "store.sqlite-wal"} <= names


def test_reopen_keeps_data(db_path: Path) -> None:
    with Store.open(db_path, self_id=SELF) as s:
        s.ensure_room(ROOM, "group", created_at=1)
        s.add_messages([msg(seq=1), msg(seq=2)])
        s.set_setting("theme", "dark")
        s.enqueue(SELF, b"frame")
    with Store.open(db_path, self_id=SELF) as s:
        assert s.message_count(ROOM) == 2
        assert s.get_setting("theme") == "dark"
        assert [i.frame for i in s.pending_for(SELF)] == [b"frame"]


def _assert_refused(path: Path, error: type[StoreError]) -> StoreError:
    before = path.read_bytes()
    siblings = sorted(p.name for p in path.parent.iterdir())
    with pytest.raises(error) as info:
        Store.open(path)
    assert path.read_bytes() == before
    # Only our own lock file may have appeared next to it.
    after = sorted(p.name for p in path.parent.iterdir() if not p.name.endswith(".lock"))
    assert after == [n for n in siblings if not n.endswith(".lock")]
    assert str(path) in str(info.value)
    return info.value


def test_random_bytes_are_corrupt_and_untouched(tmp_path: Path) -> None:
    path = tmp_path / "store.sqlite"
    path.write_bytes(os.urandom(8192))
    err = _assert_refused(path, CorruptStoreError)
    assert "untouched" in str(err)


def test_short_file_is_corrupt(tmp_path: Path) -> None:
    path = tmp_path / "store.sqlite"
    path.write_bytes(b"hello")
    _assert_refused(path, CorruptStoreError)


def test_sqlite_header_then_garbage_is_corrupt(tmp_path: Path) -> None:
    path = tmp_path / "store.sqlite"
    path.write_bytes(b"SQLite format 3\x00" + os.urandom(4096 * 3))
    _assert_refused(path, CorruptStoreError)


def test_damaged_store_of_ours_is_corrupt(db_path: Path) -> None:
    with Store.open(db_path) as s:
        s.set_setting("k", "v")
    # Wreck the schema page but keep the header (and so our application_id).
    data = bytearray(db_path.read_bytes())
    data[100:4096] = os.urandom(3996)
    db_path.write_bytes(bytes(data))
    for p in db_path.parent.glob("*-wal"):
        p.unlink()
    _assert_refused(db_path, CorruptStoreError)


def test_foreign_database_is_refused_and_untouched(tmp_path: Path) -> None:
    path = tmp_path / "other.db"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE accounts (id INTEGER PRIMARY KEY, balance INTEGER)")
    conn.execute("INSERT INTO accounts VALUES (1, 100)")
    conn.commit()
    conn.close()
    err = _assert_refused(path, ForeignDatabaseError)
    assert "another program" in str(err)


def test_foreign_application_id_without_tables_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "other.db"
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA application_id = 1234")
    conn.close()
    _assert_refused(path, ForeignDatabaseError)


def test_empty_file_becomes_a_store(tmp_path: Path) -> None:
    path = tmp_path / "store.sqlite"
    path.touch()
    with Store.open(path) as s:
        s.set_setting("a", "b")
    assert _pragma(path, "application_id") == APPLICATION_ID


def test_newer_schema_is_refused(db_path: Path) -> None:
    with Store.open(db_path):
        pass
    conn = sqlite3.connect(db_path)
    conn.execute("PRAGMA user_version = 99")
    conn.close()
    err = _assert_refused(db_path, NewerSchemaError)
    assert "99" in str(err)


def _v2(conn: sqlite3.Connection) -> None:
    conn.execute("CREATE TABLE drafts (room BLOB PRIMARY KEY, text TEXT NOT NULL)")
    conn.execute("ALTER TABLE rooms ADD COLUMN future_flag INTEGER NOT NULL DEFAULT 0")


def test_fake_v2_migration_applies_in_order_and_keeps_data(db_path: Path) -> None:
    with Store.open(db_path, self_id=SELF) as s:
        s.ensure_room(ROOM, "group", created_at=1)
        s.add_messages([msg(seq=1)])
    with Store.open(db_path, migrations=[*MIGRATIONS, _v2]) as s:
        s._db.execute("INSERT INTO drafts VALUES (?, 'hello')", (ROOM,))
        assert s._db.execute("SELECT future_flag FROM rooms").fetchone()[0] == 0
        assert s.message_count(ROOM) == 1
    assert _pragma(db_path, "user_version") == SCHEMA_VERSION + 1
    # The released p2pchat (which knows one version less) must refuse, not damage, it.
    with pytest.raises(NewerSchemaError):
        Store.open(db_path)


def test_fresh_store_runs_all_migrations(db_path: Path) -> None:
    with Store.open(db_path, migrations=[*MIGRATIONS, _v2]) as s:
        assert s._db.execute("SELECT count(*) FROM drafts").fetchone()[0] == 0
    assert _pragma(db_path, "user_version") == SCHEMA_VERSION + 1


def test_failing_migration_rolls_back_whole(db_path: Path) -> None:
    with Store.open(db_path):
        pass

    def broken(conn: sqlite3.Connection) -> None:
        conn.execute("CREATE TABLE half (x)")
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        Store.open(db_path, migrations=[*MIGRATIONS, broken])
    assert _pragma(db_path, "user_version") == SCHEMA_VERSION
    with Store.open(db_path) as s:
        names = {r[0] for r in s._db.execute("SELECT name FROM sqlite_master")}
        assert "half" not in names


def test_second_open_in_same_process_is_locked(db_path: Path) -> None:
    first = Store.open(db_path)
    try:
        with pytest.raises(StoreLockedError) as info:
            Store.open(db_path)
        assert "another p2pchat is using this profile" in str(info.value)
    finally:
        first.close()
    # Released on close.
    Store.open(db_path).close()


_HOLDER = textwrap.dedent(
    """
    import sys, time
    from p2pchat.store import Store
    s = Store.open(sys.argv[1])
    print("ready", flush=True)
    time.sleep(60)
    """
)


def test_lock_held_by_another_process(db_path: Path) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-c", _HOLDER, str(db_path)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "ready"
        with pytest.raises(StoreLockedError):
            Store.open(db_path)
    finally:
        # kill -9: the kernel drops the flock with the process, so no stale lock remains.
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    Store.open(db_path).close()


def test_other_process_is_refused_while_we_hold_it(db_path: Path) -> None:
    code = textwrap.dedent(
        """
        import sys
        from p2pchat.store import Store, StoreLockedError
        try:
            Store.open(sys.argv[1])
        except StoreLockedError as e:
            print(e)
            sys.exit(3)
        """
    )
    with Store.open(db_path):
        done = subprocess.run(
            [sys.executable, "-c", code, str(db_path)],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    assert done.returncode == 3, done.stderr
    assert "another p2pchat" in done.stdout


def test_use_after_close_raises(db_path: Path) -> None:
    s = Store.open(db_path)
    s.close()
    s.close()  # idempotent
    assert s.closed
    with pytest.raises(StoreClosedError):
        s.get_setting("x")
