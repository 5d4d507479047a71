"""Benchmark: message latency and throughput between two p2pchat nodes on loopback.

DESIGN.md's budget is measured here, never by timed tests. Two befriended nodes run in
this process (same clock), each with its own throwaway profile and store, talking over
real TCP + Noise on 127.0.0.1. Figures:

(a) one-way latency of a small message: ``send_text()`` call -> ``MessageAdded`` at the
    receiver (so both stores' durable commits are inside it), N sequential, p50/p99;
(b) sustained throughput: M messages with a bounded window of in-flight ``send_text``
    calls, timed until every one is DELIVERED at the sender (receipt came back);
(c) the same two figures for a baseline in the same run: bare length-prefixed msgpack
    over a plain asyncio TCP connection on loopback (no crypto, no store), acked per
    message for the throughput figure; and the ratios node / baseline;
(d) fsync cost of the directory the stores live in, since every message pays two
    durable commits (sender, receiver) and that bounds latency on slow disks.

Discovery time between network namespaces is measured by ``bench/discovery.py``.

    .venv/bin/python bench/messages.py [--latency-n 1000] [--messages 5000] [--window 256]
                                       [--dir /some/tmp] [--profile latency|throughput]
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import os
import pstats
import statistics
import tempfile
import threading
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TypeVar

import msgpack

from p2pchat.node.config import NodeConfig
from p2pchat.node.events import Event, MessageAdded, PeerOnline, ReceiptChanged
from p2pchat.node.service import Node
from p2pchat.profile import open_profile
from p2pchat.store import MessageStatus, StoreWorker

T = TypeVar("T")

TARGET_P50_MS = 1.0
TARGET_P99_MS = 5.0
TARGET_RATE = 5000.0


def pct(values: list[float], q: float) -> float:
    """The q-quantile (0..1) of ``values`` by nearest rank."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


# ------------------------------------------------------------------ the node


async def start_pair() -> tuple[Node, Node]:
    """Two befriended nodes on loopback with discovery off."""
    config = NodeConfig(bind="127.0.0.1", discovery=False)
    nodes = []
    for name in ("alice", "bob"):
        profile = open_profile(name)
        profile.set_display_name(name)
        node = Node(profile, config)
        await node.start()
        nodes.append(node)
    alice, bob = nodes
    sa, sb = alice.subscribe(), bob.subscribe()
    alice.links.add_target("127.0.0.1", bob.port, "manual", bob.me)
    async with asyncio.timeout(15):
        if not alice.links.is_online(bob.me):
            await sa.next_matching(lambda e: isinstance(e, PeerOnline))
        if not bob.links.is_online(alice.me):
            await sb.next_matching(lambda e: isinstance(e, PeerOnline))
    sa.close()
    sb.close()
    await alice.accept(bob.me)
    await bob.accept(alice.me)
    return alice, bob


async def node_latency(alice: Node, bob: Node, n: int) -> tuple[list[float], list[float]]:
    """Per message: (send_text -> MessageAdded at bob, send_text call duration) in ms."""
    events = bob.subscribe()
    total, local = [], []
    try:
        for i in range(n):
            t0 = time.perf_counter()
            msg = await alice.send_text(bob.me, f"ping {i}")
            t1 = time.perf_counter()
            mid = msg.id

            def arrived(e: Event, mid: bytes = mid) -> bool:
                return isinstance(e, MessageAdded) and e.message.id == mid

            async with asyncio.timeout(10):
                await events.next_matching(arrived)
            t2 = time.perf_counter()
            total.append((t2 - t0) * 1000)
            local.append((t1 - t0) * 1000)
    finally:
        events.close()
    return total, local


async def node_throughput(alice: Node, bob: Node, count: int, window: int) -> float:
    """Messages per second from the first send to the last DELIVERED receipt."""
    events = alice.subscribe()
    delivered: set[bytes] = set()
    all_done = asyncio.Event()
    mine: set[bytes] = set()

    async def watch() -> None:
        async for e in events:
            if isinstance(e, ReceiptChanged) and e.status >= MessageStatus.DELIVERED:
                delivered.update(e.message_ids)
                if len(mine) == count and mine <= delivered:
                    all_done.set()

    watcher = asyncio.create_task(watch())
    gate = asyncio.Semaphore(window)

    async def one(i: int) -> None:
        async with gate:
            msg = await alice.send_text(bob.me, f"bulk {i}")
            mine.add(msg.id)

    t0 = time.perf_counter()
    async with asyncio.timeout(300):
        await asyncio.gather(*(one(i) for i in range(count)))
        if mine <= delivered:
            all_done.set()
        await all_done.wait()
    elapsed = time.perf_counter() - t0
    watcher.cancel()
    events.close()
    return count / elapsed


