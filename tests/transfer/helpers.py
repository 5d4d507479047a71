"""Shared helpers for file-transfer tests: befriended node pairs, files, waiting on states."""

from __future__ import annotations

import asyncio
import hashlib
import os
from collections.abc import AsyncIterator
from pathlib import Path

from p2pchat.node.events import Event, TransferProgress
from p2pchat.node.service import SETTING_DOWNLOAD_DIR, Node
from p2pchat.node.stream import EventStream
from p2pchat.node.transfer import TransferInfo
from tests.nodes import connected_pair, make_node
from tests.proxy import FaultProxy

FINAL = ("done", "failed", "cancelled")


async def befriend(a: Node, b: Node) -> None:
    """Connect two nodes and make each a contact of the other."""
    await connected_pair(a, b)
    await a.accept(b.me)
    await b.accept(a.me)


async def start_pair(tmp_path: Path, **overrides: object) -> tuple[Node, Node]:
    """Alice and Bob, started, contacts of each other; Bob downloads into tmp/downloads."""
    alice, bob = make_node("alice", **overrides), make_node("bob", **overrides)
    await alice.start()
    await bob.start()
    await bob.set_text_setting(SETTING_DOWNLOAD_DIR, str(tmp_path / "downloads"))
    await alice.set_text_setting(SETTING_DOWNLOAD_DIR, str(tmp_path / "alice-downloads"))
    await befriend(alice, bob)
    return alice, bob


async def stop_all(*nodes: Node) -> AsyncIterator[None] | None:
    for node in nodes:
        await node.stop()
    return None


def write_random(path: Path, size: int, seed: int = 1) -> bytes:
    """Write ``size`` pseudo-random bytes quickly (blocks of a seeded stream); return SHA-256."""
    digest = hashlib.sha256()
    block = hashlib.shake_256(seed.to_bytes(8, "big")).digest(1 << 20)
    with path.open("wb") as f:
        left = size
        i = 0
        while left > 0:
            # Vary each block cheaply so the file is not periodic.
            piece = (i.to_bytes(8, "big") + block[8:])[: min(left, len(block))]
            f.write(piece)
            digest.update(piece)
            left -= len(piece)
            i += 1
    return digest.digest()


def write_bytes(path: Path, data: bytes) -> bytes:
    path.write_bytes(data)
    return hashlib.sha256(data).digest()


def sha256_file(path: Path) -> bytes:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while block := f.read(1 << 20):
            digest.update(block)
    return digest.digest()


def is_final(message_id: bytes, incoming: bool = True) -> object:
    def check(e: Event) -> bool:
        return (
            isinstance(e, TransferProgress)
            and e.message_id == message_id
            and e.incoming == incoming
            and e.state in FINAL
        )

    return check


async def wait_final(
    node: Node, stream: EventStream, message_id: bytes, within: float = 60.0
) -> TransferInfo:
    """Wait until ``node``'s transfer ``message_id`` is done, failed or cancelled."""
    async with asyncio.timeout(within):
        while True:
            info = await node.transfers.get(message_id)
            if info is not None and info.state in FINAL:
                return info
            try:
                async with asyncio.timeout(1.0):
                    await stream.next_matching(
                        lambda e: (
                            isinstance(e, TransferProgress)
                            and e.message_id == message_id
                            and e.state in FINAL
                        )
                    )
            except TimeoutError:
                continue


def listing(folder: Path) -> list[str]:
    """Names in ``folder`` (excluding the hidden parts folder)."""
    if not folder.exists():
        return []
    return sorted(n for n in os.listdir(folder) if n != ".p2pchat-partial")


class HeldRoute:
    """The receiver's file downloads from the sender, through a proxy that holds the flow
    once, at the sender's ``at``-th message (so a transfer cannot finish before the test
    acts). ``held`` is set when that happened; ``release()`` lets bytes flow again."""

    def __init__(self, proxy: FaultProxy, held: asyncio.Event) -> None:
        self.proxy = proxy
        self.held = held

    def release(self) -> None:
        self.proxy.paused.set()

    async def stop(self) -> None:
        await self.proxy.stop()


async def hold_downloads(sender: Node, receiver: Node, *, at: int = 20) -> HeldRoute:
    """Route ``receiver``'s downloads from ``sender`` through a holding proxy."""
    held = asyncio.Event()

    def hook(direction: str, index: int, data: bytes) -> list[bytes]:
        if direction == "s2c" and index == at and not held.is_set():
            held.set()
            proxy.paused.clear()
        return [data]

    proxy = await FaultProxy("127.0.0.1", sender.port, hook=hook).start()

    async def via_proxy(peer: bytes) -> list[tuple[str, int]]:
        return [("127.0.0.1", proxy.port)]

    receiver.transfers.addresses_for = via_proxy
    return HeldRoute(proxy, held)
