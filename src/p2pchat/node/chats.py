"""Finding and keeping chats in order: search, mute, archive, local delete, export data.

Everything here is local to this person's store: nothing is sent to anyone (leaving a
group before deleting it locally is the one exception, and is the group's own ``leave``).
The UI, the CLI and the control socket all call these methods, so they behave alike.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import logging
import os
import secrets
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

from p2pchat.identity import encode_peer_id
from p2pchat.node.edits import with_edits
from p2pchat.node.envelopes import KIND_FILE
from p2pchat.node.errors import NodeError
from p2pchat.node.export import (
    FORMATS,
    MAX_EMBEDDED_BYTES,
    MAX_PICTURE_BYTES,
    PICTURE_SIGNATURES,
    RENDERERS,
    ExportHeader,
    ExportItem,
    picture_mime,
)
from p2pchat.store import Cursor, Message, SearchQueryError, Store, StoreError, now_ms
from p2pchat.store.search import FLUSH_CHARS, MAX_RESULTS

if TYPE_CHECKING:
    from p2pchat.node.facade import NodeFacade

T = TypeVar("T")
log = logging.getLogger(__name__)

#: Results per search page unless the caller asks otherwise.
DEFAULT_RESULTS = 50
#: Seconds between looks at the search queue once it was emptied, and between steps
#: while it is not (at most 20 steps of about 4 ms a second: 160,000 characters, while
#: the store stays free for messages more than nine tenths of the time). The idle wait
#: lets texts gather: FTS5 writes a segment (and the step a commit) per step however few
#: texts it takes, so in a busy room a step every half second cost each member as much
#: store time as storing the messages did. A search indexes whatever still waits first,
#: so nothing is ever missing from a search's results.
INDEX_IDLE = 3.0
INDEX_PAUSE = 0.05
#: Messages read per step when exporting.
EXPORT_PAGE = 1000
#: Longest wait (seconds) for one page of an export to be read on the node's loop.
EXPORT_STEP_TIMEOUT = 120.0


class SearchError(NodeError):
    """A search that cannot run (empty, too long, ...); the text says why."""


@dataclass(frozen=True)
class SearchHit:
    """One message found, with what a results list needs to show it in context."""

    message: Message
    room_name: str
    room_kind: str
    #: The other person of a direct room (None in a group room).
    peer_id: bytes | None
    author_name: str
    text: str


@dataclass(frozen=True)
class SearchPage:
    """Hits, newest first; ``resume_before`` is set when a short-word search stopped at
    its time budget (pass it as ``before_rowid`` to look at older messages)."""

    hits: list[SearchHit]
    resume_before: int | None

    @property
    def next_before(self) -> int | None:
        """Where the next page starts (the oldest hit, or where the scan stopped)."""
        if self.resume_before is not None:
            return self.resume_before
        return self.hits[-1].message.rowid if self.hits else None


@dataclass(frozen=True)
class _Where:
    """A hit's room as a results list names it."""

    kind: str
    name: str | None
    peer: bytes | None


