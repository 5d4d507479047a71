"""File transfers: offers, pulls by range over a separate connection, resume, verify.

The sender offers a file as a signed ``file`` message whose body is a manifest
(:mod:`p2pchat.node.files`). The receiver, once the offer is accepted (automatically for
contacts up to a size limit, or by the person), opens a *separate* Noise connection
(``purpose: "files"``) to a peer holding the file and pulls it by range (``get`` /
``chunk`` / ``nochunk``), several requests in flight. Bytes go to a ``.part`` file in a
hidden folder of the download directory, hashed as they are written; after any break
(connection cut, either side restarted, ``kill -9``) the pull resumes from the part's
length. The whole-file SHA-256 is checked before the file is moved into the download
folder under a sanitised, unique name; a mismatch deletes the part.

Serving is content-addressed: a ``get`` names only a hash, and we answer it only from a
file we offered (unchanged since) or received and verified, and only to a contact who is
a member of a room where that file was offered. Everything else gets ``nochunk``.

This module must never put an unverified byte at a path the person sees, never build a
path from a peer's name except through ``files.safe_name`` + ``files.inside``, never load
a whole file into memory, and never block the event loop on disk I/O or hashing (those
run in threads): the loop is also the chat's and the UI's.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import functools
import itertools
import logging
import os
import shutil
import time
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from p2pchat.identity import short_id
from p2pchat.node.envelopes import KIND_FILE
from p2pchat.node.errors import NodeError
from p2pchat.node.events import PeerOnline, TransferProgress
from p2pchat.node.file_io import FileSource, PartFile, background_priority
from p2pchat.node.files import (
    LocalFile,
    Manifest,
    ManifestError,
    decode_manifest,
    describe_local_file,
    inside,
    numbered_name,
    safe_name,
)
from p2pchat.node.model import TransferInfo, human_size
from p2pchat.node.settings import SETTING_DOWNLOAD_DIR
from p2pchat.paths import default_downloads_dir
from p2pchat.store import Store, now_ms
from p2pchat.store import transfers as sql
from p2pchat.store.transfers import TransferRow, TransferState
from p2pchat.transport import Connection, ConnectionClosedError, LocalHello, TransportError, connect
from p2pchat.wire import (
    MAX_CHUNK_DATA,
    PURPOSE_FILES,
    Bye,
    Chunk,
    ChunkError,
    ChunkRequest,
    encode_chunk,
)

if TYPE_CHECKING:
    from p2pchat.node.facade import NodeFacade
    from p2pchat.store import Message

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
#: Free space every download leaves on its disk, whatever else is being downloaded:
#: 1 % of the disk, at least FLOOR_MIN and at most FLOOR_MAX (a chat must not be the
#: program that fills the disk the rest of the system, and its own store, write to).
FLOOR_MIN: Final = 16 * 1024 * 1024
FLOOR_MAX: Final = 1024 * 1024 * 1024
#: ``nochunk`` reasons that mean "try again later" start with this word.
BUSY: Final = "busy"
REASON_CANCELLED: Final = "cancelled by the sender"
REASON_UNAVAILABLE: Final = "not available"


class TransferError(NodeError):
    """A transfer request that cannot be carried out; the message is for people."""


class _RetryError(Exception):
    """The connection broke or the source is unreachable: try again later."""


class _RefusedError(Exception):
    """The source refused for good (``nochunk``): stop pulling."""


@dataclass
class _Meter:
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


def _crypto_pool() -> ThreadPoolExecutor:
    return ThreadPoolExecutor(
        max_workers=CRYPTO_THREADS,
        thread_name_prefix="p2pchat-files-crypto",
        initializer=background_priority,
    )


@dataclass
class _Outgoing:
    """What this node knows, while it runs, of one of its own offers being served."""

    furthest: int = 0  # the furthest any peer has pulled it
    serving: int = 0  # connections serving it now
    paused: bool = False  # set "paused" since the last chunk served
    whole: bool = False  # someone has pulled all of it
    revoked: bool = False  # cancelled (maybe not stored as cancelled yet)


#: One chunk to serve: (req, file hash, offset, a view of the bytes).
_ChunkOut = tuple[int, bytes, int, memoryview]


def _encode_chunk_out(item: _ChunkOut) -> bytes:
    return encode_chunk(*item)


@dataclass(frozen=True, slots=True)
class DiskSpace:
    """What the disk holding a folder has: free and total bytes."""

    free: int
    total: int


def _existing(path: Path) -> Path:
    """``path`` or its nearest existing parent (the download folder may not exist yet)."""
    probe = path
    while not probe.exists() and probe.parent != probe:
        probe = probe.parent
    return probe


def _default_disk_space(path: Path) -> DiskSpace:
    usage = shutil.disk_usage(_existing(path))
    return DiskSpace(free=usage.free, total=usage.total)


def free_space_floor(total: int) -> int:
    """Bytes a disk of ``total`` bytes keeps free however many downloads are accepted."""
    return min(FLOOR_MAX, max(FLOOR_MIN, total // 100))


def _device(path: Path) -> int:
    try:
        return _existing(path).stat().st_dev
    except OSError:
        return -1


def _still_to_write(rows: list[TransferRow], folder: Path, exclude: bytes) -> int:
    """Bytes the accepted downloads among ``rows`` still have to write on the disk that
    holds ``folder`` (their size less what their part already holds). Blocking."""
    device = _device(folder)
    total = 0
    for r in rows:
        if r.message_id == exclude or not r.part:
            continue
        if _device(Path(r.part).parent) != device:
            continue
        total += max(0, r.size - _part_size(r.part))
    return total


#: How the detail of a transfer stopped (or refused) for lack of space begins: such
#: transfers start again by themselves once the space is there (see _retry_when_space).
DISK_FULL = "the disk holding"
NOT_ENOUGH_SPACE = "not enough free space"
#: How often to look whether space came back, while some transfer waits for it.
SPACE_RETRY_INTERVAL = 5.0


def _write_failure(exc: OSError, folder: Path) -> str:
    """A person's reason for a write error (a full disk says so plainly)."""
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return (
            f"{DISK_FULL} {folder} is full; the partial file was deleted, and the download "
            "starts again by itself when there is room"
        )
    return f"cannot write the file: {exc}; the partial file was deleted"


