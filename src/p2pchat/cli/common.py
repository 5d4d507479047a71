"""Pieces every subcommand shares: common options, profile opening, error type."""

from __future__ import annotations

import argparse
import getpass
import sys

from p2pchat.identity import IdentityError
from p2pchat.paths import DEFAULT_PROFILE, ProfileNameError
from p2pchat.profile import Profile, open_profile, passphrase_from_env


class CliError(Exception):
    """A problem the person can fix; printed as one line, exit code ``exit_code``."""

    def __init__(self, message: str, exit_code: int = 1) -> None:
        super().__init__(message)
        self.exit_code = exit_code


def add_common(parser: argparse.ArgumentParser, *, suppress_defaults: bool) -> None:
    """Add ``--profile`` so it works before and after the subcommand name.

    Subparsers use SUPPRESS defaults, otherwise their default would overwrite a value
    given before the subcommand.
    """
    parser.add_argument(
        "--profile",
        metavar="NAME",
        default=argparse.SUPPRESS if suppress_defaults else DEFAULT_PROFILE,
        help="profile to use (default: %(default)s); each has its own identity and history",
    )


def ask_passphrase() -> str | None:
    """The passphrase from P2PCHAT_PASSPHRASE, or asked for on the terminal."""
    secret = passphrase_from_env()
    if secret is not None:
        return secret
    if not sys.stdin.isatty():
        return None
    return getpass.getpass("Passphrase for this profile: ")


def load_profile(args: argparse.Namespace) -> Profile:
    """Open the profile named on the command line, turning failures into CliError."""
    try:
        return open_profile(args.profile, ask_passphrase)
    except (IdentityError, ProfileNameError) as exc:
        raise CliError(str(exc)) from None
