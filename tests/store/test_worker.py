"""StoreWorker: every call runs in the store's own thread, never in the event loop's."""

from __future__ import annotations

import asyncio
import functools
import threading
from pathlib import Path

import pytest

from p2pchat.store import Store, StoreClosedError, StoreLockedError, StoreWorker

from .helpers import ROOM, msg


async def test_calls_run_off_the_loop_thread(db_path: Path) -> None:
    loop_thread = threading.get_ident()
    worker = await StoreWorker.open(db_path)
    try:
        idents = await asyncio.gather(
            *(worker.run(lambda s: threading.get_ident()) for _ in range(5))
        )
        assert loop_thread not in idents
        assert len(set(idents)) == 1  # one dedicated thread
    finally:
        await worker.close()


async def test_results_and_order(db_path: Path) -> None:
    worker = await StoreWorker.open(db_path)
    try:
        await worker.run(lambda s: s.ensure_room(ROOM, "group", created_at=1))

        def write_batch(s: Store) -> list[bool]:
            with s.transaction():
                return s.add_messages([msg(seq=1), msg(seq=2)])

        assert await worker.run(write_batch) == [True, True]
        # Submitted concurrently, still applied in submission order.
        await asyncio.gather(
            *(
                worker.run(functools.partial(Store.set_setting, key="k", value=str(i)))
                for i in range(20)
            )
        )
        assert await worker.run(lambda s: s.get_setting("k")) == "19"
        assert await worker.run(lambda s: s.message_count(ROOM)) == 2
    finally:
        await worker.close()


async def test_exceptions_propagate_and_worker_survives(db_path: Path) -> None:
    worker = await StoreWorker.open(db_path)
    try:

        def boom(s: Store) -> None:
            raise ValueError("from the store thread")

        with pytest.raises(ValueError, match="from the store thread"):
            await worker.run(boom)
        assert await worker.run(lambda s: s.get_setting("x", "still alive")) == "still alive"
    finally:
        await worker.close()


async def test_store_is_bound_to_its_thread(db_path: Path) -> None:
    worker = await StoreWorker.open(db_path)
    try:
        store = await worker.run(lambda s: s)
        # Using it from the loop thread is refused by sqlite3, not silently allowed.
        with pytest.raises(Exception, match="thread"):
            store.get_setting("x")
    finally:
        await worker.close()


async def test_open_errors_propagate(db_path: Path) -> None:
    first = await StoreWorker.open(db_path)
    try:
        with pytest.raises(StoreLockedError):
            await StoreWorker.open(db_path)
    finally:
        await first.close()


async def test_close_releases_and_refuses_further_calls(db_path: Path) -> None:
    worker = await StoreWorker.open(db_path)
    await worker.close()
    await worker.close()
    assert worker.closed
    with pytest.raises(StoreClosedError):
        await worker.run(lambda s: s.get_setting("x"))
    again = await StoreWorker.open(db_path)  # the lock was released
    await again.close()
