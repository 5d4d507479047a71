"""Benchmark: group-room fan-out time and catch-up rate on loopback.

Every node is a real p2pchat node (TCP + Noise on 127.0.0.1, its own throwaway profile
and store, mDNS off) under a temporary P2PCHAT_HOME that is removed at the end. Figures:

(a) fan-out: the time for ONE message to reach ALL members of a room: from just before
    ``send_message()`` at the author to the last member's ``MessageAdded`` event for
    that message. Rooms of 10 and 50 members; the author (the room's owner) is connected
    to every member (a star: the author reaches everyone directly, as on a LAN where
    everyone is a contact of the author). Messages are sent one at a time: the next
    one only after every member has the previous one (and, across processes, every
    member's DELIVERED receipt is back at the author), then a pause (``--gap``, longer
    than the node's 0.2 s head-announce delay, so each message meets an idle room).
    Setups:
      - all nodes in this one process (one GIL, one event loop: the members' work is
        serialised, so this overstates what a real LAN of 50 machines sees);
      - 50 members across processes: the author here, 49 members in 7 child processes
        (``bench/_group_peer.py``, 7 nodes each; ``--multi 3x3`` gives 10 members).
        Both 50-member setups are held to the target and print their verdicts.
        Arrival times there are ``time.monotonic()`` (CLOCK_MONOTONIC, system-wide on
        Linux, so comparable with this process's), reported back over a pipe at the end.
(b) catch-up: a 3-member room (author, holder, returner). The returner stops; the
    author writes N (10,000) messages; the holder (in a child process) stores them all;
    the author stops too. The returner starts again (in this process), configured to dial
    the holder only, and gets everything by history sync (heads exchange + push) from
    the holder. Rate = N / time from the returner's ``start()`` until its N-th
    ``MessageAdded``; also from the moment the link to the holder is up.

    .venv/bin/python bench/groups.py [--messages 20] [--gap 0.3] [--catchup 10000]
                                     [--sizes 10,50] [--multi 7x7] [--skip-multi]
                                     [--dir /some/tmp]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from _group_peer import STEP, Member, make_node

from p2pchat.identity import decode_peer_id
from p2pchat.node import Event, MessageStatus, ReceiptChanged

TARGET_FANOUT_MS = 50.0  # 50-member room, median (issue 9)
TARGET_CATCHUP = 8000.0  # messages/s (issue 9)
sys.path.insert(0, str(Path(__file__).parent))
from _child import Child  # noqa: E402
from _disk import fsync_ms  # noqa: E402

PEER_SCRIPT = Path(__file__).with_name("_group_peer.py")
PHASE = 600.0  # bound on a whole phase
WARMUP = 3


def ok(good: bool) -> str:
    """Verdict next to a target."""
    return "ok" if good else "MISSED"


# ------------------------------------------------------------------ child processes


@contextlib.asynccontextmanager
async def child(count: int, prefix: str, home: Path) -> AsyncIterator[tuple[Child, list[Any]]]:
    """Run ``_group_peer.py count prefix`` with its own P2PCHAT_HOME; yield it, its nodes."""
    os.makedirs(home, exist_ok=True)
    env = {**os.environ, "P2PCHAT_HOME": str(home)}
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        str(PEER_SCRIPT),
        str(count),
        prefix,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        env=env,
        limit=64 * 1024 * 1024,  # the arrival-time reports are single long lines
    )
    peer = Child(proc, PEER_SCRIPT.name, STEP)
    try:
        hello = await peer.read()
        yield peer, hello["nodes"]
    finally:
        try:
            await peer.close()
        finally:
            if proc.returncode is None:  # close() was interrupted
                proc.kill()


# ------------------------------------------------------------------ helpers


async def start_members(names: list[str], home: Path) -> list[Member]:
    """Started nodes (wrapped in watchers) under ``home``."""
    os.makedirs(home, exist_ok=True)
    os.environ["P2PCHAT_HOME"] = str(home)
    out = []
    for name in names:
        member = Member(make_node(name))
        out.append(member)
        await member.node.start()
    return out


async def close_all(members: list[Member]) -> None:
    """Stop every node, even if one fails to."""
    for m in members:
        with contextlib.suppress(Exception):
            await m.close()


async def link(a: Member, b: Member) -> None:
    """``a`` dials ``b``; both accept each other as contacts."""
    await a.node.add_address("127.0.0.1", b.node.port)
    await asyncio.gather(a.befriend_wait(b.node.me), b.befriend_wait(a.node.me))


async def form_room(owner: Member, members: list[Member]) -> bytes:
    """The owner creates a room and invites everyone; each joins on its invitation."""
    room = await owner.node.groups.create_room("bench")
    joins = [asyncio.ensure_future(m.join_when_invited(room)) for m in members]
    try:
        for m in members:
            await owner.node.groups.invite(room, m.node.me)
        await asyncio.gather(*joins)
    finally:
        for j in joins:
            j.cancel()
    await owner.wait_joined(room, len(members) + 1, within=120)
    return room


def pct(values: list[float], q: float) -> float:
    """The q-quantile (0..1) of ``values`` by nearest rank."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


