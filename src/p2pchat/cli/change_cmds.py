"""Changing what was said: ``edit``, ``delete`` and ``disappear`` (timers).

``history --json`` shows each message's id. An edit or delete is a signed message of its
own: it goes out now if the peers are reachable, or waits in the outbox like any message.
"""

from __future__ import annotations

import argparse
from typing import Any

from p2pchat.cli.common import CliError, add_node_options
from p2pchat.cli.output import print_json, safe_text, say
from p2pchat.cli.session import call, open_session, run


def register(subs: Any, common: argparse.ArgumentParser) -> None:
    """Add the message-changing subcommands to the parser."""
    p = subs.add_parser(
        "edit",
        parents=[common],
        help="change the text of a message you sent",
        description="Replace the text of your message MESSAGE_ID (as `history --json` "
        "shows it) with TEXT, for everyone who has it; it is shown marked as edited.",
    )
    p.add_argument("message_id", metavar="MESSAGE_ID")
    p.add_argument("text", metavar="TEXT")
    p.add_argument("--json", action="store_true", help="print JSON")
    add_node_options(p)
    p.set_defaults(handler=cmd_edit)

    p = subs.add_parser(
        "delete",
        parents=[common],
        help="delete a message for everyone",
        description="Delete MESSAGE_ID (as `history --json` shows it) for everyone who has "
        "it: your own messages, and in a group room, as owner or admin, a member's. Each "
        "p2pchat that receives the delete removes the text; a modified client could keep "
        "a copy.",
    )
    p.add_argument("message_id", metavar="MESSAGE_ID")
    p.add_argument("--json", action="store_true", help="print JSON")
    add_node_options(p)
    p.set_defaults(handler=cmd_delete)

    p = subs.add_parser(
        "disappear",
        parents=[common],
        help="show or set a chat's disappearing-message timer",
        description="Without TIMER, show the timer of the chat with PEER (or of --room "
        "ROOM). With TIMER (off, 5m, 1h, 1d or 1w), set it: messages written after it are "
        "removed from every device that time after they were sent. In a group room only "
        "owners and admins may set it.",
    )
    p.add_argument("peer", metavar="PEER", nargs="?")
    p.add_argument("timer", metavar="TIMER", nargs="?")
    p.add_argument("--room", metavar="ROOM", help="a group room (name or id) instead of a peer")
    p.add_argument("--json", action="store_true", help="print JSON")
    add_node_options(p)
    p.set_defaults(handler=cmd_disappear)


def _change(args: argparse.Namespace, method: str, params: dict[str, Any]) -> dict[str, Any]:
    async def go() -> dict[str, Any]:
        async with open_session(args, network=True) as session:
            result: dict[str, Any] = await call(session, method, params)
            return result

    result: dict[str, Any] = run(go())
    return result


def cmd_edit(args: argparse.Namespace) -> int:
    """Edit one of our messages."""
    result = _change(args, "edit", {"id": args.message_id, "text": args.text})
    if args.json:
        print_json(result)
    else:
        say("edited")
    return 0


def cmd_delete(args: argparse.Namespace) -> int:
    """Delete a message for everyone."""
    result = _change(args, "delete", {"id": args.message_id})
    if args.json:
        print_json(result)
    else:
        say("deleted")
    return 0


def cmd_disappear(args: argparse.Namespace) -> int:
    """Show or set a chat's timer."""
    if args.room:
        # `disappear --room ROOM [TIMER]`: the one positional is the timer.
        if args.timer is not None:
            raise CliError("usage: p2pchat disappear --room ROOM [TIMER]")
        target: dict[str, Any] = {"room": args.room, "timer": args.peer}
    elif args.peer is None:
        raise CliError("usage: p2pchat disappear PEER [TIMER] (or --room ROOM [TIMER])")
    else:
        target = {"peer": args.peer, "timer": args.timer}
    result = _change(args, "disappear", target)
    if args.json:
        print_json(result)
        return 0
    where = safe_text(args.room or args.peer)
    if result["seconds"]:
        say(f"messages with {where} disappear after {result['timer']}")
    else:
        say(f"disappearing messages are off with {where}")
    return 0
