"""A crafted store file (a restored backup, a copied profile) cannot run SQL of its own.

``p2pchat repair`` and the start-up rebuild read a damaged store's tables and copy what
they can. Names inside that file (tables, columns) are the file author's: the salvage
must never build a statement from them, and the driver refuses a second statement in
any SQL it is given (APSW would run every statement of a string; the standard sqlite3
module did not).
"""

from __future__ import annotations

from pathlib import Path

from p2pchat.store import MIGRATIONS, Store, db
from p2pchat.store.recovery import rebuild_into


def test_a_column_name_carrying_a_statement_is_never_run_by_the_salvage(
    tmp_path: Path,
) -> None:
    source = tmp_path / "crafted.sqlite3"
    written = tmp_path / "written-by-the-file.sqlite3"
    with Store.open(source, self_id=b"S" * 32) as store:
        store.ensure_room(b"R" * 16, "group", name="room", owner=b"S" * 32, created_at=1)
    evil = f"room\" ; VACUUM INTO '{written}' ; --"
    conn = db.connect(source, None)
    try:
        conn.execute(
            f'ALTER TABLE members RENAME COLUMN room TO "{evil.replace(chr(34), 2 * chr(34))}"'
        )
        assert evil in [r[1] for r in conn.execute("PRAGMA table_info(members)")]
    finally:
        conn.close()

    rebuild_into(source, tmp_path / "fresh.sqlite3", MIGRATIONS)

    assert not written.exists()
    fresh = db.connect(tmp_path / "fresh.sqlite3", None)
    try:
        assert fresh.execute("SELECT name FROM rooms").fetchall() == [("room",)]
    finally:
        fresh.close()
