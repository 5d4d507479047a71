"""Pieces every subcommand shares: common options, profile opening, error type.

Light at import (the node and PyNaCl load inside the functions that need them):
``p2pchat`` with no subcommand parses its options with these before the app's first
frame (issue 12).
"""

from __future__ import annotations

import argparse
import getpass
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from p2pchat.hostport import parse_host_port
from p2pchat.paths import DEFAULT_PROFILE, ProfileNameError

if TYPE_CHECKING:
    from p2pchat.node.config import NodeConfig
    from p2pchat.profile import Profile

#: How often a passphrase typed on the terminal may be wrong before giving up.
PASSPHRASE_TRIES = 3
#: Said when the passphrase was wrong for good: what a forgotten one means.
FORGOTTEN = (
    "Nothing was changed or lost. If you forgot the passphrase, there is no way to "
    "recover it: this profile's key and history stay locked. You can start afresh with "
    "another profile (--profile NAME), which gets a new identity."
)


class CliError(Exception):
    """A problem the person can fix; printed as one line, exit code ``exit_code``.

    ``details`` are further lines below it (candidates for an ambiguous name). Each line
    is escaped when printed, so a peer's name in a message never starts a line of its own.
    """

    def __init__(self, message: str, exit_code: int = 1, *, details: Sequence[str] = ()) -> None:
        super().__init__(message)
        self.exit_code = exit_code
        self.details = tuple(details)


def add_common(parser: argparse.ArgumentParser, *, suppress_defaults: bool) -> None:
    """Add ``--profile`` so it works before and after the subcommand name.

    Subparsers use SUPPRESS defaults, otherwise their default would overwrite a value
    given before the subcommand.
    """
    parser.add_argument(
        "--profile",
        metavar="NAME",
        default=argparse.SUPPRESS if suppress_defaults else DEFAULT_PROFILE,
        # Not %(default)s: under a subcommand the default is SUPPRESS, which help cannot show.
        help=f"profile to use (default: {DEFAULT_PROFILE}); each has its own identity and history",
    )


def command_hint(profile: str, rest: str) -> str:
    """A command for the person to copy: it names the profile unless it is the default,
    so with several profiles on one machine the hint acts on the right one."""
    prefix = "p2pchat" if profile == DEFAULT_PROFILE else f"p2pchat --profile {profile}"
    return f"{prefix} {rest}"


def ask_passphrase() -> str | None:
    """The passphrase from P2PCHAT_PASSPHRASE, or asked for on the terminal."""
    from p2pchat.profile import passphrase_from_env

    secret = passphrase_from_env()
    if secret is not None:
        return secret
    if not sys.stdin.isatty():
        return None
    return getpass.getpass("Passphrase for this profile: ")


def _not_asked() -> str | None:
    raise CliError("this profile's key was just sealed with a passphrase: start p2pchat again")


def load_profile(args: argparse.Namespace, *, ask: bool = True) -> Profile:
    """Open the profile named on the command line, turning failures into CliError.

    A passphrase typed on the terminal may be mistyped: it is asked again, up to
    PASSPHRASE_TRIES times. One from P2PCHAT_PASSPHRASE is wrong for good: it fails
    at once, saying where it came from. ``ask=False`` (the app's thread, where the
    terminal is the app's) never asks: a sealed key file is an error.
    """
    from p2pchat.identity import IdentityError, WrongPassphraseError
    from p2pchat.profile import PASSPHRASE_ENV, open_profile, passphrase_from_env

    for attempt in range(1, PASSPHRASE_TRIES + 1):
        try:
            return open_profile(args.profile, ask_passphrase if ask else _not_asked)
        except WrongPassphraseError as exc:
            if passphrase_from_env() is not None:
                raise CliError(f"{exc} (from {PASSPHRASE_ENV})") from None
            if not sys.stdin.isatty() or attempt == PASSPHRASE_TRIES:
                tries = "1 try" if attempt == 1 else f"{attempt} tries"
                raise CliError(f"{exc} ({tries})", details=[FORGOTTEN]) from None
            print(
                f"Wrong passphrase, try again ({PASSPHRASE_TRIES - attempt} left).", file=sys.stderr
            )
        except (IdentityError, ProfileNameError) as exc:
            raise CliError(str(exc)) from None
    raise AssertionError("unreachable")  # the loop returns or raises