@dataclass
class FanOut:
    """Fan-out figures of one setup, in ms."""

    setup: str
    size: int
    all_members: list[float] = field(default_factory=list)  # send -> last member has it
    first_member: list[float] = field(default_factory=list)  # send -> first member has it
    local: list[float] = field(default_factory=list)  # the send_message() call itself
    receipts: list[float] = field(default_factory=list)  # send -> last DELIVERED back
    startup: float = 0.0  # seconds to start, connect and form the room
    # One process only: CPU seconds per measured message, by thread (pools summed).
    cpu_per_message: dict[str, float] = field(default_factory=dict)

    def lines(self, target: bool) -> list[str]:
        """Human-readable summary."""
        a = self.all_members
        verdict = ""
        if target:
            median = statistics.median(a)
            verdict = (
                f"  (median target < {TARGET_FANOUT_MS:.0f} ms: {ok(median < TARGET_FANOUT_MS)})"
            )
        out = [
            f"  {self.size}-member room, {self.setup}  [setup took {self.startup:.1f} s]",
            f"    to ALL members:   median {statistics.median(a):7.1f} ms   "
            f"max {max(a):7.1f} ms   (n={len(a)}){verdict}",
            f"    to first member:  median {statistics.median(self.first_member):7.1f} ms   "
            f"max {max(self.first_member):7.1f} ms",
            f"    send_message():   median {statistics.median(self.local):7.1f} ms   "
            f"max {max(self.local):7.1f} ms",
        ]
        if self.receipts:
            r = self.receipts
            out.append(
                f"    send -> every member's DELIVERED receipt back at the author: "
                f"median {statistics.median(r):.1f} ms, max {max(r):.1f} ms"
            )
        if self.cpu_per_message:
            total = sum(self.cpu_per_message.values())
            out.append(
                f"    CPU per message, all {self.size} nodes: {total * 1000:.1f} ms ("
                + ", ".join(
                    f"{name} {cpu * 1000:.1f}"
                    for name, cpu in sorted(self.cpu_per_message.items(), key=lambda kv: -kv[1])
                )
                + ")"
            )
        return out


@dataclass
class ReceiptsFrom:
    """Predicate on events: every peer in ``peers`` has reported DELIVERED for ``mid``."""

    mid: bytes
    peers: set[bytes]
    got: set[bytes] = field(default_factory=set)

    def __call__(self, e: Event) -> bool:
        if (
            isinstance(e, ReceiptChanged)
            and e.status >= MessageStatus.DELIVERED
            and self.mid in e.message_ids
        ):
            self.got.add(e.peer)
        return self.peers <= self.got


# ------------------------------------------------------------------ (a) fan-out


