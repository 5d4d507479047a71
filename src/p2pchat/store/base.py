"""The store's base: opening and closing, transactions and the SQL plumbing, settings.

The table modules (peers.py, rooms.py, messages.py, delivery.py) add the queries of
one table family each; store.py puts them together as :class:`Store`.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, Self, cast, overload

from . import db, encryption, health
from .backup import copy_into
from .errors import CorruptStoreError, StoreClosedError, StoreError, StoreIOError
from .models import RoomKind
from .opening import (
    acquire_lock,
    check_health,
    connect,
    create_private,
    inspect_file,
    open_failure,
    require_existing,
    set_clean_close,
    settle_key,
)
from .schema import MIGRATIONS, Migration, migrate


class StoreBase:
    """What every table family of :class:`~p2pchat.store.store.Store` stands on: the open
    file, its transactions (``transaction``, ``_atomic``) and query helpers, settings."""

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
        # The (room, author) pairs known to hold no seq above their head: appending the
        # next seq then needs no probing queries. Like every cache here, dropped on any
        # rollback, so none ever disagrees with the file.
        self._no_gap: set[tuple[bytes, bytes]] = set()
        # Every stored head of a room, for rooms read once (``heads``).
        self._room_heads: dict[bytes, dict[bytes, int]] = {}
        #: Rooms read to hold no disappearing-message timer (see changes.has_timers).
        self.untimed_rooms: set[bytes] = set()
        # The kind of rooms known to exist (see ``room_kind``): dropped when a room is
        # deleted, and on rollback too.
        self._room_kinds: dict[bytes, RoomKind] = {}
        # False only for a store opened with an older schema (tests of migrations).
        self._has_search = (
            conn.execute(
                "SELECT 1 FROM sqlite_master WHERE name = 'message_search_pending'"
            ).fetchone()
            is not None
        )
        #: Where the damaged file went when the start-up check rebuilt the store.
        self.rebuilt_from: Path | None = None
        #: Which start-up check this open ran (none after a clean close, file unchanged).
        self.startup_check = health.Check.NONE

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
    ) -> Self:
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
        lock_fd = acquire_lock(path)
        rebuilt_from: Path | None = None
        try:
            if not create:
                require_existing(path)
            create_private(path)
            if not settle_key(path, len(migrations), key, old_keys):
                inspect_file(path, len(migrations), key)
            conn = connect(path, key)
            try:
                conn, rebuilt_from, check = check_health(path, conn, migrations, key)
            except db.OperationalError as exc:
                conn.close()
                raise open_failure(path, exc) from None
            except BaseException:
                conn.close()
                raise
            try:
                migrate(conn, migrations)
            except db.OperationalError as exc:
                conn.close()
                raise open_failure(path, exc) from None
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
        store.startup_check = check
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
            self._conn = connect(self.path, self._key)

    def close(self) -> None:
        """Close the database and release the profile lock. Safe to call twice."""
        conn, self._conn = self._conn, None
        if conn is None:
            return
        clean = False
        try:
            # Outside any transaction only: a close in the middle of one is not clean.
            if not conn.in_transaction:
                set_clean_close(conn, "1")
                clean = True
            # Cheap; keeps planner statistics fresh for the next start.
            conn.execute("PRAGMA optimize")
        except db.Error:
            pass
        finally:
            try:
                conn.close()  # the last connection: folds the WAL into the file
                if clean:  # still under the lock, so nothing of ours writes after it
                    health.record_clean_close(self.path)
            finally:
                # The lock file itself stays: deleting it would race with the next opener.
                os.close(self._lock_fd)

    def __enter__(self) -> Self:
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
    def transaction(self, *, durable: bool = True) -> Iterator[None]:
        """Group several calls into one atomic, durable commit.

        Nested uses become savepoints: an inner failure rolls back only the inner part
        if the caller catches it. Every write method runs inside one of these.

        ``durable=False`` (outermost only; nested uses follow their outer transaction)
        commits without an fsync: WAL keeps it atomic and a killed process keeps it,
        only a power cut or an OS crash may lose it. For what can be had again: a derived
        index, or what a peer will say again (a delivered receipt: the message it
        acknowledges stays in the outbox, is offered again and acknowledged again).
        """
        if not durable and self._depth == 0:
            with self._errors():
                self._db.execute("PRAGMA synchronous = NORMAL")
            try:
                with self.transaction():
                    yield
            except BaseException:
                # The error that brought us here is the one to report; SQLite refuses
                # the pragma inside a transaction that a failed rollback left open.
                with contextlib.suppress(db.DatabaseError):
                    if self._db.in_transaction:
                        self._db.execute("ROLLBACK")
                    self._db.execute("PRAGMA synchronous = FULL")
                raise
            with self._errors():
                self._db.execute("PRAGMA synchronous = FULL")
            return
        conn = self._db
        with self._errors():
            if self._depth == 0:
                # IMMEDIATE: take the write lock now rather than fail halfway on upgrade.
                conn.execute("BEGIN IMMEDIATE")
            else:
                conn.execute(f"SAVEPOINT sp{self._depth}")
            self._depth += 1
            try:
                yield
            except BaseException:
                self._depth -= 1
                self._forget_caches()
                if self._depth == 0:
                    conn.execute("ROLLBACK")
                else:
                    conn.execute(f"ROLLBACK TO sp{self._depth}")
                    conn.execute(f"RELEASE sp{self._depth}")
                raise
            self._depth -= 1
            if self._depth == 0:
                try:
                    conn.execute("COMMIT")
                except BaseException:
                    # A failed COMMIT (disk full, I/O error) may leave the transaction
                    # open; end it so the next call does not run inside a dead one.
                    self._forget_caches()
                    if conn.in_transaction:
                        conn.execute("ROLLBACK")
                    raise
            else:
                conn.execute(f"RELEASE sp{self._depth}")

    def _forget_caches(self) -> None:
        """A rollback may undo anything the caches learned: start over."""
        self._no_gap.clear()
        self._room_heads.clear()
        self.untimed_rooms.clear()
        self._room_kinds.clear()

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

    # The plumbing under public names, for the store package's table modules
    # (changes.py, stickers.py, transfers.py, onions.py), which take a Store.
    connection = _db
    sql_errors = _errors
    atomic = _atomic
    rows = _all
    row = _one
    change = _write

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
