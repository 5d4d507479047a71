"""p2pchat's local store: SQLite schema, migrations and queries.

The only package of p2pchat that speaks SQL. It imports nothing from the rest of
p2pchat (peer, room and message ids are plain bytes) and must never be called from the
asyncio loop thread directly: the node uses :class:`StoreWorker`.
"""

from .errors import (
    REPAIR_HINT,
    CorruptStoreError,
    DamagedStoreError,
    ForeignDatabaseError,
    MissingStoreError,
    NewerSchemaError,
    StoreClosedError,
    StoreError,
    StoreIOError,
    StoreLockedError,
    UnknownRoomError,
)
from .models import (
    Address,
    AddressSource,
    Cursor,
    Member,
    MemberRole,
    MemberState,
    Message,
    MessageStatus,
    NewMessage,
    OutboxItem,
    Peer,
    PeerState,
    Reaction,
    Receipt,
    Room,
    RoomKind,
    RoomSummary,
)
from .schema import APPLICATION_ID, MIGRATIONS, SCHEMA_VERSION, Migration
from .search import SearchQueryError
from .store import Store, now_ms
from .worker import StoreWorker

__all__ = [
    "APPLICATION_ID",
    "MIGRATIONS",
    "REPAIR_HINT",
    "SCHEMA_VERSION",
    "Address",
    "AddressSource",
    "CorruptStoreError",
    "Cursor",
    "DamagedStoreError",
    "ForeignDatabaseError",
    "Member",
    "MemberRole",
    "MemberState",
    "Message",
    "MessageStatus",
    "Migration",
    "MissingStoreError",
    "NewMessage",
    "NewerSchemaError",
    "OutboxItem",
    "Peer",
    "PeerState",
    "Reaction",
    "Receipt",
    "Room",
    "RoomKind",
    "RoomSummary",
    "SearchQueryError",
    "Store",
    "StoreClosedError",
    "StoreError",
    "StoreIOError",
    "StoreLockedError",
    "StoreWorker",
    "UnknownRoomError",
    "now_ms",
]
