"""Benchmark: message latency and file throughput through Tor, beside the same on the LAN.

Builds the private Tor network of the tests (``tests/tor_network.py``: 3 directory
authorities and 3 relays on 127.0.0.1), then runs the same measurement twice with two
nodes in this process: once linked directly over loopback TCP ("lan"), once linked only
through their tors and onion services ("tor", met by invite code, no direct address).
Both nodes share this process's clock, so one-way latency is the time from
``send_text`` to the receiver's ``MessageAdded``; the round trip is the time to the
sender's DELIVERED receipt. Files: one file pulled whole, timed from the offer to the
receiver's ``done`` (hash verified).

The private network has no real latency between relays (all on loopback), so the "tor"
figures are tor's own processing (six onion hops, three layers of encryption each way,
cells of 509 bytes) on this machine, a floor for what the real Tor network gives.

    .venv/bin/python bench/tor.py [--messages 50] [--file-mib 8]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from p2pchat.node.config import NodeConfig  # noqa: E402
from p2pchat.node.events import (  # noqa: E402
    ContactRequest,
    Event,
    MessageAdded,
    PeerOnline,
    ReceiptChanged,
    TorStatus,
    TransferProgress,
)
from p2pchat.node.service import SETTING_DOWNLOAD_DIR, Node  # noqa: E402
from p2pchat.node.stream import EventStream  # noqa: E402
from p2pchat.profile import open_profile  # noqa: E402
from p2pchat.store import MessageStatus  # noqa: E402
from tests.tor_network import TorNetwork, tor_binaries  # noqa: E402

STEP = 60.0  # bound on any single wait
CONFIG = NodeConfig(bind="127.0.0.1", discovery=False, announce=False)


def say(obj: dict[str, Any]) -> None:
    print(json.dumps(obj), flush=True)


async def until(stream: EventStream, check: Any, within: float = STEP) -> Event:
    async with asyncio.timeout(within):
        return await stream.next_matching(check)


def node(name: str, **overrides: Any) -> Node:
    profile = open_profile(name)
    profile.set_display_name(name)
    return Node(profile, replace(CONFIG, **overrides))


async def link_lan(alice: Node, bob: Node) -> None:
    bob_events, alice_events = bob.subscribe(), alice.subscribe()
    alice.links.add_target("127.0.0.1", bob.port, "manual", bob.me)
    await until(alice_events, lambda e: isinstance(e, PeerOnline) and e.peer_id == bob.me)
    await alice.accept(bob.me)
    first = await alice.send_text(bob.me, "hello")
    await until(bob_events, lambda e: isinstance(e, MessageAdded) and e.message.id == first.id)
    await bob.accept(alice.me)


async def link_tor(alice: Node, bob: Node) -> None:
    for n in (alice, bob):
        events = n.subscribe()
        if n.onions.status.state != "ready":
            await until(events, lambda e: isinstance(e, TorStatus) and e.state == "ready", 120)
    bob_events = bob.subscribe()
    await alice.onions.add_invite(bob.onions.invite_code())
    await alice.send_text(bob.me, "hello")
    await until(bob_events, lambda e: isinstance(e, ContactRequest))
    await bob.accept(alice.me)
    assert alice.links.via(bob.me) == "tor", "not linked through tor"


async def latency(alice: Node, bob: Node, n: int) -> dict[str, float]:
    a_events, b_events = alice.subscribe(), bob.subscribe()
    one_way: list[float] = []
    round_trip: list[float] = []
    for i in range(n):
        started = time.monotonic()
        msg = await alice.send_text(bob.me, f"ping {i}")
        await until(b_events, lambda e, m=msg: isinstance(e, MessageAdded) and e.message.id == m.id)
        one_way.append(time.monotonic() - started)
        await until(
            a_events,
            lambda e, m=msg: (
                isinstance(e, ReceiptChanged)
                and m.id in e.message_ids
                and e.status >= MessageStatus.DELIVERED
            ),
        )
        round_trip.append(time.monotonic() - started)
    one_way.sort()
    return {
        "one_way_p50_ms": statistics.median(one_way) * 1000,
        "one_way_p90_ms": one_way[int(len(one_way) * 0.9) - 1] * 1000,
        "delivered_p50_ms": statistics.median(round_trip) * 1000,
    }


async def file_rate(alice: Node, bob: Node, work: Path, mib: int) -> dict[str, float]:
    src = work / f"file-{mib}.bin"
    src.write_bytes(os.urandom(mib * 1024 * 1024))
    events = bob.subscribe()
    started = time.monotonic()
    msg = await alice.transfers.send_file(bob.me, src)
    done = await until(
        events,
        lambda e: (
            isinstance(e, TransferProgress)
            and e.message_id == msg.id
            and e.state in ("done", "failed", "cancelled")
        ),
        600,
    )
    seconds = time.monotonic() - started
    assert isinstance(done, TransferProgress), done
    assert done.state == "done", done
    return {"file_mib": mib, "file_seconds": seconds, "file_mib_s": mib / seconds}


async def run_mode(mode: str, network: TorNetwork, work: Path, args: argparse.Namespace) -> dict:
    os.environ["P2PCHAT_HOME"] = str(work / f"home-{mode}")
    tor = {"tor": True, "tor_torrc": tuple(network.client_torrc())} if mode == "tor" else {}
    alice, bob = node("alice", **tor), node("bob", **tor)
    await alice.start()
    await bob.start()
    await bob.set_text_setting(SETTING_DOWNLOAD_DIR, str(work / f"downloads-{mode}"))
    try:
        started = time.monotonic()
        await (link_tor if mode == "tor" else link_lan)(alice, bob)
        result: dict[str, Any] = {"mode": mode, "link_s": time.monotonic() - started}
        result |= await latency(alice, bob, args.messages)
        result |= await file_rate(alice, bob, work, args.file_mib)
        return result
    finally:
        await alice.stop()
        await bob.stop()


async def run(args: argparse.Namespace) -> int:
    if tor_binaries() is None:
        print("tor and tor-gencert are not installed (apt-get install tor)", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="p2pchat-bench-tor-") as tmp:
        work = Path(tmp)
        network = TorNetwork(work / "network")
        began = time.monotonic()
        await asyncio.to_thread(network.start)
        say({"network_ready_s": round(time.monotonic() - began, 1)})
        try:
            results = {}
            for mode in ("lan", "tor"):
                results[mode] = await run_mode(mode, network, work, args)
                say(
                    {
                        k: round(v, 2) if isinstance(v, float) else v
                        for k, v in results[mode].items()
                    }
                )
        finally:
            network.stop()
    lan, tor = results["lan"], results["tor"]
    say(
        {
            "tor_vs_lan_one_way_p50": round(tor["one_way_p50_ms"] / lan["one_way_p50_ms"], 1),
            "tor_vs_lan_file_rate": round(tor["file_mib_s"] / lan["file_mib_s"], 3),
        }
    )
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=50)
    parser.add_argument("--file-mib", type=int, default=8)
    return asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    sys.exit(main())
