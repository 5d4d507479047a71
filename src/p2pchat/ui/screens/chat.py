"""The chat screen: sidebar, conversation header, messages, composer.

It turns node events (forwarded by the app) into updates of what is on screen, and the
person's actions into node calls. Node calls run in workers so a slow store never
freezes typing; their failures become notifications, never tracebacks.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.css.query import NoMatches
from textual.events import Click
from textual.screen import Screen
from textual.timer import Timer
from textual.widgets import Button, Footer, OptionList, Static

from p2pchat.node import (
    ContactRequest,
    Event,
    MemberInfo,
    Message,
    MessageAdded,
    MessagesWithdrawn,
    NodeError,
    NodeStatus,
    PeerInfo,
    PeerOffline,
    PeerOnline,
    PeerUpdated,
    ReactionChanged,
    ReceiptChanged,
    RequestsHeldBack,
    RoomChanged,
    RoomInvitation,
    SecurityWarning,
    StoreError,
    TransferProgress,
    TypingChanged,
)
from p2pchat.ui.context import ChatContext, ctx
from p2pchat.ui.emoji import QUICK_REACTIONS
from p2pchat.ui.format import size
from p2pchat.ui.media import ACTIVE_STATES
from p2pchat.ui.screens.confirm import ConfirmScreen
from p2pchat.ui.screens.emoji_picker import EmojiPicker
from p2pchat.ui.screens.receipts import ReceiptsScreen
from p2pchat.ui.text import links_in, literal, one_line
from p2pchat.ui.widgets.composer import COMPOSER_PLACEHOLDER, Composer
from p2pchat.ui.widgets.header import ConversationHeader
from p2pchat.ui.widgets.members import MembersPanel
from p2pchat.ui.widgets.message_data import receipt_summary
from p2pchat.ui.widgets.message_list import MessageList
from p2pchat.ui.widgets.message_rows import MessageRow
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


class ChatScreen(Screen[None]):
    """The main screen of the app."""

    # The footer fits in 80 columns: ctrl+b (named by the request bar) and keys of a
    # selected message are left out of it; f1 lists every one.
    BINDINGS = [  # noqa: RUF012
        Binding("ctrl+e", "emoji", "Emoji", priority=True),
        Binding("ctrl+r", "reply", "Reply", show=False, tooltip="Reply to the selected message"),
        Binding("f2", "app.settings", "Settings"),
        Binding("f3", "verify", "Verify"),
        Binding("f4", "dismiss_warning", "Dismiss", tooltip="Dismiss the security warning"),
        Binding(
            "ctrl+a",
            "accept",
            "Accept",
            priority=True,
            tooltip="Accept a contact request",
        ),
        Binding("ctrl+b", "block", "Block", priority=True, show=False, tooltip="Block the person"),
        Binding(
            "ctrl+a",
            "join",
            "Join",
            priority=True,
            tooltip="Join the group you are invited to",
        ),
        Binding(
            "ctrl+b",
            "decline",
            "Decline",
            priority=True,
            show=False,
            tooltip="Decline the invitation",
        ),
        Binding("alt+up", "cycle_chat(-1)", "Previous chat", show=False),
        Binding("alt+down", "cycle_chat(1)", "Next chat", show=False),
        Binding("ctrl+n", "focus_sidebar", "Chats", show=False, tooltip="Go to the chat list"),
        Binding(
            "ctrl+end,ctrl+g",
            "jump_to_end",
            "Newest",
            show=False,
            tooltip="Jump to the newest message",
        ),
        Binding("f5", "toggle_members", "Members"),
        Binding("ctrl+o", "attach", "Attach"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.room: bytes | None = None
        self.peer: bytes | None = None
        self.peer_info: PeerInfo | None = None
        self.reply_to: Message | None = None
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

    def _requests_held_back(self, event: RequestsHeldBack) -> None:
        """Too many contact requests at once: say so (at most every few seconds)."""
        self.schedule_sidebar()
        now = time.monotonic()
        if not (event.requests or event.messages) or now - self._held_noticed < HELD_NOTICE_EVERY:
            return
        self._held_noticed = now
        self.notify(
            f"Too many contact requests at once: {event.requests} request(s) and "
            f"{event.messages} message(s) were held back. ctrl+p → Clear all contact "
            "requests removes the rest.",
            title="Contact requests held back",
            severity="warning",
            markup=False,
            timeout=10,
        )

    def clear_requests(self) -> None:
        """Ask, then remove every open contact request (their senders are not blocked)."""

        def done(clear: bool | None) -> None:
            if clear:
                self.run_node(self._clear_requests(), "Contact requests cleared")

        question = Text(
            "Remove every open contact request and what its sender wrote? "
            "They are not blocked: anyone who writes again appears again."
        )
        self.app.push_screen(ConfirmScreen("Clear contact requests", question, "Clear"), done)

    async def _clear_requests(self) -> None:
        await self.context.node.clear_requests()
        await self.refresh_peer()
        await self.reload_sidebar()

    def show_warning(self, text: str) -> None:
        """Put a security warning in the banner (stays until dismissed with f4)."""
        self.warnings.append(text)
        self._render_warnings()
        self.notify(text, title="Security warning", severity="error", timeout=20, markup=False)

    def _render_warnings(self) -> None:
        banner = self.query_one("#security", Static)
        shown = Text("⚠ SECURITY WARNING  ", "bold")
        shown.append_text(literal(self.warnings[-1], multiline=False))
        if len(self.warnings) > 1:
            shown.append(f"  (+{len(self.warnings) - 1} more)")
        shown.append("   f4 dismiss", "bold")
        banner.update(shown)
        banner.display = True
        self.refresh_bindings()

    def action_dismiss_warning(self) -> None:
        """Dismiss the newest security warning (older ones show next)."""
        if self.warnings:
            self.warnings.pop()
        if self.warnings:
            self._render_warnings()
        else:
            self.query_one("#security").display = False
        self.refresh_bindings()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """Hide bindings that make no sense now (footer shows only usable keys)."""
        if action == "dismiss_warning":
            return bool(self.warnings)
        if action == "verify":
            return self.peer is not None
        if action in ("reply", "emoji"):
            return self.room is not None
        if action in ("join", "decline"):
            return self.peer is None and self.room is not None and self.my_state == "invited"
        if action in ("accept", "block"):
            return self.peer_info is not None and self.peer_info.state == "request"
        if action == "toggle_members":
            return self.room is not None and self.peer is None
        if action == "attach":
            return self.room is not None and self.my_state in ("", "joined")
        return True

    # ================================================================ node events

    async def handle(self, event: Event) -> None:
        """Bring the screen up to date with one node event."""
        try:
            messages = self.query_one(MessageList)
        except NoMatches:
            return  # the app is closing
        if isinstance(event, MessageAdded):
            await self._message_added(messages, event)
        elif isinstance(event, ReceiptChanged):
            if event.room == self.room:
                messages.set_status(event.message_ids, event.status)
                if messages.group:
                    await messages.refresh_receipts(event.message_ids)
        elif isinstance(event, TransferProgress):
            if event.room == self.room:
                await messages.update_transfer(event)
            if event.incoming and event.state in ("done", "failed"):
                what = "received" if event.state == "done" else "could not be received"
                self.notify(f"{one_line(event.name, 60)} {what}", title="File", markup=False)
        elif isinstance(event, ReactionChanged):
            if event.room == self.room:
                await messages.refresh_reactions(event.message_id)
        elif isinstance(event, TypingChanged):
            self._set_typing(event.room, event.peer_id, event.typing)
        elif isinstance(event, PeerOnline | PeerOffline | PeerUpdated | ContactRequest):
            await self._peer_event(event)
        elif isinstance(event, RoomChanged | MessagesWithdrawn | RoomInvitation):
            await self._room_event(event, messages)
        elif isinstance(event, RequestsHeldBack):
            self._requests_held_back(event)
        elif isinstance(event, SecurityWarning):
            self.show_warning(event.text)
        elif isinstance(event, NodeStatus):
            self.status = event
            self.update_topbar()
            self._update_empty()

    async def _room_event(
        self, event: RoomChanged | MessagesWithdrawn | RoomInvitation, messages: MessageList
    ) -> None:
        """A room's members or name changed, messages were withdrawn, or an invitation."""
        if isinstance(event, RoomChanged):
            if event.room == self.room:
                await self.refresh_peer()
            elif event.room in self.invitations:
                await self._recheck_invitation(event.room)
        elif isinstance(event, MessagesWithdrawn):
            if event.room == self.room:
                await messages.withdraw(event.message_ids)
        else:
            self.invitations[event.room] = event
            who = one_line(self.context.name(event.inviter), 40)
            self.notify(
                f"{who} invites you to {one_line(event.name, 40)}. "
                "Open it in the list to join or decline (or ctrl+p → Join).",
                title="Group invitation",
                markup=False,
                timeout=15,
            )
        self.schedule_sidebar()

    async def _recheck_invitation(self, room: bytes) -> None:
        """Forget an invitation answered elsewhere (the CLI on this node, another client)."""
        me = self.context.me
        members = await self.context.node.groups.members(room)
        if next((m.state for m in members if m.peer_id == me), "invited") != "invited":
            self.invitations.pop(room, None)

    async def _message_added(self, messages: MessageList, event: MessageAdded) -> None:
        """A new message: into the open chat (queued, see MessageList), notice, sidebar."""
        msg = event.message
        self._busy_until = time.monotonic() + READ_MIN_GAP
        if msg.room == self.room:
            await messages.add_message(msg)
        if event.incoming:
            self._clear_typing(msg.room, msg.author)
            if not self._shown_now(msg):  # (a callback per message would crowd keys out)
                self.app.call_later(self._notify_message, msg)
        self.schedule_sidebar(busy=True)

    async def _peer_event(
        self, event: PeerOnline | PeerOffline | PeerUpdated | ContactRequest
    ) -> None:
        """Presence, names and requests: header, members panel, sidebar."""
        if event.peer_id == self.peer:
            await self.refresh_peer()
        if isinstance(event, PeerOffline):
            for room, peer in list(self.typing_peers):
                if peer == event.peer_id:
                    self._clear_typing(room, peer)
        if self.peer is None and any(m.peer_id == event.peer_id for m in self.members):
            await self.refresh_peer()  # a member came or went: the panel shows it
        if isinstance(event, ContactRequest):
            self.notify(
                Text.assemble(literal(event.name, multiline=False), " wants to chat").plain,
                title="Contact request",
                markup=False,
            )
        self.schedule_sidebar()

    def _shown_now(self, msg: Message) -> bool:
        """Whether ``msg`` is in the chat the person is looking at (no notice for it)."""
        return msg.room == self.room and self.app.app_focus and self.screen.is_current

    def _notify_message(self, msg: Message) -> None:
        """A Textual notification (and bell, desktop) for messages not on screen now."""
        if msg.kind == "system":
            return  # room changes show in the room; invitations have their own notice
        if self._shown_now(msg):
            return
        notifier = getattr(self.app, "notify_message", None)
        if callable(notifier):
            who = self.context.name(msg.author)
            group = next((e.name for e in self.entries() if e.room_id == msg.room and e.group), "")
            notifier(f"{who} in {group}" if group else who, self.context.text(msg))

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

    # ================================================================ composing

    @on(Composer.Submitted)
    def _submit(self, event: Composer.Submitted) -> None:
        if self.room is None:
            return
        command, _, argument = event.text.strip().partition(" ")
        if command in ("/send", "/file") and "\n" not in event.text.strip():
            self._stop_typing()
            if argument.strip():
                self.send_file(argument.strip())
            else:
                self.action_attach()
            return
        reply = self.reply_to.id if self.reply_to else None
        self.cancel_reply()
        self._stop_typing()
        self.run_node(self._send(self.room, event.text, reply))

    async def _send(self, room: bytes, text: str, reply: bytes | None) -> None:
        node = self.context.node
        info = self.peer_info
        if self.peer is not None and info is not None and info.state == "request":
            # Writing back accepts; accept first so their held messages get receipts.
            await self._accept(self.peer)
        await node.send_message(room, text, reply)

    @on(Composer.Edited)
    def _edited(self, event: Composer.Edited) -> None:
        if self.room is None:
            return
        if event.empty:
            self._stop_typing()
            return
        now = time.monotonic()
        if now - self._typing_sent_at > TYPING_REFRESH:
            self._typing_sent_at = now
            self.run_node(self.context.node.set_typing_room(self.room, True))
        if self._typing_idle is not None:
            self._typing_idle.stop()
        self._typing_idle = self.set_timer(TYPING_IDLE, self._stop_typing)

    def _stop_typing(self) -> None:
        if self._typing_idle is not None:
            self._typing_idle.stop()
            self._typing_idle = None
        if self._typing_sent_at and self.room is not None:
            self.run_node(self.context.node.set_typing_room(self.room, False))
        self._typing_sent_at = 0.0

    @on(Composer.Escape)
    def cancel_reply(self) -> None:
        """Forget the message being replied to."""
        self.reply_to = None
        self.query_one("#reply-bar").display = False

    @on(Composer.Up)
    def _composer_up(self) -> None:
        listing = self.query_one(MessageList)
        last = listing.last_item()
        if last is not None:
            listing.select(last)

    @on(OptionList.OptionSelected, "#completions")
    def _completion_clicked(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        self.query_one(Composer).accept_completion(event.option.id)

    @on(MessageList.Below)
    def _below(self, event: MessageList.Below) -> None:
        bar = self.query_one("#below-bar", Static)
        if event.count:
            plural = "s" if event.count > 1 else ""
            bar.update(
                Text.assemble(
                    (f"↓ {event.count} new message{plural} below", "bold"),
                    ("   ctrl+g to jump there", "grey70"),
                )
            )
        bar.display = event.count > 0

    def action_jump_to_end(self) -> None:
        """Show the newest message (and keep following new ones)."""
        self.query_one(MessageList).jump_to_end()

    def on_resize(self) -> None:
        """The members panel follows the width until f5 decides."""
        if self.members_shown is None and self.room is not None:
            self._update_members()

    def on_click(self, event: Click) -> None:
        """A click on the "new messages below" bar jumps there."""
        if event.widget is not None and event.widget.id == "below-bar":
            self.action_jump_to_end()

    @on(MessageList.Seen)
    def _seen(self, event: MessageList.Seen) -> None:
        self._reads_due.setdefault(event.room, []).extend(event.ids)
        if self._reads_timer is not None:
            return  # they go with the marks already waiting
        if self._busy_until <= time.monotonic():
            self._send_reads()  # not in a burst: mark at once, as always
            return
        wait = self._reads_at + READ_MIN_GAP - time.monotonic()
        if wait > 0:
            self._reads_timer = self.set_timer(wait, self._send_reads)
        else:
            self._send_reads()

    def _send_reads(self) -> None:
        self._reads_timer = None
        self._reads_at = time.monotonic()
        due, self._reads_due = self._reads_due, {}
        for room, ids in due.items():
            self.run_node(self._mark_read(room, ids))

    async def _mark_read(self, room: bytes, ids: list[bytes]) -> None:
        await self.context.node.mark_read(room, ids)
        self.schedule_sidebar()

    # ================================================================ message actions

    def selected_item(self) -> MessageRow | None:
        """The message the person selected, or else the newest one."""
        listing = self.query_one(MessageList)
        if listing.has_focus and listing.selected is not None:
            return listing.selected
        return listing.last_item()

    def action_reply(self) -> None:
        """Reply to the selected message (or the last one)."""
        item = self.selected_item()
        if item is not None:
            self.start_reply(item.message)

    def start_reply(self, message: Message) -> None:
        """Show the reply bar and focus the composer."""
        self.reply_to = message
        bar = self.query_one("#reply-bar", Static)
        text = Text("↩ Replying to ", "grey70")
        text.append_text(literal(self.context.name(message.author), "bold", multiline=False))
        text.append(": ")
        text.append_text(literal(one_line(self.context.text(message), 60), "italic"))
        text.append("   escape cancels", "grey50")
        bar.update(text)
        bar.display = True
        self.query_one(Composer).focus()

    def action_emoji(self) -> None:
        """Open the emoji picker and insert the choice into the composer."""

        def insert(emoji: str | None) -> None:
            composer = self.query_one(Composer)
            if emoji:
                composer.insert(emoji)
            composer.focus()

        self.app.push_screen(EmojiPicker(store=self.context.node), insert)

    def react_to(self, message: Message, emoji: str) -> None:
        """Toggle our reaction ``emoji`` on ``message``."""
        item = self.query_one(MessageList).items.get(message.id)
        mine = item is not None and any(
            r.emoji == emoji and r.author == self.context.me for r in item.view.reactions
        )
        self.run_node(self.context.node.react(message.id, emoji, not mine))

    @on(MessageList.Action)
    def _message_action(self, event: MessageList.Action) -> None:
        event.stop()
        message = event.item.message
        if event.action == "reply":
            self.start_reply(message)
        elif event.action == "quick_react":
            self.react_to(message, QUICK_REACTIONS[event.arg])
        elif event.action == "react":

            def chosen(emoji: str | None) -> None:
                if emoji:
                    self.react_to(message, emoji)
                self.query_one(MessageList).select(event.item)

            picker = EmojiPicker("React", quick=True, store=self.context.node)
            self.app.push_screen(picker, chosen)
        elif event.action == "open_link" and message.kind == "file":
            self.run_node(self._open_file(message.id, reveal=False))
        elif event.action == "reveal" and message.kind == "file":
            self.run_node(self._open_file(message.id, reveal=True))
        elif event.action == "receipts":
            if self.peer is None and message.author == self.context.me:
                self.run_node(self._show_receipts(message))
        elif event.action == "open_link":
            links = links_in(self.context.text(message))
            if links:
                self.app.open_url(links[0])
            else:
                self.notify("No link in this message", timeout=2)
        elif event.action in ("download", "decline", "cancel_transfer"):
            self._file_action(event.item, event.action)
        elif event.action in ("up", "down"):
            self._move_selection(-1 if event.action == "up" else 1)
        elif event.action == "back":
            self.query_one(Composer).focus()

    def _file_action(self, item: MessageRow, action: str) -> None:
        """a / d / x on a file card: only what makes sense in its state, else say why."""
        card = item.view.file
        if card is None:
            return
        transfers = self.context.node.transfers
        mid = item.message.id
        state, incoming = card.state, card.incoming
        if action == "download":
            if incoming and state in ("offered", "failed", "cancelled"):
                self.run_node(transfers.accept(mid), "Downloading…")
            elif state == "done":
                self.notify("Already downloaded: o opens it, f shows the folder", timeout=3)
            elif incoming and state in ACTIVE_STATES:
                self.notify("Already downloading", timeout=2)
        elif action == "decline":
            if incoming and state == "offered":
                self.run_node(transfers.decline(mid), "Declined")
        elif state in ACTIVE_STATES or (not incoming and state == "offered"):
            self.run_node(transfers.cancel(mid), "Cancelled")

    def _move_selection(self, step: int) -> None:
        if not self.query_one(MessageList).move_selection(step) and step > 0:
            self.query_one(Composer).focus()

    def answer_invitation(self, room: bytes, join: bool) -> None:
        """Join or decline a group we were invited to."""
        self.invitations.pop(room, None)
        groups = self.context.node.groups
        if join:
            self.run_node(groups.join(room), "Joined")
        else:
            self.run_node(groups.decline(room), "Declined")
        self.schedule_sidebar()

    def send_file(self, path_text: str | Path) -> None:
        """Offer the file at ``path_text`` in the open conversation."""
        if self.room is None:
            return
        if isinstance(path_text, str):
            text = path_text.strip()
            if len(text) > 1 and text[0] == text[-1] and text[0] in "'\"":
                text = text[1:-1]
            path = Path(text).expanduser()
        else:
            path = path_text
        if not path.is_file():
            self.notify(
                f"No file at {one_line(str(path), 100)}",
                title="Not sent",
                severity="error",
                markup=False,
            )
            return
        self.run_node(self.context.node.transfers.send_file_to_room(self.room, path))

    def action_attach(self) -> None:
        """Choose a file in a tree and offer it in the open conversation."""
        if self.room is None:
            return
        room = self.room

        def chosen(path: Path | None) -> None:
            if path is not None and self.room == room:
                self.send_file(path)
            self.query_one(Composer).focus()

        # Imported here: rarely used, and start-up stays fast.
        from p2pchat.ui.screens.file_picker import FilePickerScreen

        start = self.picker_start or (Path.home() if Path.home().is_dir() else Path.cwd())
        to = self.room_name if self.peer is None else self.context.name(self.peer)
        self.app.push_screen(FilePickerScreen(start, one_line(to, 40)), chosen)

    @on(Composer.PastedFile)
    def _pasted_file(self, event: Composer.PastedFile) -> None:
        if self.room is None:
            return
        path, pasted = event.path, event.text
        try:
            length = size(path.stat().st_size)
        except OSError:
            length = "?"
        question = Text("Send ")
        question.append_text(literal(path.name, "bold", multiline=False))
        question.append(f" ({length}) in this chat?\n")
        question.append_text(literal(str(path.parent), "grey62", multiline=False))

        def answer(send: bool | None) -> None:
            composer = self.query_one(Composer)
            if send:
                self.send_file(path)
            elif send is False:  # "Paste as text"; escape cancels the paste
                composer.insert(pasted)
            composer.focus()

        screen = ConfirmScreen("Send a file?", question, "Send", "Paste as text")
        self.app.push_screen(screen, answer)

    async def _open_file(self, message_id: bytes, *, reveal: bool) -> None:
        path = await self.context.node.transfers.open_path(message_id)
        if path is None:
            self.notify("The file is not here yet (a downloads it)", timeout=3)
            return
        target = path.parent if reveal else path
        opener = getattr(self.app, "opener", None)
        if opener is not None and opener.open(target):
            what = "folder" if reveal else "file"
            shown = one_line(str(target), 80)
            self.notify(f"Opening the {what}: {shown}", markup=False, timeout=3)
            return
        self.app.copy_to_clipboard(str(target))
        self.notify(
            f"{one_line(str(target), 200)}\n(nothing here opens files; the path was copied)",
            title="Where it is",
            markup=False,
            timeout=10,
        )

    async def _show_receipts(self, message: Message) -> None:
        got = await self.context.node.groups.receipts(message.id)
        rows = [(self.context.name(peer), status) for peer, status in got]
        self.app.push_screen(ReceiptsScreen(receipt_summary(got), rows))

    def action_verify(self) -> None:
        """Open the verification screen for the open conversation's peer."""
        verify = getattr(self.app, "action_verify_peer", None)
        if self.peer is not None and callable(verify):
            verify(self.peer)
