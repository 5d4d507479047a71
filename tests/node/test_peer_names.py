"""Names of peers as people use them: the latest one everywhere, and who a name means.

Issue 13 item 3: a stranger's rename reached the app but not ``peers`` nor ``send NAME``
(and came undone at the next start); and a verified contact "bob" was reported ambiguous
because an offline stranger was also called "bob".
"""

from __future__ import annotations

import pytest

from p2pchat.cli.common import CliError
from p2pchat.cli.session import Session, call
from p2pchat.control.api import ApiError, NodeApi
from p2pchat.node import MessageAdded, Node, PeerLookupError, PeerOffline, PeerUpdated
from p2pchat.ui.widgets.sidebar import load_entries
from tests.nodes import connected_pair, make_node, wait_for


async def start(name: str, display_name: str | None = None) -> Node:
    node = make_node(name)
    if display_name is not None:
        node.profile.set_display_name(display_name)
    await node.start()
    return node


async def befriend(a: Node, b: Node) -> None:
    await connected_pair(a, b)
    await a.accept(b.me)
    await b.accept(a.me)


async def test_a_strangers_new_name_is_used_everywhere_and_kept() -> None:
    alice, bob = await start("alice"), await start("bob")
    try:
        await connected_pair(alice, bob)  # never accepted nor written to: strangers
        events = alice.subscribe()
        await bob.rename("Bob N")
        await wait_for(events, lambda e: isinstance(e, PeerUpdated) and e.name == "Bob N")

        # `peers` (control API and CLI), name lookup (`send "Bob N" hi`), the app's list.
        api = NodeApi(alice)
        listed = {p["short_id"]: p["name"] for p in await api.call("peers")}
        assert listed[bob.peer_id_text[:8]] == "Bob N"
        assert await alice.resolve_peer("Bob N") == bob.me
        _, _, nearby, _ = await load_entries(alice)
        assert [e.name for e in nearby if e.peer_id == bob.me] == ["Bob N"]
        with pytest.raises(PeerLookupError, match="no peer called 'bob'"):
            await alice.resolve_peer("bob")  # the old name is gone

        # Still so after alice restarts (on a new port: bob cannot tell her again),
        # whether she stopped while bob was online...
        await alice.stop()
        alice = await start("alice")
        assert [p.name for p in await alice.list_peers() if p.peer_id == bob.me] == ["Bob N"]
        # ... or bob left first.
        await connected_pair(alice, bob)
        events = alice.subscribe()
        await bob.rename("Bob M")
        await wait_for(events, lambda e: isinstance(e, PeerUpdated) and e.name == "Bob M")
        bob_port = bob.port
        await bob.stop()
        await wait_for(events, lambda e: isinstance(e, PeerOffline) and e.peer_id == bob.me)
        await alice.stop()
        alice = await start("alice")
        assert [p.name for p in await alice.list_peers() if p.peer_id == bob.me] == ["Bob M"]

        # And `send "Bob M" hi` reaches him once he is back.
        bob = make_node("bob", port=bob_port)
        await bob.start()
        await connected_pair(alice, bob)
        got = bob.subscribe()
        await NodeApi(alice).call("send", {"peer": "Bob M", "text": "hi"})
        said = await wait_for(got, lambda e: isinstance(e, MessageAdded))
        assert isinstance(said, MessageAdded)
        assert said.message.body == b"hi"
    finally:
        await alice.stop()
        await bob.stop()


async def test_a_contacts_name_wins_over_an_offline_stranger_of_the_same_name() -> None:
    alice, bob = await start("alice"), await start("bob")
    # Two strangers: one also called "bob", one "Bob" (a case away from the contact).
    twin, capital = await start("twin", "bob"), await start("capital", "Bob")
    try:
        await befriend(alice, bob)
        await alice.set_verified(bob.me)
        for stranger in (twin, capital):
            await connected_pair(stranger, alice)
            await stranger.stop()  # gone, but still known to alice

        api = NodeApi(alice)
        # Exact, case-sensitive match with the (verified) contact: not ambiguous.
        assert await alice.resolve_peer("bob") == bob.me
        got = bob.subscribe()
        await api.call("send", {"peer": "bob", "text": "for the real bob"})
        said = await wait_for(got, lambda e: isinstance(e, MessageAdded))
        assert isinstance(said, MessageAdded)
        assert said.message.body == b"for the real bob"
        # With no exact match, the contact still comes first.
        assert await alice.resolve_peer("BOB") == bob.me
        # A stranger exactly called "Bob" does not capture "Bob" from the contact "bob":
        # the person chooses, by short id, from every candidate.
        with pytest.raises(PeerLookupError) as lookup:
            await alice.resolve_peer("Bob")
        assert {c.peer_id for c in lookup.value.candidates} == {bob.me, twin.me, capital.me}
        assert await alice.resolve_peer(capital.peer_id_text[:8]) == capital.me

        # Blocking "bob" more likely means the stranger: there a shared name is a tie,
        # and the CLI lists who is who.
        session = Session(api, remote=True)
        with pytest.raises(CliError) as failed:
            await call(session, "block", {"peer": "bob"})
        details = "\n".join(failed.value.details)
        assert f"{bob.peer_id_text[:8]}  bob  (verified contact)" in details
        assert f"{twin.peer_id_text[:8]}  bob  (not a contact)" in details
        # Accepting by a shared name is a tie too: never the stranger by name alone.
        with pytest.raises(ApiError, match="matches 3 peers"):
            await api.call("accept", {"peer": "bob"})
        states = {p.peer_id: p.state for p in await alice.list_peers()}
        assert states[bob.me] == "contact"
        assert states[twin.me] == "unknown"
    finally:
        for node in (alice, bob, twin, capital):
            await node.stop()
