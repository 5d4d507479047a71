"""Fan-out of node events to any number of subscribers (UI, control clients, tests)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable

from p2pchat.node.events import Event

log = logging.getLogger(__name__)

# A subscriber that falls this far behind loses events (and is told so) rather than
# letting one stuck script grow the node's memory without bound.
MAX_BACKLOG = 10_000


class EventStream:
    """One subscriber's queue of events; iterate it with ``async for``."""

    def __init__(self, hub: EventHub) -> None:
        self._hub = hub
        self._queue: asyncio.Queue[Event | None] = asyncio.Queue()
        self.dropped = 0

    def _offer(self, event: Event | None) -> None:
        if event is not None and self._queue.qsize() >= MAX_BACKLOG:
            self.dropped += 1
            return
        self._queue.put_nowait(event)

    async def get(self) -> Event | None:
        """The next event, or None once the node stopped or the stream was closed."""
        return await self._queue.get()

    async def next_matching(self, predicate: Callable[[Event], bool]) -> Event:
        """Wait for the next event satisfying ``predicate`` (wrap in asyncio.timeout)."""
        while True:
            event = await self._queue.get()
            if event is None:
                raise EOFError("event stream closed")
            if predicate(event):
                return event

    def close(self) -> None:
        """Stop receiving events."""
        self._hub.unsubscribe(self)
        self._queue.put_nowait(None)

    def __aiter__(self) -> AsyncIterator[Event]:
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[Event]:
        while True:
            event = await self._queue.get()
            if event is None:
                return
            yield event


class EventHub:
    """Delivers every emitted event to every current subscriber, in order."""

    def __init__(self) -> None:
        self._streams: list[EventStream] = []

    def subscribe(self) -> EventStream:
        """A new stream that sees every event emitted from now on."""
        stream = EventStream(self)
        self._streams.append(stream)
        return stream

    def unsubscribe(self, stream: EventStream) -> None:
        """Remove ``stream``; harmless if already gone."""
        if stream in self._streams:
            self._streams.remove(stream)

    def emit(self, event: Event) -> None:
        """Hand ``event`` to every subscriber without waiting."""
        for stream in self._streams:
            stream._offer(event)

    def close(self) -> None:
        """End every stream (the node is stopping)."""
        for stream in list(self._streams):
            stream._offer(None)
        self._streams.clear()
