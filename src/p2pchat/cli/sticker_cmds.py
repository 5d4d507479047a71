"""``p2pchat sticker add|list|install``: sticker packs from the command line.

Sending one is ``p2pchat send PEER --sticker PACK/NAME`` (or ``--room ROOM``). Pack and
sticker names are plain ASCII, checked by the node, so they print as they are.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from p2pchat.cli.output import print_json, safe_text, say
from p2pchat.cli.session import call, open_session, run


def register(subs: Any, common: argparse.ArgumentParser) -> None:
    """Add ``sticker`` with its actions."""
    sticker = subs.add_parser(
        "sticker",
        parents=[common],
        help="make sticker packs from your pictures, list and install them",
        description="Stickers are small pictures (PNG, WebP or GIF, at most 256 KiB, "
        "1024x1024 pixels) shown large in the chat. Send one with "
        "`p2pchat send PEER --sticker PACK/NAME`.",
    )
    actions = sticker.add_subparsers(dest="action", metavar="ACTION", required=True)
    a = actions.add_parser("add", parents=[common], help="add pictures to a pack of yours")
    a.add_argument("pack", metavar="PACK", help="pack name: letters, digits, - and _")
    a.add_argument(
        "files", metavar="FILE", nargs="+", help="pictures; each is named after its file"
    )
    a.add_argument("--json", action="store_true", help="print JSON")
    a.set_defaults(handler=cmd_add)
    a = actions.add_parser("list", parents=[common], help="your stickers, as PACK/NAME")
    a.add_argument("pack", metavar="PACK", nargs="?", help="only this pack")
    a.add_argument("--json", action="store_true", help="print JSON")
    a.set_defaults(handler=cmd_list)
    a = actions.add_parser(
        "install", parents=[common], help="add a pack someone sent you to your own packs"
    )
    a.add_argument("pack", metavar="PACK")
    a.add_argument("--from", dest="peer", metavar="PEER", help="only stickers this peer sent")
    a.add_argument("--json", action="store_true", help="print JSON")
    a.set_defaults(handler=cmd_install)


async def _call(args: argparse.Namespace, method: str, params: dict[str, Any]) -> Any:
    async with open_session(args, network=False) as session:
        return await call(session, method, params)


def _print(stickers: list[dict[str, Any]], args: argparse.Namespace) -> None:
    if args.json:
        print_json(stickers)
        return
    for s in stickers:
        say(f"{safe_text(s['label'])}  ({s['mime']}, {s['size']} bytes)")


def cmd_add(args: argparse.Namespace) -> int:
    """Add pictures to a pack."""
    paths = [str(Path(f).expanduser().resolve()) for f in args.files]
    added = run(_call(args, "sticker_add", {"pack": args.pack, "paths": paths}))
    _print(added, args)
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    """List our stickers."""
    stickers = run(_call(args, "stickers", {"pack": args.pack} if args.pack else {}))
    if not stickers and not args.json:
        say("no stickers yet: make a pack with `p2pchat sticker add PACK FILE...`")
        return 0
    _print(stickers, args)
    return 0


def cmd_install(args: argparse.Namespace) -> int:
    """Install a received pack."""
    params: dict[str, Any] = {"pack": args.pack}
    if args.peer:
        params["peer"] = args.peer
    installed = run(_call(args, "sticker_install", params))
    if not args.json:
        say(f"installed {len(installed)} sticker(s) into your pack {safe_text(args.pack)}")
    _print(installed, args)
    return 0
