"""Node events as Textual messages, so they travel the app's message queue.

The node's stream is read by one worker; each event is posted to the app as a
:class:`NodeEvent`. Typing indicators can arrive in bursts, so a newer one replaces a
queued older one for the same person instead of piling up behind it; file transfer
progress (many events a second) does the same per transfer.
"""

from __future__ import annotations

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


class NodeStarted(Message):
    """The node is up (or was already up): screens may load data now."""


class NodeFailed(Message):
    """The node could not start; ``reason`` is meant for people."""

    def __init__(self, reason: str) -> None:
        super().__init__()
        self.reason = reason
