"""How a node is started: ports, peers, discovery options, limits and timers."""

from __future__ import annotations

from dataclasses import dataclass, field

from p2pchat.node.quota import FloodLimits

DEFAULT_BIND = "0.0.0.0"  # noqa: S104 - a LAN chat must be reachable from the LAN


@dataclass(frozen=True)
class NodeConfig:
    """Options shared by ``p2pchat``, ``p2pchat serve`` and tests.

    ``port=0`` picks a free port (announced over mDNS), so several profiles can run
    on one machine. ``discovery=False`` turns mDNS off entirely (tests, or networks
    where multicast is blocked: then only manual and last-known addresses are used).
    """

    port: int = 0
    bind: str = DEFAULT_BIND
    # False: open the store only (the CLI reading history or changing a contact while
    # no node runs); no listener, no dialling, no mDNS.
    network: bool = True
    peers: tuple[tuple[str, int], ...] = ()
    announce: bool = True
    discovery: bool = True
    interfaces: tuple[str, ...] = ()
    # Where received files go from now on (stored as the profile's setting at start);
    # None keeps the setting as it is.
    download_dir: str | None = None
    # Timers (seconds). Tests shorten them; people never need to.
    keepalive_interval: float = 15.0
    dead_after: float = 45.0
    dial_backoff_initial: float = 1.0
    dial_backoff_max: float = 60.0
    handshake_deadline: float = 10.0
    # Tor (node/tor.py). ``tor`` None keeps the profile's remembered choice, True/False
    # changes it. ``tor_control`` uses a running tor ("HOST:PORT" of its control port)
    # instead of starting one; ``tor_torrc`` adds lines to the torrc of the tor we start
    # (tests point it at a private Tor network). A first connection through tor takes
    # seconds, so it has its own deadline; bootstrap and publication are bounded too.
    tor: bool | None = None
    tor_control: str | None = None
    # The tor program to run; None finds it (PATH, then where packages put it).
    tor_binary: str | None = None
    tor_torrc: tuple[str, ...] = ()
    tor_connect_deadline: float = 60.0
    tor_bootstrap_timeout: float = 180.0
    tor_publish_timeout: float = 120.0
    # Group rooms: how often connected members compare heads (anti-entropy).
    sync_interval: float = 30.0
    # Limits on what strangers can make us do.
    max_links: int = 256
    # Open contact requests kept at once (the quietest makes way for a newcomer), and
    # messages kept per request.
    max_open_requests: int = 100
    max_messages_per_request: int = 100
    # What one peer may make us read and store (rate, daily store growth, queue).
    flood: FloodLimits = field(default_factory=FloodLimits)
    extra: dict[str, str] = field(default_factory=dict)
