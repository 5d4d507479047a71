"""The one SQLite driver of the store: SQLite3 Multiple Ciphers through APSW, keyed or plain.

Every connection of p2pchat goes through :func:`connect`. ``apsw-sqlite3mc`` is APSW
(Another Python SQLite Wrapper) built on SQLite3 Multiple Ciphers, an SQLite with
page-level encryption codecs. A connection given no key is an ordinary SQLite
database; one given a key encrypts every page of the file and of its
WAL (and so the FTS index tables inside it) with AEGIS-256, an authenticated cipher
built on the AES round function: each page gets a fresh random nonce and a 256-bit
tag, so a page changed by anyone without the key fails to read. One driver for both
cases means one code path: a store with a passphrase runs the very same SQL as one
without.

APSW's API is not the standard library's DB-API, so this module wraps it in the small
part of that API the store uses (``execute``/``executemany`` returning a cursor with
``fetchone``, ``fetchall``, iteration, ``rowcount`` and ``lastrowid``;
``in_transaction``; ``set_progress_handler``; ``backup``; ``close``) and turns APSW's
exceptions into the DB-API classes exported here, chosen as the standard ``sqlite3``
module chooses them (a constraint is an IntegrityError, a busy file an
OperationalError, a page that does not decrypt a DatabaseError, text that is not UTF-8
an OperationalError), with any key scrubbed from the message. Like the standard
module it refuses SQL holding a second statement before any of it runs (APSW alone
would run them all). Everything that may
see a store connection catches these (``db.DatabaseError``, ...), never ``sqlite3.*``.
For the type checker the module is the standard sqlite3: the wrapper has the same
signatures for what it offers, so the store and its migrations keep their
``sqlite3.Connection`` annotations; a store method reaching for a DB-API call this
wrapper lacks fails its tests at once (AttributeError), it does not pass silently.

Stores encrypted by p2pchat before AEGIS used SQLCipher 4 (AES-256-CBC and an HMAC
per page); SQLite3 Multiple Ciphers reads that format too (:data:`LEGACY_CIPHERS`),
and Store.open moves such a store to :data:`CIPHER` (opening.settle_key).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, TypeVar
from urllib.parse import quote

import apsw

_T = TypeVar("_T")

#: Bytes in a raw store key (AEGIS-256 and SQLCipher's AES-256 alike).
KEY_BYTES: Final = 32
#: The first bytes of every plain SQLite file; an encrypted file starts with random salt.
SQLITE_HEADER: Final = b"SQLite format 3\x00"
#: How long a statement waits for another connection's lock, as the standard sqlite3
#: module's default (5 s); the store's own connection sets its own (queries.py).
DEFAULT_BUSY_TIMEOUT_MS: Final = 5000


@dataclass(frozen=True)
class Cipher:
    """One page-encryption format of SQLite3 Multiple Ciphers: the settings that must
    precede the key on every connection (the file does not record them)."""

    name: str
    settings: tuple[str, ...]


#: What new encrypted stores use. AEGIS-256 (CAESAR's final portfolio, an IETF CFRG
#: draft): authenticated encryption at several GB/s with AES instructions, where
#: SQLCipher's AES-CBC plus HMAC cost about 10 µs per 4 KiB page written or read
#: (docs/performance.md). The raw key skips SQLite3MC's own Argon2id: our key is
#: already a random 32 bytes, unlocked once from the key file.
CIPHER: Final = Cipher("aegis-256", ("PRAGMA cipher = 'aegis'", "PRAGMA algorithm = 'aegis-256'"))
#: Formats of stores encrypted by earlier versions, newest first: SQLCipher 4 with the
#: HMAC-SHA256 p2pchat chose, and SQLCipher 4's default HMAC-SHA512 before that.
LEGACY_CIPHERS: Final = (
    Cipher(
        "sqlcipher4-hmac-sha256",
        ("PRAGMA cipher = 'sqlcipher'", "PRAGMA legacy = 4", "PRAGMA hmac_algorithm = 1"),
    ),
    Cipher(
        "sqlcipher4-hmac-sha512",
        ("PRAGMA cipher = 'sqlcipher'", "PRAGMA legacy = 4", "PRAGMA hmac_algorithm = 2"),
    ),
)

_OPEN_FLAGS: Final = apsw.SQLITE_OPEN_READWRITE | apsw.SQLITE_OPEN_CREATE | apsw.SQLITE_OPEN_URI


if TYPE_CHECKING:
    import sqlite3 as _types

    Connection = _types.Connection
    Error = _types.Error
    DatabaseError = _types.DatabaseError
    OperationalError = _types.OperationalError
    IntegrityError = _types.IntegrityError
    ProgrammingError = _types.ProgrammingError
    InterfaceError = _types.InterfaceError
    DataError = _types.DataError
    InternalError = _types.InternalError
else:

    class Error(Exception):
        """Base of every error the store's driver raises (DB-API ``Error``)."""

    class InterfaceError(Error):
        """The driver was misused (a closed connection or cursor)."""

    class DatabaseError(Error):
        """The database refused: damage, a file that is not a database, a wrong key."""

    class OperationalError(DatabaseError):
        """Not the caller's fault: busy or locked, I/O, a full disk, an SQL error."""

    class IntegrityError(DatabaseError):
        """A constraint (UNIQUE, CHECK, FOREIGN KEY, NOT NULL) refused a change."""

    class ProgrammingError(DatabaseError):
        """Wrong bindings, or an API call out of order."""

    class DataError(DatabaseError):
        """A value too big for SQLite."""

    class InternalError(DatabaseError):
        """SQLite's own bug or a missing internal object (SQLITE_INTERNAL, NOTFOUND)."""


