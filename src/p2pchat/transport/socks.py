"""A SOCKS5 CONNECT by host name (RFC 1928), the one thing we ask of tor's SOCKS port.

Tor resolves ``.onion`` names itself, so the name is sent as a domain (ATYP 3) and never
resolved here. No authentication method is offered but "none": the SOCKS port is tor's,
on loopback. Every read is bounded by the caller's deadline (``connect`` wraps this in
its handshake timeout), and each reply is checked before anything is allocated.
"""

from __future__ import annotations

import asyncio
from typing import Final

#: tor's SOCKS5 replies, in words for the person reading a log (RFC 1928 section 6, and
#: tor's extended codes for onion services).
_REPLIES: Final[dict[int, str]] = {
    1: "general SOCKS server failure",
    2: "connection not allowed by ruleset",
    3: "network unreachable",
    4: "host unreachable (onion service not found or not reachable)",
    5: "connection refused",
    6: "TTL expired (the onion service did not answer in time)",
    7: "command not supported",
    8: "address type not supported",
    0xF0: "onion service descriptor not found",
    0xF1: "onion service descriptor is invalid",
    0xF2: "onion service introduction failed",
    0xF3: "onion service rendezvous failed",
    0xF4: "onion service needs client authorisation",
    0xF5: "onion service client authorisation is wrong",
    0xF6: "onion address is invalid",
    0xF7: "onion service introduction timed out",
}


class SocksError(OSError):
    """The proxy refused or broke the SOCKS exchange; the message says why."""


async def socks5_connect(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, host: str, port: int
) -> None:
    """Ask the proxy on ``reader``/``writer`` to connect to ``host:port``; raise SocksError."""
    name = host.encode("ascii", errors="strict")
    if not 0 < len(name) <= 255:
        raise SocksError(f"host name too long for SOCKS: {len(name)} bytes")
    writer.write(b"\x05\x01\x00")  # version 5, one method: no authentication
    await writer.drain()
    version, method = await _read(reader, 2)
    if version != 5 or method != 0:
        raise SocksError("the SOCKS proxy wants an authentication method we do not offer")
    writer.write(b"\x05\x01\x00\x03" + bytes([len(name)]) + name + port.to_bytes(2, "big"))
    await writer.drain()
    version, reply, _reserved, atyp = await _read(reader, 4)
    if version != 5:
        raise SocksError("the SOCKS proxy answered with another protocol version")
    if reply != 0:
        raise SocksError(f"SOCKS: {_REPLIES.get(reply, f'error {reply}')}")
    # The bound address that follows means nothing to us; read it to reach the stream.
    if atyp == 1:
        await _read(reader, 4 + 2)
    elif atyp == 4:
        await _read(reader, 16 + 2)
    elif atyp == 3:
        (length,) = await _read(reader, 1)
        await _read(reader, length + 2)
    else:
        raise SocksError(f"SOCKS: unknown address type {atyp}")


async def _read(reader: asyncio.StreamReader, n: int) -> bytes:
    try:
        return await reader.readexactly(n)
    except asyncio.IncompleteReadError:
        raise SocksError("the SOCKS proxy closed the connection") from None
