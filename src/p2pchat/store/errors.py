"""Errors raised by the store.

Every failure a person can cause or meet (a corrupt file, somebody else's database, a
second p2pchat on the same profile, a store written by a newer p2pchat) has its own class
with a message fit to show as is. This module must never import sqlite3 or touch files:
it only describes what went wrong.
"""

from __future__ import annotations

from pathlib import Path

#: What every "your store is damaged" message ends with: the one command that helps.
REPAIR_HINT = (
    "Run `p2pchat repair` (with the same --profile) to salvage what is readable into a "
    "fresh store; the damaged file is kept beside it."
)


class StoreError(Exception):
    """Base class of every error the store raises on purpose."""


class CorruptStoreError(StoreError):
    """The file is not an SQLite database, or is damaged."""

    def __init__(self, path: Path, detail: str) -> None:
        self.path = path
        super().__init__(
            f"{path} is not a readable p2pchat store ({detail}); "
            f"the file was left untouched. {REPAIR_HINT}"
        )


class ForeignDatabaseError(StoreError):
    """The file is a valid SQLite database that belongs to another program."""

    def __init__(self, path: Path, application_id: int) -> None:
        self.path = path
        self.application_id = application_id
        which = (
            "it has tables but no p2pchat application id"
            if application_id == 0
            else f"application_id={application_id:#x}"
        )
        super().__init__(
            f"{path} is an SQLite database of another program ({which}); it was left untouched."
        )


class DamagedStoreError(StoreError):
    """The store's start-up check found damage that rebuilding the indexes cannot fix.

    p2pchat refuses to start on it: running on would hide lost rows (wrong unread counts,
    missing history) and could write over what a repair might still read.
    """

    def __init__(self, path: Path, detail: str) -> None:
        self.path = path
        self.detail = detail
        super().__init__(
            f"the store {path} is damaged ({detail}); p2pchat did not start, so nothing "
            f"more was lost. {REPAIR_HINT}"
        )


class MissingStoreError(StoreError):
    """The profile has a store that is gone or empty: damage, never a new profile.

    A profile whose identity key exists once had history and contacts; starting on an
    empty store would look like a fresh start and lose them without a word.
    """

    def __init__(self, path: Path, what: str) -> None:
        self.path = path
        super().__init__(
            f"this profile's store {path} is {what}, but its identity key exists: its "
            "history and contacts are not there, so p2pchat did not start an empty one in "
            "its place. Bring it back from a backup with `p2pchat restore FILE --force`, "
            "or run `p2pchat repair` to keep your identity and start with an empty history."
        )


class StoreLockedError(StoreError):
    """Another p2pchat process (or program) is using this store."""

    def __init__(self, path: Path, detail: str = "") -> None:
        self.path = path
        extra = f" ({detail})" if detail else ""
        super().__init__(
            f"another p2pchat is using this profile ({path}){extra}; "
            "close it first, or choose another profile with --profile."
        )


class NewerSchemaError(StoreError):
    """The store was written by a newer p2pchat whose schema this one does not know."""

    def __init__(self, path: Path, found: int, known: int) -> None:
        self.path = path
        self.found = found
        self.known = known
        super().__init__(
            f"{path} has schema version {found} but this p2pchat knows only up to {known}; "
            "upgrade p2pchat. The file was left untouched."
        )


class UnknownRoomError(StoreError):
    """A message names a room the store has never heard of (call ensure_room first)."""

    def __init__(self, room: bytes) -> None:
        self.room = room
        super().__init__(f"unknown room {room.hex()}: call ensure_room before adding messages")


class StoreClosedError(StoreError):
    """The store (or its worker) was used after close()."""

    def __init__(self) -> None:
        super().__init__("the store is closed")


class StoreIOError(StoreError):
    """SQLite failed while reading or writing (disk full, I/O error, damage found late)."""

    def __init__(self, path: Path, detail: str) -> None:
        self.path = path
        self.detail = detail
        lowered = detail.lower()
        if "full" in lowered:
            words = (
                f"the disk holding {path} is full: free some space and try again "
                "(nothing already saved is lost)"
            )
        elif "locked" in lowered or "busy" in lowered:
            words = (
                f"another program is holding {path}: close it and try again "
                "(nothing already saved is lost)"
            )
        else:
            words = f"could not use the store {path}: {detail}"
        super().__init__(words)


class StoreKeyError(StoreError):
    """The store is encrypted and no key we were given opens it.

    With a passphrase the store's key comes from the profile's key file, so this means
    the store and the key file do not belong together (a store copied from another
    profile or an old backup), or the file is damaged. The message never holds a key.
    """

    def __init__(self, path: Path, *, had_key: bool) -> None:
        self.path = path
        if had_key:
            words = (
                f"the store {path} is encrypted with a key that this profile's passphrase "
                "does not unlock (is it another profile's store, or from an old backup?), "
                "or it is damaged; it was left untouched"
            )
        else:
            words = (
                f"the store {path} is encrypted (or is not an SQLite database) and this "
                "profile has no passphrase to unlock it; it was left untouched"
            )
        super().__init__(words)
