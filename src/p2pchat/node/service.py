"""The p2pchat node: the service behind every interface (TUI, CLI, control socket).

It owns the store, the link manager and discovery, and turns them into a chat:
signed envelopes, a persistent outbox retried whenever a peer is reachable, idempotent
receive, delivered/read receipts, typing indicators, contact requests, blocking and
impersonation warnings. Callers use its async methods and subscribe to its events; it
never imports Textual and never prints.

Writes are group-committed: concurrent calls share one SQLite transaction (one fsync),
and inbound messages are stored in batches, so durability does not cap throughput.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from p2pchat.discovery import Discovery, PeerLost, PeerSeen, resolve_interfaces
from p2pchat.identity import (
    PeerIdError,
    decode_peer_id,
    safety_number,
    short_id,
)
from p2pchat.node.chats import ChatService
from p2pchat.node.commits import GroupCommit
from p2pchat.node.config import NodeConfig
from p2pchat.node.core import NodeCore
from p2pchat.node.direct import DirectInbox, load_requests
from p2pchat.node.direct_sync import DirectSync
from p2pchat.node.disclosure import NameDisclosure
from p2pchat.node.edits import (
    CHANGE_KINDS,
    KIND_DELETE,
    KIND_EDIT,
    KIND_TIMER,
    ChangeService,
    change_problem,
    with_edits,
)
from p2pchat.node.envelopes import (
    KIND_FILE,
    KIND_REACTION,
    ReactionError,
    apply_reaction,
    decode_reaction,
    direct_room_id,
    encode_reaction,
    envelope_is_authentic,
    envelope_to_row,
    new_message_id,
    sign_envelope,
)
from p2pchat.node.errors import AlreadySent, NodeError
from p2pchat.node.events import (
    Event,
    MessageAdded,
    NodeStatus,
    PeerOffline,
    PeerOnline,
    PeerThrottled,
    PeerUpdated,
    ReactionChanged,
    ReceiptChanged,
    RoomChanged,
    SecurityWarning,
    TypingChanged,
)
from p2pchat.node.expiry import ExpiryService
from p2pchat.node.files import ManifestError, decode_manifest, safe_name
from p2pchat.node.groups import GroupService
from p2pchat.node.inbox import FairInbox, Inbound, SyncRequest
from p2pchat.node.links import LinkManager
from p2pchat.node.model import (
    MAX_UI_SETTING,
    PeerInfo,
    ReactionInfo,
    RoomInfo,
    human_size,
    text_body,
    ui_key,
)
from p2pchat.node.names import load_confusables, name_keys, primary_key, visible
from p2pchat.node.onion import OnionService
from p2pchat.node.peer_lookup import find_peer
from p2pchat.node.quota import FloodGuard, FloodNotice, describe_flood
from p2pchat.node.requests import HeldBack, RequestBook
from p2pchat.node.rooms import (
    KIND_SYSTEM,
    SystemBodyError,
    decode_system,
    describe_system,
    group_envelope_id,
)
from p2pchat.node.settings import (
    BOOL_SETTINGS,
    SETTING_ANNOUNCE,
    SETTING_DOWNLOAD_DIR,
    SETTING_READ_RECEIPTS,
    SETTING_TYPING,
    TEXT_SETTINGS,
)
from p2pchat.node.sticker_body import KIND_STICKER, StickerError, decode_sticker
from p2pchat.node.stickers import StickerService
from p2pchat.node.stream import EventHub, EventStream
from p2pchat.node.transfer import TransferService
from p2pchat.profile import Profile, clean_display_name, forget_old_store_keys
from p2pchat.store import (
    Message,
    MessageStatus,
    OutboxItem,
    Peer,
    Store,
    StoreError,
    StoreWorker,
    now_ms,
)
from p2pchat.transport import Connection, LocalHello, PeerMismatchError
from p2pchat.wire import (
    MAX_IDS_PER_RECEIPT,
    MAX_TS,
    PURPOSE_FILES,
    RECEIPT_DELIVERED,
    RECEIPT_READ,
    Envelope,
    Frame,
    MessageFrame,
    OnionAddress,
    Receipt,
    SyncHeads,
    Typing,
    encode_frame,
)
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


def _pending_page(store: Store, *, peer: bytes, after: int) -> list[OutboxItem]:
    return store.pending_for(peer, OUTBOX_PAGE, after_id=after)


class Node:
    """A running p2pchat node for one profile. ``await start()``, then use, then ``stop()``."""

    def __init__(self, profile: Profile, config: NodeConfig | None = None) -> None:
        self.profile = profile
        self.config = config or NodeConfig()
        self.identity = profile.identity
        self.me = profile.identity.peer_id
        self.hub = EventHub()
        self.db: StoreWorker | None = None
        # Whether our name is public (we announce it) is known once settings are loaded.
        self._name_public = False
        self.name_disclosure = NameDisclosure(
            public=lambda: self._name_public,
            # Rooms we joined, not rooms we were invited to (nor left): an invitation
            # is not the person's choice to tell that room who they are.
            trusted=lambda peer: (
                self._states.get(peer) == "contact" or peer in self.groups.room_mates
            ),
            linked=lambda peer: peer in self.links.links,
        )
        self.links = LinkManager(
            self.me,
            self._local_hello(),
            self.config,
            on_frame=self._on_frame,
            on_up=self._on_link_up,
            on_down=self._on_link_down,
            on_mismatch=self._on_mismatch,
            should_dial=lambda peer: self._states.get(peer) != "blocked",
            on_other_purpose=self._on_other_connection,
            on_ready=self._on_link_ready,
        )
        # The shared parts the services work with (store, events, clock, contacts, wire).
        self.core = NodeCore(
            self.me, self.links, read=self._read, write=self._write_through, emit=self._emit
        )
        self.discovery: Discovery | None = None
        self.transfers = TransferService(self)
        self.stickers = StickerService(self)
        self.chats = ChatService(self)
        self.groups: GroupService = GroupService(self)
        self.direct = DirectInbox(self)
        self.direct_sync = DirectSync(self)
        self.onions = OnionService(self)
        self.changes = ChangeService(self)
        self.expiry = ExpiryService(self)
        # The core's contact book, under the names this module has always used: trust
        # states, display names (indexed by look-alike key), where connected peers listen.
        self._states: dict[bytes, str] = self.core.contacts.states
        self._names = self.core.contacts.names
        self._addresses = self.core.contacts.addresses
        self._settings: dict[str, bool] = dict(BOOL_SETTINGS)
        self._text_settings: dict[str, str] = dict(TEXT_SETTINGS)
        # Lamport clock shared by all rooms. Store-thread caches: rooms known to exist
        # (the core's), next seqs.
        self.clock = self.core.clock
        self._ready_rooms = self.core.ready_rooms
        self._seq_cache: dict[bytes, int] = {}
        # Store thread: per room, the lowest seq we may still write (see raise_seq_floor).
        self._seq_floor: dict[bytes, int] = {}
        # Created by start() (a stopped node can be started again).
        self._verifier: ThreadPoolExecutor | None = None
        self._commits = GroupCommit(self._db, self._forget_caches)
        # How the node runs (port, announcing, discovery), once started; also emitted.
        self.status: NodeStatus | None = None
        # Inbound work, per peer and served in turn: one flooding peer delays no other.
        self._inbound: FairInbox[Inbound | SyncRequest] = FairInbox(self.config.flood.queue_bytes)
        self.flood = FloodGuard(self.config.flood, on_notice=self._on_flood_notice)
        self._tasks: set[asyncio.Task[None]] = set()
        self.requests = RequestBook(self.config.max_open_requests)
        self._warned: set[tuple[bytes, str]] = set()
        self._started = False
        self.started_at = 0.0

    # ================================================================ lifecycle

    def _local_hello(self) -> LocalHello:
        port = None
        with contextlib.suppress(RuntimeError):
            port = self.links.port if hasattr(self, "links") else None
        return LocalHello(
            identity=self.identity,
            name=self.profile.display_name,
            port=port or None,
            reveal_name=self.name_disclosure.allows,
        )

    @property
    def uptime(self) -> float:
        """Seconds since start() began."""
        return time.monotonic() - self.started_at

    @property
    def port(self) -> int:
        """The TCP port this node listens on."""
        return self.links.port

    @property
    def peer_id_text(self) -> str:
        """Our own peer id, 52 base32 characters."""
        return self.identity.peer_id_text

    async def start(self) -> None:
        """Open the store, listen, start discovery and dialling.

        Raises StoreError (store locked/corrupt) or OSError (port in use); nothing is
        left running when it raises.
        """
        self.started_at = time.monotonic()
        self._verifier = ThreadPoolExecutor(max_workers=1, thread_name_prefix="p2pchat-verify")
        self._inbound = FairInbox(self.config.flood.queue_bytes)
        self._store_fault = ""  # what the store said when it last could not write
        if self.config.interfaces:
            try:  # a typo in --interface must stop us before anything starts
                resolve_interfaces(list(self.config.interfaces))
            except ValueError as exc:
                raise NodeError(str(exc)) from None
        self.db = await StoreWorker.open(
            self.profile.store_path,
            self_id=self.me,
            create=not self.profile.store_expected,
            key=self.profile.store_key,  # None: no passphrase, plain SQLite
            old_keys=self.profile.old_store_keys,
        )
        self.profile.mark_store_created()
        forget_old_store_keys(self.profile)  # the store is on store_key now
        if self.db.rebuilt_from is not None:
            note = (
                "the store's indexes were damaged and have been rebuilt from its tables "
                f"(nothing was lost); the damaged file was kept as {self.db.rebuilt_from}"
            )
            log.warning("%s", note)
            self.hub.emit(SecurityWarning(None, note))
        try:
            # Unicode's confusables table, read once off the loop (not at the first name).
            await asyncio.get_running_loop().run_in_executor(None, load_confusables)
            await self._load_state()
            self._name_public = self.config.announce and self._settings[SETTING_ANNOUNCE]
            if self.config.download_dir is not None:
                await self.set_text_setting(SETTING_DOWNLOAD_DIR, self.config.download_dir)
            self._spawn(self._ingest_loop(), "ingest")
            self._spawn(self.expiry.run(), "expiry")
            if self.config.network:
                await self.links.start()
        except BaseException:
            await self._shutdown_tasks()
            await self.db.close()
            raise
        self._started = True
        if not self.config.network:
            return
        self.links.update_local(self._local_hello())
        await self._add_initial_targets()
        await self.transfers.start()
        self.stickers.start()
        await self.groups.start()
        self.direct_sync.start()
        self.chats.start()
        await self.onions.start()  # tor starts in the background (never holds us up)
        announcing = await self._start_discovery() if self.config.discovery else False
        self.status = NodeStatus(self.port, announcing, self.discovery is not None)
        self.hub.emit(self.status)

    async def _start_discovery(self) -> bool:
        """Start mDNS; True if we announce ourselves. A failure is said, never fatal."""
        announcing = self.config.announce and self._settings[SETTING_ANNOUNCE]
        self.discovery = Discovery(
            peer_id=self.peer_id_text,
            name=self.profile.display_name,
            port=self.port,
            announce=announcing,
            interfaces=list(self.config.interfaces) or None,
            on_event=self._on_discovery,
        )
        try:
            await self.discovery.start()
        except (OSError, ValueError) as exc:
            log.warning("mDNS discovery unavailable: %s", exc)
            self.hub.emit(SecurityWarning(None, f"peer discovery (mDNS) is off: {exc}"))
            self.discovery = None
            return False
        return announcing

    async def stop(self) -> None:
        """Stop discovery, say goodbye to peers, finish pending writes, close the store."""
        if self.discovery is not None:
            with contextlib.suppress(Exception):
                await self.discovery.stop()
            self.discovery = None
        await self.transfers.stop()
        await self.stickers.stop()
        await self.groups.stop()
        await self.direct_sync.stop()
        await self.chats.stop()
        await self.onions.stop()
        self._inbound.close()  # read loops waiting for room in it must end now
        if self.config.network:
            await self._keep_names()
            await self.links.stop()
        # Let queued writes and already received messages reach the disk first.
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(5):
                await self._inbound.join()
                await self._commits.idle()
        self.flood.close()
        await self._shutdown_tasks()
        if self.db is not None:
            await self.db.close()
        if self._verifier is not None:
            self._verifier.shutdown(wait=False)
        self.hub.close()
        self._started = False

    async def _keep_names(self) -> None:
        """Store the name each connected peer last announced, in one write.

        A stranger's renames are kept in memory only (``_on_profile``); without this,
        the next start would show its old name until it connects again.
        """
        names = {p: n for p in self.links.links if (n := self._names.get(p)) is not None}

        def keep(store: Store) -> None:
            for peer, name in names.items():
                if store.get_peer(peer) is not None:
                    store.upsert_peer(peer, name=name)

        with contextlib.suppress(NodeError, StoreError):
            await self._write(keep)

    async def _shutdown_tasks(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.wait(self._tasks, timeout=3)

    async def __aenter__(self) -> Node:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

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

    async def _write(self, fn: Callable[[Store], T], *, quick: bool = False) -> T:
        """Run ``fn`` in the next group commit and return its result.

        ``quick``: ``fn`` is a small write on a message's path (one message, one
        receipt), which may commit without a hop to the store thread; see
        :class:`GroupCommit`.
        """
        if self.db is None:
            raise NodeError("the node is not running")
        return await self._commits.write(fn, quick=quick)

    async def _write_through(self, fn: Callable[[Store], T], *, quick: bool = False) -> T:
        """The core's write: every store write of the node and its services passes
        through ``_write`` (looked up at each call), the one place to count them."""
        return await self._write(fn, quick=quick)

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

    # ================================================================ peers

    async def list_peers(self) -> list[PeerInfo]:
        """Every known peer with its state and whether it is online now."""

        def load(store: Store) -> list[tuple[Peer, str | None]]:
            out = []
            for peer in store.list_peers():
                addrs = store.addresses_for(peer.id)
                addr = f"{addrs[0].host}:{addrs[0].port}" if addrs else None
                out.append((peer, addr))
            return out

        infos = []
        for peer, stored_addr in await self._read(load):
            link = self.links.links.get(peer.id)
            online = link is not None and not link.conn.is_closed
            addr = stored_addr
            if online and link is not None:
                remote = link.conn.remote
                addr = f"{remote.host}:{remote.port}" if remote.port else remote.host
            # The name it last announced: a stranger's renames are kept in memory only.
            name = self._names.get(peer.id, peer.name)
            infos.append(
                PeerInfo(peer.id, name, peer.state, peer.verified, online, addr, peer.last_seen)
            )
        listed = {i.peer_id for i in infos}
        for peer_id, link in list(self.links.links.items()):
            if peer_id not in listed and not link.conn.is_closed:
                remote = link.conn.remote
                addr = f"{remote.host}:{remote.port}" if remote.port else remote.host
                name = self._names.get(peer_id, remote.name)
                infos.append(PeerInfo(peer_id, name, "unknown", False, True, addr, None))
        infos.sort(key=lambda p: (not p.online, p.state == "blocked", (p.name or "").lower()))
        return infos

    async def resolve_peer(self, text: str, *, trusted_first: bool = True) -> bytes:
        """Find a peer by display name, short id (prefix) or full id.

        An exact name beats a look-alike and contacts beat strangers (``peer_lookup``);
        ``trusted_first=False`` makes any two candidates a tie (for blocking).
        Raises PeerLookupError listing candidates when nothing or several match.
        """
        with contextlib.suppress(PeerIdError):
            return decode_peer_id(text.strip())
        return find_peer(text, await self.list_peers(), trusted_first=trusted_first)

    async def add_address(self, host: str, port: int) -> None:
        """Remember a manual address (``p2pchat add``) and dial it now and after restarts."""
        await self._write(lambda s: s.add_address(None, host, port, "manual"))
        self.links.add_target(host, port, "manual")

    async def forget_address(self, host: str, port: int) -> bool:
        """Forget host:port (``p2pchat forget``): stored rows, the dial target, its pin.

        An address stays pinned to the first id that answered there; after this,
        whoever answers next (once the person adds it again) is a new peer. A live
        link is left alone. Returns whether anything was known about it.
        """
        removed = await self._write(lambda s: s.forget_address(host, port))
        dropped = self.links.targets.pop((host, port), None) is not None
        for peer, known in list(self._addresses.items()):
            if known == (host, port):
                del self._addresses[peer]
        return removed > 0 or dropped

    async def accept(self, peer_id: bytes) -> None:
        """Accept a contact request: receipts flow from now on, including for held messages."""
        room = direct_room_id(self.me, peer_id)

        def work(store: Store) -> list[Message]:
            if store.get_peer(peer_id) is None and peer_id not in self._names:
                raise NodeError("unknown peer")
            self.core.contacts.remember(store, peer_id, "contact")
            if store.get_room(room) is None:
                return []
            held = store.latest_messages(room, limit=MAX_IDS_PER_RECEIPT)
            return [m for m in held if m.author == peer_id]

        held = await self._write(work)
        self._set_state(peer_id, "contact")
        if held:
            await self.core.send_receipts(peer_id, room, [m.id for m in held], RECEIPT_DELIVERED)
        # Read while they were a stranger (no receipts then): say so now.
        read = [m.id for m in held if m.status >= MessageStatus.READ]
        if read and self._settings[SETTING_READ_RECEIPTS]:
            await self.core.send_receipts(peer_id, room, read, RECEIPT_READ)
        self.links.redial_soon(peer_id)
        await self.onions.on_contact(peer_id)

    async def block(self, peer_id: bytes) -> None:
        """Block a peer: their frames are dropped and their connections refused."""
        await self._write(lambda s: self.core.contacts.remember(s, peer_id, "blocked"))
        self._set_state(peer_id, "blocked")
        self.links.forget_peer(peer_id)
        link = self.links.links.get(peer_id)
        if link is not None:
            await link.conn.close("blocked")

    async def unblock(self, peer_id: bytes) -> None:
        """Undo a block; the peer becomes a contact again."""
        await self.accept(peer_id)

    @property
    def requests_held_back(self) -> HeldBack:
        """How many contact requests (and messages of requests) were not kept, since the
        person last cleared requests: shown beside the requests."""
        return self.requests.held

    async def clear_requests(self) -> int:
        """Remove every open contact request and its messages; reset the held-back count.

        Returns how many requests were removed. Their senders are not blocked.
        """
        return await self.direct.clear_requests()

    async def set_verified(self, peer_id: bytes, verified: bool = True) -> None:
        """Record that the person compared safety numbers with this peer."""
        await self._write(
            lambda s: (self.core.contacts.remember(s, peer_id), s.set_verified(peer_id, verified))
        )

    def _set_state(self, peer_id: bytes, state: str) -> None:
        if state != "request":
            self.requests.close(peer_id)
        if self._states.get(peer_id) != state:
            self._states[peer_id] = state
            self._emit(PeerUpdated(peer_id, self._names.get(peer_id), state))

    async def rename(self, name: str) -> str:
        """Change our display name; connected peers and mDNS see it at once."""
        cleaned = self.profile.set_display_name(clean_display_name(name))
        self.links.update_local(self._local_hello())
        for peer in list(self.links.links):
            if self.name_disclosure.allows(peer):
                self.links.write(peer, ProfileFrame(name=cleaned))
        if self.discovery is not None:
            with contextlib.suppress(Exception):
                await self.discovery.set_name(cleaned)
        self._emit(PeerUpdated(self.me, cleaned, "self"))
        return cleaned

    # ================================================================ messages out

    async def send_text(
        self,
        peer_id: bytes,
        text: str,
        reply_to: bytes | None = None,
        client_id: str | None = None,
    ) -> Message:
        """Write a text message to ``peer_id``: stored, queued, and sent if reachable.

        With ``client_id`` (a script's own id for this send), a second call with the same
        id returns the message the first wrote instead of writing another.
        """
        body = text_body(text)
        if peer_id == self.me:
            raise NodeError("you cannot send a message to yourself")
        if self._states.get(peer_id) == "request":
            # Replying to a contact request accepts it, with everything accepting means
            # (receipts for the messages they sent while waiting).
            await self.accept(peer_id)
        return await self.send_envelope(peer_id, "text", body, reply_to, client_id)

    async def send_envelope(
        self,
        peer_id: bytes,
        kind: str,
        body: bytes,
        reply_to: bytes | None,
        client_id: str | None = None,
    ) -> Message:
        """Write a message of any kind to ``peer_id`` (accepting them): stored, queued, sent.

        For the services (stickers, files) and tests; people's text goes via send_text.
        """
        room = direct_room_id(self.me, peer_id)
        online = self.links.is_online(peer_id)
        now = now_ms()

        def work(store: Store) -> tuple[Message, bool, Envelope]:
            became_contact = False
            if self._states.get(peer_id) != "contact":  # the common case skips a query
                peer = store.get_peer(peer_id) or self.core.contacts.remember(store, peer_id)
                if peer.state == "blocked":
                    raise NodeError("you blocked this peer; unblock them to send")
                became_contact = peer.state != "contact"
                if became_contact:  # writing to someone accepts them
                    store.set_peer_state(peer_id, "contact")
            self.core.ensure_direct(store, room, peer_id, now)
            message, env = self.author_envelope(
                store,
                room,
                kind=kind,
                body=body,
                reply_to=reply_to,
                now=now,
                recipients=[peer_id],
                online=online,
                client_id=client_id,
            )
            return message, became_contact, env

        try:
            message, became_contact, env = await self._write(work, quick=True)
        except AlreadySent as done:
            return done.message
        if became_contact:
            self._set_state(peer_id, "contact")
        await self.publish_own(message, env, [peer_id])
        return message

    _send_envelope = send_envelope  # the name the tests use

    def author_envelope(
        self,
        store: Store,
        room: bytes,
        *,
        kind: str,
        body: bytes,
        reply_to: bytes | None,
        now: int,
        recipients: Sequence[bytes],
        online: bool,
        deps: tuple[bytes, ...] | None = None,
        client_id: str | None = None,
    ) -> tuple[Message, Envelope]:
        """Store thread: sign a new envelope of ours, store it, queue it for ``recipients``.

        The envelope stays in each recipient's outbox until that recipient's delivered
        receipt arrives, so it survives restarts and lost connections. ``deps``: in a
        group room, the membership operations we have seen (``Membership.heads``).
        ``client_id``: a client's own id for this send; if a message was already written
        for it, AlreadySent is raised (and nothing written), so a retry never doubles.
        """
        if client_id is not None:
            existing = store.message_for_client(client_id)
            if existing is not None:
                raise AlreadySent(existing)
        try:
            seq, lamport = self._next_position(store, room)
            env = sign_envelope(
                self.identity,
                Envelope.unsigned(
                    room=room,
                    id=new_message_id() if deps is None else group_envelope_id(room, self.me, seq),
                    author=self.me,
                    seq=seq,
                    lamport=lamport,
                    ts=now,
                    kind=kind,
                    body=body,
                    reply_to=reply_to,
                    deps=deps,
                ),
            )
            status = MessageStatus.SENT if online else MessageStatus.QUEUED
            row = envelope_to_row(env, now, status)
            (message,) = store.insert_messages([row])
            assert message is not None  # a fresh random id is never a duplicate
            if client_id is not None:
                store.record_client_send(client_id, message.id, now)
            if kind == KIND_REACTION:
                apply_reaction(store, row)
            message = self.changes.on_own(store, message, env, now)
            frame = encode_frame(MessageFrame(env=env))
            store.enqueue_many([(p, frame, env.id) for p in recipients], created_at=now)
        except BaseException:
            # The write is rolled back: forget cached positions so no gap is left.
            self._seq_cache.pop(room, None)
            raise
        return message, env

    async def publish_own(
        self, message: Message, env: Envelope, recipients: Sequence[bytes]
    ) -> None:
        """Loop thread: announce our new message and send it to whoever is online."""
        if message.kind == KIND_REACTION:
            self._emit(ReactionChanged(message.room, decode_reaction(message.body)[0]))
        elif message.kind not in CHANGE_KINDS:
            self._emit(MessageAdded(message, incoming=False))
        self.changes.emit_changed()
        if message.kind == KIND_FILE:
            await self.transfers.on_file_message(message, incoming=False)
        elif message.kind == KIND_STICKER:
            await self.stickers.on_sticker_message(message)
        await self.deliver(MessageFrame(env=env), recipients)

    async def deliver(self, frame: Frame, recipients: Sequence[bytes]) -> None:
        """Send ``frame`` to every recipient connected now; wake the dialler for the rest.

        The frame is already in each recipient's outbox, so a failure here loses nothing.
        """
        sent = []
        for peer in recipients:
            if self.links.write(peer, frame):
                sent.append(peer)
            else:
                self.links.redial_soon(peer)
        await self.links.flush_all(sent)

    def _forget_caches(self) -> None:
        """Store thread: a rolled-back write may have taught the caches something false.

        Rooms, next seqs and memberships are re-read from the store on next use.
        """
        self._ready_rooms.clear()
        self._seq_cache.clear()
        self.groups.forget_caches()

    def raise_seq_floor(self, store: Store, room: bytes, held_by_other: int) -> None:
        """Store thread: our next seq in ``room`` is above ``held_by_other``.

        The other side of a direct room holds our messages up to that seq; if our store
        lost its tail (a crash losing the end of the log), reusing those seqs would make
        our new messages collide with the lost ones there.
        """
        self._seq_floor[room] = max(self._seq_floor.get(room, 0), held_by_other + 1)
        if room in self._seq_cache:
            self._seq_cache[room] = max(self._seq_cache[room], self._seq_floor[room])

    def _next_position(self, store: Store, room: bytes) -> tuple[int, int]:
        """Our next (seq, lamport) in ``room``; store thread only, cached after first use."""
        if room not in self._seq_cache:
            self._seq_cache[room] = store.next_seq(room, self.me)
            self.clock.witness(store.max_lamport(room))
        seq = max(self._seq_cache[room], self._seq_floor.get(room, 0))
        self._seq_cache[room] = seq + 1
        return seq, self.clock.tick()

    def lamport_problem(self, env: Envelope) -> str | None:
        """Why an envelope's Lamport time is unacceptable (absurdly far ahead), or None."""
        return self.clock.problem(env.lamport)

    async def set_typing_room(self, room: bytes, typing: bool) -> None:
        """Tell a room's people (connected contacts or members) whether we are typing."""
        if not self._settings[SETTING_TYPING]:
            return
        peer = await self.room_peer(room)
        if peer is not None:
            await self.set_typing(peer, typing)
            return
        members = await self._read(lambda s: self.groups.membership(s, room).joined())
        if self.me not in members:
            return
        frame = Typing(room=room, on=typing)
        for member in members:
            if member != self.me:
                self.links.write(member, frame)

    async def set_typing(self, peer_id: bytes, typing: bool) -> None:
        """Tell ``peer_id`` we are (not) typing; nothing is sent if the setting is off."""
        if self._settings[SETTING_TYPING] and self._states.get(peer_id) == "contact":
            self.links.write(peer_id, Typing(room=direct_room_id(self.me, peer_id), on=typing))

    async def mark_read(self, room: bytes, message_ids: Sequence[bytes] | None = None) -> int:
        """Mark messages as read (shown to the person); send read receipts if enabled.

        With ``message_ids`` None, every incoming message of the room counts as shown.
        Returns how many messages changed to read.
        """

        def work(store: Store) -> tuple[list[Message], int, set[bytes]]:
            if message_ids is None:
                msgs = store.incoming_not_read(room, self.me)
                newest = store.latest_messages(room, limit=1)
                marker = newest[-1].rowid if newest else 0
            else:
                found = [m for m in store.get_messages(message_ids) if m.room == room]
                msgs = [m for m in found if m.author != self.me]
                # The read marker moves only as far as what was actually shown.
                marker = max((m.rowid for m in found), default=0)
            changed = set(store.set_status([m.id for m in msgs], MessageStatus.READ))
            if marker:
                store.mark_room_read(room, marker)
            info = store.get_room(room)
            members: set[bytes] = set()
            if info is not None and info.kind == "group":
                members = set(self.groups.membership(store, room).joined())
            return [m for m in msgs if m.id in changed], len(changed), members

        changed_msgs, count, members = await self._write(work)
        if self._settings[SETTING_READ_RECEIPTS]:
            by_author: dict[bytes, list[bytes]] = defaultdict(list)
            for m in changed_msgs:
                by_author[m.author].append(m.id)
            for author, ids in by_author.items():
                # In a direct chat only accepted contacts learn we read; in a group, only
                # current members (never an author we merely heard of through the log).
                allowed = author in members if members else self._states.get(author) == "contact"
                if allowed and self._states.get(author) != "blocked":
                    await self.core.send_receipts(author, room, ids, RECEIPT_READ)
        return count

    # ================================================================ history

    async def history(self, room: bytes, limit: int = 200) -> list[Message]:
        """The latest displayable messages of a room (at most ``limit``), oldest first."""
        return await self._read(
            lambda s: with_edits(
                s,
                self.groups.shown_page(
                    s, room, s.latest_messages(room, limit, shown_only=True), limit
                ),
            )
        )

    async def older_messages(self, room: bytes, before: Message, limit: int = 200) -> list[Message]:
        """Displayable messages shown before ``before`` (for scrolling up), oldest first."""
        return await self._read(
            lambda s: with_edits(
                s,
                self.groups.shown_page(
                    s, room, s.messages_before(room, before.cursor, limit, shown_only=True), limit
                ),
            )
        )

    async def list_rooms(self) -> list[RoomInfo]:
        """Every conversation, most recent activity first, with unread counts."""

        def load(store: Store) -> list[tuple[Any, list[bytes]]]:
            return [
                (self.groups.shown_summary(store, r), [m.peer for m in store.members(r.room.id)])
                for r in store.list_rooms()
            ]

        rooms = []
        for summary, members in await self._read(load):
            room = summary.room
            peer = next((m for m in members if m != self.me), None)
            if room.kind == "direct" and peer is not None:
                name = self.peer_name(peer)
                online = self.links.is_online(peer)
            else:
                name = room.name or room.id.hex()[:8]
                online = any(self.links.is_online(m) for m in members if m != self.me)
            rooms.append(
                RoomInfo(
                    room.id,
                    room.kind,
                    name,
                    peer if room.kind == "direct" else None,
                    summary.unread,
                    summary.last_message,
                    online,
                    muted=room.muted,
                    archived=summary.archived,
                )
            )
        return rooms

    async def resolve_room(self, text: str) -> bytes:
        """Find a group room by name (case-insensitive) or by the start of its hex id."""
        query = text.strip()
        rooms = [r for r in await self.list_rooms() if r.kind == "group"]
        by_name = [r for r in rooms if r.name.casefold() == query.casefold()]
        by_id = [r for r in rooms if len(query) >= 4 and r.room_id.hex().startswith(query.lower())]
        matches = {r.room_id: r for r in [*by_name, *by_id]}
        if len(matches) == 1:
            return next(iter(matches))
        if not matches:
            raise NodeError(f"no room called {query!r}")
        listing = ", ".join(f"{r.name} ({r.room_id.hex()[:8]})" for r in matches.values())
        raise NodeError(f"{query!r} matches several rooms: {listing}; use the id")

    async def open_direct_room(self, peer_id: bytes) -> bytes:
        """Make sure the one-to-one room with ``peer_id`` exists; return its id."""
        room = direct_room_id(self.me, peer_id)
        await self._write(lambda s: self.core.ensure_direct(s, room, peer_id, now_ms()))
        return room

    async def room_peer(self, room: bytes) -> bytes | None:
        """The other person of a direct room (None for group rooms or unknown rooms)."""

        def load(store: Store) -> bytes | None:
            info = store.get_room(room)
            if info is None or info.kind != "direct":
                return None
            return next((m.peer for m in store.members(room) if m.peer != self.me), None)

        return await self._read(load)

    async def send_message(
        self,
        room: bytes,
        text: str,
        reply_to: bytes | None = None,
        client_id: str | None = None,
    ) -> Message:
        """Write a text message into a room (the person writes to a room, not a peer)."""
        peer = await self.room_peer(room)
        if peer is not None:
            return await self.send_text(peer, text, reply_to, client_id)
        body = text_body(text)
        return await self.groups.send_envelope(room, "text", body, reply_to, client_id)

    async def react(self, message_id: bytes, emoji: str, on: bool = True) -> None:
        """Add (or with ``on=False`` remove) our emoji reaction to a message."""
        emoji = emoji.strip()
        if not emoji or len(emoji) > MAX_EMOJI_CHARS or not emoji.isprintable():
            raise NodeError("a reaction is one emoji")
        target = await self.get_message(message_id)
        if target is None:
            raise NodeError("no such message")
        peer = await self.room_peer(target.room)
        body = encode_reaction(message_id, emoji, on)
        if peer is not None:
            await self.send_envelope(peer, KIND_REACTION, body, None)
            return
        await self.groups.send_envelope(target.room, KIND_REACTION, body, None)

    async def reactions(self, message_ids: Sequence[bytes]) -> dict[bytes, list[ReactionInfo]]:
        """Reactions on these messages, by message id."""
        found = await self._read(lambda s: s.reactions_for(message_ids))
        return {
            mid: [ReactionInfo(r.message_id, r.author, r.emoji) for r in rows]
            for mid, rows in found.items()
        }

    async def send_to_room(
        self, room: bytes, kind: str, body: bytes, reply_to: bytes | None
    ) -> Message:
        """Author an envelope of any kind into a room, direct or group."""
        peer = await self.room_peer(room)
        if peer is None and len(room) == DIRECT_ROOM_ID_LEN:  # no message in it yet
            peer = next((p for p in self._states if self.direct_room(p) == room), None)
        if peer is not None:
            return await self.send_envelope(peer, kind, body, reply_to)
        return await self.groups.send_envelope(room, kind, body, reply_to)

    async def edit_message(self, message_id: bytes, text: str) -> Message:
        """Change the text of our own message, everywhere it went."""
        return await self.changes.edit(message_id, text)

    async def delete_message(self, message_id: bytes) -> Message:
        """Delete a message (ours; in a group, as owner or admin, also a member's)."""
        return await self.changes.delete(message_id)

    async def set_disappearing(self, room: bytes, seconds: int) -> Message:
        """Set the room's disappearing-message timer (0: off; see edits.TIMER_CHOICES)."""
        return await self.changes.set_timer(room, seconds)

    async def disappearing(self, room: bytes) -> int:
        """The room's disappearing-message timer in seconds (0: off)."""
        return await self.changes.timer(room)

    def safety_number(self, peer_id: bytes) -> str:
        """The 60-digit number both people compare to rule out a man in the middle."""
        return safety_number(self.me, peer_id)

    async def peer_info(self, peer_id: bytes) -> PeerInfo | None:
        """One peer's details, or None if unknown."""
        for info in await self.list_peers():
            if info.peer_id == peer_id:
                return info
        return None

    def text_setting(self, key: str) -> str:
        """A text setting such as the download folder ('' = default)."""
        if key not in TEXT_SETTINGS:
            raise NodeError(f"unknown setting {key!r}")
        return self._text_settings.get(key, TEXT_SETTINGS[key])

    async def ui_setting(self, key: str) -> str | None:
        """A setting of an interface (the app's bell, say), kept in the profile's store."""
        name = ui_key(key)
        return await self._read(lambda s: s.get_setting(name))

    async def set_ui_setting(self, key: str, value: str) -> None:
        """Store a setting of an interface; the node never interprets it."""
        name = ui_key(key)
        if len(value) > MAX_UI_SETTING:
            raise NodeError("setting value too long")
        await self._write(lambda s: s.set_setting(name, value))

    async def set_text_setting(self, key: str, value: str) -> None:
        """Change a text setting; stored so it survives restarts."""
        if key not in TEXT_SETTINGS:
            raise NodeError(f"unknown setting {key!r}")
        await self._write(lambda s: s.set_setting(key, value))
        self._text_settings[key] = value

    async def get_message(self, message_id: bytes) -> Message | None:
        """One stored message (an edited one with its latest text)."""
        found = await self.get_messages([message_id])
        return found[0] if found else None

    async def get_messages(self, message_ids: Sequence[bytes]) -> list[Message]:
        """Stored messages among ``message_ids``, edited ones with their latest text."""
        return await self._read(lambda s: with_edits(s, s.get_messages(message_ids)))

    def display_text(self, message: Message) -> str:
        """What to show for a message: its text, or a sentence for other kinds."""
        if message.kind == "text":
            return message.body.decode("utf-8", errors="replace")
        if message.kind == KIND_SYSTEM:
            try:
                op = decode_system(message.body)
            except SystemBodyError:
                return "(unreadable room change)"
            target = self.peer_name(op.peer) if op.peer else None
            return describe_system(op, self.peer_name(message.author), target)
        if message.kind == KIND_FILE:
            try:
                manifest = decode_manifest(message.body)
            except ManifestError:
                return "(unreadable file offer)"
            # The name as it would be saved: no invisible or bidi characters in a preview.
            return f"\U0001f4ce {safe_name(manifest.name)} ({human_size(manifest.size)})"
        if message.kind == KIND_REACTION:
            return "(reaction)"
        changed = self.changes.display_text(message)
        if changed is not None:
            return changed
        if message.kind == KIND_STICKER:
            try:  # pack and name are checked plain ASCII (node/sticker_body.py)
                return f"(sticker {decode_sticker(message.body).label})"
            except StickerError:
                return "(unreadable sticker)"
        # A kind from a newer p2pchat (docs/protocol.md, "Envelope kinds"): its body is
        # never shown, and the kind is named only if it is plain ASCII letters and digits
        # (a peer chooses it: no escapes, no look-alikes).
        kind = message.kind
        plain = kind.isascii() and kind.replace("-", "").replace("_", "").isalnum()
        return f"(a message of a kind this p2pchat cannot show yet: {kind if plain else '?'})"

    def direct_room(self, peer_id: bytes) -> bytes:
        """The id of our one-to-one room with ``peer_id``."""
        return direct_room_id(self.me, peer_id)

    def peer_name(self, peer_id: bytes) -> str:
        """What to call a peer: its display name, or its short id.

        A name that looks like another known peer's (or ours) comes with the short id,
        ``Alice (k3j5x7ab)``, wherever it is shown: history keeps saying who wrote what
        even after someone renames itself to look like someone else.
        """
        if peer_id == self.me:
            return self.profile.display_name
        name = self._names.get(peer_id)
        if not name or not visible(name):
            return short_id(peer_id)
        if self._names.collides(peer_id) or name_keys(name) & name_keys(self.profile.display_name):
            return f"{name} ({short_id(peer_id)})"
        return name

    # ================================================================ links

    async def _on_link_up(self, conn: Connection, replaced: bool) -> None:
        remote = conn.remote
        peer = remote.peer_id
        if self._states.get(peer) == "blocked":
            await conn.close("blocked")
            return
        if self._is_stranger(peer) and self._stranger_links() > MAX_STRANGER_LINKS:
            # Throwaway identities must not take the slots our contacts need.
            await conn.close("too many connections from strangers")
            return
        now = now_ms()
        host = remote.host
        port = remote.port
        self._check_impersonation(peer, remote.name)

        previous_name = self._names.get(peer)
        self._names[peer] = remote.name
        if port:
            self._addresses[peer] = (host, port)
        stranger = self._states.setdefault(peer, "unknown") == "unknown"

        def work(store: Store) -> None:
            store.upsert_peer(peer, name=remote.name, last_seen=now)
            if port:
                store.add_address(peer, host, port, "last")
            if stranger:
                store.prune_strangers(MAX_STRANGERS)

        await self._write(work)
        renamed = previous_name is not None and previous_name != remote.name
        if port and self._states.get(peer) in ("contact", "request"):
            # Only people we talk to are dialled back: a stranger's advertised port must
            # not become an address we keep dialling.
            self.links.add_target(host, port, "last", peer)
        if not replaced:
            self._emit(PeerOnline(peer, remote.name, host))
        if renamed:
            self._emit(PeerUpdated(peer, remote.name, self._states[peer]))

    async def _on_link_ready(self, conn: Connection) -> None:
        """Alongside reading from a new link: send what waited for it, sync shared rooms."""
        peer = conn.remote.peer_id
        if self._states.get(peer) == "blocked":
            return
        await self._flush_outbox(peer)
        await self.groups.on_link_up(peer)
        await self.direct_sync.on_link_up(peer)
        await self.onions.on_link_up(peer)

    async def _flush_outbox(self, peer: bytes) -> None:
        """Send everything waiting for ``peer``, oldest first, page by page."""
        after = 0
        while self.links.is_online(peer):
            page = await self._read(functools.partial(_pending_page, peer=peer, after=after))
            if not page:
                return
            sent_messages: list[bytes] = []
            sent_other: list[int] = []
            for item in page:
                link = self.links.links.get(peer)
                if link is None or link.conn.is_closed:
                    break
                link.conn.write_encoded(item.frame)
                if item.message_id is not None:
                    sent_messages.append(item.message_id)
                else:
                    sent_other.append(item.id)
            after = page[-1].id
            await self.links.flush(peer)

            def mark(
                store: Store, msgs: list[bytes] = sent_messages, other: list[int] = sent_other
            ) -> list[bytes]:
                store.remove_outbox(other)
                return store.set_status(msgs, MessageStatus.SENT)

            changed = await self._write(mark)
            if changed:
                self._emit(
                    ReceiptChanged(self.direct_room(peer), tuple(changed), peer, MessageStatus.SENT)
                )
            if len(page) < OUTBOX_PAGE:
                return

    async def _on_other_connection(self, conn: Connection) -> None:
        """A non-chat connection (file transfer) from an authenticated peer."""
        if self._states.get(conn.remote.peer_id) == "blocked":
            await conn.close("blocked")
            return
        if conn.remote.purpose == PURPOSE_FILES:
            await self.transfers.serve_connection(conn)
        else:
            await conn.close("unsupported purpose")

    async def _on_link_down(self, peer: bytes, reason: str) -> None:
        # "Last seen" means when they left, not when they came: store it before telling
        # the app, so what it reads on PeerOffline is already the leaving time.
        left = now_ms()
        # With the name it last announced: a stranger's renames were not written (to
        # cost no disk writes each), and the next start must not bring back an old name.
        name = self._names.get(peer)

        def seen(store: Store) -> None:
            if store.get_peer(peer) is not None:  # a refused link leaves no row behind
                store.upsert_peer(peer, name=name, last_seen=left)

        with contextlib.suppress(NodeError, StoreError):  # the node may be stopping
            await self._write(seen)
        self._emit(PeerOffline(peer, reason))
        if len(self._names) > MAX_REMEMBERED_PEERS:
            self._trim_memory()

    def _is_stranger(self, peer: bytes) -> bool:
        """Never accepted, and in none of our rooms."""
        return self._states.get(peer, "unknown") == "unknown" and peer not in self.groups.co_members

    def _stranger_links(self) -> int:
        return sum(1 for p in self.links.links if self._is_stranger(p))

    def _trim_memory(self) -> None:
        """Forget in-memory details of strangers who are gone (the store keeps some)."""
        for peer in [p for p in self._states if self._is_stranger(p)]:
            if peer not in self.links.links:
                self._states.pop(peer, None)
                self._names.pop(peer, None)
                self._addresses.pop(peer, None)
        self._warned = {(p, n) for p, n in self._warned if p in self._states}

    async def _on_mismatch(self, exc: PeerMismatchError, host: str, port: int) -> None:
        text = (
            f"{host}:{port} was announced as {short_id(exc.expected)} "
            f"but proved to be {short_id(exc.actual)}; connection refused"
        )
        self._emit(SecurityWarning(exc.expected, text))

    def _trusted(self, peer: bytes) -> bool:
        """A contact, or someone we share a group room with."""
        return self._states.get(peer) == "contact" or peer in self.groups.co_members

    def _check_impersonation(self, peer: bytes, name: str) -> None:
        """Warn when ``peer`` takes a name that looks like another known peer's.

        Called before the name is recorded. Names are compared by confusable skeleton
        without invisible characters (``names``): "Alice", Cyrillic "\u0410lice" and
        "Alice\u3164" all match. A peer we do not trust is flagged when it looks like a
        contact or room member; a contact or member is flagged when it *renames* itself
        to look like anyone we know. Each (peer, name) is warned about once.
        """
        key = primary_key(name)
        if (peer, key) in self._warned:
            return
        previous = self._names.get(peer)
        trusted = self._trusted(peer)
        if trusted and (previous is None or name_keys(previous) & name_keys(name)):
            return  # a contact keeping (a look-alike of) its own name
        others = self._names.look_alikes(name, besides=peer)
        victims = sorted(o for o in others if trusted or self._trusted(o))
        if not victims:
            return
        self._warned.add((peer, key))
        other = victims[0]
        like = f"{short_id(other)} ({self._names.get(other, '')!r})"
        if trusted:
            text = (
                f"your contact {short_id(peer)}, until now {previous!r}, renamed itself "
                f"{name!r}, which looks like {like}: it may be impersonating them. Both "
                "are shown with their short ids; compare safety numbers."
            )
        else:
            text = (
                f"{short_id(peer)} calls itself {name!r}, like your contact {like}: it "
                "may be someone impersonating them. Their messages are kept apart and "
                "both are shown with their short ids; compare safety numbers."
            )
        self._emit(SecurityWarning(peer, text))

    def _on_discovery(self, event: PeerSeen | PeerLost) -> None:
        try:
            peer = decode_peer_id(event.peer_id)
        except PeerIdError:
            return
        if isinstance(event, PeerLost):
            self.links.remove_targets("mdns", peer)
            return
        if peer == self.me or self._states.get(peer) == "blocked":
            return
        for host, port in event.addresses[:4]:
            self.links.add_target(host, port, "mdns", peer)

    # ================================================================ messages in

    async def _on_frame(self, conn: Connection, frame: Frame) -> None:
        peer = conn.remote.peer_id
        state = self._states.get(peer, "unknown")
        if state == "blocked":
            return
        if isinstance(frame, MessageFrame):
            cost = self.flood.cost(len(frame.env.body))
            delay = self.flood.hold_back(peer, cost)
            if delay > 0:  # over its rate: read nothing more from this peer meanwhile
                await self._inbound.pause(delay)
            # Waits (so stops reading this peer) while its queued work is over the bound.
            await self._inbound.put(peer, Inbound(peer, frame.env), cost)
        elif isinstance(frame, SyncHeads):
            # Queued behind the envelopes that came before it (a join, say), so it is
            # answered with the membership those envelopes establish.
            await self._inbound.put(peer, SyncRequest(peer, frame), SYNC_REQUEST_COST)
        elif isinstance(frame, Receipt):
            if frame.room == self.direct_room(peer):
                await self.direct.on_receipt(peer, frame)
            else:
                await self.groups.on_receipt(peer, frame)
        elif isinstance(frame, Typing):
            direct = frame.room == self.direct_room(peer)
            if (direct and state == "contact") or (not direct and peer in self.groups.co_members):
                self._emit(TypingChanged(frame.room, peer, frame.on))
        elif isinstance(frame, ProfileFrame):
            await self._on_profile(peer, frame.name)
        elif isinstance(frame, OnionAddress):
            await self.onions.on_frame(peer, frame)

    async def _on_profile(self, peer: bytes, name: str) -> None:
        self._check_impersonation(peer, name)
        self._names[peer] = name
        if not self._is_stranger(peer):  # a stranger's renames cost us no disk writes
            await self._write(lambda s: s.upsert_peer(peer, name=name))
        self._emit(PeerUpdated(peer, name, self._states.get(peer, "unknown")))

    async def _ingest_loop(self) -> None:
        """Store inbound messages in batches; acknowledge them; announce them."""
        while True:
            batch = await self._inbound.take(MAX_INGEST_BATCH, self.config.flood.batch_bytes)
            try:
                await self._ingest_until_stored(batch)
            finally:
                self._inbound.done(len(batch))

    async def _ingest_until_stored(self, batch: list[Inbound | SyncRequest]) -> None:
        """Ingest ``batch``; while the store cannot write (disk full, locked), try again.

        Nothing of a failed batch was acknowledged, and its senders would offer it again
        only on a new connection: so it waits here, with the peers' further frames held
        back by the inbox's bounds, and is stored within moments of the fault clearing.
        The person is told once per fault.
        """
        delay = INGEST_RETRY_FIRST
        while True:
            try:
                await self._ingest(batch)
            except StoreError as exc:
                if not self._store_fault:
                    self._store_fault = str(exc)
                    log.warning("cannot store incoming messages: %s", exc)
                    self._emit(
                        SecurityWarning(
                            None,
                            f"Incoming messages cannot be stored: {exc}. They wait and are "
                            "stored as soon as the store can write again (free some disk "
                            "space, or close the program holding the store).",
                        )
                    )
                await asyncio.sleep(delay)  # the fault must clear; this paces the retries
                delay = min(delay * 2, INGEST_RETRY_MAX)
                continue
            except Exception:
                log.exception("failed to store %d inbound messages", len(batch))
            if self._store_fault:
                log.warning("the store writes again; waiting messages were stored")
                self._store_fault = ""
            return

    async def authentic(self, items: Sequence[Inbound]) -> list[Inbound]:
        """The items whose envelope signature verifies.

        A large batch (a catch-up) is verified in a thread: libsodium releases the GIL,
        so checking signatures overlaps with decrypting the next frames on the loop.
        A small one is checked inline, where a thread hop would only add latency.
        """
        if len(items) < VERIFY_IN_THREAD_FROM:
            return [i for i in items if envelope_is_authentic(i.env)]
        loop = asyncio.get_running_loop()
        flags = await loop.run_in_executor(
            self._verifier, lambda: [envelope_is_authentic(i.env) for i in items]
        )  # None (not started) falls back to the loop's default executor
        return [i for i, ok in zip(items, flags, strict=True) if ok]

    def body_problem(self, env: Envelope) -> str | None:
        """Why an envelope's body is unacceptable for its kind, or None (unknown kinds pass)."""
        if env.kind == "text":
            try:
                env.body.decode("utf-8")
            except UnicodeDecodeError:
                return "text is not UTF-8"
        elif env.kind == KIND_REACTION:
            try:
                decode_reaction(env.body)
            except ReactionError as exc:
                return f"bad reaction: {exc}"
        elif env.kind == KIND_FILE:
            problem = self.transfers.check_offer(env.body)
            if problem is not None:
                return f"bad file offer: {problem}"
        elif env.kind == KIND_STICKER:
            problem = self.stickers.check_body(env.body)
            if problem is not None:
                return f"bad sticker: {problem}"
        elif env.kind == KIND_SYSTEM:
            return "room change outside a group room"  # groups handle theirs before this
        elif env.kind in (KIND_EDIT, KIND_DELETE, KIND_TIMER):
            return change_problem(env)
        # Any other kind is from a newer p2pchat: kept and acknowledged (so its sender's
        # outbox empties), shown only as a placeholder (display_text). Forward compatible.
        return None

    @staticmethod
    def _time_ok(item: Inbound) -> bool:
        """False (and logged) for an envelope dated after year 9999 (docs/protocol.md).

        Its author signed that time; no calendar can show it, and held or relayed it would
        only trouble every other member. Dropped before any room sees it, never stored.
        """
        if item.env.ts <= MAX_TS:
            return True
        log.info(
            "dropped message from %s: ts %d is past year 9999", short_id(item.peer), item.env.ts
        )
        return False

    async def _ingest(self, batch: list[Inbound | SyncRequest]) -> None:
        """Envelopes first (direct rooms, then group rooms), then sync requests."""
        envelopes = self._within_quota(
            [i for i in batch if isinstance(i, Inbound) and self._time_ok(i)]
        )
        direct = [i for i in envelopes if i.env.room == self.direct_room(i.peer)]
        group = [i for i in envelopes if i.env.room != self.direct_room(i.peer)]
        if direct:
            await self.direct.ingest(direct)
        if group:
            await self.groups.ingest(group)
        for item in batch:
            if isinstance(item, SyncRequest):
                if item.heads.room == self.direct_room(item.peer):
                    self.direct_sync.on_sync_heads(item.peer, item.heads)
                else:
                    await self.groups.on_sync_heads(item.peer, item.heads)

    def _within_quota(self, items: list[Inbound]) -> list[Inbound]:
        """The items their peer's daily store budget allows; the rest are refused.

        A refused envelope is neither stored nor acknowledged: it stays in the sender's
        outbox and comes again with the next connection. The person hears of it through
        a ``PeerThrottled`` notice.
        """
        kept = []
        for item in items:
            if self.flood.allow_store(item.peer, self.flood.cost(len(item.env.body))):
                kept.append(item)
            else:
                log.debug("refused a message from %s: over its daily quota", short_id(item.peer))
        return kept

    def _on_flood_notice(self, notice: FloodNotice) -> None:
        name = f"{self.peer_name(notice.peer)!r} ({short_id(notice.peer)})"
        self._emit(
            PeerThrottled(
                notice.peer,
                describe_flood(name, notice),
                held_back=notice.held_back,
                refused=notice.refused,
            )
        )

    # ================================================================ waiting

    async def wait_for_status(self, message_id: bytes, status: int, deadline: float) -> bool:
        """Wait up to ``deadline`` seconds for our message to reach ``status``."""
        stream = self.subscribe()
        try:
            current = await self.get_message(message_id)
            if current is not None and current.status >= status:
                return True
            end = time.monotonic() + deadline
            while (remaining := end - time.monotonic()) > 0:
                try:
                    async with asyncio.timeout(remaining):
                        event = await stream.next_matching(
                            lambda e: (
                                isinstance(e, ReceiptChanged)
                                and message_id in e.message_ids
                                and e.status >= status
                            )
                        )
                except TimeoutError:
                    return False
                if event is not None:
                    return True
            return False
        finally:
            stream.close()
