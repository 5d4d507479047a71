"""The p2pchat node: the chat service every interface uses.

Interfaces (the TUI, the CLI, the control socket) import from here only: the Node,
its configuration, its events, and the plain data types its methods return.
"""

from p2pchat.hostport import parse_host_port
from p2pchat.node.chats import SearchError, SearchHit, SearchPage
from p2pchat.node.config import NodeConfig
from p2pchat.node.errors import NodeError
from p2pchat.node.events import (
    ContactRequest,
    Event,
    MessageAdded,
    MessagesChanged,
    MessagesWithdrawn,
    NodeStatus,
    PeerOffline,
    PeerOnline,
    PeerUpdated,
    ReactionChanged,
    ReceiptChanged,
    RequestsHeldBack,
    RoomChanged,
    RoomInvitation,
    SecurityWarning,
    StickerReady,
    TorStatus,
    TransferProgress,
    TypingChanged,
)
from p2pchat.node.groups import GroupError
from p2pchat.node.model import MemberInfo, PeerInfo, PeerLookupError, ReactionInfo, RoomInfo
from p2pchat.node.service import DISPLAY_KINDS, Node
from p2pchat.node.settings import (
    BOOL_SETTINGS,
    SETTING_ANNOUNCE,
    SETTING_DOWNLOAD_DIR,
    SETTING_READ_RECEIPTS,
    SETTING_TYPING,
    TEXT_SETTINGS,
)
from p2pchat.node.stream import EventStream
from p2pchat.store import Message, MessageStatus, StoreError, StoreLockedError

__all__ = [
    "BOOL_SETTINGS",
    "DISPLAY_KINDS",
    "SETTING_ANNOUNCE",
    "SETTING_DOWNLOAD_DIR",
    "SETTING_READ_RECEIPTS",
    "SETTING_TYPING",
    "TEXT_SETTINGS",
    "ContactRequest",
    "Event",
    "EventStream",
    "GroupError",
    "MemberInfo",
    "Message",
    "MessageAdded",
    "MessageStatus",
    "MessagesChanged",
    "MessagesWithdrawn",
    "Node",
    "NodeConfig",
    "NodeError",
    "NodeStatus",
    "PeerInfo",
    "PeerLookupError",
    "PeerOffline",
    "PeerOnline",
    "PeerUpdated",
    "ReactionChanged",
    "ReactionInfo",
    "ReceiptChanged",
    "RequestsHeldBack",
    "RoomChanged",
    "RoomInfo",
    "RoomInvitation",
    "SearchError",
    "SearchHit",
    "SearchPage",
    "SecurityWarning",
    "StickerReady",
    "StoreError",
    "StoreLockedError",
    "TorStatus",
    "TransferProgress",
    "TypingChanged",
    "parse_host_port",
]
