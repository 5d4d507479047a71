"""Benchmark: message latency and throughput between two p2pchat nodes on loopback.

DESIGN.md's budget is measured here, never by timed tests. The main figures come from
two befriended nodes in two processes, as real users run them: node A ("alice") in this
process, node B ("bob") in a child process (``bench/_peer.py node``), each with its own
interpreter, GIL, event loop, throwaway profile and store, talking over real TCP + Noise
on 127.0.0.1. Figures:

(a) one-way latency of a small message, N sequential, p50/p99: A takes
    ``time.monotonic()`` right before ``send_text()``, B takes it when its
    ``MessageAdded`` event for that message id fires (so both stores' durable commits
    are inside it) and sends its times back over a pipe at the end. ``time.monotonic``
    is CLOCK_MONOTONIC, which is system-wide on Linux, so the two processes' readings
    are comparable. A waits for the DELIVERED receipt of each message before sending
    the next: that is the node's own traffic, so B does no benchmark I/O per message
    and A has finished handling the receipt (its store update) before the next clock
    starts; the round trip to DELIVERED is printed too;
(b) sustained throughput: M messages with a bounded window of in-flight ``send_text``
    calls, timed until every one is DELIVERED at A (B stored it durably and acked);
(c) the same two figures for a baseline, also across two processes: bare
    length-prefixed msgpack over a plain asyncio TCP connection on loopback (no crypto,
    no store) to an echo receiver in a child process (``bench/_peer.py echo``) that acks
    each frame; and the ratios node / baseline;
(d) secondary: the previous figures with both nodes (and the baseline's two ends) in
    this one process, sharing one GIL, which understates what a node does but isolates
    the per-message CPU cost;
plus the fsync cost of the directory the stores live in, since every message pays two
durable commits (sender, receiver) and that bounds latency on slow disks;
(e) at rest: (a), (b) and (d) again in the same run with both nodes' stores encrypted
    (both profiles have a passphrase: AEGIS-256 on the store and its WAL), printed
    beside the plain figures with the ratio encrypted / plain (target: within 25 %).

Discovery time between network namespaces is measured by ``bench/discovery.py``.
``--profile`` profiles node A (this process: event loop and store threads) in the
two-process run.

    .venv/bin/python bench/messages.py [--latency-n 1000] [--messages 5000] [--window 256]
                                       [--dir /some/tmp] [--profile latency|throughput]
                                       [--no-encrypted] [--discovery-runs 5]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
import os
import pstats
import signal
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from _peer import Receiver, frame

from p2pchat.identity import decode_peer_id
from p2pchat.node.config import NodeConfig
from p2pchat.node.events import Event, MessageAdded, PeerOnline, ReceiptChanged
from p2pchat.node.service import Node
from p2pchat.profile import PASSPHRASE_ENV, open_profile
from p2pchat.store import MessageStatus, StoreWorker

T = TypeVar("T")

TARGET_P50_MS = 1.0
TARGET_P99_MS = 5.0
TARGET_RATE = 5000.0

BENCH = Path(__file__).parent
sys.path.insert(0, str(BENCH))
from _child import Child  # noqa: E402
from _disk import fsync_ms  # noqa: E402

PEER_SCRIPT = Path(__file__).with_name("_peer.py")
STEP = 15.0  # bound on any single wait (start-up, one message, one reply from a child)
PHASE = 300.0  # bound on a whole measured phase
#: The passphrase of both profiles in the encrypted runs (e).
BENCH_PASSPHRASE = "bench passphrase, not secret"


def pct(values: list[float], q: float) -> float:
    """The q-quantile (0..1) of ``values`` by nearest rank."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def ok(good: bool) -> str:
    """Verdict next to a target."""
    return "ok" if good else "MISSED"


# ------------------------------------------------------------------ the child process


@contextlib.asynccontextmanager
async def child(mode: str, home: Path) -> AsyncIterator[tuple[Child, dict[str, Any]]]:
    """Run ``_peer.py mode`` with its own P2PCHAT_HOME; yield it and its first line."""
    env = {**os.environ, "P2PCHAT_HOME": str(home)}
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        str(PEER_SCRIPT),
        mode,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        env=env,
        limit=64 * 1024 * 1024,  # the arrival-time reports are single long lines
    )
    peer = Child(proc, PEER_SCRIPT.name, STEP)
    try:
        yield peer, await peer.read()
    finally:
        try:
            await peer.close()
        finally:
            if proc.returncode is None:  # close() was interrupted
                proc.kill()


