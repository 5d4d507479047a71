"""The messages of the open room: pages from the store, live messages, read marks.

Drawn by ``RowView`` (Textual's line API: only the lines on screen are drawn, nothing
is mounted per message), so what one arriving, sent or updated message costs does not
depend on how many the room holds or how many arrived since it was opened: it is laid
out once, appended, and its own lines repainted.

Opening a room loads only its latest page; scrolling to the top fetches the page before
it and keeps the view where it was. New messages stick to the bottom while the person is
at the bottom and leave them alone when they scrolled up. While following the end only
the newest ``MAX_KEPT`` messages are kept (older ones page back in from the store, like
any older page), so memory and a re-layout on resize stay bounded too. Read receipts go
only for incoming messages that are actually on screen.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from dataclasses import replace

from textual import work
from textual.message import Message as TextualMessage

from p2pchat.node import Message, MessageStatus, ReactionInfo, TransferProgress
from p2pchat.node.sticker_body import KIND_STICKER, StickerError, decode_sticker
from p2pchat.timefmt import local_day
from p2pchat.ui.context import ChatContext, ctx
from p2pchat.ui.format import GROUP_GAP_MS
from p2pchat.ui.media import FileCard, load_sticker
from p2pchat.ui.widgets.message_data import files_for, quotes_for, receipts_for
from p2pchat.ui.widgets.message_item import ItemView
from p2pchat.ui.widgets.message_rows import (
    DayRow,
    MarkerRow,
    MessageRow,
    Row,
)
from p2pchat.ui.widgets.row_view import RowView

PAGE = 60
# Scrolling this close to the top fetches the previous page.
NEAR_TOP = 2
# Messages kept while the person follows the end; older ones page back in on scroll.
# Dropped a page at a time (past MAX_KEPT + PAGE), so placing the kept rows again is
# paid once per page of new messages, not once per message.
MAX_KEPT = 4 * PAGE
# Following the end, a flush of more messages than the view has lines starts afresh
# from its newest ones (each takes a line at least, so the rest could never be on
# screen; they are stored and page in on scroll). This many before the first layout.
FLUSH_MOST = PAGE
# At most this many live messages are laid out in one turn of the app's loop; more wait
# for the next turn, so a key pressed meanwhile is handled in between (a flush of 60
# took 10-16 ms, in front of the key).
SLICE = 24
# Live messages are shown at most this often (fewer repaints leave the frames in
# between to keys and scrolling). 50 ms is below what a person notices in a chat.
FRAME = 0.05


def can_group(previous: Message | None, message: Message) -> bool:
    """Whether ``message`` continues ``previous``'s run (no name line of its own)."""
    return (
        previous is not None
        and previous.author == message.author
        and previous.kind != "system"
        and message.kind != "system"
        and message.reply_to is None
        and local_day(previous.sent_at) == local_day(message.sent_at)
        and 0 <= message.sent_at - previous.sent_at < GROUP_GAP_MS
    )


