"""Two nodes that never meet on the LAN chat through the private Tor network.

Discovery is off and neither is given the other's address: Alice has only Bob's invite
code. Both LAN listeners must accept no connection at all, so every byte went through
tor (each node's tor reaches the other's onion service; tor connects to the node's own
loopback listener for tor, never to the LAN one).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

import pytest

from p2pchat.node import ContactRequest, Event, MessageAdded, ReceiptChanged, TorStatus
from p2pchat.node.service import SETTING_DOWNLOAD_DIR, Node
from p2pchat.node.stream import EventStream
from p2pchat.node.tor import onion_key_blob, onion_seed
from p2pchat.store import MessageStatus
from p2pchat.store.onions import get_onion
from tests.node.groups_helpers import form_room
from tests.nodes import make_node, wait_for
from tests.tor_network import TorNetwork
from tests.transfer.helpers import sha256_file, wait_final, write_random

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


@dataclass
class Pair:
    alice: Node
    bob: Node
    #: Alice's events from before she started (her tor's progress from the start).
    alice_from_start: EventStream
    restarted: list[Node] = field(default_factory=list)
    cleanups: list[Callable[[], None]] = field(default_factory=list)


@pytest.fixture
async def pair(tor_network: TorNetwork, tmp_path: Path) -> AsyncIterator[Pair]:
    alice, bob = tor_node("alice", tor_network), tor_node("bob", tor_network)
    restarted: list[Node] = []
    pair = Pair(alice, bob, alice.subscribe(), restarted)
    try:
        await alice.start()
        await bob.start()
        await bob.set_text_setting(SETTING_DOWNLOAD_DIR, str(tmp_path / "downloads"))
        yield pair
    finally:
        for node in (alice, bob, *restarted):
            if node._started:
                await node.stop()
        for cleanup in pair.cleanups:
            cleanup()


@pytest.mark.timeout(300)
async def test_strangers_meet_by_invite_and_everything_works_over_tor_only(
    pair: Pair, tor_network: TorNetwork, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # Everything, stem's TRACE level (5) included, as someone debugging would set it up:
    # stem logs the commands it sends only to a handler on its own logger.
    caplog.set_level(1)
    stem_logger = logging.getLogger("stem")
    stem_logger.addHandler(caplog.handler)
    pair.cleanups.append(lambda: stem_logger.removeHandler(caplog.handler))
    alice, bob, restarted = pair.alice, pair.bob, pair.restarted
    first_bob = bob
    a_events, b_events = alice.subscribe(), bob.subscribe()
    await ready(alice)
    await ready(bob)
    # What the app shows while it waits: starting, bootstrap percentages, publishing.
    states: list[tuple[str, int]] = []

    def note(event: Event) -> bool:
        if isinstance(event, TorStatus):
            states.append((event.state, event.percent))
        return isinstance(event, TorStatus) and event.state == "ready"

    await wait_for(pair.alice_from_start, note, 5)
    assert states[0] == ("starting", 0)
    assert any(state == "bootstrapping" and 0 < pct < 100 for state, pct in states), states
    assert ("publishing", 100) in states
    assert states[-1] == ("ready", 100)

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

    # `p2pchat doctor`'s check: each reaches its own onion service through tor.
    assert await alice.onions.round_trip() < TOR_LINK

    # A small file arrives, verified (pulled over a second connection through tor).
    src = tmp_path / "notes.bin"
    digest = write_random(src, 300_000)
    offered = await alice.transfers.send_file(bob.me, src)
    info = await wait_final(bob, b_events, offered.id, within=TOR_LINK)
    assert info.state == "done", info
    assert info.path is not None
    assert sha256_file(Path(info.path)) == digest

    # A group room forms and syncs.
    room = await form_room(alice, [bob])
    said = await alice.send_message(room, "to the room")
    await wait_for(
        b_events, lambda e: isinstance(e, MessageAdded) and e.message.id == said.id, TOR_LINK
    )

    # Bob leaves; a message waits in Alice's outbox; Bob comes back (tor remembered
    # for his profile: no flag this time) and gets it, through tor again.
    await bob.stop()
    queued = await alice.send_text(bob.me, "while you were away")
    bob = make_node("bob", tor_torrc=tuple(tor_network.client_torrc()))
    restarted.append(bob)
    b_events = bob.subscribe()
    await bob.start()
    await ready(bob)
    await wait_for(
        b_events,
        lambda e: isinstance(e, MessageAdded) and e.message.id == queued.id,
        TOR_LINK,
    )
    assert bob.links.via(alice.me) == "tor"

    # Alice's tor crashes: the app says so, starts it again, and the chat goes on.
    runner = alice.onions.runner
    assert runner is not None
    assert runner._process is not None
    a_events = alice.subscribe()
    runner._process.kill()
    await wait_for(a_events, lambda e: isinstance(e, TorStatus) and e.state == "failed")
    await wait_for(a_events, lambda e: isinstance(e, TorStatus) and e.state == "ready", TOR_READY)
    after = await bob.send_text(alice.me, "still there?")
    await wait_for(
        a_events, lambda e: isinstance(e, MessageAdded) and e.message.id == after.id, TOR_LINK
    )

    # Nothing ever reached a LAN listener: every byte went through tor.
    assert alice.links.listener.accepted == 0
    assert bob.links.listener.accepted == 0
    assert first_bob.links.listener.accepted == 0

    # The onion service's private key was handed to tor, and never to a log (stem logs
    # every command it sends at its TRACE level, ADD_ONION and its key included).
    for node in (alice, bob):
        blob = onion_key_blob(onion_seed(node.identity))
        assert blob not in caplog.text
        assert blob[:40] not in caplog.text
    assert "ADD_ONION" not in caplog.text
