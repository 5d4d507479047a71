"""Local network interfaces: listing them and turning a user's ``--interface`` into addresses.

This module only *reads* the host's interface table (through ``ifaddr``); it must never open
sockets or change anything on the host.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass

import ifaddr

__all__ = ["InterfaceInfo", "list_interfaces", "resolve_interfaces"]


@dataclass(frozen=True, slots=True)
class InterfaceInfo:
    """One network interface and its addresses (IPv6 ones may carry a ``%scope`` suffix)."""

    name: str
    ipv4: tuple[str, ...]
    ipv6: tuple[str, ...]
    is_loopback: bool


def list_interfaces() -> list[InterfaceInfo]:
    """Return the host's interfaces in the order the OS reports them."""
    result: list[InterfaceInfo] = []
    for adapter in ifaddr.get_adapters():
        ipv4: list[str] = []
        ipv6: list[str] = []
        for ip in adapter.ips:
            if ip.is_IPv4:
                assert isinstance(ip.ip, str)
                ipv4.append(ip.ip)
            else:
                assert isinstance(ip.ip, tuple)
                addr, _flowinfo, scope_id = ip.ip
                v6 = ipaddress.IPv6Address(addr)
                ipv6.append(f"{addr}%{scope_id}" if v6.is_link_local and scope_id else addr)
        loopback = bool(ipv4 or ipv6) and all(
            ipaddress.ip_address(a.split("%", 1)[0]).is_loopback for a in (*ipv4, *ipv6)
        )
        result.append(
            InterfaceInfo(
                name=adapter.name,
                ipv4=tuple(ipv4),
                ipv6=tuple(ipv6),
                is_loopback=loopback,
            )
        )
    return result


def _describe(interfaces: Iterable[InterfaceInfo]) -> str:
    parts = [f"{i.name} ({', '.join(i.ipv4) or 'no IPv4'})" for i in interfaces]
    return ", ".join(parts) or "none"


def resolve_interfaces(spec: Iterable[str]) -> list[str]:
    """Turn IP addresses and/or interface names into the list of IP addresses to bind to.

    An IP address must belong to one of the host's interfaces; a name stands for all of that
    interface's IPv4 addresses (mDNS here is IPv4 only). Raises ``ValueError`` naming the
    available interfaces when an entry matches nothing, so a typo in ``--interface`` is
    explained instead of silently announcing nowhere.
    """
    interfaces = list_interfaces()
    by_name = {i.name: i for i in interfaces}
    local = {a.split("%", 1)[0] for i in interfaces for a in (*i.ipv4, *i.ipv6)}
    resolved: list[str] = []
    for raw in spec:
        entry = raw.strip()
        try:
            addr = ipaddress.ip_address(entry)
        except ValueError:
            info = by_name.get(entry)
            if info is None:
                raise ValueError(
                    f"unknown network interface {entry!r}; available: {_describe(interfaces)}"
                ) from None
            if not info.ipv4:
                raise ValueError(
                    f"network interface {entry!r} has no IPv4 address; "
                    f"available: {_describe(interfaces)}"
                ) from None
            candidates = list(info.ipv4)
        else:
            if str(addr) not in local:
                raise ValueError(
                    f"address {entry} is not on any local interface; "
                    f"available: {_describe(interfaces)}"
                )
            candidates = [str(addr)]
        resolved.extend(c for c in candidates if c not in resolved)
    if not resolved:
        raise ValueError(f"no interface given; available: {_describe(interfaces)}")
    return resolved
