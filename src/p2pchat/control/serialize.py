"""JSON forms of peers, messages and events: one shape for the control socket, the
CLI's ``--json`` output and ``serve``'s event lines, so scripts see the same thing
everywhere. Ids: peer ids as their 52-character text, room and message ids as hex.
"""

from __future__ import annotations

from typing import Any

from p2pchat.identity import encode_peer_id, short_id
from p2pchat.node import Node, PeerInfo
from p2pchat.node.events import (
    ContactRequest,
    Event,
    MessageAdded,
    MessagesChanged,
    MessagesWithdrawn,
    NodeStatus,
    PeerOffline,
    PeerOnline,
    PeerUpdated,
    ReactionChanged,
    ReceiptChanged,
    RequestsHeldBack,
    RoomChanged,
    RoomInvitation,
    SecurityWarning,
    TorStatus,
    TransferProgress,
    TypingChanged,
)
from p2pchat.store import Message, MessageStatus
from p2pchat.timefmt import iso_utc

STATUS_NAMES = {
    MessageStatus.QUEUED: "queued",
    MessageStatus.SENT: "sent",
    MessageStatus.DELIVERED: "delivered",
    MessageStatus.READ: "read",
}

JSONDict = dict[str, Any]


def status_name(status: int) -> str:
    """``queued``/``sent``/``delivered``/``read`` for a stored status number."""
    return STATUS_NAMES.get(MessageStatus(status), str(status))


def iso_time(ms: int | None) -> str | None:
    """An ISO-8601 UTC time for a millisecond timestamp; None for none, and for a time
    outside years 1..9999 (a peer signs its own ``sent_at``; one absurd value must not
    break a history or close every event stream). Never raises."""
    return iso_utc(ms)


def peer_json(peer: PeerInfo) -> JSONDict:
    """A peer for people and scripts."""
    return {
        "id": peer.peer_id_text,
        "short_id": short_id(peer.peer_id),
        "name": peer.name,
        "state": peer.state,
        "verified": peer.verified,
        "online": peer.online,
        "address": peer.address,
        "last_seen": iso_time(peer.last_seen),
    }


def message_json(node: Node, message: Message) -> JSONDict:
    """A stored message, with its author's current name and its status."""
    outgoing = message.author == node.me
    return {
        "id": message.id.hex(),
        "room": message.room.hex(),
        "author": encode_peer_id(message.author),
        "author_name": node.peer_name(message.author),
        "outgoing": outgoing,
        "sent_at": iso_time(message.sent_at),
        "kind": message.kind,
        "text": node.display_text(message),
        "status": status_name(message.status) if outgoing else None,
        "reply_to": message.reply_to.hex() if message.reply_to else None,
        "edited": message.edited,
    }


def event_json(node: Node, event: Event) -> JSONDict:
    """An event as a JSON object with a ``type`` field."""
    if isinstance(event, MessageAdded):
        return {"type": "message", "incoming": event.incoming, **message_json(node, event.message)}
    if isinstance(event, ReceiptChanged):
        return {
            "type": "receipt",
            "room": event.room.hex(),
            "ids": [i.hex() for i in event.message_ids],
            "peer": encode_peer_id(event.peer) if event.peer else None,
            "status": status_name(event.status),
        }
    if isinstance(event, ReactionChanged):
        return {"type": "reaction", "room": event.room.hex(), "message": event.message_id.hex()}
    if isinstance(event, PeerOnline):
        return {
            "type": "online",
            "peer": encode_peer_id(event.peer_id),
            "name": node.peer_name(event.peer_id),
            "host": event.host,
        }
    if isinstance(event, PeerOffline):
        return {
            "type": "offline",
            "peer": encode_peer_id(event.peer_id),
            "name": node.peer_name(event.peer_id),
            "reason": event.reason,
        }
    if isinstance(event, PeerUpdated):
        return {
            "type": "peer",
            "peer": encode_peer_id(event.peer_id),
            "name": event.name,
            "state": event.state,
        }
    if isinstance(event, TypingChanged):
        return {
            "type": "typing",
            "room": event.room.hex(),
            "peer": encode_peer_id(event.peer_id),
            "typing": event.typing,
        }
    if isinstance(event, ContactRequest):
        return {"type": "request", "peer": encode_peer_id(event.peer_id), "name": event.name}
    if isinstance(event, RequestsHeldBack):
        return {"type": "held_back", "requests": event.requests, "messages": event.messages}
    if isinstance(event, SecurityWarning):
        return {
            "type": "warning",
            "peer": encode_peer_id(event.peer_id) if event.peer_id else None,
            "text": event.text,
        }
    if isinstance(event, RoomChanged):
        return {"type": "room", "room": event.room.hex()}
    if isinstance(event, MessagesChanged):
        return {
            "type": "changed",
            "room": event.room.hex(),
            "ids": [i.hex() for i in event.message_ids],
        }
    if isinstance(event, MessagesWithdrawn):
        return {
            "type": "withdrawn",
            "room": event.room.hex(),
            "ids": [i.hex() for i in event.message_ids],
        }
    if isinstance(event, RoomInvitation):
        return {
            "type": "invitation",
            "room": event.room.hex(),
            "name": event.name,
            "inviter": encode_peer_id(event.inviter),
            "inviter_name": node.peer_name(event.inviter),
        }
    if isinstance(event, TransferProgress):
        return {
            "type": "transfer",
            "id": event.message_id.hex(),
            "room": event.room.hex(),
            "name": event.name,
            "size": event.size,
            "done": event.done,
            "rate": event.rate,
            "eta": event.eta,
            "state": event.state,
            "detail": event.detail,
            "incoming": event.incoming,
        }
    if isinstance(event, NodeStatus):
        return {
            "type": "status",
            "port": event.port,
            "announcing": event.announcing,
            "discovery": event.discovery,
        }
    if isinstance(event, TorStatus):
        return {
            "type": "tor",
            "state": event.state,
            "percent": event.percent,
            "detail": event.detail,
            "onion": event.onion,
        }
    return {"type": "unknown"}
