"""A damaged store never passes for a new or a sound one (issue 11, item 3).

Real SQLite files damaged on disk while closed, as a bad sector, a full disk or another
program would leave them; real nodes for the profile-level checks.
"""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from p2pchat.store import DamagedStoreError, MissingStoreError, Store
from p2pchat.store.health import CLEAN_CLOSE_SETTING, Check, fingerprint_path
from tests.nodes import make_node

from .helpers import ROOM, SELF, msg, peer

OTHER_ROOM = b"O" * 16
PAGE = 4096


def fill(path: Path, count: int = 3000) -> dict[bytes, int]:
    """A store of ``count`` messages in two rooms, part of each read; its unread counts."""
    with Store.open(path, self_id=SELF) as s:
        for room in (ROOM, OTHER_ROOM):
            s.ensure_room(room, "group", name="team", owner=SELF, created_at=1)
        quarter = count // 4
        rows = [msg(ROOM, peer(1), seq=n) for n in range(1, 2 * quarter + 1)]
        rows += [msg(ROOM, SELF, seq=n) for n in range(1, quarter + 1)]
        rows += [msg(OTHER_ROOM, peer(2), seq=n) for n in range(1, count - 3 * quarter + 1)]
        with s.transaction():
            s.add_messages(rows)
        for room in (ROOM, OTHER_ROOM):
            s.mark_room_read(room, s.latest_messages(room, max(count // 10, 3))[0].rowid)
        counts = {room: s.unread_count(room) for room in (ROOM, OTHER_ROOM)}
    assert all(0 < n < 999 for n in counts.values())
    return counts


def pages_of(path: Path, name: str, kind: str = "leaf") -> list[int]:
    """Page numbers of one table's or index's b-tree (SQLite's dbstat table)."""
    conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
    try:
        rows = conn.execute(
            "SELECT pageno FROM dbstat WHERE name = ? AND pagetype = ? ORDER BY pageno",
            (name, kind),
        ).fetchall()
    finally:
        conn.close()
    return [int(r[0]) for r in rows]


def overwrite_page(path: Path, page: int) -> None:
    with path.open("r+b") as f:
        f.seek((page - 1) * PAGE)
        f.write(os.urandom(PAGE))


def mark_unclean(path: Path) -> None:
    """Leave the store as a crash does: its clean-close mark says "still open"."""
    with sqlite3.connect(path) as conn:
        conn.execute("UPDATE settings SET value = '0' WHERE key = ?", (CLEAN_CLOSE_SETTING,))
    conn.close()


# ------------------------------------------------------------ missing / empty store


async def test_an_empty_store_beside_an_existing_key_is_refused_never_started_empty() -> None:
    node = make_node("alice")
    await node.start()
    await node.stop()
    store_path = node.profile.store_path
    assert store_path.stat().st_size > 0
    store_path.write_bytes(b"")  # truncated to 0 bytes, the key file still beside it

    again = make_node("alice")
    with pytest.raises(MissingStoreError) as refused:
        await again.start()
    message = str(refused.value)
    assert "empty (0 bytes)" in message
    assert "p2pchat repair" in message
    assert "p2pchat restore" in message
    assert store_path.stat().st_size == 0  # nothing was written in its place


async def test_a_missing_store_of_a_profile_that_had_one_is_refused() -> None:
    node = make_node("alice")
    await node.start()
    await node.stop()
    node.profile.store_path.unlink()

    with pytest.raises(MissingStoreError, match="missing"):
        await make_node("alice").start()
    assert not node.profile.store_path.exists()


async def test_a_new_profile_and_a_key_made_before_its_store_still_start() -> None:
    fresh = make_node("newcomer")  # a key made just now: no store yet is normal
    await fresh.start()
    await fresh.stop()
    key_only = make_node("keyonly")  # `p2pchat id` made the key, nothing opened the store
    key_only_again = make_node("keyonly")
    assert not key_only.profile.store_path.exists()
    await key_only_again.start()
    await key_only_again.stop()


def test_store_open_refuses_a_zero_byte_file_when_a_store_is_expected(db_path: Path) -> None:
    fill(db_path, 20)
    db_path.write_bytes(b"")
    with pytest.raises(MissingStoreError):
        Store.open(db_path, create=False)
    assert db_path.read_bytes() == b""


# ------------------------------------------------------------ damaged indexes


def test_a_garbage_index_page_is_found_and_rebuilt_with_right_unread_counts(
    db_path: Path,
) -> None:
    counts = fill(db_path)
    index_pages = pages_of(db_path, "messages_arrival")
    assert len(index_pages) > 3
    overwrite_page(db_path, index_pages[len(index_pages) // 2])

    with Store.open(db_path, self_id=SELF) as s:
        assert s.rebuilt_from is not None
        assert s.rebuilt_from.exists()  # the damaged file is kept
        assert {room: s.unread_count(room) for room in counts} == counts
        assert s.integrity_check() == ["ok"]
        assert s.message_count(ROOM) + s.message_count(OTHER_ROOM) == 3000


def test_an_index_with_wrong_entries_after_a_crash_is_found_by_the_full_check(
    db_path: Path,
) -> None:
    counts = fill(db_path)
    mark_unclean(db_path)
    # Every arrival-index entry of peer(1) now claims SELF wrote it: the page stays
    # well-formed (quick_check passes), but unread counts would skip those messages.
    data = db_path.read_bytes()
    garbled = data.replace(peer(1) + b"text", SELF + b"text")
    assert garbled != data
    db_path.write_bytes(garbled)

    with Store.open(db_path, self_id=SELF) as s:
        assert s.rebuilt_from is not None
        assert {room: s.unread_count(room) for room in counts} == counts
        assert s.integrity_check() == ["ok"]


def test_a_start_marks_the_store_open_and_a_clean_close_marks_it_closed(
    db_path: Path,
) -> None:
    fill(db_path, 20)
    with Store.open(db_path) as s:
        assert s.get_setting(CLEAN_CLOSE_SETTING) == "0"  # a crash now would be noticed
    with Store.open(db_path) as s:
        assert s.rebuilt_from is None
    with sqlite3.connect(db_path) as conn:
        row = conn.execute(
            "SELECT value FROM settings WHERE key = ?", (CLEAN_CLOSE_SETTING,)
        ).fetchone()
    conn.close()
    assert row == ("1",)


# ------------------------------------------------------------ which check a start runs


def test_a_start_after_a_clean_close_reads_no_pages_unless_the_file_changed(
    db_path: Path,
) -> None:
    fill(db_path, 200)
    assert fingerprint_path(db_path).exists()  # the clean close noted the file
    with Store.open(db_path, self_id=SELF) as s:
        assert s.startup_check is Check.NONE  # no pass over the pages: size-independent
        assert not fingerprint_path(db_path).exists()  # a crash now would leave none
    # The same bytes written back: nothing differs but the file's change time.
    with db_path.open("r+b") as f:
        f.seek(5000)
        same = f.read(1)
        f.seek(5000)
        f.write(same)
    with Store.open(db_path, self_id=SELF) as s:
        assert s.startup_check is Check.QUICK
    with Store.open(db_path, self_id=SELF) as s:
        assert s.startup_check is Check.NONE
    mark_unclean(db_path)
    with Store.open(db_path, self_id=SELF) as s:
        assert s.startup_check is Check.FULL


def test_a_store_behind_a_symlink_is_checked_when_the_file_behind_it_changed(
    tmp_path: Path,
) -> None:
    """The fingerprint is of the file SQLite opens: the link itself never changes."""
    real = tmp_path / "elsewhere" / "store.sqlite"
    fill(real, 200)
    link = tmp_path / "profile" / "store.sqlite"
    link.parent.mkdir()
    link.symlink_to(real)
    with Store.open(link, self_id=SELF):
        pass
    with real.open("r+b") as f:  # another program writes the same byte back
        f.seek(5000)
        same = f.read(1)
        f.seek(5000)
        f.write(same)
    with Store.open(link, self_id=SELF) as s:
        assert s.startup_check is not Check.NONE


def test_a_crash_leaves_no_fingerprint_so_the_next_start_checks_everything(
    db_path: Path,
) -> None:
    fill(db_path, 200)
    # A process that opens the store, writes, and dies without closing it.
    child = (
        "import os, sys\n"
        "from p2pchat.store import Store\n"
        "s = Store.open(sys.argv[1])\n"
        "s.set_setting('k', 'v')\n"
        "os._exit(0)\n"
    )
    subprocess.run([sys.executable, "-c", child, str(db_path)], check=True, timeout=60)
    assert not fingerprint_path(db_path).exists()
    with Store.open(db_path, self_id=SELF) as again:
        assert again.startup_check is Check.FULL
        assert again.get_setting("k") == "v"


def test_a_store_replaced_by_a_copy_is_checked(db_path: Path) -> None:
    fill(db_path, 200)
    copy = db_path.with_name("copy.sqlite")
    copy.write_bytes(db_path.read_bytes())
    os.replace(copy, db_path)  # another inode (a restore, a sync tool), same bytes
    with Store.open(db_path, self_id=SELF) as s:
        assert s.startup_check is Check.QUICK


async def test_a_node_stopped_cleanly_starts_without_reading_its_store() -> None:
    node = make_node("alice")
    await node.start()
    await node.stop()
    again = make_node("alice")
    await again.start()
    try:
        assert await again.db.run(lambda s: s.startup_check) is Check.NONE
    finally:
        await again.stop()


# ------------------------------------------------------------ damaged tables


def test_a_garbage_table_page_is_refused_naming_repair_and_left_untouched(
    db_path: Path,
) -> None:
    fill(db_path)
    table_pages = pages_of(db_path, "messages")
    overwrite_page(db_path, table_pages[len(table_pages) // 2])
    before = db_path.read_bytes()

    with pytest.raises(DamagedStoreError) as refused:
        Store.open(db_path, self_id=SELF)
    assert "p2pchat repair" in str(refused.value)
    assert db_path.read_bytes() == before
    leftovers = [p.name for p in db_path.parent.iterdir() if "rebuild" in p.name]
    assert leftovers == []


async def test_a_node_refuses_to_start_on_a_damaged_store() -> None:
    node = make_node("alice")
    await node.start()
    await node.stop()
    path = node.profile.store_path
    fill(path, 400)
    overwrite_page(path, pages_of(path, "messages")[1])

    with pytest.raises(DamagedStoreError, match="p2pchat repair"):
        await make_node("alice").start()
