"""``p2pchat`` with no subcommand: open the chat app (Textual TUI) for the profile."""

from __future__ import annotations

import argparse

from p2pchat.cli.common import CliError, load_profile, node_config_from_args


def cmd_app(args: argparse.Namespace) -> int:
    """Open the profile and run the app until the person quits."""
    profile = load_profile(args)
    try:
        from p2pchat.ui.run import run_app
    except ImportError as exc:  # pragma: no cover - a broken install
        raise CliError(f"the chat app is not available: {exc}") from None
    return run_app(profile, node_config_from_args(args))