class ChatService:
    """Per-chat actions of one node (see the module docstring)."""

    def __init__(self, node: NodeFacade) -> None:
        self.node = node
        self._indexer: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Start indexing new messages for search in the background."""
        self._indexer = asyncio.ensure_future(self._index_loop())

    async def stop(self) -> None:
        """Stop the indexer (what it did not index yet stays queued in the store)."""
        if self._indexer is not None:
            self._indexer.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._indexer
            self._indexer = None

    async def _index_loop(self) -> None:
        """Index queued texts in small steps (store/search.py says why not at once): one
        step at a time in the store thread, so no message waits behind more than one."""
        while True:
            try:
                more = await self._run(lambda s: s.index_queued(FLUSH_CHARS))
            except (NodeError, StoreError) as exc:
                log.warning("search indexing paused: %s", exc)
                more = False
            await asyncio.sleep(INDEX_PAUSE if more else INDEX_IDLE)

    async def search(
        self,
        text: str,
        *,
        room: bytes | None = None,
        limit: int = DEFAULT_RESULTS,
        before_rowid: int | None = None,
    ) -> SearchPage:
        """Messages holding every word of ``text`` (substrings, any case), newest first.

        ``room`` limits the search to one conversation. Raises SearchError for a query
        that cannot run, with a message for the person.
        """
        node = self.node
        limit = max(1, min(limit, MAX_RESULTS))

        # Only text is indexed: no room change (which groups may refuse to show) is found.
        # Rooms are described here for the hits' rooms only (not the whole room list,
        # whose unread counts cost milliseconds on a big store).
        def work(store: Store) -> tuple[list[Message], int | None, dict[bytes, _Where]]:
            rooms = None if room is None else [room]
            found, resume = store.search_messages(
                text, rooms=rooms, limit=limit, before_rowid=before_rowid
            )
            where: dict[bytes, _Where] = {}
            for rid in {m.room for m in found}:
                info = store.get_room(rid)
                if info is None:
                    continue
                other = None
                if info.kind == "direct":
                    other = next((m.peer for m in store.members(rid) if m.peer != node.me), None)
                where[rid] = _Where(info.kind, info.name, other)
            # An edited message shows its latest text.
            return with_edits(store, found), resume, where

        try:
            messages, resume, where = await self._run(work)
        except SearchQueryError as exc:
            raise SearchError(str(exc)) from None
        hits = []
        for m in messages:
            place = where.get(m.room, _Where("group", None, None))
            if place.peer is not None:
                name = node.peer_name(place.peer)
            else:
                name = place.name or m.room.hex()[:8]
            hits.append(
                SearchHit(
                    message=m,
                    room_name=name,
                    room_kind=place.kind,
                    peer_id=place.peer,
                    author_name=node.peer_name(m.author),
                    text=node.display_text(m),
                )
            )
        return SearchPage(hits, resume)

    async def set_muted(self, room: bytes, muted: bool) -> None:
        """Mute a chat (no notifications; unread still counted) or unmute it."""
        if not await self._run(lambda s: s.set_room_muted(room, muted)):
            raise NodeError("no such chat")

    async def set_archived(self, room: bytes, archived: bool) -> None:
        """Archive a chat (out of the room list until a new message) or bring it back."""
        if not await self._run(lambda s: s.set_room_archived(room, archived)):
            raise NodeError("no such chat")

    async def delete_locally(self, room: bytes) -> int:
        """Delete a chat's messages from this store only; return how many went.

        A direct chat keeps its place (the contact, and where the history stood, so the
        other side's sync does not send it all back and our next message still follows
        theirs). A group room is left first if we are still in it (otherwise the other
        members would sync it back), then forgotten entirely.
        """
        node = self.node
        info = await self._run(lambda s: s.get_room(room))
        if info is None:
            raise NodeError("no such chat")
        if info.kind == "direct":
            return await self._run(lambda s: s.clear_room(room))
        members = await node.groups.members(room)
        mine = next((m.state for m in members if m.peer_id == node.me), None)
        if mine in ("joined", "invited"):
            if mine == "joined":
                await node.groups.leave(room)
            else:
                await node.groups.decline(room)

        def forget(store: Store) -> int:
            removed = store.forget_room(room)
            node.groups.forget_caches()
            return removed

        return await self._run(forget)

    async def export(
        self, room: bytes, fmt: str, path: Path, *, overwrite: bool = False
    ) -> ExportResult:
        """Write the whole chat to ``path`` (absolute) as ``md``, ``json`` or ``html``.

        The file is created 0600 (it holds private messages) through a temporary name and
        renamed into place, so a failure never leaves half a file; an existing file is
        replaced only with ``overwrite``. HTML embeds downloaded pictures (see
        :mod:`p2pchat.node.export` for what is escaped and allowed).
        """
        if fmt not in RENDERERS:
            raise NodeError(f"unknown export format {fmt!r}; use one of {', '.join(FORMATS)}")
        if not path.is_absolute():
            raise NodeError("the export path must be absolute")
        info = next((r for r in await self.node.list_rooms() if r.room_id == room), None)
        if info is None:
            raise NodeError("no such chat")
        header = ExportHeader(info.name, info.kind, room.hex(), now_ms())
        tally = _Tally(budget=MAX_EMBEDDED_BYTES if fmt == "html" else 0)
        loop = asyncio.get_running_loop()

        def items() -> Iterator[ExportItem]:
            # Runs in the writing thread and reads each page on the loop: one page of the
            # chat is in memory at a time, however big the chat (a list of all its
            # messages grew with the chat, 64 KB a message at worst).
            cursor: Cursor | None = None
            while True:
                step = asyncio.run_coroutine_threadsafe(
                    self._export_page(room, cursor, tally), loop
                )
                try:
                    page, cursor = step.result(timeout=EXPORT_STEP_TIMEOUT)
                except concurrent.futures.TimeoutError:
                    step.cancel()
                    raise NodeError("the export stopped: the node did not answer") from None
                yield from page
                if cursor is None:
                    return

        chunks = RENDERERS[fmt](header, items())
        await asyncio.to_thread(_write_private, path, chunks, overwrite)
        return ExportResult(path, tally.messages, tally.pictures)

    async def _export_page(
        self, room: bytes, cursor: Cursor | None, tally: _Tally
    ) -> tuple[list[ExportItem], Cursor | None]:
        """The displayable messages after ``cursor`` (one page, oldest first) as export
        items, and the cursor of the next page (None after the last)."""
        groups = self.node.groups

        def read(store: Store) -> tuple[list[Message], Cursor | None]:
            rows = store.shown_messages_after(room, cursor, EXPORT_PAGE)
            last = rows[-1].cursor if len(rows) == EXPORT_PAGE else None
            return groups.shown(store, room, rows), last

        messages, after = await self._run(read)
        items = []
        for m in messages:
            picture = None
            if m.kind == KIND_FILE and tally.budget > 0:
                picture = await self._picture(m.id, tally.budget)
                if picture is not None:
                    tally.budget -= len(picture[1])
                    tally.pictures += 1
            items.append(
                ExportItem(
                    id=m.id.hex(),
                    author=self.node.peer_name(m.author),
                    author_id=encode_peer_id(m.author),
                    sent_at=m.sent_at,
                    kind=m.kind,
                    text=self.node.display_text(m),
                    picture=picture,
                )
            )
        tally.messages += len(items)
        return items, after

    async def _picture(self, message_id: bytes, budget: int) -> tuple[str, bytes] | None:
        transfer = await self.node.transfers.get(message_id)
        if transfer is None or not transfer.path:
            return None
        # A download counts once verified; a picture we sent is its source file, read
        # fresh (its bytes still have to pass the signature check below).
        usable = transfer.state == "done" if transfer.incoming else transfer.state != "cancelled"
        if not usable:
            return None
        if transfer.size > min(MAX_PICTURE_BYTES, budget):
            return None
        if transfer.mime.lower() not in PICTURE_SIGNATURES:
            return None
        try:
            data = await asyncio.to_thread(Path(transfer.path).read_bytes)
        except OSError:
            return None  # moved or deleted since: the export shows the file's line only
        mime = picture_mime(transfer.mime, data)
        return None if mime is None else (mime, data)

    async def _run(self, fn: Callable[[Store], T]) -> T:
        """``fn`` in the store thread (store methods are atomic on their own)."""
        db = self.node.db
        if db is None:
            raise NodeError("the node is not running")
        return await db.run(fn)


@dataclass
class _Tally:
    """What an export has written so far, and the picture bytes it may still embed."""

    budget: int
    messages: int = 0
    pictures: int = 0


@dataclass(frozen=True)
class ExportResult:
    """Where an export went and what it holds."""

    path: Path
    messages: int
    pictures: int


def _write_private(path: Path, chunks: Iterable[str], overwrite: bool) -> None:
    """Write ``chunks`` to ``path`` via a 0600 temporary file beside it, then rename.

    Without ``overwrite`` the final step is a hard link, which fails if ``path`` appeared
    meanwhile: an existing file is never replaced by surprise.
    """
    if path.exists() and not overwrite:
        raise NodeError(f"{path} exists; choose another name or allow overwriting")
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.part")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            for chunk in chunks:
                out.write(chunk)
            out.flush()
            os.fsync(out.fileno())
        if overwrite:
            os.replace(tmp, path)
        else:
            os.link(tmp, path)
            tmp.unlink()
    except FileExistsError:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise NodeError(f"{path} exists; choose another name or allow overwriting") from None
    except OSError as exc:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise NodeError(f"cannot write {path}: {exc.strerror or exc}") from None
    except BaseException:
        # Reading a page failed (the node stopped, ...): no half file stays behind.
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise


__all__ = [
    "DEFAULT_RESULTS",
    "ChatService",
    "ExportResult",
    "SearchError",
    "SearchHit",
    "SearchPage",
]
