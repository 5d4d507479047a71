"""File-serving slots: strangers must not keep a contact's download waiting.

A node serves files on at most 32 connections (4 per peer). Strangers are never served,
but they could open files connections for free: if the slot were taken before asking
who is there, nine strangers holding four connections each would leave no slot for a
real contact, whose download would stay paused for as long as the attack lasts.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from pathlib import Path

from p2pchat.node import Node
from p2pchat.node.events import TransferProgress
from p2pchat.node.transfer import MAX_SERVING, MAX_SERVING_PER_PEER
from p2pchat.transport import Connection, ConnectionClosedError, LocalHello, TransportError, connect
from p2pchat.wire import PURPOSE_FILES, ChunkError, ChunkRequest
from tests.adversary.hostile import Hostile, hostile_peer
from tests.nodes import wait_for
from tests.transfer.helpers import start_pair, write_random

#: Enough strangers, each at the per-peer cap, to hold every serving slot and more.
STRANGERS = MAX_SERVING // MAX_SERVING_PER_PEER + 1
#: How long the whole attack may run; it stops earlier once the download is done.
ATTACK_SECONDS = 40.0


async def files_connection(stranger: Hostile, target: Node) -> Connection:
    hello = LocalHello(identity=stranger.node.identity, name="mallory", purpose=PURPOSE_FILES)
    return await connect("127.0.0.1", target.port, hello, expected_peer=target.me, deadline=5)


async def junk_gets(
    stranger: Hostile, target: Node, first_answer: asyncio.Event, stop: asyncio.Event
) -> int:
    """Keep one files connection to ``target`` busy with ``get``s for unknown hashes,
    reconnecting whenever it is closed; return how many gets were sent."""
    sent = 0
    answered = False
    loop = asyncio.get_running_loop()
    deadline = loop.time() + ATTACK_SECONDS
    while not stop.is_set() and loop.time() < deadline:
        try:
            conn = await files_connection(stranger, target)
        except TransportError:
            await asyncio.sleep(0.05)
            continue
        try:
            while not stop.is_set() and loop.time() < deadline:
                sent += 1
                conn.write_frame(ChunkRequest(req=sent, hash=os.urandom(32), offset=0, length=1000))
                await conn.flush()
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(0.2):
                        frame = await conn.recv()
                        if isinstance(frame, ChunkError) and not answered:
                            answered = True
                            first_answer.set()
        except (ConnectionClosedError, TransportError):
            pass
        finally:
            await conn.close("attack over")
    return sent


async def test_strangers_flooding_gets_cannot_hold_serving_slots(tmp_path: Path) -> None:
    alice, bob = await start_pair(tmp_path)
    strangers = [await hostile_peer(f"mallory{i}", alice) for i in range(STRANGERS)]
    stop = asyncio.Event()
    answers: list[asyncio.Event] = []
    attackers: list[asyncio.Task[int]] = []
    try:
        for stranger in strangers:
            for _ in range(MAX_SERVING_PER_PEER):
                answered = asyncio.Event()
                answers.append(answered)
                attackers.append(asyncio.create_task(junk_gets(stranger, alice, answered, stop)))
        # Every attacking connection has been heard (and refused) before the download.
        async with asyncio.timeout(20):
            for answered in answers:
                await answered.wait()

        src = tmp_path / "report.bin"
        write_random(src, 3 * 1024 * 1024)
        events = bob.subscribe()
        try:
            message = await alice.transfers.send_file(bob.me, src)
            done = await wait_for(
                events,
                lambda e: (
                    isinstance(e, TransferProgress)
                    and e.message_id == message.id
                    and e.state in ("done", "failed", "cancelled")
                ),
                within=20,
            )
        finally:
            events.close()
        assert isinstance(done, TransferProgress)
        assert done.state == "done", done.detail
        assert all(not task.done() for task in attackers), "the attack stopped early"
    finally:
        stop.set()
        sent = await asyncio.gather(*attackers, return_exceptions=True)
        for stranger in strangers:
            await stranger.node.stop()
        await alice.stop()
        await bob.stop()
    assert sum(n for n in sent if isinstance(n, int)) >= len(attackers)


async def test_one_contact_holds_at_most_four_serving_slots(tmp_path: Path) -> None:
    """A contact is served, but on at most four connections at once: the rest are
    turned away as busy, so one contact cannot hold the slots the others need."""
    alice, mallory = await start_pair(tmp_path)  # contacts of each other
    attacker = Hostile(mallory)
    served: list[Connection] = []
    turned_away = 0
    try:
        for i in range(2 * MAX_SERVING_PER_PEER):
            conn = await files_connection(attacker, alice)
            conn.write_frame(ChunkRequest(req=i, hash=os.urandom(32), offset=0, length=1000))
            await conn.flush()
            try:
                async with asyncio.timeout(5):
                    frame = await conn.recv()
            except ConnectionClosedError:
                turned_away += 1
                await conn.close("turned away")
                continue
            assert isinstance(frame, ChunkError)
            assert frame.reason != "not a contact"
            served.append(conn)  # kept open: it holds its slot
        assert len(served) == MAX_SERVING_PER_PEER
        assert turned_away == MAX_SERVING_PER_PEER
    finally:
        for conn in served:
            await conn.close("test over")
        await alice.stop()
        await mallory.stop()
