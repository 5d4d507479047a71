"""Direct chats, inbound: admitting, storing and acknowledging a peer's envelopes.

A one-to-one room's rules: the author must be the connected peer; a stranger's first
messages become a contact request (bounded: the newest request always gets in, the
quietest makes way, and whatever is not kept is counted for the person to see; never
acknowledged); an accepted contact's are stored and acknowledged as delivered once
durable. Receipts from a contact raise the status of our own messages. Group rooms have
their own rules (``groups``); this module never sees them.
"""

from __future__ import annotations

import functools
import logging
from collections import defaultdict
from typing import TYPE_CHECKING

from p2pchat.identity import short_id
from p2pchat.node.edits import CHANGE_KINDS
from p2pchat.node.envelopes import (
    KIND_FILE,
    KIND_REACTION,
    apply_reaction,
    decode_reaction,
    direct_room_id,
    envelope_to_row,
    held_intact,
)
from p2pchat.node.events import (
    ContactRequest,
    MessageAdded,
    PeerUpdated,
    ReactionChanged,
    ReceiptChanged,
    RequestsHeldBack,
)
from p2pchat.node.requests import SETTING_HELD_MESSAGES, SETTING_HELD_REQUESTS, HeldBack
from p2pchat.node.sticker_body import KIND_STICKER
from p2pchat.store import Message, MessageStatus, NewMessage, Store, now_ms
from p2pchat.wire import RECEIPT_DELIVERED, RECEIPT_READ, Receipt

if TYPE_CHECKING:
    from p2pchat.node.facade import NodeFacade
    from p2pchat.node.inbox import Inbound

log = logging.getLogger(__name__)

# What strangers can make us store before the person accepts anyone: each message of a
# request at most this large (a bounded number of requests, ``requests.RequestBook``, and
# of messages per request, ``NodeConfig.max_messages_per_request``).
MAX_REQUEST_BODY = 4096
#: An inbound batch of at most this many messages is a quick write (see Node._write).
QUICK_INGEST = 8


