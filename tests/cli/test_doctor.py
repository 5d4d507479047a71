"""`p2pchat doctor` inside two network namespaces of our own (its probes use real
multicast and TCP on every interface, so it never runs on the host's network here)."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from tests.netns import LineReader, Netns, netns_network, require_netns

pytestmark = pytest.mark.netns
WAIT = 30.0


def _cli_code(*argv: str) -> str:
    return f"import sys; from p2pchat.cli import main; sys.exit(main({list(argv)!r}))"


def _wait_line(reader: LineReader, text: str) -> str:
    end = time.monotonic() + WAIT
    seen = []
    while (left := end - time.monotonic()) > 0:
        line = reader.next_line(left)
        seen.append(line)
        if text in line:
            return line
    raise AssertionError(f"no {text!r} in {seen}")


def _serve(ns: Netns, profile: str) -> LineReader:
    proc = ns.popen_python(_cli_code("--profile", profile, "serve", "--name", profile))
    return LineReader(proc)


def test_doctor_reports_interfaces_multicast_port_and_peers(p2pchat_home: Path) -> None:
    require_netns()
    with netns_network(2) as net:
        alice = _serve(net[0], "alice")
        line = _wait_line(alice, "on port")
        port = int(line.split("on port ")[1].split(";")[0])
        _serve(net[1], "bob")
        _wait_line(alice, "bob is online")
        result = net[0].run_python(_cli_code("--profile", "alice", "doctor", "--json"), timeout=60)
        assert result.returncode == 0, result.stderr
        report = json.loads(result.stdout)
        names = {i["name"]: i for i in report["interfaces"]}
        assert net[0].address in names["veth0"]["ipv4"]
        assert any(m["interface"] == "veth0" and m["ok"] for m in report["multicast"])
        assert report["port"] == port
        assert any(c["host"] == net[0].address and c["ok"] for c in report["port_checks"])
        assert [p["name"] for p in report["peers_seen_mdns"]] == ["bob"]
        assert [p["name"] for p in report["peers_connected"]] == ["bob"]
        assert not [f for f in report["findings"] if f["level"] == "error"]

        # Human output: plain sentences, one per finding.
        text = net[0].run_python(_cli_code("--profile", "alice", "doctor"), timeout=60).stdout
        assert "Multicast works on veth0" in text
        assert f"Listening port: {port}" in text