async def fan_out_one_process(size: int, args: argparse.Namespace, home: Path) -> FanOut:
    """Author + (size-1) members, all in this process; author connected to everyone."""
    result = FanOut("all nodes in this one process (one GIL, one event loop)", size)
    t_setup = time.monotonic()
    nodes = await start_members(["author", *(f"m{i:02d}" for i in range(size - 1))], home)
    try:
        author, members = nodes[0], nodes[1:]
        for m in members:
            await author.node.add_address("127.0.0.1", m.node.port)
        await asyncio.gather(
            *(m.befriend_wait(author.node.me) for m in members),
            *(author.befriend_wait(m.node.me) for m in members),
        )
        room = await form_room(author, members)
        result.startup = time.monotonic() - t_setup

        waiting: dict[bytes, set[int]] = {}
        done = asyncio.Event()

        def hook_for(k: int) -> Callable[[bytes, float], None]:
            def hook(mid: bytes, _t: float) -> None:
                pending = waiting.get(mid)
                if pending is not None:
                    pending.discard(k)
                    if not pending:
                        done.set()

            return hook

        for k, m in enumerate(members):
            m.hook = hook_for(k)
        peers = {m.node.me for m in members}
        events = author.node.subscribe()
        try:
            for i in range(WARMUP + args.messages):
                if i == WARMUP:
                    threads0 = thread_cpu()
                    spy = start_py_spy() if size >= 50 else None
                done.clear()
                t0 = time.monotonic()
                # The id is known only once send_message returns, but members may
                # already have it by then: register every member as pending first and
                # match arrivals by id afterwards.
                msg = await author.node.send_message(room, f"fan-out {i}")
                t1 = time.monotonic()
                waiting[msg.id] = {k for k, m in enumerate(members) if msg.id not in m.arrived}
                if not waiting[msg.id]:
                    done.set()
                receipts = ReceiptsFrom(msg.id, peers)
                try:
                    async with asyncio.timeout(STEP):
                        await done.wait()
                        await events.next_matching(receipts)
                except TimeoutError:
                    missing = (
                        f"not at {len(waiting[msg.id])} members"
                        if waiting[msg.id]
                        else f"no DELIVERED receipt from {len(peers - receipts.got)} members"
                    )
                    raise RuntimeError(
                        f"message {i} after {STEP:.0f} s: {missing}; events dropped: "
                        f"author {events.dropped}, members {sum(m.dropped for m in members)}"
                    ) from None
                t_rcpt = time.monotonic()
                del waiting[msg.id]
                arrivals = [m.arrived[msg.id] for m in members]
                if i >= WARMUP:
                    result.all_members.append((max(arrivals) - t0) * 1000)
                    result.first_member.append((min(arrivals) - t0) * 1000)
                    result.local.append((t1 - t0) * 1000)
                    result.receipts.append((t_rcpt - t0) * 1000)
                await asyncio.sleep(args.gap)
            result.cpu_per_message = {
                name: cpu / args.messages
                for name, cpu in busy_threads(threads0, thread_cpu()).items()
            }
            stop_py_spy(spy)
        finally:
            events.close()
        dropped = sum(m.dropped for m in nodes)
        if dropped:
            print(f"  note: {dropped} events dropped for slow subscribers")
    finally:
        await close_all(nodes)
    return result


