"""The disk side of downloads: free space, the floor a download leaves, placing a verified
file under a name that is free, and cleaning up parts. Blocking: run in threads.
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Final

from p2pchat.node.files import inside, numbered_name
from p2pchat.store.transfers import TransferRow

if TYPE_CHECKING:
    pass


#: Free space every download leaves on its disk, whatever else is being downloaded:
#: 1 % of the disk, at least FLOOR_MIN and at most FLOOR_MAX (a chat must not be the
#: program that fills the disk the rest of the system, and its own store, write to).
FLOOR_MIN: Final = 16 * 1024 * 1024
FLOOR_MAX: Final = 1024 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class DiskSpace:
    """What the disk holding a folder has: free and total bytes."""

    free: int
    total: int


def existing_parent(path: Path) -> Path:
    """``path`` or its nearest existing parent (the download folder may not exist yet)."""
    probe = path
    while not probe.exists() and probe.parent != probe:
        probe = probe.parent
    return probe


def default_disk_space(path: Path) -> DiskSpace:
    usage = shutil.disk_usage(existing_parent(path))
    return DiskSpace(free=usage.free, total=usage.total)


def free_space_floor(total: int) -> int:
    """Bytes a disk of ``total`` bytes keeps free however many downloads are accepted."""
    return min(FLOOR_MAX, max(FLOOR_MIN, total // 100))


def device_of(path: Path) -> int:
    try:
        return existing_parent(path).stat().st_dev
    except OSError:
        return -1


def still_to_write(rows: list[TransferRow], folder: Path, exclude: bytes) -> int:
    """Bytes the accepted downloads among ``rows`` still have to write on the disk that
    holds ``folder`` (their size less what their part already holds). Blocking."""
    device = device_of(folder)
    total = 0
    for r in rows:
        if r.message_id == exclude or not r.part:
            continue
        if device_of(Path(r.part).parent) != device:
            continue
        total += max(0, r.size - part_size(r.part))
    return total


#: How the detail of a transfer stopped (or refused) for lack of space begins: such
#: transfers start again by themselves once the space is there (see _retry_when_space).
DISK_FULL = "the disk holding"
NOT_ENOUGH_SPACE = "not enough free space"


def write_failure(exc: OSError, folder: Path) -> str:
    """A person's reason for a write error (a full disk says so plainly)."""
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return (
            f"{DISK_FULL} {folder} is full; the partial file was deleted, and the download "
            "starts again by itself when there is room"
        )
    return f"cannot write the file: {exc}; the partial file was deleted"


def place_file(part: Path, folder: Path, name: str) -> Path:
    """Move a verified part to ``folder/name`` (or ``name (n)``), never overwriting."""
    folder.mkdir(parents=True, exist_ok=True)
    for n in range(100_000):
        target = inside(folder, numbered_name(name, n))
        try:
            fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        except FileExistsError:
            continue
        os.close(fd)
        os.replace(part, target)
        return target
    raise OSError(f"no free name for {name!r} in {folder}")


def unlink_quietly(path: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        path.unlink()


def unlink_all(paths: list[str]) -> None:
    for path in paths:
        with contextlib.suppress(OSError):
            unlink_quietly(Path(path))


def part_size(part: str | None) -> int:
    if not part:
        return 0
    try:
        return os.stat(part).st_size
    except OSError:
        return 0
