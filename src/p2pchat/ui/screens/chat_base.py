"""The chat screen's frame: layout, node start-up, sidebar, opening a room, its bars.

``ChatBase`` holds the screen's state and what every part of it needs (running node
calls, rebuilding the sidebar, the header, the request and invitation bar, the members
panel). ``chat_messages.ChatMessages`` adds the composer and the message actions on
top, and ``chat.ChatScreen`` the node's events and the keys.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.css.query import NoMatches
from textual.screen import Screen
from textual.timer import Timer
from textual.widgets import Button, Footer, OptionList, Static

from p2pchat.node import (
    MemberInfo,
    Message,
    NodeError,
    NodeStatus,
    PeerInfo,
    RoomInvitation,
    StoreError,
    TorStatus,
)
from p2pchat.ui.context import ChatContext, ctx
from p2pchat.ui.heap import freeze_long_lived
from p2pchat.ui.text import literal
from p2pchat.ui.widgets.composer import COMPOSER_PLACEHOLDER, Composer
from p2pchat.ui.widgets.header import ConversationHeader
from p2pchat.ui.widgets.members import MembersPanel
from p2pchat.ui.widgets.message_list import MessageList
from p2pchat.ui.widgets.sidebar import Entry, Sidebar, load_entries

# Tell the peer we type at most this often; they drop the indicator after TYPING_SHOWN.
TYPING_REFRESH = 3.0
TYPING_IDLE = 5.0
TYPING_SHOWN = 8.0
SIDEBAR_DELAY = 0.05
# In a burst (a bot, catching up) rebuild the sidebar at most this often: each rebuild
# reads every room and repaints the list, which at one per event would eat the frame.
SIDEBAR_MIN_GAP = 0.5
# Messages seen on screen are marked read at most this often (the first at once): in a
# burst each mark is a durable write here and a receipt to write on the other side.
READ_MIN_GAP = 0.3
# A flood of contact requests is announced once per this many seconds, not per request.
HELD_NOTICE_EVERY = 10.0
#: From this many columns on, a group shows its members panel unless f5 hid it.
WIDE = 100


def tor_badge(status: TorStatus) -> Text:
    """Tor's state for the top bar: starting (with bootstrap %), ready, or failed."""
    if status.state == "ready":
        return Text("  ·  Tor ready", "green")
    if status.state == "failed":
        return Text("  ·  Tor failed (retrying)", "red")
    if status.state == "bootstrapping":
        return Text(f"  ·  Tor {status.percent} %", "yellow")
    return Text(f"  ·  Tor {status.state}", "yellow")


