"""Noise Protocol Framework, ``Noise_*_25519_ChaChaPoly_BLAKE2b``, sans-I/O.

What it is for: the handshake and transport encryption of p2pchat (``Noise_XX`` with the
protocol version as prologue, see DESIGN.md "Wire protocol"), and any other supported
pattern for tests. Objects are fed bytes and hand back bytes, in the style of h11; framing
(the 2-byte length prefix), sockets, timeouts and retries belong to the caller.

What it must never do: I/O of any kind (sockets, files, asyncio, logging of secrets), or
let an exception other than a :class:`NoiseError` subclass escape for bad peer input.

A handshake, for the initiator of XX::

    hs = HandshakeState("XX", initiator=True, prologue=b"p2pchat/1", s=my_static)
    send(hs.write_message())           # -> e
    hs.read_message(recv())            # <- e, ee, s, es   (returns the peer's payload)
    send(hs.write_message(hello))      # -> s, se
    tx, rx = hs.split()                # CipherStates for the transport phase

Errors: :class:`NoiseProtocolError` (and subclasses) when the peer's bytes are bad, after
which the handshake is dead; :class:`NoiseStateError` when our own code calls out of turn.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from typing import Final

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305

from p2pchat.crypto.errors import (
    DecryptError,
    InvalidKeyError,
    MessageTooLargeError,
    NoiseError,
    NoiseProtocolError,
    NoiseStateError,
    NonceExhaustedError,
)
from p2pchat.crypto.patterns import Pattern, parse_pattern
from p2pchat.crypto.primitives import (
    DHLEN,
    HASHLEN,
    KEYLEN,
    KeyPair,
    dh,
    hash_,
    hkdf2,
    hkdf3,
    validate_public_key,
)

__all__ = [
    "DHLEN",
    "MAX_MESSAGE_LEN",
    "MAX_NONCE",
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

MAX_MESSAGE_LEN: Final = 65535
"""Largest Noise message (handshake or transport ciphertext), as the spec recommends."""
TAG_LEN: Final = 16
"""Poly1305 authentication tag length."""
MAX_NONCE: Final = 2**64 - 1
"""Reserved by the spec for rekey(); a CipherState refuses to use it for messages."""
_MAX_PLAINTEXT: Final = MAX_MESSAGE_LEN - TAG_LEN

_SUFFIX: Final = "_25519_ChaChaPoly_BLAKE2b"

# ChaChaPoly comes from OpenSSL (through ``cryptography``), everything else from libsodium
# (PyNaCl): the same cipher, byte for byte (the Noise vectors prove it), but OpenSSL's
# is ~2.5x faster on 64 KB messages (0.30 vs 0.76 s per GiB here), and bulk encryption is
# what bounds a file transfer. See docs/architecture.md, "Departures".
#
# The ChaChaPoly nonce is 4 zero bytes then the 64-bit counter little-endian; a precompiled
# Struct builds it in one C call on the hot path.
_pack_nonce: Final = struct.Struct("<4xQ").pack
_ZEROS32: Final = bytes(32)


def protocol_name(pattern: str) -> bytes:
    """The full protocol name, e.g. ``b"Noise_XX_25519_ChaChaPoly_BLAKE2b"``."""
    parse_pattern(pattern)  # reject names we cannot run
    return f"Noise_{pattern}{_SUFFIX}".encode("ascii")


class CipherState:
    """A ChaChaPoly key and its nonce counter: one direction of a Noise session.

    Unlike the spec's CipherState, an unkeyed one refuses to encrypt instead of passing
    plaintext through: the handshake handles the unkeyed case itself, so transport code can
    never send cleartext by accident. ``nonce`` may be set at construction (tests, resumed
    state); it advances by one per successful call.
    """

    __slots__ = ("_k", "_n")

    def __init__(self, key: bytes | None = None, *, nonce: int = 0) -> None:
        if key is not None and len(key) != KEYLEN:
            raise NoiseStateError(f"cipher key must be {KEYLEN} bytes")
        if not 0 <= nonce <= MAX_NONCE:
            raise NoiseStateError("nonce out of range")
        self._k = ChaCha20Poly1305(key) if key is not None else None
        self._n = nonce

    def __repr__(self) -> str:
        # Never show the key.
        return f"<CipherState has_key={self._k is not None} nonce={self._n}>"

    @property
    def has_key(self) -> bool:
        """True once a key is set (always true for CipherStates from split())."""
        return self._k is not None

    @property
    def nonce(self) -> int:
        """The counter the next encrypt/decrypt will use."""
        return self._n

    def encrypt(self, plaintext: bytes, ad: bytes = b"") -> bytes:
        """Encrypt and authenticate ``plaintext`` (≤ 65519 bytes) with associated data ``ad``."""
        k = self._k
        n = self._n
        if k is None:
            raise NoiseStateError("CipherState has no key")
        if n >= MAX_NONCE:
            raise NonceExhaustedError("nonce exhausted; start a new session")
        if len(plaintext) > _MAX_PLAINTEXT:
            raise MessageTooLargeError(
                f"plaintext of {len(plaintext)} bytes exceeds {_MAX_PLAINTEXT}"
            )
        ciphertext = k.encrypt(_pack_nonce(n), plaintext, ad)
        self._n = n + 1
        return ciphertext

    def decrypt(self, ciphertext: bytes, ad: bytes = b"") -> bytes:
        """Authenticate and decrypt; DecryptError (nonce unchanged) if anything is off."""
        k = self._k
        n = self._n
        if k is None:
            raise NoiseStateError("CipherState has no key")
        if n >= MAX_NONCE:
            raise NonceExhaustedError("nonce exhausted; start a new session")
        size = len(ciphertext)
        if size > MAX_MESSAGE_LEN:
            raise MessageTooLargeError(f"ciphertext of {size} bytes exceeds {MAX_MESSAGE_LEN}")
        if size < TAG_LEN:
            raise DecryptError("ciphertext shorter than the authentication tag")
        try:
            plaintext = k.decrypt(_pack_nonce(n), ciphertext, ad)
        except InvalidTag:
            raise DecryptError("authentication failed") from None
        # Advance only now: a forged or corrupted message must not desynchronise the session.
        self._n = n + 1
        return plaintext

    def rekey(self) -> None:
        """Replace the key with ENCRYPT(k, 2**64-1, "", zeros)[:32] (spec 4.2); nonce unchanged."""
        k = self._k
        if k is None:
            raise NoiseStateError("CipherState has no key")
        self._k = ChaCha20Poly1305(k.encrypt(_pack_nonce(MAX_NONCE), _ZEROS32, None)[:KEYLEN])


class _SymmetricState:
    """Chaining key, handshake hash and the handshake's CipherState (spec section 5.2)."""

    __slots__ = ("cipher", "ck", "h")

    def __init__(self, name: bytes) -> None:
        self.h = name.ljust(HASHLEN, b"\x00") if len(name) <= HASHLEN else hash_(name)
        self.ck = self.h
        self.cipher = CipherState()

    def mix_key(self, ikm: bytes) -> None:
        self.ck, temp_k = hkdf2(self.ck, ikm)
        self.cipher = CipherState(temp_k[:KEYLEN])

    def mix_hash(self, data: bytes) -> None:
        self.h = hash_(self.h + data)

    def mix_key_and_hash(self, ikm: bytes) -> None:
        self.ck, temp_h, temp_k = hkdf3(self.ck, ikm)
        self.mix_hash(temp_h)
        self.cipher = CipherState(temp_k[:KEYLEN])

    def encrypt_and_hash(self, plaintext: bytes) -> bytes:
        ciphertext = self.cipher.encrypt(plaintext, self.h) if self.cipher.has_key else plaintext
        self.mix_hash(ciphertext)
        return ciphertext

    def decrypt_and_hash(self, ciphertext: bytes) -> bytes:
        plaintext = self.cipher.decrypt(ciphertext, self.h) if self.cipher.has_key else ciphertext
        self.mix_hash(ciphertext)
        return plaintext

    def split(self) -> tuple[CipherState, CipherState]:
        temp_k1, temp_k2 = hkdf2(self.ck, b"")
        return CipherState(temp_k1[:KEYLEN]), CipherState(temp_k2[:KEYLEN])


