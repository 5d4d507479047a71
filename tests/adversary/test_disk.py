"""Disk: offers that each fit must not, together, fill the disk.

A contact's offers up to 100 MiB are fetched without asking. Free space used to be
checked for each offer alone, so six 20 MiB offers all passed the check on a 64 MiB disk,
filled it, failed, and left their part files behind. These tests use a real 64 MiB
filesystem (a tmpfs mounted for the test, which needs root) as the download folder.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from p2pchat.node import Node
from p2pchat.node import transfer as transfer_module
from p2pchat.node.events import TransferProgress
from p2pchat.node.service import SETTING_DOWNLOAD_DIR
from p2pchat.node.transfer import PARTS_DIR, DiskSpace, TransferError, free_space_floor
from p2pchat.store import Store
from p2pchat.store import transfers as sql
from p2pchat.ui.media import FileCard, card_lines
from tests.nodes import wait_for
from tests.transfer.helpers import start_pair, write_random

MiB = 1024 * 1024
DISK = 64 * MiB
OFFER = 20 * MiB


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A real 64 MiB filesystem (tmpfs), mounted for this test only."""
    if os.geteuid() != 0:
        pytest.skip("mounting a 64 MiB tmpfs needs root; this test runs as root in CI")
    mount = tmp_path / "small-disk"
    mount.mkdir()
    result = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={DISK}", "tmpfs", str(mount)],
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {result.stderr.strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def parts_in(folder: Path) -> list[str]:
    with contextlib.suppress(FileNotFoundError):
        return os.listdir(folder / PARTS_DIR)
    return []


async def use_download_dir(node: Node, folder: Path) -> None:
    await node.set_text_setting(SETTING_DOWNLOAD_DIR, str(folder))


async def test_offers_that_fit_one_by_one_cannot_fill_the_disk_together(
    tmp_path: Path, small_disk: Path
) -> None:
    alice, bob = await start_pair(tmp_path)
    await use_download_dir(bob, small_disk)
    floor = free_space_floor(shutil.disk_usage(small_disk).total)
    events = bob.subscribe()
    try:
        ids = []
        for i in range(6):
            src = tmp_path / f"video{i}.bin"
            write_random(src, OFFER, seed=i + 1)
            ids.append((await alice.transfers.send_file(bob.me, src)).id)
        # Each offer ends either saved, or left on offer with the reason (no download
        # started that the disk could not hold).
        outcome: dict[bytes, TransferProgress] = {}

        def settled(e: object) -> bool:
            if not isinstance(e, TransferProgress) or e.message_id not in ids:
                return False
            if e.state in ("done", "failed", "cancelled") or (
                e.state == "offered" and "free space" in e.detail
            ):
                outcome[e.message_id] = e
            return len(outcome) == len(ids)

        await wait_for(events, settled, within=60)
    finally:
        events.close()
    try:
        states = sorted(e.state for e in outcome.values())
        assert states == ["done", "done", "offered", "offered", "offered", "offered"], [
            (e.state, e.detail) for e in outcome.values()
        ]
        refused = next(e for e in outcome.values() if e.state == "offered")
        assert "not enough free space" in refused.detail
        assert "must stay free" in refused.detail
        assert parts_in(small_disk) == []
        assert shutil.disk_usage(small_disk).free >= floor
        # The reason stays with the offer, and its card in the chat shows it.
        info = await bob.transfers.get(refused.message_id)
        assert info is not None
        assert info.state == "offered"
        assert "not enough free space" in info.detail
        card = FileCard(name=info.name, size=info.size)
        card.update(info)
        assert any("not enough free space" in line.plain for line in card_lines(card, 80))
        # Asked by the person, the answer is the same clear refusal.
        with pytest.raises(TransferError, match="not enough free space"):
            await bob.transfers.accept(refused.message_id)
    finally:
        await alice.stop()
        await bob.stop()


async def test_a_download_the_disk_cannot_take_deletes_its_part(
    tmp_path: Path, small_disk: Path
) -> None:
    """The free-space probe can be wrong (quotas, network disks, another program
    writing): the disk fills mid-download, the download fails for good with a plain
    reason, and its part file is deleted rather than left holding the space."""
    alice, bob = await start_pair(tmp_path)
    await use_download_dir(bob, small_disk)
    # A probe that overstates the free space: the one test double here, since what
    # another program writes to the disk meanwhile is not ours to control.
    bob.transfers.disk_space = lambda _path: DiskSpace(free=1 << 40, total=1 << 40)
    src = tmp_path / "too-big.bin"
    write_random(src, 80 * MiB)
    events = bob.subscribe()
    try:
        message = await alice.transfers.send_file(bob.me, src)
        end = await wait_for(
            events,
            lambda e: (
                isinstance(e, TransferProgress)
                and e.message_id == message.id
                and e.state in ("done", "failed", "cancelled")
            ),
            within=60,
        )
    finally:
        events.close()
    try:
        assert isinstance(end, TransferProgress)
        assert end.state == "failed"
        assert "is full" in end.detail
        assert "partial file was deleted" in end.detail
        assert parts_in(small_disk) == []
        assert shutil.disk_usage(small_disk).free > 60 * MiB
    finally:
        await alice.stop()
        await bob.stop()


async def test_parts_of_ended_downloads_are_removed_at_start(tmp_path: Path) -> None:
    """A part left by an older version after a failure is deleted when the node starts."""
    alice, bob = await start_pair(tmp_path)
    bob.transfers.disk_space = lambda _path: DiskSpace(free=1024, total=1 << 30)
    src = tmp_path / "doc.bin"
    write_random(src, 1 * MiB)
    events = bob.subscribe()
    try:
        message = await alice.transfers.send_file(bob.me, src)
        # Refused (no space): the offer is recorded on Bob's side, nothing downloads.
        await wait_for(
            events,
            lambda e: (
                isinstance(e, TransferProgress)
                and e.message_id == message.id
                and "free space" in e.detail
            ),
        )
        events.close()
        # Pretend an older version failed this download and kept its part.
        part = tmp_path / "downloads" / PARTS_DIR / "left-over.part"
        part.parent.mkdir(parents=True, exist_ok=True)
        part.write_bytes(b"x" * 4096)

        def mark_failed(store: Store) -> None:
            sql.set_state(store, message.id, "failed", 1, part=str(part))

        await bob._write(mark_failed)
        await bob.stop()
        await bob.start()  # transfers.start() runs before this returns
        assert not part.exists()
    finally:
        await alice.stop()
        await bob.stop()


async def test_a_download_refused_for_space_starts_by_itself_when_space_comes_back(
    tmp_path: Path, small_disk: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(transfer_module, "SPACE_RETRY_INTERVAL", 0.2)
    alice, bob = await start_pair(tmp_path)
    await use_download_dir(bob, small_disk)
    junk = small_disk / "someone-elses-video.bin"
    write_random(junk, 30 * MiB)  # leaves too little room for the offer and the floor
    src = tmp_path / "wanted.bin"
    write_random(src, OFFER)
    events = bob.subscribe()
    try:
        message = await alice.transfers.send_file(bob.me, src)
        await wait_for(
            events,
            lambda e: (
                isinstance(e, TransferProgress)
                and e.message_id == message.id
                and "free space" in e.detail
            ),
        )
        junk.unlink()  # the person frees space; nobody touches the offer
        done = await wait_for(
            events,
            lambda e: (
                isinstance(e, TransferProgress)
                and e.message_id == message.id
                and e.state in ("done", "failed")
            ),
            within=60,
        )
        assert isinstance(done, TransferProgress)
        assert done.state == "done"
    finally:
        events.close()
        await alice.stop()
        await bob.stop()
