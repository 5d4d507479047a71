"""A Discovery peer run as a subprocess inside a network namespace by tests and bench.

Usage: ns_peer.py PEER_ID NAME PORT INTERFACE. Prints JSON lines (``started`` with a monotonic
timestamp just before ``start()``, then ``seen``/``lost`` events) and runs until stdin closes
or 60 s pass, so a crashed test never leaves it running.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time

from p2pchat.discovery import Discovery, PeerLost, PeerSeen


def _print(obj: dict[str, object]) -> None:
    print(json.dumps(obj), flush=True)


def _on_event(event: PeerSeen | PeerLost) -> None:
    if isinstance(event, PeerSeen):
        _print(
            {
                "event": "seen",
                "t": time.monotonic(),
                "peer_id": event.peer_id,
                "name": event.name,
                "addresses": [list(a) for a in event.addresses],
            }
        )
    else:
        _print({"event": "lost", "t": time.monotonic(), "peer_id": event.peer_id})


async def main(peer_id: str, name: str, port: int, interface: str) -> None:
    loop = asyncio.get_running_loop()
    stdin = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(stdin), sys.stdin)
    disc = Discovery(
        peer_id=peer_id, name=name, port=port, interfaces=[interface], on_event=_on_event
    )
    _print({"event": "started", "t": time.monotonic()})
    await disc.start()
    _print({"event": "announced", "t": time.monotonic()})
    try:
        async with asyncio.timeout(60):
            await stdin.read()
    except TimeoutError:
        pass
    finally:
        await disc.stop()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]))
