"""``p2pchat id`` and ``p2pchat passphrase``: who am I, and how my key is protected."""

from __future__ import annotations

import argparse
import getpass
import sys
from typing import Any

from p2pchat.cli.common import CliError, load_profile
from p2pchat.cli.output import print_json, say
from p2pchat.identity import short_id
from p2pchat.profile import set_passphrase


def register(subs: Any, common: argparse.ArgumentParser) -> None:
    """Add the identity subcommands to the parser."""
    p = subs.add_parser("id", parents=[common], help="show this profile's peer id and name")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(handler=cmd_id)

    p = subs.add_parser(
        "passphrase",
        parents=[common],
        help="protect this profile's key with a passphrase (or remove it)",
    )
    p.add_argument("action", choices=["set", "remove"])
    p.set_defaults(handler=cmd_passphrase)


def cmd_id(args: argparse.Namespace) -> int:
    """Print peer id, short id and display name."""
    profile = load_profile(args)
    info = {
        "profile": profile.name,
        "id": profile.identity.peer_id_text,
        "short_id": short_id(profile.identity.peer_id),
        "name": profile.display_name,
    }
    if args.json:
        print_json(info)
    else:
        say(f"name      {info['name']}")
        say(f"id        {info['id']}")
        say(f"short id  {info['short_id']}")
        say(f"profile   {info['profile']}")
    return 0


def cmd_passphrase(args: argparse.Namespace) -> int:
    """Seal the key with a new passphrase, or store it unsealed."""
    profile = load_profile(args)
    if args.action == "remove":
        set_passphrase(profile, None)
        say("passphrase removed; the key file is now protected only by file permissions")
        return 0
    if not sys.stdin.isatty():
        raise CliError("setting a passphrase needs a terminal to type it in")
    first = getpass.getpass("New passphrase: ")
    if len(first) < 8:
        raise CliError("passphrase too short (at least 8 characters)")
    if getpass.getpass("Repeat it: ") != first:
        raise CliError("the two passphrases differ; nothing was changed")
    set_passphrase(profile, first)
    say("key file sealed with your passphrase")
    return 0
