"""Per-peer quotas on inbound messages: what one peer may make us read and store.

A contact is trusted with our attention, not with our disk. One peer sending at full
speed must neither fill the store nor crowd out everyone else, so each peer has:

* a **rate** (bytes per second, with a burst): beyond it we *hold back*, i.e. stop
  reading that peer's connection for as long as its excess would take at the allowed
  rate. TCP flow control then slows the sender; nothing is lost, nothing is buffered
  here.
* a **daily budget** of store growth (bytes): beyond it messages are *refused*, i.e.
  neither stored nor acknowledged, so they stay in the sender's outbox and are sent
  again when the two next connect. A peer can never make us store more than
  ``daily_bytes`` at once, refilling at ``daily_bytes`` a day (so at most twice that
  in any 24 hours).

What was held back or refused is told to the person, at most once per
``notice_interval`` per peer, through ``on_notice``. The bookkeeping is in memory (a
restart starts every peer with a full budget).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Final

DAY: Final = 86_400.0
#: Per-peer states kept before idle ones (full budgets, nothing to report) are forgotten.
MAX_TRACKED_PEERS: Final = 4096


@dataclass(frozen=True)
class FloodLimits:
    """How much inbound work one peer may cause; see the module docstring."""

    # Sustained reading rate and burst, in charged bytes (see ``message_overhead``).
    rate_bytes: float = 2 * 1024 * 1024
    burst_bytes: float = 32 * 1024 * 1024
    # Store growth one peer may cause: a bucket of this size refilled over a day.
    daily_bytes: float = 128 * 1024 * 1024
    # What a stored message costs beyond its body (row, ids, signature, indexes).
    message_overhead: int = 256
    # Inbound work queued per peer before we stop reading its connection.
    queue_bytes: int = 1024 * 1024
    # Work one peer may put into one store batch (others' messages wait for one batch).
    batch_bytes: int = 256 * 1024
    # Seconds between two notices about the same peer.
    notice_interval: float = 30.0


@dataclass(frozen=True, slots=True)
class FloodNotice:
    """What one peer's flood cost it since the last notice about that peer."""

    peer: bytes
    held_back: int
    refused: int


class _Bucket:
    """A token bucket that may go into debt (the debt is how long to hold back)."""

    __slots__ = ("burst", "last", "rate", "tokens")

    def __init__(self, rate: float, burst: float, now: float) -> None:
        self.rate = rate
        self.burst = burst
        self.tokens = burst
        self.last = now

    def refill(self, now: float) -> None:
        self.tokens = min(self.burst, self.tokens + max(0.0, now - self.last) * self.rate)
        self.last = now

    @property
    def full(self) -> bool:
        return self.tokens >= self.burst


@dataclass
class _PeerBudget:
    rate: _Bucket
    store: _Bucket
    held_back: int = 0
    refused: int = 0
    last_notice: float | None = None
    notice_timer: asyncio.TimerHandle | None = field(default=None, repr=False)


class FloodGuard:
    """Applies :class:`FloodLimits` to every peer (event loop thread only)."""

    def __init__(
        self,
        limits: FloodLimits,
        on_notice: Callable[[FloodNotice], None],
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.limits = limits
        self.clock = clock
        self._on_notice = on_notice
        self._peers: dict[bytes, _PeerBudget] = {}

    def cost(self, body_len: int) -> int:
        """What a message with a body of ``body_len`` bytes is charged."""
        return body_len + self.limits.message_overhead

    def hold_back(self, peer: bytes, cost: int) -> float:
        """Charge ``cost`` to the peer's rate; seconds to stop reading from it (0: none)."""
        budget = self._budget(peer)
        bucket = budget.rate
        bucket.refill(self.clock())
        bucket.tokens -= cost
        if bucket.tokens >= 0:
            return 0.0
        budget.held_back += 1
        self._report(peer, budget)
        return -bucket.tokens / bucket.rate if bucket.rate > 0 else DAY

    def allow_store(self, peer: bytes, cost: int) -> bool:
        """Charge ``cost`` to the peer's daily budget; False: refuse the message."""
        budget = self._budget(peer)
        bucket = budget.store
        bucket.refill(self.clock())
        if bucket.tokens >= cost:
            bucket.tokens -= cost
            return True
        budget.refused += 1
        self._report(peer, budget)
        return False

    def refused(self, peer: bytes) -> int:
        """Messages refused from ``peer`` and not yet reported in a notice."""
        budget = self._peers.get(peer)
        return budget.refused if budget is not None else 0

    def close(self) -> None:
        """Cancel pending notices (the node stops)."""
        for budget in self._peers.values():
            if budget.notice_timer is not None:
                budget.notice_timer.cancel()
                budget.notice_timer = None

    def _budget(self, peer: bytes) -> _PeerBudget:
        budget = self._peers.get(peer)
        if budget is None:
            if len(self._peers) >= MAX_TRACKED_PEERS:
                self._forget_idle()
            now = self.clock()
            limits = self.limits
            budget = _PeerBudget(
                rate=_Bucket(limits.rate_bytes, limits.burst_bytes, now),
                store=_Bucket(limits.daily_bytes / DAY, limits.daily_bytes, now),
            )
            self._peers[peer] = budget
        return budget

    def _forget_idle(self) -> None:
        """Drop peers whose budgets are full again and who have nothing to report."""
        now = self.clock()
        for peer, budget in list(self._peers.items()):
            budget.rate.refill(now)
            budget.store.refill(now)
            idle = budget.rate.full and budget.store.full
            if idle and not budget.held_back and not budget.refused and not budget.notice_timer:
                del self._peers[peer]

    def _report(self, peer: bytes, budget: _PeerBudget) -> None:
        """Tell the person now, or schedule the notice for when the interval is over."""
        if budget.notice_timer is not None:
            return  # already scheduled; it will carry this count too
        now = self.clock()
        wait = 0.0
        if budget.last_notice is not None:
            wait = budget.last_notice + self.limits.notice_interval - now
        if wait <= 0:
            self._notify(peer)
            return
        loop = asyncio.get_running_loop()
        budget.notice_timer = loop.call_later(wait, self._notify, peer)

    def _notify(self, peer: bytes) -> None:
        budget = self._peers.get(peer)
        if budget is None:
            return
        budget.notice_timer = None
        if not budget.held_back and not budget.refused:
            return
        notice = FloodNotice(peer, budget.held_back, budget.refused)
        budget.held_back = budget.refused = 0
        budget.last_notice = self.clock()
        self._on_notice(notice)


def describe_flood(name: str, notice: FloodNotice) -> str:
    """The sentence a person reads about a peer's flood."""
    parts = []
    if notice.held_back:
        parts.append(
            f"{notice.held_back} message{'s' if notice.held_back != 1 else ''} "
            "held back (slowed down, nothing lost)"
        )
    if notice.refused:
        parts.append(
            f"{notice.refused} message{'s' if notice.refused != 1 else ''} refused "
            "for now: over today's storage quota for this peer, they stay unacknowledged "
            "in their outbox and are sent again when you next connect"
        )
    return f"{name} is sending too fast: " + "; ".join(parts) + "."


__all__ = ["DAY", "FloodGuard", "FloodLimits", "FloodNotice", "describe_flood"]
