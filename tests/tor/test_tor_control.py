"""``--tor-control``: a node joins a tor that is already running, through its control port.

The node publishes its onion service on that tor and reaches itself through it; when
the node stops, its service goes with its control connection but the tor (not ours)
keeps running.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from p2pchat.node import TorStatus
from tests.nodes import make_node, wait_for
from tests.tor_network import TorNetwork

TOR_READY = 90.0


@pytest.fixture
def running_tor(
    tor_network: TorNetwork, tmp_path: Path
) -> Iterator[tuple[subprocess.Popen[bytes], int]]:
    folder = tmp_path / "system-tor"
    folder.mkdir(mode=0o700)
    torrc = folder / "torrc"
    torrc.write_text(
        "\n".join(
            [
                f"DataDirectory {folder / 'data'}",
                "SocksPort 127.0.0.1:auto",
                "ControlPort 127.0.0.1:auto",
                f"ControlPortWriteToFile {folder / 'port'}",
                "CookieAuthentication 1",
                "ShutdownWaitLength 0",
                *tor_network.client_torrc(),
            ]
        )
        + "\n"
    )
    tor = shutil.which("tor")
    assert tor is not None
    proc = subprocess.Popen([tor, "-f", str(torrc)], stdout=subprocess.DEVNULL)
    deadline = time.monotonic() + 30
    port = None
    while port is None and time.monotonic() < deadline and proc.poll() is None:
        text = (folder / "port").read_text() if (folder / "port").exists() else ""
        found = re.search(r"PORT=127\.0\.0\.1:(\d+)", text)
        port = int(found.group(1)) if found else None
        time.sleep(0.1)
    assert port is not None, "the test's own tor did not start"
    yield proc, port
    proc.terminate()
    proc.wait(timeout=10)


async def test_node_uses_a_running_tor_and_leaves_it_running(
    running_tor: tuple[subprocess.Popen[bytes], int],
) -> None:
    proc, port = running_tor
    node = make_node("alice", tor=True, tor_control=f"127.0.0.1:{port}")
    events = node.subscribe()
    await node.start()
    try:
        await wait_for(events, lambda e: isinstance(e, TorStatus) and e.state == "ready", TOR_READY)
        assert node.onions.runner is not None
        assert node.onions.runner._process is None  # nothing of ours was started
        assert await node.onions.round_trip() < 60
    finally:
        await node.stop()
    assert proc.poll() is None  # not ours: still running