async def fan_out_processes(
    args: argparse.Namespace, home: Path, procs: int = 3, per_proc: int = 3
) -> FanOut:
    """Author here, ``procs`` x ``per_proc`` members in child processes."""
    size = 1 + procs * per_proc
    result = FanOut(
        f"author in this process, {procs * per_proc} members in {procs} child processes "
        f"({per_proc} nodes each)",
        size,
    )
    t_setup = time.monotonic()
    async with contextlib.AsyncExitStack() as stack:
        children: list[tuple[Child, list[Any]]] = []
        for p in range(procs):
            children.append(
                await stack.enter_async_context(child(per_proc, f"p{p}m", home / f"proc{p}"))
            )
        (author,) = await start_members(["author"], home / "author")
        stack.push_async_callback(close_all, [author])
        peers: set[bytes] = set()
        for _, nodes in children:
            for n in nodes:
                await author.node.add_address("127.0.0.1", n["port"])
                peers.add(decode_peer_id(n["peer"]))
        await asyncio.gather(
            *(c.request(cmd="accept", peer=author.node.peer_id_text) for c, _ in children),
            *(author.befriend_wait(p) for p in peers),
        )
        room = await author.node.groups.create_room("bench")
        joins = [asyncio.ensure_future(c.request(cmd="join", room=room.hex())) for c, _ in children]
        for p in sorted(peers):
            await author.node.groups.invite(room, p)
        await asyncio.gather(*joins)
        await author.wait_joined(room, size, within=120)
        result.startup = time.monotonic() - t_setup

        sent: list[tuple[bytes, float, float, float]] = []
        events = author.node.subscribe()
        try:
            for i in range(WARMUP + args.messages):
                t0 = time.monotonic()
                msg = await author.node.send_message(room, f"fan-out {i}")
                t1 = time.monotonic()
                async with asyncio.timeout(STEP):
                    await events.next_matching(ReceiptsFrom(msg.id, peers))
                t2 = time.monotonic()
                if i >= WARMUP:
                    sent.append((msg.id, t0, t1, t2))
                await asyncio.sleep(args.gap)
        finally:
            events.close()
        arrived: dict[str, list[float]] = {}
        for c, _ in children:
            report = await c.request(cmd="report")
            if report["dropped"]:
                print(f"  note: {report['dropped']} events dropped in a child")
            for mid, times in report["arrived"].items():
                arrived.setdefault(mid, []).extend(times)
        for mid, t0, t1, t2 in sent:
            times = arrived.get(mid.hex(), [])
            if len(times) != size - 1:
                raise RuntimeError(f"message reached {len(times)} of {size - 1} members")
            result.all_members.append((max(times) - t0) * 1000)
            result.first_member.append((min(times) - t0) * 1000)
            result.local.append((t1 - t0) * 1000)
            result.receipts.append((t2 - t0) * 1000)
    return result


# ------------------------------------------------------------------ (b) catch-up


@dataclass
class CatchUp:
    """What the catch-up run measured."""

    count: int
    author_rate: float  # msgs/s the author wrote while the holder stored them
    from_start: float  # seconds: returner start() -> N-th message
    from_link: float  # seconds: link to the holder up -> N-th message
    start_call: float  # seconds inside start() itself
    first_to_last: float  # seconds: first -> N-th message arrived
    stored: int  # texts in the returner's history afterwards
    cpu_returner: float  # CPU seconds of the returner's process, start() -> N-th message
    cpu_holder: float  # CPU seconds of the holder's process over the same span
    by_thread: dict[str, float]  # the returner's busy threads: CPU seconds over that span

    def lines(self) -> list[str]:
        """Human-readable summary."""
        rate = self.count / self.from_start
        return [
            f"  returner got {self.stored:,} of {self.count:,} messages "
            f"(history check) from the holder (child process), author stopped",
            f"    from returner start():    {self.from_start:6.2f} s  = {rate:8,.0f} msgs/s"
            f"  (target >= {TARGET_CATCHUP:,.0f}: {ok(rate >= TARGET_CATCHUP)})",
            f"    from link to holder up:   {self.from_link:6.2f} s  = "
            f"{self.count / self.from_link:8,.0f} msgs/s",
            f"    first -> last message:    {self.first_to_last:6.2f} s  = "
            f"{self.count / max(self.first_to_last, 1e-9):8,.0f} msgs/s",
            f"    CPU per message: returner {self.cpu_returner / self.count * 1e6:5.0f} us, "
            f"holder {self.cpu_holder / self.count * 1e6:5.0f} us "
            f"({self.cpu_returner:.2f} s and {self.cpu_holder:.2f} s in all)",
            "    returner's threads, CPU s: "
            + ", ".join(f"{name} {cpu:.2f}" for name, cpu in sorted(self.by_thread.items())),
            f"    (start() itself took {self.start_call * 1000:.0f} ms; the author wrote the "
            f"{self.count:,} at {self.author_rate:,.0f} msgs/s while the holder stored them)",
        ]


