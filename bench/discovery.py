"""Discovery latency: time from a second node's ``start()`` to ``PeerSeen``.

Measured both ways: "announce" = the already-running node sees the newcomer (bounded below by
zeroconf's ~1 s of probing before it may announce); "browse" = the newcomer sees the running
node. (a) two nodes in one process on loopback, (b) two processes in network namespaces
joined by veth (root only; skipped otherwise). Prints median and max per case; target < 1.5 s.

Usage: .venv/bin/python bench/discovery.py [--runs N]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from p2pchat.discovery import Discovery, PeerLost, PeerSeen  # noqa: E402
from tests.discovery.helpers import Collector, random_peer_id  # noqa: E402
from tests.netns import LineReader, netns_network, netns_unavailable_reason  # noqa: E402

PEER_SCRIPT = ROOT / "tests" / "discovery" / "ns_peer.py"
TARGET_S = 1.5


def report(label: str, samples: list[float]) -> None:
    med, worst = statistics.median(samples), max(samples)
    verdict = "ok" if worst < TARGET_S else "OVER TARGET"
    runs = ", ".join(f"{s:.3f}" for s in samples)
    print(f"{label:<28} median {med:.3f} s  max {worst:.3f} s  [{verdict}]  ({runs})")


async def bench_loopback(runs: int) -> None:
    first_events = Collector()
    first_id = random_peer_id()
    first = Discovery(
        peer_id=first_id, name="first", port=41000, interfaces=["127.0.0.1"], on_event=first_events
    )
    await first.start()
    announce: list[float] = []
    browse: list[float] = []
    try:
        for i in range(runs):
            second_id = random_peer_id()
            # Timestamps are taken in the callbacks so the two directions are independent.
            got: dict[str, float] = {}
            both = asyncio.Event()

            def mark(key: str, got: dict[str, float] = got, both: asyncio.Event = both) -> None:
                got.setdefault(key, time.monotonic())
                if len(got) == 2:
                    both.set()

            def on_second(e: PeerSeen | PeerLost) -> None:
                if isinstance(e, PeerSeen) and e.peer_id == first_id:
                    mark("browse")

            def on_first(e: PeerSeen | PeerLost, sid: str = second_id) -> None:
                first_events(e)
                if isinstance(e, PeerSeen) and e.peer_id == sid:
                    mark("announce")

            first._on_event = on_first
            second = Discovery(
                peer_id=second_id,
                name=f"second{i}",
                port=41001 + i,
                interfaces=["127.0.0.1"],
                on_event=on_second,
            )
            t0 = time.monotonic()
            await second.start()
            async with asyncio.timeout(15):
                await both.wait()
            announce.append(got["announce"] - t0)
            browse.append(got["browse"] - t0)
            await second.stop()
            await first_events.wait_for(lambda e: e == PeerLost(second_id), within=10)  # noqa: B023
    finally:
        await first.stop()
    report("loopback announce", announce)
    report("loopback browse", browse)


def _next_event(
    reader: LineReader, kind: str, deadline: float, peer_id: str | None = None
) -> float:
    while True:
        event = json.loads(reader.next_line(max(0.01, deadline - time.monotonic())))
        if event["event"] == kind and (peer_id is None or event.get("peer_id") == peer_id):
            return float(event["t"])


def bench_netns(runs: int) -> None:
    reason = netns_unavailable_reason()
    if reason is not None:
        print(f"netns: skipped ({reason})")
        return
    announce: list[float] = []
    browse: list[float] = []
    with netns_network(2) as net:
        a, b = net[0], net[1]
        first_id = random_peer_id()
        first = a.popen_python(None, first_id, "first", "7000", a.interface, script=PEER_SCRIPT)
        first_reader = LineReader(first)
        _next_event(first_reader, "announced", time.monotonic() + 10)
        for i in range(runs):
            second_id = random_peer_id()
            proc = b.popen_python(
                None, second_id, f"second{i}", "7001", b.interface, script=PEER_SCRIPT
            )
            reader = LineReader(proc)
            deadline = time.monotonic() + 15
            t0 = _next_event(reader, "started", deadline)
            browse.append(_next_event(reader, "seen", deadline, first_id) - t0)
            announce.append(_next_event(first_reader, "seen", deadline, second_id) - t0)
            assert proc.stdin is not None
            proc.stdin.close()
            proc.wait(timeout=10)
            _next_event(first_reader, "lost", time.monotonic() + 10, second_id)
    report("netns announce", announce)
    report("netns browse", browse)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    asyncio.run(bench_loopback(args.runs))
    bench_netns(args.runs)


if __name__ == "__main__":
    main()
