"""The one SQLite driver of the store: SQLCipher through ``sqlcipher3``, keyed or plain.

Every connection of p2pchat goes through :func:`connect`. ``sqlcipher3`` is the
standard library's sqlite3 module built against SQLCipher 4 (same DB-API), so a
connection given no key is an ordinary SQLite database, byte for byte, and one given a
key encrypts every page of the file and of its WAL (and so the FTS index tables inside
it). One driver for both cases means one code path: a store with a passphrase runs the
very same SQL as one without.

Its exceptions are ``sqlcipher3.dbapi2`` classes, which are NOT subclasses of the
standard ``sqlite3`` ones: everything that may see a store connection catches the
classes exported here (``db.DatabaseError``, ...), never ``sqlite3.*``. For the type
checker the module is the standard sqlite3 (sqlcipher3 ships no type hints and its API
is the same), so migrations and helpers keep their ``sqlite3.Connection`` annotations.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    import sqlite3 as driver
else:
    from sqlcipher3 import dbapi2 as driver

Connection = driver.Connection
Error = driver.Error
DatabaseError = driver.DatabaseError
OperationalError = driver.OperationalError
IntegrityError = driver.IntegrityError
ProgrammingError = driver.ProgrammingError
InterfaceError = driver.InterfaceError

#: Bytes in a raw SQLCipher key (AES-256).
KEY_BYTES: Final = 32
#: The MAC of every page of an encrypted store. HMAC-SHA256: on CPUs with SHA extensions
#: (docs/performance.md says which) it runs at about twice HMAC-SHA512's speed, and every
#: page written or read from the file pays it; a 256-bit tag keeps forgery out of reach
#: all the same. Set as SQLCipher's process-wide default, so ATTACHed copies get it too.
HMAC_ALGORITHM: Final = "HMAC_SHA256"
#: What stores encrypted before that used (SQLCipher 4's default); they still open, and
#: Store.open moves them to HMAC_ALGORITHM (opening.settle_key).
LEGACY_HMAC_ALGORITHM: Final = "HMAC_SHA512"
#: The first bytes of every plain SQLite file; an encrypted file starts with random salt.
SQLITE_HEADER: Final = b"SQLite format 3\x00"

_quiet = False


def key_clause(key: bytes) -> str:
    """The SQL literal of a raw key: SQLCipher uses it as is (no PBKDF2 of its own).

    Hex of our own 32 bytes, never the passphrase; it must not reach a log or a message.
    """
    if len(key) != KEY_BYTES:
        raise ValueError("a store key is 32 bytes")
    return f"\"x'{key.hex()}'\""


def connect(
    target: Path | str,
    key: bytes | None,
    *,
    uri: bool = False,
    check_same_thread: bool = True,
) -> Connection:
    """Open ``target`` in autocommit mode, keyed when ``key`` is given.

    A keyed file written with LEGACY_HMAC_ALGORITHM is read with it (one page read
    tells; see :func:`uses_legacy_hmac`). A wrong key is not raised here: the first
    statement raises DatabaseError("file is not a database"); see :func:`key_opens`.
    """
    conn = _open(target, key, uri, check_same_thread, None)
    if key is None or _reads(conn):
        return conn
    legacy = _open(target, key, uri, check_same_thread, LEGACY_HMAC_ALGORITHM)
    if _reads(legacy):
        conn.close()
        return legacy
    legacy.close()
    return conn  # a wrong key, damage or a lock: the caller's next statement says which


def _open(
    target: Path | str, key: bytes | None, uri: bool, check_same_thread: bool, hmac: str | None
) -> Connection:
    conn = driver.connect(
        str(target), uri=uri, isolation_level=None, check_same_thread=check_same_thread
    )
    try:
        _set_defaults(conn)
        if key is not None:
            conn.execute(f"PRAGMA key = {key_clause(key)}")
            if hmac is not None:
                conn.execute(f"PRAGMA cipher_hmac_algorithm = {hmac}")
    except BaseException:
        conn.close()
        raise
    return conn


def _reads(conn: Connection) -> bool:
    """Whether the first page reads (decrypts); False also when locked (said later)."""
    try:
        return key_opens(conn)
    except Error:
        return False


def uses_legacy_hmac(conn: Connection) -> bool:
    """Whether a keyed connection reads its file with LEGACY_HMAC_ALGORITHM."""
    row = conn.execute("PRAGMA cipher_hmac_algorithm").fetchone()
    return row is not None and str(row[0]) == LEGACY_HMAC_ALGORITHM


def attach(conn: Connection, path: Path, schema: str, key: bytes | None) -> None:
    """ATTACH ``path`` as ``schema``, encrypted with ``key`` or plain (``KEY ''``)."""
    literal = key_clause(key) if key is not None else "''"
    conn.execute(f"ATTACH DATABASE ? AS {schema} KEY {literal}", (str(path),))


def key_opens(conn: Connection) -> bool:
    """Whether the connection's key (or none) reads its file: the first page decrypts."""
    try:
        conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
    except OperationalError as exc:
        if "locked" in str(exc) or "busy" in str(exc):
            raise
        return False
    except DatabaseError:
        return False
    return True


def looks_plain(header: bytes) -> bool:
    """Whether a file's first bytes are those of an unencrypted SQLite database."""
    return header.startswith(SQLITE_HEADER)


def _set_defaults(conn: Connection) -> None:
    """SQLCipher's process-wide settings, applied once, before the first key.

    Its log goes quiet: it reports a failed key (an HMAC mismatch) on stderr, which would
    scribble over the terminal app; the error we raise says it instead. New encrypted
    files get HMAC_ALGORITHM. Memory security stays off (SQLCipher's default since 4.5;
    pinned so no build flips it): it wipes and locks SQLCipher's own allocations at a
    cost on every page, while the decrypted history is in Python objects all the same.
    """
    global _quiet  # noqa: PLW0603 - one process-wide setting, applied once
    if not _quiet:
        conn.execute("PRAGMA cipher_log_level = NONE")
        conn.execute(f"PRAGMA cipher_default_hmac_algorithm = {HMAC_ALGORITHM}")
        conn.execute("PRAGMA cipher_memory_security = OFF")
        _quiet = True


__all__ = [
    "HMAC_ALGORITHM",
    "KEY_BYTES",
    "LEGACY_HMAC_ALGORITHM",
    "SQLITE_HEADER",
    "Connection",
    "DatabaseError",
    "Error",
    "IntegrityError",
    "InterfaceError",
    "OperationalError",
    "ProgrammingError",
    "attach",
    "connect",
    "key_clause",
    "key_opens",
    "looks_plain",
    "uses_legacy_hmac",
]