# ------------------------------------------------------------------ the nodes


async def start_node(name: str) -> Node:
    """A started node on loopback with discovery off, under the current P2PCHAT_HOME."""
    profile = open_profile(name)
    profile.set_display_name(name)
    node = Node(profile, NodeConfig(bind="127.0.0.1", discovery=False))
    await node.start()
    return node


async def befriend_child(alice: Node, bob: Child, port: int, bob_id: bytes) -> None:
    """Dial the child node, wait until connected, both accept each other."""
    events = alice.subscribe()
    try:
        alice.links.add_target("127.0.0.1", port, "manual", bob_id)
        async with asyncio.timeout(STEP):
            if not alice.links.is_online(bob_id):
                await events.next_matching(
                    lambda e: isinstance(e, PeerOnline) and e.peer_id == bob_id
                )
    finally:
        events.close()
    await bob.request(cmd="accept", peer=alice.peer_id_text)
    await alice.accept(bob_id)


def delivered_matcher(mid: bytes) -> Callable[[Event], bool]:
    """Predicate: our message ``mid`` reached DELIVERED (or READ)."""

    def match(e: Event) -> bool:
        return (
            isinstance(e, ReceiptChanged)
            and e.status >= MessageStatus.DELIVERED
            and mid in e.message_ids
        )

    return match


@dataclass
class Latency:
    """Per-message figures of a sequential latency run, in ms."""

    one_way: list[float]
    local: list[float]  # the send_text() call itself (sender's commit)
    round_trip: list[float]  # send_text() -> DELIVERED at the sender
    #: CPU time of this process (every thread) during each send_text() call, in ms:
    #: unlike the wall clock, it does not count waiting for fsync or for other programs.
    local_cpu: list[float] = field(default_factory=list)
    #: CPU time of this process per message over the whole run (sending, the receipt's
    #: commit, the wire), in ms.
    cpu_per_message: float = 0.0


async def node_latency_2p(alice: Node, bob: Child, bob_id: bytes, n: int) -> Latency:
    """One-way latency A -> B across processes; each message DELIVERED before the next."""
    events = alice.subscribe()
    sent: dict[str, float] = {}
    local, round_trip, local_cpu = [], [], []
    run_cpu = time.process_time()
    try:
        for i in range(n):
            c0 = time.process_time()
            t0 = time.monotonic()
            msg = await alice.send_text(bob_id, f"ping {i}")
            t1 = time.monotonic()
            local_cpu.append((time.process_time() - c0) * 1000)
            async with asyncio.timeout(STEP):
                await events.next_matching(delivered_matcher(msg.id))
            t2 = time.monotonic()
            sent[msg.id.hex()] = t0
            local.append((t1 - t0) * 1000)
            round_trip.append((t2 - t0) * 1000)
    finally:
        events.close()
    cpu_per_message = (time.process_time() - run_cpu) * 1000 / n
    arrived = (await bob.request(cmd="report"))["arrived"]
    missing = set(sent) - set(arrived)
    if missing:
        raise RuntimeError(f"{len(missing)} delivered messages never reported by B")
    one_way = [(arrived[h] - t0) * 1000 for h, t0 in sent.items()]
    return Latency(one_way, local, round_trip, local_cpu, cpu_per_message)


async def node_latency_1p(alice: Node, bob: Node, n: int) -> Latency:
    """One-way latency A -> B in one process: send_text -> MessageAdded at B, sequential."""
    events = bob.subscribe()
    total, local = [], []
    try:
        for i in range(n):
            t0 = time.monotonic()
            msg = await alice.send_text(bob.me, f"ping {i}")
            t1 = time.monotonic()
            mid = msg.id

            def arrived(e: Event, mid: bytes = mid) -> bool:
                return isinstance(e, MessageAdded) and e.message.id == mid

            async with asyncio.timeout(STEP):
                await events.next_matching(arrived)
            t2 = time.monotonic()
            total.append((t2 - t0) * 1000)
            local.append((t1 - t0) * 1000)
    finally:
        events.close()
    return Latency(total, local, [])


