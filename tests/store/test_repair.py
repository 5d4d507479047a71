"""``p2pchat repair`` salvages a damaged store and keeps the damaged file (issue 11, item 3)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from p2pchat.cli import main
from p2pchat.paths import profile_dir
from p2pchat.profile import STORE_FILE
from p2pchat.store import DamagedStoreError, Store, StoreLockedError
from p2pchat.store.repair import lost_rows, repair_store
from tests.nodes import make_node

from .helpers import ROOM, SELF, peer
from .test_integrity import OTHER_ROOM, fill, overwrite_page, pages_of


def damage_a_message_page(path: Path) -> int:
    """Fill the store and overwrite one leaf page of messages; return the rows before."""
    fill(path)
    pages = pages_of(path, "messages")
    overwrite_page(path, pages[len(pages) // 2])
    return 3000


def test_repair_salvages_every_readable_row_and_keeps_the_damaged_file(db_path: Path) -> None:
    total = damage_a_message_page(db_path)
    damaged = db_path.read_bytes()
    with pytest.raises(DamagedStoreError):
        Store.open(db_path, self_id=SELF)

    result = repair_store(db_path)

    assert result.kept is not None
    assert result.kept.read_bytes() == damaged  # never deleted, never written
    assert result.kept.name.startswith(db_path.name + ".damaged-")
    messages = result.report.table("messages")
    assert messages is not None
    assert messages.damaged
    lost = lost_rows(messages)
    assert lost is not None
    assert 0 < total - messages.copied <= lost < 100  # one page holds a few dozen rows
    with Store.open(db_path, self_id=SELF) as s:
        assert s.integrity_check() == ["ok"]
        held = s.message_count(ROOM) + s.message_count(OTHER_ROOM)
        assert held == messages.copied
        assert s.get_room(ROOM) is not None
        # Heads claim only what is held without a gap, so anti-entropy asks for the rest.
        for room in (ROOM, OTHER_ROOM):
            for author, head in s.heads(room).items():
                seqs = {m.seq for m in s.messages_by_seq(room, author, 1, head + 1)}
                assert seqs == set(range(1, head + 1))
        assert s.heads(ROOM)[peer(1)] < 1500 or s.heads(OTHER_ROOM)[peer(2)] < 750


def test_repair_refuses_while_the_profile_is_open(db_path: Path) -> None:
    fill(db_path, 20)
    with Store.open(db_path) as _open, pytest.raises(StoreLockedError):
        repair_store(db_path)
    assert not list(db_path.parent.glob("*.damaged-*"))


async def test_p2pchat_repair_reports_what_came_back_and_the_profile_starts_again(
    capsys: pytest.CaptureFixture[str],
) -> None:
    node = make_node("alice")
    await node.start()
    await node.stop()
    path = profile_dir("alice") / STORE_FILE
    damage_a_message_page(path)
    with pytest.raises(DamagedStoreError):
        await make_node("alice").start()

    assert main(["--profile", "alice", "repair"]) == 0
    out = capsys.readouterr().out
    assert "the damaged store was kept as" in out
    assert "recovered: " in out
    assert "messages" in out
    assert "lost: up to " in out

    again = make_node("alice")
    await again.start()  # starts on the salvaged store
    await again.stop()


async def test_p2pchat_repair_of_an_empty_store_keeps_the_identity() -> None:
    node = make_node("alice")
    await node.start()
    await node.stop()
    node.profile.store_path.write_bytes(b"")

    assert main(["--profile", "alice", "repair"]) == 0
    assert list(node.profile.directory.glob(f"{STORE_FILE}.damaged-*"))
    again = make_node("alice")
    await again.start()
    assert again.me == node.me
    await again.stop()


def test_repair_of_a_file_that_is_not_ours_leaves_it_alone(db_path: Path) -> None:
    db_path.parent.mkdir(parents=True)
    with sqlite3.connect(db_path) as conn:
        conn.execute("CREATE TABLE other (x)")
    conn.close()
    before = db_path.read_bytes()
    with pytest.raises(Exception, match="another program"):
        repair_store(db_path)
    assert db_path.read_bytes() == before


async def test_p2pchat_repair_of_a_sound_store_changes_nothing(
    capsys: pytest.CaptureFixture[str],
) -> None:
    node = make_node("alice")
    await node.start()
    await node.stop()
    before = node.profile.store_path.read_bytes()
    assert main(["--profile", "alice", "repair"]) == 0
    assert "no damage found" in capsys.readouterr().out
    assert not list(node.profile.directory.glob("*.damaged-*"))
    assert node.profile.store_path.read_bytes() == before


def fill_with_receipts(db_path: Path) -> tuple[list[bytes], int]:
    """Fill the store and give every message three peers' receipts (a WITHOUT ROWID
    table of many pages); return the message ids and how many receipts there are."""
    fill(db_path)
    with Store.open(db_path, self_id=SELF) as s:
        ids = [m.id for m in s.latest_messages(ROOM, 100_000)]
        for n in range(1, 4):
            s.record_receipt(ids, peer(10 + n), 2, at=5)
    return ids, 3 * len(ids)


def test_repair_reads_a_without_rowid_table_from_both_ends_of_a_damaged_page(
    db_path: Path,
) -> None:
    ids, receipts = fill_with_receipts(db_path)
    pages = pages_of(db_path, "receipts")
    assert len(pages) > 4
    overwrite_page(db_path, pages[len(pages) // 2])

    result = repair_store(db_path)

    table = result.report.table("receipts")
    assert table is not None
    assert table.damaged
    assert lost_rows(table) is None  # no rowids: the loss cannot be counted, and says so
    assert receipts // 2 < table.copied < receipts  # read from both sides of the hole
    with Store.open(db_path, self_id=SELF) as s:
        assert s.integrity_check() == ["ok"]
        # The first and the last keys are on either side of the damaged page.
        assert len(s.receipts_for(min(ids))) + len(s.receipts_for(max(ids))) == 6


async def test_p2pchat_repair_refuses_while_the_profile_runs(
    capsys: pytest.CaptureFixture[str],
) -> None:
    import asyncio

    node = make_node("alice")
    await node.start()
    try:
        code = await asyncio.to_thread(main, ["--profile", "alice", "repair"])
    finally:
        await node.stop()
    assert code == 1
    assert "another p2pchat is using this profile" in capsys.readouterr().err
    assert not list(node.profile.directory.glob("*.damaged-*"))


async def test_p2pchat_repair_of_a_store_with_a_garbage_first_page_says_nothing_came_back(
    capsys: pytest.CaptureFixture[str],
) -> None:
    node = make_node("alice")
    await node.start()
    await node.stop()
    path = node.profile.store_path
    fill(path, 200)
    overwrite_page(path, 1)  # the header and the list of tables
    damaged = path.read_bytes()

    assert main(["--profile", "alice", "repair"]) == 0
    out = capsys.readouterr().out
    assert "nothing could be recovered" in out
    kept = list(node.profile.directory.glob(f"{STORE_FILE}.damaged-*"))
    assert [k.read_bytes() for k in kept] == [damaged]
    again = make_node("alice")
    await again.start()
    assert again.me == node.me
    await again.stop()


def test_repair_goes_on_when_a_without_rowid_tables_first_page_is_damaged(
    db_path: Path,
) -> None:
    # SQLite reads a scan's first row when the scan starts: the damaged first page (in
    # key order) used to end the whole salvage there, leaving the profile without a store.
    ids, receipts = fill_with_receipts(db_path)
    conn = sqlite3.connect(f"{db_path.resolve().as_uri()}?mode=ro", uri=True)
    try:
        first_leaf = conn.execute(
            "SELECT pageno FROM dbstat WHERE name = 'receipts' AND pagetype = 'leaf'"
            " ORDER BY path LIMIT 1"
        ).fetchone()[0]
    finally:
        conn.close()
    overwrite_page(db_path, int(first_leaf))

    result = repair_store(db_path)

    table = result.report.table("receipts")
    assert table is not None
    assert table.damaged
    assert receipts // 2 < table.copied < receipts  # the backwards scan read the rest
    with Store.open(db_path, self_id=SELF) as s:
        assert s.integrity_check() == ["ok"]
        assert len(s.receipts_for(max(ids))) == 3
