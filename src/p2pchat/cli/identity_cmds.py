"""``p2pchat id``: who am I (``p2pchat passphrase`` is in passphrase_cmds.py)."""

from __future__ import annotations

import argparse
from typing import Any

from p2pchat.cli.common import load_profile
from p2pchat.cli.output import print_json, say
from p2pchat.identity import short_id


def register(subs: Any, common: argparse.ArgumentParser) -> None:
    """Add the identity subcommands to the parser."""
    p = subs.add_parser("id", parents=[common], help="show this profile's peer id and name")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(handler=cmd_id)


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
