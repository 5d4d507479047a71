"""Async bridge between the asyncio node and the synchronous Store.

The event loop must never block on SQLite (an fsync under ``synchronous=FULL`` can take
milliseconds, a big query longer). A StoreWorker owns ONE dedicated thread; the Store is
opened, used and closed only in that thread, so calls run one at a time in submission
order and sqlite3's same-thread check guards against misuse. This module must never run
SQL itself or hand the Store object to the loop thread.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TypeVar

from .errors import StoreClosedError
from .schema import MIGRATIONS, Migration
from .store import Store

T = TypeVar("T")


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

    @classmethod
    async def open(
        cls,
        path: Path | str,
        *,
        self_id: bytes | None = None,
        migrations: Sequence[Migration] = MIGRATIONS,
    ) -> StoreWorker:
        """Open the store at ``path`` in a new dedicated thread.

        Raises the same StoreError subclasses as Store.open.
        """
        executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="p2pchat-store")
        loop = asyncio.get_running_loop()
        opener = functools.partial(Store.open, path, self_id=self_id, migrations=migrations)
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
    def closed(self) -> bool:
        """True once close() was called."""
        return self._closed

    async def run(self, fn: Callable[[Store], T]) -> T:
        """Run ``fn(store)`` in the store thread and return its result (or raise its error).

        Group writes with ``store.transaction()`` inside ``fn`` to commit them together.
        """
        if self._closed:
            raise StoreClosedError()
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, fn, self._store)

    def submit(self, fn: Callable[[Store], T]) -> asyncio.Future[T]:
        """Queue ``fn(store)`` in the store thread now; its result arrives as a future.

        Unlike :meth:`run` this needs no coroutine of its own, so a caller can chain the
        next batch from a done-callback without waiting for a task to be scheduled.
        """
        if self._closed:
            raise StoreClosedError()
        return asyncio.wrap_future(self._executor.submit(fn, self._store))

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
