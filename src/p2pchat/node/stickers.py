"""Stickers: our packs, sending them, and fetching each picture once into a cache.

A ``sticker`` message names a picture by its SHA-256 (:mod:`p2pchat.node.sticker_body`).
The receiver pulls the bytes from the author (or, in a group room, another member who
holds them) over a ``files`` connection with one ``get`` (the chunked file protocol,
content-addressed: docs/files.md) and keeps them in the profile's sticker cache, a
folder of files named by the hex of their hash only (never a name a peer chose). Every
later message naming that hash is shown from the cache, so sending a sticker again
costs the size of its small body and no picture byte.

A fetched picture is kept only if its hash matches, its size is the announced one
(at most 256 KiB) and it decodes as PNG, WebP or GIF within the pixel and frame caps
(:func:`check_picture`). Pictures are fetched only from contacts: the author, or in a
group room another joined member who has it; never for a stranger's direct message.
We serve a picture only to a contact who is a joined member of a room where a sticker
with that hash was sent (the serving side lives in ``transfer``, which asks
:meth:`StickerService.open_source`).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from p2pchat.identity import short_id
from p2pchat.node.envelopes import direct_room_id
from p2pchat.node.errors import NodeError
from p2pchat.node.events import PeerOnline, StickerReady
from p2pchat.node.file_io import FileSource
from p2pchat.node.sticker_body import (
    KIND_STICKER,
    MAX_STICKER_BYTES,
    StickerError,
    StickerRef,
    check_picture,
    decode_sticker,
    name_from_file,
    valid_name,
)
from p2pchat.store import Store, now_ms
from p2pchat.store import stickers as sql
from p2pchat.store.stickers import PackSticker, SeenSticker
from p2pchat.transport import ConnectionClosedError, TransportError
from p2pchat.wire import MAX_CHUNK_DATA, Bye, Chunk, ChunkError, ChunkRequest

if TYPE_CHECKING:
    from p2pchat.node.facade import NodeFacade
    from p2pchat.store import Message

log = logging.getLogger(__name__)

#: The profile's sticker cache (pictures named by the hex of their SHA-256).
CACHE_DIR: Final = "stickers"
#: A fetch that has not finished in this long is given up (the next showing retries).
FETCH_TIMEOUT: Final = 20.0
#: Files one ``sticker add`` takes at once.
MAX_ADD_FILES: Final = 200
#: Missing pictures remembered for a retry when their author comes online.
MAX_MISSING: Final = 512
#: Fetches running at once, and started but not finished (more wait for a later try):
#: a contact sending a burst of stickers costs us a few connections, not hundreds.
MAX_PULLING: Final = 4
MAX_FETCHES: Final = 64
#: The cache's size: past it, pictures from others are no longer fetched (our own packs
#: may still grow). 256 MiB is a thousand full-size stickers.
MAX_CACHE_BYTES: Final = 256 * 1024 * 1024
#: Peers one fetch asks in turn (the author, then members of a group room who have it).
MAX_SOURCES: Final = 4


@dataclass(frozen=True, slots=True)
class _Wanted:
    """A picture we lack: the sticker, its message's author and room."""

    author: bytes
    room: bytes
    group: bool
    ref: StickerRef


class StickerLookupError(NodeError):
    """No such sticker, or a sticker file we cannot use; the message says which."""