class ChatBase(Screen[None]):
    """The screen's state, frame and bars (see the module docstring)."""

    def __init__(self) -> None:
        super().__init__()
        self.room: bytes | None = None
        self.peer: bytes | None = None
        self.peer_info: PeerInfo | None = None
        self.reply_to: Message | None = None
        self.editing: Message | None = None  # our message whose new text the composer holds
        self.room_name = ""
        self.members: list[MemberInfo] = []
        self.invitations: dict[bytes, RoomInvitation] = {}
        self.typing_peers: dict[tuple[bytes, bytes], Timer] = {}  # (room, peer)
        self.my_state = ""  # our membership of the open group: joined, invited, left...
        # The members panel: None follows the width (shown from WIDE columns on), f5 sets it.
        self.members_shown: bool | None = None
        self.warnings: list[str] = []
        self.picker_start: Path | None = None  # where the file picker opens (tests set it)
        self.node_ready = False
        self.status: NodeStatus | None = None
        self._sidebar_timer: Timer | None = None
        self._sidebar_at = -SIDEBAR_MIN_GAP  # monotonic time of the last rebuild
        self._reads_due: dict[bytes, list[bytes]] = {}  # room -> seen, not yet marked read
        self._reads_timer: Timer | None = None
        self._reads_at = -READ_MIN_GAP
        self._busy_until = 0.0  # monotonic: live messages came in until about then
        self._held_noticed = float("-inf")
        self._typing_sent_at = 0.0
        self._typing_idle: Timer | None = None

    @property
    def context(self) -> ChatContext:
        """The app's shared context."""
        return ctx(self)

    # ================================================================ layout

    def compose(self) -> ComposeResult:
        """Top bar, warning banner, sidebar | conversation, footer."""
        yield Static(id="topbar")
        yield Static(id="security")
        with Horizontal(id="main"):
            # In a pane of its own: Textual draws every widget whose container overlaps a
            # changed area, so straight in #main the list was drawn again with every
            # frame of the conversation (a key, a new message).
            with Vertical(id="sidebar-pane"):
                yield Sidebar(id="sidebar")
            with Vertical(id="conversation"):
                yield Static(id="empty")
                yield ConversationHeader(id="header")
                with Horizontal(id="request-bar"):
                    yield Static(id="request-text")
                    yield Button("Accept", variant="success", id="accept", compact=True)
                    yield Button("Block", variant="error", id="block", compact=True)
                    yield Button("Unblock", variant="warning", id="unblock", compact=True)
                yield MessageList(id="messages")
                yield Static(id="below-bar")
                yield Static(id="reply-bar")
                completions = OptionList(id="completions")
                completions.can_focus = False
                yield completions
                yield Composer(completions, id="composer")
            yield MembersPanel(id="members")
        yield Footer(compact=True)  # every key fits in 80 columns

    def on_mount(self) -> None:
        """Start in the empty state until the node is up."""
        self.query_one("#security").display = False
        self.query_one("#completions").display = False
        self.query_one("#members").display = False
        self._show_conversation(False)
        self.update_topbar()
        self._update_empty()

    def _show_conversation(self, shown: bool) -> None:
        for wid in ("#header", "#messages", "#composer"):
            self.query_one(wid).display = shown
        self.query_one("#empty").display = not shown
        self.query_one("#request-bar").display = False
        self.query_one("#reply-bar").display = False
        self.query_one("#below-bar").display = False

    def update_topbar(self) -> None:
        """Your name, short id, port and discovery state."""
        node = self.context.node
        bar = Text.assemble(("p2pchat ", "bold bright_cyan"))
        bar.append_text(literal(node.profile.display_name, "bold", multiline=False))
        bar.append(f"  {node.peer_id_text[:8]}", "grey62")
        if self.status is not None:
            bar.append(f"  ·  port {self.status.port}", "grey62")
            if not self.status.discovery:
                bar.append("  ·  discovery off", "yellow")
            elif not self.status.announcing:
                bar.append("  ·  not announcing", "grey62")
        elif not self.node_ready:
            bar.append("  ·  starting…", "grey62")
        if node.onions.enabled:
            bar.append_text(tor_badge(node.onions.status))
        self.query_one("#topbar", Static).update(bar)

    def _update_empty(self) -> None:
        node = self.context.node
        text = Text.assemble(
            ("Welcome to p2pchat\n\n", "bold"),
            "Pick a chat on the left: ↑/↓ and enter.\n\n",
            "People running p2pchat on your network\nappear under ",
            ("Nearby", "bold"),
            ". Nobody there? Press ",
            ("ctrl+p", "bold"),
            "\nand choose ",
            ("Connect to an address", "bold"),
            ".\n\n",
            ("Your id\n", "grey62"),
            node.peer_id_text,
            "\n",
        )
        if self.status is not None:
            text.append(f"Port {self.status.port}\n", "grey62")
        text.append("\nctrl+p commands · f2 settings · ctrl+q quit", "grey62")
        self.query_one("#empty", Static).update(text)

    # ================================================================ node lifecycle

    async def node_started(self) -> None:
        """The node is up: load the sidebar and focus it."""
        self.node_ready = True
        # The NodeStatus event may have come before this screen was mounted.
        self.status = self.status or self.context.node.status
        self.update_topbar()
        # Invitations answered neither way before a restart are still open.
        for invitation in await self.context.node.groups.invitations():
            self.invitations.setdefault(invitation.room, invitation)
        await self.reload_sidebar()
        self.query_one(Sidebar).focus()
        # Up and loaded: what lives now lives until the app quits (see ui.heap).
        freeze_long_lived()

    def run_node(self, coro: Coroutine[Any, Any, Any], done: str = "") -> None:
        """Run a node call in a worker; report failures as notifications."""

        async def call() -> None:
            try:
                await coro
            except (NodeError, StoreError, ValueError, OSError) as exc:
                self.notify(str(exc), title="Could not do that", severity="error", markup=False)
                return
            if done:
                self.notify(done, markup=False, timeout=3)

        self.run_worker(call(), exit_on_error=False)

    def run_node_later(self, call: Callable[..., Coroutine[Any, Any, Any]], *args: Any) -> None:
        """``run_node(call(*args))``, for palette commands built ahead of time."""
        self.run_node(call(*args), "Done")

    # ================================================================ sidebar

    def schedule_sidebar(self, *, busy: bool = False) -> None:
        """Rebuild the sidebar soon (several events in a burst cause one rebuild).

        ``busy``: a new message, which may be one of a burst: then at most one rebuild
        every ``SIDEBAR_MIN_GAP``.
        """
        if self._sidebar_timer is None and self.node_ready:
            since = time.monotonic() - self._sidebar_at
            delay = max(SIDEBAR_DELAY, SIDEBAR_MIN_GAP - since) if busy else SIDEBAR_DELAY
            self._sidebar_timer = self.set_timer(delay, self._sidebar_due)

    def _sidebar_due(self) -> None:
        self._sidebar_timer = None
        self._sidebar_at = time.monotonic()
        self.run_worker(self.reload_sidebar(), group="sidebar", exclusive=True, exit_on_error=False)

    async def reload_sidebar(self) -> None:
        """Re-read rooms and peers from the node."""
        requests, chats, nearby, peers = await load_entries(self.context.node)
        try:
            sidebar = self.query_one(Sidebar)
        except NoMatches:
            return  # the app is closing

        sidebar.typing = {room for room, _ in self.typing_peers}
        sidebar.invited = set(self.invitations)
        sidebar.show(
            requests, chats, nearby, held_back=self.context.node.requests_held_back.requests
        )
        for peer in peers:
            self.context.verified[peer.peer_id] = peer.verified
            self.context.states[peer.peer_id] = peer.state

    def entries(self) -> list[Entry]:
        """Every sidebar entry, in order."""
        return list(self.query_one(Sidebar).entries.values())

    @on(Sidebar.Opened)
    async def _opened(self, event: Sidebar.Opened) -> None:
        await self.open_entry(event.entry)

    async def open_entry(self, entry: Entry) -> None:
        """Open a room (creating the direct room for a nearby peer)."""
        node = self.context.node
        room = entry.room_id
        if room is None and entry.peer_id is not None:
            room = await node.open_direct_room(entry.peer_id)
        if room is None:
            return
        await self.open_room(room)

    async def open_room(self, room: bytes) -> None:
        """Show ``room`` and focus the composer."""
        node = self.context.node
        self._stop_typing()
        self.room = room
        self.peer = await node.room_peer(room)
        self.room_name = next((r.name for r in await node.list_rooms() if r.room_id == room), "")
        self.reply_to = None
        self.editing = None
        self._show_conversation(True)
        await self.refresh_peer()
        listing = self.query_one(MessageList)
        listing.group = self.peer is None
        await listing.show_room(room)
        self.query_one(Sidebar).select_key("room:" + room.hex())
        self.query_one(Composer).focus()
        self.schedule_sidebar()

    def action_cycle_chat(self, step: int) -> None:
        """Open the previous/next conversation in the sidebar."""
        rooms = [e for e in self.entries() if e.room_id is not None]
        if not rooms:
            return
        keys = [e.room_id for e in rooms]
        index = keys.index(self.room) + step if self.room in keys else 0
        target = rooms[index % len(rooms)]
        self.run_worker(self.open_entry(target), group="open", exclusive=True, exit_on_error=False)

    def action_focus_sidebar(self) -> None:
        """Move focus to the conversation list."""
        self.query_one(Sidebar).focus()

    # ================================================================ header, bars

    async def refresh_peer(self) -> None:
        """Re-read the open conversation's peer and redraw the header and bars."""
        if self.peer is None:
            self.peer_info = None
            if self.room is not None:
                self.members = await self.context.node.groups.members(self.room)
                me = self.context.me
                self.my_state = next((m.state for m in self.members if m.peer_id == me), "")
                if self.my_state != "invited":
                    self.invitations.pop(self.room, None)
                rooms = await self.context.node.list_rooms()
                self.room_name = next(
                    (r.name for r in rooms if r.room_id == self.room), self.room_name
                )
        else:
            self.members = []
            self.my_state = ""
            self.peer_info = await self.context.node.peer_info(self.peer)
        # No read receipts to strangers: only once they are accepted as a contact.
        listing = self.query_one(MessageList)
        state = self.peer_info.state if self.peer_info else "contact"
        was = listing.can_mark_read
        listing.can_mark_read = state not in ("request", "blocked")
        if listing.can_mark_read and not was:
            listing.call_after_refresh(listing.report_seen)
        self.redraw_header()
        self._update_request_bar()
        self._update_members()
        self.refresh_bindings()

    def redraw_header(self) -> None:
        """Redraw the header (presence, typing, verification)."""
        if self.room is None:
            return
        header = self.query_one(ConversationHeader)
        if self.peer is None:
            typing_names = [self.context.name(p) for r, p in self.typing_peers if r == self.room]
            header.show_group(self.room_name, self.members, typing_names)
            return
        name = self.context.name(self.peer)
        typing = (self.room, self.peer) in self.typing_peers
        header.show(name, self.peer_info, typing, self.context.now_ms())

    def _update_request_bar(self) -> None:
        bar = self.query_one("#request-bar")
        info = self.peer_info
        state = info.state if info else ""
        composer = self.query_one(Composer)
        was_disabled = composer.disabled
        closed = self._closed_reason(state)
        composer.disabled = closed is not None
        composer.placeholder = closed or COMPOSER_PLACEHOLDER
        if was_disabled and not composer.disabled and self.focused is None:
            composer.focus()
        if self.peer is None and self.room is not None and self.my_state != "joined":
            self._group_bar()
            return
        self.query_one("#accept", Button).label = "Accept"
        self.query_one("#block", Button).label = "Block"
        if state not in ("request", "blocked") or self.peer is None:
            bar.display = False
            return
        name = literal(self.context.name(self.peer), "bold", multiline=False)
        if state == "request":
            text = Text.assemble(
                name,
                " wants to chat. ",
                ("ctrl+a", "bold"),
                " accept · ",
                ("ctrl+b", "bold"),
                " block",
            )
        else:
            text = Text.assemble("You blocked ", name, ". Unblock to chat again.")
        self.query_one("#request-text", Static).update(text)
        self.query_one("#accept").display = state == "request"
        self.query_one("#block").display = state == "request"
        self.query_one("#unblock").display = state == "blocked"
        bar.display = True

    def _closed_reason(self, peer_state: str) -> str | None:
        """Why nobody can write here now (shown in the disabled composer), or None."""
        if peer_state == "blocked":
            return "You blocked this person: unblock them to write"
        if self.peer is not None or self.room is None:
            return None
        return {
            "invited": "Join the group to write (ctrl+a)",
            "left": "You left this group: someone must invite you back",
            "removed": "You were removed from this group",
        }.get(self.my_state)

    def _group_bar(self) -> None:
        """An invitation to the open group (join / decline), or why you cannot write."""
        bar = self.query_one("#request-bar")
        name = literal(self.room_name or "this group", "bold", multiline=False)
        invited = self.my_state == "invited"
        if invited:
            text = Text.assemble(
                "You are invited to ",
                name,
                ". ",
                ("ctrl+a", "bold"),
                " join · ",
                ("ctrl+b", "bold"),
                " decline",
            )
        elif self.my_state == "removed":
            text = Text.assemble("You were removed from ", name, ".")
        else:
            text = Text.assemble("You left ", name, ".")
        self.query_one("#request-text", Static).update(text)
        self.query_one("#accept", Button).label = "Join"
        self.query_one("#block", Button).label = "Decline"
        self.query_one("#accept").display = invited
        self.query_one("#block").display = invited
        self.query_one("#unblock").display = False
        bar.display = True

    def _update_members(self) -> None:
        panel = self.query_one(MembersPanel)
        wanted = self.members_shown
        if wanted is None:
            wanted = self.app.size.width >= WIDE
        shown = self.peer is None and self.room is not None and wanted
        panel.display = shown
        if shown:
            panel.show_members(self.members, self.context.me)

    def action_toggle_members(self) -> None:
        """Show or hide the members panel of a group."""
        self.members_shown = not self.query_one(MembersPanel).display
        self._update_members()
        self.refresh_bindings()

    def action_join(self) -> None:
        """Join the open group (we were invited)."""
        if self.peer is None and self.room is not None and self.my_state == "invited":
            self.answer_invitation(self.room, True)

    def action_decline(self) -> None:
        """Decline the invitation to the open group."""
        if self.peer is None and self.room is not None and self.my_state == "invited":
            self.answer_invitation(self.room, False)

    @on(Button.Pressed, "#accept")
    def action_accept(self) -> None:
        """Accept the open conversation's contact request (or group invitation)."""
        if self.peer is None and self.room is not None and self.my_state == "invited":
            self.answer_invitation(self.room, True)
            return
        if self.peer is not None:
            self.run_node(self._accept(self.peer), "Contact accepted")

    async def _accept(self, peer: bytes) -> None:
        await self.context.node.accept(peer)
        await self.refresh_peer()
        await self.reload_sidebar()

    @on(Button.Pressed, "#block")
    def action_block(self) -> None:
        """Block the open conversation's peer (or decline the group invitation)."""
        if self.peer is None and self.room is not None and self.my_state == "invited":
            self.answer_invitation(self.room, False)
            return
        if self.peer is not None:
            self.run_node(self._block(self.peer), "Blocked")

    async def _block(self, peer: bytes) -> None:
        await self.context.node.block(peer)
        await self.refresh_peer()
        await self.reload_sidebar()

    @on(Button.Pressed, "#unblock")
    def action_unblock(self) -> None:
        """Unblock the open conversation's peer."""
        if self.peer is not None:
            self.unblock(self.peer)

    def unblock(self, peer: bytes) -> None:
        """Unblock ``peer`` (they become a contact again)."""
        self.run_node(self._accept(peer), "Unblocked")

    def _set_typing(self, room: bytes, peer: bytes, typing: bool) -> None:
        self._clear_typing(room, peer, redraw=False)
        if typing:
            self.typing_peers[(room, peer)] = self.set_timer(
                TYPING_SHOWN, lambda: self._clear_typing(room, peer)
            )
        self._typing_changed(room)

    def _clear_typing(self, room: bytes, peer: bytes, *, redraw: bool = True) -> None:
        timer = self.typing_peers.pop((room, peer), None)
        if timer is not None:
            timer.stop()
            if redraw:
                self._typing_changed(room)

    def _typing_changed(self, room: bytes) -> None:
        if room == self.room:
            self.redraw_header()
        self.schedule_sidebar()

    def _stop_typing(self) -> None:
        if self._typing_idle is not None:
            self._typing_idle.stop()
            self._typing_idle = None
        if self._typing_sent_at and self.room is not None:
            self.run_node(self.context.node.set_typing_room(self.room, False))
        self._typing_sent_at = 0.0

    def answer_invitation(self, room: bytes, join: bool) -> None:
        """Join or decline a group we were invited to."""
        self.invitations.pop(room, None)
        groups = self.context.node.groups
        if join:
            self.run_node(groups.join(room), "Joined")
        else:
            self.run_node(groups.decline(room), "Declined")
        self.schedule_sidebar()