class HandshakeState:
    """One side of a Noise handshake, driven by the pattern table.

    ``s`` is our static key pair, ``rs`` the peer's static public key when the pattern
    pre-shares it (IK, NK, KK...), ``e`` a fixed ephemeral for tests only (normally a fresh
    one is generated), ``re`` a pre-shared remote ephemeral (no supported pattern uses one).
    ``psks`` are the 32-byte pre-shared keys for ``pskN`` patterns, in token order.
    Missing or superfluous keys raise NoiseStateError here rather than mid-handshake.
    """

    def __init__(
        self,
        pattern: str,
        *,
        initiator: bool,
        prologue: bytes = b"",
        s: KeyPair | None = None,
        e: KeyPair | None = None,
        rs: bytes | None = None,
        re: bytes | None = None,
        psks: Sequence[bytes] = (),
    ) -> None:
        self._pattern: Pattern = parse_pattern(pattern)
        self._initiator = initiator
        self._s = s
        self._e = e
        self._rs = None if rs is None else validate_public_key(rs)
        self._re = None if re is None else validate_public_key(re)
        self._psks = list(psks)
        self._psk_mode = self._pattern.psk_count > 0
        self._check_keys()

        self._ss = _SymmetricState(protocol_name(pattern))
        self._ss.mix_hash(prologue)
        # Pre-messages: the initiator's first, then the responder's (spec 5.3, Initialize).
        for pre, local in (
            (self._pattern.initiator_pre, initiator),
            (self._pattern.responder_pre, not initiator),
        ):
            for tok in pre:
                key = self._pre_key(tok, local=local)
                self._ss.mix_hash(key)
                if tok == "e" and self._psk_mode:
                    self._ss.mix_key(key)
        self._index = 0  # next message of the pattern
        self._failed = False
        self._result: tuple[CipherState, CipherState] | None = None

    # -- set-up ----------------------------------------------------------------------

    def _sent_by_us(self, i: int) -> bool:
        return (i % 2 == 0) == self._initiator

    def _check_keys(self) -> None:
        p = self._pattern
        ours = p.initiator_pre if self._initiator else p.responder_pre
        theirs = p.responder_pre if self._initiator else p.initiator_pre
        we_send_s = "s" in ours or any(
            "s" in m for i, m in enumerate(p.messages) if self._sent_by_us(i)
        )
        if we_send_s and self._s is None:
            raise NoiseStateError(f"pattern {p.name} needs our static key pair (s=)")
        if "e" in ours and self._e is None:
            raise NoiseStateError(f"pattern {p.name} needs our pre-shared ephemeral (e=)")
        for tok, value, arg in (("s", self._rs, "rs"), ("e", self._re, "re")):
            if (tok in theirs) != (value is not None):
                raise NoiseStateError(
                    f"pattern {p.name} {'needs' if value is None else 'does not pre-share'} "
                    f"the remote key {arg}="
                )
        if len(self._psks) != p.psk_count:
            raise NoiseStateError(f"pattern {p.name} needs {p.psk_count} psks")
        if any(type(k) is not bytes or len(k) != 32 for k in self._psks):
            raise NoiseStateError("psks must be 32 bytes each")

    def _pre_key(self, tok: str, *, local: bool) -> bytes:
        if local:
            pair = self._s if tok == "s" else self._e
            assert pair is not None  # guaranteed by _check_keys
            return pair.public
        remote = self._rs if tok == "s" else self._re
        assert remote is not None
        return remote

    # -- state -----------------------------------------------------------------------

    @property
    def is_complete(self) -> bool:
        """True once every handshake message has been written or read."""
        return self._result is not None

    @property
    def handshake_hash(self) -> bytes:
        """The handshake hash ``h``: final (for channel binding) once is_complete."""
        return self._ss.h

    @property
    def remote_static(self) -> bytes | None:
        """The peer's static public key, once pre-shared or received; None after a failure.

        Some patterns send it before proving it (IN/IX message 1, deferred patterns):
        rely on it for authentication only once is_complete.
        """
        return None if self._failed else self._rs

    @property
    def is_our_turn(self) -> bool:
        """True if the next handshake step is write_message() rather than read_message()."""
        return self._result is None and self._sent_by_us(self._index)

    def split(self) -> tuple[CipherState, CipherState]:
        """(send, receive) CipherStates for our role. For one-way patterns only the
        initiator's send / the responder's receive cipher is meaningful."""
        if self._result is None:
            raise NoiseStateError("handshake not complete")
        return self._result

    def _check_turn(self, writing: bool) -> None:
        if self._failed:
            raise NoiseStateError("handshake already failed; start a new one")
        if self._result is not None:
            raise NoiseStateError("handshake already complete; use split()")
        if self._sent_by_us(self._index) != writing:
            raise NoiseStateError(
                "not our turn to write" if writing else "our turn to write, not to read"
            )

    def _advance(self) -> None:
        self._index += 1
        if self._index == len(self._pattern.messages):
            c1, c2 = self._ss.split()
            self._result = (c1, c2) if self._initiator else (c2, c1)
            # Ephemeral private keys are not needed any more; drop our references.
            self._e = None

    def _dh(self, tok: str) -> bytes:
        # "es" is DH(initiator e, responder s): which side is local flips with our role.
        first, second = tok[0], tok[1]
        if not self._initiator:
            first, second = second, first
        local = self._e if first == "e" else self._s
        remote = self._re if second == "e" else self._rs
        assert local is not None
        assert remote is not None
        return dh(local.private, remote)

    def _overhead(self) -> int:
        """Bytes the next message adds to its payload (keys and tags), from the tokens."""
        has_key = self._ss.cipher.has_key
        size = 0
        for tok in self._pattern.messages[self._index]:
            if tok == "e":
                size += DHLEN
                has_key = has_key or self._psk_mode
            elif tok == "s":
                size += DHLEN + (TAG_LEN if has_key else 0)
            else:  # ee, es, se, ss, psk all call MixKey
                has_key = True
        return size + (TAG_LEN if has_key else 0)

    # -- messages --------------------------------------------------------------------

    def write_message(self, payload: bytes = b"") -> bytes:
        """Produce our next handshake message carrying ``payload``."""
        self._check_turn(writing=True)
        size = self._overhead() + len(payload)
        if size > MAX_MESSAGE_LEN:
            # Checked before any state changes, so a smaller payload can still be sent.
            raise MessageTooLargeError(f"handshake message of {size} bytes")
        try:
            out = bytearray()
            for tok in self._pattern.messages[self._index]:
                if tok == "e":
                    if self._e is None:
                        self._e = KeyPair.generate()
                    out += self._e.public
                    self._ss.mix_hash(self._e.public)
                    if self._psk_mode:
                        self._ss.mix_key(self._e.public)
                elif tok == "s":
                    assert self._s is not None
                    out += self._ss.encrypt_and_hash(self._s.public)
                elif tok == "psk":
                    self._ss.mix_key_and_hash(self._psks.pop(0))
                else:
                    self._ss.mix_key(self._dh(tok))
            out += self._ss.encrypt_and_hash(payload)
        except BaseException:
            self._failed = True
            raise
        self._advance()
        return bytes(out)

    def read_message(self, message: bytes) -> bytes:
        """Consume the peer's next handshake message and return its payload.

        Any error other than NoiseStateError leaves the handshake dead: later calls raise
        NoiseStateError and the connection should be closed.
        """
        self._check_turn(writing=False)
        try:
            if len(message) > MAX_MESSAGE_LEN:
                raise MessageTooLargeError(f"handshake message of {len(message)} bytes")
            # No up-front minimum-length check: every slice below is validated (a short key
            # is an InvalidKeyError, a short ciphertext a DecryptError), which names the
            # actual problem.
            data = bytes(message)  # no copy when already bytes
            pos = 0
            for tok in self._pattern.messages[self._index]:
                if tok == "e":
                    self._re = validate_public_key(data[pos : pos + DHLEN])
                    pos += DHLEN
                    self._ss.mix_hash(self._re)
                    if self._psk_mode:
                        self._ss.mix_key(self._re)
                elif tok == "s":
                    n = DHLEN + (TAG_LEN if self._ss.cipher.has_key else 0)
                    rs = self._ss.decrypt_and_hash(data[pos : pos + n])
                    pos += n
                    self._rs = validate_public_key(rs)
                elif tok == "psk":
                    self._ss.mix_key_and_hash(self._psks.pop(0))
                else:
                    self._ss.mix_key(self._dh(tok))
            payload = self._ss.decrypt_and_hash(data[pos:])
        except BaseException:
            # Noise handshakes cannot recover from a bad message: the transcript hash
            # already absorbed part of it. Refuse further use.
            self._failed = True
            raise
        self._advance()
        return payload
