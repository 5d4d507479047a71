"""Invite codes: one line that lets someone never met on the LAN reach us through tor.

``p2pchat:<peer id>.<onion address>.<check>``: the 52-character peer id, the
56-character v3 onion address, and 8 base32 characters of a keyed BLAKE2b over both
(the same alphabet, lower case). The check catches a code cut short or mistyped
before any connection is tried; the onion address has its own checksum too. The peer
id is what makes the code safe: the Noise handshake proves the id, so whoever answers
at the onion address without that identity key is refused.
"""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass
from typing import Final

from .onion import OnionAddressError, check_onion_address

INVITE_PREFIX: Final = "p2pchat:"
_CHECK_KEY: Final = b"p2pchat/invite/v1"
_PEER_CHARS: Final = 52
_CHECK_CHARS: Final = 8
#: Longest text worth looking at (the code is 126 characters).
MAX_INVITE_CHARS: Final = 200


class InviteError(ValueError):
    """Not a valid invite code; the message says why, for the person who typed it."""


@dataclass(frozen=True, slots=True)
class Invite:
    """A decoded invite: who (peer id, raw 32 bytes) and where (onion address)."""

    peer_id: bytes
    onion: str


def _check(peer_text: str, onion: str) -> str:
    digest = hashlib.blake2b(
        f"{peer_text}.{onion}".encode("ascii"), key=_CHECK_KEY, digest_size=5
    ).digest()
    return base64.b32encode(digest).decode("ascii").lower()


def _peer_bytes(text: str) -> bytes:
    if len(text) != _PEER_CHARS:
        raise InviteError(f"the peer id in an invite is {_PEER_CHARS} characters")
    try:
        raw = base64.b32decode(text.upper() + "====")
    except ValueError:
        raise InviteError("the peer id in the invite is not base32") from None
    if len(raw) != 32:
        raise InviteError("the peer id in the invite has the wrong length")
    return raw


def encode_invite(peer_id: bytes, onion: str) -> str:
    """The invite code for ``peer_id`` reachable at ``onion`` (56 characters)."""
    if len(peer_id) != 32:
        raise InviteError("a peer id is 32 bytes")
    onion = check_onion_address(onion)
    peer_text = base64.b32encode(peer_id).decode("ascii").lower().rstrip("=")
    return f"{INVITE_PREFIX}{peer_text}.{onion}.{_check(peer_text, onion)}"


def decode_invite(text: str) -> Invite:
    """Decode an invite code (spaces around it are ignored); raise InviteError."""
    if len(text) > MAX_INVITE_CHARS:
        raise InviteError("that is far too long to be an invite code")
    code = text.strip().lower()
    if not code.startswith(INVITE_PREFIX):
        raise InviteError(f"an invite code starts with {INVITE_PREFIX!r}")
    parts = code[len(INVITE_PREFIX) :].split(".")
    if len(parts) != 3:
        raise InviteError("an invite code has three parts separated by dots")
    peer_text, onion, check = parts
    peer_id = _peer_bytes(peer_text)
    try:
        onion = check_onion_address(onion)
    except OnionAddressError as exc:
        raise InviteError(f"the invite's onion address is wrong: {exc}") from None
    if len(check) != _CHECK_CHARS or check != _check(peer_text, onion):
        raise InviteError("the invite code's check does not match (mistyped or cut short?)")
    return Invite(peer_id, onion)
