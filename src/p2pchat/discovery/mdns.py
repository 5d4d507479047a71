"""Announce this node and find other p2pchat nodes on the LAN with mDNS/DNS-SD (zeroconf).

Everything learnt here is a *hint*: the node checks the peer id in the Noise handshake. Still,
records from the network are untrusted input, so each one is validated and a bad one is
dropped (logged at debug level) instead of reaching the node. This module must never raise
out of a zeroconf callback, never block the event loop, never report our own announcement,
and never grow without bound however many records the network sends.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import ipaddress
import logging
import re
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from zeroconf import (
    IPVersion,
    ServiceInfo,
    ServiceStateChange,
    Zeroconf,
)
from zeroconf.asyncio import AsyncServiceBrowser, AsyncServiceInfo, AsyncZeroconf

from p2pchat.discovery.interfaces import list_interfaces, resolve_interfaces

__all__ = [
    "MAX_NAME_BYTES",
    "PROTOCOL_VERSION",
    "SERVICE_TYPE",
    "Discovery",
    "DiscoveryEvent",
    "PeerLost",
    "PeerSeen",
    "instance_name",
    "parse_service_info",
    "sanitize_name",
]

log = logging.getLogger(__name__)

SERVICE_TYPE = "_p2pchat._tcp.local."
PROTOCOL_VERSION = 1
#: A DNS label holds 63 bytes; keeping the name within one label-sized chunk keeps TXT small.
MAX_NAME_BYTES = 63
#: Caps that keep a noisy or hostile network from making us use unbounded memory or tasks.
MAX_SERVICES = 1024
MAX_PENDING_RESOLVES = 64
MAX_ADDRESSES = 16
MAX_VERSION = 65535
#: How long one resolve (SRV/TXT/A) may take; zeroconf re-asks within this window.
RESOLVE_TIMEOUT_MS = 3000
#: Bound on goodbye/close so stop() cannot hang on a wedged socket.
STOP_TIMEOUT_S = 3.0

_PEER_ID_RE = re.compile(r"[a-z2-7]{52}")


@dataclass(frozen=True, slots=True)
class PeerSeen:
    """A peer announced itself (again, or with changed details). Only a hint, never proof."""

    peer_id: str
    name: str
    addresses: tuple[tuple[str, int], ...]
    version: int


@dataclass(frozen=True, slots=True)
class PeerLost:
    """A peer's announcement went away (goodbye packet or expiry)."""

    peer_id: str


DiscoveryEvent = PeerSeen | PeerLost


def instance_name(peer_id: str) -> str:
    """The DNS-SD instance name for a peer: derived from the id, because display names collide."""
    return f"{peer_id[:16]}.{SERVICE_TYPE}"


def sanitize_name(name: str) -> str:
    """Drop control characters and cut to ``MAX_NAME_BYTES`` of UTF-8 at a character boundary."""
    cleaned = "".join(ch for ch in name if unicodedata.category(ch) != "Cc").strip()
    # errors="ignore" only ever drops the one multi-byte character that the cut split in two.
    return cleaned.encode("utf-8")[:MAX_NAME_BYTES].decode("utf-8", "ignore")


def _valid_peer_id(peer_id: str) -> bool:
    if not _PEER_ID_RE.fullmatch(peer_id):
        return False
    try:
        raw = base64.b32decode(peer_id.upper() + "====")
    except (binascii.Error, ValueError):
        return False
    return len(raw) == 32


def _txt_properties(peer_id: str, name: str, version: int) -> dict[str, str]:
    return {"id": peer_id, "name": name, "v": str(version)}


def _decode_text(value: bytes | None, *, max_bytes: int) -> str | None:
    if value is None or len(value) > max_bytes:
        return None
    try:
        return value.decode("utf-8")
    except UnicodeDecodeError:
        return None


