"""Direct chats, inbound: admitting, storing and acknowledging a peer's envelopes.

A one-to-one room's rules: the author must be the connected peer; a stranger's first
messages become a contact request (rate-limited, bounded, never acknowledged); an
accepted contact's are stored and acknowledged as delivered once durable. Receipts from
a contact raise the status of our own messages. Group rooms have their own rules
(``groups``); this module never sees them.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from typing import TYPE_CHECKING

from p2pchat.identity import short_id
from p2pchat.node.envelopes import (
    KIND_FILE,
    KIND_REACTION,
    apply_reaction,
    decode_reaction,
    direct_room_id,
    envelope_to_row,
    held_intact,
)
from p2pchat.node.events import ContactRequest, MessageAdded, ReactionChanged, ReceiptChanged
from p2pchat.store import Message, MessageStatus, Store, now_ms
from p2pchat.wire import RECEIPT_DELIVERED, RECEIPT_READ, Receipt

if TYPE_CHECKING:
    from p2pchat.node.service import Node, _Inbound

log = logging.getLogger(__name__)

# What strangers can make us store before the person accepts anyone: at most this many
# open requests, each message of a request at most this large (100 messages each).
MAX_PENDING_REQUESTS = 100
MAX_REQUEST_BODY = 4096
#: An inbound batch of at most this many messages is a quick write (see Node._write).
QUICK_INGEST = 8


class DirectInbox:
    """Inbound envelopes and receipts of one-to-one rooms, for one node."""

    def __init__(self, node: Node) -> None:
        self.node = node

    async def on_receipt(self, peer: bytes, frame: Receipt) -> None:
        node = self.node
        status = MessageStatus.READ if frame.st == RECEIPT_READ else MessageStatus.DELIVERED
        room = frame.room
        if room != node.direct_room(peer) or node._states.get(peer) != "contact":
            return  # only contacts can have received our direct messages

        def work(store: Store) -> list[bytes]:
            mine = [
                m.id
                for m in store.get_messages(frame.ids)
                if m.author == node.me and m.room == room
            ]
            store.record_receipt(mine, peer, status, now_ms())
            store.remove_outbox_for_messages(peer, frame.ids)
            return store.set_status(mine, status)

        changed = await node._write(work, quick=True)
        if changed:
            node._emit(ReceiptChanged(room, tuple(changed), peer, status))

    def admit(self, item: _Inbound, counts: dict[bytes, int]) -> str | None:
        """Decide what to do with an inbound direct envelope; a reason to drop it, or None."""
        node = self.node
        env = item.env
        if env.author == node.me and node._states.get(item.peer) == "contact":
            # Our own message coming back from the other side (direct_sync): we lost it.
            return node.body_problem(env)
        if env.author != item.peer:
            return "relayed direct message"
        problem = node.body_problem(env) or node.lamport_problem(env)
        if problem is not None:
            return problem
        state = node._states.get(item.peer, "unknown")
        if state in ("unknown", "request") and len(env.body) > MAX_REQUEST_BODY:
            return "message too large for a contact request"
        if state == "unknown":
            pending = sum(1 for st in node._states.values() if st == "request")
            if pending >= MAX_PENDING_REQUESTS or not node._request_bucket.allow():
                return "too many contact requests"
            node._states[item.peer] = "request"
        if node._states.get(item.peer) == "request":
            if counts.get(item.peer, 0) >= node.config.max_messages_per_request:
                return "contact request holds too many messages"
            counts[item.peer] = counts.get(item.peer, 0) + 1
        return None

    async def ingest(self, batch: list[_Inbound]) -> None:
        node = self.node
        now = now_ms()
        authentic = await node.authentic(batch)
        if len(authentic) != len(batch):
            log.warning("dropped %d messages with bad signatures", len(batch) - len(authentic))
        # How many messages each not-yet-accepted sender already has waiting with us.
        strangers = {i.peer for i in authentic if node._states.get(i.peer, "unknown") != "contact"}
        counts: dict[bytes, int] = {}
        if strangers:
            counts = await node._read(
                lambda s: {p: s.count_by_author(direct_room_id(node.me, p), p) for p in strangers}
            )
        accepted: list[_Inbound] = []
        for item in authentic:
            reason = self.admit(item, counts)
            if reason is None:
                accepted.append(item)
            else:
                log.info("dropped message from %s: %s", short_id(item.peer), reason)
        if not accepted:
            return

        def work(store: Store) -> tuple[list[Message], list[bytes], set[bytes]]:
            promoted = []
            for peer in {i.peer for i in accepted}:
                if node._states.get(peer) != "contact":  # contacts skip a query
                    existing = store.get_peer(peer)
                    if existing is None or existing.state == "unknown":
                        node._remember(store, peer, "request")
                        promoted.append(peer)
                node._ensure_direct(store, direct_room_id(node.me, peer), peer, now)
            rows = [envelope_to_row(i.env, now, MessageStatus.DELIVERED) for i in accepted]
            results = store.insert_messages(rows)
            messages = [m for m in results if m is not None]
            for m in messages:
                if node._states.get(m.author) == "contact":  # strangers never move our clock
                    node._lamport = max(node._lamport, m.lamport)
                if m.kind == KIND_REACTION:
                    apply_reaction(store, m)
            return messages, promoted, held_intact(store, rows, results)

        stored, promoted, held = await node._write(work, quick=len(accepted) <= QUICK_INGEST)
        for peer in promoted:
            node._states[peer] = "request"
            node._emit(ContactRequest(peer, node._names.get(peer, short_id(peer))))
        for message in stored:
            if message.kind == KIND_REACTION:
                target, _, _ = decode_reaction(message.body)
                node._emit(ReactionChanged(message.room, target))
            else:
                node._emit(MessageAdded(message, incoming=message.author != node.me))
            if message.kind == KIND_FILE and message.author != node.me:
                await node.transfers.on_file_message(message, incoming=True)
        # Acknowledge everything we hold, duplicates too: their receipt may have been lost.
        acks: dict[bytes, list[bytes]] = defaultdict(list)
        for item in accepted:
            if item.env.author == node.me:
                continue  # our own message given back: nothing to acknowledge
            if node._states.get(item.peer) == "contact" and item.env.id in held:
                acks[item.peer].append(item.env.id)
        for peer, ids in acks.items():
            # No flush here: one peer that stops reading must not stall everyone's inbox.
            await node._send_receipts(peer, node.direct_room(peer), ids, RECEIPT_DELIVERED)