def _place(part: Path, folder: Path, name: str) -> Path:
    """Move a verified part to ``folder/name`` (or ``name (n)``), never overwriting."""
    folder.mkdir(parents=True, exist_ok=True)
    for n in range(100_000):
        target = inside(folder, numbered_name(name, n))
        try:
            fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        except FileExistsError:
            continue
        os.close(fd)
        os.replace(part, target)
        return target
    raise OSError(f"no free name for {name!r} in {folder}")


def _unlink(path: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        path.unlink()


def _unlink_all(paths: list[str]) -> None:
    for path in paths:
        with contextlib.suppress(OSError):
            _unlink(Path(path))


def _part_size(part: str | None) -> int:
    if not part:
        return 0
    try:
        return os.stat(part).st_size
    except OSError:
        return 0


class TransferService:
    """Owns every file transfer of one node: offers, downloads, and serving chunks."""

    def __init__(self, node: NodeFacade) -> None:
        self.node = node
        #: Free and total bytes of the disk holding ``path`` (tests may replace it).
        self.disk_space: Callable[[Path], DiskSpace] = _default_disk_space
        #: Bytes to keep free on the download disk; None: :func:`free_space_floor`.
        self.keep_free: int | None = None
        self._space_watch: asyncio.Task[None] | None = None
        #: Accepting is one decision at a time: each counts what the others reserved.
        self._reserving = asyncio.Lock()
        #: Where to reach a peer's node for files; tests may route through a proxy.
        self.addresses_for: Callable[[bytes], Awaitable[list[tuple[str, int]]]] = (
            self._addresses_for
        )
        self.auto_accept_max = DEFAULT_AUTO_ACCEPT
        self._pulls: dict[bytes, asyncio.Task[None]] = {}
        self._changes: dict[bytes, asyncio.Lock] = {}
        self._outgoing: dict[bytes, _Outgoing] = {}  # our offers, by message id
        self._meters: dict[bytes, _Meter] = {}
        self._dims: dict[bytes, tuple[int | None, int | None]] = {}
        self._offering: dict[bytes, LocalFile] = {}
        self._serving: dict[Connection, set[asyncio.Task[Any]]] = {}
        self._serving_tasks: set[asyncio.Task[None]] = set()
        self._refusing = 0  # files connections from non-contacts being turned away
        self._auth_generation = 0
        self._reqs = itertools.count(1)
        #: Encrypts file chunks off the event loop, at a lower priority.
        self._crypto = _crypto_pool()
        #: Sources that answered a multi-chunk ``get`` with one chunk (older servers).
        self._one_chunk_sources: set[bytes] = set()
        self._pull_slots = asyncio.Semaphore(MAX_ACTIVE_PULLS)
        self._tasks: set[asyncio.Task[Any]] = set()
        self._started = False

    # ================================================================ lifecycle

    async def start(self) -> None:
        """Load the settings and resume unfinished downloads (called once the node is up)."""
        value = await self.node.core.read(lambda s: s.get_setting(SETTING_AUTO_ACCEPT))
        if value is not None and value.isdigit():
            self.auto_accept_max = int(value)
        self._started = True
        # Parts of downloads that ended for good (an older version kept some, or we
        # stopped before deleting one) only take space: remove them.
        stale = await self.node.core.read(sql.ended_download_parts)
        if stale:
            await asyncio.to_thread(_unlink_all, stale)
        for row in await self.node.core.read(sql.pending_downloads):
            self._start_pull(row.message_id)
        self._space_watch = asyncio.ensure_future(self._retry_when_space())

    async def _retry_when_space(self) -> None:
        """Start again, when the disk has room, what stopped or was refused for lack of it.

        A failed download stays failed after space is freed otherwise, and the person
        must notice and retry by hand. Cheap while nothing waits: one store read a round.
        """
        tries: dict[bytes, tuple[int, float]] = {}  # message -> (starts so far, next due)
        while True:
            await asyncio.sleep(SPACE_RETRY_INTERVAL)
            try:
                rows = await self.node.core.read(
                    lambda s: sql.waiting_for_space(s, (DISK_FULL, NOT_ENOUGH_SPACE))
                )
                now = asyncio.get_running_loop().time()
                for row in rows:
                    count, due = tries.get(row.message_id, (0, 0.0))
                    if now < due:
                        continue
                    with contextlib.suppress(TransferError):  # still no room: next round
                        await self.accept(row.message_id)
                        # Started: if the disk fills again (a wrong free-space reading),
                        # the next start waits longer each time.
                        pause = SPACE_RETRY_INTERVAL * 2 ** min(count, 7)
                        tries[row.message_id] = (count + 1, now + pause)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("retrying downloads that waited for space failed")

    async def stop(self) -> None:
        """Stop transfers, keeping ``.part`` files for resume."""
        self._started = False
        if self._space_watch is not None:
            self._space_watch.cancel()
        tasks = [*self._pulls.values(), *self._tasks]
        for task in tasks:
            task.cancel()
        for conn in list(self._serving):
            await conn.close("shutting down")
        if tasks:
            await asyncio.wait(tasks, timeout=5)
        self._pulls.clear()
        self._crypto.shutdown(wait=False)
        self._crypto = _crypto_pool()  # idle until used: start() may run again

    def _spawn(self, coro: Awaitable[Any], name: str) -> asyncio.Task[Any]:
        task: asyncio.Task[Any] = asyncio.ensure_future(coro)
        task.set_name(name)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)
        return task

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("transfer task %s failed", task.get_name(), exc_info=task.exception())

    # ================================================================ settings

    async def set_auto_accept_max(self, size: int) -> None:
        """Accept files from contacts up to ``size`` bytes without asking (0 = always ask)."""
        if size < 0:
            raise TransferError("the automatic acceptance limit cannot be negative")
        await self.node.core.write(lambda s: s.set_setting(SETTING_AUTO_ACCEPT, str(size)))
        self.auto_accept_max = size

    def download_dir(self) -> Path:
        """The folder received files go to (the setting, or the platform's Downloads)."""

        chosen = self.node.text_setting(SETTING_DOWNLOAD_DIR)
        return Path(chosen).expanduser() if chosen else default_downloads_dir()

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
            done = min(_part_size(row.part), row.size)
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
        meter = self._meters.setdefault(row.message_id, _Meter())
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
        at = now_ms()

        def work(store: Store) -> TransferRow | None:
            sql.set_state(store, row.message_id, state, at, detail=detail, path=path, part=part)
            return sql.get_transfer(store, row.message_id)

        updated = await self.node.core.write(work) or row
        if done is None:
            meter = self._meters.get(row.message_id)
            done = row.size if state == "done" else (meter.done if meter else 0)
        self._emit(updated, state, done, detail=detail)
        return updated

    # ================================================================ offers

    def check_offer(self, body: bytes) -> str | None:
        """Why a received ``file`` envelope body is unacceptable, or None if it is fine."""
        try:
            decode_manifest(body)
        except ManifestError as exc:
            return str(exc)
        return None

    async def send_file(self, peer_id: bytes, path: Path) -> Message:
        """Offer ``path`` to ``peer_id``: hash it (in a thread) and send the ``file`` message.

        Raises TransferError if the file cannot be read; NodeError from the node (blocked
        peer, node not running).
        """
        local = await self._describe(path)
        return await self._offer(
            local, lambda body: self.node.send_envelope(peer_id, KIND_FILE, body, None)
        )

    async def send_file_to_room(self, room: bytes, path: Path) -> Message:
        """Offer a file in a room, direct or group (the UI sends to the open conversation)."""
        peer = await self.node.room_peer(room)
        if peer is not None:
            return await self.send_file(peer, path)
        local = await self._describe(path)
        return await self._offer(
            local, lambda body: self.node.groups.send_envelope(room, KIND_FILE, body, None)
        )

    async def _describe(self, path: Path) -> LocalFile:
        try:
            return await asyncio.to_thread(
                lambda: describe_local_file(Path(path).expanduser().resolve())
            )
        except FileNotFoundError:
            raise TransferError(f"no such file: {path}") from None
        except PermissionError:
            raise TransferError(f"cannot read {path}: permission denied") from None
        except IsADirectoryError:
            raise TransferError(f"{path} is a folder; send a file (or an archive of it)") from None
        except (OSError, ValueError) as exc:
            raise TransferError(f"cannot send {path}: {exc}") from None

    async def _offer(
        self, local: LocalFile, send: Callable[[bytes], Awaitable[Message]]
    ) -> Message:
        # on_file_message (called while the message is published) finds the local path
        # here by the envelope body, before any peer can ask for a chunk.
        body = local.manifest.encode()
        self._offering[body] = local
        try:
            return await send(body)
        finally:
            self._offering.pop(body, None)

    async def on_file_message(self, message: Message, incoming: bool) -> None:
        """A ``file`` message was stored (ours or a peer's): record its transfer.

        Called on the node's ingest path, so it only writes one row and spawns work.
        """
        try:
            manifest = decode_manifest(message.body)
        except ManifestError:
            return
        now = now_ms()
        if manifest.width is not None:
            self._dims[message.id] = (manifest.width, manifest.height)
        if incoming and message.author == self.node.me:
            return  # our own offer relayed back to us (group sync): nothing to fetch
        if incoming:
            row = TransferRow(
                message_id=message.id,
                room=message.room,
                peer=message.author,
                incoming=True,
                name=safe_name(manifest.name),
                size=manifest.size,
                mime=manifest.mime,
                sha256=manifest.sha256,
                chunk=manifest.chunk,
                state="offered",
                path=None,
                part=None,
                src_mtime=None,
                detail="",
                created_at=now,
                updated_at=now,
            )
        else:
            local = self._offering.get(message.body)
            if local is None:
                return  # an offer made elsewhere (another device, a sync): nothing to serve
            # Direct room: the other person. Group room: ourselves (the room is the audience).
            peer = await self.node.room_peer(message.room) or self.node.me
            row = TransferRow(
                message_id=message.id,
                room=message.room,
                peer=peer,
                incoming=False,
                name=manifest.name,
                size=manifest.size,
                mime=manifest.mime,
                sha256=manifest.sha256,
                chunk=manifest.chunk,
                state="offered",
                path=str(local.path),
                part=None,
                src_mtime=local.mtime_ns,
                detail="",
                created_at=now,
                updated_at=now,
            )
        inserted = await self.node.core.write(lambda s: sql.add_transfer(s, row))
        if not inserted:
            return
        self._emit(row, "offered", 0)
        if (
            incoming
            and self._started
            and self.node.core.contacts.is_contact(message.author)
            and manifest.size <= self.auto_accept_max
        ):
            self._spawn(self._auto_accept(message.id), f"accept {message.id.hex()[:8]}")

    async def _auto_accept(self, message_id: bytes) -> None:
        with contextlib.suppress(TransferError):
            await self.accept(message_id)

    # ================================================================ accept, decline, cancel

    async def accept(self, message_id: bytes) -> TransferInfo:
        """Download an offered file (or retry a failed one). Checks free space first.

        Raises TransferError if the file is not an incoming offer, or if the disk lacks
        room for it (the offer stays, so the person can free space and try again).
        """
        async with self._changing(message_id):
            return await self._accept(message_id)

    async def _accept(self, message_id: bytes) -> TransferInfo:
        row = await self.node.core.read(lambda s: sql.get_transfer(s, message_id))
        if row is None:
            raise TransferError("no such file transfer")
        if not row.incoming:
            raise TransferError("that is a file you sent")
        if row.state in (*PULLING_STATES, "done"):
            return (await self._infos([row]))[0]
        folder = self.download_dir()
        # Named by our own id too: profiles on one machine may share a download folder
        # and receive the same offer (a group room), and must not write one part file.
        name = f"{self.node.me.hex()[:16]}-{message_id.hex()}.part"
        part = Path(row.part) if row.part else folder / PARTS_DIR / name
        async with self._reserving:
            have = await asyncio.to_thread(_part_size, str(part))
            detail = await self._space_problem(row, part, have)
            if detail is not None:
                # Kept with the offer, so every screen can say why it is not downloading.
                await self._set_state(row, "offered", detail=detail, done=have)
                raise TransferError(detail)
            row = await self._set_state(row, "waiting", part=str(part), done=have)
        self._start_pull(message_id)
        return (await self._infos([row]))[0]

    async def _space_problem(self, row: TransferRow, part: Path, have: int) -> str | None:
        """Why the disk cannot take this download now, or None.

        Free space is counted against every download already accepted, not this one
        alone: each of them will still write its remaining bytes, and accepting six
        offers that each fit alone would fill the disk. A floor stays free besides.
        """
        pending = await self.node.core.read(sql.pending_downloads)

        def measure() -> tuple[DiskSpace, int]:
            return self.disk_space(part.parent), _still_to_write(
                pending, part.parent, row.message_id
            )

        space, reserved = await asyncio.to_thread(measure)
        floor = self.keep_free
        if floor is None:
            floor = free_space_floor(space.total)
        need = row.size - have
        if need + reserved + floor <= space.free:
            return None
        others = f", {human_size(reserved)} are promised to other downloads" if reserved else ""
        return (
            f"{NOT_ENOUGH_SPACE} in {part.parent.parent}: {row.name} needs "
            f"{human_size(need)}, {human_size(space.free)} are free{others}, and "
            f"{human_size(floor)} must stay free"
        )

    async def decline(self, message_id: bytes) -> None:
        """Refuse an incoming offer (nothing is downloaded)."""
        await self.cancel(message_id, detail="declined")

    async def cancel(self, message_id: bytes, *, detail: str = "cancelled") -> None:
        """Stop a transfer for good. Incoming: stop pulling and delete the part.
        Outgoing: revoke the offer (every further chunk request is refused)."""
        async with self._changing(message_id):
            await self._cancel(message_id, detail)

    async def _cancel(self, message_id: bytes, detail: str) -> None:
        row = await self.node.core.read(lambda s: sql.get_transfer(s, message_id))
        if row is None:
            raise TransferError("no such file transfer")
        if row.state in ("done", "cancelled") and row.incoming:
            return
        task = self._pulls.pop(message_id, None)
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        if row.incoming and row.part:
            await asyncio.to_thread(_unlink, Path(row.part))
        if not row.incoming:
            # Revoked in memory first: a request answered meanwhile may still read the
            # old state from the store, and must not serve (or report) it any more.
            self._outgoing_state(message_id).revoked = True
            self._auth_generation += 1
        await self._set_state(row, "cancelled", detail=detail, done=0)

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
        self._meters[row.message_id] = _Meter(done=have, last_done=have)
        delay = RETRY_INITIAL
        sink.state = row.state
        while sink.offset < row.size:
            before = sink.offset
            try:
                await self._pull_round(row, sink)
            except _RefusedError as exc:
                reason = str(exc)
                cancelled = reason.startswith("cancelled")
                await sink.close()
                await asyncio.to_thread(_unlink, sink.part)
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
            except _RetryError as exc:
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
            await asyncio.to_thread(_unlink, sink.part)
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
            final = await asyncio.to_thread(_place, sink.part, folder, row.name)
        except OSError as exc:
            await sink.close()
            await asyncio.to_thread(_unlink, sink.part)
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
        await asyncio.to_thread(_unlink, sink.part)
        folder = sink.part.parent.parent
        await self._set_state(row, "failed", detail=_write_failure(exc, folder), done=0)

    async def _pull_round(self, row: TransferRow, sink: PartFile) -> None:
        """Try the author, then other members online (any holder of the whole file may
        serve it). Raises _RefusedError if the author refuses for good, _RetryError if no
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
        last: Exception = _RetryError(f"{self.node.peer_name(row.peer)} is offline")
        for source in sources:
            try:
                await self._pull_once(row, sink, source)
                return
            except _RefusedError as exc:
                if source == row.peer:
                    raise
                last = _RetryError(f"{self.node.peer_name(source)} cannot serve it: {exc}")
            except _RetryError as exc:
                last = exc if source == row.peer or len(sources) == 1 else last
        raise last if isinstance(last, _RetryError) else _RetryError(str(last))

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
            raise _RetryError(f"{self.node.peer_name(peer)} is offline")
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
        raise _RetryError(f"cannot reach {self.node.peer_name(peer)}: {last}")

    async def dial_files(self, peer: bytes) -> Connection:
        """A ``files`` connection to ``peer`` (stickers fetch their pictures on one);
        TransferError if it cannot be reached."""
        try:
            return await self._dial(peer)
        except _RetryError as exc:
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
        """Check that ``frame`` is the next chunk due and count it; _RetryError if not."""
        due = inflight[0] if inflight else None
        if due is None or frame.req != due[0]:
            if due is not None and per_get > 1:
                # A server that predates get.count answers one chunk per get.
                self._one_chunk_sources.add(source)
            raise _RetryError("the sender answered out of order")
        offset = due[1]
        if (
            frame.hash != row.sha256
            or frame.offset != offset
            or len(frame.data) != min(chunk, row.size - offset)
        ):
            raise _RetryError("the sender answered out of order or with a wrong length")
        due[1] = offset + len(frame.data)
        due[2] -= 1
        if due[2] == 0:
            inflight.popleft()

    async def _pull_once(self, row: TransferRow, sink: PartFile, source: bytes) -> None:
        """One connection's worth of pulling from ``source``; _RetryError when it breaks."""
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
                        raise _RetryError("the transfer stalled") from None
                if isinstance(frame, Chunk):
                    self._check_chunk(
                        frame, row, inflight, chunk=chunk, source=source, per_get=per_get
                    )
                    await sink.write(frame.data)
                    self._emit(row, "active", sink.offset, force=False)
                elif isinstance(frame, ChunkError):
                    if frame.reason.startswith(BUSY):
                        raise _RetryError(f"the sender is busy: {frame.reason}")
                    raise _RefusedError(frame.reason)
                elif isinstance(frame, Bye):
                    raise _RetryError(f"the sender closed: {frame.reason}")
        except (ConnectionClosedError, TransportError) as exc:
            reason = str(exc)  # the transport's reasons mostly say "connection lost" already
            if not reason.startswith("connection lost"):
                reason = f"connection lost: {reason}"
            raise _RetryError(reason) from None
        finally:
            await conn.close("done" if sink.offset >= row.size else "pull interrupted")

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
        batch: list[_ChunkOut] = []
        batched = 0
        for _ in range(frame.count):
            data = await source.read(offset, length)
            batch.append((frame.req, frame.hash, offset, data))
            batched += len(data)
            offset += len(data)
            last = len(data) < length or offset >= source.size
            if batched >= SEND_BATCH or last:
                await conn.send_frames(batch, self._crypto, _encode_chunk_out)
                batch, batched = [], 0
            if last:
                break
        if batch:
            await conn.send_frames(batch, self._crypto, _encode_chunk_out)
        end = offset
        if source.offer is not None and end > source.served:
            source.served = end
            await self._served(source)

    def _outgoing_state(self, message_id: bytes) -> _Outgoing:
        return self._outgoing.setdefault(message_id, _Outgoing())

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
