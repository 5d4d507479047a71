"""Opening a store file safely: the profile lock, private creation, the key, header checks.

Never overwrites or deletes a file that is not ours, never lets two p2pchat processes
share one; in every error case an existing file is left byte for byte as it was.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Sequence
from pathlib import Path

from . import db, encryption, health, recovery
from .errors import (
    CorruptStoreError,
    DamagedStoreError,
    ForeignDatabaseError,
    MissingStoreError,
    NewerSchemaError,
    StoreError,
    StoreIOError,
    StoreKeyError,
    StoreLockedError,
)
from .queries import BUSY_TIMEOUT_MS, ENCRYPTED_CACHE_KIB, SQLITE_HEADER
from .schema import APPLICATION_ID, Migration


def is_busy(exc: Exception) -> bool:
    """Whether SQLite's error means another connection holds the file (not damage)."""
    return "locked" in str(exc) or "busy" in str(exc)


def open_failure(path: Path, exc: Exception) -> StoreError:
    """The error to raise for an operational failure while opening: locked, or I/O."""
    if is_busy(exc):
        return StoreLockedError(path, str(exc))
    return StoreIOError(path, str(exc))


def acquire_lock(path: Path) -> int:
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


def create_private(path: Path) -> None:
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


def settle_key(
    path: Path, known_version: int, key: bytes | None, old_keys: Sequence[bytes]
) -> bool:
    """Bring the file to ``key`` (see Store.open); a file that is not ours stays untouched.

    True when the file, already under ``key``, was inspected (:func:`inspect_file`'s
    checks) on the connection that tried the key: the caller need not inspect it again.
    """
    encryption.discard_leftovers(path)
    candidates = [k for k in (key, *old_keys) if k is not None]

    def inspect(conn: db.Connection) -> None:
        check_identity(path, conn, known_version)

    try:
        current, legacy_cipher, inspected = encryption.key_in_use(path, candidates, inspect)
    except encryption.NoKeyOpensError:
        if not candidates:
            raise CorruptStoreError(
                path, "not an SQLite database, or encrypted and no passphrase was given"
            ) from None
        raise StoreKeyError(path, had_key=True) from None
    except db.OperationalError as exc:
        raise StoreLockedError(path, str(exc)) from None
    if not encryption.read_header(path):
        return False  # a new empty store (created with ``key`` on connect)
    if current == key and not legacy_cipher:
        return inspected  # already right
    # Another key, or this key in the page format of stores made before db.CIPHER
    # (SQLCipher 4, db.LEGACY_CIPHERS): the same crash-safe copy moves either.
    if not inspected:
        inspect_file(path, known_version, current)  # never rewrite a foreign or newer file
    try:
        encryption.rekey(path, current, key)
    except db.OperationalError as exc:
        if is_busy(exc):
            raise StoreLockedError(path, str(exc)) from None
        raise StoreIOError(path, f"cannot change the store's key: {exc}") from None
    except (db.DatabaseError, OSError) as exc:
        raise StoreIOError(path, f"cannot change the store's key: {exc}") from None
    return False  # rewritten: the caller inspects the new file


def inspect_file(path: Path, known_version: int, key: bytes | None = None) -> None:
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
    if key is None and header and (len(header) < 100 or not header.startswith(SQLITE_HEADER)):
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
        check_identity(path, conn, known_version)
    finally:
        conn.close()


def check_identity(path: Path, conn: db.Connection, known_version: int) -> None:
    """Through a read-only connection to ``path``: refuse a file that is not our store
    (another program's database) or that a newer p2pchat wrote."""
    try:
        conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        app_id = int(conn.execute("PRAGMA application_id").fetchone()[0])
        version = int(conn.execute("PRAGMA user_version").fetchone()[0])
        tables = int(conn.execute("SELECT count(*) FROM sqlite_master").fetchone()[0])
    except db.OperationalError as exc:
        if is_busy(exc):
            raise StoreLockedError(path, str(exc)) from None
        raise CorruptStoreError(path, str(exc)) from None
    except db.DatabaseError as exc:
        raise CorruptStoreError(path, str(exc)) from None
    if app_id != APPLICATION_ID and (app_id != 0 or tables > 0):
        raise ForeignDatabaseError(path, app_id)
    if version > known_version:
        raise NewerSchemaError(path, version, known_version)


def require_existing(path: Path) -> None:
    """Refuse a missing or empty file where the profile's store should be."""
    wal = path.with_name(path.name + "-wal")
    wal_size = wal.stat().st_size if wal.exists() else 0
    if not path.exists():
        raise MissingStoreError(path, "missing")
    if path.stat().st_size == 0 and wal_size == 0:
        raise MissingStoreError(path, "empty (0 bytes)")


def set_clean_close(conn: db.Connection, value: str) -> None:
    conn.execute(
        "INSERT INTO settings (key, value) VALUES (?, ?)"
        " ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        (health.CLEAN_CLOSE_SETTING, value),
    )


def check_health(
    path: Path, conn: db.Connection, migrations: Sequence[Migration], key: bytes | None
) -> tuple[db.Connection, Path | None, health.Check]:
    """Run the start-up check; return the connection to use, where a damaged file went
    and which check ran (:func:`health.which_check`).

    Called on the connection just opened, before anything of this session writes.
    A new (empty) store has nothing to check. Damage that a lossless copy of every table
    fixes (indexes, free pages) is rebuilt; anything else raises DamagedStoreError.
    """
    # Nothing has written to the file yet (opening reads only; a re-key that replaced it
    # made a new file, which the fingerprint then does not match).
    unchanged = health.unchanged_since_clean_close(path)
    health.forget_clean_close(path)
    if int(conn.execute("PRAGMA user_version").fetchone()[0]) == 0:
        return conn, None, health.Check.NONE
    check = health.which_check(conn, unchanged)
    found = (
        [] if check is health.Check.NONE else health.problems(conn, full=check is health.Check.FULL)
    )
    if not found:
        with contextlib.suppress(db.OperationalError):  # read-only media: no mark
            set_clean_close(conn, "0")
        return conn, None, check
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
    conn = connect(path, key)
    still = health.problems(conn, full=True)
    if still:
        conn.close()
        raise DamagedStoreError(path, f"still damaged after rebuilding: {health.summary(still)}")
    set_clean_close(conn, "0")
    return conn, aside, check


def connect(path: Path, key: bytes | None) -> db.Connection:
    """Open the read-write connection with the pragmas the store relies on."""
    # isolation_level=None: no implicit BEGINs; transaction() owns every boundary.
    # check_same_thread=False: StoreWorker runs quick writes on the loop thread, never
    # while its own thread is using the connection (calls never overlap).
    conn = db.connect(path, key, check_same_thread=False)
    try:
        conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
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
            # Every page read from the file is decrypted and its tag checked; a larger
            # page cache keeps the working set (recent history, indexes) decrypted.
            conn.execute(f"PRAGMA cache_size = -{ENCRYPTED_CACHE_KIB}")
    except db.OperationalError as exc:
        conn.close()
        raise open_failure(path, exc) from None
    except BaseException:
        conn.close()
        raise
    return conn
