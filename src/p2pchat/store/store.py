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

import contextlib
import fcntl
import os
import time
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any, Final, TypeVar, cast, overload

from . import db, encryption, health, recovery
from .backup import copy_into
from .errors import (
    CorruptStoreError,
    DamagedStoreError,
    ForeignDatabaseError,
    MissingStoreError,
    NewerSchemaError,
    StoreClosedError,
    StoreError,
    StoreIOError,
    StoreKeyError,
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
from .schema import APPLICATION_ID, MIGRATIONS, Migration, migrate
from .search import (
    flush_search_index,
    parse_query,
    purge_search_residue,
    search_rowids,
)

T = TypeVar("T")

_SQLITE_HEADER: Final = b"SQLite format 3\x00"
# Short: the flock already keeps other p2pchat processes out, so a busy database means
# an outside program (a sqlite3 shell, a backup) and waiting long would only hang the UI.
_BUSY_TIMEOUT_MS: Final = 1000
#: Page cache of an encrypted store, in KiB (SQLCipher's default is 8 MiB); it fills
#: only as pages are read.
_ENCRYPTED_CACHE_KIB: Final = 65536
#: How long a client id of a send is remembered (see record_client_send).
CLIENT_ID_TTL_MS: Final = 7 * 24 * 3600 * 1000
# SQLite's default limit on bound variables is 32766; stay far below it.
_IN_CHUNK: Final = 500
#: Unread counts stop here: a badge says "999+" rather than walking a huge backlog.
UNREAD_CAP: Final = 999


MESSAGE_COLUMNS: Final = (
    "rowid, id, room, author, seq, lamport, sent_at, received_at, kind, body, reply_to, sig, status"
)

# The hot queries are module constants so tests can check their plans use an index.
SQL_LATEST: Final = """
    SELECT rowid, id, room, author, seq, lamport, sent_at, received_at,
        kind, body, reply_to, sig, status
    FROM messages
    WHERE room = ?
    ORDER BY lamport DESC, author DESC, id DESC
    LIMIT ?
"""
# The same two, skipping reactions, edits and deletes (they change how messages look,
# are not shown themselves), so a page of a conversation is never short.
SQL_LATEST_SHOWN: Final = """
    SELECT rowid, id, room, author, seq, lamport, sent_at, received_at,
        kind, body, reply_to, sig, status
    FROM messages
    WHERE room = ? AND kind NOT IN ('reaction', 'edit', 'delete', 'removed')
    ORDER BY lamport DESC, author DESC, id DESC
    LIMIT ?
"""
SQL_BEFORE_SHOWN: Final = """
    SELECT rowid, id, room, author, seq, lamport, sent_at, received_at,
        kind, body, reply_to, sig, status
    FROM messages
    WHERE room = ? AND (lamport, author, id) < (?, ?, ?)
        AND kind NOT IN ('reaction', 'edit', 'delete', 'removed')
    ORDER BY lamport DESC, author DESC, id DESC
    LIMIT ?
"""
# Forward paging (an export writes a chat oldest first, a page at a time).
SQL_AFTER_SHOWN: Final = """
    SELECT rowid, id, room, author, seq, lamport, sent_at, received_at,
        kind, body, reply_to, sig, status
    FROM messages
    WHERE room = ? AND (lamport, author, id) > (?, ?, ?) AND kind != 'reaction'
    ORDER BY lamport, author, id
    LIMIT ?
"""
SQL_BEFORE: Final = """
    SELECT rowid, id, room, author, seq, lamport, sent_at, received_at,
        kind, body, reply_to, sig, status
    FROM messages
    WHERE room = ? AND (lamport, author, id) < (?, ?, ?)
    ORDER BY lamport DESC, author DESC, id DESC
    LIMIT ?
"""
# INDEXED BY: with statistics the planner may prefer a rowid range over the whole table
# (all rooms); the (room) index bounds the walk to this room's unread rows.
# The LIMIT caps the work for a room never opened after a big sync: a badge shows "999+".
SQL_UNREAD: Final = """
    SELECT count(*) FROM (
        SELECT 1 FROM messages INDEXED BY messages_arrival
        WHERE room = ? AND rowid > ? AND author IS NOT ?
            AND kind NOT IN ('reaction', 'edit', 'delete', 'removed')
        LIMIT ?
    )
"""
SQL_HEADS: Final = "SELECT author, seq FROM heads WHERE room = ?"
# INDEXED BY: SQLite 3.53 (SQLCipher's) may walk the whole outbox by id from ``after``
# once it has statistics; (peer, id) reads only this peer's rows, already in order.
SQL_PENDING: Final = """
    SELECT id, peer, frame, message_id, created_at, attempts FROM outbox INDEXED BY outbox_peer
    WHERE peer = ? AND id > ? ORDER BY id LIMIT ?
"""
# Both also read what a locally deleted chat left behind (heads, rooms.cleared_lamport):
# our next message must not reuse a seq, nor sort before messages the others still hold.
SQL_NEXT_SEQ: Final = """
    SELECT max(
        coalesce((SELECT max(seq) FROM messages WHERE room = ?1 AND author = ?2), 0),
        coalesce((SELECT seq FROM heads WHERE room = ?1 AND author = ?2), 0))
"""
SQL_MAX_LAMPORT: Final = """
    SELECT max(
        coalesce((SELECT max(lamport) FROM messages WHERE room = ?1), 0),
        coalesce((SELECT cleared_lamport FROM rooms WHERE id = ?1), 0))
"""
_ROOM_COLUMNS: Final = (
    "id, kind, name, topic, owner, created_at, last_read_rowid, muted, archived_rowid"
)
#: Message columns plus the envelope's deps (NULL for envelopes without), for relaying.
_WITH_DEPS: Final = (
    "messages.rowid, id, room, author, seq, lamport, sent_at, received_at, kind, body,"
    " reply_to, sig, status, envelope_deps.deps"
    " FROM messages LEFT JOIN envelope_deps ON envelope_deps.message_id = messages.id"
)
SQL_BY_SEQ: Final = f"""
    SELECT {_WITH_DEPS}
    WHERE room = ? AND author = ? AND seq >= ? AND seq < ?
    ORDER BY seq
"""
_SQL_REACTIONS_IN: Final = (
    "SELECT message_id, author, emoji FROM reactions WHERE message_id IN ({})"
    " ORDER BY message_id, emoji, author"
)
SQL_SEARCH_QUEUED: Final = "SELECT 1 FROM message_search_pending LIMIT 1"
SQL_ARRIVED_AFTER: Final = (
    "SELECT 1 FROM messages INDEXED BY messages_arrival WHERE room = ? AND rowid > ? LIMIT 1"
)
SQL_PEERS_WITH_PENDING: Final = "SELECT DISTINCT peer FROM outbox ORDER BY peer"


def now_ms() -> int:
    """Current wall-clock time in integer milliseconds since the Unix epoch."""
    return time.time_ns() // 1_000_000


def _chunks(items: Sequence[T], size: int = _IN_CHUNK) -> Iterator[Sequence[T]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _stored(rowid: int, r: NewMessage) -> Message:
    """The Message a just-inserted NewMessage became."""
    return Message(
        rowid=rowid,
        id=r.id,
        room=r.room,
        author=r.author,
        seq=r.seq,
        lamport=r.lamport,
        sent_at=r.sent_at,
        received_at=r.received_at,
        kind=r.kind,
        body=r.body,
        reply_to=r.reply_to,
        sig=r.sig,
        status=int(r.status),
        deps=r.deps,
    )


def _message(row: Sequence[Any]) -> Message:
    return Message(*row)


def _room(row: Sequence[Any]) -> Room:
    rid, kind, name, topic, owner, created_at, last_read, muted, archived_rowid = row
    return Room(rid, kind, name, topic, owner, created_at, last_read, bool(muted), archived_rowid)


def _peer(row: Sequence[Any]) -> Peer:
    pid, name, state, verified, first_seen, last_seen = row
    return Peer(pid, name, state, bool(verified), first_seen, last_seen)


class Store:
    """An open p2pchat store. Use :meth:`open`; close it (or use ``with``) when done.

    ``self_id`` is the local person's peer id: their own messages never count as unread.
    Not thread-safe: use it from the thread that opened it (sqlite3 enforces this).
    """

    def __init__(
        self, path: Path, conn: db.Connection, lock_fd: int, self_id: bytes | None
    ) -> None:
        """Wrap an already opened, migrated connection; call :meth:`open` instead."""
        self.path = path
        self.self_id = self_id
        self._conn: db.Connection | None = conn
        self._lock_fd = lock_fd
        self._key: bytes | None = None
        self._depth = 0
        # Contiguous heads known in memory, and the (room, author) pairs known to hold no
        # seq above their head: appending the next seq then needs no probing queries.
        # Both are dropped on any rollback, so they never disagree with the file.
        self._heads: dict[tuple[bytes, bytes], int] = {}
        self._no_gap: set[tuple[bytes, bytes]] = set()
        # Rooms known to exist (rooms are never deleted), dropped on rollback too.
        self._rooms_seen: set[bytes] = set()
        # False only for a store opened with an older schema (tests of migrations).
        self._has_search = (
            conn.execute(
                "SELECT 1 FROM sqlite_master WHERE name = 'message_search_pending'"
            ).fetchone()
            is not None
        )
        #: Where the damaged file went when the start-up check rebuilt the store.
        self.rebuilt_from: Path | None = None

    # ----------------------------------------------------------------- opening

    @classmethod
    def open(
        cls,
        path: Path | str,
        *,
        self_id: bytes | None = None,
        migrations: Sequence[Migration] = MIGRATIONS,
        create: bool = True,
        key: bytes | None = None,
        old_keys: Sequence[bytes] = (),
    ) -> Store:
        """Open (creating if needed) the store at ``path`` and bring its schema up to date.

        ``key`` is the raw 32-byte key the store must be encrypted with (None: a plain
        SQLite file). The file is brought to it first: a plain store is encrypted, one
        under one of ``old_keys`` (an interrupted passphrase change) is re-keyed, an
        encrypted one is decrypted when ``key`` is None, each crash-safely (see
        :mod:`.encryption`). StoreKeyError when no key given opens it.

        Raises StoreLockedError, CorruptStoreError, ForeignDatabaseError,
        NewerSchemaError, DamagedStoreError or (``create=False``: the profile already had
        a store, so a missing or empty file is damage) MissingStoreError; in every error
        case an existing file is left byte for byte as it was. The start-up check
        (:mod:`.health`) may rebuild a store whose only damage is in its indexes: every
        row is copied into a fresh file and the damaged one is kept beside it
        (``rebuilt_from``). ``migrations`` exists so tests can add a future version.
        """
        path = Path(path)
        try:
            path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreError(f"cannot create {path.parent}: {exc.strerror}") from None
        lock_fd = _acquire_lock(path)
        rebuilt_from: Path | None = None
        try:
            if not create:
                _require_existing(path)
            _create_private(path)
            _settle_key(path, len(migrations), key, old_keys)
            _inspect(path, len(migrations), key)
            conn = _connect(path, key)
            try:
                conn, rebuilt_from = _check_health(path, conn, migrations, key)
            except db.OperationalError as exc:
                conn.close()
                if "locked" in str(exc) or "busy" in str(exc):
                    raise StoreLockedError(path, str(exc)) from None
                raise StoreIOError(path, str(exc)) from None
            except BaseException:
                conn.close()
                raise
            try:
                migrate(conn, migrations)
            except db.OperationalError as exc:
                conn.close()
                if "locked" in str(exc) or "busy" in str(exc):
                    raise StoreLockedError(path, str(exc)) from None
                raise StoreIOError(path, str(exc)) from None
            except (db.IntegrityError, db.ProgrammingError):
                conn.close()
                raise  # a broken migration: a bug, not the person's file
            except db.DatabaseError as exc:
                conn.close()
                # Damage the header checks could not see; the migration rolled back.
                raise CorruptStoreError(path, str(exc)) from None
            except BaseException:
                conn.close()
                raise
        except BaseException:
            os.close(lock_fd)
            raise
        store = cls(path, conn, lock_fd, self_id)
        store.rebuilt_from = rebuilt_from
        store._key = key
        return store

    @property
    def encrypted(self) -> bool:
        """Whether the file (and its WAL) is encrypted (a passphrase is set)."""
        return self._key is not None

    def rekey(self, new_key: bytes | None) -> None:
        """Re-encrypt the open store with ``new_key`` (None: decrypt), crash-safely.

        The profile's lock stays held throughout, so nothing else can open the store
        half-way; the connection is closed for the copy and opened again on the result.
        """
        db_conn = self._db
        if self._depth:
            raise StoreError("cannot change the store's key inside a transaction")
        db_conn.close()
        self._conn = None
        self._forget_caches()
        try:
            encryption.rekey(self.path, self._key, new_key)
            self._key = new_key
        except (db.DatabaseError, OSError) as exc:
            raise StoreIOError(self.path, f"cannot change the store's key: {exc}") from None
        finally:
            self._conn = _connect(self.path, self._key)

    def close(self) -> None:
        """Close the database and release the profile lock. Safe to call twice."""
        conn, self._conn = self._conn, None
        if conn is None:
            return
        try:
            # Outside any transaction only: a close in the middle of one is not clean.
            if not conn.in_transaction:
                _set_clean_close(conn, "1")
            # Cheap; keeps planner statistics fresh for the next start.
            conn.execute("PRAGMA optimize")
        except db.Error:
            pass
        finally:
            conn.close()
            # The lock file itself stays: deleting it would race with the next opener.
            os.close(self._lock_fd)

    def __enter__(self) -> Store:
        """Use the store as a context manager that closes it."""
        return self

    def __exit__(self, *exc: object) -> None:
        """Close the store."""
        self.close()

    @property
    def closed(self) -> bool:
        """True once close() has run."""
        return self._conn is None

    # ------------------------------------------------------------ plumbing

    @property
    def _db(self) -> db.Connection:
        if self._conn is None:
            raise StoreClosedError()
        return self._conn

    @contextlib.contextmanager
    def _errors(self) -> Iterator[None]:
        """Turn SQLite's operational failures into StoreIOError naming the file.

        IntegrityError and ProgrammingError are caller bugs and pass through unchanged.
        """
        try:
            yield
        except (db.IntegrityError, db.ProgrammingError, db.InterfaceError):
            raise
        except db.DatabaseError as exc:
            raise StoreIOError(self.path, str(exc)) from exc

    @contextlib.contextmanager
    def transaction(self) -> Iterator[None]:
        """Group several calls into one atomic, durable commit.

        Nested uses become savepoints: an inner failure rolls back only the inner part
        if the caller catches it. Every write method runs inside one of these.
        """
        db = self._db
        with self._errors():
            if self._depth == 0:
                # IMMEDIATE: take the write lock now rather than fail halfway on upgrade.
                db.execute("BEGIN IMMEDIATE")
            else:
                db.execute(f"SAVEPOINT sp{self._depth}")
            self._depth += 1
            try:
                yield
            except BaseException:
                self._depth -= 1
                self._forget_caches()
                if self._depth == 0:
                    db.execute("ROLLBACK")
                else:
                    db.execute(f"ROLLBACK TO sp{self._depth}")
                    db.execute(f"RELEASE sp{self._depth}")
                raise
            self._depth -= 1
            if self._depth == 0:
                try:
                    db.execute("COMMIT")
                except BaseException:
                    # A failed COMMIT (disk full, I/O error) may leave the transaction
                    # open; end it so the next call does not run inside a dead one.
                    self._forget_caches()
                    if db.in_transaction:
                        db.execute("ROLLBACK")
                    raise
            else:
                db.execute(f"RELEASE sp{self._depth}")

    def _forget_caches(self) -> None:
        """A rollback may undo anything the caches learned: start over."""
        self._heads.clear()
        self._no_gap.clear()
        self._rooms_seen.clear()

    @contextlib.contextmanager
    def _atomic(self) -> Iterator[None]:
        """Atomicity for one store method: its own transaction, or none inside a caller's.

        Inside an outer transaction, the caller's savepoint (or transaction) already makes
        the method all-or-nothing; a savepoint per method call would only cost time on the
        hot path.
        """
        if self._depth > 0:
            yield
            return
        with self.transaction():
            yield

    def _all(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        with self._errors():
            return self._db.execute(sql, params).fetchall()

    def _one(self, sql: str, params: Sequence[Any] = ()) -> Any:
        with self._errors():
            return self._db.execute(sql, params).fetchone()

    def _write(self, sql: str, params: Sequence[Any] = ()) -> int:
        """Run one statement in a transaction; return the number of rows changed."""
        with self._atomic():
            return self._db.execute(sql, params).rowcount

    def explain(self, sql: str, params: Sequence[Any] = ()) -> list[str]:
        """Return SQLite's query plan lines for ``sql`` (diagnostics and tests)."""
        rows = self._all("EXPLAIN QUERY PLAN " + sql, params)
        return [str(row[3]) for row in rows]

    def backup_to(self, dest: Path) -> None:
        """Write a consistent copy of the store into the new file ``dest`` (0600).

        Raises DamagedStoreError when the copy fails its check (``dest`` is removed).
        """
        copy_into(self._db, self.path, dest, self._key)

    def integrity_check(self) -> list[str]:
        """Run SQLite's full integrity check; ``["ok"]`` means the file is sound."""
        return [str(row[0]) for row in self._all("PRAGMA integrity_check")]

    # ------------------------------------------------------------ settings

    @overload
    def get_setting(self, key: str) -> str | None: ...
    @overload
    def get_setting(self, key: str, default: str) -> str: ...
    def get_setting(self, key: str, default: str | None = None) -> str | None:
        """Return the setting ``key``, or ``default`` when it was never set."""
        row = self._one("SELECT value FROM settings WHERE key = ?", (key,))
        return default if row is None else cast(str, row[0])

    def set_setting(self, key: str, value: str) -> None:
        """Store the setting ``key``."""
        self._write(
            "INSERT INTO settings (key, value) VALUES (?, ?)"
            " ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            (key, value),
        )

    def delete_setting(self, key: str) -> bool:
        """Forget the setting ``key``; return whether it existed."""
        return self._write("DELETE FROM settings WHERE key = ?", (key,)) > 0

    # --------------------------------------------------------------- peers

    def upsert_peer(
        self,
        peer_id: bytes,
        *,
        name: str | None = None,
        state: PeerState | None = None,
        last_seen: int | None = None,
    ) -> Peer:
        """Create the peer or change only the fields given; return the stored row.

        A new peer starts in state ``unknown``; ``last_seen`` never moves backwards.
        """
        seen = now_ms() if last_seen is None else last_seen
        with self._atomic():
            self._db.execute(
                """
                INSERT INTO peers (id, name, state, verified, first_seen, last_seen)
                VALUES (?, ?, coalesce(?, 'unknown'), 0, ?, ?)
                ON CONFLICT (id) DO UPDATE SET
                    name = coalesce(?, name),
                    state = coalesce(?, state),
                    last_seen = CASE
                        WHEN ? IS NULL THEN last_seen
                        ELSE max(coalesce(last_seen, ?), ?) END
                """,
                (
                    peer_id,
                    name,
                    state,
                    seen,
                    last_seen,
                    name,
                    state,
                    last_seen,
                    last_seen,
                    last_seen,
                ),
            )
            peer = self.get_peer(peer_id)
        assert peer is not None
        return peer

    def get_peer(self, peer_id: bytes) -> Peer | None:
        """Return the peer with this id, if known."""
        row = self._one(
            "SELECT id, name, state, verified, first_seen, last_seen FROM peers WHERE id = ?",
            (peer_id,),
        )
        return None if row is None else _peer(row)

    def list_peers(self, state: PeerState | None = None) -> list[Peer]:
        """Return every known peer (optionally only those in ``state``), by name then id.

        Matching an id prefix typed by the person is left to the caller, on this list.
        """
        sql = "SELECT id, name, state, verified, first_seen, last_seen FROM peers"
        params: tuple[Any, ...] = ()
        if state is not None:
            sql += " WHERE state = ?"
            params = (state,)
        return [_peer(r) for r in self._all(sql + " ORDER BY name COLLATE NOCASE, id", params)]

    def find_peers_by_name(self, name: str) -> list[Peer]:
        """Return peers whose display name equals ``name`` ignoring case (Unicode-aware).

        More than one result is normal: names are not identities.
        """
        # casefold in Python: SQLite's NOCASE only folds ASCII.
        wanted = name.casefold()
        return [p for p in self.list_peers() if p.name is not None and p.name.casefold() == wanted]

    def prune_strangers(self, keep: int) -> int:
        """Forget all but the ``keep`` most recently seen peers in state ``unknown``.

        Anyone on the LAN can complete a handshake; keeping every such peer forever would
        let them grow the store without bound. Contacts, requests and blocked peers are
        never pruned. Returns how many peers were forgotten (their addresses go too).
        """
        return self._write(
            "DELETE FROM peers WHERE id IN (SELECT id FROM peers WHERE state = 'unknown'"
            " ORDER BY last_seen DESC, id LIMIT -1 OFFSET ?)",
            (keep,),
        )

    def set_peer_state(self, peer_id: bytes, state: PeerState) -> bool:
        """Set a known peer's state; return False when the peer is unknown."""
        return self._write("UPDATE peers SET state = ? WHERE id = ?", (state, peer_id)) > 0

    def set_verified(self, peer_id: bytes, verified: bool = True) -> bool:
        """Record whether the safety number was checked; False when the peer is unknown."""
        return (
            self._write("UPDATE peers SET verified = ? WHERE id = ?", (int(verified), peer_id)) > 0
        )

    # ----------------------------------------------------------- addresses

    def add_address(
        self, peer_id: bytes | None, host: str, port: int, source: AddressSource
    ) -> int:
        """Remember an address (idempotent); return its id.

        ``peer_id`` None is for a manual address whose peer is not known yet; otherwise
        the peer must exist (upsert_peer first). Re-adding keeps the row; a ``manual``
        source sticks, because the person's explicit word outranks what mDNS says.
        """
        with self._atomic():
            row = self._db.execute(
                "SELECT id, source FROM addresses WHERE peer_id IS ? AND host = ? AND port = ?",
                (peer_id, host, port),
            ).fetchone()
            if row is None:
                cur = self._db.execute(
                    "INSERT INTO addresses (peer_id, host, port, source) VALUES (?, ?, ?, ?)",
                    (peer_id, host, port, source),
                )
                assert cur.lastrowid is not None
                return cur.lastrowid
            address_id, old_source = cast(tuple[int, str], tuple(row))
            if old_source not in ("manual", source):
                self._db.execute(
                    "UPDATE addresses SET source = ? WHERE id = ?", (source, address_id)
                )
            return address_id

    def addresses_for(self, peer_id: bytes) -> list[Address]:
        """Return the peer's addresses, most recently working first."""
        rows = self._all(
            "SELECT id, peer_id, host, port, source, last_ok FROM addresses WHERE peer_id = ?"
            " ORDER BY last_ok IS NULL, last_ok DESC, id",
            (peer_id,),
        )
        return [Address(*r) for r in rows]

    def manual_addresses(self) -> list[Address]:
        """Return every address the person typed in, with or without a known peer."""
        rows = self._all(
            "SELECT id, peer_id, host, port, source, last_ok FROM addresses"
            " WHERE source = 'manual' ORDER BY id"
        )
        return [Address(*r) for r in rows]

    def mark_address_ok(self, peer_id: bytes, host: str, port: int, at: int) -> int:
        """Record that ``peer_id`` answered at host:port at time ``at``; return the row id.

        An address not yet known for this peer is added with source ``last``
        (last-known address); the peer must exist.
        """
        with self._atomic():
            row = self._db.execute(
                "SELECT id FROM addresses WHERE peer_id = ? AND host = ? AND port = ?",
                (peer_id, host, port),
            ).fetchone()
            # An existing row keeps its source: mdns or manual says more than "last".
            address_id = int(row[0]) if row else self.add_address(peer_id, host, port, "last")
            self._db.execute(
                "UPDATE addresses SET last_ok = max(coalesce(last_ok, ?), ?) WHERE id = ?",
                (at, at, address_id),
            )
        return address_id

    def forget_address(self, host: str, port: int) -> int:
        """Forget host:port for every peer (and as a manual address); return rows removed."""
        return self._write("DELETE FROM addresses WHERE host = ? AND port = ?", (host, port))

    def remove_address(self, peer_id: bytes | None, host: str, port: int) -> bool:
        """Forget one address; return whether it existed."""
        return (
            self._write(
                "DELETE FROM addresses WHERE peer_id IS ? AND host = ? AND port = ?",
                (peer_id, host, port),
            )
            > 0
        )

    # --------------------------------------------------------------- rooms

    def ensure_room(
        self,
        room_id: bytes,
        kind: RoomKind,
        *,
        name: str | None = None,
        owner: bytes | None = None,
        created_at: int,
    ) -> bool:
        """Create the room unless it exists (then nothing changes); True if created."""
        return (
            self._write(
                "INSERT INTO rooms (id, kind, name, owner, created_at) VALUES (?, ?, ?, ?, ?)"
                " ON CONFLICT (id) DO NOTHING",
                (room_id, kind, name, owner, created_at),
            )
            > 0
        )

    def get_room(self, room_id: bytes) -> Room | None:
        """Return the room, if known."""
        row = self._one(f"SELECT {_ROOM_COLUMNS} FROM rooms WHERE id = ?", (room_id,))  # noqa: S608
        return None if row is None else _room(row)

    def list_rooms(self, unread_cap: int = UNREAD_CAP) -> list[RoomSummary]:
        """Return every room with its last message and unread count, most recent first.

        Unread counts stop at ``unread_cap`` (see unread_count).
        """
        summaries = []
        for row in self._all(f"SELECT {_ROOM_COLUMNS} FROM rooms"):  # noqa: S608
            room = _room(row)
            last = self._all(SQL_LATEST, (room.id, 1))
            summaries.append(
                RoomSummary(
                    room=room,
                    last_message=_message(last[0]) if last else None,
                    unread=self._unread(room.id, room.last_read_rowid, unread_cap),
                    archived=self._still_archived(room),
                )
            )

        def activity(s: RoomSummary) -> tuple[int, bytes]:
            last = s.last_message
            return (max(s.room.created_at, last.sent_at if last else 0), s.room.id)

        summaries.sort(key=activity, reverse=True)
        return summaries

    def _still_archived(self, room: Room) -> bool:
        if room.archived_rowid is None:
            return False
        newer = self._one(SQL_ARRIVED_AFTER, (room.id, room.archived_rowid))
        return newer is None

    def set_room_muted(self, room_id: bytes, muted: bool) -> bool:
        """Mute or unmute a room; False when the room is unknown."""
        return self._write("UPDATE rooms SET muted = ? WHERE id = ?", (int(muted), room_id)) > 0

    def set_room_archived(self, room_id: bytes, archived: bool) -> bool:
        """Archive a room (out of the room list until a message arrives) or bring it back.

        Archiving records the newest arrival, so a new message needs no write to bring
        the room back: ``list_rooms`` sees a message after the mark. False when unknown.
        """
        mark = self.last_arrival(room_id) if archived else None
        return self._write("UPDATE rooms SET archived_rowid = ? WHERE id = ?", (mark, room_id)) > 0

    def clear_room(self, room_id: bytes) -> int:
        """Delete a room's messages locally but remember how far it went; return how many.

        The room row and its heads stay: sync then does not fetch the history back from
        the other members, our next seq does not reuse one they hold, and
        ``cleared_lamport`` makes our next message sort after theirs. Reactions and
        offers of the deleted messages go too (offers whose download began keep their
        row, as in ``forget_room``). The search index follows by its triggers.
        """
        ids = "SELECT id FROM messages WHERE room = ?"
        with self._atomic():
            self._write(
                "UPDATE rooms SET cleared_lamport = max(cleared_lamport, ?) WHERE id = ?",
                (self.max_lamport(room_id), room_id),
            )
            self._write(f"DELETE FROM reactions WHERE message_id IN ({ids})", (room_id,))  # noqa: S608
            self._write("DELETE FROM transfers WHERE room = ? AND part IS NULL", (room_id,))
            return self._write("DELETE FROM messages WHERE room = ?", (room_id,))

    # -------------------------------------------------------------- search

    def search_messages(
        self,
        text: str,
        *,
        rooms: Sequence[bytes] | None = None,
        limit: int = 50,
        before_rowid: int | None = None,
    ) -> tuple[list[Message], int | None]:
        """Text messages holding every word of ``text`` (substrings, any case), newest first.

        ``rooms`` limits the search to those rooms; ``before_rowid`` pages back. Returns
        the messages and, when the search stopped early (a query of only 1- or
        2-character words spent its time budget, see :mod:`.search`), the ``before_rowid``
        that goes on with the older messages; else None. Raises SearchQueryError (a
        ValueError with a message for the person) for an unusable query.
        """
        query = parse_query(text)
        if self._has_search and self._all(SQL_SEARCH_QUEUED):
            with self.transaction():
                flush_search_index(self._db)  # every message queued so far is found
        with self._errors():
            found = search_rowids(
                self._db,
                query,
                rooms=None if rooms is None else tuple(rooms),
                limit=limit,
                before_rowid=before_rowid,
            )
        by_rowid: dict[int, Message] = {}
        for chunk in _chunks(list(found.rowids)):
            marks = ",".join("?" * len(chunk))
            rows = self._all(f"SELECT {_WITH_DEPS} WHERE messages.rowid IN ({marks})", chunk)
            by_rowid.update((int(r[0]), _message(r)) for r in rows)
        return [by_rowid[r] for r in found.rowids if r in by_rowid], found.resume_before

    def index_queued(self, budget: int | None) -> bool:
        """Index queued texts, at most ``budget`` characters (None: all); True if more
        wait. The node calls it in small steps in the background (store/search.py)."""
        if not self._has_search or not self._all(SQL_SEARCH_QUEUED):
            return False
        # No fsync for this commit: the index is derived, and WAL keeps the step atomic
        # (index rows and the queue rows it removes go together, or neither does); the
        # next durable commit makes it durable too. A step then costs CPU only.
        relaxed = self._depth == 0
        if relaxed:
            self._db.execute("PRAGMA synchronous = NORMAL")
        try:
            with self.transaction():
                flush_search_index(self._db, 1, budget)
        finally:
            if relaxed:
                self._db.execute("PRAGMA synchronous = FULL")
        return bool(self._all(SQL_SEARCH_QUEUED))

    def purge_search_residue(self) -> None:
        """Rewrite the search index so words of deleted messages are gone from it too."""
        with self._atomic(), self._errors():
            purge_search_residue(self._db)

    def last_arrival(self, room_id: bytes) -> int:
        """The arrival order (rowid) of the room's newest stored message; 0 when empty.

        Arrival, not display order: a peer chooses its Lamport times, not when we got it.
        """
        row = self._one("SELECT max(rowid) FROM messages WHERE room = ?", (room_id,))
        return int(row[0] or 0)

    def forget_room(self, room_id: bytes) -> int:
        """Delete a room with its messages, reactions and offers; return the messages removed.

        For a contact request that made way for a newer one, or that the person cleared:
        what a stranger wrote must not stay on disk once it is no longer listed. Offers
        whose download has begun (a part file exists) keep their transfer row, so the
        part file stays findable for clean-up.
        """
        ids = "SELECT id FROM messages WHERE room = ?"
        with self._atomic():
            self._write(f"DELETE FROM reactions WHERE message_id IN ({ids})", (room_id,))  # noqa: S608
            self._write("DELETE FROM transfers WHERE room = ? AND part IS NULL", (room_id,))
            removed = self._write("DELETE FROM messages WHERE room = ?", (room_id,))
            self._write("DELETE FROM rooms WHERE id = ?", (room_id,))
        self._forget_caches()  # heads and rooms seen: the room is gone
        return removed

    def set_room_name(self, room_id: bytes, name: str | None) -> bool:
        """Rename a room; False when the room is unknown."""
        return self._write("UPDATE rooms SET name = ? WHERE id = ?", (name, room_id)) > 0

    def set_room_topic(self, room_id: bytes, topic: str | None) -> bool:
        """Set a room's topic; False when the room is unknown."""
        return self._write("UPDATE rooms SET topic = ? WHERE id = ?", (topic, room_id)) > 0

    def mark_room_read(self, room_id: bytes, up_to_rowid: int) -> bool:
        """Record that the person has seen the room up to message ``up_to_rowid``.

        Never moves backwards (a stale call from an old screen must not resurrect
        unread messages); returns whether anything changed.
        """
        return (
            self._write(
                "UPDATE rooms SET last_read_rowid = ? WHERE id = ? AND last_read_rowid < ?",
                (up_to_rowid, room_id, up_to_rowid),
            )
            > 0
        )

    def unread_count(self, room_id: bytes, cap: int = UNREAD_CAP) -> int:
        """Messages in the room after its read mark, not counting our own, at most ``cap``.

        The cap bounds the work (it walks only unread rows) for rooms never opened.
        """
        row = self._one("SELECT last_read_rowid FROM rooms WHERE id = ?", (room_id,))
        return 0 if row is None else self._unread(room_id, int(row[0]), cap)

    def _unread(self, room_id: bytes, last_read_rowid: int, cap: int) -> int:
        params = (room_id, last_read_rowid, self.self_id, cap)
        return int(self._one(SQL_UNREAD, params)[0])

    # ------------------------------------------------------------- members

    def set_member(self, room_id: bytes, peer: bytes, role: MemberRole, state: MemberState) -> None:
        """Create or replace one peer's role and state in a room (the room must exist)."""
        self._write(
            "INSERT INTO members (room, peer, role, state) VALUES (?, ?, ?, ?)"
            " ON CONFLICT (room, peer) DO UPDATE SET role = excluded.role,"
            " state = excluded.state",
            (room_id, peer, role, state),
        )

    def get_member(self, room_id: bytes, peer: bytes) -> Member | None:
        """Return one peer's membership of a room, if any."""
        row = self._one(
            "SELECT room, peer, role, state FROM members WHERE room = ? AND peer = ?",
            (room_id, peer),
        )
        return None if row is None else Member(*row)

    def members(self, room_id: bytes) -> list[Member]:
        """Return every membership row of a room (all states), ordered by peer id."""
        rows = self._all(
            "SELECT room, peer, role, state FROM members WHERE room = ? ORDER BY peer",
            (room_id,),
        )
        return [Member(*r) for r in rows]

    # ------------------------------------------------------------ messages

    def add_messages(self, rows: Sequence[NewMessage]) -> list[bool]:
        """Store messages in ONE transaction; per row True if new, False if already held.

        A row is a duplicate when its id is stored (or appears earlier in the batch);
        a different id claiming an already used (room, author, seq) is also refused with
        False, first one wins. Duplicates never raise; an unknown room raises
        UnknownRoomError and nothing of the batch is stored.
        """
        return [m is not None for m in self.insert_messages(rows)]

    def insert_messages(self, rows: Sequence[NewMessage]) -> list[Message | None]:
        """Like :meth:`add_messages`, but returns each new row as stored (None: duplicate).

        Saves callers a second query to learn the rows' arrival order (``rowid``).
        """
        if not rows:
            return []
        result: list[Message | None] = []
        touched: dict[tuple[bytes, bytes], list[int]] = {}
        with self._atomic():
            db = self._db
            for room_id in {r.room for r in rows}:
                if room_id in self._rooms_seen:
                    continue
                if db.execute("SELECT 1 FROM rooms WHERE id = ?", (room_id,)).fetchone() is None:
                    raise UnknownRoomError(room_id)
                self._rooms_seen.add(room_id)
            for r in rows:
                cur = db.execute(
                    "INSERT OR IGNORE INTO messages (id, room, author, seq, lamport, sent_at,"
                    " received_at, kind, body, reply_to, sig, status)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        r.id,
                        r.room,
                        r.author,
                        r.seq,
                        r.lamport,
                        r.sent_at,
                        r.received_at,
                        r.kind,
                        r.body,
                        r.reply_to,
                        r.sig,
                        int(r.status),
                    ),
                )
                if cur.rowcount > 0:
                    assert cur.lastrowid is not None
                    if r.deps is not None:
                        db.execute(
                            "INSERT INTO envelope_deps (message_id, deps) VALUES (?, ?)",
                            (r.id, r.deps),
                        )
                    result.append(_stored(cur.lastrowid, r))
                    touched.setdefault((r.room, r.author), []).append(r.seq)
                else:
                    result.append(None)
            for (room_id, author), seqs in touched.items():
                self._advance_head(room_id, author, seqs)
        return result

    def _advance_head(self, room_id: bytes, author: bytes, inserted: Sequence[int]) -> None:
        """Move the (room, author) contiguous head forward over seqs now present.

        ``inserted`` are the seqs this call stored. When the pair is known to hold nothing
        above its head, those are the only candidates and no probing query is needed (the
        common case: an author's next message).
        """
        db = self._db
        key = (room_id, author)
        head = self._heads.get(key)
        if head is None:
            row = db.execute(
                "SELECT seq FROM heads WHERE room = ? AND author = ?", (room_id, author)
            ).fetchone()
            head = 0 if row is None else int(row[0])
        start = head
        if key in self._no_gap:
            present = set(inserted)
            while head + 1 in present:
                head += 1
            if any(seq > head for seq in present):
                self._no_gap.discard(key)
        else:
            # Each step is one unique-index probe; the total over time is one per message.
            while (
                db.execute(
                    "SELECT 1 FROM messages WHERE room = ? AND author = ? AND seq = ?",
                    (room_id, author, head + 1),
                ).fetchone()
                is not None
            ):
                head += 1
            beyond = db.execute(
                "SELECT 1 FROM messages WHERE room = ? AND author = ? AND seq > ? LIMIT 1",
                (room_id, author, head),
            ).fetchone()
            if beyond is None:
                self._no_gap.add(key)
        self._heads[key] = head
        if head != start:
            db.execute(
                "INSERT INTO heads (room, author, seq) VALUES (?, ?, ?)"
                " ON CONFLICT (room, author) DO UPDATE SET seq = excluded.seq",
                (room_id, author, head),
            )

    def skip_void(self, room_id: bytes, author: bytes, first: int, last: int) -> None:
        """Count seqs ``first..last`` of the author as held for the contiguous head.

        Group membership declares such a range void (written outside the author's
        membership, so nothing there ever counts): the head must pass over it, or
        anti-entropy would stall below it and re-send what lies beyond, forever.
        """
        with self._atomic():
            key = (room_id, author)
            row = self._db.execute(
                "SELECT seq FROM heads WHERE room = ? AND author = ?", (room_id, author)
            ).fetchone()
            head = 0 if row is None else int(row[0])
            if not first <= head + 1 <= last:
                return
            self._heads[key] = last
            self._no_gap.discard(key)
            self._db.execute(
                "INSERT INTO heads (room, author, seq) VALUES (?, ?, ?)"
                " ON CONFLICT (room, author) DO UPDATE SET seq = excluded.seq",
                (room_id, author, last),
            )
            self._advance_head(room_id, author, [])

    def delete_seq_range(self, room_id: bytes, author: bytes, first: int, last: int) -> list[bytes]:
        """Delete the author's messages with ``first <= seq <= last`` (not system ones).

        Group membership uses it when a removal shows that an author's later messages
        were written outside their membership: they must not stay anywhere. The author's
        contiguous head falls back below the gap. Returns the ids deleted.
        """
        with self._atomic():
            rows = self._db.execute(
                "DELETE FROM messages WHERE room = ? AND author = ? AND seq BETWEEN ? AND ?"
                " AND kind != 'system' RETURNING id",
                (room_id, author, first, last),
            ).fetchall()
            if not rows:
                return []
            key = (room_id, author)
            self._no_gap.discard(key)
            self._heads.pop(key, None)
            self._db.execute(
                "UPDATE heads SET seq = ? WHERE room = ? AND author = ? AND seq >= ?",
                (first - 1, room_id, author, first),
            )
            return [bytes(r[0]) for r in rows]

    def message_for_client(self, client_id: str) -> Message | None:
        """The message a send with this client id wrote, if any (idempotent sends)."""
        row = self._one(
            f"SELECT {_WITH_DEPS} WHERE id = (SELECT message_id FROM client_sends"  # noqa: S608
            " WHERE client_id = ?)",
            (client_id,),
        )
        return None if row is None else _message(row)

    def record_client_send(self, client_id: str, message_id: bytes, now: int) -> None:
        """Remember which message a send with ``client_id`` wrote (same transaction).

        Ids older than a week are forgotten: a retry comes within moments of a crash.
        """
        with self._atomic():
            self._db.execute(
                "INSERT INTO client_sends (client_id, message_id, created_at) VALUES (?, ?, ?)",
                (client_id, message_id, now),
            )
            self._db.execute(
                "DELETE FROM client_sends WHERE created_at < ?", (now - CLIENT_ID_TTL_MS,)
            )

    def delete_room(self, room_id: bytes) -> None:
        """Forget a room and everything in it (an invitation that expired or was refused)."""
        with self._atomic():
            self._db.execute("DELETE FROM rooms WHERE id = ?", (room_id,))
            self._rooms_seen.discard(room_id)
            for key in [k for k in self._heads if k[0] == room_id]:
                self._heads.pop(key, None)
                self._no_gap.discard(key)

    def messages_of_kind(self, room_id: bytes, kind: str) -> list[Message]:
        """Every message of one kind in a room (e.g. the membership log), arrival order.

        Walks the room's arrival index (which carries the kind), so it touches only the
        matching rows; meant for rare kinds such as ``system``.
        """
        rows = self._all(
            "SELECT messages.rowid, id, room, author, seq, lamport, sent_at, received_at, kind,"
            " body, reply_to, sig, status, envelope_deps.deps"
            " FROM messages INDEXED BY messages_arrival"
            " LEFT JOIN envelope_deps ON envelope_deps.message_id = messages.id"
            " WHERE room = ? AND kind = ? ORDER BY messages.rowid",
            (room_id, kind),
        )
        return [_message(r) for r in rows]

    def room_ids(self, kind: RoomKind) -> list[bytes]:
        """Ids of every room of this kind."""
        return [bytes(r[0]) for r in self._all("SELECT id FROM rooms WHERE kind = ?", (kind,))]

    def held_ids(self, message_ids: Sequence[bytes]) -> set[bytes]:
        """Which of ``message_ids`` are stored (one indexed look-up per chunk of ids)."""
        found: set[bytes] = set()
        for chunk in _chunks(list(message_ids)):
            marks = ",".join("?" * len(chunk))
            rows = self._all(f"SELECT id FROM messages WHERE id IN ({marks})", chunk)  # noqa: S608
            found.update(bytes(r[0]) for r in rows)
        return found

    def get_messages(self, message_ids: Sequence[bytes]) -> list[Message]:
        """The stored messages among ``message_ids`` (unknown ids are skipped), any order."""
        found: list[Message] = []
        for chunk in _chunks(list(message_ids)):
            marks = ",".join("?" * len(chunk))
            rows = self._all(
                f"SELECT {_WITH_DEPS} WHERE id IN ({marks})",
                chunk,
            )
            found.extend(_message(r) for r in rows)
        return found

    def get_message(self, message_id: bytes) -> Message | None:
        """Return the message with this id, if stored."""
        row = self._one(
            f"SELECT {_WITH_DEPS} WHERE id = ?",
            (message_id,),
        )
        return None if row is None else _message(row)

    def latest_messages(
        self, room_id: bytes, limit: int = 200, *, shown_only: bool = False
    ) -> list[Message]:
        """Return the room's last ``limit`` messages in ascending display order.

        Display order is (lamport, author, id), the same on every member's screen.
        ``shown_only`` skips reactions, which are not shown as messages.
        """
        rows = self._all(SQL_LATEST_SHOWN if shown_only else SQL_LATEST, (room_id, limit))
        return [_message(r) for r in reversed(rows)]

    def messages_before(
        self, room_id: bytes, cursor: Cursor, limit: int = 200, *, shown_only: bool = False
    ) -> list[Message]:
        """Return up to ``limit`` messages just older than ``cursor``, ascending.

        ``cursor`` is the oldest shown message's ``Message.cursor``.
        """
        lamport, author, message_id = cursor
        sql = SQL_BEFORE_SHOWN if shown_only else SQL_BEFORE
        rows = self._all(sql, (room_id, lamport, author, message_id, limit))
        return [_message(r) for r in reversed(rows)]

    def shown_messages_after(
        self, room_id: bytes, cursor: Cursor | None, limit: int = 200
    ) -> list[Message]:
        """Up to ``limit`` messages just after ``cursor`` (from the start when None),
        ascending, reactions skipped: reads a whole chat forward a page at a time."""
        lamport, author, message_id = cursor or (-1, b"", b"")
        rows = self._all(SQL_AFTER_SHOWN, (room_id, lamport, author, message_id, limit))
        return [_message(r) for r in rows]

    def next_seq(self, room_id: bytes, author: bytes) -> int:
        """The seq ``author``'s next message in the room should carry (1 for the first)."""
        row = self._one(SQL_NEXT_SEQ, (room_id, author))
        return int(row[0]) + 1

    def max_lamport(self, room_id: bytes) -> int:
        """Highest Lamport clock seen in the room (0 when empty)."""
        row = self._one(SQL_MAX_LAMPORT, (room_id,))
        return int(row[0])

    def heads(self, room_id: bytes) -> dict[bytes, int]:
        """Per author, the highest seq such that seqs 1..that are all stored.

        Authors whose seq 1 is missing are absent. Anti-entropy compares these.
        """
        return {bytes(a): int(s) for a, s in self._all(SQL_HEADS, (room_id,))}

    def messages_by_seq(
        self, room_id: bytes, author: bytes, start: int, count: int
    ) -> list[Message]:
        """Return the author's stored messages with start <= seq < start + count, by seq."""
        rows = self._all(SQL_BY_SEQ, (room_id, author, start, start + count))
        return [_message(r) for r in rows]

    def message_count(self, room_id: bytes) -> int:
        """Number of messages stored for the room (walks its index: O(room size))."""
        return int(self._one("SELECT count(*) FROM messages WHERE room = ?", (room_id,))[0])

    def count_by_author(self, room_id: bytes, author: bytes) -> int:
        """How many messages of ``author`` the room holds (uses the (room, author, seq) key)."""
        row = self._one(
            "SELECT count(*) FROM messages WHERE room = ? AND author = ?", (room_id, author)
        )
        return int(row[0])

    def incoming_not_read(self, room_id: bytes, self_id: bytes, limit: int = 5000) -> list[Message]:
        """Others' messages after the room's read marker that are not marked read yet."""
        room = self.get_room(room_id)
        if room is None:
            return []
        rows = self._all(
            f"SELECT {MESSAGE_COLUMNS} FROM messages"  # noqa: S608
            " WHERE room = ? AND rowid > ? AND author != ? AND status < ?"
            " AND kind NOT IN ('reaction', 'edit', 'delete', 'removed')"
            " ORDER BY rowid LIMIT ?",
            (room_id, room.last_read_rowid, self_id, int(MessageStatus.READ), limit),
        )
        return [_message(r) for r in rows]

    def set_status(self, message_ids: Iterable[bytes], status: int) -> list[bytes]:
        """Raise the status of these messages to ``status``; return the ids that changed.

        A status never goes down: a late ``sent`` must not hide an earlier ``read``.
        """
        changed = []
        with self._atomic():
            for mid in message_ids:
                cur = self._db.execute(
                    "UPDATE messages SET status = ? WHERE id = ? AND status < ?",
                    (int(status), mid, int(status)),
                )
                if cur.rowcount > 0:
                    changed.append(mid)
        return changed

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
            for chunk in _chunks(list(message_ids)):
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
            for chunk in _chunks(ids):
                # Only "?" placeholders are formatted in; the values stay bound.
                sql = template.format(",".join("?" * len(chunk)))
                changed += self._db.execute(sql, tuple(chunk)).rowcount
        return changed

    # ----------------------------------------------------------- reactions

    def add_reaction(self, message_id: bytes, author: bytes, emoji: str) -> bool:
        """Record ``author``'s ``emoji`` on a message; True if it was new."""
        return (
            self._write(
                "INSERT OR IGNORE INTO reactions (message_id, author, emoji) VALUES (?, ?, ?)",
                (message_id, author, emoji),
            )
            > 0
        )

    def remove_reaction(self, message_id: bytes, author: bytes, emoji: str) -> bool:
        """Withdraw a reaction; True if it existed."""
        return (
            self._write(
                "DELETE FROM reactions WHERE message_id = ? AND author = ? AND emoji = ?",
                (message_id, author, emoji),
            )
            > 0
        )

    def reactions_for(self, message_ids: Iterable[bytes]) -> dict[bytes, list[Reaction]]:
        """Reactions on each of these messages (absent key: none), for a screenful at once."""
        ids = list(message_ids)
        found: dict[bytes, list[Reaction]] = {}
        for chunk in _chunks(ids):
            # Only "?" placeholders are formatted in; the ids stay bound parameters.
            sql = _SQL_REACTIONS_IN.format(",".join("?" * len(chunk)))
            rows = self._all(sql, tuple(chunk))
            for r in rows:
                reaction = Reaction(*r)
                found.setdefault(reaction.message_id, []).append(reaction)
        return found


# ---------------------------------------------------------------- opening helpers


def _acquire_lock(path: Path) -> int:
    """Take the profile's exclusive lock, held until the Store closes.

    flock dies with the process, so a crash (even kill -9) never leaves a stale lock.
    """
    lock_path = path.with_name(path.name + ".lock")
    try:
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    except OSError as exc:
        raise StoreError(f"cannot open lock file {lock_path}: {exc.strerror}") from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise StoreLockedError(path) from None
    except OSError as exc:
        os.close(fd)
        raise StoreError(f"cannot lock {lock_path}: {exc.strerror}") from None
    return fd


def _create_private(path: Path) -> None:
    """Create an empty database file readable only by its owner, if none exists.

    SQLite would create it with the umask's mode; its -wal and -shm files copy the
    main file's mode, so getting this one right covers them all.
    """
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    except FileExistsError:
        return
    except OSError as exc:
        raise StoreError(f"cannot create {path}: {exc.strerror}") from None
    os.close(fd)


def _settle_key(
    path: Path, known_version: int, key: bytes | None, old_keys: Sequence[bytes]
) -> None:
    """Bring the file to ``key`` (see Store.open); a file that is not ours stays untouched."""
    encryption.discard_leftovers(path)
    candidates = [k for k in (key, *old_keys) if k is not None]
    try:
        current = encryption.key_in_use(path, candidates)
    except encryption.NoKeyOpensError:
        if not candidates:
            raise CorruptStoreError(
                path, "not an SQLite database, or encrypted and no passphrase was given"
            ) from None
        raise StoreKeyError(path, had_key=True) from None
    except db.OperationalError as exc:
        raise StoreLockedError(path, str(exc)) from None
    if current == key or not encryption.read_header(path):
        return  # already right, or a new empty store (created with ``key`` on connect)
    _inspect(path, known_version, current)  # never rewrite a foreign or newer file
    try:
        encryption.rekey(path, current, key)
    except db.OperationalError as exc:
        if "locked" in str(exc) or "busy" in str(exc):
            raise StoreLockedError(path, str(exc)) from None
        raise StoreIOError(path, f"cannot change the store's key: {exc}") from None
    except (db.DatabaseError, OSError) as exc:
        raise StoreIOError(path, f"cannot change the store's key: {exc}") from None


def _inspect(path: Path, known_version: int, key: bytes | None = None) -> None:
    """Decide, without writing a byte, whether ``path`` may be opened as our store."""
    try:
        with path.open("rb") as f:
            header = f.read(100)
    except OSError as exc:
        raise StoreError(f"cannot read {path}: {exc.strerror}") from None
    wal = path.with_name(path.name + "-wal")
    wal_size = wal.stat().st_size if wal.exists() else 0
    if not header and not wal_size:
        return  # empty: a new store
    # An empty main file with a -wal beside it is a store that crashed before its first
    # checkpoint: let SQLite read it through the WAL below rather than judge the header.
    if key is None and header and (len(header) < 100 or not header.startswith(_SQLITE_HEADER)):
        raise CorruptStoreError(path, "not an SQLite database")
    # Read-only connection: a foreign or damaged file must not even get a journal replay.
    # Without a -wal file everything is in the main file, so "immutable" can read it
    # exactly and SQLite creates no -shm/-wal beside somebody else's file.
    query = "?mode=ro" if wal.exists() else "?mode=ro&immutable=1"
    uri = path.resolve().as_uri() + query
    try:
        conn = db.connect(uri, key, uri=True)
    except db.Error as exc:
        raise CorruptStoreError(path, str(exc)) from None
    try:
        conn.execute(f"PRAGMA busy_timeout = {_BUSY_TIMEOUT_MS}")
        app_id = int(conn.execute("PRAGMA application_id").fetchone()[0])
        version = int(conn.execute("PRAGMA user_version").fetchone()[0])
        tables = int(conn.execute("SELECT count(*) FROM sqlite_master").fetchone()[0])
    except db.OperationalError as exc:
        if "locked" in str(exc) or "busy" in str(exc):
            raise StoreLockedError(path, str(exc)) from None
        raise CorruptStoreError(path, str(exc)) from None
    except db.DatabaseError as exc:
        raise CorruptStoreError(path, str(exc)) from None
    finally:
        conn.close()
    if app_id != APPLICATION_ID and (app_id != 0 or tables > 0):
        raise ForeignDatabaseError(path, app_id)
    if version > known_version:
        raise NewerSchemaError(path, version, known_version)


def _require_existing(path: Path) -> None:
    """Refuse a missing or empty file where the profile's store should be."""
    wal = path.with_name(path.name + "-wal")
    wal_size = wal.stat().st_size if wal.exists() else 0
    if not path.exists():
        raise MissingStoreError(path, "missing")
    if path.stat().st_size == 0 and wal_size == 0:
        raise MissingStoreError(path, "empty (0 bytes)")


def _set_clean_close(conn: db.Connection, value: str) -> None:
    conn.execute(
        "INSERT INTO settings (key, value) VALUES (?, ?)"
        " ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        (health.CLEAN_CLOSE_SETTING, value),
    )


def _check_health(
    path: Path, conn: db.Connection, migrations: Sequence[Migration], key: bytes | None
) -> tuple[db.Connection, Path | None]:
    """Run the start-up check; return the connection to use and where a damaged file went.

    A new (empty) store has nothing to check. Damage that a lossless copy of every table
    fixes (indexes, free pages) is rebuilt; anything else raises DamagedStoreError.
    """
    if int(conn.execute("PRAGMA user_version").fetchone()[0]) == 0:
        return conn, None
    full = not health.closed_cleanly(conn)
    found = health.problems(conn, full=full)
    if not found:
        with contextlib.suppress(db.OperationalError):  # read-only media: no mark
            _set_clean_close(conn, "0")
        return conn, None
    conn.close()
    fresh = path.with_name(path.name + ".rebuild")
    try:
        report = recovery.rebuild_into(path, fresh, migrations, key)
    except (db.DatabaseError, OSError) as exc:
        recovery.remove_store_files(fresh)
        detail = f"{health.summary(found)}; rebuilding failed: {exc}"
        raise DamagedStoreError(path, detail) from None
    if not report.lossless:
        recovery.remove_store_files(fresh)
        raise DamagedStoreError(path, health.summary(found))
    aside = recovery.move_aside(path)
    os.replace(fresh, path)
    if aside is None:  # cannot happen: the file was open a moment ago
        raise StoreIOError(path, "the store vanished while it was being rebuilt")
    conn = _connect(path, key)
    still = health.problems(conn, full=True)
    if still:
        conn.close()
        raise DamagedStoreError(path, f"still damaged after rebuilding: {health.summary(still)}")
    _set_clean_close(conn, "0")
    return conn, aside


def _connect(path: Path, key: bytes | None) -> db.Connection:
    """Open the read-write connection with the pragmas the store relies on."""
    # isolation_level=None: no implicit BEGINs; transaction() owns every boundary.
    # check_same_thread=False: StoreWorker runs quick writes on the loop thread, never
    # while its own thread is using the connection (calls never overlap).
    conn = db.connect(path, key, check_same_thread=False)
    try:
        conn.execute(f"PRAGMA busy_timeout = {_BUSY_TIMEOUT_MS}")
        mode = str(conn.execute("PRAGMA journal_mode = WAL").fetchone()[0])
        if mode.lower() != "wal":
            raise StoreIOError(path, f"cannot switch to WAL journal (got {mode})")
        # FULL: a commit is on disk before it returns, which a delivered receipt promises.
        conn.execute("PRAGMA synchronous = FULL")
        conn.execute("PRAGMA foreign_keys = ON")
        # Deleted and expired messages: their bytes are overwritten in the pages they
        # leave (FAST: only where that costs no extra I/O, so free pages may keep some).
        conn.execute("PRAGMA secure_delete = FAST")
        if key is not None:
            # Every page read from the file is decrypted and its HMAC checked; a larger
            # page cache keeps the working set (recent history, indexes) decrypted.
            conn.execute(f"PRAGMA cache_size = -{_ENCRYPTED_CACHE_KIB}")
    except db.OperationalError as exc:
        conn.close()
        if "locked" in str(exc) or "busy" in str(exc):
            raise StoreLockedError(path, str(exc)) from None
        raise StoreIOError(path, str(exc)) from None
    except BaseException:
        conn.close()
        raise
    return conn


__all__ = ["Store", "now_ms"]
