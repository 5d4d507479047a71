"""A contact reachable on the LAN is dialled there first; its onion address only after.

Tor links are slower (seconds to set up, ~20 ms a round trip even on one machine), so
an onion address waits while a LAN address of the same peer is being tried.
"""

from __future__ import annotations

import time

from p2pchat.identity import Identity
from p2pchat.node.config import NodeConfig
from p2pchat.node.links import LinkManager
from p2pchat.transport import LocalHello


async def _noop(*_args: object) -> None:
    return None


def manager() -> LinkManager:
    me = Identity.generate()
    return LinkManager(
        me.peer_id,
        LocalHello(identity=me, name="me"),
        NodeConfig(),
        on_frame=_noop,
        on_up=_noop,
        on_down=_noop,
        on_mismatch=_noop,
    )


def test_onion_waits_while_a_lan_address_of_the_peer_is_tried() -> None:
    links = manager()
    peer, other = Identity.generate().peer_id, Identity.generate().peer_id
    onion = "x" * 56 + ".onion"
    links.add_target("192.0.2.7", 7100, "last", peer)
    links.add_target(onion, 7373, "onion", peer)
    links.add_target("y" * 56 + ".onion", 7373, "onion", other)  # no LAN address known
    now = time.monotonic()
    due = {(t.host, t.expected_peer) for t in links._due(now)}
    assert due == {("192.0.2.7", peer), ("y" * 56 + ".onion", other)}
    # The LAN dial failed and backs off: now the onion address is tried.
    links.targets[("192.0.2.7", 7100)].next_at = now + 30
    assert {t.host for t in links._due(now)} == {onion, "y" * 56 + ".onion"}