# ------------------------------------------------------------------ the baseline


class _Receiver(asyncio.Protocol):
    """Parses 2-byte length + msgpack frames; acks each one (for throughput)."""

    def __init__(self, on_frame: Callable[[dict[str, object]], None], ack: bool) -> None:
        self.buf = bytearray()
        self.on_frame = on_frame
        self.ack = ack
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.buf += data
        while len(self.buf) >= 2:
            length = int.from_bytes(self.buf[:2], "big")
            if len(self.buf) < 2 + length:
                return
            frame = msgpack.unpackb(bytes(self.buf[2 : 2 + length]))
            del self.buf[: 2 + length]
            self.on_frame(frame)
            if self.ack and self.transport is not None:
                reply = msgpack.packb({"t": "rcpt", "ids": [frame["id"]], "st": "d"})
                self.transport.write(len(reply).to_bytes(2, "big") + reply)


def _frame(i: int) -> bytes:
    body = msgpack.packb({"t": "msg", "id": os.urandom(16), "n": i, "body": f"ping {i}".encode()})
    return len(body).to_bytes(2, "big") + body


async def baseline(n: int, count: int, window: int) -> tuple[list[float], float]:
    """(one-way latencies in ms, acked messages per second) over bare asyncio TCP."""
    loop = asyncio.get_running_loop()
    arrived: asyncio.Queue[float] = asyncio.Queue()
    acks: asyncio.Queue[None] = asyncio.Queue()

    def server_frame(_: dict[str, object]) -> None:
        arrived.put_nowait(time.perf_counter())

    server = await loop.create_server(lambda: _Receiver(server_frame, ack=True), "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    transport, _ = await loop.create_connection(
        lambda: _Receiver(lambda _: acks.put_nowait(None), ack=False), "127.0.0.1", port
    )
    latencies = []
    for i in range(n):
        t0 = time.perf_counter()
        transport.write(_frame(i))
        t1 = await arrived.get()
        latencies.append((t1 - t0) * 1000)
        await acks.get()
    # Throughput: keep at most ``window`` messages unacked, like the node's window.
    t0 = time.perf_counter()
    sent = 0
    for _ in range(min(window, count)):
        transport.write(_frame(sent))
        sent += 1
    for _ in range(count):
        await acks.get()
        arrived.get_nowait()
        if sent < count:
            transport.write(_frame(sent))
            sent += 1
    rate = count / (time.perf_counter() - t0)
    transport.close()
    server.close()
    await server.wait_closed()
    return latencies, rate


def fsync_ms(directory: Path, n: int = 50) -> float:
    """Median time of write+fsync of 4 KiB in ``directory`` (what one commit costs)."""
    path = directory / "fsync-probe"
    times = []
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        for _ in range(n):
            t0 = time.perf_counter()
            os.write(fd, b"x" * 4096)
            os.fsync(fd)
            times.append((time.perf_counter() - t0) * 1000)
    finally:
        os.close(fd)
        path.unlink()
    return statistics.median(times)


# ------------------------------------------------------------------ store-thread breakdown


class StoreTimes:
    """Time spent inside store calls (in the store threads), by caller, for the report.

    cProfile only sees the loop thread; the loop's idle time in ``epoll`` is mostly
    waiting for these calls, so this is where the rest of the time goes.
    """

    def __init__(self) -> None:
        self.busy: dict[str, list[float]] = {}
        self.profiles: dict[int, cProfile.Profile] = {}

    def install(self) -> None:
        """Wrap StoreWorker.run for the rest of the process (a benchmark-only patch)."""
        original = StoreWorker.run
        times = self

        async def run(worker: StoreWorker, fn: Callable[..., object]) -> object:
            name = getattr(fn, "__qualname__", None) or type(fn).__name__
            if name == "partial":
                name = getattr(getattr(fn, "func", None), "__qualname__", "partial")

            def timed(store: object) -> object:
                prof = times.profiles.setdefault(threading.get_ident(), cProfile.Profile())
                t0 = time.perf_counter()
                prof.enable()
                try:
                    return fn(store)
                finally:
                    prof.disable()
                    times.busy.setdefault(name, []).append(time.perf_counter() - t0)

            return await original(worker, timed)

        StoreWorker.run = run  # type: ignore[method-assign,assignment]

    def report(self, wall: float) -> None:
        """Print total seconds in the store threads by caller."""
        rows = sorted(self.busy.items(), key=lambda kv: -sum(kv[1]))
        total = sum(sum(v) for v in self.busy.values())
        print(f"\nstore threads busy {total:.3f} s of {wall:.3f} s wall (both nodes):")
        for name, values in rows[:12]:
            print(
                f"  {sum(values):7.3f} s  {len(values):6d} calls  "
                f"{1e6 * statistics.mean(values):8.1f} us/call  {name}"
            )
        if self.profiles:
            print("inside the store threads (cProfile, top 25 by internal time):")
            stats = pstats.Stats(*self.profiles.values())
            stats.sort_stats("tottime").print_stats(25)