def thread_cpu() -> dict[tuple[int, str], float]:
    """CPU seconds of each live Python thread of this process, by (native id, name), read
    from Linux's /proc: which thread is the busy one."""
    out: dict[tuple[int, str], float] = {}
    tick = os.sysconf("SC_CLK_TCK")
    for thread in threading.enumerate():
        try:
            stat = Path(f"/proc/self/task/{thread.native_id}/stat").read_text()
        except OSError:
            continue  # the thread ended meanwhile
        fields = stat.rsplit(")", 1)[1].split()
        out[(thread.native_id or 0, thread.name)] = (int(fields[11]) + int(fields[12])) / tick
    return out


def busy_threads(
    before: dict[tuple[int, str], float], after: dict[tuple[int, str], float]
) -> dict[str, float]:
    """CPU seconds spent between two ``thread_cpu`` readings, by thread name (a pool's
    threads summed under its prefix); threads that took under 50 ms are left out."""
    out: dict[str, float] = {}
    for key, cpu in after.items():
        name = key[1].rstrip("_0123456789")
        out[name] = out.get(name, 0.0) + cpu - before.get(key, 0.0)
    return {name: cpu for name, cpu in out.items() if cpu >= 0.05}


def start_py_spy() -> subprocess.Popen[bytes] | None:
    """With P2PCHAT_BENCH_PY_SPY=file, sample this process (all threads) with py-spy."""
    out = os.environ.get("P2PCHAT_BENCH_PY_SPY")
    if not out:
        return None
    spy = subprocess.Popen(
        [
            "py-spy",
            "record",
            "--pid",
            str(os.getpid()),
            "--threads",
            "--format",
            "raw",
            "--rate",
            "500",
            "--output",
            out,
            "--nonblocking",
        ],
        stdout=subprocess.DEVNULL,
    )
    time.sleep(0.5)  # py-spy attaches before the catch-up starts
    return spy


def stop_py_spy(spy: subprocess.Popen[bytes] | None) -> None:
    """End the sampling; py-spy writes its file on SIGINT."""
    if spy is not None:
        spy.send_signal(signal.SIGINT)
        spy.wait(timeout=30)


async def catch_up(args: argparse.Namespace, home: Path) -> CatchUp:
    """Returner misses N messages, then syncs them from the holder (a child process)."""
    n = args.catchup
    async with child(1, "holder", home / "holder") as (holder, nodes):
        holder_id = decode_peer_id(nodes[0]["peer"])
        holder_port = nodes[0]["port"]
        author, returner = await start_members(["author", "returner"], home / "here")
        try:
            for m in (author, returner):
                await m.node.add_address("127.0.0.1", holder_port)
                await asyncio.gather(
                    holder.request(cmd="accept", peer=m.node.peer_id_text),
                    m.befriend_wait(holder_id),
                )
            await link(author, returner)
            room = await author.node.groups.create_room("catch-up")
            join = asyncio.ensure_future(holder.request(cmd="join", room=room.hex()))
            await author.node.groups.invite(room, holder_id)
            await author.node.groups.invite(room, returner.node.me)
            await returner.join_when_invited(room)
            await join
            await holder.request(cmd="joined", room=room.hex(), n=3)
            await returner.wait_joined(room, 3)
            await author.wait_joined(room, 3)
            await returner.close()

            gate = asyncio.Semaphore(64)

            async def one(i: int) -> None:
                async with gate:
                    await author.node.send_message(room, f"while you were away {i}")

            t0 = time.monotonic()
            async with asyncio.timeout(PHASE):
                await asyncio.gather(*(one(i) for i in range(n)))
            got = await holder.request(
                cmd="texts", room=room.hex(), n=n, timeout=PHASE, within=PHASE + 5
            )
            author_rate = n / (got["at"] - t0)
        finally:
            await close_all([author, returner])

        # The returner comes back, configured to dial the holder (the author is gone).
        os.environ["P2PCHAT_HOME"] = str(home / "here")
        back = Member(make_node("returner", peers=(("127.0.0.1", holder_port),)))
        try:
            back.want(room, n)
            holder_cpu0 = (await holder.request(cmd="cpu"))["cpu"]
            spy = start_py_spy()
            threads0 = thread_cpu()
            cpu0 = time.process_time()
            t_start = time.monotonic()
            async with asyncio.timeout(PHASE):
                await back.node.start()
                t_started = time.monotonic()
                t_end = await back.wait_texts(room, n, PHASE)
            cpu_returner = time.process_time() - cpu0
            by_thread = busy_threads(threads0, thread_cpu())
            stop_py_spy(spy)
            cpu_holder = (await holder.request(cmd="cpu"))["cpu"] - holder_cpu0
            t_link = back.online_at[holder_id]
            first = min(back.arrived.values())
            history = await back.node.history(room, limit=10 * n)
            texts = [m for m in history if m.kind == "text"]
            if {m.author for m in texts} != {author.node.me}:
                raise RuntimeError("catch-up: messages not signed by the author")
            if back.dropped:
                print(f"  note: {back.dropped} events dropped for the returner's subscriber")
        finally:
            await back.close()
    return CatchUp(
        count=n,
        author_rate=author_rate,
        from_start=t_end - t_start,
        from_link=t_end - t_link,
        start_call=t_started - t_start,
        first_to_last=t_end - first,
        stored=len(texts),
        cpu_returner=cpu_returner,
        cpu_holder=cpu_holder,
        by_thread=by_thread,
    )