def parse_service_info(info: ServiceInfo) -> PeerSeen | None:
    """Validate a resolved DNS-SD record and turn it into a ``PeerSeen``, or ``None`` if bad.

    Rejected: missing/garbled TXT keys, an id that is not a 52-char base32 Ed25519 key or does
    not match the instance name, non-UTF-8 or control characters in the name, ports outside
    1..65535, no usable or too many addresses.
    """
    props = info.properties
    peer_id = _decode_text(props.get(b"id"), max_bytes=52)
    if peer_id is None or not _valid_peer_id(peer_id):
        log.debug("ignoring %s: bad or missing id in TXT", info.name)
        return None
    # Binding the instance name to the id keeps one record from posing as several peers.
    if info.name.lower() != instance_name(peer_id).lower():
        log.debug("ignoring %s: instance name does not match id %s", info.name, peer_id)
        return None
    name = _decode_text(props.get(b"name"), max_bytes=MAX_NAME_BYTES)
    if name is None or not name.strip() or sanitize_name(name) != name:
        log.debug("ignoring %s: bad or missing name in TXT", info.name)
        return None
    raw_version = _decode_text(props.get(b"v"), max_bytes=5)
    if raw_version is None or not raw_version.isascii() or not raw_version.isdigit():
        log.debug("ignoring %s: bad or missing version in TXT", info.name)
        return None
    version = int(raw_version)
    if not 1 <= version <= MAX_VERSION:
        log.debug("ignoring %s: version %d out of range", info.name, version)
        return None
    port = info.port
    if port is None or not 1 <= port <= 65535:
        log.debug("ignoring %s: absurd port %r", info.name, port)
        return None
    v4 = info.ip_addresses_by_version(IPVersion.V4Only)
    v6 = info.ip_addresses_by_version(IPVersion.V6Only)
    if len(v4) + len(v6) > MAX_ADDRESSES:
        log.debug("ignoring %s: %d addresses is too many", info.name, len(v4) + len(v6))
        return None
    hosts: list[str] = []
    for addr in (*v4, *v6):
        # Link-local IPv6 needs a scope (interface) to be dialled, which we do not track yet.
        if addr.is_link_local or addr.is_multicast or addr.is_unspecified:
            continue
        host = str(ipaddress.ip_address(addr.packed))
        if host not in hosts:
            hosts.append(host)
    if not hosts:
        log.debug("ignoring %s: no usable address", info.name)
        return None
    return PeerSeen(
        peer_id=peer_id,
        name=name,
        addresses=tuple((h, port) for h in hosts),
        version=version,
    )


