"""``p2pchat rooms`` and ``p2pchat room …``: group rooms from the command line."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from p2pchat.cli.common import command_hint
from p2pchat.cli.output import print_json, safe_text, say
from p2pchat.cli.session import call, open_session, run


def register(subs: Any, common: argparse.ArgumentParser) -> None:
    """Add ``rooms`` and ``room`` with its actions."""
    p = subs.add_parser("rooms", parents=[common], help="your conversations and group rooms")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(handler=cmd_rooms)

    room = subs.add_parser("room", parents=[common], help="create and manage group rooms")
    actions = room.add_subparsers(dest="action", metavar="ACTION", required=True)
    a = actions.add_parser("create", parents=[common], help="create a room")
    a.add_argument("name", metavar="NAME")
    a.add_argument("--topic", help="what the room is about")
    a.add_argument("--json", action="store_true", help="print JSON")
    a.set_defaults(handler=cmd_room, method="room_create")
    for action, helptext in (
        ("invite", "invite a contact"),
        ("remove", "remove a member (owners and admins)"),
        ("promote", "make a member an admin"),
    ):
        a = actions.add_parser(action, parents=[common], help=helptext)
        a.add_argument("room", metavar="ROOM")
        a.add_argument("peer", metavar="PEER")
        if action == "remove":
            a.add_argument("--yes", "-y", action="store_true", help="do not ask first")
        a.set_defaults(handler=cmd_room, method=f"room_{action}")
    for action, helptext in (
        ("join", "accept an invitation"),
        ("decline", "refuse an invitation"),
        ("leave", "leave a room"),
    ):
        a = actions.add_parser(action, parents=[common], help=helptext)
        a.add_argument("room", metavar="ROOM")
        a.set_defaults(handler=cmd_room, method=f"room_{action}")
    a = actions.add_parser("rename", parents=[common], help="rename a room")
    a.add_argument("room", metavar="ROOM")
    a.add_argument("name", metavar="NEW_NAME")
    a.set_defaults(handler=cmd_room, method="room_rename")
    a = actions.add_parser("members", parents=[common], help="who is in a room")
    a.add_argument("room", metavar="ROOM")
    a.add_argument("--json", action="store_true", help="print JSON")
    a.set_defaults(handler=cmd_members)


async def _call(args: argparse.Namespace, method: str, params: dict[str, Any]) -> Any:
    async with open_session(args, network=True) as session:
        return await call(session, method, params)


def cmd_rooms(args: argparse.Namespace) -> int:
    """List conversations."""

    async def go() -> Any:
        async with open_session(args, network=False) as session:
            return await call(session, "rooms")

    rooms = run(go())
    if args.json:
        print_json(rooms)
        return 0
    if not rooms:
        say("no conversations yet; create a room with `p2pchat room create NAME`")
        return 0
    for r in rooms:
        kind = "room" if r["kind"] == "group" else "chat"
        state = "" if r["my_state"] == "joined" else f" [{r['my_state']}]"
        unread = f" ({r['unread']} unread)" if r["unread"] else ""
        unread += " [muted]" if r.get("muted") else ""
        unread += " [archived]" if r.get("archived") else ""
        name = safe_text(r["name"])
        count = r["members"]
        members = f"{count} member{'' if count == 1 else 's'}" if r["kind"] == "group" else "direct"
        say(f"{kind:<4} {name:<24} {r['id'][:8]}  {members}{state}{unread}")
    return 0


def cmd_room(args: argparse.Namespace) -> int:
    """Run one room action."""
    params = {k: getattr(args, k) for k in ("room", "peer", "name", "topic") if hasattr(args, k)}
    params = {k: v for k, v in params.items() if v is not None}
    if args.method == "room_remove" and not args.yes and not _confirmed(args):
        say("nobody was removed")
        return 1
    result = run(_call(args, args.method, params))
    if getattr(args, "json", False):
        print_json(result)
        return 0
    action = args.method.removeprefix("room_")
    if action == "create":
        say(f"created room {safe_text(result['name'])} ({result['id'][:8]})")
        invite = command_hint(args.profile, f"room invite {result['id'][:8]} PEER")
        say(f"invite people with: {invite}")
    elif action == "invite":
        invited = safe_text(result["invited"])
        say(f"invited {invited}; they join with `p2pchat room join {result['room'][:8]}`")
    else:
        say(_done_line(action, args, result))
    return 0


def _confirmed(args: argparse.Namespace) -> bool:
    """Ask before removing someone, as the app does (only at a terminal: a script,
    with no one to answer, goes ahead)."""
    if not sys.stdin.isatty():
        return True
    question = (
        f"Remove {safe_text(args.peer)} from {safe_text(args.room)}? They stop getting its "
        "messages until someone invites them again. [y/N] "
    )
    try:
        answer = input(question)
    except EOFError:
        return False
    return answer.strip().casefold() in ("y", "yes")


def _done_line(action: str, args: argparse.Namespace, result: dict[str, Any]) -> str:
    """What happened, in words (never a bare "done")."""
    room = safe_text(args.room)
    if action == "join":
        room = safe_text(result.get("name") or args.room)
        send = command_hint(args.profile, f"send --room {result['room'][:8]} TEXT")
        return f"you joined {room}; write with: {send}"
    if action == "decline":
        return f"you declined the invitation to {room}"
    if action == "leave":
        return f"you left {room}; someone must invite you to return"
    if action == "remove":
        return f"{safe_text(result['removed'])} was removed from {room}"
    if action == "promote":
        return f"{safe_text(result['admin'])} is now an admin of {room}"
    if action == "rename":
        return f"the room is now called {safe_text(result['name'])}"
    return f"{action}: done"


def cmd_members(args: argparse.Namespace) -> int:
    """List a room's members."""
    members = run(_call(args, "room_members", {"room": args.room}))
    if args.json:
        print_json(members)
        return 0
    for m in members:
        dot = "●" if m["online"] else "○"
        you = " (you)" if m["you"] else ""
        name = safe_text(m["name"])
        say(f"{dot} {name:<20} {m['short_id']}  {m['role']:<6} {m['state']}{you}")
    return 0
