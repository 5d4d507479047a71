"""What every screen and widget of the app shares: the node, the clock, names.

Widgets reach it through :func:`ctx` rather than importing the App class, which keeps
the import graph one-way (app imports widgets, never the reverse).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from textual.dom import DOMNode

if TYPE_CHECKING:  # the app's first frame is painted before the node's modules load
    from p2pchat.node import Message, Node

# Author colours: picked from the peer id, so a person keeps their colour everywhere.
_COLOURS = ("bright_magenta", "bright_green", "bright_yellow", "orange1", "orchid", "cyan")


@dataclass
class ChatContext:
    """The running node and the few app-wide facts widgets need."""

    node: Node
    now: Callable[[], float] = time.time
    verified: dict[bytes, bool] = field(default_factory=dict)
    states: dict[bytes, str] = field(default_factory=dict)

    @property
    def me(self) -> bytes:
        """Our own peer id."""
        return self.node.me

    def now_ms(self) -> int:
        """The app's clock in milliseconds (frozen in snapshot tests)."""
        return int(self.now() * 1000)

    def name(self, peer: bytes) -> str:
        """What to call ``peer`` (untrusted: show it with ``text.literal``)."""
        return "You" if peer == self.me else self.node.peer_name(peer)

    def text(self, message: Message) -> str:
        """What a message says on screen: its text, or the node's sentence for a file
        offer or a room change (untrusted: show it with ``text.literal``)."""
        return self.node.display_text(message)

    def colour(self, peer: bytes) -> str:
        """The colour of ``peer``'s name in conversations."""
        if peer == self.me:
            return "bold bright_blue"
        return "bold " + _COLOURS[peer[0] % len(_COLOURS)]


def ctx(node: DOMNode) -> ChatContext:
    """The ChatContext of the app ``node`` belongs to."""
    context = getattr(node.app, "ctx", None)
    if not isinstance(context, ChatContext):
        raise RuntimeError("this widget needs the p2pchat app")
    return context
