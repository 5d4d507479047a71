"""Fixtures for discovery tests: event collectors, random peer ids, the netns harness."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import pytest

# tests/netns.py is shared by several test packages; make `tests.netns` importable whatever
# pytest's import mode put on sys.path.
_ROOT = str(Path(__file__).resolve().parents[2])
if _ROOT not in sys.path:
    sys.path.insert(0, _ROOT)

from tests.discovery.helpers import Node  # noqa: E402
from tests.netns import NetnsNetwork, netns_network  # noqa: E402


@pytest.fixture
async def make_node() -> AsyncIterator[Callable[..., Node]]:
    """Factory for loopback Discovery nodes; all are stopped (bounded) at teardown."""
    nodes: list[Node] = []

    def factory(name: str, port: int, *, announce: bool = True) -> Node:
        node = Node(name, port, announce=announce)
        nodes.append(node)
        return node

    yield factory
    async with asyncio.timeout(20):
        await asyncio.gather(*(n.discovery.stop() for n in nodes))
    for node in nodes:
        # Whatever else a test checks, a node must never report itself.
        assert node.events.about(node.peer_id) == []


@pytest.fixture
def netns_pair() -> Iterator[NetnsNetwork]:
    """Two namespaces joined by veth (skips with a reason when not root / no `ip netns`)."""
    with netns_network(2) as net:
        yield net