async def node_throughput(alice: Node, peer: bytes, count: int, window: int) -> float:
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
            msg = await alice.send_text(peer, f"bulk {i}")
            mine.add(msg.id)

    try:
        t0 = time.monotonic()
        async with asyncio.timeout(PHASE):
            await asyncio.gather(*(one(i) for i in range(count)))
            if mine <= delivered:
                all_done.set()
            await all_done.wait()
        elapsed = time.monotonic() - t0
    finally:
        watcher.cancel()
        events.close()
    return count / elapsed


# ------------------------------------------------------------------ the baseline


async def baseline_2p(
    peer: Child, port: int, n: int, count: int, window: int
) -> tuple[list[float], float]:
    """(one-way latencies in ms, acked msgs/s): bare msgpack over TCP to a child process.

    Latency: like the node run, each frame's ack is awaited before the next is sent,
    and the one-way time is this process's clock before ``write`` to the child's clock
    when it parsed the frame.
    """
    loop = asyncio.get_running_loop()
    acks: asyncio.Queue[None] = asyncio.Queue()
    transport, _ = await loop.create_connection(
        lambda: Receiver(lambda _: acks.put_nowait(None), ack=False), "127.0.0.1", port
    )
    try:
        sent: dict[str, float] = {}
        for i in range(n):
            data = frame(i)
            sent[str(i)] = time.monotonic()
            transport.write(data)
            async with asyncio.timeout(STEP):
                await acks.get()
        arrived = (await peer.request(cmd="report"))["arrived"]
        latencies = [(arrived[k] - t0) * 1000 for k, t0 in sent.items()]
        # Throughput: keep at most ``window`` messages unacked, like the node's window.
        async with asyncio.timeout(PHASE):
            t0 = time.monotonic()
            sent_n = 0
            for _ in range(min(window, count)):
                transport.write(frame(n + sent_n))
                sent_n += 1
            for _ in range(count):
                await acks.get()
                if sent_n < count:
                    transport.write(frame(n + sent_n))
                    sent_n += 1
            rate = count / (time.monotonic() - t0)
        got = len((await peer.request(cmd="report"))["arrived"])
        if got != count:
            raise RuntimeError(f"baseline receiver saw {got} of {count} frames")
    finally:
        transport.close()
    return latencies, rate


async def baseline_1p(n: int, count: int, window: int) -> tuple[list[float], float]:
    """(one-way latencies in ms, acked messages per second), both ends in this process."""
    loop = asyncio.get_running_loop()
    arrived: asyncio.Queue[float] = asyncio.Queue()
    acks: asyncio.Queue[None] = asyncio.Queue()

    def server_frame(_: dict[str, object]) -> None:
        arrived.put_nowait(time.monotonic())

    server = await loop.create_server(lambda: Receiver(server_frame, ack=True), "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    transport, _ = await loop.create_connection(
        lambda: Receiver(lambda _: acks.put_nowait(None), ack=False), "127.0.0.1", port
    )
    try:
        latencies = []
        async with asyncio.timeout(PHASE):
            for i in range(n):
                data = frame(i)
                t0 = time.monotonic()
                transport.write(data)
                t1 = await arrived.get()
                latencies.append((t1 - t0) * 1000)
                await acks.get()
            t0 = time.monotonic()
            sent = 0
            for _ in range(min(window, count)):
                transport.write(frame(sent))
                sent += 1
            for _ in range(count):
                await acks.get()
                arrived.get_nowait()
                if sent < count:
                    transport.write(frame(sent))
                    sent += 1
            rate = count / (time.monotonic() - t0)
    finally:
        transport.close()
        server.close()
        await server.wait_closed()
    return latencies, rate


# ------------------------------------------------------------------ store-thread breakdown