def _error_class(exc: apsw.Error) -> type[Exception]:
    """The DB-API class for an APSW error, as CPython's sqlite3 maps result codes
    (Modules/_sqlite/util.c), plus APSW's own misuse errors."""
    operational = (
        apsw.SQLError
        | apsw.PermissionsError
        | apsw.AbortError
        | apsw.BusyError
        | apsw.LockedError
        | apsw.ReadOnlyError
        | apsw.InterruptError
        | apsw.IOError
        | apsw.FullError
        | apsw.CantOpenError
        | apsw.ProtocolError
        | apsw.EmptyError
        | apsw.SchemaChangeError
    )
    if isinstance(exc, operational):
        return OperationalError
    if isinstance(exc, apsw.ConstraintError | apsw.MismatchError):
        return IntegrityError
    if isinstance(exc, apsw.TooBigError):
        return DataError
    if isinstance(exc, apsw.InternalError | apsw.NotFoundError):
        return InternalError
    if isinstance(exc, apsw.NoMemError):
        return MemoryError
    if isinstance(exc, apsw.MisuseError | apsw.RangeError):
        return InterfaceError
    if isinstance(
        exc,
        apsw.BindingsError
        | apsw.ExecTraceAbort
        | apsw.ConnectionClosedError
        | apsw.CursorClosedError
        | apsw.ExecutionCompleteError
        | apsw.IncompleteExecutionError
        | apsw.ThreadingViolationError,
    ):
        return ProgrammingError
    return DatabaseError  # damage (CORRUPT, NOTADB, FORMAT), and any code added later


#: A raw key as it can appear in SQL or a URI (hex in x'…', quotes maybe %-encoded).
_KEY_TEXT: Final = re.compile(r"(?i)x(?:'|%27)[0-9a-f]{16,}(?:'|%27)")
#: The key parameter of a URI, whatever it holds.
_KEY_PARAM: Final = re.compile(r"(?i)\b((?:hex)?key=)[^&\s'\"]*")


def scrubbed(message: str) -> str:
    """``message`` with any key in it replaced: SQLite puts the whole file name, URI
    parameters and all, into some messages (a target it cannot open), and messages
    reach logs and screens."""
    return _KEY_TEXT.sub("x'…'", _KEY_PARAM.sub(r"\1…", message))


def _translated(exc: apsw.Error) -> Exception:
    return _error_class(exc)(scrubbed(str(exc)))


def _undecodable() -> OperationalError:
    """What the standard module raises for TEXT that is not UTF-8 (a damaged cell)."""
    return OperationalError("Could not decode to UTF-8 a text value of the row")


def _guarded(call: Callable[[], _T]) -> _T:
    """``call()``, its driver errors raised as the DB-API's (see :func:`_error_class`).

    The new error is raised outside the ``except``: no chained APSW error keeps the
    original text (which may name a key URI) on the exception a caller logs.
    """
    try:
        return call()
    except apsw.Error as exc:
        error: Exception = _translated(exc)
    except UnicodeDecodeError:
        error = _undecodable()
    raise error


