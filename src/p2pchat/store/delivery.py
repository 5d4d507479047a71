"""Delivery: receipts from peers and the outbox of frames waiting for them."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from .messages import MessageTables
from .models import OutboxItem, Receipt
from .queries import SQL_PEERS_WITH_PENDING, SQL_PENDING, chunks, now_ms


class DeliveryTables(MessageTables):
    """Delivery: receipts from peers and the outbox of frames waiting for them."""

    # ------------------------------------------------------------ receipts

    def record_receipt(
        self, message_ids: Iterable[bytes], peer: bytes, status: int, at: int
    ) -> list[bytes]:
        """Record what ``peer`` reported for these messages; return the ids that changed.

        Only raises a peer's status for a message, never lowers it. Ids of messages not
        stored here are ignored (a bogus or stale receipt is not an error). The message's
        own aggregate status is the caller's policy: use set_status.
        """
        changed = []
        with self._atomic():
            for mid in message_ids:
                cur = self._db.execute(
                    """
                    INSERT INTO receipts (message_id, peer, status, at)
                    SELECT ?, ?, ?, ? WHERE EXISTS (SELECT 1 FROM messages WHERE id = ?)
                    ON CONFLICT (message_id, peer) DO UPDATE
                        SET status = excluded.status, at = excluded.at
                        WHERE excluded.status > receipts.status
                    """,
                    (mid, peer, int(status), at, mid),
                )
                if cur.rowcount > 0:
                    changed.append(mid)
        return changed

    def receipts_at_least(self, message_id: bytes, status: int) -> int:
        """How many peers reported at least ``status`` for one message (one index range)."""
        row = self._one(
            "SELECT count(*) FROM receipts WHERE message_id = ? AND status >= ?",
            (message_id, int(status)),
        )
        return int(row[0]) if row is not None else 0

    def receipts_for(self, message_id: bytes) -> list[Receipt]:
        """Every peer's receipt for one message, ordered by peer id."""
        rows = self._all(
            "SELECT message_id, peer, status, at FROM receipts WHERE message_id = ? ORDER BY peer",
            (message_id,),
        )
        return [Receipt(*r) for r in rows]

    # -------------------------------------------------------------- outbox

    def enqueue(
        self,
        peer: bytes,
        frame: bytes,
        message_id: bytes | None = None,
        *,
        created_at: int | None = None,
    ) -> int:
        """Queue a frame for ``peer``; return its outbox id (ids only ever grow)."""
        return self.enqueue_many([(peer, frame, message_id)], created_at=created_at)[0]

    def enqueue_many(
        self,
        items: Iterable[tuple[bytes, bytes, bytes | None]],
        *,
        created_at: int | None = None,
    ) -> list[int]:
        """Queue several (peer, frame, message_id) in one transaction; return their ids."""
        at = now_ms() if created_at is None else created_at
        ids = []
        with self._atomic():
            for peer, frame, message_id in items:
                cur = self._db.execute(
                    "INSERT INTO outbox (peer, frame, message_id, created_at) VALUES (?, ?, ?, ?)",
                    (peer, frame, message_id, at),
                )
                assert cur.lastrowid is not None
                ids.append(cur.lastrowid)
        return ids

    def pending_for(self, peer: bytes, limit: int = 500, *, after_id: int = 0) -> list[OutboxItem]:
        """The oldest ``limit`` frames waiting for ``peer`` with an id above ``after_id``.

        Oldest first (FIFO); ``after_id`` pages through a long outbox without skipping
        or repeating, since message frames stay queued until their receipt arrives.
        """
        return [OutboxItem(*r) for r in self._all(SQL_PENDING, (peer, after_id, limit))]

    def peers_with_pending(self) -> list[bytes]:
        """Peers that have at least one frame waiting."""
        return [bytes(r[0]) for r in self._all(SQL_PEERS_WITH_PENDING)]

    def remove_outbox_for_messages(self, peer: bytes, message_ids: Iterable[bytes]) -> int:
        """Drop the queued copies of these messages for ``peer`` (its receipt came)."""
        removed = 0
        with self._atomic():
            for chunk in chunks(list(message_ids)):
                marks = ",".join("?" * len(chunk))
                removed += self._db.execute(
                    f"DELETE FROM outbox WHERE message_id IN ({marks}) AND peer = ?",  # noqa: S608
                    (*chunk, peer),
                ).rowcount
        return removed

    def remove_outbox(self, ids: Iterable[int]) -> int:
        """Drop sent frames; return how many were removed."""
        return self._update_ids("DELETE FROM outbox WHERE id IN ({})", list(ids))

    def bump_attempts(self, ids: Iterable[int]) -> int:
        """Count one more send attempt for these frames; return how many rows changed."""
        return self._update_ids(
            "UPDATE outbox SET attempts = attempts + 1 WHERE id IN ({})", list(ids)
        )

    def _update_ids(self, template: str, ids: Sequence[int]) -> int:
        changed = 0
        with self._atomic():
            for chunk in chunks(ids):
                # Only "?" placeholders are formatted in; the values stay bound.
                sql = template.format(",".join("?" * len(chunk)))
                changed += self._db.execute(sql, tuple(chunk)).rowcount
        return changed