class StoreTimes:
    """Time spent inside store calls (in the store threads), by caller, for the report.

    cProfile only sees the loop thread; the loop's idle time in ``epoll`` is mostly
    waiting for these calls, so this is where the rest of the time goes.
    """

    def __init__(self) -> None:
        self.busy: dict[str, list[float]] = {}
        self.profiles: dict[int, cProfile.Profile] = {}
        self.original: Any = None

    def install(self) -> None:
        """Wrap StoreWorker.run in this process until uninstall (a benchmark-only patch)."""
        original = self.original = StoreWorker.run
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

    def uninstall(self) -> None:
        """Put StoreWorker.run back."""
        if self.original is not None:
            StoreWorker.run = self.original  # type: ignore[method-assign]
            self.original = None

    def report(self, wall: float) -> None:
        """Print total seconds in the store threads by caller."""
        rows = sorted(self.busy.items(), key=lambda kv: -sum(kv[1]))
        total = sum(sum(v) for v in self.busy.values())
        print(f"\nstore threads busy {total:.3f} s of {wall:.3f} s wall (node A only):")
        for name, values in rows[:12]:
            print(
                f"  {sum(values):7.3f} s  {len(values):6d} calls  "
                f"{1e6 * statistics.mean(values):8.1f} us/call  {name}"
            )
        if self.profiles:
            print("inside the store threads (cProfile, top 25 by internal time):")
            stats = pstats.Stats(*self.profiles.values())
            stats.sort_stats("tottime").print_stats(25)


# ------------------------------------------------------------------ the runs


@dataclass
class Figures:
    """What one configuration measured."""

    latency: Latency
    rate: float
    base_latency: list[float]
    base_rate: float


async def run_two_processes(args: argparse.Namespace, home: Path, tag: str = "") -> Figures:
    """Node A here, node B in a child; then the baseline with its receiver in a child."""
    os.environ["P2PCHAT_HOME"] = str(home / f"two-process-a{tag}")
    store_times = StoreTimes()
    profiler = cProfile.Profile() if args.profile else None

    async def maybe_profiled(kind: str, coro: Awaitable[T]) -> T:
        if profiler is None or args.profile != kind:
            return await coro
        profiler.enable()
        try:
            return await coro
        finally:
            profiler.disable()

    if args.profile:
        store_times.install()
    try:
        async with child("node", home / f"two-process-b{tag}") as (bob, hello):
            bob_id = decode_peer_id(hello["peer"])
            alice = await start_node("alice")
            try:
                await befriend_child(alice, bob, hello["port"], bob_id)
                await node_latency_2p(alice, bob, bob_id, 50)  # warm-up
                store_times.busy.clear()
                latency = await maybe_profiled(
                    "latency", node_latency_2p(alice, bob, bob_id, args.latency_n)
                )
                if args.profile == "throughput":
                    store_times.busy.clear()
                t_prof = time.monotonic()
                rate = await maybe_profiled(
                    "throughput", node_throughput(alice, bob_id, args.messages, args.window)
                )
                wall = time.monotonic() - t_prof
                got = len((await bob.request(cmd="report"))["arrived"])
                if got != args.messages:
                    raise RuntimeError(f"B stored {got} of {args.messages} messages")
            finally:
                await alice.stop()
    finally:
        store_times.uninstall()
    async with child("echo", home / "two-process-echo") as (echo, hello):
        base_lat, base_rate = await baseline_2p(
            echo, hello["port"], args.latency_n, args.messages, args.window
        )
    if profiler is not None:
        if args.profile == "throughput":
            store_times.report(wall)
        print(f"\ncProfile of node A in the two-process {args.profile} run:")
        pstats.Stats(profiler).sort_stats("cumulative").print_stats(30)
        pstats.Stats(profiler).sort_stats("tottime").print_stats(25)
    return Figures(latency, rate, base_lat, base_rate)