# ------------------------------------------------------------------ main


async def run(args: argparse.Namespace, home: Path) -> None:
    """Measure and print everything."""
    print(
        f"profiles and stores under {home} (fsync of 4 KiB: median {fsync_ms(home):.3f} ms); "
        f"loopback (127.0.0.1) only, mDNS off; {os.cpu_count()} CPUs"
    )
    print(
        f"fan-out: {args.messages} messages one at a time after {WARMUP} warm-up ones, "
        f"{args.gap:.2f} s pause between them; the author is the owner and connected to "
        "every member (star)"
    )
    results: list[tuple[FanOut, bool]] = []
    for size in args.sizes:
        r = await fan_out_one_process(size, args, home / f"fanout-{size}")
        results.append((r, size == 50))
        print("\n".join(r.lines(size == 50)), flush=True)
    if not args.skip_multi:
        procs, per_proc = args.multi
        r = await fan_out_processes(args, home / "fanout-multi", procs, per_proc)
        results.append((r, r.size == 50))
        print("\n".join(r.lines(r.size == 50)), flush=True)
    if args.catchup:
        print(
            f"\ncatch-up: 3-member room; returner stopped, author writes {args.catchup:,}, "
            "holder (child process) stores them, author stops, returner (this process) "
            "restarts dialling the holder only"
        )
        c = await catch_up(args, home / "catchup")
        print("\n".join(c.lines()), flush=True)

    print("\n== summary")
    for r, target in results:
        print("\n".join(r.lines(target)))
    if args.catchup:
        print("\n".join(c.lines()))


def main() -> None:
    """Parse arguments, make a throwaway P2PCHAT_HOME, run."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=20, help="measured fan-out messages")
    parser.add_argument("--gap", type=float, default=0.3, help="pause between them (s)")
    parser.add_argument("--catchup", type=int, default=10_000, help="missed messages; 0: skip")
    parser.add_argument(
        "--sizes",
        type=lambda s: [int(x) for x in s.split(",") if x],
        default=[10, 50],
        help="room sizes for the one-process fan-out (comma-separated)",
    )
    parser.add_argument(
        "--multi",
        type=lambda s: tuple(int(x) for x in s.split("x")),
        default=(7, 7),
        help="multi-process fan-out: PROCSxNODES members in child processes (default 7x7)",
    )
    parser.add_argument("--skip-multi", action="store_true", help="no multi-process fan-out")
    parser.add_argument("--dir", type=Path, default=None, help="parent of the temp home")
    args = parser.parse_args()
    # SIGTERM unwinds like Ctrl-C, so children are stopped and the temp home removed.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    with tempfile.TemporaryDirectory(prefix="p2pchat-bench-groups-", dir=args.dir) as home:
        os.environ["P2PCHAT_HOME"] = home  # must never touch a real profile
        asyncio.run(asyncio.wait_for(run(args, Path(home)), 3 * PHASE))


if __name__ == "__main__":
    main()