class Discovery:
    """Announce this node over mDNS and report other nodes as ``PeerSeen``/``PeerLost`` events.

    ``on_event`` is called in the event loop; an exception from it is logged, not propagated.
    ``interfaces`` are IP addresses or interface names (``None`` = all IPv4 interfaces).
    ``announce=False`` browses without registering, so this node stays invisible.
    """

    def __init__(
        self,
        *,
        peer_id: str,
        name: str,
        port: int,
        announce: bool = True,
        interfaces: Sequence[str] | None = None,
        on_event: Callable[[PeerSeen | PeerLost], None],
        version: int = PROTOCOL_VERSION,
    ) -> None:
        if not _valid_peer_id(peer_id):
            raise ValueError(f"peer id must be 52 chars of lowercase base32, got {peer_id!r}")
        if not 1 <= port <= 65535:
            raise ValueError(f"port must be in 1..65535, got {port}")
        if not 1 <= version <= MAX_VERSION:
            raise ValueError(f"version must be in 1..{MAX_VERSION}, got {version}")
        self._peer_id = peer_id
        self._name = self._checked_name(name)
        self._port = port
        self._version = version
        self._announce = announce
        # Resolve now so a bad --interface fails at construction with a clear message.
        self._addresses: list[str] | None = (
            resolve_interfaces(interfaces) if interfaces is not None else None
        )
        self._on_event = on_event
        self._aiozc: AsyncZeroconf | None = None
        self._browser: AsyncServiceBrowser | None = None
        self._info: ServiceInfo | None = None
        self._seen: dict[str, PeerSeen] = {}
        self._resolving: dict[str, asyncio.Task[None]] = {}
        self._background: set[asyncio.Future[Any]] = set()
        self._started = False
        self._stopped = False

    @staticmethod
    def _checked_name(name: str) -> str:
        cleaned = sanitize_name(name)
        if not cleaned:
            raise ValueError("display name is empty once control characters are removed")
        return cleaned

    @property
    def name(self) -> str:
        """The display name as announced (sanitised and truncated)."""
        return self._name

    def _service_info(self) -> ServiceInfo:
        addresses = self._addresses
        if addresses is None:
            addresses = [a for i in list_interfaces() if not i.is_loopback for a in i.ipv4]
            # With no LAN at all, still be reachable from other profiles on this machine.
            addresses = addresses or ["127.0.0.1"]
        return ServiceInfo(
            SERVICE_TYPE,
            instance_name(self._peer_id),
            port=self._port,
            properties=_txt_properties(self._peer_id, self._name, self._version),
            server=f"p2pchat-{self._peer_id[:16]}.local.",
            parsed_addresses=[a for a in addresses if "%" not in a],
        )

    async def start(self) -> None:
        """Open the mDNS sockets, start browsing, then register (probing takes about 1 s)."""
        if self._started:
            raise RuntimeError("Discovery.start() called twice")
        self._started = True
        try:
            self._aiozc = AsyncZeroconf(
                interfaces=self._addresses if self._addresses is not None else _all_interfaces()
            )
            # Browse first so discovery of others overlaps with our own probing.
            self._browser = AsyncServiceBrowser(
                self._aiozc.zeroconf, SERVICE_TYPE, handlers=[self._on_state_change]
            )
            if self._announce:
                self._info = self._service_info()
                announced = await self._aiozc.async_register_service(self._info)
                # The returned awaitable sends the remaining announcements over ~2 s; keep it
                # running in the background rather than delaying start().
                self._keep(asyncio.ensure_future(announced))
        except BaseException:
            # e.g. a name conflict (same profile running twice) or no usable socket: do not
            # leave sockets and browser tasks behind.
            await self.stop()
            raise

    async def set_name(self, name: str) -> None:
        """Change the display name and re-announce it so others get a new ``PeerSeen``."""
        self._name = self._checked_name(name)
        if self._aiozc is None or self._info is None or self._stopped:
            return
        self._info = self._service_info()
        updated = await self._aiozc.async_update_service(self._info)
        self._keep(asyncio.ensure_future(updated))

    async def stop(self) -> None:
        """Cancel browsing, send goodbyes, close the sockets. Idempotent and time-bounded."""
        if self._stopped:
            return
        self._stopped = True
        aiozc, browser = self._aiozc, self._browser
        self._browser = None
        if browser is not None:
            with contextlib.suppress(Exception):
                await browser.async_cancel()
        tasks = [*self._resolving.values(), *self._background]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._resolving.clear()
        self._background.clear()
        if aiozc is None:
            return
        try:
            async with asyncio.timeout(STOP_TIMEOUT_S):
                if self._info is not None:
                    await aiozc.async_unregister_all_services()
        except Exception:
            log.debug("unregistering timed out or failed", exc_info=True)
        try:
            async with asyncio.timeout(STOP_TIMEOUT_S):
                await aiozc.async_close()
        except Exception:
            log.debug("closing zeroconf timed out or failed", exc_info=True)
        self._seen.clear()

    def _keep(self, task: asyncio.Future[Any]) -> None:
        # asyncio only keeps weak references to tasks; hold them until they finish.
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    def _emit(self, event: PeerSeen | PeerLost) -> None:
        try:
            self._on_event(event)
        except Exception:
            log.exception("discovery event handler failed for %r", event)

    def _on_state_change(
        self,
        zeroconf: Zeroconf,
        service_type: str,
        name: str,
        state_change: ServiceStateChange,
    ) -> None:
        # Parameter names are fixed: zeroconf passes them as keyword arguments.
        if self._stopped:
            return
        key = name.lower()
        try:
            if state_change is ServiceStateChange.Removed:
                pending = self._resolving.pop(key, None)
                if pending is not None:
                    pending.cancel()
                lost = self._seen.pop(key, None)
                if lost is not None:
                    self._emit(PeerLost(lost.peer_id))
                return
            if key not in self._seen and len(self._seen) >= MAX_SERVICES:
                log.debug("ignoring %s: already tracking %d services", name, MAX_SERVICES)
                return
            pending = self._resolving.pop(key, None)
            if pending is not None:
                # A newer update arrived mid-resolve; start over so we report the latest TXT.
                pending.cancel()
            elif len(self._resolving) >= MAX_PENDING_RESOLVES:
                log.debug("ignoring %s: %d resolves already pending", name, MAX_PENDING_RESOLVES)
                return
            task = asyncio.get_running_loop().create_task(
                self._resolve(zeroconf, service_type, name, key)
            )
            self._resolving[key] = task
        except Exception:
            log.exception("error handling %s %s", state_change, name)

    async def _resolve(self, zc: Zeroconf, service_type: str, name: str, key: str) -> None:
        try:
            info = AsyncServiceInfo(service_type, name)
            if not await info.async_request(zc, RESOLVE_TIMEOUT_MS):
                log.debug("could not resolve %s in time", name)
                return
            event = parse_service_info(info)
            if event is None:
                # A record we accepted has turned bad (e.g. more address records arrived in a
                # later packet, past MAX_ADDRESSES): withdraw it rather than keep a stale hint.
                withdrawn = self._seen.pop(key, None)
                if withdrawn is not None and not self._stopped:
                    self._emit(PeerLost(withdrawn.peer_id))
                return
            if event.peer_id == self._peer_id or self._stopped:
                return
            if self._seen.get(key) == event:
                return  # address refreshes that change nothing are not news
            self._seen[key] = event
            self._emit(event)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.debug("error resolving %s", name, exc_info=True)
        finally:
            if self._resolving.get(key) is asyncio.current_task():
                del self._resolving[key]


def _all_interfaces() -> list[str]:
    # zeroconf's InterfaceChoice.All would do, but listing the IPv4 addresses ourselves keeps
    # the announced addresses and the bound sockets the same set.
    return [a for i in list_interfaces() for a in i.ipv4] or ["127.0.0.1"]
