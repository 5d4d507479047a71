"""Cryptography of p2pchat: the Noise protocol (``noise``) and its primitives.

Pure computation on bytes; nothing in this package may do I/O (enforced by import-linter).
"""

from p2pchat.crypto.noise import (
    DHLEN,
    MAX_MESSAGE_LEN,
    TAG_LEN,
    CipherState,
    DecryptError,
    HandshakeState,
    InvalidKeyError,
    KeyPair,
    MessageTooLargeError,
    NoiseError,
    NoiseProtocolError,
    NoiseStateError,
    NonceExhaustedError,
    protocol_name,
)

__all__ = [
    "DHLEN",
    "MAX_MESSAGE_LEN",
    "TAG_LEN",
    "CipherState",
    "DecryptError",
    "HandshakeState",
    "InvalidKeyError",
    "KeyPair",
    "MessageTooLargeError",
    "NoiseError",
    "NoiseProtocolError",
    "NoiseStateError",
    "NonceExhaustedError",
    "protocol_name",
]
