"""Finding peers on the LAN: zeroconf announce/browse, interface selection, and diagnostics.

Discovery produces hints (``PeerSeen``/``PeerLost``) for the node; it must never decide trust
(the Noise handshake does) and never import the node or anything above it.
"""

from p2pchat.discovery.interfaces import InterfaceInfo, list_interfaces, resolve_interfaces
from p2pchat.discovery.mdns import (
    PROTOCOL_VERSION,
    SERVICE_TYPE,
    Discovery,
    DiscoveryEvent,
    PeerLost,
    PeerSeen,
    instance_name,
    sanitize_name,
)

__all__ = [
    "PROTOCOL_VERSION",
    "SERVICE_TYPE",
    "Discovery",
    "DiscoveryEvent",
    "InterfaceInfo",
    "PeerLost",
    "PeerSeen",
    "instance_name",
    "list_interfaces",
    "resolve_interfaces",
    "sanitize_name",
]
