"""A profile on disk: its directory, identity key file and display name.

One person may run several profiles (``--profile``) on one machine; each is a directory
holding ``identity.key`` (0600), ``profile.json`` (the display name, not secret), the
SQLite store and the control socket. This module ties ``paths`` and ``identity``
together so every entry point (CLI, TUI, ``serve``) opens a profile the same way.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from p2pchat.identity import (
    Identity,
    KdfParams,
    KeyFile,
    load_key_file,
    new_store_key,
    save_identity,
)
from p2pchat.identity import is_sealed as key_file_is_sealed
from p2pchat.key_doc import KEY_FILE
from p2pchat.paths import DEFAULT_PROFILE, profile_dir

PROFILE_FILE = "profile.json"
STORE_FILE = "store.sqlite3"
CONTROL_SOCKET = "control.sock"
PASSPHRASE_ENV = "P2PCHAT_PASSPHRASE"  # noqa: S105 - a variable name, not a secret
MAX_DISPLAY_NAME = 64
#: profile.json key set once the profile's store holds a schema: from then on a missing
#: or empty store file is damage, never a new profile.
STORE_MARK = "store"

PassphraseSource = Callable[[], str | None]


def passphrase_from_env() -> str | None:
    """The passphrase from ``P2PCHAT_PASSPHRASE`` (for scripts), if set."""
    return os.environ.get(PASSPHRASE_ENV) or None


def clean_display_name(name: str) -> str:
    """Trim a display name and drop control characters; raise ValueError when empty.

    Control characters are removed (not escaped) so a name can never move the cursor
    or rewrite a terminal line wherever it is shown.
    """
    cleaned = "".join(ch for ch in name if ch.isprintable()).strip()
    if not cleaned:
        raise ValueError("a display name needs at least one visible character")
    return cleaned[:MAX_DISPLAY_NAME]


@dataclass
class Profile:
    """An opened profile: its directory, keys and display name."""

    name: str
    directory: Path
    identity: Identity
    display_name: str
    created: bool = field(default=False)
    #: Raw key of the encrypted store (None: no passphrase, plain store); from the key
    #: file, never logged (repr=False).
    store_key: bytes | None = field(default=None, repr=False)
    #: Keys the store may still be under after an interrupted passphrase change.
    old_store_keys: tuple[bytes, ...] = field(default=(), repr=False)
    #: The passphrase the key file is sealed with, kept so the key file can be rewritten
    #: (dropping old store keys) after the store settled; None without one.
    passphrase: str | None = field(default=None, repr=False)
    #: The Argon2id cost of the key file's seal (None: unsealed): re-seals keep it.
    kdf: KdfParams | None = field(default=None, repr=False)

    @property
    def store_path(self) -> Path:
        """The SQLite store of this profile."""
        return self.directory / STORE_FILE

    @property
    def control_path(self) -> Path:
        """The Unix socket of a running node of this profile."""
        return self.directory / CONTROL_SOCKET

    @property
    def has_display_name(self) -> bool:
        """False until the person chose a name (the TUI asks on first run)."""
        return bool(self._read_meta().get("name"))

    def set_display_name(self, name: str) -> str:
        """Store a new display name (cleaned); return it as stored."""
        self.display_name = clean_display_name(name)
        meta = self._read_meta()
        meta["name"] = self.display_name
        _write_meta(self.directory, meta)
        return self.display_name

    @property
    def store_expected(self) -> bool:
        """True when this profile had a store, so a missing or empty one must be refused.

        A profile whose key was just made never had one. Profiles from before the mark
        count as having one when the file exists (a 0-byte file beside an old key is the
        damage this guards against) and as new otherwise (``p2pchat id`` makes only the
        key).
        """
        if self.created:
            return False
        return bool(self._read_meta().get(STORE_MARK)) or self.store_path.exists()

    def mark_store_created(self) -> None:
        """Record that this profile has a store (see :attr:`store_expected`)."""
        record_store_created(self.directory)

    def _read_meta(self) -> dict[str, str]:
        return read_profile_meta(self.directory)


def record_store_created(directory: Path) -> None:
    """Mark the profile in ``directory`` as one that has a store (repair, restore)."""
    meta = read_profile_meta(directory)
    if meta.get(STORE_MARK):
        return
    meta[STORE_MARK] = "created"
    _write_meta(directory, meta)


def _write_meta(directory: Path, meta: dict[str, str]) -> None:
    """Write profile.json (0600) atomically: a crash leaves the old file or the new one."""
    path = directory / PROFILE_FILE
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, json.dumps(meta).encode("utf-8"))
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)


def read_profile_meta(directory: Path) -> dict[str, str]:
    """The profile's non-secret settings; a damaged file counts as empty."""
    try:
        meta = json.loads((directory / PROFILE_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return {k: v for k, v in meta.items() if isinstance(k, str) and isinstance(v, str)}


def open_profile(
    name: str = DEFAULT_PROFILE,
    passphrase: PassphraseSource = passphrase_from_env,
) -> Profile:
    """Open (creating on first use) the profile ``name``.

    ``passphrase`` is only called when the key file is sealed, so people without a
    passphrase are never asked for one.
    """
    directory = profile_dir(name)
    key_path = directory / KEY_FILE
    created = False
    secret: str | None = None
    if key_path.exists():
        secret = passphrase() if key_file_is_sealed(key_path) else None
        keys = load_key_file(key_path, secret)
        if secret is not None and keys.store_key is None:
            # Sealed by a p2pchat from before encrypted stores: give it a store key now;
            # the store is encrypted with it at its next open (Store.open settles it).
            keys = KeyFile(keys.identity, new_store_key(), keys.old_store_keys, keys.kdf)
            save_identity(
                key_path,
                keys.identity,
                secret,
                keys.kdf,
                store_key=keys.store_key,
                old_store_keys=keys.old_store_keys,
            )
    else:
        keys = KeyFile(Identity.generate())
        save_identity(key_path, keys.identity)
        created = True
    meta = read_profile_meta(directory)
    display_name = meta.get("name") or name
    return Profile(
        name,
        directory,
        keys.identity,
        display_name,
        created,
        store_key=keys.store_key,
        old_store_keys=keys.old_store_keys,
        passphrase=secret,
        kdf=keys.kdf,
    )


def write_key_file(
    profile: Profile,
    passphrase: str | None,
    store_key: bytes | None,
    old_store_keys: tuple[bytes, ...] = (),
    kdf: KdfParams | None = None,
) -> None:
    """Rewrite the key file (atomically): sealed with ``passphrase`` (None: unsealed),
    holding the store's key and any key it may still be under. ``kdf``: the Argon2id
    cost (default: the file's present one, else libsodium's MODERATE).

    This one write is the commit point of a passphrase set/change/remove: the store
    follows whatever the key file says at the next open (see Store.open).
    """
    kdf = (kdf or profile.kdf or KdfParams()) if passphrase else None
    save_identity(
        profile.directory / KEY_FILE,
        profile.identity,
        passphrase,
        kdf,
        store_key=store_key,
        old_store_keys=old_store_keys,
    )
    profile.passphrase = passphrase
    profile.kdf = kdf
    profile.store_key = store_key
    profile.old_store_keys = old_store_keys


def forget_old_store_keys(profile: Profile) -> None:
    """Drop the keys an interrupted change left in the key file, once the store is on
    ``store_key`` (it was opened with it): an unsealed file then holds no key at all."""
    if profile.old_store_keys:
        write_key_file(profile, profile.passphrase, profile.store_key)
