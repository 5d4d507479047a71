"""Network checks behind ``p2pchat doctor``: can peers find us, and can they connect to us?

Pure functions turn observations into plain-language ``Finding``s; small async probes gather
the observations. Nothing here prints or changes host configuration. The probes only address
ourselves, each bounded by a short timeout: a TCP connect to one of our own addresses, and one
TTL-1 packet to the mDNS group on a throw-away port (never 5353, so no responder on the link
parses it), which we read back through ``IP_MULTICAST_LOOP``.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from p2pchat.discovery.interfaces import InterfaceInfo, list_interfaces

__all__ = [
    "MDNS_GROUP",
    "VPN_PREFIXES",
    "Diagnosis",
    "Finding",
    "MulticastProbe",
    "PortProbe",
    "diagnose",
    "findings",
    "looks_like_vpn",
    "probe_multicast",
    "probe_tcp",
]

MDNS_GROUP = "224.0.0.251"
#: Interface name prefixes of common VPNs (WireGuard, OpenVPN tun/tap, Tailscale, macOS
#: utun, ZeroTier, PPP); mDNS going out of these instead of the LAN is a classic failure.
VPN_PREFIXES = ("tun", "tap", "wg", "tailscale", "utun", "zt", "ppp")

Level = Literal["ok", "warn", "error"]


@dataclass(frozen=True, slots=True)
class Finding:
    """One line of the doctor's report: what we found and what the person can do about it."""

    level: Level
    title: str
    hint: str


@dataclass(frozen=True, slots=True)
class MulticastProbe:
    """Whether a multicast packet sent on one interface address came back to us."""

    interface: str
    address: str
    ok: bool
    detail: str


@dataclass(frozen=True, slots=True)
class PortProbe:
    """Whether a TCP connection to ``host:port`` was accepted."""

    host: str
    port: int
    ok: bool
    detail: str


@dataclass(frozen=True, slots=True)
class Diagnosis:
    """Everything ``diagnose`` observed, plus the findings derived from it."""

    interfaces: tuple[InterfaceInfo, ...]
    multicast: tuple[MulticastProbe, ...]
    ports: tuple[PortProbe, ...]
    findings: tuple[Finding, ...]


def looks_like_vpn(name: str) -> bool:
    """True for interface names that usually belong to a VPN."""
    return name.lower().startswith(VPN_PREFIXES)


def _multicast_socket(address: str) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM, socket.IPPROTO_UDP)
    try:
        sock.setblocking(False)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        # An ephemeral port rather than 5353: real mDNS responders never see the probe.
        sock.bind(("0.0.0.0", 0))  # noqa: S104 - multicast is only delivered to wildcard binds
        mreq = socket.inet_aton(MDNS_GROUP) + socket.inet_aton(address)
        sock.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP, mreq)
        sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF, socket.inet_aton(address))
        sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_LOOP, 1)
        sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, 1)
    except BaseException:
        sock.close()
        raise
    return sock


async def probe_multicast(interface: str, address: str, wait_s: float = 1.0) -> MulticastProbe:
    """Join the mDNS group on ``address`` and check that a looped-back probe packet arrives.

    Success shows this host can send and receive multicast on that interface; it cannot show
    that the Wi-Fi access point forwards multicast to other hosts (AP isolation).
    """
    loop = asyncio.get_running_loop()
    nonce = b"p2pchat-doctor " + os.urandom(8).hex().encode()
    try:
        sock = _multicast_socket(address)
    except OSError as exc:
        return MulticastProbe(interface, address, False, f"cannot join {MDNS_GROUP}: {exc}")
    try:
        port = sock.getsockname()[1]
        async with asyncio.timeout(wait_s):
            await loop.sock_sendto(sock, nonce, (MDNS_GROUP, port))
            while True:
                # Other probes may share the group; only our own nonce counts.
                data, _sender = await loop.sock_recvfrom(sock, 2048)
                if data == nonce:
                    return MulticastProbe(interface, address, True, "multicast loopback works")
    except TimeoutError:
        return MulticastProbe(interface, address, False, f"probe not received within {wait_s:g} s")
    except OSError as exc:
        return MulticastProbe(interface, address, False, f"cannot send multicast: {exc}")
    finally:
        sock.close()


