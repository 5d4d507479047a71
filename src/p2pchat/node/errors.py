"""The node's error type: a request it cannot carry out, explained for people."""

from __future__ import annotations


class NodeError(Exception):
    """A request the node cannot carry out; the message is meant for people."""