async def run_one_process(args: argparse.Namespace, home: Path, tag: str = "") -> Figures:
    """Both nodes in this process (the earlier setup), then the in-process baseline."""
    os.environ["P2PCHAT_HOME"] = str(home / f"one-process{tag}")
    alice = await start_node("alice")
    try:
        bob = await start_node("bob")
        try:
            sa, sb = alice.subscribe(), bob.subscribe()
            try:
                alice.links.add_target("127.0.0.1", bob.port, "manual", bob.me)
                async with asyncio.timeout(STEP):
                    if not alice.links.is_online(bob.me):
                        await sa.next_matching(lambda e: isinstance(e, PeerOnline))
                    if not bob.links.is_online(alice.me):
                        await sb.next_matching(lambda e: isinstance(e, PeerOnline))
            finally:
                sa.close()
                sb.close()
            await alice.accept(bob.me)
            await bob.accept(alice.me)
            await node_latency_1p(alice, bob, 50)  # warm-up
            latency = await node_latency_1p(alice, bob, args.latency_n)
            rate = await node_throughput(alice, bob.me, args.messages, args.window)
        finally:
            await bob.stop()
    finally:
        await alice.stop()
    base_lat, base_rate = await baseline_1p(args.latency_n, args.messages, args.window)
    return Figures(latency, rate, base_lat, base_rate)


def report(f: Figures, args: argparse.Namespace, targets: bool) -> None:
    """Print one configuration's figures (with targets for the main one)."""
    lat = f.latency.one_way
    p50, p99 = pct(lat, 0.5), pct(lat, 0.99)
    b50, b99 = pct(f.base_latency, 0.5), pct(f.base_latency, 0.99)

    def target(good: bool, text: str) -> str:
        return f"  (target {text}: {ok(good)})" if targets else ""

    print(f"(a) node one-way latency, N={args.latency_n} sequential")
    print(f"    p50 {p50:.3f} ms{target(p50 < TARGET_P50_MS, f'< {TARGET_P50_MS} ms')}")
    print(f"    p99 {p99:.3f} ms{target(p99 < TARGET_P99_MS, f'< {TARGET_P99_MS} ms')}")
    local = f.latency.local
    print(
        f"    of which send_text() itself (sender's commit): p50 {pct(local, 0.5):.3f} ms, "
        f"p99 {pct(local, 0.99):.3f} ms"
    )
    if f.latency.round_trip:
        rt = f.latency.round_trip
        print(
            f"    send_text() -> DELIVERED back at A (one clock): p50 {pct(rt, 0.5):.3f} ms, "
            f"p99 {pct(rt, 0.99):.3f} ms"
        )
        bad = sum(not 0 <= o <= r for o, r in zip(lat, rt, strict=True))
        print(
            f"    clock check: min one-way {min(lat):.3f} ms; "
            f"{bad} of {len(lat)} outside [0, round trip]"
        )
    print(f"(b) node throughput to DELIVERED, {args.messages} msgs, window {args.window}")
    print(f"    {f.rate:,.0f} msgs/s{target(f.rate >= TARGET_RATE, f'>= {TARGET_RATE:,.0f}')}")
    print("(c) baseline: bare length-prefixed msgpack over asyncio TCP on loopback, acked")
    print(f"    one-way p50 {b50:.3f} ms, p99 {b99:.3f} ms; acked {f.base_rate:,.0f} msgs/s")
    print(
        f"    ratios node/baseline: p50 x{p50 / b50:.1f}, p99 x{p99 / b99:.1f}, "
        f"throughput x{f.rate / f.base_rate:.3f}"
    )


async def run(args: argparse.Namespace, home: Path) -> None:
    """Measure and print everything."""
    print(f"stores under {home}; fsync(4 KiB) median {fsync_ms(home):.3f} ms")
    print(
        "clock: time.monotonic() = CLOCK_MONOTONIC, system-wide on Linux, so one-way "
        "times compare readings taken in two processes"
    )
    two = await run_two_processes(args, home)
    one = await run_one_process(args, home)
    print("\n== two processes: node A here, node B in a child process (own GIL), loopback")
    print("   (latency: A waits for each message's DELIVERED receipt before the next)")
    report(two, args, targets=True)
    print("\n== secondary: both nodes in one process, sharing one GIL (as before)")
    report(one, args, targets=False)
    if args.no_encrypted:
        return
    for sub, names in (("two-process-a-enc", ["alice"]), ("two-process-b-enc", ["bob"])):
        with_passphrase(home / sub, names)
    with_passphrase(home / "one-process-enc", ["alice", "bob"])
    os.environ[PASSPHRASE_ENV] = BENCH_PASSPHRASE  # the nodes (and the child) unlock with it
    try:
        two_enc = await run_two_processes(args, home, "-enc")
        one_enc = await run_one_process(args, home, "-enc")
    finally:
        os.environ.pop(PASSPHRASE_ENV, None)
    print("\n== (e) at rest: the same runs with both stores encrypted (a passphrase set)")
    compare_at_rest("two processes", two, two_enc)
    compare_at_rest("one process", one, one_enc)