# ------------------------------------------------------------------ main


async def run(args: argparse.Namespace) -> None:
    """Measure and print everything."""
    print(
        f"stores in {os.environ['P2PCHAT_HOME']}; fsync(4 KiB) median "
        f"{fsync_ms(Path(os.environ['P2PCHAT_HOME'])):.3f} ms"
    )
    store_times = StoreTimes()
    if args.profile:
        store_times.install()
    alice, bob = await start_pair()
    try:
        profiler = cProfile.Profile() if args.profile else None

        async def maybe_profiled(kind: str, coro: Awaitable[T]) -> T:
            if profiler is None or args.profile != kind:
                return await coro
            profiler.enable()
            try:
                return await coro
            finally:
                profiler.disable()

        await node_latency(alice, bob, 50)  # warm-up
        store_times.busy.clear()
        total, local = await maybe_profiled("latency", node_latency(alice, bob, args.latency_n))
        if args.profile == "throughput":
            store_times.busy.clear()
        t_prof = time.perf_counter()
        rate = await maybe_profiled(
            "throughput", node_throughput(alice, bob, args.messages, args.window)
        )
        wall = time.perf_counter() - t_prof
    finally:
        await alice.stop()
        await bob.stop()
    base_lat, base_rate = await baseline(args.latency_n, args.messages, args.window)

    p50, p99 = pct(total, 0.5), pct(total, 0.99)
    b50, b99 = pct(base_lat, 0.5), pct(base_lat, 0.99)

    def ok(good: bool) -> str:
        return "ok" if good else "MISSED"

    print(f"\n(a) node one-way latency, N={args.latency_n} sequential")
    print(f"    p50 {p50:.3f} ms  (target < {TARGET_P50_MS} ms: {ok(p50 < TARGET_P50_MS)})")
    print(f"    p99 {p99:.3f} ms  (target < {TARGET_P99_MS} ms: {ok(p99 < TARGET_P99_MS)})")
    print(
        f"    of which send_text() itself (sender's commit): p50 {pct(local, 0.5):.3f} ms, "
        f"p99 {pct(local, 0.99):.3f} ms"
    )
    print(f"(b) node throughput to DELIVERED, {args.messages} msgs, window {args.window}")
    print(f"    {rate:,.0f} msgs/s  (target >= {TARGET_RATE:,.0f}: {ok(rate >= TARGET_RATE)})")
    print("(c) baseline: bare length-prefixed msgpack over asyncio TCP on loopback")
    print(f"    one-way p50 {b50:.3f} ms, p99 {b99:.3f} ms; acked {base_rate:,.0f} msgs/s")
    print(
        f"    ratios node/baseline: p50 x{p50 / b50:.1f}, p99 x{p99 / b99:.1f}, "
        f"throughput x{rate / base_rate:.2f}"
    )
    print("(d) discovery between network namespaces: run bench/discovery.py")
    if profiler is not None:
        if args.profile == "throughput":
            store_times.report(wall)
        print(f"\ncProfile of the {args.profile} run (top 30 by cumulative time):")
        pstats.Stats(profiler).sort_stats("cumulative").print_stats(30)
        pstats.Stats(profiler).sort_stats("tottime").print_stats(25)


def main() -> None:
    """Parse arguments, make a throwaway P2PCHAT_HOME, run."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--latency-n", type=int, default=1000)
    parser.add_argument("--messages", type=int, default=5000)
    parser.add_argument("--window", type=int, default=256)
    parser.add_argument("--dir", type=Path, default=None, help="parent of the temp home")
    parser.add_argument("--profile", choices=["latency", "throughput"], default=None)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="p2pchat-bench-", dir=args.dir) as home:
        os.environ["P2PCHAT_HOME"] = home  # must never touch a real profile
        asyncio.run(run(args))


if __name__ == "__main__":
    main()
