"""Schema of the p2pchat store and the migrations that build it.

A migration is a function that takes an open connection and changes the schema from
version N-1 to N; ``MIGRATIONS[i]`` builds version ``i + 1``. The store applies the
missing ones in order, each inside its own transaction together with the bump of
``PRAGMA user_version``, so a crash leaves the file at a whole version. A migration must
never commit, run ``executescript`` (which commits) or touch anything but the schema and
the rows it converts; released migrations must never be edited, only followed by new ones.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Sequence
from typing import Final

from .search import create_search_index

#: Written into the database header so we recognise our files ("P2PC").
APPLICATION_ID: Final = 0x50325043

Migration = Callable[[sqlite3.Connection], None]

_V1: Final[tuple[str, ...]] = (
    """
    CREATE TABLE settings (
        key   TEXT PRIMARY KEY,
        value TEXT NOT NULL
    )
    """,
    """
    CREATE TABLE peers (
        id         BLOB PRIMARY KEY CHECK (length(id) = 32),
        name       TEXT,
        state      TEXT NOT NULL DEFAULT 'unknown'
                   CHECK (state IN ('unknown', 'request', 'contact', 'blocked')),
        verified   INTEGER NOT NULL DEFAULT 0 CHECK (verified IN (0, 1)),
        first_seen INTEGER NOT NULL,
        last_seen  INTEGER
    )
    """,
    """
    CREATE TABLE addresses (
        id      INTEGER PRIMARY KEY,
        peer_id BLOB REFERENCES peers (id) ON DELETE CASCADE,
        host    TEXT NOT NULL,
        port    INTEGER NOT NULL CHECK (port BETWEEN 1 AND 65535),
        source  TEXT NOT NULL CHECK (source IN ('mdns', 'manual', 'last')),
        last_ok INTEGER,
        UNIQUE (peer_id, host, port)
    )
    """,
    # NULLs are distinct in a UNIQUE constraint, so peerless (manual) addresses need
    # their own uniqueness rule or the same host:port could be added again and again.
    """
    CREATE UNIQUE INDEX addresses_peerless ON addresses (host, port) WHERE peer_id IS NULL
    """,
    """
    CREATE TABLE rooms (
        id              BLOB PRIMARY KEY,
        kind            TEXT NOT NULL CHECK (kind IN ('direct', 'group')),
        name            TEXT,
        topic           TEXT,
        owner           BLOB,
        created_at      INTEGER NOT NULL,
        last_read_rowid INTEGER NOT NULL DEFAULT 0
    )
    """,
    # members.peer has no foreign key: a group member may be someone we never met.
    """
    CREATE TABLE members (
        room  BLOB NOT NULL REFERENCES rooms (id) ON DELETE CASCADE,
        peer  BLOB NOT NULL,
        role  TEXT NOT NULL CHECK (role IN ('owner', 'admin', 'member')),
        state TEXT NOT NULL CHECK (state IN ('invited', 'joined', 'left', 'removed')),
        PRIMARY KEY (room, peer)
    ) WITHOUT ROWID
    """,
    """
    CREATE TABLE messages (
        rowid       INTEGER PRIMARY KEY,
        id          BLOB NOT NULL UNIQUE CHECK (length(id) = 16),
        room        BLOB NOT NULL REFERENCES rooms (id) ON DELETE CASCADE,
        author      BLOB NOT NULL,
        seq         INTEGER NOT NULL CHECK (seq >= 1),
        lamport     INTEGER NOT NULL,
        sent_at     INTEGER NOT NULL,
        received_at INTEGER NOT NULL,
        kind        TEXT NOT NULL,
        body        BLOB NOT NULL,
        reply_to    BLOB,
        sig         BLOB NOT NULL,
        status      INTEGER NOT NULL DEFAULT 0 CHECK (status BETWEEN 0 AND 3),
        UNIQUE (room, author, seq)
    )
    """,
    # Display order of a room: latest-N and paging walk this index backwards.
    """
    CREATE INDEX messages_display ON messages (room, lamport, author, id)
    """,
    # Arrival order within a room: unread counts walk only the rows after
    # last_read_rowid, and carrying author makes that walk index-only (a room's rows are
    # scattered through the table, so visiting each row would cost a page read apiece).
    """
    CREATE INDEX messages_arrival ON messages (room, rowid, author, kind)
    """,
    # Highest contiguous seq per (room, author), kept up to date by add_messages, so
    # anti-entropy never has to scan a room's history to say what it has.
    """
    CREATE TABLE heads (
        room   BLOB NOT NULL REFERENCES rooms (id) ON DELETE CASCADE,
        author BLOB NOT NULL,
        seq    INTEGER NOT NULL,
        PRIMARY KEY (room, author)
    ) WITHOUT ROWID
    """,
    """
    CREATE TABLE receipts (
        message_id BLOB NOT NULL REFERENCES messages (id) ON DELETE CASCADE,
        peer       BLOB NOT NULL,
        status     INTEGER NOT NULL CHECK (status BETWEEN 0 AND 3),
        at         INTEGER NOT NULL,
        PRIMARY KEY (message_id, peer)
    ) WITHOUT ROWID
    """,
    # AUTOINCREMENT so an id is never reused: a caller holding the id of a removed row
    # must not remove a newer frame by accident.
    """
    CREATE TABLE outbox (
        id         INTEGER PRIMARY KEY AUTOINCREMENT,
        peer       BLOB NOT NULL,
        frame      BLOB NOT NULL,
        message_id BLOB,
        created_at INTEGER NOT NULL,
        attempts   INTEGER NOT NULL DEFAULT 0
    )
    """,
    """
    CREATE INDEX outbox_peer ON outbox (peer, id)
    """,
    # Receipts remove delivered messages from the outbox by message id.
    """
    CREATE INDEX outbox_message ON outbox (message_id) WHERE message_id IS NOT NULL
    """,
    # No foreign key to messages: a reaction may arrive (by sync) before its message.
    """
    CREATE TABLE reactions (
        message_id BLOB NOT NULL,
        author     BLOB NOT NULL,
        emoji      TEXT NOT NULL,
        PRIMARY KEY (message_id, author, emoji)
    ) WITHOUT ROWID
    """,
)


def _v1(conn: sqlite3.Connection) -> None:
    """Create the first schema."""
    for statement in _V1:
        conn.execute(statement)


_V2_TRANSFERS: Final[tuple[str, ...]] = (
    # One row per file message, ours or a peer's. No foreign key to messages: the row is
    # written right after its message, and a transfer outlives nothing it points to.
    # ``path``: for outgoing files the source we serve; for incoming ones the final file
    # once verified. ``part``: where an incoming file grows until verified.
    """
    CREATE TABLE transfers (
        message_id BLOB PRIMARY KEY CHECK (length(message_id) = 16),
        room       BLOB NOT NULL,
        peer       BLOB NOT NULL,
        incoming   INTEGER NOT NULL CHECK (incoming IN (0, 1)),
        name       TEXT NOT NULL,
        size       INTEGER NOT NULL CHECK (size >= 0),
        mime       TEXT NOT NULL,
        sha256     BLOB NOT NULL CHECK (length(sha256) = 32),
        chunk      INTEGER NOT NULL CHECK (chunk >= 1),
        state      TEXT NOT NULL CHECK (state IN
                   ('offered', 'waiting', 'active', 'paused', 'done', 'failed', 'cancelled')),
        path       TEXT,
        part       TEXT,
        src_mtime  INTEGER,
        detail     TEXT NOT NULL DEFAULT '',
        created_at INTEGER NOT NULL,
        updated_at INTEGER NOT NULL
    )
    """,
    # Serving is content-addressed: a chunk request names only the hash.
    """
    CREATE INDEX transfers_hash ON transfers (sha256)
    """,
)


def _v2(conn: sqlite3.Connection) -> None:
    """Add file transfers (offers, downloads and the files we can serve)."""
    for statement in _V2_TRANSFERS:
        conn.execute(statement)


_V3_DEPS: Final[tuple[str, ...]] = (
    # The ``deps`` of group-room envelopes (protocol 2): the membership operations their
    # author had seen, concatenated 16-byte ids. A table of its own so the hot message
    # queries stay as they are; only relaying and membership read it.
    """
    CREATE TABLE envelope_deps (
        message_id BLOB PRIMARY KEY REFERENCES messages (id) ON DELETE CASCADE,
        deps       BLOB NOT NULL
    ) WITHOUT ROWID
    """,
)


def _v3(conn: sqlite3.Connection) -> None:
    """Add the deps of group envelopes (causal membership, protocol 2)."""
    for statement in _V3_DEPS:
        conn.execute(statement)


_V4_CLIENT_SENDS: Final[tuple[str, ...]] = (
    # Idempotent sends: a script's own id for a send, so a retry after a crash (the node's
    # or the script's) finds the message already written instead of writing it twice.
    """
    CREATE TABLE client_sends (
        client_id  TEXT PRIMARY KEY,
        message_id BLOB NOT NULL REFERENCES messages (id) ON DELETE CASCADE,
        created_at INTEGER NOT NULL
    ) WITHOUT ROWID
    """,
)


def _v4(conn: sqlite3.Connection) -> None:
    """Add client ids of sends (idempotent sends through the control socket)."""
    for statement in _V4_CLIENT_SENDS:
        conn.execute(statement)


_V5_CHAT_SETTINGS: Final[tuple[str, ...]] = (
    # Muted: no notifications, still counted as unread.
    "ALTER TABLE rooms ADD COLUMN muted INTEGER NOT NULL DEFAULT 0 CHECK (muted IN (0, 1))",
    # Archived: the newest message's rowid when the person archived the chat (NULL when
    # not archived). The chat is out of the sidebar until a message arrives after it, so
    # archiving needs no write when a message arrives.
    "ALTER TABLE rooms ADD COLUMN archived_rowid INTEGER",
    # The highest Lamport time of the room when the person deleted its messages locally
    # (0: never). Our next message must still sort after everything the other members
    # hold, though our store no longer shows those messages.
    "ALTER TABLE rooms ADD COLUMN cleared_lamport INTEGER NOT NULL DEFAULT 0",
)


def _v5(conn: sqlite3.Connection) -> None:
    """Add per-chat settings and message search (an FTS5 index kept by triggers; the
    search module owns its table, tokenizer choice and triggers)."""
    for statement in _V5_CHAT_SETTINGS:
        conn.execute(statement)
    create_search_index(conn)


_V_ONIONS: Final[tuple[str, ...]] = (
    # Contacts' onion services (Tor): the latest address each one signed, or one typed
    # in from an invite code (sig NULL) until the contact's own signed frame replaces it.
    """
    CREATE TABLE onions (
        peer_id BLOB PRIMARY KEY REFERENCES peers (id) ON DELETE CASCADE,
        addr    TEXT NOT NULL CHECK (length(addr) = 56),
        port    INTEGER NOT NULL CHECK (port BETWEEN 1 AND 65535),
        ts      INTEGER NOT NULL,
        sig     BLOB CHECK (sig IS NULL OR length(sig) = 64)
    ) WITHOUT ROWID
    """,
)


def _v_onions(conn: sqlite3.Connection) -> None:
    """Add contacts' onion addresses (chats over Tor, issue 19)."""
    for statement in _V_ONIONS:
        conn.execute(statement)


