"""Open contact requests: a bounded list where the newest always gets in.

Anyone on the LAN can make fresh identities for free, so the requests strangers open
must be bounded, or they fill the disk. A fixed budget that refuses newcomers once it is
spent would let a flood of throwaway identities keep every real newcomer out, silently.
So instead the list has a fixed size and a newcomer always gets in: when it is full,
the request that has been quiet longest makes way (its messages are removed; the
sender's app still holds them, since a request is never acknowledged, and sends them
again when it reconnects). Whatever is not kept is *counted*, and the count is shown to
the person, so nothing a newcomer writes disappears without them knowing.

Pure bookkeeping: no I/O. The direct-chat inbox (``direct``) applies it to the store.
"""

from __future__ import annotations

from dataclasses import dataclass

#: Ids of held-back messages remembered, so a sender's app sending them again (as it
#: does on every connection: a request is never acknowledged) does not count them twice.
MAX_REMEMBERED_HELD = 4096
#: Settings that keep the held-back counts across restarts.
SETTING_HELD_REQUESTS = "requests.held_back"
SETTING_HELD_MESSAGES = "requests.held_messages"


@dataclass(frozen=True)
class HeldBack:
    """How much was not kept since the person last cleared requests."""

    requests: int = 0
    messages: int = 0


class RequestBook:
    """The open requests, quietest first, and counts of what was held back."""

    def __init__(self, limit: int) -> None:
        if limit < 1:
            raise ValueError("at least one contact request must fit")
        self.limit = limit
        # Insertion order = activity order: touch() moves a peer to the end.
        self._order: dict[bytes, None] = {}
        self.held_requests = 0
        self.held_messages = 0
        self._saved = HeldBack()
        self._held_ids: dict[bytes, None] = {}

    def load(self, quietest_first: list[bytes], held: HeldBack) -> None:
        """Start from the store: open requests ordered by their last message, and counts."""
        self._order = dict.fromkeys(quietest_first)
        self.held_requests, self.held_messages = held.requests, held.messages
        self._saved = held

    @property
    def held(self) -> HeldBack:
        """The counts now."""
        return HeldBack(self.held_requests, self.held_messages)

    @property
    def open_count(self) -> int:
        return len(self._order)

    def peers(self) -> list[bytes]:
        """Open requests, quietest first."""
        return list(self._order)

    def __contains__(self, peer: object) -> bool:
        return peer in self._order

    def open(self, peer: bytes) -> list[bytes]:
        """Admit a new request from ``peer``; return the requests that make way for it."""
        evicted: list[bytes] = []
        self._order.pop(peer, None)
        while len(self._order) >= self.limit:
            quietest = next(iter(self._order))
            del self._order[quietest]
            evicted.append(quietest)
        self._order[peer] = None
        self.held_requests += len(evicted)
        return evicted

    def touch(self, peer: bytes) -> None:
        """``peer``'s request got a message: it is the most recently active now."""
        if peer in self._order:
            self._order[peer] = self._order.pop(peer)

    def hold_message(self, message_id: bytes) -> None:
        """A message of an open (or opening) request was not kept (counted once)."""
        if message_id in self._held_ids:
            return
        self._held_ids[message_id] = None
        if len(self._held_ids) > MAX_REMEMBERED_HELD:
            del self._held_ids[next(iter(self._held_ids))]
        self.held_messages += 1

    def close(self, peer: bytes) -> None:
        """``peer`` is no longer a request (accepted, blocked or cleared)."""
        self._order.pop(peer, None)

    def clear(self) -> list[bytes]:
        """Forget every request and reset the counts; return the peers that were open."""
        peers = list(self._order)
        self._order.clear()
        self._held_ids.clear()
        self.held_requests = self.held_messages = 0
        return peers

    def unsaved(self) -> HeldBack | None:
        """The counts, if they changed since last saved (then they count as saved)."""
        now = self.held
        if now == self._saved:
            return None
        self._saved = now
        return now
