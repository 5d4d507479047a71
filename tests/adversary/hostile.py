"""A scripted hostile peer: a real node that can send any frame or envelope, signed.

Attacks in this folder use it so that every one speaks the real protocol over real
TCP on loopback, with valid signatures: what a hostile stranger, contact or group
member could really send. ``raw_connection`` opens a bare TCP socket for attacks below
the Noise layer (silent connections, junk bytes).
"""

from __future__ import annotations

import asyncio
import dataclasses
from typing import Any

from p2pchat.node import Node
from p2pchat.node.envelopes import direct_room_id, new_message_id, sign_envelope
from p2pchat.node.rooms import group_envelope_id
from p2pchat.store import now_ms
from p2pchat.wire import Envelope, MessageFrame
from tests.nodes import connected_pair, make_node


class Hostile:
    """Wraps a started node; builds and sends envelopes with any field values."""

    def __init__(self, node: Node) -> None:
        self.node = node
        self._seq: dict[bytes, int] = {}

    @property
    def me(self) -> bytes:
        return self.node.me

    def envelope(self, room: bytes, **fields: Any) -> Envelope:
        """A signed envelope in ``room``; any field may be overridden (``seq`` defaults to
        the next one of ours in that room, ``ts`` to now)."""
        seq = fields.pop("seq", None)
        if seq is None:
            seq = self._seq.get(room, 0) + 1
        self._seq[room] = max(self._seq.get(room, 0), seq)
        base: dict[str, Any] = {
            "room": room,
            "id": new_message_id(),
            "author": self.me,
            "seq": seq,
            "lamport": seq,
            "ts": now_ms(),
            "kind": "text",
            "body": b"",
        }
        if fields.get("deps") is not None and "id" not in fields:
            # Group envelopes (protocol 2) have ids bound to room, author and seq.
            base["id"] = group_envelope_id(room, base["author"], seq)
        base.update(fields)
        unsigned = Envelope.unsigned(**base)
        return sign_envelope(self.node.identity, unsigned)

    def direct(self, to: bytes, **fields: Any) -> Envelope:
        """A signed envelope in our one-to-one room with ``to``."""
        return self.envelope(direct_room_id(self.me, to), **fields)

    def send(self, to: bytes, *frames: object) -> None:
        """Write frames to ``to`` over our live link (raises if there is none)."""
        for frame in frames:
            if not self.node.links.write(to, frame):  # type: ignore[arg-type]
                raise ConnectionError("no live link to the target")

    def send_envelopes(self, to: bytes, *envs: Envelope) -> None:
        self.send(to, *(MessageFrame(env=e) for e in envs))

    @staticmethod
    def resigned(identity_node: Node, env: Envelope, **changes: Any) -> Envelope:
        """``env`` with fields changed and re-signed by ``identity_node`` (its author)."""
        unsigned = dataclasses.replace(env, sig=b"", **changes)
        return sign_envelope(identity_node.identity, unsigned)


async def hostile_peer(name: str, target: Node, **overrides: object) -> Hostile:
    """Start a node called ``name`` and connect it to ``target`` (a stranger to it)."""
    node = make_node(name, **overrides)
    await node.start()
    await connected_pair(node, target)
    return Hostile(node)


async def raw_connection(port: int, host: str = "127.0.0.1") -> tuple[Any, Any]:
    """A bare TCP connection (no handshake): for silent-connection and junk-byte attacks."""
    return await asyncio.open_connection(host, port)
