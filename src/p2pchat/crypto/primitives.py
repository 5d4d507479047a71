"""The cryptographic functions of the Noise suite ``25519_ChaChaPoly_BLAKE2b``.

X25519 and ChaCha20-Poly1305 (IETF) come from PyNaCl's libsodium bindings; BLAKE2b-512,
HMAC-BLAKE2b (RFC 2104, 128-byte block) and HKDF as defined in the Noise specification
(section 4.3) come from the standard library. Public keys from elsewhere are validated here
before libsodium ever sees them.

This module is pure computation: it must never open sockets or files, touch asyncio, or
log key material.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Final

import nacl.bindings
import nacl.exceptions

from p2pchat.crypto.errors import InvalidKeyError

__all__ = [
    "DHLEN",
    "HASHLEN",
    "KEYLEN",
    "KeyPair",
    "dh",
    "hash_",
    "hkdf2",
    "hkdf3",
    "hmac_blake2b",
    "validate_public_key",
]

DHLEN: Final = 32
"""Length of X25519 public keys, private keys and shared secrets."""
HASHLEN: Final = 64
"""Length of a BLAKE2b-512 digest, the Noise ``HASHLEN``."""
KEYLEN: Final = 32
"""Length of a ChaCha20-Poly1305 key."""

# PyNaCl ships no type information; pin the signatures we rely on so mypy --strict can check
# every call site instead of letting ``Any`` leak through the module.
_scalarmult: Callable[[bytes, bytes], bytes] = nacl.bindings.crypto_scalarmult
_scalarmult_base: Callable[[bytes], bytes] = nacl.bindings.crypto_scalarmult_base
_randombytes: Callable[[int], bytes] = nacl.bindings.randombytes

_P: Final = 2**255 - 19
_LOW_255_BITS: Final = (1 << 255) - 1

# u-coordinates (mod p) of the points of small order on Curve25519 and its twist: the same
# set libsodium blocks in crypto_scalarmult. A key whose u reduces to one of these makes any
# DH output predictable (all zero or one of a handful of values), so the peer could force
# the session key. X25519 ignores bit 255 and reduces mod p, so we do the same before the
# comparison; that also catches the non-canonical encodings p, p+1 and the high-bit variants.
_SMALL_ORDER_U: Final = frozenset(
    int.from_bytes(bytes.fromhex(h), "little") % _P
    for h in (
        "0000000000000000000000000000000000000000000000000000000000000000",  # 0
        "0100000000000000000000000000000000000000000000000000000000000000",  # 1
        "e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800",  # order 8
        "5f9c95bca3508c24b1d0b1559c83ef5b04445cc4581c8e86d8224eddd09f1157",  # order 8
        "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",  # p - 1
    )
)


def validate_public_key(key: bytes) -> bytes:
    """Return ``key`` if it is a usable X25519 public key, else raise InvalidKeyError.

    Rejects anything that is not exactly 32 ``bytes``, and every encoding of a low-order
    point (which includes all zeroes).
    """
    if type(key) is not bytes or len(key) != DHLEN:
        raise InvalidKeyError(f"public key must be {DHLEN} bytes")
    if (int.from_bytes(key, "little") & _LOW_255_BITS) % _P in _SMALL_ORDER_U:
        raise InvalidKeyError("public key is a low-order point")
    return key


def dh(private: bytes, public: bytes) -> bytes:
    """X25519(private, public); raises InvalidKeyError rather than return an all-zero secret."""
    # PyNaCl passes these buffers to C without checking their length: a short one would
    # be read past its end. Never let that happen, whatever the caller validated.
    if len(private) != DHLEN or len(public) != DHLEN:
        raise InvalidKeyError(f"X25519 keys are {DHLEN} bytes")
    try:
        return _scalarmult(private, public)
    except nacl.exceptions.CryptoError as exc:
        # libsodium refuses (returns -1) when the result is all zero, i.e. ``public`` has
        # small order. validate_public_key should have caught it; this is the backstop.
        raise InvalidKeyError("X25519 produced an all-zero shared secret") from exc


def hash_(data: bytes) -> bytes:
    """BLAKE2b-512 of ``data``."""
    return hashlib.blake2b(data).digest()


def hmac_blake2b(key: bytes, data: bytes) -> bytes:
    """HMAC (RFC 2104) over BLAKE2b-512 with its 128-byte block.

    Not keyed BLAKE2b: Noise's HKDF is defined on HMAC, and the test vectors only match it.
    """
    return hmac.new(key, data, hashlib.blake2b).digest()


def hkdf2(chaining_key: bytes, ikm: bytes) -> tuple[bytes, bytes]:
    """Noise HKDF with two outputs (each HASHLEN bytes)."""
    temp_key = hmac_blake2b(chaining_key, ikm)
    out1 = hmac_blake2b(temp_key, b"\x01")
    out2 = hmac_blake2b(temp_key, out1 + b"\x02")
    return out1, out2


def hkdf3(chaining_key: bytes, ikm: bytes) -> tuple[bytes, bytes, bytes]:
    """Noise HKDF with three outputs (each HASHLEN bytes)."""
    temp_key = hmac_blake2b(chaining_key, ikm)
    out1 = hmac_blake2b(temp_key, b"\x01")
    out2 = hmac_blake2b(temp_key, out1 + b"\x02")
    out3 = hmac_blake2b(temp_key, out2 + b"\x03")
    return out1, out2, out3


@dataclass(frozen=True)
class KeyPair:
    """An X25519 key pair. ``private`` is kept out of ``repr`` so it never reaches a log."""

    private: bytes = field(repr=False)
    public: bytes

    def __post_init__(self) -> None:
        if not all(type(k) is bytes and len(k) == DHLEN for k in (self.private, self.public)):
            raise InvalidKeyError(f"X25519 keys are {DHLEN} bytes")

    @classmethod
    def generate(cls) -> KeyPair:
        """A fresh key pair from libsodium's CSPRNG."""
        return cls.from_private(_randombytes(DHLEN))

    @classmethod
    def from_private(cls, private: bytes) -> KeyPair:
        """The key pair whose private key is ``private`` (32 bytes; clamped by X25519)."""
        if type(private) is not bytes or len(private) != DHLEN:
            raise InvalidKeyError(f"private key must be {DHLEN} bytes")
        return cls(private, _scalarmult_base(private))
