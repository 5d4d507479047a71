"""Secure connections between peers: TCP + Noise XX + p2pchat frames.

``connect`` dials a peer, ``Listener`` accepts them; both run the handshake of
``docs/protocol.md`` and hand back a ``Connection`` that sends and receives typed
frames. Everything a peer sends is untrusted: lengths are checked before allocation,
handshakes have a deadline, pending handshakes are capped, and the remote static key
must be certified by the peer id it claims.
"""

from p2pchat.transport.connection import (
    PROLOGUE,
    Connection,
    ConnectionClosedError,
    HandshakeError,
    LocalHello,
    PeerMismatchError,
    RemotePeer,
    TransportError,
    connect,
)
from p2pchat.transport.listener import Listener, ListenerLimits

__all__ = [
    "PROLOGUE",
    "Connection",
    "ConnectionClosedError",
    "HandshakeError",
    "Listener",
    "ListenerLimits",
    "LocalHello",
    "PeerMismatchError",
    "RemotePeer",
    "TransportError",
    "connect",
]