class DirectInbox:
    """Inbound envelopes and receipts of one-to-one rooms, for one node."""

    def __init__(self, node: NodeFacade) -> None:
        self.node = node

    async def on_receipt(self, peer: bytes, frame: Receipt) -> None:
        node = self.node
        status = MessageStatus.READ if frame.st == RECEIPT_READ else MessageStatus.DELIVERED
        room = frame.room
        if room != node.direct_room(peer) or not node.core.contacts.is_contact(peer):
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

        # A delivered receipt's record is what the peer says again if it is lost (the
        # message stays in the outbox until one is recorded), so its commit does not wait
        # for the disk. A read receipt is sent once and never again: it stays durable.
        changed = await node.core.write(work, quick=True, durable=frame.st == RECEIPT_READ)
        if changed:
            node.core.emit(ReceiptChanged(room, tuple(changed), peer, status))

    def admit(self, item: Inbound, counts: dict[bytes, int], evicted: list[bytes]) -> str | None:
        """Decide what to do with an inbound direct envelope; a reason to drop it, or None.

        A new request always gets in; the requests that make way for it are appended to
        ``evicted``. A message of a request past the limits is counted as held back.
        """
        node = self.node
        env = item.env
        if env.author == node.me and node.core.contacts.is_contact(item.peer):
            # Our own message coming back from the other side (direct_sync): we lost it.
            return node.body_problem(env)
        if env.author != item.peer:
            return "relayed direct message"
        problem = node.body_problem(env) or node.lamport_problem(env)
        if problem is not None:
            return problem
        book = node.requests
        state = node.core.contacts.state(item.peer) or "unknown"
        if state in ("unknown", "request") and len(env.body) > MAX_REQUEST_BODY:
            book.hold_message(env.id)
            return "message too large for a contact request"
        if state == "request" and counts.get(item.peer, 0) >= node.config.max_messages_per_request:
            book.hold_message(env.id)
            return "contact request holds too many messages"
        if state == "unknown":
            for peer in book.open(item.peer):
                node.core.contacts.states[peer] = "unknown"
                evicted.append(peer)
            node.core.contacts.states[item.peer] = "request"
        if node.core.contacts.state(item.peer) == "request":
            counts[item.peer] = counts.get(item.peer, 0) + 1
            book.touch(item.peer)
        return None

    def _admit_all(
        self, items: list[Inbound], counts: dict[bytes, int]
    ) -> tuple[list[Inbound], list[bytes]]:
        """The items to store, and the requests that made way for new ones."""
        accepted: list[Inbound] = []
        evicted: list[bytes] = []
        for item in items:
            reason = self.admit(item, counts, evicted)
            if reason is None:
                accepted.append(item)
            else:
                log.info("dropped message from %s: %s", short_id(item.peer), reason)
        # A request that made way later in this batch keeps none of its messages (unless
        # it wrote again after that and is open once more).
        gone = [p for p in dict.fromkeys(evicted) if p not in self.node.requests]
        if gone:
            dropped = set(gone)
            for item in accepted:
                if item.peer in dropped:
                    self.node.requests.hold_message(item.env.id)
            accepted = [i for i in accepted if i.peer not in dropped]
        return accepted, gone

    async def _skip_known(self, items: list[Inbound]) -> tuple[list[Inbound], dict[bytes, int]]:
        """``items`` less requests' messages we already hold, and how many each
        not-yet-accepted sender has waiting with us.

        A request is never acknowledged, so its sender's app sends it again on every
        connection: that is neither news nor held back.
        """
        node = self.node
        unaccepted = [i for i in items if not node.core.contacts.is_contact(i.peer)]
        if not unaccepted:
            return items, {}
        strangers = {i.peer for i in unaccepted}

        def load(store: Store) -> tuple[dict[bytes, int], set[bytes]]:
            room = functools.partial(direct_room_id, node.me)
            found = {p: store.count_by_author(room(p), p) for p in strangers}
            held = {m.id for m in store.get_messages([i.env.id for i in unaccepted])}
            return found, held

        counts, known = await node.core.read(load)
        fresh = [i for i in items if i.env.id not in known or node.core.contacts.is_contact(i.peer)]
        return fresh, counts

    async def ingest(self, batch: list[Inbound]) -> None:
        node = self.node
        now = now_ms()
        authentic = await node.authentic(batch)
        if len(authentic) != len(batch):
            log.warning("dropped %d messages with bad signatures", len(batch) - len(authentic))
        authentic, counts = await self._skip_known(authentic)
        held_before = node.requests.held
        accepted, evicted = self._admit_all(authentic, counts)
        held_changed = node.requests.held != held_before
        if not accepted and not evicted:
            if held_changed:
                self._emit_held()
            return

        def work(store: Store) -> tuple[list[Message], set[bytes], list[bytes]]:
            promoted = []
            self._forget_requests(store, evicted)
            for peer in {i.peer for i in accepted}:
                if not node.core.contacts.is_contact(peer):  # contacts skip a query
                    existing = store.get_peer(peer)
                    if existing is None or existing.state == "unknown":
                        node.core.contacts.remember(store, peer, "request")
                        promoted.append(peer)
                node.core.ensure_direct(store, direct_room_id(node.me, peer), peer, now)
            node.changes.apply_deletes(store, [i.env for i in accepted], now)
            rows = [envelope_to_row(i.env, now, MessageStatus.DELIVERED) for i in accepted]
            results = store.insert_messages(rows)
            messages = [m for m in results if m is not None]
            for m in messages:
                if node.core.contacts.is_contact(m.author):  # strangers never move our clock
                    node.core.clock.witness(m.lamport)
                if m.kind == KIND_REACTION:
                    apply_reaction(store, m)
            return *self._settle(store, rows, results, accepted, now), promoted

        stored, held, promoted = await node.core.write(work, quick=len(accepted) <= QUICK_INGEST)
        for peer in evicted:
            node.links.remove_targets("last", peer)
            node.core.emit(PeerUpdated(peer, node.core.contacts.names.get(peer), "unknown"))
        if held_changed:
            self._emit_held()
        for peer in promoted:
            node.core.contacts.states[peer] = "request"
            node.core.emit(ContactRequest(peer, node.peer_name(peer)))
        node.changes.emit_changed()
        await self._announce_stored(stored)
        # Acknowledge everything we hold, duplicates too: their receipt may have been lost.
        acks: dict[bytes, list[bytes]] = defaultdict(list)
        for item in accepted:
            if item.env.author == node.me:
                continue  # our own message given back: nothing to acknowledge
            if node.core.contacts.is_contact(item.peer) and item.env.id in held:
                acks[item.peer].append(item.env.id)
        for peer, ids in acks.items():
            # No flush here: one peer that stops reading must not stall everyone's inbox.
            await node.core.send_receipts(peer, node.direct_room(peer), ids, RECEIPT_DELIVERED)

    async def _announce_stored(self, stored: list[Message]) -> None:
        """Loop thread: tell the UI of what was stored; start what it needs fetched."""
        node = self.node
        for message in stored:
            if message.kind == KIND_REACTION:
                target, _, _ = decode_reaction(message.body)
                node.core.emit(ReactionChanged(message.room, target))
            elif message.kind not in CHANGE_KINDS:
                node.core.emit(MessageAdded(message, incoming=message.author != node.me))
            if message.kind == KIND_FILE and message.author != node.me:
                await node.transfers.on_file_message(message, incoming=True)
            elif message.kind == KIND_STICKER:
                await node.stickers.on_sticker_message(message)

    def _settle(
        self,
        store: Store,
        rows: list[NewMessage],
        results: list[Message | None],
        accepted: list[Inbound],
        now: int,
    ) -> tuple[list[Message], set[bytes]]:
        """Store thread: the new messages to announce (edits, timers and expiry applied),
        and the ids we now hold as sent (to acknowledge)."""
        held = held_intact(store, rows, results)
        fresh = [m for m in results if m is not None]
        envelopes = {i.env.id: i.env for i in accepted}
        gone = self.node.changes.after_store(store, fresh, envelopes, now)
        return [m for m in fresh if m.id not in gone], held

    def _forget_requests(self, store: Store, peers: list[bytes]) -> None:
        """Store thread: ``peers`` are no longer requests; remove what they wrote.

        Their ids stay known (as strangers, pruned like any), so a later message from
        them opens a new request. The held-back counts are saved alongside.
        """
        node = self.node
        for peer in peers:
            if store.get_peer(peer) is not None:
                store.set_peer_state(peer, "unknown")
            room = direct_room_id(node.me, peer)
            store.forget_room(room)
            node.core.ready_rooms.discard(room)
        held = node.requests.unsaved()
        if held is not None:
            store.set_setting(SETTING_HELD_REQUESTS, str(held.requests))
            store.set_setting(SETTING_HELD_MESSAGES, str(held.messages))

    def _emit_held(self) -> None:
        held = self.node.requests.held
        self.node.core.emit(RequestsHeldBack(held.requests, held.messages))

    async def clear_requests(self) -> int:
        """Remove every open contact request with its messages; reset the held-back counts.

        The senders become strangers again (not blocked): if they write again, a new
        request opens. Returns how many requests were removed.
        """
        node = self.node
        peers = set(node.requests.clear())
        peers.update(p for p, st in node.core.contacts.states.items() if st == "request")
        ordered = sorted(peers)
        await node.core.write(lambda s: self._forget_requests(s, ordered))
        for peer in ordered:
            node.core.contacts.states[peer] = "unknown"
            node.links.remove_targets("last", peer)
            node.core.emit(PeerUpdated(peer, node.core.contacts.names.get(peer), "unknown"))
        self._emit_held()
        return len(ordered)


def load_requests(store: Store, me: bytes) -> tuple[list[bytes], HeldBack]:
    """Store thread: open requests, quietest first, and the saved held-back counts."""
    activity = []
    for peer in store.list_peers("request"):
        activity.append((store.last_arrival(direct_room_id(me, peer.id)), peer.id))
    activity.sort()

    def count(key: str) -> int:
        value = store.get_setting(key, "0")
        return int(value) if value.isdigit() else 0

    held = HeldBack(count(SETTING_HELD_REQUESTS), count(SETTING_HELD_MESSAGES))
    return [peer for _, peer in activity], held
