"""Who a person is on the network: their keys, peer id, fingerprints and key file.

A profile has an Ed25519 *identity key*; its 32-byte public key is the **peer id** (shown
as 52 lowercase base32 characters, short form the first 8). Noise needs an X25519 static
key, and the Noise spec says that key should not be used outside Noise, so each profile
also has a separate *Noise static key* which the identity key certifies:
``sig = Ed25519(identity, b"p2pchat/noise-static/v1" || static_pub)``.

The key file holds both private keys, either in the clear (mode 0600) or sealed with a
passphrase (Argon2id + XSalsa20-Poly1305 SecretBox). When a passphrase is set the private
keys are never written unsealed.

The sealed part also holds the raw 32-byte key of the profile's encrypted store (a
random key, made when the passphrase is set and again at each change): one passphrase,
one Argon2id derivation, opens both, and one atomic write of this file commits a
passphrase change for both (see docs/architecture.md, "Encrypted store").

This module never touches the network, and never logs or prints a private key.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import functools
import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import nacl.exceptions
import nacl.public
import nacl.pwhash
import nacl.secret
import nacl.signing
import nacl.utils

from p2pchat.key_doc import KEY_FILE_VERSION, KeyDocFormatError, is_sealed_doc, read_key_doc

PEER_ID_LEN = 32
PEER_ID_CHARS = 52
SHORT_ID_CHARS = 8
STATIC_CERT_CONTEXT = b"p2pchat/noise-static/v1"
SAFETY_NUMBER_CONTEXT = b"p2pchat/safety-number/v1"
# Like Signal's fingerprint: many hash iterations make grinding for a colliding safety
# number (a second key pair that shows the same 60 digits) expensive.
SAFETY_NUMBER_ITERATIONS = 5200


class IdentityError(Exception):
    """Base class for identity and key-file problems; messages are meant for people."""


class WrongPassphraseError(IdentityError):
    """The passphrase did not open the sealed key file."""


class PassphraseRequiredError(IdentityError):
    """The key file is sealed and no passphrase was given."""


class KeyFileError(IdentityError):
    """The key file is unreadable, malformed or of an unknown version."""


class PeerIdError(ValueError):
    """A string is not a valid peer id."""


# --- peer ids -------------------------------------------------------------------------


def encode_peer_id(raw: bytes) -> str:
    """Lowercase unpadded base32 of a 32-byte public key (52 characters)."""
    if len(raw) != PEER_ID_LEN:
        raise PeerIdError(f"a peer id is {PEER_ID_LEN} bytes, got {len(raw)}")
    return base64.b32encode(raw).decode("ascii").rstrip("=").lower()


def decode_peer_id(text: str) -> bytes:
    """Parse a 52-character peer id; raise PeerIdError with a clear reason otherwise."""
    cleaned = text.strip().lower()
    if len(cleaned) != PEER_ID_CHARS:
        raise PeerIdError(f"a peer id has {PEER_ID_CHARS} characters, got {len(cleaned)}")
    try:
        raw = base64.b32decode(cleaned.upper() + "====")
    except (binascii.Error, ValueError) as exc:
        raise PeerIdError(f"not a peer id (base32 expected): {exc}") from None
    if encode_peer_id(raw) != cleaned:  # non-canonical trailing bits
        raise PeerIdError("not a canonical peer id")
    return raw


def short_id(peer_id: bytes | str) -> str:
    """The first 8 characters of the peer id: what people read aloud and type."""
    text = peer_id if isinstance(peer_id, str) else encode_peer_id(peer_id)
    return text[:SHORT_ID_CHARS]


# --- certificates ---------------------------------------------------------------------


def static_key_signing_bytes(static_public: bytes) -> bytes:
    """The bytes the identity key signs to certify a Noise static public key."""
    return STATIC_CERT_CONTEXT + static_public


def verify_static_key(peer_id: bytes, static_public: bytes, signature: bytes) -> bool:
    """True if ``signature`` by identity ``peer_id`` certifies ``static_public``."""
    if len(peer_id) != PEER_ID_LEN or len(signature) != 64 or len(static_public) != 32:
        return False
    return verify_signature(peer_id, static_key_signing_bytes(static_public), signature)


def verify_signature(peer_id: bytes, message: bytes, signature: bytes) -> bool:
    """Check an Ed25519 signature by ``peer_id``; any malformed input is simply invalid."""
    try:
        nacl.signing.VerifyKey(peer_id).verify(message, signature)
    except (nacl.exceptions.BadSignatureError, nacl.exceptions.ValueError, ValueError):
        return False
    except nacl.exceptions.CryptoError:
        return False
    return True


# --- safety numbers -------------------------------------------------------------------


def safety_number(a: bytes, b: bytes) -> str:
    """The 60-digit safety number of a pair of peers, 12 groups of 5 digits.

    Both sides compute the same number (the ids are sorted first); any other pair gives a
    different one with overwhelming probability.
    """
    if len(a) != PEER_ID_LEN or len(b) != PEER_ID_LEN:
        raise PeerIdError("safety numbers need two 32-byte peer ids")
    first, second = sorted((a, b))
    seed = SAFETY_NUMBER_CONTEXT + first + second
    digest = hashlib.sha512(seed).digest()
    for _ in range(SAFETY_NUMBER_ITERATIONS - 1):
        digest = hashlib.sha512(digest + seed).digest()
    groups = []
    for i in range(12):
        chunk = int.from_bytes(digest[i * 5 : i * 5 + 5], "big")
        groups.append(f"{chunk % 100000:05d}")
    return " ".join(groups)


# --- the identity itself --------------------------------------------------------------


@dataclass(frozen=True)
class Identity:
    """A profile's private keys. Never log or print an instance's private fields."""

    signing_seed: bytes
    noise_private: bytes

    @classmethod
    def generate(cls) -> Identity:
        """Fresh random identity and Noise static keys."""
        return cls(
            signing_seed=nacl.utils.random(32),
            noise_private=bytes(nacl.public.PrivateKey.generate()),
        )

    def __repr__(self) -> str:  # keep private keys out of logs and tracebacks
        return f"Identity(peer_id={self.peer_id_text!r})"

    # Deriving the key pair from the seed costs as much as a signature; every sent
    # message signs, so derive once. (cached_property writes the instance __dict__
    # directly, which a frozen dataclass without slots allows.)
    @functools.cached_property
    def _signing_key(self) -> nacl.signing.SigningKey:
        return nacl.signing.SigningKey(self.signing_seed)

    @functools.cached_property
    def peer_id(self) -> bytes:
        """The 32-byte Ed25519 public key."""
        return bytes(self._signing_key.verify_key)

    @property
    def peer_id_text(self) -> str:
        """The peer id as 52 base32 characters."""
        return encode_peer_id(self.peer_id)

    @property
    def noise_public(self) -> bytes:
        """The X25519 public half of the Noise static key."""
        return bytes(nacl.public.PrivateKey(self.noise_private).public_key)

    def sign(self, message: bytes) -> bytes:
        """A detached 64-byte Ed25519 signature of ``message``."""
        return bytes(self._signing_key.sign(message).signature)

    def static_key_signature(self) -> bytes:
        """The certificate of our Noise static key, sent in the handshake payload."""
        return self.sign(static_key_signing_bytes(self.noise_public))


# --- key file -------------------------------------------------------------------------


@dataclass(frozen=True)
class KdfParams:
    """Argon2id cost; the defaults follow libsodium's MODERATE level (256 MiB)."""

    opslimit: int = nacl.pwhash.argon2id.OPSLIMIT_MODERATE
    memlimit: int = nacl.pwhash.argon2id.MEMLIMIT_MODERATE


