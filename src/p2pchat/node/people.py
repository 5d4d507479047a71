"""The node's people: peers and contacts, their addresses and names, and the links to them."""

from __future__ import annotations

import contextlib
import functools

from p2pchat.discovery import PeerLost, PeerSeen
from p2pchat.identity import PeerIdError, decode_peer_id, short_id
from p2pchat.node.envelopes import direct_room_id
from p2pchat.node.errors import NodeError
from p2pchat.node.events import (
    PeerOffline,
    PeerOnline,
    PeerUpdated,
    ReceiptChanged,
    SecurityWarning,
)
from p2pchat.node.model import PeerInfo
from p2pchat.node.names import name_keys, primary_key
from p2pchat.node.node_base import (
    DIRECT_ROOM_ID_LEN,
    MAX_REMEMBERED_PEERS,
    MAX_STRANGER_LINKS,
    MAX_STRANGERS,
    OUTBOX_PAGE,
    NodeBase,
)
from p2pchat.node.peer_lookup import find_peer
from p2pchat.node.requests import HeldBack
from p2pchat.node.settings import SETTING_READ_RECEIPTS
from p2pchat.profile import clean_display_name
from p2pchat.store import Message, MessageStatus, OutboxItem, Peer, Store, StoreError
from p2pchat.transport import Connection, LocalHello, PeerMismatchError
from p2pchat.wire import MAX_IDS_PER_RECEIPT, PURPOSE_FILES, RECEIPT_DELIVERED, RECEIPT_READ
from p2pchat.wire import Profile as ProfileFrame


def _pending_page(store: Store, *, peer: bytes, after: int) -> list[OutboxItem]:
    return store.pending_for(peer, OUTBOX_PAGE, after_id=after)


class PeopleApi(NodeBase):
    """The node's people: peers and contacts, their addresses and names, and the links to them."""

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
        now = self._now_ms()
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
        left = self._now_ms()
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

    async def room_peer(self, room: bytes) -> bytes | None:
        """The other person of a direct room (None for group rooms or unknown rooms)."""
        if len(room) != DIRECT_ROOM_ID_LEN:
            # Not a direct room's id: no store trip on every message sent to a group.
            return None

        def load(store: Store) -> bytes | None:
            if store.room_kind(room) != "direct":
                return None
            return next((m.peer for m in store.members(room) if m.peer != self.me), None)

        return await self._read(load)
