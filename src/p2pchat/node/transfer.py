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
import itertools
import logging
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from p2pchat.node.envelopes import KIND_FILE
from p2pchat.node.files import (
    LocalFile,
    ManifestError,
    decode_manifest,
    describe_local_file,
    safe_name,
)
from p2pchat.node.model import TransferInfo, human_size
from p2pchat.node.settings import SETTING_DOWNLOAD_DIR
from p2pchat.paths import default_downloads_dir
from p2pchat.store import now_ms
from p2pchat.store import transfers as sql
from p2pchat.store.transfers import TransferRow
from p2pchat.transport import Connection

if TYPE_CHECKING:
    from p2pchat.node.facade import NodeFacade
    from p2pchat.store import Message

from p2pchat.node.transfer_base import (
    DEFAULT_AUTO_ACCEPT,
    MAX_ACTIVE_PULLS,
    MAX_SERVING,
    MAX_SERVING_PER_PEER,
    PARTS_DIR,
    PULLING_STATES,
    SETTING_AUTO_ACCEPT,
    Meter,
    Outgoing,
    TransferError,
    crypto_pool,
)
from p2pchat.node.transfer_disk import (
    DISK_FULL,
    NOT_ENOUGH_SPACE,
    DiskSpace,
    default_disk_space,
    free_space_floor,
    part_size,
    still_to_write,
    unlink_all,
    unlink_quietly,
)
from p2pchat.node.transfer_pull import TransferPulling

__all__ = [
    "KIND_FILE",
    "MAX_SERVING",
    "MAX_SERVING_PER_PEER",
    "PARTS_DIR",
    "DiskSpace",
    "TransferError",
    "TransferInfo",
    "TransferService",
    "free_space_floor",
    "now_ms",
]

log = logging.getLogger(__name__)

#: How often to look whether space came back, while some transfer waits for it.
SPACE_RETRY_INTERVAL = 5.0


class TransferService(TransferPulling):
    """Owns every file transfer of one node: offers, downloads, and serving chunks."""

    def __init__(self, node: NodeFacade) -> None:
        self.node = node
        #: Free and total bytes of the disk holding ``path`` (tests may replace it).
        self.disk_space: Callable[[Path], DiskSpace] = default_disk_space
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
        self._outgoing: dict[bytes, Outgoing] = {}  # our offers, by message id
        self._meters: dict[bytes, Meter] = {}
        self._dims: dict[bytes, tuple[int | None, int | None]] = {}
        self._offering: dict[bytes, LocalFile] = {}
        self._serving: dict[Connection, set[asyncio.Task[Any]]] = {}
        self._serving_tasks: set[asyncio.Task[None]] = set()
        self._refusing = 0  # files connections from non-contacts being turned away
        self._auth_generation = 0
        self._reqs = itertools.count(1)
        #: Encrypts file chunks off the event loop, at a lower priority.
        self._crypto = crypto_pool()
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
            await asyncio.to_thread(unlink_all, stale)
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
        self._crypto = crypto_pool()  # idle until used: start() may run again

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
            have = await asyncio.to_thread(part_size, str(part))
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
            return self.disk_space(part.parent), still_to_write(
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
            await asyncio.to_thread(unlink_quietly, Path(row.part))
        if not row.incoming:
            # Revoked in memory first: a request answered meanwhile may still read the
            # old state from the store, and must not serve (or report) it any more.
            self._outgoing_state(message_id).revoked = True
            self._auth_generation += 1
        await self._set_state(row, "cancelled", detail=detail, done=0)

    def _now_ms(self) -> int:
        """Wall-clock ms for the parts, read through this module's ``now_ms`` (the UI tests
        freeze that one)."""
        return now_ms()