def _derive_key(passphrase: str, salt: bytes, params: KdfParams) -> bytes:
    return bytes(
        nacl.pwhash.argon2id.kdf(
            nacl.secret.SecretBox.KEY_SIZE,
            passphrase.encode("utf-8"),
            salt,
            opslimit=params.opslimit,
            memlimit=params.memlimit,
        )
    )


def passphrase_key(passphrase: str, salt: bytes, params: KdfParams) -> bytes:
    """The SecretBox key ``passphrase`` gives (Argon2id), for other sealed files (backups).

    The same derivation as the key file's, so one passphrase protects both the same way.
    """
    return _derive_key(passphrase, salt, params)


def _write_private_file(path: Path, data: bytes) -> None:
    """Write atomically with mode 0600: a crash leaves the old file or the new one."""
    tmp = path.with_name(path.name + ".tmp")
    with contextlib.suppress(FileNotFoundError):
        tmp.unlink()
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)


#: Bytes of a store key (the codec's raw 256-bit key; see store/db.py).
STORE_KEY_BYTES = 32


@dataclass(frozen=True)
class KeyFile:
    """What a key file holds: the identity and the keys of the profile's store.

    ``store_key`` is the key the store must be encrypted with (None: plain store).
    ``old_store_keys`` are keys it may still be under while a passphrase change or
    removal is finished (empty once it is): the store opens with any of them and is
    then re-keyed to ``store_key``.
    """

    identity: Identity
    store_key: bytes | None = None
    old_store_keys: tuple[bytes, ...] = ()
    #: The Argon2id cost the file is sealed with (None: unsealed); a re-seal keeps it.
    kdf: KdfParams | None = None

    def __repr__(self) -> str:  # keep keys out of logs and tracebacks
        encrypted = self.store_key is not None
        return f"KeyFile(peer_id={self.identity.peer_id_text!r}, encrypted_store={encrypted})"


