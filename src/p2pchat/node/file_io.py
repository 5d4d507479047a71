"""Disk I/O of file transfers: the part file a download grows in, and the read-ahead of
a file being served. Both keep the event loop free: every read, write, hash update and
fsync runs in a thread, and neither ever holds a whole file in memory.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import sys
import threading
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    from p2pchat.store.transfers import TransferRow, TransferState

#: Bytes handed to the disk thread at once, and batches queued before the pull waits.
WRITE_BATCH: Final = 1 << 20
MAX_PENDING_WRITES: Final = 8
#: The part's written bytes are pushed to the disk (and dropped from the page cache) every
#: this many bytes, so little dirty data piles up: the final fsync is short and the
#: store's own fsyncs (chat) do not queue behind a gigabyte of writeback.
WRITEBACK_STEP: Final = 8 << 20
#: Read-ahead per served file and connection (rounded down to whole chunks).
READ_AHEAD: Final = 1 << 20
#: Threads that encrypt chunks (serving) and hash and write them (downloading) run this
#: much nicer than the event loop (Linux), so chat stays prompt while a transfer keeps
#: every core busy. (Decryption stays on the loop: a thread hop per batch of received
#: frames cost more throughput than it gave back in chat latency, measured.)
BACKGROUND_NICE: Final = 10


def background_priority() -> None:
    """Lower the calling thread's priority (Linux: nice applies per thread)."""
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError):
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), BACKGROUND_NICE)


class PartFile:
    """A ``.part`` file written in order, in its own thread, hashed as it grows.

    One worker thread means writes (and hash updates) happen in submission order, so the
    part is always a prefix of the file and its length is where a resume starts. The part
    is not fsynced while it grows (its length is still a valid resume point after a crash,
    and the final hash guards its content): only once, in :meth:`finish`.
    """

    def __init__(self, part: Path) -> None:
        self.part = part
        self._pool = ThreadPoolExecutor(
            max_workers=1, thread_name_prefix="p2pchat-part", initializer=background_priority
        )
        self._hash = hashlib.sha256()
        self._fd: int | None = None
        self.offset = 0  # bytes submitted (written or queued)
        self.state: TransferState = "waiting"  # of the pull, as last announced
        self._pending: deque[asyncio.Future[None]] = deque()
        self._batch: list[bytes] = []
        self._batched = 0
        self._written = 0  # bytes in the part (worker thread only)
        self._advised = 0  # writeback started up to here (worker thread only)
        self._dropped = 0  # page cache dropped up to here (worker thread only)

    def _open(self, size: int) -> int:
        self.part.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.part, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        try:
            have = os.fstat(fd).st_size
            if have > size:  # longer than the file can be: not ours to trust
                os.ftruncate(fd, 0)
                have = 0
            with self.part.open("rb") as r:
                while block := r.read(1 << 20):
                    self._hash.update(block)
        except BaseException:
            os.close(fd)
            raise
        self._fd = fd
        self._written = self._advised = self._dropped = have
        return have

    async def open(self, size: int) -> int:
        """Open (creating) the part and hash what it holds; return its length."""
        loop = asyncio.get_running_loop()
        self.offset = await loop.run_in_executor(self._pool, self._open, size)
        return self.offset

    def _write(self, pieces: list[bytes]) -> None:
        fd = self._fd
        assert fd is not None
        total = sum(map(len, pieces))
        done = os.writev(fd, pieces)
        if done < total:  # a short write (rare on files): finish it piece by piece
            rest = memoryview(b"".join(pieces))[done:]
            while rest:
                rest = rest[os.write(fd, rest) :]
        for data in pieces:
            self._hash.update(data)
        self._written += total
        if self._written - self._advised >= WRITEBACK_STEP:
            self._writeback(fd)

    def _writeback(self, fd: int) -> None:
        """Start writing what was written to the disk, and drop what already is from the
        page cache (POSIX_FADV_DONTNEED starts writeback of dirty pages, drops clean ones)."""
        if not hasattr(os, "posix_fadvise"):
            return
        with contextlib.suppress(OSError):
            os.posix_fadvise(
                fd, self._dropped, self._written - self._dropped, os.POSIX_FADV_DONTNEED
            )
        self._dropped = self._advised
        self._advised = self._written

    def _submit(self) -> None:
        if self._batch:
            loop = asyncio.get_running_loop()
            self._pending.append(loop.run_in_executor(self._pool, self._write, self._batch))
            self._batch = []
            self._batched = 0

    async def write(self, data: bytes) -> None:
        """Queue ``data`` at the current end; wait only if many writes are queued.

        Chunks are handed to the disk thread in batches: one thread hop per 64 KB chunk
        costs more than the write itself.
        """
        self._batch.append(data)
        self._batched += len(data)
        self.offset += len(data)
        if self._batched >= WRITE_BATCH:
            self._submit()
        pending = self._pending
        while pending and (len(pending) > MAX_PENDING_WRITES or pending[0].done()):
            await pending.popleft()

    async def drain(self) -> None:
        """Write what is batched and wait for every queued write (raises the first error)."""
        self._submit()
        while self._pending:
            await self._pending.popleft()

    def _finish(self) -> bytes:
        fd = self._fd
        assert fd is not None
        os.fsync(fd)
        self._fd = None
        os.close(fd)
        return self._hash.digest()

    async def finish(self) -> bytes:
        """Fsync the part, close it, and return the SHA-256 of its content."""
        await self.drain()
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._pool, self._finish)

    async def close(self) -> None:
        """Close without verifying (keep the part for a later resume)."""
        with contextlib.suppress(Exception):
            await self.drain()
        # After a failed write (a full disk) the later queued writes fail too: wait for
        # them all, so no error is left unretrieved for the garbage collector to log.
        while self._pending:
            with contextlib.suppress(Exception):
                await self._pending.popleft()
        loop = asyncio.get_running_loop()

        def close() -> None:
            if self._fd is not None:
                fd, self._fd = self._fd, None
                os.close(fd)

        with contextlib.suppress(Exception):
            await loop.run_in_executor(self._pool, close)
        self._pool.shutdown(wait=False)


