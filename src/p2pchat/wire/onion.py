"""Onion service (v3) addresses: build one from a public key, check one from a peer.

A v3 address is ``base32(pubkey || checksum || version)`` in lower case, 56 characters,
with ``checksum = SHA3-256(".onion checksum" || pubkey || version)[:2]`` and version 3
(tor's rend-spec-v3, section 6). Checking the checksum means a typo in an invite code or
a peer's garbage is refused here, before tor is ever asked to look it up.
"""

from __future__ import annotations

import base64
import hashlib
import re
from typing import Final

ONION_VERSION: Final = b"\x03"
#: Length of a v3 onion address without the ".onion" suffix.
ONION_CHARS: Final = 56
_ALPHABET: Final = re.compile(r"[a-z2-7]{56}")


class OnionAddressError(ValueError):
    """Not a valid v3 onion address; the message says why."""


def _checksum(public_key: bytes) -> bytes:
    return hashlib.sha3_256(b".onion checksum" + public_key + ONION_VERSION).digest()[:2]


def onion_address(public_key: bytes) -> str:
    """The 56-character address (no ".onion") of the onion service key ``public_key``."""
    if len(public_key) != 32:
        raise OnionAddressError("an onion service key is 32 bytes")
    raw = public_key + _checksum(public_key) + ONION_VERSION
    return base64.b32encode(raw).decode("ascii").lower()


def check_onion_address(text: str) -> str:
    """Return ``text`` without a ".onion" suffix if it is a valid v3 address; else raise."""
    address = text.removesuffix(".onion")
    if len(address) != ONION_CHARS or _ALPHABET.fullmatch(address) is None:
        raise OnionAddressError(f"an onion address is {ONION_CHARS} letters a-z and digits 2-7")
    raw = base64.b32decode(address.upper())
    public_key, checksum, version = raw[:32], raw[32:34], raw[34:]
    if version != ONION_VERSION:
        raise OnionAddressError("not a version 3 onion address")
    if checksum != _checksum(public_key):
        raise OnionAddressError("the onion address's checksum is wrong (a typo?)")
    return address


#: Domain separation of the onion frame's signature (versioned).
ONION_SIGNING_CONTEXT: Final = b"p2pchat/onion-address/v1\x00"


def onion_signing_bytes(peer_id: bytes, addr: str, port: int, ts: int) -> bytes:
    """What a peer's identity key signs to vouch for its onion address.

    The signer's own id is inside, so a signature cannot be replayed for another id.
    """
    return (
        ONION_SIGNING_CONTEXT
        + peer_id
        + addr.encode("ascii")
        + port.to_bytes(2, "big")
        + ts.to_bytes(8, "big")
    )
