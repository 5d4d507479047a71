"""The chat screen: sidebar, conversation header, messages, composer.

Built in three layers, one module each: ``chat_base.ChatBase`` (state, frame, sidebar,
bars), ``chat_messages.ChatMessages`` (composer, message actions) and ``ChatScreen``
here (keys, node events, warnings). It turns node events (forwarded by the app) into
updates of what is on screen, and the person's actions into node calls. Node calls run
in workers so a slow store never freezes typing; their failures become notifications,
never tracebacks.
"""

from __future__ import annotations

import time

from rich.text import Text
from textual.binding import Binding
from textual.css.query import NoMatches
from textual.widgets import Static

from p2pchat.node import (
    ContactRequest,
    Event,
    Message,
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
from p2pchat.ui.screens.chat_base import HELD_NOTICE_EVERY, READ_MIN_GAP
from p2pchat.ui.screens.chat_messages import ChatMessages
from p2pchat.ui.screens.confirm import ConfirmScreen
from p2pchat.ui.text import literal, one_line
from p2pchat.ui.widgets.message_list import MessageList


class ChatScreen(ChatMessages):
    """The main screen of the app."""

    # The footer fits in 80 columns: ctrl+b (named by the request bar) and keys of a
    # selected message are left out of it; f1 lists every one.
    BINDINGS = [  # noqa: RUF012
        Binding("ctrl+e", "emoji", "Emoji", priority=True),
        Binding("ctrl+t", "sticker", "Sticker", priority=True, show=False),
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
        if action in ("reply", "emoji", "sticker"):
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
        elif isinstance(event, MessagesChanged):
            if event.room == self.room:
                await messages.change(event.message_ids)
            self.schedule_sidebar()
        elif isinstance(event, StickerReady):
            await messages.sticker_ready(event.sha256)
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
        elif isinstance(event, TorStatus):
            self.update_topbar()

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
        if event.peer_id == self.context.me:
            self.update_topbar()  # renamed from the CLI, say
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
        entry = next((e for e in self.entries() if e.room_id == msg.room), None)
        if entry is None:
            # Not in the sidebar: archived until this very message (or new). Whether it
            # is muted is then asked of the node, else a muted, archived chat would
            # notify the message that brings it back.
            self.run_worker(self._notify_unless_muted(msg), exit_on_error=False)
            return
        if entry.muted:
            return  # a muted chat counts unread but never notifies
        self._notify_now(msg, entry.name if entry.group else "")

    async def _notify_unless_muted(self, msg: Message) -> None:
        room = next(
            (r for r in await self.context.node.list_rooms() if r.room_id == msg.room), None
        )
        if room is None or not room.muted:
            self._notify_now(msg, room.name if room and room.kind == "group" else "")

    def _notify_now(self, msg: Message, group: str) -> None:
        notifier = getattr(self.app, "notify_message", None)
        if callable(notifier):
            who = self.context.name(msg.author)
            notifier(f"{who} in {group}" if group else who, self.context.text(msg))