def _read_block(fd: int, offset: int, length: int) -> bytes:
    return os.pread(fd, length, offset)


@dataclass
class FileSource:
    """A file we serve on one connection, with a read-ahead buffer.

    While one block is served, the next one is read in a thread (``ahead``), so the disk
    and the encryption overlap.
    """

    fd: int
    size: int
    offer: TransferRow | None  # our outgoing offer to this peer, for sender-side progress
    buf_offset: int = 0
    buf: bytes = b""
    served: int = 0
    ahead: asyncio.Future[bytes] | None = None  # the block at buf_offset + len(buf)

    def release(self) -> None:
        """Close the file, once a read-ahead still running in a thread is over."""
        ahead, self.ahead = self.ahead, None
        if ahead is None or ahead.done():
            if ahead is not None and not ahead.cancelled():
                ahead.exception()  # retrieved: nobody wants it any more
            os.close(self.fd)
            return
        fd = self.fd

        def close(done: asyncio.Future[bytes]) -> None:
            if not done.cancelled():
                done.exception()
            os.close(fd)

        ahead.add_done_callback(close)

    async def read(self, offset: int, length: int) -> memoryview:
        """Bytes of the file, as a view of a read-ahead buffer refilled in a thread.

        Blocks are a whole number of ``length`` pieces, so pieces never straddle two
        blocks and are served without a copy. A read running in a thread stays in
        ``self.ahead`` until it is over (shielded from cancellation), so ``release``
        never closes the file under it.
        """
        start = offset - self.buf_offset
        if not (start >= 0 and start + length <= len(self.buf)):
            loop = asyncio.get_running_loop()
            block_size = max(length, READ_AHEAD - READ_AHEAD % length)
            ahead = self.ahead
            if ahead is not None and 0 <= start <= len(self.buf):
                # The block after the buffer was read meanwhile: keep the buffer's tail
                # (empty when pieces are aligned to blocks, and then nothing is copied).
                block = await asyncio.shield(ahead)
                self.ahead = None
                self.buf = self.buf[start:] + block
            else:
                if ahead is not None:
                    with contextlib.suppress(OSError):
                        await asyncio.shield(ahead)
                self.ahead = loop.run_in_executor(None, _read_block, self.fd, offset, block_size)
                self.buf = await asyncio.shield(self.ahead)
                self.ahead = None
            self.buf_offset = offset
            start = 0
            end = offset + len(self.buf)
            if end < self.size:
                self.ahead = loop.run_in_executor(None, _read_block, self.fd, end, block_size)
        return memoryview(self.buf)[start : start + length]


__all__ = ["BACKGROUND_NICE", "FileSource", "PartFile", "background_priority"]
