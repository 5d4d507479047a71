"""Who may learn our display name over a link.

A person who announces on the LAN (mDNS) tells everyone their name anyway, so every
peer that completes a handshake learns it. A person who chose not to announce
(``--no-announce``, or the announce setting off) tells it only to people they chose:
contacts, and the members of rooms they share. Anyone else who connects (any TCP
client can make a fresh identity and complete a handshake) gets an empty name, and
sees the short id instead.

A peer that becomes a contact or a room member while connected is told the name at
once: the node calls :meth:`NameDisclosure.newly_allowed` when contact states or rooms
change, and sends a ``profile`` frame to each peer it returns.
"""

from __future__ import annotations

from collections.abc import Callable

#: Peers we withheld the name from are remembered only while this many or fewer; past
#: it, those no longer connected are forgotten (they get the name when they reconnect).
MAX_WITHHELD = 256


class NameDisclosure:
    """Decides, per proven peer id, whether it may learn our name; remembers refusals."""

    def __init__(
        self,
        *,
        public: Callable[[], bool],
        trusted: Callable[[bytes], bool],
        linked: Callable[[bytes], bool],
    ) -> None:
        self._public = public
        self._trusted = trusted
        self._linked = linked
        self._withheld: set[bytes] = set()

    def allows(self, peer: bytes) -> bool:
        """Whether ``peer`` may learn our name now (the handshake's ``reveal_name``)."""
        if self._public() or self._trusted(peer):
            self._withheld.discard(peer)
            return True
        self._withheld.add(peer)
        if len(self._withheld) > MAX_WITHHELD:
            self._withheld = {p for p in self._withheld if self._linked(p)}
        return False

    def newly_allowed(self) -> list[bytes]:
        """Connected peers we withheld the name from who may learn it now."""
        if not self._withheld:
            return []
        return [p for p in list(self._withheld) if self._linked(p) and self.allows(p)]
