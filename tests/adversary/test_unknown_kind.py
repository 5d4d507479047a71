"""Envelopes of a kind this version does not know (a newer p2pchat's "poll", or a peer's
invention): acknowledged and kept, never shown but as a placeholder.

Dropping them without a receipt (the old behaviour) left them in the sender's outbox,
resent on every connection forever. Showing their body would hand a peer's arbitrary
bytes to the screen under a kind nobody checked. docs/protocol.md, "Envelope kinds".
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from p2pchat.control.serialize import message_json
from p2pchat.node import Node
from p2pchat.node.events import MessageAdded, ReceiptChanged
from p2pchat.store import MessageStatus
from tests.adversary.hostile import Hostile, hostile_peer
from tests.nodes import make_node, wait_for

PLACEHOLDER = "(a message of a kind this p2pchat cannot show yet: poll)"
#: What a poll's body might hold; none of it may reach a screen.
POLL_BODY = b"\x1b[2J\x07[bold]Which day?[/] \xff\xfe not even UTF-8"


@pytest.fixture
async def pair() -> AsyncIterator[tuple[Node, Hostile]]:
    target = make_node("target")
    await target.start()
    hostile = await hostile_peer("poller", target)
    await target.accept(hostile.me)  # a contact: its messages are acknowledged
    await hostile.node.accept(target.me)
    try:
        yield target, hostile
    finally:
        await hostile.node.stop()
        await target.stop()


async def test_an_unknown_kind_is_acknowledged_so_the_senders_outbox_empties(
    pair: tuple[Node, Hostile],
) -> None:
    target, hostile = pair
    sender = hostile.node.subscribe()
    arrived = target.subscribe()
    # The sender's own node writes it, through its outbox, like a newer p2pchat would.
    poll = await hostile.node._send_envelope(target.me, "poll", POLL_BODY, None)
    await wait_for(
        sender,
        lambda e: (
            isinstance(e, ReceiptChanged)
            and poll.id in e.message_ids
            and e.status >= MessageStatus.DELIVERED
        ),
    )
    stored = await hostile.node.get_message(poll.id)
    assert stored is not None
    assert stored.status >= MessageStatus.DELIVERED
    assert await hostile.node._read(lambda s: s.pending_for(target.me)) == []

    # Kept at the receiver, body intact (for a later version to show) ...
    event = await wait_for(arrived, lambda e: isinstance(e, MessageAdded))
    assert isinstance(event, MessageAdded)
    assert event.message.id == poll.id
    kept = await target.get_message(poll.id)
    assert kept is not None
    assert kept.kind == "poll"
    assert kept.body == POLL_BODY
    # ... and shown only as the placeholder, in history, the UI's text and scripts' JSON.
    assert target.display_text(kept) == PLACEHOLDER
    history = await target.history(target.direct_room(hostile.me))
    assert [target.display_text(m) for m in history] == [PLACEHOLDER]
    assert message_json(target, kept)["text"] == PLACEHOLDER


async def test_an_unknown_kind_with_a_hostile_name_is_shown_without_it(
    pair: tuple[Node, Hostile],
) -> None:
    target, hostile = pair
    arrived = target.subscribe()
    hostile.send_envelopes(
        target.me, hostile.direct(target.me, kind="\x1b[31mp\u202eoll", body=b"x")
    )
    event = await wait_for(arrived, lambda e: isinstance(e, MessageAdded))
    assert isinstance(event, MessageAdded)
    assert target.display_text(event.message) == (
        "(a message of a kind this p2pchat cannot show yet: ?)"
    )


async def test_a_room_change_in_a_direct_room_is_still_refused(
    pair: tuple[Node, Hostile],
) -> None:
    """Known kinds keep their rules: ``system`` belongs to group rooms only."""
    target, hostile = pair
    arrived = target.subscribe()
    bad = hostile.direct(target.me, kind="system", body=b"\x80")
    good = hostile.direct(target.me, kind="text", body=b"after")
    hostile.send_envelopes(target.me, bad, good)
    event = await wait_for(arrived, lambda e: isinstance(e, MessageAdded))
    assert isinstance(event, MessageAdded)
    assert event.message.id == good.id
    assert await target.get_message(bad.id) is None