async def probe_tcp(host: str, port: int, wait_s: float = 1.0) -> PortProbe:
    """Try to open (and immediately close) a TCP connection to ``host:port``."""
    try:
        async with asyncio.timeout(wait_s):
            _reader, writer = await asyncio.open_connection(host, port)
    except TimeoutError:
        return PortProbe(host, port, False, f"no answer within {wait_s:g} s")
    except ConnectionRefusedError:
        return PortProbe(host, port, False, "connection refused")
    except OSError as exc:
        return PortProbe(host, port, False, exc.strerror or str(exc))
    writer.close()
    with contextlib.suppress(OSError, TimeoutError):
        async with asyncio.timeout(wait_s):
            await writer.wait_closed()
    return PortProbe(host, port, True, "connection accepted")


def findings(
    interfaces: Sequence[InterfaceInfo],
    multicast: Sequence[MulticastProbe] = (),
    ports: Sequence[PortProbe] = (),
) -> list[Finding]:
    """Turn observations into findings, worst problems first within each topic."""
    out: list[Finding] = []
    lan = [i for i in interfaces if not i.is_loopback and (i.ipv4 or i.ipv6)]
    if not lan:
        out.append(
            Finding(
                "error",
                "No network connection",
                "Only the loopback interface has an address, so only p2pchat instances on this "
                "machine can be found. Connect to Wi-Fi or Ethernet.",
            )
        )
    else:
        names = ", ".join(f"{i.name} ({', '.join(i.ipv4 or i.ipv6)})" for i in lan)
        out.append(Finding("ok", "Network interfaces", names))
    vpns = [i.name for i in lan if looks_like_vpn(i.name)]
    if len(lan) > 1 and vpns:
        others = [i.name for i in lan if i.name not in vpns]
        example = others[0] if others else lan[0].name
        out.append(
            Finding(
                "warn",
                f"Several interfaces, some look like VPNs: {', '.join(vpns)}",
                "Announcements may go out on the VPN instead of your local network. Choose the "
                f"LAN interface explicitly, e.g. `p2pchat --interface {example}`.",
            )
        )
    for probe in multicast:
        if probe.ok:
            out.append(
                Finding(
                    "ok",
                    f"Multicast works on {probe.interface} ({probe.address})",
                    "This machine can send and receive mDNS. If peers still do not appear, the "
                    "Wi-Fi may isolate clients: add them by address with `p2pchat add HOST:PORT`.",
                )
            )
        else:
            out.append(
                Finding(
                    "error",
                    f"Multicast does not work on {probe.interface} ({probe.address})",
                    f"{probe.detail}. A firewall may block mDNS (UDP port 5353), or the "
                    "network blocks multicast (AP/client isolation on guest Wi-Fi). Peers will "
                    "not appear automatically; add them with `p2pchat add HOST:PORT` or start "
                    "with `--peer HOST:PORT`.",
                )
            )
    for port_probe in ports:
        where = f"{port_probe.host}:{port_probe.port}"
        if port_probe.ok:
            out.append(Finding("ok", f"Port {where} accepts connections", port_probe.detail))
        else:
            out.append(
                Finding(
                    "error",
                    f"Port {where} does not accept connections",
                    f"{port_probe.detail}. Is p2pchat running on this port? If it is, a "
                    f"firewall may block incoming TCP: allow port {port_probe.port}/tcp "
                    f"(e.g. `sudo ufw allow {port_probe.port}/tcp`).",
                )
            )
    return out


async def diagnose(
    *,
    port: int | None = None,
    interfaces: Sequence[InterfaceInfo] | None = None,
    wait_s: float = 1.0,
) -> Diagnosis:
    """Probe multicast on each LAN IPv4 address and, given ``port``, TCP on every address.

    Loopback is probed for multicast only when there is no LAN interface: peers elsewhere
    never use it, so a result for it would only add noise to the report.
    """
    infos = tuple(interfaces if interfaces is not None else list_interfaces())
    targets = [(i.name, a) for i in infos for a in i.ipv4]
    lan_targets = [(i.name, a) for i in infos if not i.is_loopback for a in i.ipv4]
    mc = await asyncio.gather(*(probe_multicast(n, a, wait_s) for n, a in (lan_targets or targets)))
    tcp: list[PortProbe] = []
    if port is not None:
        tcp = list(await asyncio.gather(*(probe_tcp(a, port, wait_s) for _n, a in targets)))
    return Diagnosis(
        interfaces=infos,
        multicast=tuple(mc),
        ports=tuple(tcp),
        findings=tuple(findings(infos, mc, tcp)),
    )
