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

    ``handle(items)`` returns one result per item, in order; its exception is every
    item's. The first request after a quiet spell is handled one loop turn later, alone
    or with whatever else came in that turn.
    """

    def __init__(self, handle: Callable[[Sequence[I]], Awaitable[Sequence[R]]]) -> None:
        self._handle = handle
        self._queue: list[tuple[I, asyncio.Future[R]]] = []
        self._runner: asyncio.Task[None] | None = None

    async def submit(self, item: I) -> R:
        """Handle ``item`` with the others waiting; return its result."""
        future: asyncio.Future[R] = asyncio.get_running_loop().create_future()
        self._queue.append((item, future))
        if self._runner is None:
            self._runner = asyncio.ensure_future(self._drain())
        return await future

    async def _drain(self) -> None:
        batch: list[tuple[I, asyncio.Future[R]]] = []
        try:
            while self._queue:
                batch = self._queue[:MAX_TOGETHER]
                del self._queue[:MAX_TOGETHER]
                try:
                    results = await self._handle([item for item, _ in batch])
                except Exception as exc:  # every item's failure, as it was alone
                    for _, future in batch:
                        if not future.done():
                            future.set_exception(exc)
                else:
                    for (_, future), result in zip(batch, results, strict=True):
                        if not future.done():
                            future.set_result(result)
                batch = []
        finally:
            self._runner = None
            # Cancelled (the node stops): nobody is left waiting for an answer.
            for _, future in [*batch, *self._queue]:
                future.cancel()
            self._queue.clear()


__all__ = ["MAX_TOGETHER", "Coalescer"]
