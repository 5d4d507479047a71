"""Errors raised by the store.

Every failure a person can cause or meet (a corrupt file, somebody else's database, a
second p2pchat on the same profile, a store written by a newer p2pchat) has its own class
with a message fit to show as is. This module must never import sqlite3 or touch files:
it only describes what went wrong.
"""

from __future__ import annotations

from pathlib import Path


class StoreError(Exception):
    """Base class of every error the store raises on purpose."""


class CorruptStoreError(StoreError):
    """The file is not an SQLite database, or is damaged."""

    def __init__(self, path: Path, detail: str) -> None:
        self.path = path
        super().__init__(
            f"{path} is not a readable p2pchat store ({detail}); "
            "the file was left untouched. Move it aside to start a fresh store."
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
