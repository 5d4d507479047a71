"""Invite codes and onion addresses: round trips, and every typo refused before dialling."""

from __future__ import annotations

import pytest

from p2pchat.identity import Identity
from p2pchat.node.tor import onion_address_of, onion_key_blob, onion_seed
from p2pchat.wire.invite import InviteError, decode_invite, encode_invite
from p2pchat.wire.onion import OnionAddressError, check_onion_address


def a_code() -> tuple[Identity, str, str]:
    identity = Identity.generate()
    onion = onion_address_of(onion_seed(identity))
    return identity, onion, encode_invite(identity.peer_id, onion)


def test_code_round_trips_and_tolerates_spaces_and_case() -> None:
    identity, onion, code = a_code()
    assert len(code) < 130
    for text in (code, f"  {code}\n", code.upper()):
        invite = decode_invite(text)
        assert invite.peer_id == identity.peer_id
        assert invite.onion == onion


def test_every_single_character_typo_is_refused() -> None:
    _, _, code = a_code()
    start = len("p2pchat:")
    for i in range(start, len(code)):
        if code[i] == ".":
            continue
        typo = code[:i] + ("b" if code[i] != "b" else "c") + code[i + 1 :]
        with pytest.raises(InviteError):
            decode_invite(typo)


@pytest.mark.parametrize(
    "text",
    ["", "p2pchat:", "hello", "p2pchat:a.b.c", "p2pchat:" + "a" * 300, "x" * 10_000],
)
def test_garbage_is_refused_with_a_reason(text: str) -> None:
    with pytest.raises(InviteError, match=r"\w"):
        decode_invite(text)


def test_cut_short_code_is_refused() -> None:
    _, _, code = a_code()
    with pytest.raises(InviteError):
        decode_invite(code[:-1])


def test_onion_address_derivation_matches_tor_and_is_stable() -> None:
    identity = Identity.generate()
    seed = onion_seed(identity)
    assert onion_seed(identity) == seed  # the same profile, the same address
    assert onion_seed(Identity.generate()) != seed
    address = onion_address_of(seed)
    assert check_onion_address(address + ".onion") == address
    assert len(onion_key_blob(seed)) == 88  # base64 of tor's 64-byte expanded key
    # The published address was checked against tor itself in tests/tor.


def test_onion_checksum_catches_a_flipped_letter() -> None:
    address = onion_address_of(b"\7" * 32)
    flipped = ("b" if address[0] != "b" else "c") + address[1:]
    with pytest.raises(OnionAddressError):
        check_onion_address(flipped)
