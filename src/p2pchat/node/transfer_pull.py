"""Pulling a file from peers: by range over a files connection, into a ``.part`` that
resumes after any break, hashed as written and verified before it is placed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import AsyncIterator
from pathlib import Path
from typing import TYPE_CHECKING

from p2pchat.node.events import PeerOnline
from p2pchat.node.file_io import PartFile
from p2pchat.store import transfers as sql
from p2pchat.store.transfers import TransferRow
from p2pchat.transport import Connection, ConnectionClosedError, LocalHello, TransportError, connect
from p2pchat.wire import MAX_CHUNK_DATA, PURPOSE_FILES, Bye, Chunk, ChunkError, ChunkRequest

if TYPE_CHECKING:
    pass

from p2pchat.node.transfer_base import (
    BUSY,
    GET_CHUNKS,
    PULLING_STATES,
    RETRY_INITIAL,
    RETRY_MAX,
    STALL_TIMEOUT,
    WINDOW_BYTES,
    Meter,
    RefusedError,
    RetryError,
    TransferError,
)
from p2pchat.node.transfer_disk import place_file, unlink_quietly, write_failure
from p2pchat.node.transfer_serve import TransferServing

log = logging.getLogger(__name__)


class TransferPulling(TransferServing):
    """Downloads: one pull task per accepted transfer (see the module docstring)."""

    # ================================================================ pulling

    def _start_pull(self, message_id: bytes) -> None:
        if message_id in self._pulls or not self._started:
            return
        task = asyncio.ensure_future(self._pull(message_id))
        task.set_name(f"pull {message_id.hex()[:8]}")
        self._pulls[message_id] = task

        def done(t: asyncio.Task[None]) -> None:
            if self._pulls.get(message_id) is t:
                del self._pulls[message_id]
            if not t.cancelled() and t.exception() is not None:
                log.error("pull %s failed", message_id.hex()[:8], exc_info=t.exception())

        task.add_done_callback(done)

    def pulling(self, message_id: bytes) -> bool:
        """Whether a download of ``message_id`` is running (or about to)."""
        return message_id in self._pulls

    @contextlib.asynccontextmanager
    async def _changing(self, message_id: bytes) -> AsyncIterator[None]:
        """Accept and cancel of one transfer, one at a time: each reads the state, awaits,
        then acts on what it read, so interleaved they could undo each other (a pull
        started after the cancel that should have stopped it)."""
        # Kept for the node's lifetime: one small lock per transfer touched.
        async with self._changes.setdefault(message_id, asyncio.Lock()):
            yield

    async def _pull(self, message_id: bytes) -> None:
        row = await self.node.core.read(lambda s: sql.get_transfer(s, message_id))
        if row is None or row.part is None or row.state not in PULLING_STATES:
            return  # cancelled (or finished) before this pull got going
        async with self._pull_slots:
            sink = PartFile(Path(row.part))
            try:
                await self._pull_into(row, sink)
            finally:
                await sink.close()

    async def _pull_into(self, row: TransferRow, sink: PartFile) -> None:
        try:
            have = await sink.open(row.size)
        except OSError as exc:
            await self._fail_writing(row, sink, exc)
            return
        self._meters[row.message_id] = Meter(done=have, last_done=have)
        delay = RETRY_INITIAL
        sink.state = row.state
        while sink.offset < row.size:
            before = sink.offset
            try:
                await self._pull_round(row, sink)
            except RefusedError as exc:
                reason = str(exc)
                cancelled = reason.startswith("cancelled")
                await sink.close()
                await asyncio.to_thread(unlink_quietly, sink.part)
                await self._set_state(
                    row,
                    "cancelled" if cancelled else "failed",
                    detail=f"{self.node.peer_name(row.peer)} refused: {reason}",
                    done=0,
                )
                return
            except OSError as exc:
                # Our disk (full, removed) rather than the network.
                await self._fail_writing(row, sink, exc)
                return
            except RetryError as exc:
                if sink.state != "paused":
                    row = await self._set_state(row, "paused", detail=str(exc), done=sink.offset)
                    sink.state = "paused"
                # A connection that moved bytes was healthy: come back quickly.
                delay = RETRY_INITIAL if sink.offset > before else delay
                await self._wait_for_source(row.peer, delay)
                delay = min(RETRY_MAX, delay * 2)
        try:
            digest = await sink.finish()
        except OSError as exc:
            await self._fail_writing(row, sink, exc)
            return
        if digest != row.sha256:
            await asyncio.to_thread(unlink_quietly, sink.part)
            await self._set_state(
                row,
                "failed",
                detail="the received file does not match its SHA-256 (corrupted or tampered "
                "with); it was deleted",
                done=0,
            )
            return
        folder = sink.part.parent.parent
        try:
            final = await asyncio.to_thread(place_file, sink.part, folder, row.name)
        except OSError as exc:
            await sink.close()
            await asyncio.to_thread(unlink_quietly, sink.part)
            await self._set_state(
                row,
                "failed",
                detail=f"cannot save into {folder}: {exc}; the partial file was deleted",
                done=0,
            )
            return
        await self._set_state(row, "done", path=str(final), done=row.size)

    async def _fail_writing(self, row: TransferRow, sink: PartFile, exc: OSError) -> None:
        """A download our disk could not take ends for good, and its part goes: a part
        kept after such a failure only holds space the disk lacks (a retry starts anew)."""
        await sink.close()
        await asyncio.to_thread(unlink_quietly, sink.part)
        folder = sink.part.parent.parent
        await self._set_state(row, "failed", detail=write_failure(exc, folder), done=0)

    async def _pull_round(self, row: TransferRow, sink: PartFile) -> None:
        """Try the author, then other members online (any holder of the whole file may
        serve it). Raises RefusedError if the author refuses for good, RetryError if no
        source finished the file this round."""
        sources = [row.peer]
        members = await self.node.core.read(lambda s: s.members(row.room))
        sources += [
            m.peer
            for m in members
            if m.state == "joined"
            and m.peer not in (row.peer, self.node.me)
            and self.node.links.is_online(m.peer)
        ]
        last: Exception = RetryError(f"{self.node.peer_name(row.peer)} is offline")
        for source in sources:
            try:
                await self._pull_once(row, sink, source)
                return
            except RefusedError as exc:
                if source == row.peer:
                    raise
                last = RetryError(f"{self.node.peer_name(source)} cannot serve it: {exc}")
            except RetryError as exc:
                last = exc if source == row.peer or len(sources) == 1 else last
        raise last if isinstance(last, RetryError) else RetryError(str(last))

    async def _wait_for_source(self, peer: bytes, delay: float) -> None:
        """Sleep ``delay`` seconds, or less if the peer comes online meanwhile."""
        stream = self.node.subscribe()
        try:
            async with asyncio.timeout(delay):
                await stream.next_matching(
                    lambda e: isinstance(e, PeerOnline) and e.peer_id == peer
                )
        except (TimeoutError, EOFError):
            pass
        finally:
            stream.close()

    async def _addresses_for(self, peer: bytes) -> list[tuple[str, int]]:
        """Where ``peer`` listens: its live chat link first, then remembered addresses."""
        out: list[tuple[str, int]] = []
        link = self.node.links.links.get(peer)
        if link is not None and not link.conn.is_closed and link.conn.remote.port:
            out.append((link.conn.remote.host, link.conn.remote.port))
        known = self.node.core.contacts.addresses.get(peer)
        if known is not None:
            out.append(known)
        stored = await self.node.core.read(lambda s: s.addresses_for(peer))
        out.extend((a.host, a.port) for a in stored)
        out.extend(self.node.links.onion_targets(peer))  # through tor, after the LAN
        return list(dict.fromkeys(out))

    async def _dial(self, peer: bytes) -> Connection:
        # The name follows the chat link's rule: a stranger whose file we accept learns
        # no more of us than its chat link did.
        hello = LocalHello(
            identity=self.node.identity,
            name=self.node.profile.display_name,
            purpose=PURPOSE_FILES,
            reveal_name=self.node.name_disclosure.allows,
        )
        addresses = await self.addresses_for(peer)
        if not addresses:
            raise RetryError(f"{self.node.peer_name(peer)} is offline")
        last = ""
        for host, port in addresses[:4]:
            try:
                return await connect(
                    host,
                    port,
                    hello,
                    expected_peer=peer,
                    **self.node.links.dial_options(host),
                )
            except TransportError as exc:
                last = str(exc)
        raise RetryError(f"cannot reach {self.node.peer_name(peer)}: {last}")

    async def dial_files(self, peer: bytes) -> Connection:
        """A ``files`` connection to ``peer`` (stickers fetch their pictures on one);
        TransferError if it cannot be reached."""
        try:
            return await self._dial(peer)
        except RetryError as exc:
            raise TransferError(str(exc)) from None

    def _request(
        self,
        conn: Connection,
        row: TransferRow,
        inflight: deque[list[int]],
        next_offset: int,
        *,
        span: int,
        window: int,
    ) -> int:
        """Send ``get``s (each for up to ``span`` bytes) until ``window`` are in flight;
        return the offset the next one would start at."""
        chunk = min(row.chunk, MAX_CHUNK_DATA)
        gets: list[ChunkRequest] = []
        while len(inflight) < window and next_offset < row.size:
            end = min(row.size, next_offset + span)
            count = -(-(end - next_offset) // chunk)
            req = next(self._reqs)
            gets.append(
                ChunkRequest(
                    req=req, hash=row.sha256, offset=next_offset, length=chunk, count=count
                )
            )
            inflight.append([req, next_offset, count])
            next_offset = end
        conn.write_frames(gets)
        return next_offset

    def _check_chunk(
        self,
        frame: Chunk,
        row: TransferRow,
        inflight: deque[list[int]],
        *,
        chunk: int,
        source: bytes,
        per_get: int,
    ) -> None:
        """Check that ``frame`` is the next chunk due and count it; RetryError if not."""
        due = inflight[0] if inflight else None
        if due is None or frame.req != due[0]:
            if due is not None and per_get > 1:
                # A server that predates get.count answers one chunk per get.
                self._one_chunk_sources.add(source)
            raise RetryError("the sender answered out of order")
        offset = due[1]
        if (
            frame.hash != row.sha256
            or frame.offset != offset
            or len(frame.data) != min(chunk, row.size - offset)
        ):
            raise RetryError("the sender answered out of order or with a wrong length")
        due[1] = offset + len(frame.data)
        due[2] -= 1
        if due[2] == 0:
            inflight.popleft()

    async def _pull_once(self, row: TransferRow, sink: PartFile, source: bytes) -> None:
        """One connection's worth of pulling from ``source``; RetryError when it breaks."""
        conn = await self._dial(source)
        if sink.state != "active":
            await self._set_state(row, "active", done=sink.offset)
            sink.state = "active"
        size = row.size
        chunk = min(row.chunk, MAX_CHUNK_DATA)
        per_get = 1 if source in self._one_chunk_sources else GET_CHUNKS
        window = max(2, WINDOW_BYTES // (chunk * per_get))
        # Requests in flight, oldest first: [req, offset of the next chunk due, chunks due].
        inflight: deque[list[int]] = deque()
        next_offset = sink.offset
        try:
            while sink.offset < size:
                if len(inflight) < window and next_offset < size:
                    next_offset = self._request(
                        conn, row, inflight, next_offset, span=chunk * per_get, window=window
                    )
                    await conn.flush()
                if conn.has_buffered:  # no timer needed for what is already here
                    frame = await conn.recv()
                else:
                    try:
                        async with asyncio.timeout(STALL_TIMEOUT):
                            frame = await conn.recv()
                    except TimeoutError:
                        raise RetryError("the transfer stalled") from None
                if isinstance(frame, Chunk):
                    self._check_chunk(
                        frame, row, inflight, chunk=chunk, source=source, per_get=per_get
                    )
                    await sink.write(frame.data)
                    self._emit(row, "active", sink.offset, force=False)
                elif isinstance(frame, ChunkError):
                    if frame.reason.startswith(BUSY):
                        raise RetryError(f"the sender is busy: {frame.reason}")
                    raise RefusedError(frame.reason)
                elif isinstance(frame, Bye):
                    raise RetryError(f"the sender closed: {frame.reason}")
        except (ConnectionClosedError, TransportError) as exc:
            reason = str(exc)  # the transport's reasons mostly say "connection lost" already
            if not reason.startswith("connection lost"):
                reason = f"connection lost: {reason}"
            raise RetryError(reason) from None
        finally:
            await conn.close("done" if sink.offset >= row.size else "pull interrupted")
