"""Disappearing messages: remove each message under a timer when its time is up.

Every node removes expired messages itself, on time, from its own store (the row
becomes a tombstone: text, signature, reactions and edits gone), so nothing depends on
the author being online. A deadline that passed while the node was stopped is met at
the next start. The author then publishes one signed ``delete`` for its own expired
messages: a member who never received them (away longer than the timer) fills their
seqs from it instead of waiting for envelopes nobody holds any more.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time
from collections import defaultdict
from collections.abc import Callable
from typing import TYPE_CHECKING

from p2pchat.node.edits import KIND_DELETE, MAX_DELETE_TARGETS, Target, encode_delete
from p2pchat.node.errors import NodeError
from p2pchat.store import Store, now_ms
from p2pchat.store.changes import expired, next_expiry, tombstone, uncertified_tombstones

if TYPE_CHECKING:
    from p2pchat.node.facade import NodeFacade

log = logging.getLogger(__name__)

#: The longest the sweeper sleeps without looking (a clock that jumps is noticed then).
MAX_SLEEP = 60.0
#: Removals per store write (a huge backlog after a long absence goes in several).
SWEEP_BATCH = 500
#: Seconds between two announcements of our own expired messages (one delete per room).
VOUCH_EVERY = 30.0
#: "1" while some of our expired messages may still lack their delete envelope.
SETTING_UNVOUCHED = "expiry_unvouched"


class ExpiryService:
    """Sweeps expired messages for one node; ``clock`` is replaceable in tests."""

    def __init__(self, node: NodeFacade) -> None:
        self.node = node
        self.clock: Callable[[], int] = now_ms
        self._wake: asyncio.Event | None = None
        self._last_vouch = float("-inf")

    def poke(self) -> None:
        """Look again now (a deadline may have come closer, or the clock moved)."""
        if self._wake is not None:
            self._wake.set()

    async def run(self) -> None:
        """Sweep until cancelled (the node runs this as one of its tasks)."""
        self._wake = asyncio.Event()
        while True:
            try:
                due = await self.sweep()
            except asyncio.CancelledError:
                raise
            except Exception:  # a store error must not end disappearing for this run
                log.exception("could not remove expired messages")
                due = None
            delay = MAX_SLEEP
            if due is not None:
                delay = min(MAX_SLEEP, max(0.05, (due - self.clock()) / 1000))
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(delay):
                    await self._wake.wait()
            self._wake.clear()

    async def sweep(self) -> int | None:
        """Remove what is due; vouch for our own removals; the next deadline, if any."""
        node = self.node
        while True:
            now = self.clock()

            def work(store: Store, now: int = now) -> tuple[int, int | None, bool]:
                gone = expired(store, now, SWEEP_BATCH)
                mine = False
                if gone:
                    done = node.changes.expire(store, [mid for mid, _ in gone])
                    mine = any(m.author == node.me for m in store.get_messages(done))
                    if mine:  # announced below; remembered in case we stop before
                        store.set_setting(SETTING_UNVOUCHED, "1")
                return len(gone), next_expiry(store), mine

            count, due, mine = await node.store_write(work)
            node.changes.emit_changed()
            if count < SWEEP_BATCH:
                break
        if mine or await node.store_read(_unvouched):
            # One delete per room for everything that went since the last one: not one
            # per message, each of which has a deadline of its own.
            wait = self._last_vouch + VOUCH_EVERY - time.monotonic()
            if wait <= 0:
                self._last_vouch = time.monotonic()
                await self._vouch_for_own()
            else:
                due = min(due or 2**63, self.clock() + int(wait * 1000) + 1)
        return due

    async def _vouch_for_own(self) -> None:
        """Publish a delete for our own expired messages, room by room."""
        node = self.node
        rows = await node.store_read(lambda s: uncertified_tombstones(s, node.me, 100_000))
        by_room: dict[bytes, list[Target]] = defaultdict(list)
        for row in rows:
            by_room[row.room].append(Target(row.id, row.author, row.seq))
        for room, targets in by_room.items():
            for start in range(0, len(targets), MAX_DELETE_TARGETS):
                batch = targets[start : start + MAX_DELETE_TARGETS]
                try:
                    await node.send_to_room(room, KIND_DELETE, encode_delete(batch), None)
                except NodeError as exc:  # a room we left: nobody to tell
                    log.info("kept expired messages unannounced in %s: %s", room.hex()[:8], exc)
                    ids = [t.id for t in batch]
                    await node.store_write(functools.partial(_mark_unannounced, ids=ids))
        await node.store_write(lambda s: s.set_setting(SETTING_UNVOUCHED, "0"))


def _unvouched(store: Store) -> bool:
    return store.get_setting(SETTING_UNVOUCHED, "0") == "1"


def _mark_unannounced(store: Store, *, ids: list[bytes]) -> None:
    """Store thread: tombstones we cannot vouch for (we left the room) stop being retried.

    They point at themselves, which no delete envelope is, so relaying skips them.
    """
    for mid in ids:
        tombstone(store, [mid], mid)