_V_CHANGES: Final[tuple[str, ...]] = (
    # Edits name the message they change in ``reply_to``; showing a page of history
    # looks up the edits of its messages, and a message that arrives after its edit
    # finds it, through this (small, partial) index.
    """
    CREATE INDEX messages_edits ON messages (reply_to) WHERE kind = 'edit'
    """,
    # Tombstones (deleted or expired messages: store.changes) are the only rows without a
    # signature; a node looks up its own that no delete vouches for yet.
    """
    CREATE INDEX messages_tombstones ON messages (author) WHERE sig = x''
    """,
    # Disappearing messages: the timer changes of each room that took effect (a change
    # by someone without the right is stored as an envelope but never listed here), so
    # the timer in force at any position of the room is one indexed look-up.
    """
    CREATE TABLE disappear_timers (
        message_id BLOB PRIMARY KEY REFERENCES messages (id) ON DELETE CASCADE,
        room       BLOB NOT NULL REFERENCES rooms (id) ON DELETE CASCADE,
        lamport    INTEGER NOT NULL,
        author     BLOB NOT NULL,
        seconds    INTEGER NOT NULL CHECK (seconds >= 0)
    ) WITHOUT ROWID
    """,
    """
    CREATE INDEX disappear_timers_position ON disappear_timers (room, lamport, author, message_id)
    """,
    # When each message under a timer must go (milliseconds since the epoch).
    """
    CREATE TABLE expiring (
        message_id BLOB PRIMARY KEY REFERENCES messages (id) ON DELETE CASCADE,
        room       BLOB NOT NULL,
        at         INTEGER NOT NULL
    ) WITHOUT ROWID
    """,
    """
    CREATE INDEX expiring_at ON expiring (at)
    """,
)


