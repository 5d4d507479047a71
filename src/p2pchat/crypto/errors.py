"""Exception hierarchy of the Noise layer.

Two families, as in h11: :class:`NoiseProtocolError` means the *peer* sent something
invalid (the connection should be dropped and the reason logged), :class:`NoiseStateError`
means *our* code called the API wrongly (a bug to fix, never the peer's fault). Everything
raised on purpose by :mod:`p2pchat.crypto` derives from :class:`NoiseError`.

This module must never import anything that performs I/O.
"""

from __future__ import annotations

__all__ = [
    "DecryptError",
    "InvalidKeyError",
    "MessageTooLargeError",
    "NoiseError",
    "NoiseProtocolError",
    "NoiseStateError",
    "NonceExhaustedError",
]


class NoiseError(Exception):
    """Base class of every error raised by the Noise layer."""


class NoiseProtocolError(NoiseError):
    """The peer broke the protocol (bad MAC, bad key, bad length)."""


class DecryptError(NoiseProtocolError):
    """Authenticated decryption failed: tampered, replayed, reordered or foreign data."""


class InvalidKeyError(NoiseProtocolError):
    """A public key has the wrong length, is all zero or is a low-order point."""


class MessageTooLargeError(NoiseError):
    """A Noise message or ciphertext would exceed 65535 bytes."""


class NonceExhaustedError(NoiseError):
    """The cipher's nonce counter reached 2**64-1; the session must be replaced."""


class NoiseStateError(NoiseError):
    """We misused the API (out-of-turn write, split before completion, missing key...)."""
