"""The p2pchat node: the service behind every interface (TUI, CLI, control socket).

It owns the store, the link manager and discovery, and turns them into a chat:
signed envelopes, a persistent outbox retried whenever a peer is reachable, idempotent
receive, delivered/read receipts, typing indicators, contact requests, blocking and
impersonation warnings. Callers use its async methods and subscribe to its events; it
never imports Textual and never prints.

Writes are group-committed: concurrent calls share one SQLite transaction (one fsync),
and inbound messages are stored in batches, so durability does not cap throughput.

``Node`` is the façade: it wires the core (node/core.py) and the services (direct chats,
groups, transfers, ...) and runs the lifecycle; its API comes from parts with one job
each (node_base.py, people.py, outgoing.py, conversations.py, incoming.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

from p2pchat.discovery import Discovery, resolve_interfaces
from p2pchat.node.chats import ChatService
from p2pchat.node.checks_ahead import VERIFIER_THREADS, ChecksAhead, new_verifier
from p2pchat.node.commits import GroupCommit
from p2pchat.node.config import NodeConfig
from p2pchat.node.core import NodeCore
from p2pchat.node.direct import DirectInbox
from p2pchat.node.direct_sync import DirectSync
from p2pchat.node.disclosure import NameDisclosure
from p2pchat.node.edits import ChangeService
from p2pchat.node.errors import NodeError
from p2pchat.node.events import NodeStatus, ReceiptChanged, SecurityWarning
from p2pchat.node.expiry import ExpiryService
from p2pchat.node.groups import GroupService
from p2pchat.node.inbox import FairInbox
from p2pchat.node.incoming import IncomingApi
from p2pchat.node.links import LinkManager
from p2pchat.node.names import load_confusables
from p2pchat.node.node_base import DISPLAY_KINDS, MAX_STRANGER_LINKS, VERIFY_IN_THREAD_FROM
from p2pchat.node.onion import OnionService
from p2pchat.node.quota import FloodGuard
from p2pchat.node.requests import RequestBook
from p2pchat.node.settings import (
    BOOL_SETTINGS,
    SETTING_ANNOUNCE,
    SETTING_DOWNLOAD_DIR,
    TEXT_SETTINGS,
)
from p2pchat.node.stickers import StickerService
from p2pchat.node.stream import EventHub
from p2pchat.node.transfer import TransferService
from p2pchat.profile import Profile, forget_old_store_keys
from p2pchat.store import Store, StoreError, StoreWorker, now_ms

__all__ = ["DISPLAY_KINDS", "MAX_STRANGER_LINKS", "SETTING_DOWNLOAD_DIR", "Node", "now_ms"]

log = logging.getLogger(__name__)


class Node(IncomingApi):
    """A running p2pchat node for one profile. ``await start()``, then use, then ``stop()``."""

    def __init__(self, profile: Profile, config: NodeConfig | None = None) -> None:
        self.profile = profile
        self.config = config or NodeConfig()
        self.identity = profile.identity
        self.me = profile.identity.peer_id
        self.hub = EventHub()
        self.db = None
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
        self.discovery = None
        self.transfers = TransferService(self)
        self.stickers = StickerService(self)
        self.chats = ChatService(self)
        self.groups = GroupService(self)
        self.direct = DirectInbox(self)
        self.direct_sync = DirectSync(self)
        self.onions = OnionService(self)
        self.changes = ChangeService(self)
        self.expiry = ExpiryService(self)
        # The core's contact book, under the names this module has always used: trust
        # states, display names (indexed by look-alike key), where connected peers listen.
        self._states = self.core.contacts.states
        self._names = self.core.contacts.names
        self._addresses = self.core.contacts.addresses
        self._settings = dict(BOOL_SETTINGS)
        self._text_settings = dict(TEXT_SETTINGS)
        # Lamport clock shared by all rooms. Store-thread caches: rooms known to exist
        # (the core's), next seqs.
        self.clock = self.core.clock
        self._ready_rooms = self.core.ready_rooms
        self._seq_cache = {}
        # Store thread: per room, the lowest seq we may still write (see raise_seq_floor).
        self._seq_floor = {}
        # Created by start() (a stopped node can be started again).
        self._verifier = None
        # Signature checks of the next inbound batch, run while this one is stored.
        self.checks_ahead = ChecksAhead(VERIFY_IN_THREAD_FROM, parts=VERIFIER_THREADS)
        self._commits = GroupCommit(self._db, self._forget_caches)
        # How the node runs (port, announcing, discovery), once started; also emitted.
        self.status = None
        # Inbound work, per peer and served in turn: one flooding peer delays no other.
        self._inbound = FairInbox(self.config.flood.queue_bytes)
        self.flood = FloodGuard(self.config.flood, on_notice=self._on_flood_notice)
        self._tasks = set()
        self.requests = RequestBook(self.config.max_open_requests)
        self._warned = set()
        self._started = False
        self.started_at = 0.0

    # ================================================================ lifecycle

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
        self._verifier = new_verifier()
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

    def _now_ms(self) -> int:
        """Wall-clock ms for the node's parts, read through this module's ``now_ms`` (the UI
        tests freeze that one)."""
        return now_ms()

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
