"""The scrolling list of one room's messages, paged so any history opens instantly.

Opening a room loads only its latest page; scrolling to the top fetches the page
before it and keeps the view where it was. New messages stick to the bottom while the
person is at the bottom (Textual's anchor) and leave them alone when they scrolled up.
Read receipts go only for incoming messages that are actually on screen.

Live messages cost the same whatever the room holds: arrivals are queued and mounted
together once per turn of the event loop (a burst of a thousand is one layout, not a
thousand), grouping looks only at the neighbour above, and while the person follows
the end only the newest ``MAX_MOUNTED`` messages stay mounted (older ones are unmounted
and page back in from the store when scrolled up to, like any older page). Layout and
hit-testing in Textual walk every mounted child, so that cap is what keeps a message's
cost flat.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Iterable, Sequence
from dataclasses import replace
from datetime import date

from rich.text import Text
from textual import work
from textual.containers import VerticalScroll
from textual.message import Message as TextualMessage
from textual.widget import Widget
from textual.widgets import Static

from p2pchat.node import Message, MessageStatus, ReactionInfo, TransferProgress
from p2pchat.timefmt import local_day
from p2pchat.ui.context import ChatContext, ctx
from p2pchat.ui.format import GROUP_GAP_MS, day_label
from p2pchat.ui.media import FileCard, load_preview
from p2pchat.ui.text import one_line
from p2pchat.ui.widgets.message_item import ItemView, MessageItem

PAGE = 60
# Scrolling this close to the top fetches the previous page.
NEAR_TOP = 2
# Messages kept mounted while the person follows the end; older ones are unmounted and
# page back in on scroll. A few pages, so scrolling up a little never touches the store.
MAX_MOUNTED = 2 * PAGE
# Live messages mounted in one go at most (a bigger burst takes several turns).
FLUSH_MOST = PAGE // 2
# Live messages are mounted at most this often (each mount is a layout of the screen;
# fewer of them leave the frames in between to keys and scrolling). 50 ms is below what
# a person notices as a delay in a chat.
FRAME = 0.05
PLACE_TIMEOUT = 2.0  # seconds to wait for a prepended page to be laid out
LAYOUT_POLL = 0.01


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


def receipt_summary(receipts: Sequence[tuple[bytes, int]]) -> str:
    """``read by 2 of 4``, ``delivered to 3 of 4``; empty when nobody else is in the room."""
    total = len(receipts)
    if not total:
        return ""
    read = sum(1 for _, status in receipts if status >= MessageStatus.READ)
    delivered = sum(1 for _, status in receipts if status >= MessageStatus.DELIVERED)
    if read:
        more = f" · delivered to {delivered}" if delivered > read else ""
        return f"read by {read} of {total}{more}"
    return f"delivered to {delivered} of {total}"


class DaySeparator(Static):
    """``── Today ──`` between messages of different days."""

    def __init__(self, day: date | None, today: date | None) -> None:
        super().__init__(Text(f" {day_label(day, today)} ", end=""), markup=False)
        self.day = day


class UnreadMarker(Static):
    """Where the person left off: messages below arrived since they last looked."""

    def __init__(self) -> None:
        super().__init__(Text(" new messages ", end=""), markup=False)


class MessageList(VerticalScroll):
    """Messages of the open room, oldest at the top."""

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
        self.items: dict[bytes, MessageItem] = {}
        self.oldest: Message | None = None
        self.has_more = False
        self.fetching = False
        self.can_mark_read = True
        self.group = False  # a group room: own messages tell how many have read them
        self.loaded = False
        self._pending: list[Message] = []
        # Live messages waiting for the next flush (one mount for a whole burst).
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

    async def _quotes(self, messages: Sequence[Message]) -> dict[bytes, tuple[str, str]]:
        """Quote lines for the replies among ``messages`` (fetching originals as needed)."""
        node = self.context.node
        known = {m.id: m for m in messages}
        quotes: dict[bytes, tuple[str, str]] = {}
        for m in messages:
            if m.reply_to is None or m.reply_to in quotes:
                continue
            shown = self.items.get(m.reply_to)
            original = (
                known.get(m.reply_to)
                or (shown.message if shown is not None else None)
                or await node.get_message(m.reply_to)
            )
            if original is None:
                quotes[m.reply_to] = ("?", "a message that is not here")
            else:
                quotes[m.reply_to] = (
                    self.context.name(original.author),
                    one_line(self.context.text(original), 80),
                )
        return quotes

    async def _files(self, messages: Sequence[Message]) -> dict[bytes, FileCard]:
        """The card of each file message among ``messages`` (manifest, transfer, preview)."""
        transfers = self.context.node.transfers
        cards: dict[bytes, FileCard] = {}
        for m in messages:
            if m.kind != "file":
                continue
            manifest = await transfers.manifest(m.id)
            info = await transfers.get(m.id)
            source = manifest if manifest is not None else info
            if source is None:
                continue
            card = FileCard(
                name=source.name,
                size=source.size,
                mime=source.mime,
                duration=getattr(manifest, "duration", None),
                width=source.width,
                height=source.height,
                incoming=m.author != self.context.me,
            )
            if info is not None:
                card.update(info, info.path)
            if manifest is not None and manifest.thumb:
                card.preview = await load_preview(manifest.thumb)
            cards[m.id] = card
        return cards

    async def _receipts(self, messages: Sequence[Message]) -> dict[bytes, str]:
        """``read by N of M`` for our own messages, in a group room."""
        if not self.group:
            return {}
        groups = self.context.node.groups
        me = self.context.me
        out: dict[bytes, str] = {}
        for m in messages:
            if m.author == me and m.kind != "system":
                out[m.id] = receipt_summary(await groups.receipts(m.id))
        return out

    async def refresh_receipts(self, ids: Iterable[bytes]) -> None:
        """Re-read who has our group messages ``ids`` (after a receipt arrived)."""
        shown = [self.items[i].message for i in ids if i in self.items]
        for mid, summary in (await self._receipts(shown)).items():
            item = self.items.get(mid)
            if item is not None:
                item.set_receipt(summary)

    async def withdraw(self, ids: Iterable[bytes]) -> None:
        """Messages that must no longer show (a removal undid them): reload the page.

        Rare (it takes a removal during a partition), so the simple way is the right one:
        headers and day breaks around the gap are laid out afresh.
        """
        gone = set(ids)
        self._pending = [m for m in self._pending if m.id not in gone]
        for message_id in gone:
            self._arrived.pop(message_id, None)  # queued, not mounted yet
        for mid in gone:
            self._arrived.pop(mid, None)
        if gone & self.items.keys():
            await self.show_room(self.room)

    async def change(self, ids: Iterable[bytes]) -> None:
        """Messages edited, deleted or gone with a timer: reload the page (rare, as
        withdrawals are), so each shows its latest text or leaves."""
        changed = set(ids)
        queued = self._arrived.keys() | {m.id for m in self._pending}
        if changed & (self.items.keys() | queued):
            await self.show_room(self.room)

    async def update_transfer(self, event: TransferProgress) -> None:
        """A file transfer of this room moved on (a finished one shows where it went)."""
        item = self.items.get(event.message_id)
        if item is None:
            return
        card = item.view.file
        if card is None:
            cards = await self._files([item.message])
            card = cards.get(item.message.id)
            if card is None:
                return
        path = None
        if event.state == "done":
            info = await self.context.node.transfers.get(event.message_id)
            path = info.path if info is not None else None
        card.update(event, path)
        item.set_file(card)

    def _views(
        self,
        messages: Sequence[Message],
        quotes: dict[bytes, tuple[str, str]],
        reactions: dict[bytes, list[ReactionInfo]],
        previous: Message | None,
        unread_from: bytes | None,
        *,
        files: dict[bytes, FileCard] | None = None,
        receipts: dict[bytes, str] | None = None,
    ) -> list[Widget]:
        """Widgets for ``messages`` (day separators, grouping, unread marker)."""
        context = self.context
        today = local_day(context.now_ms())
        widgets: list[Widget] = []
        for m in messages:
            if m.id in self.items:
                continue  # already shown (it arrived while this page loaded)
            day = local_day(m.sent_at)
            new_day = previous is None or local_day(previous.sent_at) != day
            if new_day:
                widgets.append(DaySeparator(day, today))
            marker = m.id == unread_from
            if marker:
                widgets.append(UnreadMarker())
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
            item = MessageItem(view)
            self.items[m.id] = item
            widgets.append(item)
            previous = m
        return widgets

    # ------------------------------------------------------------------ opening

    async def show_room(self, room: bytes | None) -> None:
        """Show the latest page of ``room`` (or nothing), with the unread marker."""
        self.room = room
        self.loaded = False
        self._pending = []
        self._arrived = {}
        self._reactions_due = set()
        self._set_below(0)
        self.items = {}
        self._seen_sent = set()
        self.oldest = None
        self.has_more = False
        await self.remove_children()
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
        quotes = await self._quotes(messages)
        files = await self._files(messages)
        receipts = await self._receipts(messages)
        widgets = self._views(
            messages, quotes, reactions, None, unread_from, files=files, receipts=receipts
        )
        await self.mount_all(widgets)
        self.anchor()
        marker = next((w for w in widgets if isinstance(w, UnreadMarker)), None)
        if marker is not None:
            self.call_after_refresh(self._show_marker, marker)
        self.call_after_refresh(self.report_seen)
        self.call_after_refresh(self._fill_viewport)
        self.loaded = True
        # Messages that arrived while the page was loading go below it, once each.
        pending, self._pending = self._pending, []
        for message in pending:
            await self.add_message(message)

    def _fill_viewport(self) -> None:
        """A page shorter than the view cannot be scrolled up: fetch older ones now."""
        if self.has_more and not self.fetching and self.max_scroll_y == 0:
            self.load_older()

    def _show_marker(self, marker: Widget) -> None:
        if marker.virtual_region.y < self.max_scroll_y:
            self.release_anchor()
            self.scroll_to(y=max(0, marker.virtual_region.y - 1), animate=False, immediate=True)

    # ------------------------------------------------------------------ paging

    def watch_scroll_y(self, old_value: float, new_value: float) -> None:
        """Fetch the previous page when the top comes into view; report what is seen."""
        super().watch_scroll_y(old_value, new_value)
        if new_value <= NEAR_TOP and self.has_more and not self.fetching:
            self.load_older()
        if round(old_value) != round(new_value):
            self.report_seen()
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
            quotes = await self._quotes(older)
            files = await self._files(older)
            receipts = await self._receipts(older)
            widgets = self._views(
                older, quotes, reactions, None, None, files=files, receipts=receipts
            )
            first = self.children[0] if self.children else None
            if isinstance(first, DaySeparator) and first.day == local_day(older[-1].sent_at):
                await first.remove()
            old_first = next((w for w in self.children if isinstance(w, MessageItem)), None)
            if old_first is not None and can_group(older[-1], old_first.message):
                old_first.set_grouped()
            # Keep what was shown where it is: once the new page is laid out, scroll down
            # by exactly its height. A prepended page always adds lines, so an unchanged
            # height means layout has not happened yet (a slow refresh): try again after
            # the next one instead of jumping to the top.
            height_before = self.virtual_size.height
            y_before = self.scroll_y
            await self.mount_all(widgets, before=0)
            self.oldest = older[0]
            placed = asyncio.Event()

            def keep_place() -> None:
                grown = self.virtual_size.height - height_before
                if grown <= 0 and self.is_attached:
                    self.set_timer(LAYOUT_POLL, keep_place)  # let the screen lay it out
                    return
                self.scroll_to(y=y_before + grown, animate=False, immediate=True)
                placed.set()

            self.call_after_refresh(keep_place)
            # No further page until this one is in place (bounded: an unmounted list
            # never refreshes).
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(placed.wait(), PLACE_TIMEOUT)
            self.call_after_refresh(self._fill_viewport)
        finally:
            self.fetching = False

    # ------------------------------------------------------------------ live updates

    async def add_message(self, message: Message) -> None:
        """Append a new message of this room (ignored if already shown).

        Only queues it: the queue is mounted in one go on the next turn of the event
        loop, so a burst of events costs one layout (see ``_flush``).
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

    @property
    def following(self) -> bool:
        """Whether the view sticks to the newest message (the person is at the end)."""
        return self.is_anchored and not self._anchor_released

    async def _flush(self) -> None:
        """Mount every queued live message at once, then trim the oldest if following."""
        self._flush_due = False
        room = self.room
        batch = [m for m in self._arrived.values() if m.room == room and m.id not in self.items]
        if not batch or room is None:
            self._arrived = {}
            return
        self._flushed_at = time.monotonic()
        skip = self.following and len(batch) > FLUSH_MOST
        if skip:
            # Following the end of a burst: only its newest messages can be on screen, and
            # mounting the rest would unmount them again at once. They are stored and page
            # in like any older page if the person scrolls up to them.
            for mid in [m.id for m in batch[:-FLUSH_MOST]]:
                self._arrived.pop(mid, None)
            batch = batch[-FLUSH_MOST:]
        elif len(batch) > FLUSH_MOST:  # the rest in the next turn: bounded work per turn
            batch = batch[:FLUSH_MOST]
            self._flush_due = True
            self.call_later(self._flush)
        quotes = await self._quotes(batch)
        files = await self._files(batch)
        receipts = await self._receipts(batch)
        wanted = [m.id for m in batch if m.id in self._reactions_due]
        reactions = await self.context.node.reactions(wanted) if wanted else {}
        if self.room != room:  # another room was opened meanwhile
            return
        # Receipts that came while the store was read updated the queued copies.
        batch = [self._arrived.pop(m.id, m) for m in batch]
        self._reactions_due.difference_update(wanted)
        stale: list[Widget] = []
        if skip:
            # What is mounted would sit above a gap: start afresh, like a new page (removed
            # once the new page is in, so the view never passes the top and pages in).
            stale = list(self.children)
            self.items = {}
        elif self.following:
            await self._trim(len(batch))  # make room first: never more than the cap
        last = None if skip else self.last_item()
        previous = last.message if last is not None else None
        widgets = self._views(
            batch, quotes, reactions, previous, None, files=files, receipts=receipts
        )
        if not widgets:
            return
        await self.mount_all(widgets)
        if skip:
            await self.remove_children(stale)
            self.oldest = batch[0]
            self.has_more = True
            self.call_after_refresh(self._fill_viewport)
        if any(m.author == self.context.me for m in batch):
            self.anchor()  # your own message: always show it
        elif not self.is_vertical_scroll_end and self.max_scroll_y > 0:
            self._set_below(self.below + sum(1 for w in widgets if isinstance(w, MessageItem)))
        if self.following:
            await self._trim()
        self.call_after_refresh(self.report_seen)

    async def _trim(self, coming: int = 0) -> None:
        """Unmount the oldest messages beyond ``MAX_MOUNTED`` (they page back in on scroll),
        leaving room for ``coming`` more.

        The new top message gets its name line and a day separator, as the first message
        of a page does, so paging the older ones back in lays out exactly as before.
        """
        excess = len(self.items) + coming - MAX_MOUNTED
        if excess <= 0 or self.fetching:
            return
        children = list(self.children)
        cut = 0
        for index, child in enumerate(children):
            if isinstance(child, MessageItem):
                excess -= 1
                if excess == 0:
                    cut = index + 1
                    break
        while cut < len(children) and isinstance(children[cut], UnreadMarker):
            cut += 1  # a marker with nothing above it marks nothing
        first = next((w for w in children[cut:] if isinstance(w, MessageItem)), None)
        if first is None:
            return
        gone = children[:cut]
        for widget in gone:
            if isinstance(widget, MessageItem):
                self.items.pop(widget.message.id, None)
        await self.remove_children(gone)
        if not isinstance(self.children[0], DaySeparator):
            today = local_day(self.context.now_ms())
            day = local_day(first.message.sent_at)
            await self.mount(DaySeparator(day, today), before=0)
        first.set_grouped(False)
        self.oldest = first.message
        self.has_more = True

    def _set_below(self, count: int) -> None:
        if count != self.below:
            self.below = count
            self.post_message(self.Below(count))

    def jump_to_end(self) -> None:
        """Scroll to the newest message and stick there again."""
        self.anchor()
        self._set_below(0)

    def set_status(self, ids: Iterable[bytes], status: int) -> None:
        """New delivery state for some of our messages."""
        for mid in ids:
            queued = self._arrived.get(mid)
            if queued is not None and status > queued.status:
                self._arrived[mid] = replace(queued, status=status)
            item = self.items.get(mid)
            if item is not None:
                item.set_status(status)

    async def refresh_reactions(self, message_id: bytes) -> None:
        """Re-read the reactions of one message shown here."""
        if message_id in self._arrived:
            self._reactions_due.add(message_id)  # read when the queue is mounted
            return
        item = self.items.get(message_id)
        if item is None:
            return
        found = await self.context.node.reactions([message_id])
        item.set_reactions(found.get(message_id, []))

    def last_item(self) -> MessageItem | None:
        """The newest message shown."""
        for w in reversed(self.children):
            if isinstance(w, MessageItem):
                return w
        return None

    # ------------------------------------------------------------------ read receipts

    def visible_items(self) -> list[MessageItem]:
        """Messages at least partly inside the viewport now."""
        top, bottom = self.scroll_y, self.scroll_y + self.scrollable_content_region.height
        return [
            item
            for item in self.items.values()
            if item.virtual_region.y < bottom and item.virtual_region.bottom > top
        ]

    def report_seen(self) -> None:
        """Post the incoming, not yet read messages that are on screen now."""
        if self.room is None or not self.can_mark_read or not self.screen.is_active:
            return
        if not self.app.app_focus or self.size.height == 0:
            return
        ids = [
            item.message.id
            for item in self.visible_items()
            if item.message.author != self.context.me
            and item.message.status < MessageStatus.READ
            and item.message.id not in self._seen_sent
        ]
        if ids:
            self._seen_sent.update(ids)
            for mid in ids:
                self.items[mid].set_status(MessageStatus.READ)
            self.post_message(self.Seen(self.room, ids))
