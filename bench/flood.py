"""Benchmark: one contact floods 48 KB texts; how long do another contact's messages take?

Three nodes in this one process on 127.0.0.1 (throwaway profiles, mDNS off, default
limits): alice, her contact bob, and her contact mallory. First bob sends ``--messages``
short texts to alice one after another (each after alice stored the previous one) with
nobody else talking: the baseline. Then mallory writes signed 48 KB texts to alice as
fast as the connection takes them for ``--seconds`` while bob does the same again.
Printed: bob's one-way latency (send_text at bob to MessageAdded at alice) p50/p99 for
both phases, how much alice's store grew during the flood and how many of mallory's
messages she stored, held back or refused. Everything shares one event loop, so the
figures are pessimistic for bob (mallory's writes and alice's reads compete with him).
``--no-quota`` lifts alice's rate and daily limits, to see fair scheduling and
backpressure alone.

    .venv/bin/python bench/flood.py [--messages 200] [--seconds 12] [--no-quota] [--dir /tmp/x]
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import os
import statistics
import tempfile
import time
from pathlib import Path

from p2pchat.node.config import NodeConfig
from p2pchat.node.envelopes import direct_room_id, new_message_id, sign_envelope
from p2pchat.node.events import Event, MessageAdded, PeerOnline, PeerThrottled
from p2pchat.node.quota import FloodLimits
from p2pchat.node.service import Node
from p2pchat.profile import open_profile
from p2pchat.store import now_ms
from p2pchat.wire import MAX_BODY, Envelope, MessageFrame

STEP = 30.0  # bound on any single wait


async def start_node(name: str, no_quota: bool = False) -> Node:
    profile = open_profile(name)
    profile.set_display_name(name)
    config = NodeConfig(bind="127.0.0.1", discovery=False)
    if no_quota:  # fair scheduling and backpressure only: no rate, no daily budget
        huge = FloodLimits(rate_bytes=1e15, burst_bytes=1e15, daily_bytes=1e15)
        config = dataclasses.replace(config, flood=huge)
    node = Node(profile, config)
    await node.start()
    return node


async def befriend(a: Node, b: Node) -> None:
    seen_by_a, seen_by_b = a.subscribe(), b.subscribe()
    a.links.add_target("127.0.0.1", b.port, "manual", b.me)
    async with asyncio.timeout(STEP):
        await seen_by_a.next_matching(lambda e: isinstance(e, PeerOnline) and e.peer_id == b.me)
        await seen_by_b.next_matching(lambda e: isinstance(e, PeerOnline) and e.peer_id == a.me)
    seen_by_a.close()
    seen_by_b.close()
    await a.accept(b.me)
    await b.accept(a.me)


def store_bytes(node: Node) -> int:
    path = node.profile.store_path
    return sum(p.stat().st_size for p in path.parent.glob(path.name + "*") if p.is_file())


async def latencies(bob: Node, alice: Node, n: int, stop: asyncio.Event | None) -> list[float]:
    """Bob's one-way latencies in ms (stops early once ``stop`` is set)."""
    arrived: dict[bytes, float] = {}
    got = asyncio.Event()
    stream = alice.subscribe()

    async def watch() -> None:
        async for event in stream:
            if isinstance(event, MessageAdded) and event.message.author == bob.me:
                arrived[event.message.id] = time.monotonic()
                got.set()

    watcher = asyncio.create_task(watch())
    out = []
    try:
        for i in range(n):
            if stop is not None and stop.is_set():
                break
            t0 = time.monotonic()
            sent = await bob.send_text(alice.me, f"hello {i}")
            async with asyncio.timeout(STEP):
                while sent.id not in arrived:
                    got.clear()
                    await got.wait()
            out.append((arrived[sent.id] - t0) * 1000)
    finally:
        stream.close()
        watcher.cancel()
    return out


async def flood(mallory: Node, alice: Node, seconds: float, sent: list[int]) -> None:
    room = direct_room_id(mallory.me, alice.me)
    end = time.monotonic() + seconds
    seq = 0
    while time.monotonic() < end:
        for _ in range(8):
            seq += 1
            env = sign_envelope(
                mallory.identity,
                Envelope.unsigned(
                    room=room,
                    id=new_message_id(),
                    author=mallory.me,
                    seq=seq,
                    lamport=seq,
                    ts=now_ms(),
                    kind="text",
                    body=b"%08d" % seq + b"x" * (MAX_BODY - 8),
                ),
            )
            if not mallory.links.write(alice.me, MessageFrame(env=env)):
                return
        sent[0] = seq
        await mallory.links.flush(alice.me)


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def run(n: int, seconds: float, no_quota: bool) -> None:
    alice = await start_node("alice", no_quota)
    bob, mallory = [await start_node(x) for x in ("bob", "mallory")]
    try:
        await befriend(bob, alice)
        await befriend(mallory, alice)
        base = await latencies(bob, alice, n, None)
        print(
            f"bob -> alice, quiet:     p50 {statistics.median(base):7.1f} ms"
            f"   p99 {pct(base, 0.99):7.1f} ms   ({len(base)} messages)"
        )
        notices: list[Event] = []
        stored = [0]
        stream = alice.subscribe()

        async def watch() -> None:
            async for event in stream:
                if isinstance(event, PeerThrottled):
                    notices.append(event)
                elif isinstance(event, MessageAdded) and event.message.author == mallory.me:
                    stored[0] += 1

        watcher = asyncio.create_task(watch())
        before = store_bytes(alice)
        sent = [0]
        stop = asyncio.Event()
        flooding = asyncio.create_task(flood(mallory, alice, seconds, sent))
        flooding.add_done_callback(lambda _: stop.set())
        loaded = await latencies(bob, alice, n * 100, stop)
        await flooding
        grown = store_bytes(alice) - before
        stream.close()
        watcher.cancel()
        print(
            f"bob -> alice, flooded:   p50 {statistics.median(loaded):7.1f} ms"
            f"   p99 {pct(loaded, 0.99):7.1f} ms   ({len(loaded)} messages in {seconds:g} s)"
        )
        held = sum(getattr(e, "held_back", 0) for e in notices)
        refused = sum(getattr(e, "refused", 0) for e in notices)
        print(
            f"mallory wrote {sent[0]} x 48 KB in {seconds:g} s; alice stored {stored[0]} "
            f"by then, store grew {grown / 2**20:.1f} MiB; notices: {len(notices)} "
            f"({held} held back, {refused} refused)"
        )
    finally:
        for node in (mallory, bob, alice):
            await node.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=200)
    parser.add_argument("--seconds", type=float, default=12.0)
    parser.add_argument("--dir", default=None, help="where the throwaway profiles go")
    parser.add_argument(
        "--no-quota", action="store_true", help="alice without rate or daily limits"
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(dir=args.dir, prefix="p2pchat-bench-flood-") as home:
        os.environ["P2PCHAT_HOME"] = str(Path(home))  # never a real profile
        asyncio.run(run(args.messages, args.seconds, args.no_quota))


if __name__ == "__main__":
    main()
