"""The chat screen's conversation: composing, read marks, and what a message's keys do.

Replies, reactions, file offers (picker, pasted paths, downloads), the "new messages
below" bar and read receipts for what was on screen. Node calls run in workers so a
slow store never freezes typing; their failures become notifications.
"""

from __future__ import annotations

import time
from pathlib import Path

from rich.text import Text
from textual import on
from textual.events import Click
from textual.widgets import OptionList, Static

from p2pchat.node import (
    Message,
)
from p2pchat.ui.emoji import QUICK_REACTIONS
from p2pchat.ui.format import size
from p2pchat.ui.media import ACTIVE_STATES
from p2pchat.ui.screens.chat_base import READ_MIN_GAP, TYPING_IDLE, TYPING_REFRESH, ChatBase
from p2pchat.ui.screens.confirm import ConfirmScreen
from p2pchat.ui.screens.receipts import ReceiptsScreen
from p2pchat.ui.text import links_in, literal, one_line
from p2pchat.ui.widgets.composer import Composer
from p2pchat.ui.widgets.message_data import receipt_summary
from p2pchat.ui.widgets.message_list import MessageList
from p2pchat.ui.widgets.message_rows import MessageRow


class ChatMessages(ChatBase):
    """Composing and acting on messages (see the module docstring)."""

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
        if self.editing is not None:
            editing, self.editing = self.editing, None
            self.cancel_reply()
            self._stop_typing()
            self.run_node(self.context.node.edit_message(editing.id, event.text), "Edited")
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

    @on(Composer.Escape)
    def cancel_reply(self) -> None:
        """Forget the message being replied to (or edited: its text leaves the composer)."""
        if self.editing is not None:
            self.editing = None
            self.query_one(Composer).clear()
        self.reply_to = None
        self.query_one("#reply-bar").display = False

    def start_edit(self, message: Message) -> None:
        """Put our text message into the composer; enter saves it as an edit."""
        if message.author != self.context.me or message.kind != "text":
            self.notify("You can edit only your own text messages", timeout=3)
            return
        self.reply_to = None
        self.editing = message
        bar = self.query_one("#reply-bar", Static)
        bar.update(
            Text.assemble(
                ("✎ Editing your message", "bold"),
                ("   enter saves · escape cancels", "grey70"),
            )
        )
        bar.display = True
        composer = self.query_one(Composer)
        composer.load_text(self.context.text(message))
        composer.move_cursor(composer.document.end)
        composer.focus()

    def confirm_delete(self, message: Message) -> None:
        """Ask, then delete ``message`` for everyone (the node says if we may not)."""

        def answered(yes: bool | None) -> None:
            if yes:
                self.run_node(self.context.node.delete_message(message.id), "Deleted")

        mine = message.author == self.context.me
        question = Text(
            ("Delete your message" if mine else "Delete this member's message")
            + " for everyone in this chat? Their apps remove its text when the delete "
            "reaches them; a modified app could keep a copy."
        )
        self.app.push_screen(ConfirmScreen("Delete message", question, "Delete"), answered)

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

        from p2pchat.ui.screens.emoji_picker import EmojiPicker  # not needed at start-up

        self.app.push_screen(EmojiPicker(store=self.context.node), insert)

    def action_sticker(self) -> None:
        """Open the sticker picker and send the choice to the open chat."""
        room = self.room

        def send(label: str | None) -> None:
            if label and room is not None:
                self.run_node(self.context.node.stickers.send_to_room(room, label))
            self.query_one(Composer).focus()

        from p2pchat.ui.screens.sticker_picker import StickerPicker  # not needed at start-up

        if room is not None:
            self.app.push_screen(StickerPicker(self.context.node.stickers), send)

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

            from p2pchat.ui.screens.emoji_picker import EmojiPicker

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
        elif event.action == "edit":
            self.start_edit(message)
        elif event.action == "delete":
            self.confirm_delete(message)
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