class _Cursor:
    """The result of one statement: its rows (read lazily) and what it changed."""

    __slots__ = ("_rows", "lastrowid", "rowcount")

    def __init__(self, rows: apsw.Cursor | None, rowcount: int, lastrowid: int) -> None:
        """``rows``: None for a batch (executemany), which returns no rows."""
        self._rows = rows
        self.rowcount = rowcount
        self.lastrowid = lastrowid

    def fetchone(self) -> Any:
        return None if self._rows is None else _guarded(self._rows.fetchone)

    def fetchall(self) -> list[Any]:
        return [] if self._rows is None else _guarded(self._rows.fetchall)

    def __iter__(self) -> Iterator[Any]:
        while (row := self.fetchone()) is not None:
            yield row


class _Connection:
    """An APSW connection behind the DB-API calls the store makes (see module doc)."""

    __slots__ = ("_raw", "cipher")

    def __init__(self, raw: apsw.Connection, cipher: Cipher | None) -> None:
        self._raw = raw
        #: The page format the connection reads and writes (None: a plain file).
        self.cipher = cipher

    def execute(self, sql: str, parameters: Sequence[Any] | dict[str, Any] = ()) -> _Cursor:
        raw = self._raw

        def run() -> apsw.Cursor:
            _one_statement(raw, sql)
            return raw.execute(sql, parameters)

        cursor = _guarded(run)
        try:
            cursor.is_readonly  # noqa: B018 - raises once the statement has run out
        except apsw.ExecutionCompleteError:
            # Ran to its end (INSERT, UPDATE, DELETE, DDL): SQLite's count of the rows
            # it changed is this statement's (for DDL or a query without rows it is
            # the last change's; the store reads rowcount only after a change).
            return _Cursor(cursor, raw.changes(), raw.last_insert_rowid())
        # Rows to read (a query, or RETURNING): not counted, as the DB-API says.
        return _Cursor(cursor, -1, raw.last_insert_rowid())

    def executemany(self, sql: str, seq_of_parameters: Iterable[Sequence[Any]]) -> _Cursor:
        """Run ``sql`` once per parameter set; its rowcount is -1 (not counted).

        SQLite's running total would also count rows changed by triggers, which the
        DB-API's count does not; the store never reads a batch's count (it looks up
        what a batch added), so none is offered rather than a wrong one.
        """
        raw = self._raw

        def run() -> None:
            _one_statement(raw, sql)
            # fetchall: a statement with rows (RETURNING) runs as they are read.
            raw.executemany(sql, seq_of_parameters).fetchall()

        _guarded(run)
        return _Cursor(None, -1, raw.last_insert_rowid())

    @property
    def in_transaction(self) -> bool:
        return bool(self._raw.in_transaction)

    def set_progress_handler(self, handler: Callable[[], bool] | None, n: int) -> None:
        self._raw.set_progress_handler(handler, n)

    def backup(self, target: _Connection) -> None:
        """Copy this database into ``target`` in one step (one read transaction)."""

        def run() -> None:
            with target._raw.backup("main", self._raw, "main") as step:
                step.step(-1)

        _guarded(run)

    def close(self) -> None:
        _guarded(lambda: self._raw.close(True))


def _one_statement(raw: apsw.Connection, sql: str) -> None:
    """Refuse SQL that holds more than one statement, before any of it runs.

    APSW runs every statement of a string, where the standard module refuses a second
    one: SQL built with a name read from a file (recovery's column names) must never
    smuggle a statement of its own. Only SQL with a semicolon inside can hold two, so
    the store's constant statements skip the check; a trigger body is one statement.
    """
    if ";" not in sql.rstrip().rstrip(";"):
        return
    import apsw.ext  # here: only SQL with an inner semicolon needs it

    rest = apsw.ext.query_info(raw, sql).query_remaining or ""
    if _only_comments(rest):
        return
    raise apsw.ExecTraceAbort("You can only execute one statement at a time.")


