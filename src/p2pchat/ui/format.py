"""How times, days and delivery states read on screen (local time, short forms).

Times come from peers (a message's ``sent_at`` is what its author signed), so every
function here is total: an absurd time reads ``--:--`` or ``Unknown date``, never raises
(conversions live in ``p2pchat.timefmt``).
"""

from __future__ import annotations

from datetime import date, timedelta

from rich.text import Text

from p2pchat.node import MessageStatus
from p2pchat.timefmt import local_clock, local_datetime, local_day

#: Own-message delivery marks: different shapes (not only colours) so they stay
#: distinct on a monochrome terminal and for colour-blind people.
TICKS: dict[int, tuple[str, str, str]] = {
    MessageStatus.QUEUED: ("◷", "yellow", "queued: waiting for them to come online"),
    MessageStatus.SENT: ("✓", "grey62", "sent"),
    MessageStatus.DELIVERED: ("✓✓", "grey85", "delivered"),
    MessageStatus.READ: ("✔✔", "bold bright_cyan", "read"),
}
#: Consecutive messages of one author closer than this share one name line.
GROUP_GAP_MS = 5 * 60 * 1000


def clock(ms: int) -> str:
    """``14:05`` (``--:--`` for a time no calendar can show). Never raises."""
    return local_clock(ms)


def day_label(day: date | None, today: date | None) -> str:
    """``Today``, ``Yesterday``, ``Monday 30 November`` or with the year when not this one;
    ``Unknown date`` for a time that has no calendar day."""
    if day is None:
        return "Unknown date"
    if day == today:
        return "Today"
    if today is not None and today.toordinal() > 1 and day == today - timedelta(days=1):
        return "Yesterday"
    if today is None:
        return f"{day:%A} {day.day} {day:%B %Y}"
    if day.year == today.year:
        return f"{day:%A} {day.day} {day:%B}"
    return f"{day:%A} {day.day} {day:%B %Y}"


def tick(status: int) -> Text:
    """The delivery mark for one of our messages."""
    symbol, style, _ = TICKS.get(status, TICKS[MessageStatus.QUEUED])
    return Text(symbol, style=style)


def tick_meaning(status: int) -> str:
    """The words behind a delivery mark (tooltips, docs)."""
    return TICKS.get(status, TICKS[MessageStatus.QUEUED])[2]


def last_seen(ms: int | None, now_ms: int) -> str:
    """``last seen 14:05`` / ``last seen 3 Dec`` / ``never seen``."""
    if not ms:
        return "offline"
    seen = local_datetime(ms)
    if seen is None:
        return "offline"
    if seen.date() == local_day(now_ms):
        return f"last seen {seen:%H:%M}"
    return f"last seen {seen.day} {seen:%b}"


def size(n: float) -> str:
    """``1.5 MiB``."""
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} GiB"