def _host_port(text: str) -> tuple[str, int]:
    try:
        return parse_host_port(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _port(text: str) -> int:
    try:
        port = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number") from None
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError("a port is between 0 and 65535 (0 = any free port)")
    return port


def add_node_options(parser: argparse.ArgumentParser, *, suppress_defaults: bool = True) -> None:
    """Options shared by everything that runs a node (``serve``, the app, ``send``).

    They work before and after the subcommand's name: under a subcommand the defaults
    are SUPPRESS, so an option given before the name is not overwritten by the
    subcommand's default (``p2pchat --no-mdns serve`` must not announce).
    """

    def default(value: object) -> object:
        return argparse.SUPPRESS if suppress_defaults else value

    parser.add_argument(
        "--port",
        type=_port,
        default=default(0),
        help="TCP port to listen on (default: a free port, announced over mDNS)",
    )
    parser.add_argument(
        "--peer",
        dest="peer_addresses",
        type=_host_port,
        action="append",
        default=default([]),
        metavar="HOST:PORT",
        help="also connect to this address (repeatable); for networks without multicast",
    )
    parser.add_argument(
        "--no-announce",
        action="store_true",
        default=default(False),
        help="do not announce yourself over mDNS, and tell your name only to contacts and "
        "room members (you still see others and can be added)",
    )
    parser.add_argument(
        "--no-mdns",
        action="store_true",
        default=default(False),
        help="no mDNS at all: neither announce nor look for peers (use --peer and "
        "known addresses only, e.g. where multicast is blocked)",
    )
    parser.add_argument(
        "--interface",
        action="append",
        default=default([]),
        metavar="NAME_OR_IP",
        help="use only this network interface for discovery (repeatable), e.g. eth0",
    )
    parser.add_argument(
        "--download-dir",
        type=_folder,
        default=default(None),
        metavar="FOLDER",
        help="save received files here from now on (kept in the profile; default: your "
        "Downloads folder)",
    )
    tor = parser.add_mutually_exclusive_group()
    tor.add_argument(
        "--tor",
        dest="tor",
        action="store_const",
        const=True,
        default=default(None),
        help="also reach contacts beyond the LAN through Tor onion services (remembered "
        "for this profile; needs the `tor` program)",
    )
    tor.add_argument(
        "--no-tor",
        dest="tor",
        action="store_const",
        const=False,
        default=default(None),
        help="stop using Tor for this profile (remembered)",
    )
    parser.add_argument(
        "--tor-control",
        type=_control_port,
        default=default(None),
        metavar="HOST:PORT",
        help="use the tor already running with this control port instead of starting one",
    )


def _control_port(text: str) -> str:
    host, port = _host_port(text)
    return f"{host}:{port}"


def _folder(text: str) -> str:
    path = Path(text).expanduser()
    if path.exists() and not path.is_dir():
        raise argparse.ArgumentTypeError(f"{text} exists and is not a folder")
    return str(path.resolve())


def node_config_from_args(args: argparse.Namespace) -> NodeConfig:
    """The NodeConfig the node options on the command line ask for."""
    from p2pchat.node.config import NodeConfig

    return NodeConfig(
        port=getattr(args, "port", 0),
        peers=tuple(getattr(args, "peer_addresses", []) or ()),
        announce=not getattr(args, "no_announce", False),
        discovery=not getattr(args, "no_mdns", False),
        interfaces=tuple(getattr(args, "interface", []) or ()),
        download_dir=getattr(args, "download_dir", None),
        tor=getattr(args, "tor", None),
        tor_control=getattr(args, "tor_control", None),
    )
