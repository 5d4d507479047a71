"""Floods 4, 5 and 7 of issue 10 at once: honest people still chat, newcomers still get in.

While silent TCP connections from many addresses fill the handshake table (hole 4),
strangers hammer the file-serving port with junk ``get``s (hole 5) and a contact floods
48 KB texts (hole 7), two honest contacts keep chatting with the victim and a new peer
dials it. The attackers run in a process of their own (tests/adversary/flood_process.py),
as other machines would; every flood stops by itself (count and time).

The latency bound (p99 < 100 ms) is the issue's promise: from an honest contact's send
to the victim's event showing the message, 160 messages per contact, one at a time. A
loaded machine (a CI box running the whole suite) can take a quiet chat's p99 near that
bound by itself, so the same chat is first measured before the floods start, and the
bound under flood is 100 ms or three times that quiet chat's p90, whichever is larger,
and never over 500 ms (the p90, not the p99: one hiccup of the quiet chat must not lift
the bound). Without the defences the floods delay messages by seconds, so the bound
catches them either way.
"""

from __future__ import annotations

import asyncio
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

from p2pchat.identity import decode_peer_id, encode_peer_id
from p2pchat.node import MessageAdded, Node
from tests.adversary.test_flood import befriend
from tests.adversary.test_handshake_flood import ONLINE_WITHIN, both_online, still_full
from tests.nodes import WAIT, make_node, wait_for

HONEST_MESSAGES = 160  # 320 samples: the p99 is not one hiccup (with 80 it was the second worst)
P99_BOUND_MS = 100.0
QUIET_FACTOR = 3.0
MAX_BOUND_MS = 500.0
ROOT = Path(__file__).resolve().parents[2]


async def _chat(victim: Node, contact: Node, delays: list[float]) -> None:
    """``contact`` writes to the victim one message at a time; record each delay."""
    events = victim.subscribe()
    try:
        for i in range(HONEST_MESSAGES):
            start = time.monotonic()
            sent = await contact.send_text(victim.me, f"{contact.me.hex()[:4]} {i}")
            await wait_for(
                events, lambda e, s=sent.id: isinstance(e, MessageAdded) and e.message.id == s
            )
            delays.append((time.monotonic() - start) * 1000)
    finally:
        events.close()


async def _line(proc: asyncio.subprocess.Process, word: str) -> str:
    assert proc.stdout is not None
    async with asyncio.timeout(WAIT * 2):
        while line := (await proc.stdout.readline()).decode():
            if line.startswith(word):
                return line.strip()
    raise AssertionError(f"the attackers' process ended before saying {word}")


async def test_honest_contacts_chat_and_newcomers_get_in_while_three_floods_run(
    tmp_path: Path,
) -> None:
    victim, bob, carol, newcomer = (make_node(n) for n in ("victim", "bob", "carol", "new"))
    for node in (victim, bob, carol, newcomer):
        await node.start()
    attackers = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tests.adversary.flood_process",
        "--port",
        str(victim.port),
        "--victim",
        encode_peer_id(victim.me),
        cwd=ROOT,
        env={**os.environ, "P2PCHAT_HOME": str(tmp_path / "attackers")},
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
    )
    try:
        await befriend(victim, bob)
        await befriend(victim, carol)
        mallory = decode_peer_id((await _line(attackers, "READY")).split()[1])
        await victim.accept(mallory)  # a contact: its 48 KB texts are stored, up to quota
        quiet: list[float] = []
        async with asyncio.timeout(WAIT * 4):
            await asyncio.gather(_chat(victim, bob, quiet), _chat(victim, carol, quiet))
        quiet_p90 = statistics.quantiles(quiet, n=10)[8]
        assert attackers.stdin is not None
        attackers.stdin.write(b"GO\n")
        await attackers.stdin.drain()
        await _line(attackers, "FLOODING")
        listener = victim.links.listener
        async with asyncio.timeout(10):  # the handshake table fills (no event: polled)
            while listener.pending < listener.limits.max_pending:  # noqa: ASYNC110
                await asyncio.sleep(0.01)
        ev, en = victim.subscribe(), newcomer.subscribe()
        newcomer.links.add_target("127.0.0.1", victim.port, "manual", victim.me)
        async with asyncio.timeout(ONLINE_WITHIN):
            await both_online(victim, ev, newcomer, en)
        delays: list[float] = []
        async with asyncio.timeout(WAIT * 4):
            await asyncio.gather(_chat(victim, bob, delays), _chat(victim, carol, delays))
        assert still_full(victim)  # the floods were still on throughout
        p99 = statistics.quantiles(delays, n=100)[98]
        bound = max(P99_BOUND_MS, min(QUIET_FACTOR * quiet_p90, MAX_BOUND_MS))
        assert p99 < bound, (
            f"p99 {p99:.1f} ms (median {statistics.median(delays):.1f}),"
            f" quiet p90 {quiet_p90:.1f} ms"
        )
    finally:
        if attackers.stdin is not None:
            attackers.stdin.close()
        try:
            async with asyncio.timeout(WAIT):
                await attackers.wait()
        except TimeoutError:
            attackers.kill()
            await attackers.wait()
        for node in (victim, bob, carol, newcomer):
            await node.stop()
