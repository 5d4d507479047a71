"""``serve`` says why it refused what a peer sent: one line per peer and reason, not one
per frame (docs/protocol.md, "Rooms and envelopes"; cli/logs.py).

A real ``serve`` process and a scripted hostile peer (tests/adversary/hostile.py) over
loopback. Before, the refusals were logged at INFO and ``serve`` showed none of them.
"""

from __future__ import annotations

import asyncio
import json
import logging
from pathlib import Path

import msgpack

from p2pchat.cli.logs import OncePerWindow
from p2pchat.identity import decode_peer_id
from p2pchat.node.events import PeerOffline, PeerOnline
from tests.adversary.hostile import Hostile
from tests.nodes import make_node, wait_for
from tests.processes import Serve, cli, free_port

FRAMES_PER_REASON = 6


async def test_serve_logs_each_drop_reason_once_per_peer(p2pchat_home: Path) -> None:
    made = cli("--profile", "target", "id", "--json", home=p2pchat_home)
    assert made.returncode == 0, made.stderr
    target = decode_peer_id(json.loads(made.stdout)["id"])
    port = free_port()
    serve = Serve("target", p2pchat_home, "--port", str(port), "--no-announce")
    mallory = make_node("mallory")
    carol = make_node("carol")  # never started: only her identity signs
    try:
        await asyncio.to_thread(serve.wait_for, "on port")
        await mallory.start()
        online = mallory.subscribe()
        mallory.links.add_target("127.0.0.1", port, "manual", target)
        await wait_for(online, lambda e: isinstance(e, PeerOnline) and e.peer_id == target)
        hostile = Hostile(mallory)

        relayed = [
            Hostile.resigned(carol, hostile.direct(target), author=carol.me)
            for _ in range(FRAMES_PER_REASON)
        ]
        far_ahead = [hostile.direct(target, lamport=2**40) for _ in range(FRAMES_PER_REASON)]
        hostile.send_envelopes(target, *relayed, *far_ahead)
        # A valid message last: inbound envelopes are handled in order, so once serve
        # shows it as a contact request, every refusal above has been logged.
        hostile.send_envelopes(target, hostile.direct(target, body=b"hello"))
        await asyncio.to_thread(serve.wait_for, "contact request from mallory")

        # A malformed frame closes the connection (logged before it closes); mallory
        # redials and does it again: still one line.
        for _ in range(2):
            if not mallory.links.is_online(target):
                await wait_for(online, lambda e: isinstance(e, PeerOnline) and e.peer_id == target)
            mallory.links.links[target].conn.write_encoded(msgpack.packb({"t": "msg"}))
            await wait_for(online, lambda e: isinstance(e, PeerOffline) and e.peer_id == target)
    finally:
        await mallory.stop()
        serve.stop()
    await asyncio.to_thread(serve.wait_for, "stopped")  # every line it printed, read

    lines = serve.lines
    assert len([line for line in lines if "relayed direct message" in line]) == 1, lines
    assert len([line for line in lines if "implausibly far ahead" in line]) == 1, lines
    closes = [line for line in lines if "closing connection" in line]
    assert len([line for line in closes if "malformed frame" in line]) == 1, lines
    # (Each close is also an "offline" event line: events are not rate-limited.)
    who = mallory.peer_id_text[:8]
    assert all(who in line for line in lines if "dropped message" in line), lines


def test_a_reason_held_back_is_counted_on_the_next_line_after_the_window() -> None:
    now = [0.0]
    limiter = OncePerWindow(60.0, clock=lambda: now[0])
    printed: list[str] = []

    def log(peer: str, lamport: int) -> None:
        record = logging.LogRecord(
            "p2pchat.node.direct",
            logging.INFO,
            __file__,
            1,
            "dropped message from %s: %s",
            (peer, f"lamport {lamport} is implausibly far ahead"),
            None,
        )
        if limiter.filter(record):
            printed.append(record.getMessage())

    for i in range(5):
        log("mallory1", 2**40 + i)  # numbers differ per frame: still one reason
    log("trudy234", 2**40)  # another peer is another line
    now[0] = 61.0
    log("mallory1", 7)
    assert printed == [
        f"dropped message from mallory1: lamport {2**40} is implausibly far ahead",
        f"dropped message from trudy234: lamport {2**40} is implausibly far ahead",
        "dropped message from mallory1: lamport 7 is implausibly far ahead"
        " (4 more like it held back)",
    ]