def _v_changes(conn: sqlite3.Connection) -> None:
    """Add what edits, deletes and disappearing messages need (issues 14 and 17)."""
    for statement in _V_CHANGES:
        conn.execute(statement)


_STICKERS: Final[tuple[str, ...]] = (
    # Our own sticker packs: names are checked ASCII (node/sticker_body.py); the picture
    # lives in the profile's sticker cache, named by its hash only.
    """
    CREATE TABLE sticker_packs (
        pack     TEXT NOT NULL,
        name     TEXT NOT NULL,
        sha256   BLOB NOT NULL CHECK (length(sha256) = 32),
        mime     TEXT NOT NULL,
        size     INTEGER NOT NULL,
        added_at INTEGER NOT NULL,
        PRIMARY KEY (pack, name)
    ) WITHOUT ROWID
    """,
    # Every sticker seen in a room (ours or a peer's): who may fetch its picture from us
    # (members of that room), and what "install this pack" copies.
    """
    CREATE TABLE sticker_seen (
        sha256  BLOB NOT NULL CHECK (length(sha256) = 32),
        room    BLOB NOT NULL,
        author  BLOB NOT NULL,
        pack    TEXT NOT NULL,
        name    TEXT NOT NULL,
        mime    TEXT NOT NULL,
        size    INTEGER NOT NULL,
        PRIMARY KEY (sha256, room, author)
    ) WITHOUT ROWID
    """,
    "CREATE INDEX sticker_seen_pack ON sticker_seen (pack, author)",
)


