"""Whose ``purpose`` counts: the initiator's (docs/protocol.md, "Handshake").

The responder writes its hello before it has read the initiator's, so its ``purpose``
says nothing. A responder answering a chat dial with ``purpose: "files"`` (a confused
or hostile peer) used to turn our chat link into a file-serving side channel.
"""

from __future__ import annotations

import dataclasses

from p2pchat.node.events import PeerOnline
from tests.nodes import make_node, wait_for


async def test_a_responder_claiming_files_purpose_still_gets_a_chat_link() -> None:
    alice = make_node("alice")
    mallory = make_node("mallory")
    await alice.start()
    await mallory.start()
    events = alice.subscribe()
    try:
        local = mallory._local_hello()
        mallory.links.listener.update_local(dataclasses.replace(local, purpose="files"))
        alice.links.add_target("127.0.0.1", mallory.port, "manual")
        await wait_for(events, lambda e: isinstance(e, PeerOnline) and e.peer_id == mallory.me)
        assert alice.links.is_online(mallory.me)
    finally:
        events.close()
        await mallory.stop()
        await alice.stop()
