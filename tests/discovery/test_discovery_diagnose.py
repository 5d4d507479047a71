"""`p2pchat doctor` checks: probes on loopback only, findings as pure functions."""

from __future__ import annotations

import asyncio
import socket

from p2pchat.discovery import InterfaceInfo
from p2pchat.discovery.diagnose import (
    MulticastProbe,
    PortProbe,
    diagnose,
    findings,
    looks_like_vpn,
    probe_multicast,
    probe_tcp,
)

LO = InterfaceInfo("lo", ("127.0.0.1",), ("::1",), True)
ETH = InterfaceInfo("eth0", ("192.168.1.20",), (), False)
WG = InterfaceInfo("wg0", ("10.8.0.2",), (), False)


async def test_multicast_probe_on_loopback_works() -> None:
    probe = await probe_multicast("lo", "127.0.0.1", wait_s=2.0)
    assert probe.ok, probe.detail


async def test_multicast_probe_on_foreign_address_fails_cleanly() -> None:
    # 203.0.113.0/24 is TEST-NET-3: not ours, so joining the group on it must fail, not raise.
    probe = await probe_multicast("bogus", "203.0.113.123", wait_s=0.5)
    assert not probe.ok
    assert "224.0.0.251" in probe.detail


async def test_tcp_probe_listening_vs_closed() -> None:
    server = await asyncio.start_server(lambda r, w: w.close(), "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    async with server:
        assert (await probe_tcp("127.0.0.1", port)).ok
    # Bind without listening: the port is ours and guaranteed closed for connections.
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        closed_port = closed.getsockname()[1]
        result = await probe_tcp("127.0.0.1", closed_port, wait_s=1.0)
    assert not result.ok
    assert result.detail == "connection refused"


async def test_diagnose_on_loopback_only() -> None:
    server = await asyncio.start_server(lambda r, w: w.close(), "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    async with server:
        result = await diagnose(port=port, interfaces=[LO], wait_s=2.0)
    assert [p.ok for p in result.multicast] == [True]
    assert [p.ok for p in result.ports] == [True]
    levels = [(f.level, f.title) for f in result.findings]
    assert levels[0] == ("error", "No network connection")
    assert ("ok", f"Port 127.0.0.1:{port} accepts connections") in levels


def test_no_lan_interface_is_an_error() -> None:
    out = findings([LO])
    assert out[0].level == "error"
    assert "Wi-Fi" in out[0].hint


def test_lan_interface_is_ok_and_no_vpn_warning_alone() -> None:
    out = findings([LO, ETH])
    assert [f.level for f in out] == ["ok"]
    assert "eth0 (192.168.1.20)" in out[0].hint


def test_vpn_next_to_lan_suggests_interface() -> None:
    out = findings([LO, ETH, WG])
    warn = [f for f in out if f.level == "warn"]
    assert len(warn) == 1
    assert "wg0" in warn[0].title
    assert "--interface eth0" in warn[0].hint


def test_multicast_failure_suggests_manual_peers() -> None:
    out = findings([LO, ETH], multicast=[MulticastProbe("eth0", "192.168.1.20", False, "timeout")])
    error = [f for f in out if f.level == "error"]
    assert len(error) == 1
    assert "p2pchat add HOST:PORT" in error[0].hint
    assert "--peer" in error[0].hint
    assert "isolation" in error[0].hint


def test_port_unreachable_mentions_firewall() -> None:
    out = findings([ETH], ports=[PortProbe("192.168.1.20", 7777, False, "connection refused")])
    assert out[-1].level == "error"
    assert "7777/tcp" in out[-1].hint
    assert "firewall" in out[-1].hint


def test_vpn_names() -> None:
    for name in ("tun0", "wg0", "tailscale0", "utun3", "WG1"):
        assert looks_like_vpn(name)
    for name in ("eth0", "wlan0", "en0", "lo"):
        assert not looks_like_vpn(name)
