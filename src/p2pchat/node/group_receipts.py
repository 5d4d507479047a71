"""Delivered and read receipts of group rooms: who has which of our messages, and when a
message counts as delivered to (or read by) every member."""

from __future__ import annotations

from collections.abc import Sequence

from p2pchat.node.coalesce import Coalescer
from p2pchat.node.commits import QUICK_BATCH
from p2pchat.node.events import ReceiptChanged
from p2pchat.node.group_base import GroupBase
from p2pchat.store import MessageStatus, Store
from p2pchat.wire import RECEIPT_READ, Receipt


def _status(frame: Receipt) -> MessageStatus:
    return MessageStatus.READ if frame.st == RECEIPT_READ else MessageStatus.DELIVERED


class GroupReceipts(GroupBase):
    """Receipts from members for the messages we wrote in group rooms."""

    _receipts: Coalescer[tuple[bytes, Receipt], list[bytes]]

    async def on_receipt(self, peer: bytes, frame: Receipt) -> None:
        """A member reports delivered/read for our messages in a group room.

        Receipts that come while others are being written are written together
        (coalesce.py): in a big room every member acknowledges each message at once.
        """
        changed = await self._receipts.submit((peer, frame))
        if changed:
            self.node.core.emit(ReceiptChanged(frame.room, tuple(changed), peer, _status(frame)))

    async def _record_receipts(self, batch: Sequence[tuple[bytes, Receipt]]) -> list[list[bytes]]:
        """Record a lot of receipts in one write; per receipt, the ids of our messages in
        its room that it names (what its ReceiptChanged event reports)."""
        # A delivered receipt's record is what the peer says again if it is lost (the
        # message stays in the outbox until one is recorded), so its commit does not wait
        # for the disk. A read receipt is sent once and never again: it stays durable.
        durable = any(frame.st == RECEIPT_READ for _, frame in batch)
        return await self.node.core.write(
            lambda store: self._record(store, batch),
            quick=len(batch) <= QUICK_BATCH,
            durable=durable,
        )

    def _record(self, store: Store, batch: Sequence[tuple[bytes, Receipt]]) -> list[list[bytes]]:
        """Store thread: the receipts' records, then the status of each message they name
        (counted once per message, however many receipts of it the lot holds)."""
        me = self.node.me
        now = self._now_ms()
        results: list[list[bytes]] = [[] for _ in batch]
        in_groups = [
            (k, peer, frame)
            for k, (peer, frame) in enumerate(batch)
            if store.room_kind(frame.room) == "group"  # kept in memory: no query
        ]
        for _, peer, frame in in_groups:
            # Whoever acknowledges an envelope holds it: stop resending it to them, even
            # if it is not ours (the room's log we handed to an invitee).
            store.remove_outbox_for_messages(peer, frame.ids)
        ours = {
            msg.id: msg.room
            for msg in store.get_messages(list({i for _, _, f in in_groups for i in f.ids}))
            if msg.author == me
        }
        touched: dict[bytes, tuple[bytes, MessageStatus]] = {}  # message -> room, top status
        for k, peer, frame in in_groups:
            m = self.membership(store, frame.room)
            # A receipt may come before the join that made its sender a member reached
            # us: keep it (it is counted once the join arrives), so "read by N of M"
            # is right after a late join. Only people the room or our rooms know count.
            if m.state_of(peer) is None and peer not in self.co_members:
                continue
            status = _status(frame)
            mine = [mid for mid in dict.fromkeys(frame.ids) if ours.get(mid) == frame.room]
            store.record_receipt(mine, peer, status, now)
            results[k] = mine
            for mid in mine:
                top = touched.get(mid, (frame.room, status))[1]
                touched[mid] = (frame.room, max(top, status))
        for mid, (room, status) in touched.items():
            members = [p for p in self.membership(store, room).joined() if p != me]
            # Until as many peers as there are members have it, it cannot be delivered
            # to all: a count in SQLite spares the per-member look-up that, on every one
            # of M receipts of a message, made a room of M cost M².
            if store.receipts_at_least(mid, MessageStatus.DELIVERED) < len(members):
                continue
            got = {r.peer: r.status for r in store.receipts_for(mid)}
            # The message counts as delivered (read) once every member has it.
            floor = min((got.get(p, 0) for p in members), default=int(status))
            if floor >= MessageStatus.DELIVERED:
                store.set_status([mid], floor)
        return results