def with_passphrase(profiles_home: Path, names: list[str]) -> None:
    """Make profiles ``names`` under ``profiles_home`` with the bench passphrase (cheap KDF:
    the key derivation runs once at start-up and is not what is measured)."""
    from p2pchat.cli.passphrase_cmds import apply_passphrase
    from p2pchat.identity import KdfParams

    os.environ["P2PCHAT_HOME"] = str(profiles_home)
    for name in names:
        profile = open_profile(name)
        profile.set_display_name(name)
        apply_passphrase(profile, BENCH_PASSPHRASE, KdfParams(opslimit=1, memlimit=8192))


def compare_at_rest(label: str, plain: Figures, enc: Figures) -> None:
    """One line per figure: plain, encrypted, and the ratio (encrypted / plain)."""
    rows = [
        ("one-way latency p50, ms", pct(plain.latency.one_way, 0.5), pct(enc.latency.one_way, 0.5)),
        (
            "one-way latency p99, ms",
            pct(plain.latency.one_way, 0.99),
            pct(enc.latency.one_way, 0.99),
        ),
        ("send_text() p50, ms", pct(plain.latency.local, 0.5), pct(enc.latency.local, 0.5)),
    ]
    if plain.latency.local_cpu and enc.latency.local_cpu:  # two processes: A alone here
        rows += [
            (
                "send_text() CPU p50, ms",
                pct(plain.latency.local_cpu, 0.5),
                pct(enc.latency.local_cpu, 0.5),
            ),
            (
                "sender CPU per message, ms",
                plain.latency.cpu_per_message,
                enc.latency.cpu_per_message,
            ),
        ]
    rows += [
        ("throughput to DELIVERED, msgs/s", plain.rate, enc.rate),
    ]
    print(f"   {label}: {'plain':>10} {'encrypted':>10} {'enc/plain':>9}")
    for name, a, b in rows:
        print(f"   {name:34} {a:10,.3f} {b:10,.3f} {b / a if a else 0:9.2f}")


def main() -> None:
    """Parse arguments, make a throwaway P2PCHAT_HOME, run."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--latency-n", type=int, default=1000)
    parser.add_argument("--messages", type=int, default=5000)
    parser.add_argument("--window", type=int, default=256)
    parser.add_argument("--dir", type=Path, default=None, help="parent of the temp home")
    parser.add_argument("--profile", choices=["latency", "throughput"], default=None)
    parser.add_argument(
        "--no-encrypted", action="store_true", help="skip (e), the runs with encrypted stores"
    )
    parser.add_argument(
        "--discovery-runs", type=int, default=5, help="new-peer discovery runs (0: skip)"
    )
    args = parser.parse_args()
    # SIGTERM unwinds like Ctrl-C, so children are stopped and the temp home removed.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    with tempfile.TemporaryDirectory(prefix="p2pchat-bench-", dir=args.dir) as home:
        for sub in ("two-process-a", "two-process-b", "two-process-echo", "one-process"):
            (Path(home) / sub).mkdir()
            (Path(home) / f"{sub}-enc").mkdir()
        os.environ["P2PCHAT_HOME"] = home  # must never touch a real profile
        asyncio.run(run(args, Path(home)))
    if args.discovery_runs:
        discovery_between_namespaces(args.discovery_runs)


def discovery_between_namespaces(runs: int) -> None:
    """Time for a new peer to be seen over real mDNS between two network namespaces.

    The measurement lives in bench/discovery.py (which also covers loopback); it needs
    root for ``ip netns`` and says so when skipped. Target: under 1.5 s.
    """
    import importlib.util

    spec = importlib.util.spec_from_file_location("bench_discovery", BENCH / "discovery.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    print("\n== discovery: a new peer seen over mDNS between two network namespaces")
    print("   (announce: the running node sees the newcomer; browse: the newcomer sees it)")
    module.bench_netns(runs)


if __name__ == "__main__":
    main()
