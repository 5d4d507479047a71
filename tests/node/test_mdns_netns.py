"""Real mDNS between two network namespaces: nodes find each other with no address given.

Each namespace runs ``p2pchat serve`` (port 0, announced); neither is told the other's
address. They must discover each other over multicast on the veth link, connect, and
chat. Skipped with a clear reason when not root (``ip netns`` needs it).
"""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import pytest

from tests.netns import LineReader, Netns, netns_network, require_netns
from tests.processes import cli

pytestmark = pytest.mark.netns
WAIT = 30.0


def _serve(ns: Netns, profile: str) -> tuple[subprocess.Popen[str], LineReader]:
    code = (
        "import sys; from p2pchat.cli import main; "
        f"sys.exit(main(['--profile', '{profile}', 'serve', '--name', '{profile}']))"
    )
    proc = ns.popen_python(code)
    return proc, LineReader(proc)


def _wait_line(reader: LineReader, text: str, seen: list[str]) -> str:
    end = time.monotonic() + WAIT
    while (left := end - time.monotonic()) > 0:
        line = reader.next_line(left)
        seen.append(line)
        if text in line:
            return line
    raise AssertionError(f"no {text!r} in {seen}")


def test_two_namespaces_discover_each_other_and_chat(p2pchat_home: Path) -> None:
    require_netns()
    with netns_network(2) as net:
        a_proc, a_out = _serve(net[0], "alice")
        b_proc, b_out = _serve(net[1], "bob")
        a_seen: list[str] = []
        b_seen: list[str] = []
        online = _wait_line(a_out, "bob is online", a_seen)
        assert net[1].address in online  # reached over the veth, found by mDNS
        _wait_line(b_out, "alice is online", b_seen)
        # The CLI reaches alice's node through its control socket (a file, not the network).
        sent = cli("--profile", "alice", "send", "bob", "found you over mDNS", home=p2pchat_home)
        assert sent.returncode == 0, sent.stderr
        _wait_line(b_out, "message from alice: found you over mDNS", b_seen)
        for proc in (a_proc, b_proc):
            proc.terminate()
            assert proc.wait(timeout=WAIT) == 0
