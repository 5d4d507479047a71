"""One worker per key, always on the latest value: bounded work for floods of requests.

A member may send ``sync`` heads for a room as often as it likes; answering each one
would let it make us do unbounded work. Here at most one worker runs per key (a peer and
a room), and a value that arrives while it runs replaces the one waiting, so a flood
costs one run after the current one, whatever its size.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Hashable
from typing import Generic, TypeVar

from p2pchat.transport import TransportError

log = logging.getLogger(__name__)

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class LatestWins(Generic[K, V]):
    """Runs ``handle(key, value)`` for the newest value offered per key, one at a time.

    ``handle`` returns how long to wait before the next run of that key (a rate limit),
    or 0. A TransportError ends the key's runs quietly (the link went away; the next
    connection starts over); any other error is logged.
    """

    def __init__(
        self,
        what: str,
        handle: Callable[[K, V], Awaitable[float]],
        tasks: set[asyncio.Task[None]],
        merge: Callable[[V, V], V] | None = None,
    ) -> None:
        self._what = what
        self._handle = handle
        self._merge = merge
        self._tasks = tasks
        self._wanted: dict[K, V] = {}
        self.running: set[K] = set()

    def offer(self, key: K, value: V) -> None:
        """Run for ``value`` soon (replacing, or merged with, a value still waiting)."""
        waiting = self._wanted.get(key)
        if waiting is not None and self._merge is not None:
            value = self._merge(waiting, value)
        self._wanted[key] = value
        if key in self.running:
            return
        self.running.add(key)
        task = asyncio.ensure_future(self._work(key))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _work(self, key: K) -> None:
        try:
            while (value := self._wanted.pop(key, None)) is not None:
                pause = await self._handle(key, value)
                if pause > 0:
                    await asyncio.sleep(pause)  # a rate limit, not a wait for state
        except TransportError:
            pass
        except Exception:
            log.exception("%s failed", self._what)
        finally:
            self.running.discard(key)
            self._wanted.pop(key, None)
