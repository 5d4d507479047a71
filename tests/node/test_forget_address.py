"""Address pinning, and forgetting a pinned address (docs/protocol.md, "Addresses").

An address is pinned to the first id that answered there: another id at it is refused
with a warning, and adding the address again does not lift the pin (a stranger who took
a contact's port must not become that contact's conversation partner by accident). The
person lifts it with ``forget`` (control method, ``p2pchat forget``).
"""

from __future__ import annotations

from p2pchat.control.api import NodeApi
from p2pchat.node.events import PeerOffline, PeerOnline, SecurityWarning
from tests.nodes import make_node, wait_for


async def test_a_pinned_address_refuses_a_new_id_until_it_is_forgotten() -> None:
    alice = make_node("alice")
    bob = make_node("bob")
    await alice.start()
    await bob.start()
    port = bob.port
    address = f"127.0.0.1:{port}"
    api = NodeApi(alice)
    events = alice.subscribe()
    mallory = make_node("mallory", port=port)
    try:
        await api.call("add", {"address": address})
        await wait_for(events, lambda e: isinstance(e, PeerOnline) and e.peer_id == bob.me)
        await bob.stop()
        await wait_for(events, lambda e: isinstance(e, PeerOffline) and e.peer_id == bob.me)

        await mallory.start()  # someone else now listens on bob's address
        warning = await wait_for(events, lambda e: isinstance(e, SecurityWarning))
        assert isinstance(warning, SecurityWarning)
        assert warning.peer_id == bob.me  # "announced as bob but proved to be mallory"
        await api.call("add", {"address": address})  # does not lift the pin
        assert alice.links.targets[("127.0.0.1", port)].expected_peer == bob.me
        await wait_for(events, lambda e: isinstance(e, SecurityWarning))
        assert not alice.links.is_online(mallory.me)

        result = await api.call("forget", {"address": address})
        assert result == {"address": address, "forgotten": True}
        assert await alice._read(lambda s: s.addresses_for(bob.me)) == []
        assert await api.call("forget", {"address": address}) == {
            "address": address,
            "forgotten": False,
        }
        await api.call("add", {"address": address})
        await wait_for(events, lambda e: isinstance(e, PeerOnline) and e.peer_id == mallory.me)
    finally:
        events.close()
        await mallory.stop()
        await alice.stop()
