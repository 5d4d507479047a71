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

from p2pchat.identity import Identity, load_identity, save_identity
from p2pchat.identity import is_sealed as key_file_is_sealed
from p2pchat.paths import DEFAULT_PROFILE, profile_dir

KEY_FILE = "identity.key"
PROFILE_FILE = "profile.json"
STORE_FILE = "store.sqlite3"
CONTROL_SOCKET = "control.sock"
PASSPHRASE_ENV = "P2PCHAT_PASSPHRASE"  # noqa: S105 - a variable name, not a secret
MAX_DISPLAY_NAME = 64

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
        path = self.directory / PROFILE_FILE
        path.write_text(json.dumps(meta), encoding="utf-8")
        path.chmod(0o600)
        return self.display_name

    def _read_meta(self) -> dict[str, str]:
        return read_profile_meta(self.directory)


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
    if key_path.exists():
        secret = passphrase() if key_file_is_sealed(key_path) else None
        identity = load_identity(key_path, secret)
    else:
        identity = Identity.generate()
        save_identity(key_path, identity)
        created = True
    meta = read_profile_meta(directory)
    display_name = meta.get("name") or name
    return Profile(name, directory, identity, display_name, created)


def set_passphrase(profile: Profile, new_passphrase: str | None) -> None:
    """Seal the key file with ``new_passphrase``, or store it unsealed when None."""
    save_identity(profile.directory / KEY_FILE, profile.identity, new_passphrase)