class StickerService:
    """Owns one node's sticker packs, sticker cache and sticker fetches."""

    def __init__(self, node: NodeFacade) -> None:
        self.node = node
        self.cache_dir = node.profile.directory / CACHE_DIR
        self._fetches: dict[bytes, asyncio.Task[None]] = {}
        #: Picture bytes fetched from peers, and pictures opened for peers to fetch,
        #: since start: what a repeated sticker must not increase.
        self.bytes_fetched = 0
        self.sources_opened = 0
        #: Pictures not fetched yet, by hash: tried again when their author is back
        #: online (bounded: the oldest are forgotten, and retried when shown).
        self._missing: dict[bytes, _Wanted] = {}
        self._watch: asyncio.Task[None] | None = None
        self._pulling = asyncio.Semaphore(MAX_PULLING)
        self._cache_bytes: int | None = None  # measured once, then counted as we write

    def start(self) -> None:
        """Retry missing pictures whenever a peer comes online (node started)."""
        self._watch = asyncio.get_running_loop().create_task(
            self._retry_on_online(), name="stickers"
        )

    async def _retry_on_online(self) -> None:
        stream = self.node.subscribe()
        try:
            while (event := await stream.get()) is not None:
                if isinstance(event, PeerOnline):
                    for wanted in list(self._missing.values()):
                        # The author, or (group rooms) perhaps a member who has it.
                        if wanted.author == event.peer_id or wanted.group:
                            self._start_fetch(wanted)
        finally:
            stream.close()

    # ================================================================ cache

    def path_for(self, sha256: bytes) -> Path:
        """Where the picture with this hash is (or would be) cached."""
        return self.cache_dir / sha256.hex()

    def has(self, sha256: bytes) -> bool:
        """True if the picture with this hash is in the cache (always verified)."""
        return self.path_for(sha256).is_file()

    async def picture(self, sha256: bytes) -> bytes | None:
        """The cached picture with this hash, or None."""
        path = self.path_for(sha256)

        def read() -> bytes | None:
            try:
                with path.open("rb") as f:
                    return f.read(MAX_STICKER_BYTES + 1)
            except OSError:
                return None

        return await asyncio.to_thread(read)

    def _store_picture(self, data: bytes) -> bytes:
        """Thread: write a checked picture into the cache atomically; its hash."""
        digest = hashlib.sha256(data).digest()
        target = self.path_for(digest)
        if target.is_file():
            return digest
        self.cache_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=self.cache_dir, prefix=".part-")
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return digest

    def _measure_cache(self) -> int:
        """Thread: the bytes of every picture in the cache."""
        try:
            return sum(p.stat().st_size for p in self.cache_dir.iterdir() if p.is_file())
        except OSError:
            return 0

    # ================================================================ packs

    async def add(self, pack: str, paths: list[Path]) -> list[PackSticker]:
        """Add pictures (PNG, WebP, GIF; at most 256 KiB each) to our pack ``pack``.

        Each is checked like a received sticker, so what we send others can show. The
        sticker's name is made from the file's name. All or nothing: a bad file raises
        StickerLookupError and nothing is added.
        """
        if not valid_name(pack):
            raise StickerLookupError("a pack name is 1-32 letters, digits, '-' or '_'")
        if not paths or len(paths) > MAX_ADD_FILES:
            raise StickerLookupError(f"give 1 to {MAX_ADD_FILES} picture files")

        def load(path: Path) -> tuple[str, bytes, str]:
            try:
                size = path.stat().st_size
                if size > MAX_STICKER_BYTES:
                    raise StickerLookupError(
                        f"{path.name}: {size} bytes; a sticker is at most "
                        f"{MAX_STICKER_BYTES // 1024} KiB"
                    )
                data = path.read_bytes()
            except OSError as exc:
                raise StickerLookupError(f"cannot read {path}: {exc.strerror or exc}") from None
            try:
                mime, _, _ = check_picture(data)
            except StickerError as exc:
                raise StickerLookupError(f"{path.name}: {exc}") from None
            return name_from_file(path), data, mime

        loaded = [await asyncio.to_thread(load, Path(p)) for p in paths]
        now = now_ms()
        added = []
        for name, data, mime in loaded:
            digest = await asyncio.to_thread(self._store_picture, data)
            added.append(PackSticker(pack, name, digest, mime, len(data), now))
        await self.node.core.write(lambda s: [sql.add_to_pack(s, a) for a in added])
        return added

    async def packs(self, pack: str | None = None) -> list[PackSticker]:
        """Our stickers, by pack and name."""
        return await self.node.core.read(lambda s: sql.pack_stickers(s, pack))

    async def find(self, label: str) -> PackSticker:
        """Our sticker ``PACK/NAME``; StickerLookupError if there is none."""
        pack, sep, name = label.partition("/")
        if not sep or not valid_name(pack) or not valid_name(name):
            raise StickerLookupError("name a sticker as PACK/NAME (see: p2pchat sticker list)")
        found = await self.node.core.read(lambda s: sql.pack_sticker(s, pack, name))
        if found is None or not self.has(found.sha256):
            raise StickerLookupError(f"no sticker {pack}/{name} (see: p2pchat sticker list)")
        return found

    async def install(self, pack: str, author: bytes | None = None) -> list[PackSticker]:
        """Copy the stickers of ``pack`` others sent us (from ``author``, if given) into
        our own pack of that name; names we already have are kept. Only pictures we
        hold (fetched and verified) are copied."""
        if not valid_name(pack):
            raise StickerLookupError("a pack name is 1-32 letters, digits, '-' or '_'")
        seen = await self.node.core.read(lambda s: sql.seen_in_pack(s, pack, author))
        seen = [s for s in seen if s.author != self.node.me and self.has(s.sha256)]
        if not seen:
            raise StickerLookupError(f"no received sticker of the pack {pack!r} to install")
        now = now_ms()
        rows = list(
            {
                s.name: PackSticker(pack, s.name, s.sha256, s.mime, s.size, now) for s in seen
            }.values()
        )

        def work(store: Store) -> list[PackSticker]:
            return [r for r in rows if sql.add_to_pack(store, r, replace=False)]

        return await self.node.core.write(work)

    # ================================================================ sending

    async def send(self, peer_id: bytes, label: str) -> Message:
        """Send our sticker ``PACK/NAME`` to ``peer_id`` (a body of ~100 bytes)."""
        body = (await self._ref(label)).encode()
        return await self.node.send_envelope(peer_id, KIND_STICKER, body, None)

    async def send_to_room(self, room: bytes, label: str) -> Message:
        """Send our sticker in a room, direct or group."""
        peer = await self.node.room_peer(room)
        if peer is not None:
            return await self.send(peer, label)
        body = (await self._ref(label)).encode()
        return await self.node.groups.send_envelope(room, KIND_STICKER, body, None)

    async def _ref(self, label: str) -> StickerRef:
        found = await self.find(label)
        return StickerRef(found.sha256, found.size, found.mime, found.pack, found.name)

    # ================================================================ receiving

    @staticmethod
    def check_body(body: bytes) -> str | None:
        """Why a received ``sticker`` body is unacceptable, or None."""
        try:
            decode_sticker(body)
        except StickerError as exc:
            return str(exc)
        return None

    async def on_sticker_message(self, message: Message) -> None:
        """A ``sticker`` message was stored (ours or a peer's): remember it, and fetch
        its picture from a contact author unless we have it already."""
        try:
            ref = decode_sticker(message.body)
        except StickerError:
            return
        seen = SeenSticker(
            ref.sha256, message.room, message.author, ref.pack, ref.name, ref.mime, ref.size
        )
        await self.node.core.write(lambda s: sql.record_seen(s, seen))
        self.want(message)

    def want(self, message: Message) -> bool:
        """Start fetching the picture of a sticker message if it is missing and its
        author is a contact; True if it is cached already. Called again when a sticker
        is shown, so a failed fetch is retried then."""
        try:
            ref = decode_sticker(message.body)
        except StickerError:
            return False
        if self.has(ref.sha256):
            return True
        author = message.author
        group = message.room != direct_room_id(self.node.me, author)
        if author == self.node.me or (not group and not self.node.core.contacts.is_contact(author)):
            return False  # never fetched for a stranger's direct message
        wanted = _Wanted(author, message.room, group, ref)
        self._missing[ref.sha256] = wanted
        while len(self._missing) > MAX_MISSING:
            del self._missing[next(iter(self._missing))]
        self._start_fetch(wanted)
        return False

    async def fetch(self, message: Message) -> bool:
        """Like :meth:`want`, but wait for the fetch; True if the picture is cached."""
        try:
            ref = decode_sticker(message.body)
        except StickerError:
            return False
        if self.want(message):
            return True
        task = self._fetches.get(ref.sha256)
        if task is not None:
            await asyncio.shield(task)
        return self.has(ref.sha256)

    def _start_fetch(self, wanted: _Wanted) -> None:
        sha256 = wanted.ref.sha256
        if sha256 in self._fetches or len(self._fetches) >= MAX_FETCHES:
            return
        if not wanted.group and not self.node.links.is_online(wanted.author):
            return
        task = asyncio.get_running_loop().create_task(
            self._fetch(wanted), name=f"sticker {sha256.hex()[:8]}"
        )
        self._fetches[sha256] = task
        task.add_done_callback(lambda _: self._fetches.pop(sha256, None))

    async def _sources(self, wanted: _Wanted) -> list[bytes]:
        """Who to ask, in order: the author, then (group rooms) other joined members
        online; only contacts (nobody else serves us, and we dial nobody else)."""
        peers = [wanted.author]
        if wanted.group:
            with contextlib.suppress(NodeError):
                members = await self.node.groups.members(wanted.room)
                peers += [m.peer_id for m in members if m.state == "joined"]
        return [
            p
            for p in dict.fromkeys(peers)
            if p != self.node.me
            and self.node.core.contacts.is_contact(p)
            and self.node.links.is_online(p)
        ][:MAX_SOURCES]

    async def _fetch(self, wanted: _Wanted) -> None:
        """Pull one picture with one ``get`` from the first source that has a good one."""
        ref = wanted.ref
        try:
            if self._cache_bytes is None:
                self._cache_bytes = await asyncio.to_thread(self._measure_cache)
            if self._cache_bytes + ref.size > MAX_CACHE_BYTES:
                raise StickerError(f"the sticker cache is full ({MAX_CACHE_BYTES >> 20} MiB)")
        except (StickerError, OSError) as exc:
            log.info("sticker %s not fetched: %s", ref.label, exc)
            return
        for source in await self._sources(wanted):
            try:
                async with self._pulling, asyncio.timeout(FETCH_TIMEOUT):
                    data = await self._pull(source, ref)
                if hashlib.sha256(data).digest() != ref.sha256:
                    raise StickerError("the picture does not match its hash")
                await asyncio.to_thread(check_picture, data)
                await asyncio.to_thread(self._store_picture, data)
            except (StickerError, TimeoutError, OSError, NodeError, TransportError) as exc:
                log.info("sticker %s from %s not fetched: %s", ref.label, short_id(source), exc)
                continue
            self._cache_bytes += len(data)
            self._missing.pop(ref.sha256, None)
            self.node.core.emit(StickerReady(ref.sha256))
            return

    async def _pull(self, author: bytes, ref: StickerRef) -> bytes:
        conn = await self.node.transfers.dial_files(author)
        try:
            count = -(-ref.size // MAX_CHUNK_DATA)
            conn.write_frame(
                ChunkRequest(req=1, hash=ref.sha256, offset=0, length=MAX_CHUNK_DATA, count=count)
            )
            await conn.flush()
            data = bytearray()
            while len(data) < ref.size:
                frame: Any = await conn.recv()
                if isinstance(frame, ChunkError):
                    raise StickerError(f"refused: {frame.reason}")
                if isinstance(frame, Bye):
                    raise StickerError(f"closed: {frame.reason}")
                if not isinstance(frame, Chunk):
                    continue
                expected = min(MAX_CHUNK_DATA, ref.size - len(data))
                if (
                    frame.req != 1
                    or frame.hash != ref.sha256
                    or frame.offset != len(data)
                    or len(frame.data) != expected
                ):
                    raise StickerError("the sender answered out of order or with a wrong length")
                data += frame.data
                self.bytes_fetched += len(frame.data)
            return bytes(data)
        except ConnectionClosedError as exc:
            raise StickerError(f"connection lost: {exc}") from None
        finally:
            await conn.close("done")

    # ================================================================ serving

    async def open_source(self, peer: bytes, sha256: bytes) -> FileSource | None:
        """The cached picture with this hash, opened for ``peer`` (a contact, checked by
        the caller) if a sticker with it was sent in a room ``peer`` is a joined member
        of; else None."""
        if not self.has(sha256):
            return None
        if not await self.node.core.read(lambda s: sql.shared_with(s, sha256, peer)):
            return None
        try:
            fd = os.open(self.path_for(sha256), os.O_RDONLY)
        except OSError:
            return None
        self.sources_opened += 1
        return FileSource(fd=fd, size=os.fstat(fd).st_size, offer=None)

    async def stop(self) -> None:
        """Cancel fetches in flight."""
        tasks = list(self._fetches.values())
        if self._watch is not None:
            tasks.append(self._watch)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
