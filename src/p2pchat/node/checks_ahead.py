"""Signature checks of an inbound batch, started before the batch's turn to be stored.

Why: a catch-up arrives as a stream of full batches, and ingesting one batch (look-up of
held ids, the Ed25519 checks, the storing) ran one step after another, with the checks
half of the work. libsodium and SQLite both release the GIL, so checking batch N+1 in the
verifier threads while the store thread stores batch N puts the steps on both cores.

A verdict is looked up by the envelope object itself (its ``id()``, kept alive by the
batch), not by its message id: two envelopes with one message id but different bytes get
their own verdicts. An envelope no batch covers is checked on the spot, so a caller never
depends on a check having been started.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from p2pchat.node.envelopes import envelope_is_authentic
from p2pchat.wire import Envelope


@dataclass
class CheckedBatch:
    """The envelopes of one batch and the futures of their verdicts, in parts.

    The batch is checked in parts so that more than one verifier thread can take it.
    """

    envelopes: list[Envelope]
    parts: list[concurrent.futures.Future[list[bool]]]
    part_size: int
    position: dict[int, int] = field(default_factory=dict)

    def verdict(self, at: int) -> bool:
        """Any thread: the verdict of the envelope at ``at``, waiting for it if need be."""
        return self.parts[at // self.part_size].result()[at % self.part_size]

    async def verdicts(self) -> list[bool]:
        """Loop thread: every verdict, in order, once all parts are done."""
        done = await asyncio.gather(*(asyncio.wrap_future(p) for p in self.parts))
        return [ok for part in done for ok in part]


class ChecksAhead:
    """Verdicts of batches being checked or waiting to be stored (at most a few at once).

    The loop thread starts and finishes batches; the store thread and the loop read
    verdicts. Readers iterate over a snapshot of the list, so a batch finished meanwhile
    only means its envelopes are checked on the spot.
    """

    def __init__(self, min_batch: int, parts: int) -> None:
        self._min_batch = min_batch
        self._parts = parts
        self._batches: list[CheckedBatch] = []
        # Ids stored lately (loop thread): a copy of one of them is not checked ahead,
        # since the ingest skips the check of what it holds (overlapping pushes, relays).
        self._held: OrderedDict[bytes, None] = OrderedDict()

    def note_held(self, ids: Iterable[bytes]) -> None:
        """Loop thread: these messages are stored now (the latest HELD_REMEMBERED kept)."""
        held = self._held
        for mid in ids:
            held[mid] = None
            held.move_to_end(mid)
        while len(held) > HELD_REMEMBERED:
            held.popitem(last=False)

    def clear(self) -> None:
        """Forget every batch (the ingest loop ended); their readers check on the spot."""
        for batch in tuple(self._batches):
            self.finish(batch)

    def start(
        self, executor: concurrent.futures.Executor, envelopes: Sequence[Envelope]
    ) -> CheckedBatch | None:
        """Check ``envelopes`` (but copies of messages stored lately) in ``executor`` from
        now; None for a batch too small to pay for the thread hop, or an executor shut
        down (the node is stopping): those are checked where they are ingested."""
        listed = [env for env in envelopes if env.id not in self._held]
        if len(listed) < self._min_batch:
            return None
        size = -(-len(listed) // self._parts)
        try:
            parts = [
                executor.submit(_check_all, listed[i : i + size])
                for i in range(0, len(listed), size)
            ]
        except RuntimeError:  # "cannot schedule new futures after shutdown"
            return None
        batch = CheckedBatch(listed, parts, size, {id(env): i for i, env in enumerate(listed)})
        self._batches.append(batch)
        return batch

    def finish(self, batch: CheckedBatch | None) -> None:
        """Forget ``batch`` (it was stored, or given up); its check, if still running,
        is left to end by itself."""
        if batch is not None:
            self._batches.remove(batch)
            for part in batch.parts:
                part.cancel()

    def covering(self, envelopes: Sequence[Envelope]) -> CheckedBatch | None:
        """The batch that checks every one of ``envelopes``, if one does."""
        if not envelopes:
            return None
        for batch in tuple(self._batches):
            if all(id(env) in batch.position for env in envelopes):
                return batch
        return None

    def is_authentic(self, env: Envelope) -> bool:
        """Any thread: this envelope's verdict, waiting for its batch's check if that is
        still running, or checked now if no batch covers it."""
        for batch in tuple(self._batches):
            at = batch.position.get(id(env))
            if at is not None:
                try:
                    return batch.verdict(at)
                except concurrent.futures.CancelledError:
                    break  # finished meanwhile (the node is stopping): check it here
        return envelope_is_authentic(env)


#: Stored message ids remembered to spare their copies a check ahead (about 1 MB).
HELD_REMEMBERED = 20_000

#: Verifier threads: Ed25519 checks release the GIL, so two run on two cores at once.
VERIFIER_THREADS = 2


def new_verifier() -> concurrent.futures.ThreadPoolExecutor:
    """The node's pool for signature checks (one per started node)."""
    return concurrent.futures.ThreadPoolExecutor(
        max_workers=VERIFIER_THREADS, thread_name_prefix="p2pchat-verify"
    )


def _check_all(envelopes: list[Envelope]) -> list[bool]:
    return [envelope_is_authentic(env) for env in envelopes]
