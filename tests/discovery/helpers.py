"""Helpers shared by the discovery tests: random peer ids and event collectors."""

from __future__ import annotations

import asyncio
import base64
import os
from collections.abc import Callable

from p2pchat.discovery import Discovery, PeerLost, PeerSeen

Event = PeerSeen | PeerLost


def random_peer_id() -> str:
    """A fresh, well-formed 52-char base32 peer id."""
    return base64.b32encode(os.urandom(32)).decode().lower().rstrip("=")


class Collector:
    """Records a Discovery's events and lets a test wait for one, with a deadline."""

    def __init__(self) -> None:
        self.events: list[Event] = []
        self._changed = asyncio.Event()

    def __call__(self, event: Event) -> None:
        self.events.append(event)
        self._changed.set()

    async def wait_for(self, predicate: Callable[[Event], bool], within: float = 10.0) -> Event:
        """The first recorded event (past or future) matching ``predicate``."""
        async with asyncio.timeout(within):
            while True:
                for event in self.events:
                    if predicate(event):
                        return event
                self._changed.clear()
                await self._changed.wait()

    def about(self, peer_id: str) -> list[Event]:
        return [e for e in self.events if e.peer_id == peer_id]


class Node:
    """A Discovery with its collector and id, as the tests use them."""

    def __init__(self, name: str, port: int, *, announce: bool = True) -> None:
        self.peer_id = random_peer_id()
        self.events = Collector()
        self.discovery = Discovery(
            peer_id=self.peer_id,
            name=name,
            port=port,
            announce=announce,
            interfaces=["127.0.0.1"],
            on_event=self.events,
        )

    async def seen(self, other: Node, within: float = 10.0) -> PeerSeen:
        event = await self.events.wait_for(
            lambda e: isinstance(e, PeerSeen) and e.peer_id == other.peer_id, within
        )
        assert isinstance(event, PeerSeen)
        return event
