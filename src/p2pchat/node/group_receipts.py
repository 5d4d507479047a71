"""Delivered and read receipts of group rooms: who has which of our messages, and when a
message counts as delivered to (or read by) every member."""

from __future__ import annotations

from p2pchat.node.events import ReceiptChanged
from p2pchat.node.group_base import GroupBase
from p2pchat.store import MessageStatus, Store
from p2pchat.wire import RECEIPT_READ, Receipt


class GroupReceipts(GroupBase):
    """Receipts from members for the messages we wrote in group rooms."""

    async def on_receipt(self, peer: bytes, frame: Receipt) -> None:
        """A member reports delivered/read for our messages in a group room."""
        node = self.node
        status = MessageStatus.READ if frame.st == RECEIPT_READ else MessageStatus.DELIVERED

        def work(store: Store) -> list[bytes]:
            if store.room_kind(frame.room) != "group":  # kept in memory: no query
                return []
            # Whoever acknowledges an envelope holds it: stop resending it to them, even
            # if it is not ours (the room's log we handed to an invitee).
            store.remove_outbox_for_messages(peer, frame.ids)
            m = self.membership(store, frame.room)
            # A receipt may come before the join that made its sender a member reached
            # us: keep it (it is counted once the join arrives), so "read by N of M"
            # is right after a late join. Only people the room or our rooms know count.
            if m.state_of(peer) is None and peer not in self.co_members:
                return []
            mine = [
                msg.id
                for msg in store.get_messages(frame.ids)
                if msg.author == node.me and msg.room == frame.room
            ]
            store.record_receipt(mine, peer, status, self._now_ms())
            members = [p for p in m.joined() if p != node.me]
            for mid in mine:
                # Until as many peers as there are members have it, it cannot be
                # delivered to all: a count in SQLite spares the per-member look-up that,
                # on every one of M receipts of a message, made a room of M cost M².
                if store.receipts_at_least(mid, MessageStatus.DELIVERED) < len(members):
                    continue
                got = {r.peer: r.status for r in store.receipts_for(mid)}
                # The message counts as delivered (read) once every member has it.
                floor = min((got.get(p, 0) for p in members), default=int(status))
                if floor >= MessageStatus.DELIVERED:
                    store.set_status([mid], floor)
            return mine

        # A delivered receipt's record is what the peer says again if it is lost (the
        # message stays in the outbox until one is recorded), so its commit does not wait
        # for the disk. A read receipt is sent once and never again: it stays durable.
        changed = await node.core.write(work, quick=True, durable=frame.st == RECEIPT_READ)
        if changed:
            node.core.emit(ReceiptChanged(frame.room, tuple(changed), peer, status))
