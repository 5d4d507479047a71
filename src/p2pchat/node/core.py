"""The node's core: the few shared parts every service of the node works with.

The services (direct chats, groups, transfers, stickers, ...) need the store, the event
hub, the Lamport clock, the wire and what we know of each contact. They get those here,
under public names, instead of reaching into ``Node``'s private members: what a service
may touch is then written down in one place, and a service can be read (and tested)
against this object alone. ``Node`` builds the core and stays the façade the UI, the CLI
and the control socket call.

The core holds no policy of its own: who may send, what is accepted and what is shown
stay in the services. It must never import a service (services import it).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Protocol, TypeVar

from p2pchat.node.events import Event
from p2pchat.node.links import LinkManager
from p2pchat.node.names import NameBook
from p2pchat.store import Peer, PeerState, Store
from p2pchat.wire import MAX_IDS_PER_RECEIPT, Receipt, encode_frame

T = TypeVar("T")

# An envelope may be at most this far ahead of our Lamport clock: a peer must not be able
# to push the clock near 2**63 (SQLite's integer limit) and break every later send.
MAX_LAMPORT_AHEAD = 2**32
LAMPORT_CEILING = 2**62


class StoreRead(Protocol):
    """Runs ``fn`` in the store's thread and returns its result."""

    def __call__(self, fn: Callable[[Store], T], /) -> Awaitable[T]: ...


class StoreWrite(Protocol):
    """Runs ``fn`` in the next group commit (``quick``: a small write on a message's path;
    ``durable=False``: what a peer would say again, committed without waiting for the
    disk, see node/commits.py)."""

    def __call__(
        self, fn: Callable[[Store], T], /, *, quick: bool = False, durable: bool = True
    ) -> Awaitable[T]: ...


class LamportClock:
    """One Lamport clock for every room: it only has to grow past everything seen.

    Advanced in the store thread (inside writes, never two at once), read anywhere.
    """

    def __init__(self) -> None:
        self.value = 0

    def witness(self, lamport: int) -> None:
        """We saw ``lamport`` (in a message we keep): our next time goes past it."""
        self.value = max(self.value, lamport)

    def tick(self) -> int:
        """The time of our next message (capped below SQLite's integer limit)."""
        self.value = min(self.value + 1, LAMPORT_CEILING)
        return self.value

    def problem(self, lamport: int) -> str | None:
        """Why a peer's Lamport time is unacceptable (absurdly far ahead), or None."""
        if lamport > min(self.value + MAX_LAMPORT_AHEAD, LAMPORT_CEILING):
            return f"lamport {lamport} is implausibly far ahead"
        return None


class Contacts:
    """What we know of each peer: trust state, announced name, where it listens.

    ``states`` mirrors the store's peer states (``contact``, ``request``, ``blocked``,
    ``unknown``) so that trust decisions on the message path need no query; ``names``
    holds every display name seen (strangers' only in memory), ``addresses`` where each
    connected peer listens (stored only for peers we keep).
    """

    def __init__(self) -> None:
        self.states: dict[bytes, str] = {}
        self.names = NameBook()
        self.addresses: dict[bytes, tuple[str, int]] = {}

    def state(self, peer: bytes) -> str | None:
        """The peer's trust state, or None if we never heard of it."""
        return self.states.get(peer)

    def is_contact(self, peer: bytes) -> bool:
        """True if the person accepted ``peer`` as a contact."""
        return self.states.get(peer) == "contact"

    def remember(self, store: Store, peer_id: bytes, state: PeerState | None = None) -> Peer:
        """Store thread: persist a peer we now care about, with its name and last address.

        Strangers that merely connected stay in memory: a LAN attacker must not be able
        to grow the store (or the peer list) without bound.
        """
        peer = store.upsert_peer(peer_id, name=self.names.get(peer_id), state=state)
        address = self.addresses.get(peer_id)
        if address is not None:
            store.add_address(peer_id, address[0], address[1], "last")
        return peer


class NodeCore:
    """The shared parts, wired by ``Node`` and handed to its services.

    ``read``/``write`` run a function in the store's thread (writes group-committed, and
    all of them pass through the node, which counts and orders them); ``emit`` tells the
    UI, the CLI and bots; ``links`` is the wire; ``clock`` orders messages; ``contacts``
    drives trust decisions.
    """

    def __init__(
        self,
        me: bytes,
        links: LinkManager,
        *,
        read: StoreRead,
        write: StoreWrite,
        emit: Callable[[Event], None],
    ) -> None:
        self.me = me
        self.links = links
        self.read = read
        self.write = write
        self.emit = emit
        self.clock = LamportClock()
        self.contacts = Contacts()
        # Store thread: direct rooms known to exist (written inside writes only, never
        # two at once, so the set needs no lock).
        self.ready_rooms: set[bytes] = set()

    def ensure_direct(self, store: Store, room: bytes, peer_id: bytes, now: int) -> None:
        """Store thread: the direct room with ``peer_id`` exists, with both of us in it."""
        if room in self.ready_rooms:
            return
        if store.get_room(room) is None:
            store.ensure_room(room, "direct", created_at=now)
            store.set_member(room, self.me, "member", "joined")
            store.set_member(room, peer_id, "member", "joined")
        self.ready_rooms.add(room)

    async def send_receipts(
        self, peer_id: bytes, room: bytes, ids: Sequence[bytes], status: str
    ) -> None:
        """Send receipts now, or keep them in the outbox until the peer is back."""
        frames = [
            Receipt(room=room, ids=tuple(ids[i : i + MAX_IDS_PER_RECEIPT]), st=status)
            for i in range(0, len(ids), MAX_IDS_PER_RECEIPT)
        ]
        unsent = [f for f in frames if not self.links.write(peer_id, f)]
        if unsent:
            await self.write(
                lambda s: s.enqueue_many([(peer_id, encode_frame(f), None) for f in unsent])
            )
