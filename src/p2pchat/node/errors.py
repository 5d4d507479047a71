"""The node's error type: a request it cannot carry out, explained for people."""

from __future__ import annotations

from p2pchat.store import Message


class NodeError(Exception):
    """A request the node cannot carry out; the message is meant for people."""


class AlreadySent(Exception):  # noqa: N818 (a signal, not an error)
    """A send whose client id already wrote a message: ``message`` is that one."""

    def __init__(self, message: Message) -> None:
        super().__init__("already sent")
        self.message = message
