"""Whom a typed name means (node/peer_lookup.py), rule by rule, on plain peer lists."""

from __future__ import annotations

import pytest

from p2pchat.node import PeerInfo, PeerLookupError
from p2pchat.node.peer_lookup import find_peer


def peer(n: int, name: str, state: str = "unknown", verified: bool = False) -> PeerInfo:
    return PeerInfo(bytes([n]) * 32, name, state, verified, False, None, None)


CONTACT = peer(1, "bob", "contact")
VERIFIED = peer(2, "bob", "contact", verified=True)
STRANGER = peer(3, "bob")
CAPITAL = peer(4, "Bob")
LOOK_ALIKE = peer(5, "b\u043eb")  # a Cyrillic o
OTHER_CONTACT = peer(6, "bob", "contact")


@pytest.mark.parametrize(
    ("typed", "peers", "meant"),
    [
        ("bob", [CONTACT, STRANGER], CONTACT),  # contacts first
        ("bob", [VERIFIED, CONTACT], VERIFIED),  # verified first
        ("bob", [CONTACT, LOOK_ALIKE], CONTACT),  # exact before a look-alike
        ("BOB", [CONTACT, STRANGER], CONTACT),  # nobody exact: contacts still first
        ("Bob", [CAPITAL, STRANGER], CAPITAL),  # exact before a case-match, same trust
    ],
)
def test_a_name_means_the_one_nobody_can_capture(
    typed: str, peers: list[PeerInfo], meant: PeerInfo
) -> None:
    assert find_peer(typed, peers) == meant.peer_id
    assert find_peer(typed, list(reversed(peers))) == meant.peer_id


@pytest.mark.parametrize(
    ("typed", "peers"),
    [
        ("Bob", [CONTACT, CAPITAL]),  # a stranger's exact name never beats a contact
        ("b\u043eb", [CONTACT, LOOK_ALIKE]),  # nor its exact look-alike
        ("bob", [CONTACT, OTHER_CONTACT]),  # two contacts of one name
        ("bob", [STRANGER, peer(7, "bob")]),  # two strangers of one name
    ],
)
def test_a_name_nobody_clearly_wins_lists_every_candidate(
    typed: str, peers: list[PeerInfo]
) -> None:
    with pytest.raises(PeerLookupError, match="use the short id") as failed:
        find_peer(typed, peers)
    assert {c.peer_id for c in failed.value.candidates} == {p.peer_id for p in peers}


def test_for_blocking_any_two_candidates_are_a_tie() -> None:
    with pytest.raises(PeerLookupError):
        find_peer("bob", [VERIFIED, STRANGER], trusted_first=False)
