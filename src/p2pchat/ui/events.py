"""Node events as Textual messages, so they travel the app's message queue.

The node's stream is read by one worker. Events that come while the app is busy wait in
one list, and a single :class:`NodeEvents` in the app's queue stands for all of them: a
burst of a thousand messages is one turn of the queue (not a thousand, each ahead of the
person's next key press). Typing indicators can arrive in bursts, so a newer one replaces
an older one for the same person instead of piling up behind it; file transfer progress
(many events a second) does the same per transfer (:func:`coalesce`, and
:meth:`NodeEvent.can_replace` for single events posted on their own).
"""

from __future__ import annotations

from collections.abc import Hashable

from textual.message import Message

from p2pchat.node import Event, TransferProgress, TypingChanged


class NodeEvent(Message):
    """One event from the node (see ``p2pchat.node.events``)."""

    def __init__(self, event: Event) -> None:
        super().__init__()
        self.event = event

    def can_replace(self, message: Message) -> bool:
        """A queued typing or progress event of the same kind and subject is stale now."""
        if not isinstance(message, NodeEvent):
            return False
        new, old = self.event, message.event
        if isinstance(new, TransferProgress) and isinstance(old, TransferProgress):
            return new.message_id == old.message_id
        return (
            isinstance(new, TypingChanged)
            and isinstance(old, TypingChanged)
            and (new.room, new.peer_id) == (old.room, old.peer_id)
        )


class NodeEvents(Message):
    """Node events are waiting in the app's list (one such message stands for them all)."""


def _stale_key(event: Event) -> Hashable | None:
    """What a newer event of this kind replaces an older one by (None: never replaced)."""
    if isinstance(event, TransferProgress):
        return ("progress", event.message_id)
    if isinstance(event, TypingChanged):
        return ("typing", event.room, event.peer_id)
    return None


def coalesce(events: list[Event]) -> list[Event]:
    """``events`` in order, without typing and progress events a later one made stale."""
    newest: dict[Hashable, int] = {}
    for index, event in enumerate(events):
        key = _stale_key(event)
        if key is not None:
            newest[key] = index
    return [
        event
        for index, event in enumerate(events)
        if (key := _stale_key(event)) is None or newest[key] == index
    ]


class NodeStarted(Message):
    """The node is up (or was already up): screens may load data now."""


class NodeFailed(Message):
    """The node could not start; ``reason`` is meant for people."""

    def __init__(self, reason: str) -> None:
        super().__init__()
        self.reason = reason
