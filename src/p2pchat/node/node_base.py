"""The node's shared base: its state, store access, settings and task keeping.

``Node`` (node/service.py) is assembled from parts, one job each: this base, the people
it knows and its links to them (people.py), messages out (outgoing.py), conversations
and rooms as the interfaces read them (conversations.py) and messages in (incoming.py).
Each part builds on the one before; ``Node`` adds the wiring and the lifecycle.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from p2pchat.discovery import Discovery
from p2pchat.identity import Identity
from p2pchat.node.chats import ChatService
from p2pchat.node.checks_ahead import ChecksAhead
from p2pchat.node.commits import GroupCommit
from p2pchat.node.config import NodeConfig
from p2pchat.node.core import LamportClock, NodeCore
from p2pchat.node.direct import DirectInbox, load_requests
from p2pchat.node.direct_sync import DirectSync
from p2pchat.node.disclosure import NameDisclosure
from p2pchat.node.edits import ChangeService
from p2pchat.node.envelopes import direct_room_id
from p2pchat.node.errors import NodeError
from p2pchat.node.events import Event, NodeStatus, PeerUpdated, RoomChanged
from p2pchat.node.expiry import ExpiryService
from p2pchat.node.groups import GroupService
from p2pchat.node.inbox import FairInbox, Inbound, SyncRequest
from p2pchat.node.links import LinkManager
from p2pchat.node.names import NameBook
from p2pchat.node.onion import OnionService
from p2pchat.node.quota import FloodGuard
from p2pchat.node.requests import RequestBook
from p2pchat.node.settings import BOOL_SETTINGS, SETTING_ANNOUNCE, TEXT_SETTINGS
from p2pchat.node.stickers import StickerService
from p2pchat.node.stream import EventHub, EventStream
from p2pchat.node.transfer import TransferService
from p2pchat.profile import Profile
from p2pchat.store import Peer, Store, StoreWorker
from p2pchat.wire import Profile as ProfileFrame

log = logging.getLogger(__name__)

T = TypeVar("T")

#: Message kinds shown in a conversation; others (reactions) change how those look.
DISPLAY_KINDS = frozenset({"text", "file", "system"})
MAX_EMOJI_CHARS = 16
DIRECT_ROOM_ID_LEN = 32
#: Inbound envelopes stored together, at most.
MAX_INGEST_BATCH = 512
# Retrying an inbound batch the store could not write: first pause, and the longest.
INGEST_RETRY_FIRST = 0.1
INGEST_RETRY_MAX = 2.0
#: What a sync request counts for in a peer's inbound queue.
SYNC_REQUEST_COST = 256
VERIFY_IN_THREAD_FROM = 16
# Peers that connected but were never accepted, kept so the person can still write to
# someone seen earlier; the oldest are forgotten beyond this many.
MAX_STRANGERS = 200
# Connections at once from peers we never accepted; and how many peers' names and
# addresses to keep in memory before forgetting departed strangers.
MAX_STRANGER_LINKS = 32
MAX_REMEMBERED_PEERS = 2000
OUTBOX_PAGE = 256


class NodeBase:
    """State and plumbing every part of the node uses (see the module docstring)."""

    # Set up by Node.__init__ (node/service.py); declared here for the parts.
    profile: Profile
    config: NodeConfig
    identity: Identity
    me: bytes
    hub: EventHub
    db: StoreWorker | None
    name_disclosure: NameDisclosure
    links: LinkManager
    core: NodeCore
    discovery: Discovery | None
    transfers: TransferService
    stickers: StickerService
    chats: ChatService
    groups: GroupService
    direct: DirectInbox
    direct_sync: DirectSync
    onions: OnionService
    changes: ChangeService
    expiry: ExpiryService
    requests: RequestBook
    flood: FloodGuard
    status: NodeStatus | None
    clock: LamportClock
    started_at: float
    _name_public: bool
    _states: dict[bytes, str]
    _names: NameBook
    _addresses: dict[bytes, tuple[str, int]]
    _settings: dict[str, bool]
    _text_settings: dict[str, str]
    _ready_rooms: set[bytes]
    _seq_cache: dict[bytes, int]
    _seq_floor: dict[bytes, int]
    _verifier: ThreadPoolExecutor | None
    checks_ahead: ChecksAhead
    _commits: GroupCommit
    _inbound: FairInbox[Inbound | SyncRequest]
    _tasks: set[asyncio.Task[None]]
    _warned: set[tuple[bytes, str]]
    _started: bool
    _store_fault: str

    def _now_ms(self) -> int:
        """Wall-clock ms (Node reads it through node/service.py's ``now_ms``)."""
        raise NotImplementedError

    def _spawn(self, coro: Any, name: str) -> None:
        task: asyncio.Task[None] = asyncio.ensure_future(coro)
        task.set_name(name)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("node task %s failed", task.get_name(), exc_info=task.exception())

    def subscribe(self) -> EventStream:
        """A stream of every event from now on (``async for event in stream``)."""
        return self.hub.subscribe()

    def is_contact(self, peer_id: bytes) -> bool:
        """True if the person accepted ``peer_id`` as a contact."""
        return self._states.get(peer_id) == "contact"

    async def db_run(self, fn: Callable[[Store], T]) -> T:
        """Run ``fn`` in the store's thread, in the next group commit (for services)."""
        return await self._write(fn)

    def _emit(self, event: Event) -> None:
        self.hub.emit(event)
        if isinstance(event, (PeerUpdated, RoomChanged)):
            # A new contact or room member who is connected learns the name we withheld.
            for peer in self.name_disclosure.newly_allowed():
                self.links.write(peer, ProfileFrame(name=self.profile.display_name))

    # ================================================================ store access

    def _db(self) -> StoreWorker:
        if self.db is None:
            raise NodeError("the node is not running")
        return self.db

    async def _read(self, fn: Callable[[Store], T]) -> T:
        return await self._db().run(fn)

    async def store_read(self, fn: Callable[[Store], T]) -> T:
        """Run ``fn`` in the store's thread (for the node's services)."""
        return await self._read(fn)

    async def store_write(self, fn: Callable[[Store], T]) -> T:
        """Run ``fn`` in the store's thread as one committed write (for the services)."""
        return await self._write(fn)

    def emit(self, event: Event) -> None:
        """Tell every subscriber (for the node's services)."""
        self._emit(event)

    async def _write(
        self, fn: Callable[[Store], T], *, quick: bool = False, durable: bool = True
    ) -> T:
        """Run ``fn`` in the next group commit and return its result.

        ``quick``: ``fn`` is a small write on a message's path (one message, one
        receipt), which may commit without a hop to the store thread; ``durable=False``:
        what it records a peer would say again, so its commit need not wait for the
        disk. See :class:`GroupCommit`.
        """
        if self.db is None:
            raise NodeError("the node is not running")
        return await self._commits.write(fn, quick=quick, durable=durable)

    async def _write_through(
        self, fn: Callable[[Store], T], *, quick: bool = False, durable: bool = True
    ) -> T:
        """The core's write: every store write of the node and its services passes
        through ``_write`` (looked up at each call), the one place to count them."""
        return await self._write(fn, quick=quick, durable=durable)

    async def _load_state(self) -> None:
        def load(store: Store) -> tuple[list[Peer], dict[str, str | None]]:
            settings = {key: store.get_setting(key) for key in [*BOOL_SETTINGS, *TEXT_SETTINGS]}
            return store.list_peers(), settings

        peers, settings = await self._read(load)
        for peer in peers:
            self._states[peer.id] = peer.state
            if peer.name:
                self._names[peer.id] = peer.name
        self.requests.load(*await self._read(functools.partial(load_requests, me=self.me)))
        for key, value in settings.items():
            if value is None:
                continue
            if key in TEXT_SETTINGS:
                self._text_settings[key] = value
            else:
                self._settings[key] = value == "1"

    async def _add_initial_targets(self) -> None:
        for host, port in self.config.peers:
            self.links.add_target(host, port, "manual")

        def addresses(store: Store) -> list[tuple[bytes | None, str, int, str]]:
            wanted = set(store.peers_with_pending())
            wanted.update(p.id for p in store.list_peers("contact"))
            out: list[tuple[bytes | None, str, int, str]] = [
                (a.peer_id, a.host, a.port, "manual") for a in store.manual_addresses()
            ]
            for peer in wanted:
                out.extend((peer, a.host, a.port, a.source) for a in store.addresses_for(peer))
            return out

        for peer, host, port, source in await self._read(addresses):
            if source != "mdns" and (peer is None or self._states.get(peer) != "blocked"):
                self.links.add_target(host, port, source if source == "manual" else "last", peer)

    # ================================================================ settings

    def setting(self, key: str) -> bool:
        """Current value of a boolean setting (read receipts, typing, announce)."""
        return self._settings[key]

    async def set_setting(self, key: str, value: bool) -> None:
        """Change a boolean setting; stored so it survives restarts."""
        if key not in BOOL_SETTINGS:
            raise NodeError(f"unknown setting {key!r}; known: {', '.join(BOOL_SETTINGS)}")
        await self._write(lambda s: s.set_setting(key, "1" if value else "0"))
        self._settings[key] = value
        if key == SETTING_ANNOUNCE and self.discovery is not None:
            log.info("announce setting changes take effect at the next start")

    def direct_room(self, peer_id: bytes) -> bytes:
        """The id of our one-to-one room with ``peer_id``."""
        return direct_room_id(self.me, peer_id)
