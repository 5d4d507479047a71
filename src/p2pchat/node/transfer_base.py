"""What every part of the file transfers shares: limits, state, events and queries.

``TransferService`` (node/transfer.py) is assembled from parts: this base, serving
chunks to peers (transfer_serve.py), pulling files from them (transfer_pull.py); it adds
offers, accepting and the lifecycle. Disk helpers are in transfer_disk.py.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from p2pchat.node.envelopes import KIND_FILE
from p2pchat.node.errors import NodeError
from p2pchat.node.events import TransferProgress
from p2pchat.node.file_io import background_priority
from p2pchat.node.files import LocalFile, Manifest, ManifestError, decode_manifest, safe_name
from p2pchat.node.model import TransferInfo
from p2pchat.store import Store
from p2pchat.store import transfers as sql
from p2pchat.store.transfers import TransferRow, TransferState
from p2pchat.transport import Connection
from p2pchat.wire import encode_chunk

if TYPE_CHECKING:
    from p2pchat.node.facade import NodeFacade

from collections.abc import Iterator

from p2pchat.node.transfer_disk import DiskSpace, part_size

log = logging.getLogger(__name__)

#: Store setting: the largest file (bytes) accepted without asking, from contacts.
SETTING_AUTO_ACCEPT: Final = "file_auto_accept_max"
DEFAULT_AUTO_ACCEPT: Final = 100 * 1024 * 1024
#: Hidden folder inside the download folder where files grow until verified.
PARTS_DIR: Final = ".p2pchat-partial"
#: Chunks asked for by one ``get`` (``get.count``): about 1 MB per request, so requests
#: are rare and cheap next to the bytes they bring.
GET_CHUNKS: Final = 16
#: Bytes requested and not yet received, per pull: enough to keep a LAN link busy while
#: the other side reads, encrypts and sends; small enough to bound memory.
WINDOW_BYTES: Final = 3 << 20
#: A pull that hears nothing for this long reconnects.
STALL_TIMEOUT: Final = 20.0
#: A files connection idle this long is closed by the server.
SERVE_IDLE_TIMEOUT: Final = 120.0
#: Server limits: connections overall and per peer; chunk bytes encrypted and handed to
#: the socket at once.
MAX_SERVING: Final = 32
MAX_SERVING_PER_PEER: Final = 4
#: Files connections from peers we will not serve, answered (one ``nochunk``) at once
#: and for how long each may wait for its first ``get``: they hold no serving slot.
MAX_REFUSING: Final = 16
REFUSE_TIMEOUT: Final = 5.0
SEND_BATCH: Final = 1 << 20
#: States of a download that is (or should be) pulling.
PULLING_STATES: Final = ("waiting", "active", "paused")
#: Downloads pulling at once; more wait their turn.
MAX_ACTIVE_PULLS: Final = 4
#: Threads encrypting file chunks, for all files connections.
CRYPTO_THREADS: Final = 2
#: Reconnect backoff for a pull (seconds).
RETRY_INITIAL: Final = 0.2
RETRY_MAX: Final = 10.0
#: Progress events per transfer per second, at most.
PROGRESS_HZ: Final = 10.0
#: ``nochunk`` reasons that mean "try again later" start with this word.
BUSY: Final = "busy"
REASON_CANCELLED: Final = "cancelled by the sender"
REASON_UNAVAILABLE: Final = "not available"


class TransferError(NodeError):
    """A transfer request that cannot be carried out; the message is for people."""


class RetryError(Exception):
    """The connection broke or the source is unreachable: try again later."""


class RefusedError(Exception):
    """The source refused for good (``nochunk``): stop pulling."""


@dataclass
class Meter:
    """Bytes done, a smoothed rate, and when progress was last announced."""

    done: int = 0
    rate: float = 0.0
    last_emit: float = 0.0
    last_t: float = field(default_factory=time.monotonic)
    last_done: int = 0
    # A throttled update is announced a little later, so the last figure is never lost.
    trailing: asyncio.TimerHandle | None = None

    def update(self, done: int) -> None:
        self.done = done
        now = time.monotonic()
        dt = now - self.last_t
        if dt >= 0.25:
            instant = (done - self.last_done) / dt
            self.rate = instant if self.rate == 0 else 0.7 * self.rate + 0.3 * instant
            self.last_t, self.last_done = now, done

    def eta(self, size: int) -> float | None:
        if self.rate <= 0:
            return None
        return max(0.0, (size - self.done) / self.rate)


def crypto_pool() -> ThreadPoolExecutor:
    return ThreadPoolExecutor(
        max_workers=CRYPTO_THREADS,
        thread_name_prefix="p2pchat-files-crypto",
        initializer=background_priority,
    )


@dataclass
class Outgoing:
    """What this node knows, while it runs, of one of its own offers being served."""

    furthest: int = 0  # the furthest any peer has pulled it
    serving: int = 0  # connections serving it now
    paused: bool = False  # set "paused" since the last chunk served
    whole: bool = False  # someone has pulled all of it
    revoked: bool = False  # cancelled (maybe not stored as cancelled yet)


#: One chunk to serve: (req, file hash, offset, a view of the bytes).
ChunkOut = tuple[int, bytes, int, memoryview]


def encode_chunk_out(item: ChunkOut) -> bytes:
    return encode_chunk(*item)


class TransferBase:
    """State and plumbing every part of the transfers uses (see the module docstring)."""

    # Set up by TransferService.__init__ (node/transfer.py); declared here for the parts.
    node: NodeFacade
    disk_space: Callable[[Path], DiskSpace]
    keep_free: int | None
    addresses_for: Callable[[bytes], Awaitable[list[tuple[str, int]]]]
    auto_accept_max: int
    _space_watch: asyncio.Task[None] | None
    _reserving: asyncio.Lock
    _pulls: dict[bytes, asyncio.Task[None]]
    _changes: dict[bytes, asyncio.Lock]
    _outgoing: dict[bytes, Outgoing]
    _meters: dict[bytes, Meter]
    _dims: dict[bytes, tuple[int | None, int | None]]
    _offering: dict[bytes, LocalFile]
    _serving: dict[Connection, set[asyncio.Task[Any]]]
    _serving_tasks: set[asyncio.Task[None]]
    _refusing: int
    _auth_generation: int
    _reqs: Iterator[int]
    _crypto: ThreadPoolExecutor
    _one_chunk_sources: set[bytes]
    _pull_slots: asyncio.Semaphore
    _tasks: set[asyncio.Task[Any]]
    _started: bool

    def _now_ms(self) -> int:
        """Wall-clock ms (TransferService reads it through node/transfer.py's ``now_ms``)."""
        raise NotImplementedError

    # ================================================================ events

    def _emit(
        self,
        row: TransferRow,
        state: str,
        done: int,
        *,
        detail: str = "",
        force: bool = True,
    ) -> None:
        meter = self._meters.setdefault(row.message_id, Meter())
        meter.update(done)
        now = time.monotonic()
        wait = meter.last_emit + 1.0 / PROGRESS_HZ - now
        if not force and wait > 0:
            if meter.trailing is None:
                meter.trailing = asyncio.get_running_loop().call_later(
                    wait, lambda: self._emit(row, state, meter.done, detail=detail)
                )
            return
        if meter.trailing is not None:
            meter.trailing.cancel()
            meter.trailing = None
        meter.last_emit = now
        active = state == "active"
        self.node.core.emit(
            TransferProgress(
                message_id=row.message_id,
                room=row.room,
                name=row.name,
                size=row.size,
                done=done,
                rate=meter.rate if active else 0.0,
                eta=meter.eta(row.size) if active else None,
                state=state,
                detail=detail,
                incoming=row.incoming,
            )
        )

    async def _set_state(
        self,
        row: TransferRow,
        state: TransferState,
        *,
        detail: str = "",
        done: int | None = None,
        path: str | None = None,
        part: str | None = None,
    ) -> TransferRow:
        at = self._now_ms()

        def work(store: Store) -> TransferRow | None:
            sql.set_state(store, row.message_id, state, at, detail=detail, path=path, part=part)
            return sql.get_transfer(store, row.message_id)

        updated = await self.node.core.write(work) or row
        if done is None:
            meter = self._meters.get(row.message_id)
            done = row.size if state == "done" else (meter.done if meter else 0)
        self._emit(updated, state, done, detail=detail)
        return updated

    # ================================================================ queries

    async def list_transfers(self, limit: int = 200) -> list[TransferInfo]:
        """Transfers, newest first, with live progress."""
        rows = await self.node.core.read(functools.partial(sql.list_transfers, limit=limit))
        return await self._infos(rows)

    async def get(self, message_id: bytes) -> TransferInfo | None:
        """One transfer by message id."""
        row = await self.node.core.read(lambda s: sql.get_transfer(s, message_id))
        if row is None:
            return None
        return (await self._infos([row]))[0]

    async def _infos(self, rows: list[TransferRow]) -> list[TransferInfo]:
        """Rows as TransferInfo, with picture sizes from their manifests (cached)."""
        missing = [
            r.message_id
            for r in rows
            if r.mime.startswith("image/") and r.message_id not in self._dims
        ]
        if missing:
            for message in await self.node.core.read(lambda s: s.get_messages(missing)):
                with contextlib.suppress(ManifestError):
                    m = decode_manifest(message.body)
                    self._dims[message.id] = (m.width, m.height)
        return await asyncio.to_thread(lambda: [self._info(r) for r in rows])

    async def find(self, text: str) -> TransferInfo:
        """The transfer whose id (hex) starts with ``text``; raises TransferError."""
        cleaned = text.strip().lower()
        if len(cleaned) % 2:
            cleaned = cleaned[:-1]
        try:
            prefix = bytes.fromhex(cleaned)
        except ValueError:
            raise TransferError(f"{text!r} is not a transfer id (hex digits)") from None
        if len(prefix) < 2:
            raise TransferError("give at least 4 hex digits of the transfer id")
        rows = await self.node.core.read(lambda s: sql.find_transfers(s, prefix))
        if not rows:
            raise TransferError(f"no transfer with id {text!r}")
        if len(rows) > 1:
            raise TransferError(f"{text!r} matches {len(rows)} transfers; give more digits")
        return (await self._infos(rows))[0]

    async def manifest(self, message_id: bytes) -> Manifest | None:
        """The manifest of a file message (name, size, mime, w/h, thumbnail...).

        Its name is the sanitised one (what the file is saved as): this is what screens
        show, and a sender's bidi overrides or invisible characters must not reach them.
        """
        message = await self.node.get_message(message_id)
        if message is None or message.kind != KIND_FILE:
            return None
        try:
            manifest = decode_manifest(message.body)
        except ManifestError:
            return None
        return replace(manifest, name=safe_name(manifest.name))

    async def thumbnail(self, message_id: bytes) -> bytes | None:
        """The small JPEG the sender attached to a picture (untrusted bytes), if any."""
        m = await self.manifest(message_id)
        return None if m is None else m.thumb

    async def open_path(self, message_id: bytes) -> Path | None:
        """The local file to open: a received file once verified, or the file we sent."""
        info = await self.get(message_id)
        if info is None or info.path is None:
            return None
        if info.incoming and info.state != "done":
            return None
        return Path(info.path)

    def _info(self, row: TransferRow) -> TransferInfo:
        """Blocking (stats the part file): call in a thread."""
        meter = self._meters.get(row.message_id)
        if row.state == "done":
            done = row.size
        elif meter is not None:
            done = meter.done
        elif row.incoming:
            done = min(part_size(row.part), row.size)
        else:
            done = 0
        active = row.state == "active" and meter is not None
        return TransferInfo(
            message_id=row.message_id,
            room=row.room,
            peer=row.peer,
            incoming=row.incoming,
            name=row.name,
            size=row.size,
            mime=row.mime,
            sha256=row.sha256,
            state=row.state,
            done=done,
            rate=meter.rate if active and meter else 0.0,
            eta=meter.eta(row.size) if active and meter else None,
            path=row.path,
            detail=row.detail,
            created_at=row.created_at,
            width=self._dims.get(row.message_id, (None, None))[0],
            height=self._dims.get(row.message_id, (None, None))[1],
        )
