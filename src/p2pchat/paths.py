"""Where a profile's files live.

Every profile (``--profile NAME``, default ``default``) has a directory of its own under
``platformdirs.user_data_dir("p2pchat")/profiles/NAME``; ``P2PCHAT_HOME`` replaces that
root so tests and several instances on one machine stay apart. Directories are created
0700 because they hold keys and private conversations.

This module never reads or writes the files themselves; it only names and creates
directories.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import platformdirs

DEFAULT_PROFILE = "default"
HOME_ENV = "P2PCHAT_HOME"

# A profile name becomes a directory name: keep it to a safe, portable alphabet so a
# name can never climb out of the profiles folder or collide with a reserved name.
_PROFILE_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


class ProfileNameError(ValueError):
    """The profile name cannot be used as a directory name."""


def data_root() -> Path:
    """The root under which all profiles live (``P2PCHAT_HOME`` wins)."""
    override = os.environ.get(HOME_ENV)
    if override:
        return Path(override).expanduser()
    return Path(platformdirs.user_data_dir("p2pchat", appauthor=False))


def validate_profile_name(name: str) -> str:
    """Return ``name`` if it is a usable profile name, else raise ProfileNameError."""
    if not _PROFILE_RE.fullmatch(name) or name.endswith("."):
        raise ProfileNameError(
            f"invalid profile name {name!r}: use 1-64 letters, digits, '_', '-' or '.', "
            "starting with a letter or digit"
        )
    return name


def ensure_private_dir(path: Path) -> Path:
    """Create ``path`` (and parents) with mode 0700 and tighten it if it already exists."""
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    if path.stat().st_mode & 0o077:
        path.chmod(0o700)
    return path


def profile_dir(name: str = DEFAULT_PROFILE, *, create: bool = True) -> Path:
    """The directory of profile ``name``, created 0700 unless ``create`` is false."""
    path = data_root() / "profiles" / validate_profile_name(name)
    if create:
        ensure_private_dir(data_root())
        ensure_private_dir(path.parent)
        ensure_private_dir(path)
    return path


def default_downloads_dir() -> Path:
    """Where received files go unless the person chose another folder."""
    return Path(platformdirs.user_downloads_dir())
