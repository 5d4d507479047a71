"""The node as its services see it: typing protocols, no code.

``Node`` (node/service.py) builds every service and hands itself to each; a service that
imported ``Node`` to name its type would import the module that imports it (a cycle,
even if only for type checking). The services name these protocols instead: the parts
of ``Node`` (and of each other) they use, and nothing else. mypy checks that ``Node``
and the real services satisfy them where ``Node`` builds the services.

What every service shares (store, events, clock, contacts, wire) is the concrete
:class:`~p2pchat.node.core.NodeCore`; what is listed here beyond it is the façade's own
work (signing our envelopes, names for people, settings) and the hooks one service
offers another (a file message for transfers, a sticker for stickers, ...).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Protocol, TypeVar

if TYPE_CHECKING:
    from p2pchat.identity import Identity
    from p2pchat.node.checks_ahead import ChecksAhead
    from p2pchat.node.config import NodeConfig
    from p2pchat.node.core import NodeCore
    from p2pchat.node.disclosure import NameDisclosure
    from p2pchat.node.events import Event
    from p2pchat.node.file_io import FileSource
    from p2pchat.node.inbox import Inbound
    from p2pchat.node.links import LinkManager
    from p2pchat.node.model import MemberInfo, RoomInfo, TransferInfo
    from p2pchat.node.requests import RequestBook
    from p2pchat.node.rooms import Membership
    from p2pchat.node.stream import EventHub, EventStream
    from p2pchat.profile import Profile
    from p2pchat.store import Message, Store, StoreWorker
    from p2pchat.transport import Connection
    from p2pchat.wire import Envelope, Frame

T = TypeVar("T")


class GroupsFacade(Protocol):
    """What other services use of the group rooms (node/groups.py)."""

    def membership(self, store: Store, room: bytes) -> Membership: ...

    def forget_caches(self) -> None: ...

    def shown(self, store: Store, room: bytes, rows: list[Message]) -> list[Message]: ...

    async def members(self, room: bytes) -> list[MemberInfo]: ...

    async def leave(self, room: bytes) -> None: ...

    async def decline(self, room: bytes) -> None: ...

    async def send_envelope(
        self,
        room: bytes,
        kind: str,
        body: bytes,
        reply_to: bytes | None,
        client_id: str | None = None,
    ) -> Message: ...


class TransfersFacade(Protocol):
    """What other services use of file transfers (node/transfer.py)."""

    async def get(self, message_id: bytes) -> TransferInfo | None: ...

    async def on_file_message(self, message: Message, incoming: bool) -> None: ...

    async def cancel(self, message_id: bytes, *, detail: str = ...) -> None: ...

    async def dial_files(self, peer: bytes) -> Connection: ...


class StickersFacade(Protocol):
    """What other services use of stickers (node/stickers.py)."""

    async def on_sticker_message(self, message: Message) -> None: ...

    async def open_source(self, peer: bytes, sha256: bytes) -> FileSource | None: ...


class ChangesFacade(Protocol):
    """What other services use of edits and deletes (node/edits.py)."""

    def apply_deletes(self, store: Store, envelopes: Sequence[Envelope], now: int) -> None: ...

    def after_store(
        self, store: Store, stored: list[Message], envelopes: dict[bytes, Envelope], now: int
    ) -> set[bytes]: ...

    def expire(self, store: Store, message_ids: Sequence[bytes]) -> list[bytes]: ...

    def emit_changed(self) -> None: ...


class ExpiryFacade(Protocol):
    """What other services use of disappearing messages (node/expiry.py)."""

    clock: Callable[[], int]

    def poke(self) -> None: ...


class NodeFacade(Protocol):
    """The node, as a service sees it."""

    @property
    def me(self) -> bytes: ...

    @property
    def core(self) -> NodeCore: ...

    @property
    def links(self) -> LinkManager: ...

    @property
    def config(self) -> NodeConfig: ...

    @property
    def identity(self) -> Identity: ...

    @property
    def profile(self) -> Profile: ...

    @property
    def hub(self) -> EventHub: ...

    @property
    def db(self) -> StoreWorker | None: ...

    @property
    def requests(self) -> RequestBook: ...

    @property
    def name_disclosure(self) -> NameDisclosure: ...

    @property
    def groups(self) -> GroupsFacade: ...

    @property
    def transfers(self) -> TransfersFacade: ...

    @property
    def stickers(self) -> StickersFacade: ...

    @property
    def changes(self) -> ChangesFacade: ...

    @property
    def expiry(self) -> ExpiryFacade: ...

    # ------------------------------------------------------------ the façade's own work

    def peer_name(self, peer_id: bytes) -> str: ...

    def direct_room(self, peer_id: bytes) -> bytes: ...

    async def room_peer(self, room: bytes) -> bytes | None: ...

    def is_contact(self, peer_id: bytes) -> bool: ...

    async def accept(self, peer_id: bytes) -> None: ...

    def text_setting(self, key: str) -> str: ...

    def subscribe(self) -> EventStream: ...

    def emit(self, event: Event) -> None: ...

    async def list_rooms(self) -> list[RoomInfo]: ...

    def display_text(self, message: Message) -> str: ...

    async def get_message(self, message_id: bytes) -> Message | None: ...

    async def db_run(self, fn: Callable[[Store], T]) -> T: ...

    async def store_read(self, fn: Callable[[Store], T]) -> T: ...

    async def store_write(self, fn: Callable[[Store], T]) -> T: ...

    async def send_envelope(
        self,
        peer_id: bytes,
        kind: str,
        body: bytes,
        reply_to: bytes | None,
        client_id: str | None = None,
    ) -> Message: ...

    async def send_to_room(
        self, room: bytes, kind: str, body: bytes, reply_to: bytes | None
    ) -> Message: ...

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
    ) -> tuple[Message, Envelope]: ...

    async def publish_own(
        self, message: Message, env: Envelope, recipients: Sequence[bytes]
    ) -> None: ...

    async def deliver(self, frame: Frame, recipients: Sequence[bytes]) -> None: ...

    def body_problem(self, env: Envelope) -> str | None: ...

    def lamport_problem(self, env: Envelope) -> str | None: ...

    async def authentic(self, items: Sequence[Inbound]) -> list[Inbound]: ...

    checks_ahead: ChecksAhead

    def raise_seq_floor(self, store: Store, room: bytes, held_by_other: int) -> None: ...
