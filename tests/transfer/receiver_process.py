"""A receiving node in its own process, so a test can ``kill -9`` it mid-transfer.

``python -m tests.transfer.receiver_process --profile bob --peer HOST:PORT --accept ID
--downloads DIR [--files-via HOST:PORT]`` (cwd = repo root, ``P2PCHAT_HOME`` from the
environment). It accepts the given peer as a contact, accepts files up to 1 GiB
automatically, and reports facts on stdout, one per line, flushed at once::

    READY <port> <peer_id>
    RESUME <message_id_hex> <state> <bytes already on disk>   (at start, for each transfer)
    STATE <message_id_hex> <state> <done>                     (on each progress event)
    DONE <message_id_hex> <path>                              (verified and saved)

``--files-via`` makes the files connection go through an address of the test's choosing
(a proxy it can pause), while chat uses the direct link.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys

from p2pchat.hostport import parse_host_port
from p2pchat.identity import decode_peer_id
from p2pchat.node.events import PeerOnline, TransferProgress
from p2pchat.node.service import SETTING_DOWNLOAD_DIR
from tests.nodes import make_node


def say(*words: object) -> None:
    sys.stdout.write(" ".join(str(w) for w in words) + "\n")
    sys.stdout.flush()


async def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--profile", required=True)
    parser.add_argument("--peer", required=True)
    parser.add_argument("--accept", required=True)
    parser.add_argument("--downloads", required=True)
    parser.add_argument("--files-via")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    node = make_node(args.profile, peers=(parse_host_port(args.peer),))
    friend = decode_peer_id(args.accept)
    if args.files_via:
        via = parse_host_port(args.files_via)

        async def addresses(peer: bytes) -> list[tuple[str, int]]:
            return [via]

        node.transfers.addresses_for = addresses
    stream = node.subscribe()
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    await node.start()
    await node.set_text_setting(SETTING_DOWNLOAD_DIR, args.downloads)
    await node.transfers.set_auto_accept_max(1 << 30)
    for info in await node.transfers.list_transfers():
        say("RESUME", info.id_text, info.state, info.done)
    if node.links.is_online(friend):
        await node.accept(friend)
    say("READY", node.port, node.peer_id_text)

    async def watch() -> None:
        async for event in stream:
            if isinstance(event, PeerOnline) and event.peer_id == friend:
                await node.accept(friend)
            elif isinstance(event, TransferProgress) and event.incoming:
                say("STATE", event.message_id.hex(), event.state, event.done)
                if event.state == "done":
                    info = await node.transfers.get(event.message_id)
                    say("DONE", event.message_id.hex(), info.path if info else "?")

    task = asyncio.create_task(watch())
    await stop.wait()
    task.cancel()
    await node.stop()
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
