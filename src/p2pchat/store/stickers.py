"""SQL of stickers: our own packs, and the stickers seen in rooms.

Functions here take an open :class:`Store` and run in the store's thread like its own
methods. They never touch the pictures themselves (the node's sticker cache does).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from .store import Store


@dataclass(frozen=True, slots=True)
class PackSticker:
    """One sticker of one of our packs."""

    pack: str
    name: str
    sha256: bytes
    mime: str
    size: int
    added_at: int


@dataclass(frozen=True, slots=True)
class SeenSticker:
    """A sticker someone sent in a room (pack and name as its author said)."""

    sha256: bytes
    room: bytes
    author: bytes
    pack: str
    name: str
    mime: str
    size: int


def _pack_row(r: Sequence[Any]) -> PackSticker:
    return PackSticker(*r)


def add_to_pack(store: Store, sticker: PackSticker, *, replace: bool = True) -> bool:
    """Put ``sticker`` in its pack (replacing one of the same name unless ``replace`` is
    False); True if a row was written."""
    verb = "INSERT OR REPLACE" if replace else "INSERT OR IGNORE"
    with store.atomic(), store.sql_errors():
        cur = store.connection.execute(
            f"{verb} INTO sticker_packs (pack, name, sha256, mime, size, added_at)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            (
                sticker.pack,
                sticker.name,
                sticker.sha256,
                sticker.mime,
                sticker.size,
                sticker.added_at,
            ),
        )
        return cur.rowcount > 0


def pack_stickers(store: Store, pack: str | None = None) -> list[PackSticker]:
    """Our stickers, by pack then name (one pack with ``pack``)."""
    rows = store.rows(
        "SELECT pack, name, sha256, mime, size, added_at FROM sticker_packs"
        " WHERE ? IS NULL OR pack = ? ORDER BY pack, name",
        (pack, pack),
    )
    return [_pack_row(r) for r in rows]


def pack_sticker(store: Store, pack: str, name: str) -> PackSticker | None:
    """One of our stickers by ``pack`` and ``name``."""
    r = store.row(
        "SELECT pack, name, sha256, mime, size, added_at FROM sticker_packs"
        " WHERE pack = ? AND name = ?",
        (pack, name),
    )
    return None if r is None else _pack_row(r)


def record_seen(store: Store, seen: SeenSticker) -> None:
    """Remember that ``seen`` was sent in its room (idempotent)."""
    with store.atomic(), store.sql_errors():
        store.connection.execute(
            "INSERT OR IGNORE INTO sticker_seen"
            " (sha256, room, author, pack, name, mime, size) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (
                seen.sha256,
                seen.room,
                seen.author,
                seen.pack,
                seen.name,
                seen.mime,
                seen.size,
            ),
        )


def shared_with(store: Store, sha256: bytes, peer: bytes) -> bool:
    """True if a sticker with this hash was sent in a room where ``peer`` is a joined
    member (only then may ``peer`` fetch its picture from us)."""
    r = store.row(
        "SELECT 1 FROM sticker_seen s JOIN members m ON m.room = s.room"
        " WHERE s.sha256 = ? AND m.peer = ? AND m.state = 'joined' LIMIT 1",
        (sha256, peer),
    )
    return r is not None


def seen_in_pack(store: Store, pack: str, author: bytes | None = None) -> list[SeenSticker]:
    """The stickers of ``pack`` others sent us (from ``author`` only, if given)."""
    rows = store.rows(
        "SELECT sha256, room, author, pack, name, mime, size FROM sticker_seen"
        " WHERE pack = ? AND (? IS NULL OR author = ?) ORDER BY name LIMIT 1000",
        (pack, author, author),
    )
    return [SeenSticker(*r) for r in rows]
