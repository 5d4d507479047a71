"""Which peer a person means when they type a name: exact before alike, contacts first.

``p2pchat send bob hi`` names a peer by what it calls itself, and peers choose their
names. Two rules keep that both convenient and safe:

- **Every look-alike is a candidate.** A name matches every known peer whose name looks
  like it (``names.name_keys``: same confusable skeleton, any case), so a stranger called
  "Bob" spelt with a Cyrillic o is never silently skipped, nor silently picked.
- **A candidate wins only if no one it beats is trusted more.** A candidate that matches
  exactly (same characters, same case, or its id) beats the others when each of them
  either also matches exactly but is trusted less (a verified contact before a contact,
  a contact before a stranger), or matches only by case or look-alike and is trusted no
  more. A candidate that matches only by case or look-alike wins when every other one
  does too and is trusted less. So a verified contact "bob" is found although an
  offline stranger is also called "bob" (and for "BOB" too), while a stranger who calls
  itself "Bob" never captures ``send Bob`` from a contact "bob": a name a stranger picks
  can never win over someone we trust. Anything else is a tie, and the person is shown
  the candidates to choose by short id.

Pure: the caller hands in the peers (with their latest names) and gets an id or an error.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence

from p2pchat.node.model import PeerInfo, PeerLookupError
from p2pchat.node.names import name_keys

#: How far a match can be trusted to mean the person we think: a contact whose safety
#: number was compared, a contact, anyone else (a stranger, a room member, a request).
TRUST_VERIFIED, TRUST_CONTACT, TRUST_OTHER = 0, 1, 2

#: A name as ``Node.peer_name`` shows a look-alike: the name, then the short id in brackets.
_SHOWN_WITH_ID = re.compile(r".+ \(([a-z2-7]{8})\)")

#: An id prefix shorter than this is taken for a name only (too many ids would match).
MIN_ID_PREFIX = 4


def trust_rank(peer: PeerInfo) -> int:
    """TRUST_VERIFIED, TRUST_CONTACT or TRUST_OTHER (lower is trusted more)."""
    if peer.state != "contact":
        return TRUST_OTHER
    return TRUST_VERIFIED if peer.verified else TRUST_CONTACT


def same_name(typed: str, name: str) -> bool:
    """Whether ``typed`` is ``name`` exactly: same case, same characters once composed.

    (NFC first: a terminal may hand us "é" as one code point or as e plus an accent.)
    """
    return unicodedata.normalize("NFC", typed) == unicodedata.normalize("NFC", name)


def clear_winner(candidates: dict[bytes, tuple[bool, int]]) -> bytes | None:
    """The one candidate a lookup clearly means, or None for a tie (see the module doc).

    ``candidates`` maps each matching peer to ``(exact, trust)``: whether it matches
    exactly (its exact name, or its id) and its :func:`trust_rank`.
    """

    def beats(exact: bool, trust: int, other_exact: bool, other_trust: int) -> bool:
        if other_exact:  # an exact match is beaten only by an exact, more trusted one
            return exact and other_trust > trust
        return other_trust >= trust if exact else other_trust > trust

    for peer, (exact, trust) in candidates.items():
        if all(
            beats(exact, trust, other_exact, other_trust)
            for other, (other_exact, other_trust) in candidates.items()
            if other != peer
        ):
            return peer
    return None


def find_peer(text: str, peers: Sequence[PeerInfo], *, trusted_first: bool = True) -> bytes:
    """The id of the one peer in ``peers`` that ``text`` names.

    ``text`` is a display name, a name as shown with its short id ("Alice (k3j5x7ab)")
    or the start of an id. ``trusted_first=False`` turns the preference off (any two
    candidates are a tie): for blocking or accepting, where the person more likely
    means the stranger than the contact of the same name, and a wrong pick would
    block a friend or let an impersonator in.
    Raises PeerLookupError listing the candidates (or near misses) otherwise.
    """
    query = text.strip()
    shown = _SHOWN_WITH_ID.fullmatch(query)
    if shown is not None:
        query = shown.group(1)
    wanted = name_keys(query)
    by_name = [p for p in peers if p.name and name_keys(p.name) & wanted]
    by_id = (
        [p for p in peers if p.peer_id_text.startswith(query.lower())]
        if len(query) >= MIN_ID_PREFIX
        else []
    )
    matches = {p.peer_id: p for p in [*by_name, *by_id]}
    if len(matches) == 1:
        return next(iter(matches))
    if not matches:
        lowered = query.casefold()
        near = [p for p in peers if lowered in (p.name or "").casefold()]
        raise PeerLookupError(f"no peer called {query!r}", near)
    if trusted_first:
        exact = {p.peer_id for p in by_id}
        exact.update(p.peer_id for p in by_name if p.name and same_name(query, p.name))
        winner = clear_winner(
            {peer: (peer in exact, trust_rank(info)) for peer, info in matches.items()}
        )
        if winner is not None:
            return winner
    raise PeerLookupError(
        f"{query!r} matches {len(matches)} peers; use the short id", list(matches.values())
    )
