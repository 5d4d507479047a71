"""Coalescer: requests that arrive while one lot is handled are handled together."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import pytest

from p2pchat.node.coalesce import MAX_TOGETHER, Coalescer


class Handler:
    """Doubles each item; the first call waits until released, so others queue up."""

    def __init__(self) -> None:
        self.calls: list[list[int]] = []
        self.release = asyncio.Event()
        self.fail_on: int | None = None

    async def __call__(self, items: Sequence[int]) -> list[int]:
        self.calls.append(list(items))
        if len(self.calls) == 1:
            await self.release.wait()
        if self.fail_on in items:
            raise ValueError("refused")
        return [2 * i for i in items]


async def test_requests_made_while_one_is_handled_are_handled_together() -> None:
    handler = Handler()
    together = Coalescer(handler)
    first = asyncio.ensure_future(together.submit(1))
    await asyncio.sleep(0)  # the first lot starts with the first request alone
    await asyncio.sleep(0)
    rest = [asyncio.ensure_future(together.submit(i)) for i in (2, 3, 4)]
    await asyncio.sleep(0)
    handler.release.set()
    assert await first == 2
    assert [await r for r in rest] == [4, 6, 8]  # each gets its own result
    assert handler.calls == [[1], [2, 3, 4]]


async def test_a_failure_is_every_item_of_its_lot_and_only_theirs() -> None:
    handler = Handler()
    handler.fail_on = 3
    together = Coalescer(handler)
    first = asyncio.ensure_future(together.submit(1))
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    failing = [asyncio.ensure_future(together.submit(i)) for i in (2, 3)]
    await asyncio.sleep(0)
    handler.release.set()
    assert await first == 2
    for request in failing:
        with pytest.raises(ValueError, match="refused"):
            await request
    assert await together.submit(5) == 10  # and the next lot is handled as usual


async def test_a_lot_never_holds_more_than_max_together() -> None:
    handler = Handler()
    together = Coalescer(handler)
    first = asyncio.ensure_future(together.submit(0))
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    many = [asyncio.ensure_future(together.submit(i)) for i in range(1, MAX_TOGETHER + 6)]
    await asyncio.sleep(0)
    handler.release.set()
    await first
    assert [await r for r in many] == [2 * i for i in range(1, MAX_TOGETHER + 6)]
    assert [len(c) for c in handler.calls] == [1, MAX_TOGETHER, 5]


async def test_waiting_requests_are_cancelled_when_the_handling_is() -> None:
    handler = Handler()
    together = Coalescer(handler)
    first = asyncio.ensure_future(together.submit(1))
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    waiting = asyncio.ensure_future(together.submit(2))
    await asyncio.sleep(0)
    runner = together._runner  # the node stopping cancels its tasks
    assert runner is not None
    runner.cancel()
    for request in (first, waiting):
        with pytest.raises(asyncio.CancelledError):
            await request
