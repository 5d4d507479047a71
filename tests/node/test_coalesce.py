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


async def test_a_failure_is_only_the_failing_requests_own() -> None:
    handler = Handler()
    handler.fail_on = 3
    together = Coalescer(handler)
    first = asyncio.ensure_future(together.submit(1))
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    fine, failing = (asyncio.ensure_future(together.submit(i)) for i in (2, 3))
    await asyncio.sleep(0)
    handler.release.set()
    assert await first == 2
    assert await fine == 4  # handled again alone after its lot failed
    with pytest.raises(ValueError, match="refused"):
        await failing
    assert handler.calls == [[1], [2, 3], [2], [3]]
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
    runner = together._runner  # as the loop's shutdown does
    assert runner is not None
    runner.cancel()
    for request in (first, waiting):
        with pytest.raises(asyncio.CancelledError):
            await request


async def test_a_runner_cancelled_before_it_ran_leaves_nobody_waiting() -> None:
    handler = Handler()
    handler.release.set()
    together = Coalescer(handler)
    first = asyncio.ensure_future(together.submit(1))
    await asyncio.sleep(0)  # queued, its runner created but not yet started
    runner = together._runner
    assert runner is not None
    runner.cancel()
    async with asyncio.timeout(5):
        with pytest.raises(asyncio.CancelledError):
            await first
        assert await together.submit(2) == 4  # and a new request gets a new runner
    assert handler.calls == [[2]]
