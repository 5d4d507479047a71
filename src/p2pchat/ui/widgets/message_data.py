"""What the message list reads from the node to show a batch of messages.

Quotes of replied-to messages, file cards and group receipts are fetched per batch (a
page, or the live messages of one frame), never per line drawn.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from p2pchat.node import Message, MessageStatus
from p2pchat.ui.context import ChatContext
from p2pchat.ui.media import FileCard, load_preview
from p2pchat.ui.text import one_line


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


async def quotes_for(
    context: ChatContext,
    messages: Sequence[Message],
    shown: Callable[[bytes], Message | None],
) -> dict[bytes, tuple[str, str]]:
    """Quote lines for the replies among ``messages`` (fetching originals as needed);
    ``shown`` finds a message the list already holds."""
    node = context.node
    known = {m.id: m for m in messages}
    quotes: dict[bytes, tuple[str, str]] = {}
    for m in messages:
        if m.reply_to is None or m.reply_to in quotes:
            continue
        original = known.get(m.reply_to) or shown(m.reply_to) or await node.get_message(m.reply_to)
        if original is None:
            quotes[m.reply_to] = ("?", "a message that is not here")
        else:
            quotes[m.reply_to] = (
                context.name(original.author),
                one_line(context.text(original), 80),
            )
    return quotes


async def files_for(context: ChatContext, messages: Sequence[Message]) -> dict[bytes, FileCard]:
    """The card of each file message among ``messages`` (manifest, transfer, preview)."""
    transfers = context.node.transfers
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
            incoming=m.author != context.me,
        )
        if info is not None:
            card.update(info, info.path)
        if manifest is not None and manifest.thumb:
            card.preview = await load_preview(manifest.thumb)
        cards[m.id] = card
    return cards


async def receipts_for(context: ChatContext, messages: Sequence[Message]) -> dict[bytes, str]:
    """``read by N of M`` for our own messages among ``messages`` (a group room)."""
    groups = context.node.groups
    out: dict[bytes, str] = {}
    for m in messages:
        if m.author == context.me and m.kind != "system":
            out[m.id] = receipt_summary(await groups.receipts(m.id))
    return out
