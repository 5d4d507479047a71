"""The p2pchat store: one SQLite file per profile holding everything a person sent or got.

This is the only place in p2pchat that speaks SQL. It opens the file safely (never
overwriting or deleting a file that is not ours, never letting two p2pchat processes share
it), migrates the schema, and offers typed, synchronous methods over it. It must never
import other p2pchat modules, do network I/O, or be called from an asyncio event loop
thread: the node goes through :class:`p2pchat.store.worker.StoreWorker`.

Durability: WAL with ``synchronous=FULL``, so once a write method (or an outer
``transaction()``) returns, the rows survive a crash or power cut; that is what a
``delivered`` receipt promises. Callers batch writes in one transaction for throughput.
"""

from __future__ import annotations

from .delivery import DeliveryTables
from .queries import (
    MESSAGE_COLUMNS,
    SQL_BEFORE,
    SQL_BY_SEQ,
    SQL_HEADS,
    SQL_LATEST,
    SQL_MAX_LAMPORT,
    SQL_NEXT_SEQ,
    SQL_PENDING,
    SQL_UNREAD,
    now_ms,
)

__all__ = [
    "MESSAGE_COLUMNS",
    "SQL_BEFORE",
    "SQL_BY_SEQ",
    "SQL_HEADS",
    "SQL_LATEST",
    "SQL_MAX_LAMPORT",
    "SQL_NEXT_SEQ",
    "SQL_PENDING",
    "SQL_UNREAD",
    "Store",
    "now_ms",
]


class Store(DeliveryTables):
    """An open p2pchat store. Use :meth:`open`; close it (or use ``with``) when done.

    ``self_id`` is the local person's peer id: their own messages never count as unread.
    Not thread-safe: use it from the thread that opened it (sqlite3 enforces this).
    """
