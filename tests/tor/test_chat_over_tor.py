"""Two nodes that never meet on the LAN chat through the private Tor network.

Discovery is off and neither is given the other's address: Alice has only Bob's invite
code. Both LAN listeners must accept no connection at all, so every byte went through
tor (each node's tor reaches the other's onion service; tor connects to the node's own
loopback listener for tor, never to the LAN one).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import replace

import pytest

from p2pchat.node import ContactRequest, MessageAdded, ReceiptChanged, TorStatus
from p2pchat.node.service import Node
from p2pchat.store import MessageStatus
from p2pchat.store.onions import get_onion
from tests.nodes import make_node, wait_for
from tests.tor_network import TorNetwork

# Measured here: bootstrap 2-5 s, publication 1-2 s; generous for a loaded machine.
TOR_READY = 90.0
# A first connection through tor to a fresh onion service (descriptor fetch, circuits).
TOR_LINK = 60.0


def tor_node(name: str, network: TorNetwork) -> Node:
    node = make_node(name, tor=True, tor_torrc=tuple(network.client_torrc()))
    node.config = replace(node.config, tor_bootstrap_timeout=TOR_READY)
    return node


async def ready(node: Node) -> None:
    """Wait until the node's onion service is published."""
    events = node.subscribe()
    try:
        if node.onions.status.state != "ready":
            await wait_for(
                events,
                lambda e: isinstance(e, TorStatus) and e.state in ("ready", "failed"),
                TOR_READY,
            )
    finally:
        events.close()
    assert node.onions.status.state == "ready", node.onions.status


@pytest.fixture
async def pair(tor_network: TorNetwork) -> AsyncIterator[tuple[Node, Node]]:
    alice, bob = tor_node("alice", tor_network), tor_node("bob", tor_network)
    await alice.start()
    await bob.start()
    try:
        yield alice, bob
    finally:
        await alice.stop()
        await bob.stop()


@pytest.mark.timeout(240)
async def test_invite_then_chat_both_ways_with_receipts_over_tor_only(
    pair: tuple[Node, Node], tor_network: TorNetwork
) -> None:
    alice, bob = pair
    a_events, b_events = alice.subscribe(), bob.subscribe()
    await ready(alice)
    await ready(bob)

    assert await alice.onions.add_invite(bob.onions.invite_code()) == bob.me
    sent = await alice.send_text(bob.me, "hello over tor")
    await wait_for(
        b_events, lambda e: isinstance(e, ContactRequest) and e.peer_id == alice.me, TOR_LINK
    )
    assert bob.links.via(alice.me) == "tor"
    assert alice.links.via(bob.me) == "tor"
    await bob.accept(alice.me)
    await wait_for(
        a_events,
        lambda e: (
            isinstance(e, ReceiptChanged)
            and sent.id in e.message_ids
            and e.status >= MessageStatus.DELIVERED
        ),
    )
    answer = await bob.send_text(alice.me, "hello back")
    got = await wait_for(
        a_events,
        lambda e: isinstance(e, MessageAdded) and e.incoming and e.message.id == answer.id,
    )
    assert isinstance(got, MessageAdded)
    await wait_for(
        b_events,
        lambda e: (
            isinstance(e, ReceiptChanged)
            and answer.id in e.message_ids
            and e.status >= MessageStatus.DELIVERED
        ),
    )
    # Each learnt the other's onion address from a signed frame (Alice's invite row
    # is replaced by Bob's signed one).
    at_alice = await alice.db_run(lambda s: get_onion(s, bob.me))
    at_bob = await bob.db_run(lambda s: get_onion(s, alice.me))
    assert alice.onions.runner is not None
    assert bob.onions.runner is not None
    assert at_alice is not None
    assert at_alice.sig is not None
    assert at_alice.addr == bob.onions.runner.onion
    assert at_bob is not None
    assert at_bob.addr == alice.onions.runner.onion
    # Nothing ever reached either LAN listener: the whole conversation went through tor.
    assert alice.links.listener.accepted == 0
    assert bob.links.listener.accepted == 0