def _only_comments(sql: str) -> bool:
    """Whether ``sql`` holds nothing but spaces, semicolons and comments."""
    rest = sql
    while True:
        rest = rest.lstrip().lstrip(";").lstrip()
        if rest.startswith("--"):
            end = rest.find("\n")
            rest = "" if end < 0 else rest[end + 1 :]
        elif rest.startswith("/*"):
            end = rest.find("*/")
            rest = "" if end < 0 else rest[end + 2 :]
        else:
            return not rest


if not TYPE_CHECKING:
    Connection = _Connection


def key_clause(key: bytes) -> str:
    """The SQL literal of a raw key: used as is, no key derivation of the codec's own.

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

    A keyed file in one of the :data:`LEGACY_CIPHERS` formats is read in it (one page
    read tells). A wrong key is not raised here: the first statement raises
    DatabaseError("file is not a database"); see :func:`key_opens`.
    ``check_same_thread`` is accepted for the DB-API's sake: an APSW connection may be
    used from any thread, one call at a time (the store never overlaps calls).
    """
    del check_same_thread
    name = str(target)
    if not uri and name.startswith("file:"):
        name = "./" + name  # a relative name that only looks like a URI
    if key is None:
        return _open(name, None, None)
    first = _open(name, key, CIPHER)
    if _reads(first) is not False:
        return first  # reads, or is locked: its next statement says so
    for cipher in LEGACY_CIPHERS:
        older = _open(name, key, cipher)
        reads = _reads(older)
        if reads is False:
            older.close()
            continue
        first.close()
        return older  # reads in this format, or is locked (then not yet known)
    return first  # a wrong key or damage: the caller's next statement says which


def _open(name: str, key: bytes | None, cipher: Cipher | None) -> Connection:
    try:
        raw = apsw.Connection(name, flags=_OPEN_FLAGS)
    except apsw.Error as exc:
        raise _translated(exc) from None
    conn = _Connection(raw, cipher)
    try:
        raw.set_busy_timeout(DEFAULT_BUSY_TIMEOUT_MS)
        if key is not None and cipher is not None:
            for setting in cipher.settings:
                raw.execute(setting)
            raw.execute(f"PRAGMA key = {key_clause(key)}")
    except apsw.Error as exc:
        conn.close()
        raise _translated(exc) from None
    except BaseException:
        conn.close()
        raise
    return conn  # type: ignore[return-value]  # the DB-API subset (module doc)


def _reads(conn: Connection) -> bool | None:
    """Whether the first page reads (decrypts); None when another program holds a lock
    (each try would wait out the busy timeout again: the first says it)."""
    try:
        return key_opens(conn)
    except OperationalError:
        return None  # key_opens raises only for locked or busy
    except Error:
        return False


def uses_legacy_cipher(conn: Connection) -> bool:
    """Whether a keyed connection reads its file in one of the LEGACY_CIPHERS formats."""
    return getattr(conn, "cipher", None) in LEGACY_CIPHERS


def target_uri(path: Path, key: bytes | None) -> str:
    """A URI naming ``path`` for ``VACUUM INTO`` or ``ATTACH``: encrypted with ``key``
    in :data:`CIPHER`'s format, or plain (an empty key: without it the copy of an
    encrypted database would inherit the source's encryption)."""
    base = path.resolve().as_uri()
    if key is None:
        return base + "?key="
    raw_key = quote(f"x'{key.hex()}'", safe="")
    return f"{base}?cipher=aegis&algorithm=aegis-256&key={raw_key}"


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


def codec_version() -> str:
    """The SQLite3 Multiple Ciphers and SQLite versions (for benchmarks and reports)."""
    conn = apsw.Connection(":memory:")
    try:
        row = conn.execute("SELECT sqlite3mc_version()").fetchone()
        codec = row[0] if row else "SQLite3 Multiple Ciphers"
        return f"{codec}, SQLite {apsw.sqlite_lib_version()}"
    finally:
        conn.close()


__all__ = [
    "CIPHER",
    "KEY_BYTES",
    "LEGACY_CIPHERS",
    "SQLITE_HEADER",
    "Cipher",
    "Connection",
    "DataError",
    "DatabaseError",
    "Error",
    "IntegrityError",
    "InterfaceError",
    "InternalError",
    "OperationalError",
    "ProgrammingError",
    "codec_version",
    "connect",
    "key_clause",
    "key_opens",
    "looks_plain",
    "scrubbed",
    "target_uri",
    "uses_legacy_cipher",
]
