"""Group commit: the node's writes to the store, batched into few durable transactions.

Every write of the node (a message sent or received, a receipt, a setting) goes through
:class:`GroupCommit`. While one transaction commits, later writes wait and all go
together into the next one: one fsync for the lot, which is what carries thousands of
durable messages a second. Each writer's function runs in its own savepoint, so one
failure is its own (a write alone in its transaction needs none: its failure rolls back
a transaction that holds nothing else). A write's future resolves only once its
transaction is on disk (``synchronous=FULL``), except a write its caller marks
``durable=False`` (a delivered receipt from a peer: what it records, the peer says again
if it is lost), whose transaction skips the fsync when every write in it is such. The
disk's flush is most of a commit's time while a file transfer writes, and a receipt paid
for one on every chat round trip.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, Final, TypeVar

from p2pchat.store import Store, StoreWorker

T = TypeVar("T")

#: Writes committed in one transaction, at most.
MAX_BATCH: Final = 512
#: A batch of at most this many quick writes may skip the store thread's hop.
QUICK_BATCH: Final = 4


def _others_ready(loop: asyncio.AbstractEventLoop) -> bool:
    """Whether callbacks other than the running one wait in this loop turn.

    Reads asyncio's private ready queue; a loop without one (uvloop, say) is assumed
    busy, which only costs a lone write one loop turn.
    """
    ready = getattr(loop, "_ready", None)
    return ready is None or len(ready) > 0


_Pending = tuple[Callable[[Store], Any], "asyncio.Future[Any]", bool, bool]  # quick, durable


class GroupCommit:
    """Batches writes into transactions, one in flight at a time (loop thread only).

    A *quick* write (small, on a message's path) commits at once, possibly on the loop
    itself (:meth:`StoreWorker.submit`), when it is alone: a hop to the store thread
    and back is most of a lone message's latency. When other callbacks are ready to run
    (a burst of sends, a batch of frames) the commit starts one loop turn later, so
    those writers join the same batch instead of each committing alone.
    """

    def __init__(self, db: Callable[[], StoreWorker], forget_caches: Callable[[], None]) -> None:
        """``db`` returns the open store (raising if there is none); ``forget_caches``
        is called in the writing thread whenever a write's changes were rolled back."""
        self._db = db
        self._forget_caches = forget_caches
        self._pending: list[_Pending] = []
        self._in_flight = False
        self._scheduled = False  # a _commit_next is queued on the loop
        self._idle = asyncio.Event()
        self._idle.set()

    async def idle(self) -> None:
        """Wait until every write submitted so far is committed (or failed)."""
        await self._idle.wait()

    async def write(
        self, fn: Callable[[Store], T], *, quick: bool = False, durable: bool = True
    ) -> T:
        """Run ``fn`` in the next transaction and return its result once it is durable
        (``durable=False``: once it is committed, see the module docstring)."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        self._pending.append((fn, future, quick, durable))
        self._idle.clear()
        if not self._in_flight and not self._scheduled:
            if quick and not _others_ready(loop):
                self._commit_next()  # a lone write: nobody to wait for
            else:
                self._scheduled = True
                loop.call_soon(self._commit_next)
        return await future

    def _commit_next(self) -> None:
        """Submit the waiting writes as one transaction, unless one is in flight."""
        self._scheduled = False
        if self._in_flight or not self._pending:
            if not self._in_flight:
                self._idle.set()
            return
        batch = self._pending[:MAX_BATCH]
        del self._pending[:MAX_BATCH]
        quick = len(batch) <= QUICK_BATCH and all(q for _, _, q, _ in batch)
        durable = any(d for _, _, _, d in batch)
        forget_caches = self._forget_caches

        def run(store: Store) -> list[tuple[bool, Any]]:
            if len(batch) == 1:
                # A write alone needs no savepoint of its own: its failure rolls back
                # the transaction, which holds nothing else. Two statements fewer, and
                # in a busy process each statement hands the GIL over and back.
                fn = batch[0][0]
                try:
                    with store.transaction(durable=durable):
                        return [(True, fn(store))]
                except Exception as exc:  # its failure is its caller's, as below
                    forget_caches()
                    return [(False, exc)]
                except BaseException:
                    forget_caches()  # rolled back (an interrupt): as for a whole batch
                    raise
            results: list[tuple[bool, Any]] = []
            try:
                with store.transaction(durable=durable):
                    for fn, _, _, _ in batch:
                        try:
                            with store.transaction():
                                results.append((True, fn(store)))
                        except Exception as exc:  # one caller's failure is its own
                            forget_caches()  # its savepoint was rolled back
                            results.append((False, exc))
            except BaseException:
                forget_caches()  # the whole batch was rolled back
                raise
            return results

        self._in_flight = True
        try:
            done = self._db().submit(run, quick=quick)
        except Exception as exc:  # the store is closed
            self._in_flight = False
            for _, fut, _, _ in batch:
                if not fut.done():
                    fut.set_exception(exc)
            self._commit_next()
            return
        if done.done():  # committed right here (a quick batch): no extra loop turn
            self._committed(batch, done)
        else:
            done.add_done_callback(lambda f: self._committed(batch, f))

    def _committed(
        self, batch: list[_Pending], done: asyncio.Future[list[tuple[bool, Any]]]
    ) -> None:
        self._in_flight = False
        error = done.exception() if not done.cancelled() else asyncio.CancelledError()
        outcomes = [(False, error)] * len(batch) if error else done.result()
        for (_, fut, _, _), (ok, value) in zip(batch, outcomes, strict=True):
            if fut.done():
                continue
            if ok:
                fut.set_result(value)
            else:
                fut.set_exception(value)
        self._commit_next()


__all__ = ["MAX_BATCH", "QUICK_BATCH", "GroupCommit"]
