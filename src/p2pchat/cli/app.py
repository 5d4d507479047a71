"""``p2pchat`` with no subcommand: open the chat app (Textual TUI) for the profile.

The app paints its first frame before the node's modules load (issue 12), so this
module hands it a :class:`~p2pchat.ui.launch.Launch` whose ``build`` opens the profile
and makes the node in the app's worker thread. A sealed key file is the exception: its
passphrase is asked for here on the terminal first (the app owns the terminal once it
runs), three tries, exactly as every other subcommand does.
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from p2pchat.cli.common import CliError, load_profile, node_config_from_args
from p2pchat.key_doc import KEY_FILE, is_sealed_doc, read_key_doc
from p2pchat.paths import ProfileNameError, profile_dir

if TYPE_CHECKING:
    from p2pchat.node import Node
    from p2pchat.profile import Profile


def needs_passphrase(args: argparse.Namespace) -> bool:
    """Whether the profile's key file is sealed (or cannot be read: then the terminal
    path below reports it as every subcommand does)."""
    try:
        key_path = profile_dir(args.profile) / KEY_FILE
        if not key_path.exists():
            return False  # a new profile: made in the app's thread
        return is_sealed_doc(read_key_doc(key_path))
    except (OSError, ValueError, ProfileNameError):
        return True


def cmd_app(args: argparse.Namespace) -> int:
    """Open the profile and run the app until the person quits."""
    try:
        from p2pchat.ui.launch import Launch, LaunchError
        from p2pchat.ui.run import run_app
    except ImportError as exc:  # pragma: no cover - a broken install
        raise CliError(f"the chat app is not available: {exc}") from None
    opened: Profile | None = load_profile(args) if needs_passphrase(args) else None

    def build() -> Node:  # in the app's worker thread
        from p2pchat.node import Node

        try:
            profile = opened if opened is not None else load_profile(args, ask=False)
        except CliError as exc:
            raise LaunchError(str(exc)) from None
        return Node(profile, node_config_from_args(args))

    return run_app(Launch(profile_dir(args.profile), build))
