"""Commits that skip the fsync (``durable=False``): only when every write asks for it,
never for a nested transaction, and a killed process still keeps them."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest

from p2pchat.node.commits import GroupCommit
from p2pchat.store import Store, StoreWorker

from .helpers import ROOM, SELF, msg

FULL, NORMAL = 2, 1


def synchronous(store: Store) -> int:
    """The commit mode the store's connection is in right now."""
    return int(store.connection.execute("PRAGMA synchronous").fetchone()[0])


def test_a_relaxed_transaction_commits_without_fsync_then_the_store_is_durable_again(
    store: Store,
) -> None:
    with store.transaction(durable=False):
        assert synchronous(store) == NORMAL
        store.add_messages([msg(seq=1)])
    assert synchronous(store) == FULL
    with store.transaction():
        assert synchronous(store) == FULL
        # A nested transaction follows its outer one: it never relaxes a durable commit.
        with store.transaction(durable=False):
            assert synchronous(store) == FULL
    assert store.message_count(ROOM) == 1


def test_a_failed_relaxed_transaction_leaves_the_store_durable(store: Store) -> None:
    try:
        with store.transaction(durable=False):
            store.add_messages([msg(seq=1)])
            raise RuntimeError("the write failed")
    except RuntimeError:
        pass
    assert synchronous(store) == FULL
    assert store.message_count(ROOM) == 0


async def test_a_batch_is_relaxed_only_if_every_write_in_it_is(db_path: Path) -> None:
    worker = await StoreWorker.open(db_path, self_id=SELF)
    try:
        await worker.run(lambda s: s.ensure_room(ROOM, "group", created_at=1))
        commits = GroupCommit(lambda: worker, lambda: None)
        seen: list[int] = []

        def look(store: Store) -> None:
            seen.append(synchronous(store))

        # Alone, a relaxed write skips the fsync.
        await commits.write(look, durable=False)
        # Together with a durable write (one transaction), the batch is durable.
        first = commits.write(look, durable=False)
        second = commits.write(look)
        await asyncio.gather(first, second)
        assert seen == [NORMAL, FULL, FULL]
    finally:
        await worker.close()


_KILLED = textwrap.dedent(
    """
    import os, sys
    from p2pchat.store import NewMessage, Store
    s = Store.open(sys.argv[1])
    s.ensure_room(b"R" * 16, "group", created_at=1)
    with s.transaction(durable=False):
        s.add_messages([NewMessage(id=b"i" * 16, room=b"R" * 16, author=b"A" * 32, seq=1,
            lamport=1, sent_at=1, received_at=1, kind="text", body=b"kept", sig=b"s" * 64)])
    os.kill(os.getpid(), 9)
    """
)


def test_a_relaxed_commit_survives_the_process_being_killed(db_path: Path) -> None:
    db_path.parent.mkdir(parents=True)
    done = subprocess.run(
        [sys.executable, "-c", _KILLED, str(db_path)], check=False, capture_output=True, timeout=60
    )
    assert done.returncode == -9, done.stderr
    store = Store.open(db_path)
    try:
        assert store.message_count(ROOM) == 1
    finally:
        store.close()


async def test_a_failed_write_fails_alone_and_leaves_nothing_whether_batched_or_not(
    db_path: Path,
) -> None:
    """A write alone in its transaction runs without a savepoint; its failure must still
    reach only its caller and undo only what it wrote, as within a batch of several."""
    worker = await StoreWorker.open(db_path, self_id=SELF)
    try:
        await worker.run(lambda s: s.ensure_room(ROOM, "group", created_at=1))
        commits = GroupCommit(lambda: worker, lambda: None)

        def half_then_fail(seq: int) -> Callable[[Store], None]:
            def write(store: Store) -> None:
                store.add_messages([msg(seq=seq)])
                raise RuntimeError("the write failed after its insert")

            return write

        def good(seq: int) -> Callable[[Store], int]:
            return lambda store: store.add_messages([msg(seq=seq)]).count(True)

        # Alone in its transaction.
        with pytest.raises(RuntimeError):
            await commits.write(half_then_fail(1))
        assert await commits.write(good(1)) == 1
        # In one batch with two good writes.
        results = await asyncio.gather(
            commits.write(good(2)),
            commits.write(half_then_fail(3)),
            commits.write(good(3)),
            return_exceptions=True,
        )
        assert results[0] == 1
        assert isinstance(results[1], RuntimeError)
        assert results[2] == 1
        counted = await worker.run(lambda s: s.message_count(ROOM))
        assert counted == 3
        heads = await worker.run(lambda s: s.heads(ROOM))
        assert list(heads.values()) == [3]
    finally:
        await worker.close()