def _stickers(conn: sqlite3.Connection) -> None:
    """Add sticker packs and the stickers seen in rooms (issue 14, item 4)."""
    for statement in _STICKERS:
        conn.execute(statement)


def _deps_in_messages(conn: sqlite3.Connection) -> None:
    """Move the group envelopes' deps into their message rows, and drop envelope_deps.

    A table of its own cost every group message a second insert, its foreign-key probe
    and one more b-tree page in its commit (encrypted and MAC'd with a passphrase), all
    on a room's hot path; the message queries that do not ask for deps never read the
    column, and NULL (a direct message) takes one byte of the row.
    """
    conn.execute("ALTER TABLE messages ADD COLUMN deps BLOB")
    conn.execute(
        "UPDATE messages SET deps = envelope_deps.deps FROM envelope_deps"
        " WHERE envelope_deps.message_id = messages.id"
    )
    conn.execute("DROP TABLE envelope_deps")


#: Every migration, oldest first; the schema version is ``len(MIGRATIONS)``.
MIGRATIONS: Final[tuple[Migration, ...]] = (
    _v1,
    _v2,
    _v3,
    _v4,
    _v5,
    _v_onions,
    _v_changes,
    _stickers,
    _deps_in_messages,
)

SCHEMA_VERSION: Final = len(MIGRATIONS)


def migrate(conn: sqlite3.Connection, migrations: Sequence[Migration]) -> int:
    """Apply the migrations ``conn`` lacks, one transaction each; return the new version.

    ``conn`` must be in autocommit mode (``isolation_level=None``) so that the explicit
    BEGIN/COMMIT here are the only transaction boundaries.
    """
    version = int(conn.execute("PRAGMA user_version").fetchone()[0])
    for index in range(version, len(migrations)):
        # IMMEDIATE takes the write lock up front, so two openers cannot both migrate.
        conn.execute("BEGIN IMMEDIATE")
        try:
            # Re-read inside the lock: someone may have migrated since we looked.
            current = int(conn.execute("PRAGMA user_version").fetchone()[0])
            if current > index:
                conn.execute("COMMIT")
                continue
            migrations[index](conn)
            if index == 0:
                conn.execute(f"PRAGMA application_id = {APPLICATION_ID}")
            # PRAGMA takes no bound parameters; the value is our own int.
            conn.execute(f"PRAGMA user_version = {index + 1}")
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        version = index + 1
    return version
