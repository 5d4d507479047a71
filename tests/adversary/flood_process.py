"""The attackers of the combined flood test, in a process of their own.

On a LAN the attackers are other machines: run in the test's own event loop they would
compete with the victim for one CPU and one loop, and measure that instead. Run as
``python -m tests.adversary.flood_process --port PORT --victim ID`` (cwd = repo root,
``P2PCHAT_HOME`` from the environment). Lines on stdout::

    READY <mallory_id>     mallory (to be made a contact) and the strangers are connected
    FLOODING               all three floods run

stdin: ``GO`` starts the floods; they stop by themselves after ``--seconds``, or when
stdin closes.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys

from p2pchat.identity import decode_peer_id, encode_peer_id
from tests.adversary.hostile import Hostile
from tests.adversary.test_file_slots import junk_gets
from tests.adversary.test_flood import flood
from tests.adversary.test_handshake_flood import FEW_BUSY, SilentFlood
from tests.nodes import connected_pair_by_address, make_node

STRANGERS = 4
FLOOD_MESSAGES = 400


def say(*words: object) -> None:
    sys.stdout.write(" ".join(str(w) for w in words) + "\n")
    sys.stdout.flush()


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--victim", required=True)
    parser.add_argument("--seconds", type=float, default=30.0)
    args = parser.parse_args()
    victim = decode_peer_id(args.victim)
    nodes = [make_node("mallory"), *(make_node(f"stranger{i}") for i in range(STRANGERS))]
    for node in nodes:
        await node.start()
    for node in nodes:
        await connected_pair_by_address(node, "127.0.0.1", args.port, victim)
    mallory, strangers = Hostile(nodes[0]), [Hostile(n) for n in nodes[1:]]
    say("READY", encode_peer_id(mallory.me))
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    await reader.readline()  # GO
    await mallory.node.accept(victim)
    stop = asyncio.Event()
    answered = asyncio.Event()
    handshakes = SilentFlood(args.port, FEW_BUSY)
    await handshakes.start()
    tasks = [
        asyncio.create_task(flood(mallory, _Victim(victim), FLOOD_MESSAGES)),
        *(
            asyncio.create_task(junk_gets(s, _Victim(victim, args.port), answered, stop))
            for s in strangers
        ),
    ]
    say("FLOODING")
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(args.seconds):
            await reader.read()  # until the test closes stdin
    stop.set()
    await handshakes.stop()
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    for node in nodes:
        await node.stop()


class _Victim:
    """What the flood helpers need to know of their target: its id and port."""

    def __init__(self, me: bytes, port: int = 0) -> None:
        self.me = me
        self.port = port


if __name__ == "__main__":
    asyncio.run(main())
