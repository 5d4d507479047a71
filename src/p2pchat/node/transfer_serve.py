"""Serving file chunks to peers: only files we offered or verified, only to contacts who
are members of a room where the file was offered; everything else gets ``nochunk``.
"""

from __future__ import annotations

import asyncio
import logging
import os
from dataclasses import replace
from typing import TYPE_CHECKING

from p2pchat.identity import short_id
from p2pchat.node.file_io import FileSource
from p2pchat.store import Store
from p2pchat.store import transfers as sql
from p2pchat.store.transfers import TransferRow
from p2pchat.transport import Connection, ConnectionClosedError, TransportError
from p2pchat.wire import MAX_CHUNK_DATA, Bye, ChunkError, ChunkRequest

if TYPE_CHECKING:
    pass

from p2pchat.node.transfer_base import (
    BUSY,
    MAX_REFUSING,
    MAX_SERVING,
    MAX_SERVING_PER_PEER,
    REASON_CANCELLED,
    REASON_UNAVAILABLE,
    REFUSE_TIMEOUT,
    SEND_BATCH,
    SERVE_IDLE_TIMEOUT,
    ChunkOut,
    Outgoing,
    TransferBase,
    encode_chunk_out,
)

log = logging.getLogger(__name__)


class TransferServing(TransferBase):
    """Serving chunks of our offers and verified files (see the module docstring)."""

    # ================================================================ serving

    async def serve_connection(self, conn: Connection) -> None:
        """Serve a ``purpose: files`` connection for its lifetime (bounded, authorised).

        Who asks is checked before a serving slot is taken: a peer that is not a contact
        could never be served anyway, and letting strangers hold the slots (they cost
        nothing to make) would keep our contacts' downloads waiting.
        """
        peer = conn.remote.peer_id
        if not self.node.core.contacts.is_contact(peer):
            await self._refuse_connection(conn, "not a contact")
            return
        per_peer = sum(1 for c in self._serving if c.remote.peer_id == peer)
        if (
            not self._started
            or len(self._serving) >= MAX_SERVING
            or per_peer >= MAX_SERVING_PER_PEER
        ):
            await conn.close(f"{BUSY}: too many file connections")
            return
        self._serving[conn] = set()
        sources: dict[bytes, tuple[int, FileSource | str]] = {}
        try:
            while True:
                try:
                    async with asyncio.timeout(SERVE_IDLE_TIMEOUT):
                        frame = await conn.recv()
                except TimeoutError:
                    return
                if isinstance(frame, Bye):
                    return
                if not isinstance(frame, ChunkRequest):
                    continue
                await self._answer(conn, peer, frame, sources)
        except (ConnectionClosedError, TransportError):
            pass
        except OSError as exc:
            log.warning("serving a file to %s failed: %s", short_id(peer), exc)
        finally:
            self._serving.pop(conn, None)
            for _, source in sources.values():
                if isinstance(source, FileSource):
                    self._drop_source(source)
            await conn.close("files connection closed")
            for _, source in sources.values():
                if isinstance(source, FileSource):
                    await self._serving_stopped(source, peer)

    async def _refuse_connection(self, conn: Connection, reason: str) -> None:
        """Answer a peer that may not fetch anything: its first ``get`` gets a final
        ``nochunk`` (so an honest client stops), then the connection closes. No serving
        slot is used, the wait is short, and only a few such connections wait at once."""
        if self._refusing >= MAX_REFUSING:
            await conn.close(f"{BUSY}: too many file connections")
            return
        self._refusing += 1
        try:
            async with asyncio.timeout(REFUSE_TIMEOUT):
                while True:
                    frame = await conn.recv()
                    if isinstance(frame, ChunkRequest):
                        conn.write_frame(ChunkError(req=frame.req, hash=frame.hash, reason=reason))
                        await conn.flush()
                        return
                    if isinstance(frame, Bye):
                        return
        except (TimeoutError, ConnectionClosedError, TransportError, OSError):
            pass
        finally:
            self._refusing -= 1
            await conn.close(reason)

    async def _answer(
        self,
        conn: Connection,
        peer: bytes,
        frame: ChunkRequest,
        sources: dict[bytes, tuple[int, FileSource | str]],
    ) -> None:
        """Answer one ``get`` with a ``chunk`` or a ``nochunk``."""
        cached = sources.get(frame.hash)
        if not self.node.core.contacts.is_contact(peer):
            # Checked on every request: the peer may be blocked mid-connection.
            cached = (self._auth_generation, "not a contact")
        elif cached is None or cached[0] != self._auth_generation:
            if cached is not None and isinstance(cached[1], FileSource):
                # Out of ``sources`` before the await: if the reopen fails, the
                # connection's clean-up must not close this one's file a second time.
                del sources[frame.hash]
                self._drop_source(cached[1])
            cached = (self._auth_generation, await self._open_source(peer, frame.hash))
            sources[frame.hash] = cached
        source = cached[1]
        if isinstance(source, str) or frame.offset > source.size:
            reason = source if isinstance(source, str) else "range out of bounds"
            conn.write_frame(ChunkError(req=frame.req, hash=frame.hash, reason=reason))
            await conn.flush()
            return
        # ``count`` pieces from ``offset``, stopping after the one that reaches the end;
        # encrypted and handed to the socket in batches of about SEND_BATCH bytes.
        length = min(frame.length, MAX_CHUNK_DATA)
        offset = frame.offset
        batch: list[ChunkOut] = []
        batched = 0
        for _ in range(frame.count):
            data = await source.read(offset, length)
            batch.append((frame.req, frame.hash, offset, data))
            batched += len(data)
            offset += len(data)
            last = len(data) < length or offset >= source.size
            if batched >= SEND_BATCH or last:
                await conn.send_frames(batch, self._crypto, encode_chunk_out)
                batch, batched = [], 0
            if last:
                break
        if batch:
            await conn.send_frames(batch, self._crypto, encode_chunk_out)
        end = offset
        if source.offer is not None and end > source.served:
            source.served = end
            await self._served(source)

    def _outgoing_state(self, message_id: bytes) -> Outgoing:
        return self._outgoing.setdefault(message_id, Outgoing())

    def _revoked(self, message_id: bytes) -> bool:
        out = self._outgoing.get(message_id)
        return out is not None and out.revoked

    def _drop_source(self, source: FileSource) -> None:
        source.release()
        if source.offer is not None:
            self._outgoing_state(source.offer.message_id).serving -= 1

    async def _serving_stopped(self, source: FileSource, peer: bytes) -> None:
        """A download of our offer stopped half-way (the other side quit or lost the
        network) and nobody else is pulling it: the sender's card says so instead of
        showing a rate that no longer flows."""
        row = source.offer
        if row is None:
            return
        out = self._outgoing_state(row.message_id)
        if out.serving > 0 or out.whole or out.revoked or source.served == 0:
            return
        current = await self.node.core.read(lambda s: sql.get_transfer(s, row.message_id))
        if current is None or current.state != "active":
            return
        if out.serving > 0:
            return  # a download resumed while we looked
        out.paused = True  # the next _served sets it active again
        name = self.node.peer_name(peer)
        await self._set_state(
            current,
            "paused",
            detail=f"{name} stopped downloading; it resumes when they are back",
            done=max(out.furthest, source.served),
        )

    async def _served(self, source: FileSource) -> None:
        """Sender-side progress: the furthest any peer has pulled our offer.

        One bar per offer that only grows, even when several members of a room pull at
        once; ``done`` once someone has all of it, and it stays done (another member's
        later download does not send the sender's card back to "active").
        """
        row = source.offer
        assert row is not None
        out = self._outgoing_state(row.message_id)
        if row.state == "done" or out.whole or out.revoked:
            return
        furthest = out.furthest = max(out.furthest, source.served)
        if furthest >= row.size:
            out.whole = True
            source.offer = await self._set_state(row, "done", done=row.size)
        else:
            if row.state in ("offered", "paused") or out.paused:
                out.paused = False
                source.offer = row = await self._set_state(row, "active", done=furthest)
            self._emit(row, "active", furthest, force=False)

    async def _open_source(self, peer: bytes, sha256: bytes) -> FileSource | str:
        """An open file with this hash that ``peer`` may fetch, or the reason it may not."""
        if not self.node.core.contacts.is_contact(peer):
            return "not a contact"

        def candidates(store: Store) -> tuple[list[TransferRow], set[bytes]]:
            rows = sql.by_hash(store, sha256)
            rooms = set()
            for r in rows:
                member = store.get_member(r.room, peer)
                if member is not None and member.state == "joined":
                    rooms.add(r.room)
            return rows, rooms

        rows, rooms = await self.node.core.read(candidates)
        allowed = [r for r in rows if r.room in rooms]
        # Offers cancelled just now may not be stored as cancelled yet.
        allowed = [
            replace(r, state="cancelled") if self._revoked(r.message_id) else r for r in allowed
        ]
        if not allowed:
            # Not a file offer: perhaps a sticker's picture (node/stickers.py).
            sticker = await self.node.stickers.open_source(peer, sha256)
            return REASON_UNAVAILABLE if sticker is None else sticker
        if all(not r.incoming and r.state == "cancelled" for r in allowed):
            return REASON_CANCELLED
        for r in allowed:
            usable = (not r.incoming and r.state != "cancelled") or (
                r.incoming and r.state == "done"
            )
            if not usable or r.path is None:
                continue
            opened = await asyncio.to_thread(self._open_checked, r)
            if opened is not None:
                # Our own offer of it in a room this peer is in (direct or group): the
                # sender's card shows how far members have pulled it.
                mine = next((x for x in allowed if not x.incoming and x.state != "cancelled"), None)
                if mine is not None:
                    self._outgoing_state(mine.message_id).serving += 1
                return FileSource(fd=opened, size=r.size, offer=mine)
        return f"{REASON_UNAVAILABLE}: the file was moved or changed"

    @staticmethod
    def _open_checked(row: TransferRow) -> int | None:
        """Open the row's file if it is still the one offered (same size, same mtime)."""
        assert row.path is not None
        try:
            fd = os.open(row.path, os.O_RDONLY)
        except OSError:
            return None
        st = os.fstat(fd)
        if st.st_size != row.size or (
            not row.incoming and row.src_mtime is not None and st.st_mtime_ns != row.src_mtime
        ):
            os.close(fd)
            return None
        return fd
