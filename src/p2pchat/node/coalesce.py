"""Many small requests of one kind, handled together while the previous lot is handled.

Every member of a 50-member room acknowledges each of our messages: 49 receipts, each a
store write of a few statements, arriving one by one as the members store the message.
Handled one at a time, the author's store thread ran five statements per receipt while
the members were still storing; handled together, the receipts that came while one lot
was being written share one look-up of the messages and one count per message.

A request waits for its own result, as before, so a peer sending requests faster than
they are handled is still held back by its own read loop: nothing queues without bound
(``MAX_TOGETHER`` per lot; the rest waits its turn).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Final, Generic, TypeVar

I = TypeVar("I")  # noqa: E741 (an item)
R = TypeVar("R")

#: Requests handled in one call of the handler, at most.
MAX_TOGETHER: Final = 64


class Coalescer(Generic[I, R]):
    """Hands ``handle`` every request that arrived while its previous call ran.

    ``handle(items)`` returns one result per item, in order. When it raises for a lot of
    several, each item is handled again alone, so one request's failure is its own (as
    it was before they were handled together) and the others still succeed. The first
    request after a quiet spell is handled one loop turn later, alone or with whatever
    else came in that turn.
    """

    def __init__(self, handle: Callable[[Sequence[I]], Awaitable[Sequence[R]]]) -> None:
        self._handle = handle
        self._queue: list[tuple[I, asyncio.Future[R]]] = []
        self._runner: asyncio.Task[None] | None = None

    async def submit(self, item: I) -> R:
        """Handle ``item`` with the others waiting; return its result."""
        future: asyncio.Future[R] = asyncio.get_running_loop().create_future()
        self._queue.append((item, future))
        if self._runner is None or self._runner.done():
            self._runner = asyncio.ensure_future(self._drain())
            self._runner.add_done_callback(self._finished)
        return await future

    def _finished(self, runner: asyncio.Task[None]) -> None:
        """A runner ended. Cancelled (the loop shuts down), even before it ever ran, it
        leaves nobody waiting for an answer: what is queued is cancelled too."""
        if self._runner is not runner:
            return  # a newer runner owns the queue
        self._runner = None
        if runner.cancelled():
            for _, future in self._queue:
                future.cancel()
            self._queue.clear()

    async def _drain(self) -> None:
        lot: list[tuple[I, asyncio.Future[R]]] = []
        try:
            while self._queue:
                lot = self._queue[:MAX_TOGETHER]
                del self._queue[:MAX_TOGETHER]
                if len(lot) == 1 or not await self._answer(lot, alone=False):
                    for request in lot:
                        await self._answer([request], alone=True)
                lot = []
        finally:
            for _, future in lot:  # cancelled while handling it (see _finished)
                future.cancel()

    async def _answer(self, lot: list[tuple[I, asyncio.Future[R]]], *, alone: bool) -> bool:
        """Handle ``lot`` and answer each request; False if it failed and was not alone."""
        try:
            results = await self._handle([item for item, _ in lot])
            if len(results) != len(lot):
                raise ValueError(f"{len(results)} results for {len(lot)} requests")
        except Exception as exc:
            if not alone:
                return False
            for _, future in lot:
                if not future.done():
                    future.set_exception(exc)
            return True
        for (_, future), result in zip(lot, results, strict=True):
            if not future.done():
                future.set_result(result)
        return True


__all__ = ["MAX_TOGETHER", "Coalescer"]
