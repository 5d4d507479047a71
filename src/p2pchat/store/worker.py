"""Async bridge between the asyncio node and the synchronous Store.

The event loop must not block on SQLite for long (an fsync under ``synchronous=FULL``
can take milliseconds on a slow disk, a big query longer). A StoreWorker owns ONE
dedicated thread; the Store is opened and closed in that thread and calls run one at a
time in submission order.

One exception, for latency: a *quick* write (one small transaction on the chat's hot
path) runs on the caller's thread when the store thread is idle and this disk has been
committing fast (under ``QUICK_MAX_SECONDS``). A hop to the thread and back costs two
wake-ups, about 0.1 ms each on a quiet machine, as much as the commit itself on an SSD,
and a message pays two commits (sender and receiver). One slow quick commit sends every
write back to the thread for ``QUICK_COOLDOWN_SECONDS``, so a slow or busy disk never
stalls the loop twice in a row. Calls never overlap: the quick path requires no call
pending in the thread, and blocks the loop (the only submitter) while it runs.
This module must never run SQL itself or hand the Store object to the caller.
"""

from __future__ import annotations

import asyncio
import functools
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TypeVar

from .errors import StoreClosedError
from .schema import MIGRATIONS, Migration
from .store import Store

T = TypeVar("T")

#: A quick write that takes longer than this on the loop sends writes to the thread.
QUICK_MAX_SECONDS = 0.002
#: ...for this long, before quick writes may run on the loop again.
QUICK_COOLDOWN_SECONDS = 5.0


class StoreWorker:
    """Runs functions of a Store in the store's own thread and awaits their result.

    A call cancelled while running still finishes in the thread (SQLite cannot be
    interrupted half-way), so a transaction is either committed or rolled back whole.
    """

    def __init__(self, executor: ThreadPoolExecutor, store: Store) -> None:
        """Wrap an executor and the Store opened in its thread; use :meth:`open`."""
        self._executor = executor
        self._store = store
        self._closed = False
        self._pending = 0  # calls queued or running in the thread
        self._pending_lock = threading.Lock()
        self._quick_after = 0.0  # monotonic time before which quick writes use the thread

    @classmethod
    async def open(
        cls,
        path: Path | str,
        *,
        self_id: bytes | None = None,
        migrations: Sequence[Migration] = MIGRATIONS,
        create: bool = True,
        key: bytes | None = None,
        old_keys: Sequence[bytes] = (),
    ) -> StoreWorker:
        """Open the store at ``path`` in a new dedicated thread.

        Raises the same StoreError subclasses as Store.open.
        """
        executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="p2pchat-store")
        loop = asyncio.get_running_loop()
        opener = functools.partial(
            Store.open,
            path,
            self_id=self_id,
            migrations=migrations,
            create=create,
            key=key,
            old_keys=old_keys,
        )
        try:
            store = await loop.run_in_executor(executor, opener)
        except BaseException:
            executor.shutdown(wait=False)
            raise
        return cls(executor, store)

    @property
    def path(self) -> Path:
        """The store's database file."""
        return self._store.path

    @property
    def rebuilt_from(self) -> Path | None:
        """Where the damaged file went if the start-up check rebuilt the store."""
        return self._store.rebuilt_from

    @property
    def closed(self) -> bool:
        """True once close() was called."""
        return self._closed

    async def run(self, fn: Callable[[Store], T]) -> T:
        """Run ``fn(store)`` in the store thread and return its result (or raise its error).

        Group writes with ``store.transaction()`` inside ``fn`` to commit them together.
        """
        return await self.submit(fn)

    def submit(self, fn: Callable[[Store], T], *, quick: bool = False) -> asyncio.Future[T]:
        """Queue ``fn(store)`` in the store thread now; its result arrives as a future.

        Unlike :meth:`run` this needs no coroutine of its own, so a caller can chain the
        next batch from a done-callback without waiting for a task to be scheduled.
        ``quick=True`` promises ``fn`` is one small transaction: it may then run right
        here (see the module docstring), and the future is already done on return.
        """
        if self._closed:
            raise StoreClosedError()
        loop = asyncio.get_running_loop()
        if quick and self._may_run_here():
            return self._run_here(loop, fn)
        with self._pending_lock:
            self._pending += 1
        job = self._executor.submit(fn, self._store)
        job.add_done_callback(self._job_done)  # runs in the thread, after fn returned
        return asyncio.wrap_future(job, loop=loop)

    def _job_done(self, _job: object) -> None:
        with self._pending_lock:
            self._pending -= 1

    def _may_run_here(self) -> bool:
        if time.monotonic() < self._quick_after:
            return False
        with self._pending_lock:
            return self._pending == 0

    def _run_here(
        self, loop: asyncio.AbstractEventLoop, fn: Callable[[Store], T]
    ) -> asyncio.Future[T]:
        future: asyncio.Future[T] = loop.create_future()
        started = time.monotonic()
        try:
            future.set_result(fn(self._store))
        except Exception as exc:  # delivered like the thread's errors: through the future
            future.set_exception(exc)
        finished = time.monotonic()
        if finished - started > QUICK_MAX_SECONDS:
            self._quick_after = finished + QUICK_COOLDOWN_SECONDS
        return future

    @property
    def quick_writes_here(self) -> bool:
        """Whether a quick write submitted now could run on the caller's thread."""
        return not self._closed and self._may_run_here()

    async def close(self) -> None:
        """Finish queued calls, close the store and stop the thread. Safe to call twice."""
        if self._closed:
            return
        self._closed = True
        loop = asyncio.get_running_loop()
        try:
            # Queued behind every call submitted before close(): the executor is FIFO.
            await loop.run_in_executor(self._executor, self._store.close)
        finally:
            # The thread is idle now; do not block the loop waiting for it to exit.
            self._executor.shutdown(wait=False)


__all__ = ["StoreWorker"]
