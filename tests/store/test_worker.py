"""StoreWorker: every call runs in the store's own thread, never in the event loop's."""

from __future__ import annotations

import asyncio
import functools
import threading
import time
from pathlib import Path

import pytest

from p2pchat.store import Store, StoreClosedError, StoreLockedError, StoreWorker
from p2pchat.store.worker import QUICK_MAX_SECONDS

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


async def test_quick_write_runs_on_the_loop_when_the_thread_is_idle(db_path: Path) -> None:
    loop_thread = threading.get_ident()
    worker = await StoreWorker.open(db_path)
    try:
        assert worker.quick_writes_here
        done = worker.submit(lambda s: (s.set_setting("k", "v"), threading.get_ident()), quick=True)
        assert done.done()  # no hop: finished before submit returned
        assert (await done)[1] == loop_thread
        # Not marked quick: always the store thread.
        assert await worker.submit(lambda s: threading.get_ident()) != loop_thread
        assert await worker.run(lambda s: s.get_setting("k")) == "v"
    finally:
        await worker.close()


async def test_quick_write_waits_its_turn_behind_queued_calls(db_path: Path) -> None:
    loop_thread = threading.get_ident()
    worker = await StoreWorker.open(db_path)
    try:
        release = threading.Event()
        order: list[str] = []

        def slow(s: Store) -> None:
            release.wait(5)
            order.append("queued first")

        first = worker.submit(slow)
        assert not worker.quick_writes_here  # a call is pending in the thread
        second = worker.submit(
            lambda s: (order.append("quick"), threading.get_ident())[1], quick=True
        )
        assert not second.done()
        release.set()
        await first
        assert await second != loop_thread  # went to the thread, in submission order
        assert order == ["queued first", "quick"]
        # Counted done in the thread before the result reaches the loop.
        assert worker.quick_writes_here
    finally:
        await worker.close()


async def test_a_slow_quick_write_sends_the_next_ones_to_the_thread(db_path: Path) -> None:
    """A slow disk (simulated: the one thing here outside our control) must not stall
    the loop twice: after one slow quick write, quick writes hop to the thread."""
    loop_thread = threading.get_ident()
    worker = await StoreWorker.open(db_path)
    try:

        def slow_disk(s: Store) -> int:
            time.sleep(QUICK_MAX_SECONDS * 3)
            return threading.get_ident()

        assert await worker.submit(slow_disk, quick=True) == loop_thread
        assert not worker.quick_writes_here
        assert await worker.submit(lambda s: threading.get_ident(), quick=True) != loop_thread
    finally:
        await worker.close()


async def test_quick_write_errors_arrive_through_the_future(db_path: Path) -> None:
    worker = await StoreWorker.open(db_path)
    try:

        def boom(s: Store) -> None:
            raise ValueError("quick failure")

        with pytest.raises(ValueError, match="quick failure"):
            await worker.submit(boom, quick=True)
        assert await worker.run(lambda s: s.get_setting("x", "still alive")) == "still alive"
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