def new_store_key() -> bytes:
    """A fresh random store key."""
    return nacl.utils.random(STORE_KEY_BYTES)


def save_identity(
    path: Path,
    identity: Identity,
    passphrase: str | None = None,
    kdf: KdfParams | None = None,
    *,
    store_key: bytes | None = None,
    old_store_keys: tuple[bytes, ...] = (),
) -> None:
    """Write the key file; sealed when a passphrase is given (never in the clear then).

    Store keys belong with a passphrase; one unsealed only while a removal finishes.
    """
    secret: dict[str, Any] = {
        "signing_seed": identity.signing_seed.hex(),
        "noise_private": identity.noise_private.hex(),
    }
    if store_key is not None:
        secret["store_key"] = store_key.hex()
    if old_store_keys:
        secret["old_store_keys"] = [k.hex() for k in old_store_keys]
    doc: dict[str, Any] = {"version": KEY_FILE_VERSION, "peer_id": identity.peer_id_text}
    if passphrase:
        params = kdf or KdfParams()
        salt = nacl.utils.random(nacl.pwhash.argon2id.SALTBYTES)
        box = nacl.secret.SecretBox(_derive_key(passphrase, salt, params))
        sealed = box.encrypt(json.dumps(secret).encode("utf-8"))
        doc["sealed"] = {
            "kdf": "argon2id",
            "opslimit": params.opslimit,
            "memlimit": params.memlimit,
            "salt": salt.hex(),
            "box": bytes(sealed).hex(),
        }
    else:
        doc["keys"] = secret
    _write_private_file(path, json.dumps(doc, indent=1).encode("utf-8"))


def is_sealed(path: Path) -> bool:
    """True if the key file at ``path`` needs a passphrase."""
    return is_sealed_doc(_read_doc(path))


def _read_doc(path: Path) -> dict[str, Any]:
    try:
        return read_key_doc(path)
    except OSError as exc:
        raise KeyFileError(f"cannot read key file {path}: {exc.strerror}") from None
    except KeyDocFormatError:
        raise KeyFileError(f"key file {path} has an unknown format or version") from None
    except ValueError:
        raise KeyFileError(f"key file {path} is damaged (not valid JSON)") from None


def load_identity(path: Path, passphrase: str | None = None) -> Identity:
    """Read the key file, opening it with ``passphrase`` when it is sealed."""
    return load_key_file(path, passphrase).identity


def load_key_file(path: Path, passphrase: str | None = None) -> KeyFile:
    """Read the key file (identity and store keys), opening it with ``passphrase``."""
    doc = _read_doc(path)
    params: KdfParams | None = None
    if "sealed" in doc:
        if not passphrase:
            raise PassphraseRequiredError(
                f"the key file {path} is protected by a passphrase; "
                "enter it when asked or set P2PCHAT_PASSPHRASE"
            )
        try:
            sealed = doc["sealed"]
            params = KdfParams(opslimit=int(sealed["opslimit"]), memlimit=int(sealed["memlimit"]))
            key = _derive_key(passphrase, bytes.fromhex(sealed["salt"]), params)
            box_bytes = bytes.fromhex(sealed["box"])
        except (KeyError, TypeError, ValueError):
            raise KeyFileError(f"key file {path} is damaged (sealed part)") from None
        try:
            plain = nacl.secret.SecretBox(key).decrypt(box_bytes)
        except nacl.exceptions.CryptoError:
            raise WrongPassphraseError("wrong passphrase") from None
        secret = json.loads(plain)
    else:
        secret = doc.get("keys")
    try:
        identity = Identity(
            signing_seed=bytes.fromhex(secret["signing_seed"]),
            noise_private=bytes.fromhex(secret["noise_private"]),
        )
    except (KeyError, TypeError, ValueError):
        raise KeyFileError(f"key file {path} is damaged (keys)") from None
    if len(identity.signing_seed) != 32 or len(identity.noise_private) != 32:
        raise KeyFileError(f"key file {path} is damaged (key length)")
    if doc.get("peer_id") not in (None, identity.peer_id_text):
        raise KeyFileError(f"key file {path} is damaged (peer id does not match the key)")
    try:
        store_key = bytes.fromhex(secret["store_key"]) if "store_key" in secret else None
        old = tuple(bytes.fromhex(k) for k in secret.get("old_store_keys", ()))
    except (TypeError, ValueError):
        raise KeyFileError(f"key file {path} is damaged (store keys)") from None
    if any(len(k) != STORE_KEY_BYTES for k in (*old, *([store_key] if store_key else []))):
        raise KeyFileError(f"key file {path} is damaged (store key length)")
    return KeyFile(identity, store_key, old, params)