class MessageList(RowView):
    """Messages of the open room, oldest at the top; one of them can be selected."""

    class Seen(TextualMessage):
        """These incoming messages are on screen and were not read before."""

        def __init__(self, room: bytes, ids: list[bytes]) -> None:
            super().__init__()
            self.room = room
            self.ids = ids

    class Below(TextualMessage):
        """How many new messages wait below the view (0: none, the person is at the end)."""

        def __init__(self, count: int) -> None:
            super().__init__()
            self.count = count

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.room: bytes | None = None
        self.oldest: Message | None = None
        self.has_more = False
        self.fetching = False
        self.can_mark_read = True
        self.group = False  # a group room: own messages tell how many have read them
        self.loaded = False
        self._pending: list[Message] = []
        # Live messages waiting for the next flush (one layout for a whole burst).
        self._arrived: dict[bytes, Message] = {}
        self._reactions_due: set[bytes] = set()
        self._flush_due = False
        self._flushed_at = 0.0
        self.below = 0
        self._seen_sent: set[bytes] = set()

    @property
    def context(self) -> ChatContext:
        """The app's shared context."""
        return ctx(self)

    # ------------------------------------------------------------------ building

    def _rows(
        self,
        messages: Sequence[Message],
        quotes: dict[bytes, tuple[str, str]],
        reactions: dict[bytes, list[ReactionInfo]],
        previous: Message | None,
        unread_from: bytes | None,
        *,
        files: dict[bytes, FileCard] | None = None,
        receipts: dict[bytes, str] | None = None,
    ) -> list[Row]:
        """Rows for ``messages`` (day separators, grouping, unread marker)."""
        context = self.context
        today = local_day(context.now_ms())
        rows: list[Row] = []
        for m in messages:
            if m.id in self.items:
                continue  # already shown (it arrived while this page loaded)
            day = local_day(m.sent_at)
            new_day = previous is None or local_day(previous.sent_at) != day
            if new_day:
                rows.append(DayRow(day, today))
            marker = m.id == unread_from
            if marker:
                rows.append(MarkerRow())
            grouped = not new_day and not marker and can_group(previous, m)
            if m.kind == "system" and previous is not None and previous.kind == "system":
                grouped = not new_day and not marker  # room changes in a row: no gaps
            view = ItemView(
                message=m,
                author=context.name(m.author),
                author_style=context.colour(m.author),
                mine=m.author == context.me,
                show_header=not grouped,
                quote=quotes.get(m.reply_to) if m.reply_to else None,
                reactions=reactions.get(m.id, []),
                me=context.me,
                text=context.text(m),
                file=(files or {}).get(m.id),
                receipt=(receipts or {}).get(m.id, ""),
            )
            row = MessageRow(view)
            self.items[m.id] = row
            if m.kind == KIND_STICKER:
                self.call_later(self.load_sticker, row)
            rows.append(row)
            previous = m
        return rows

    async def _extras(
        self, messages: Sequence[Message]
    ) -> tuple[dict[bytes, tuple[str, str]], dict[bytes, FileCard], dict[bytes, str]]:
        """Quotes, file cards and (in a group) receipts for a batch of messages."""
        context = self.context

        def shown(mid: bytes) -> Message | None:
            row = self.items.get(mid)
            return row.message if row is not None else None

        quotes = await quotes_for(context, messages, shown)
        files = await files_for(context, messages)
        receipts = await receipts_for(context, messages) if self.group else {}
        return quotes, files, receipts

    # ------------------------------------------------------------------ opening

    async def show_room(self, room: bytes | None) -> None:
        """Show the latest page of ``room`` (or nothing), with the unread marker."""
        self.room = room
        self.loaded = False
        self._pending = []
        self._arrived = {}
        self._reactions_due = set()
        self._set_below(0)
        self._seen_sent = set()
        self.oldest = None
        self.has_more = False
        self._set_rows([])
        if room is None:
            return
        node = self.context.node
        messages = await node.history(room, PAGE)
        if self.room != room:  # another room was opened meanwhile
            return
        self.oldest = messages[0] if messages else None
        # The node drops reactions from a page, so a short page does not prove the start
        # of the room was reached: only an empty older page does.
        self.has_more = bool(messages)
        unread_from = next(
            (
                m.id
                for m in messages
                if m.author != self.context.me
                and m.kind != "system"
                and m.status < MessageStatus.READ
            ),
            None,
        )
        reactions = await node.reactions([m.id for m in messages])
        quotes, files, receipts = await self._extras(messages)
        if self.room != room:
            return
        rows = self._rows(
            messages, quotes, reactions, None, unread_from, files=files, receipts=receipts
        )
        self._set_rows(rows)
        marker = next((r for r in rows if isinstance(r, MarkerRow)), None)
        if self._laid_width > 0:
            # Laid out already (the list was on screen): place the view and send the
            # read marks now, not a frame later.
            if marker is not None:
                self._show_marker(marker)
            self.report_seen()
        if marker is not None:
            self.call_after_refresh(self._show_marker, marker)
        self.call_after_refresh(self.report_seen)
        self.call_after_refresh(self._fill_viewport)
        self.loaded = True
        # Messages that arrived while the page was loading go below it, once each.
        pending, self._pending = self._pending, []
        for message in pending:
            await self.add_message(message)

    def _set_rows(self, rows: list[Row]) -> None:
        self.rows = rows
        self.items = {r.message.id: r for r in rows if isinstance(r, MessageRow)}
        self.selected = None
        self._tops = []
        self.pictures.clear()
        self._relayout()
        self.anchor()

    def _fill_viewport(self) -> None:
        """A page shorter than the view cannot be scrolled up: fetch older ones now.

        Only once the rows are laid out: before the first resize the list has no
        height yet, so every page would look short and a second one would be fetched.
        """
        if self._may_page() and self.max_scroll_y == 0:
            self.load_older()

    def _show_marker(self, marker: Row) -> None:
        if marker.top < self.max_scroll_y:
            self.release_anchor()
            self.scroll_to(y=max(0, marker.top), animate=False, immediate=True)

    # ------------------------------------------------------------------ paging

    def _may_page(self) -> bool:
        """Whether a view at the top means the person reached it: the page is loaded and
        laid out on a list with a height. A hidden or not yet sized list has its scroll
        position clamped to 0, which says nothing about what anyone has seen."""
        laid_out = self.loaded and self._laid_width > 0 and self.size.height > 0
        return laid_out and self.has_more and not self.fetching

    def watch_scroll_y(self, old_value: float, new_value: float) -> None:
        """Fetch the previous page when the top comes into view; report what is seen."""
        super().watch_scroll_y(old_value, new_value)
        if new_value <= NEAR_TOP and self._may_page():
            self.load_older()
        if round(old_value) != round(new_value):
            self.report_seen()
            self.pictures.place()
        if self.below and new_value >= self.max_scroll_y:
            self._set_below(0)

    @work(exclusive=True, group="older", exit_on_error=False)
    async def load_older(self) -> None:
        """Prepend the page before the oldest message shown, keeping the view still."""
        room, oldest = self.room, self.oldest
        if room is None or oldest is None or self.fetching:
            return
        self.fetching = True
        try:
            node = self.context.node
            older = await node.older_messages(room, oldest, PAGE)
            if self.room != room:
                return
            if not older:
                self.has_more = False
                return
            reactions = await node.reactions([m.id for m in older])
            quotes, files, receipts = await self._extras(older)
            if self.room != room or self.oldest is not oldest:
                return
            rows = self._rows(older, quotes, reactions, None, None, files=files, receipts=receipts)
            kept = self.rows
            if kept and isinstance(kept[0], DayRow) and kept[0].day == local_day(older[-1].sent_at):
                kept = kept[1:]
            old_first = next((r for r in kept if isinstance(r, MessageRow)), None)
            if old_first is not None and can_group(older[-1], old_first.message):
                old_first.set_grouped()
            # Keep what was shown where it is: scroll down by exactly the added height.
            height_before = self.virtual_size.height
            y_before = self.scroll_y
            self.rows = rows + kept
            self.oldest = older[0]
            self._tops = []
            self._relayout()
            grown = self.virtual_size.height - height_before
            if not self.following:
                self.scroll_to(y=y_before + grown, animate=False, immediate=True)
            self.call_after_refresh(self._fill_viewport)
        finally:
            self.fetching = False

    # ------------------------------------------------------------------ live updates

    async def add_message(self, message: Message) -> None:
        """Append a new message of this room (ignored if already shown).

        Only queues it: the queue is laid out in one go at most once per ``FRAME``, so
        a burst of events costs one repaint (see ``_flush``).
        """
        if message.room != self.room or message.id in self.items:
            return
        if not self.loaded:
            self._pending.append(message)
            return
        self._arrived.setdefault(message.id, message)
        if not self._flush_due:
            self._flush_due = True
            wait = self._flushed_at + FRAME - time.monotonic()
            if wait > 0:
                self.set_timer(wait, self._flush)  # a burst: gather it for one frame
            else:
                self.call_later(self._flush)

    async def _flush(self) -> None:
        """Append the queued live messages (``SLICE`` a turn, the next turn queued at
        once), then drop the oldest if following."""
        self._flush_due = False
        await self._flush_slice()
        if self._arrived and not self._flush_due:
            self._flush_due = True
            self.call_later(self._flush)

    async def _flush_slice(self) -> None:
        room = self.room
        batch = [m for m in self._arrived.values() if m.room == room and m.id not in self.items]
        if not batch or room is None:
            self._arrived = {}
            return
        self._flushed_at = time.monotonic()
        most = self._laid_height if self._laid_height > 0 else FLUSH_MOST
        restart = self.following and len(batch) > most
        if restart:
            # Following the end of a burst: only its newest messages can be on screen.
            # The rest are stored and page in like any older page on scroll.
            for mid in [m.id for m in batch[:-most]]:
                self._arrived.pop(mid, None)
            batch = batch[-most:]
        batch = batch[:SLICE]  # the rest stay queued for the next turn
        quotes, files, receipts = await self._extras(batch)
        wanted = [m.id for m in batch if m.id in self._reactions_due]
        reactions = await self.context.node.reactions(wanted) if wanted else {}
        if self.room != room:  # another room was opened meanwhile
            return
        # Receipts that came while the store was read updated the queued copies.
        batch = [self._arrived.pop(m.id, m) for m in batch]
        self._reactions_due.difference_update(wanted)
        if restart:
            self.rows, self.items, self._tops = [], {}, []
            self.selected = None
            self.pictures.clear()
        last = self.last_item()
        previous = last.message if last is not None else None
        rows = self._rows(batch, quotes, reactions, previous, None, files=files, receipts=receipts)
        if not rows:
            return
        start = len(self.rows)
        self.rows.extend(rows)
        if restart:
            self.oldest = batch[0]
            self.has_more = True
        mine = any(m.author == self.context.me for m in batch)
        trimmed = (self.following or mine) and self._trim()
        self._relayout(0 if restart or trimmed else start)
        if mine:
            self.anchor()  # your own message: always show it
        elif not self.following and self.max_scroll_y > 0:
            self._set_below(self.below + sum(1 for r in rows if isinstance(r, MessageRow)))
        self.call_after_refresh(self.report_seen)

    def _trim(self) -> bool:
        """Drop the oldest messages beyond ``MAX_KEPT`` (they page back in on scroll).

        The new top message gets its name line and a day separator, as the first message
        of a page does, so paging the older ones back in lays out exactly as before.
        """
        if len(self.items) <= MAX_KEPT + PAGE or self.fetching:
            return False
        excess = len(self.items) - MAX_KEPT
        cut = 0
        for index, row in enumerate(self.rows):
            if isinstance(row, MessageRow):
                excess -= 1
                if excess == 0:
                    cut = index + 1
                    break
        while cut < len(self.rows) and isinstance(self.rows[cut], MarkerRow):
            cut += 1  # a marker with nothing above it marks nothing
        first = next((r for r in self.rows[cut:] if isinstance(r, MessageRow)), None)
        if first is None:
            return False
        for row in self.rows[:cut]:
            if isinstance(row, MessageRow):
                self.items.pop(row.message.id, None)
                self.pictures.drop(row)
                if row is self.selected:
                    self.selected = None
        kept = self.rows[cut:]
        if not isinstance(kept[0], DayRow):
            today = local_day(self.context.now_ms())
            kept.insert(0, DayRow(local_day(first.message.sent_at), today))
        first.set_grouped(False)
        self.rows = kept
        self._tops = []
        self.oldest = first.message
        self.has_more = True
        return True

    def _set_below(self, count: int) -> None:
        if count != self.below:
            self.below = count
            self.post_message(self.Below(count))

    def jump_to_end(self) -> None:
        """Scroll to the newest message and stick there again."""
        self.anchor()
        self._set_below(0)

    def set_status(self, ids: Iterable[bytes], status: int) -> None:
        """New delivery state for some of our messages (their lines only)."""
        for mid in ids:
            queued = self._arrived.get(mid)
            if queued is not None and status > queued.status:
                self._arrived[mid] = replace(queued, status=status)
            row = self.items.get(mid)
            if row is not None and row.set_status(status):
                self._repaint(row)

    async def refresh_receipts(self, ids: Iterable[bytes]) -> None:
        """Re-read who has our group messages ``ids`` (after a receipt arrived)."""
        shown = [self.items[i].message for i in ids if i in self.items]
        for mid, summary in (await receipts_for(self.context, shown)).items():
            row = self.items.get(mid)
            if row is not None and row.set_receipt(summary):
                self._changed(row)

    async def refresh_reactions(self, message_id: bytes) -> None:
        """Re-read the reactions of one message shown here."""
        if message_id in self._arrived:
            self._reactions_due.add(message_id)  # read when the queue is shown
            return
        row = self.items.get(message_id)
        if row is None:
            return
        found = await self.context.node.reactions([message_id])
        row.view.reactions = found.get(message_id, [])
        self._changed(row)

    async def load_sticker(self, row: MessageRow) -> None:
        """Draw a sticker message's picture once it is cached (asking the node to fetch
        it if it is not: a StickerReady event then brings us back here)."""
        stickers = self.context.node.stickers
        if row.view.sticker is not None or not stickers.want(row.message):
            return
        try:
            sha256 = decode_sticker(row.message.body).sha256
        except StickerError:
            return
        picture = await load_sticker(await stickers.picture(sha256))
        if picture is not None and self.items.get(row.message.id) is row:
            row.set_sticker(picture)
            self._changed(row)

    async def sticker_ready(self, sha256: bytes) -> None:
        """A sticker's picture arrived: draw it wherever it is shown."""
        for row in list(self.items.values()):
            if row.message.kind != KIND_STICKER or row.view.sticker is not None:
                continue
            try:
                if decode_sticker(row.message.body).sha256 == sha256:
                    await self.load_sticker(row)
            except StickerError:
                continue

    async def update_transfer(self, event: TransferProgress) -> None:
        """A file transfer of this room moved on (a finished one shows where it went)."""
        row = self.items.get(event.message_id)
        if row is None:
            return
        card = row.view.file
        if card is None:
            card = (await files_for(self.context, [row.message])).get(row.message.id)
            if card is None:
                return
        path = None
        if event.state == "done":
            info = await self.context.node.transfers.get(event.message_id)
            path = info.path if info is not None else None
        card.update(event, path)
        row.set_file(card)
        self._changed(row)

    async def change(self, ids: Iterable[bytes]) -> None:
        """Messages edited, deleted or gone with a timer: reload the page (rare, as
        withdrawals are), so each shows its latest text or leaves."""
        changed = set(ids)
        queued = self._arrived.keys() | {m.id for m in self._pending}
        if changed & (self.items.keys() | queued):
            await self.show_room(self.room)

    async def withdraw(self, ids: Iterable[bytes]) -> None:
        """Messages that must no longer show (a removal undid them): reload the page.

        Rare (it takes a removal during a partition), so the simple way is the right one:
        headers and day breaks around the gap are laid out afresh.
        """
        gone = set(ids)
        self._pending = [m for m in self._pending if m.id not in gone]
        for message_id in gone:
            self._arrived.pop(message_id, None)  # queued, not shown yet
        if gone & self.items.keys():
            await self.show_room(self.room)

    # ------------------------------------------------------------------ read receipts

    def view_changed(self) -> None:
        """The view moved or was resized: what is on screen may be newly seen, and a
        taller view may now be longer than the page shown."""
        self.call_after_refresh(self.report_seen)
        self.call_after_refresh(self._fill_viewport)

    def report_seen(self) -> None:
        """Post the incoming, not yet read messages that are on screen now."""
        if self.room is None or not self.can_mark_read or not self.screen.is_active:
            return
        if not self.app.app_focus or self.size.height == 0:
            return
        ids = [
            row.message.id
            for row in self.visible_items()
            if row.message.author != self.context.me
            and row.message.status < MessageStatus.READ
            and row.message.id not in self._seen_sent
        ]
        if ids:
            self._seen_sent.update(ids)
            for mid in ids:
                row = self.items[mid]
                if row.set_status(MessageStatus.READ):
                    self._repaint(row)
            self.post_message(self.Seen(self.room, ids))
