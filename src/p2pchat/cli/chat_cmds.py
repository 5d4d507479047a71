"""Chat from the command line: ``peers``, ``send``, ``history``, ``add``, ``accept``,
``block``, ``requests``, ``clear-requests``, ``name``. Each works against a running node
or starts a short-lived one.
"""

from __future__ import annotations

import argparse
from typing import Any

from p2pchat.cli.common import CliError, add_node_options, command_hint
from p2pchat.cli.output import STATUS_MARKS, local_time, print_json, safe_text
from p2pchat.cli.session import call, open_session, run

DEFAULT_WAIT_RUNNING = 3.0
DEFAULT_WAIT_SHORT_LIVED = 6.0


def register(subs: Any, common: argparse.ArgumentParser) -> None:
    """Add the chat subcommands to the parser."""
    p = subs.add_parser("peers", parents=[common], help="peers online and known contacts")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(handler=cmd_peers)

    p = subs.add_parser(
        "send",
        parents=[common],
        help="send a message (or a file with --file)",
        description="Send TEXT to PEER (a display name, short id or full id), or to a group "
        "room with --room ROOM TEXT. Prints 'delivered', 'sent' or 'queued'; queued "
        "messages go out when the peer is next reachable.",
    )
    p.add_argument("peer", metavar="PEER", nargs="?")
    p.add_argument("text", metavar="TEXT", nargs="?")
    p.add_argument("--room", metavar="ROOM", help="send to this group room (name or id)")
    p.add_argument("--file", metavar="PATH", help="send a file instead of text")
    p.add_argument(
        "--wait",
        type=float,
        default=None,
        metavar="SECONDS",
        help="wait up to this long for delivery (default: a few seconds)",
    )
    p.add_argument("--json", action="store_true", help="print JSON")
    add_node_options(p)
    p.set_defaults(handler=cmd_send)

    p = subs.add_parser("history", parents=[common], help="messages with a peer or in a room")
    p.add_argument("peer", metavar="PEER", nargs="?")
    p.add_argument("--room", metavar="ROOM", help="a group room (name or id) instead of a peer")
    p.add_argument("--limit", type=int, default=50, help="how many (default: %(default)s)")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(handler=cmd_history)

    p = subs.add_parser("add", parents=[common], help="connect to a peer by address")
    p.add_argument("address", metavar="HOST:PORT")
    p.set_defaults(handler=cmd_add)

    for name, verb in (("accept", "accept a contact request"), ("block", "block a peer")):
        p = subs.add_parser(name, parents=[common], help=verb)
        p.add_argument("peer", metavar="PEER")
        p.set_defaults(handler=cmd_contact, action=name)

    p = subs.add_parser(
        "requests",
        parents=[common],
        help="open contact requests, and how many were held back",
    )
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(handler=cmd_requests)

    p = subs.add_parser(
        "clear-requests",
        parents=[common],
        help="remove every open contact request (their senders are not blocked)",
    )
    p.set_defaults(handler=cmd_clear_requests)

    p = subs.add_parser("name", parents=[common], help="change your display name")
    p.add_argument("new_name", metavar="NEW_NAME")
    p.set_defaults(handler=cmd_name)


def cmd_peers(args: argparse.Namespace) -> int:
    """List peers."""

    async def go() -> list[dict[str, Any]]:
        async with open_session(args, network=False) as session:
            peers: list[dict[str, Any]] = await call(session, "peers")
            if not session.remote and not args.json:
                print("(no p2pchat is running for this profile: online state unknown)")
            return peers

    peers = run(go())
    if args.json:
        print_json(peers)
        return 0
    if not peers:
        print("no peers yet: start `p2pchat serve` (or the app) on two machines of one network,")
        print("or add one by address with `p2pchat add HOST:PORT`")
        return 0
    for p in peers:
        dot = "●" if p["online"] else "○"
        name = safe_text(p["name"] or "?", keep_newlines=False)
        verified = " ✔" if p["verified"] else ""
        print(f"{dot} {name:<20} {p['short_id']}  {p['state']:<8} {p['address'] or '-'}{verified}")
    return 0


def cmd_send(args: argparse.Namespace) -> int:
    """Send one message and report how far it got."""
    if args.file:
        if not args.peer and not args.room:
            raise CliError("say whom to send the file to: p2pchat send PEER --file PATH")
        from p2pchat.cli.file_cmds import cmd_send_file

        return int(cmd_send_file(args))
    if args.room:
        # `send --room ROOM TEXT`: the one positional is the text.
        text = args.text if args.text is not None else args.peer
        if text is None or (args.text is not None and args.peer is not None):
            raise CliError("usage: p2pchat send --room ROOM TEXT")
        args.text, args.peer = text, None
    elif args.peer is None or args.text is None:
        raise CliError("usage: p2pchat send PEER TEXT (or --room ROOM TEXT)")

    async def go() -> tuple[dict[str, Any], bool]:
        async with open_session(args, network=True) as session:
            wait = args.wait
            if wait is None:
                wait = DEFAULT_WAIT_RUNNING if session.remote else DEFAULT_WAIT_SHORT_LIVED
            target = {"room": args.room} if args.room else {"peer": args.peer}
            result: dict[str, Any] = await call(
                session, "send", {**target, "text": args.text, "wait": wait}
            )
            return result, session.remote

    if args.wait is not None and args.wait < 0:
        raise CliError("--wait takes a number of seconds (0 or more)")
    result, remote = run(go())
    if args.json:
        print_json(result)
        return 0
    status = result["status"]
    peer = safe_text(args.room or args.peer, keep_newlines=False)
    if status in ("delivered", "read"):
        print(status)
    elif status == "sent":
        if args.room:
            print(f"sent to {peer}; not yet confirmed by every member")
        else:
            print(f"sent, not yet confirmed by {peer} (they may not have accepted you yet)")
    else:
        where = "" if remote else " (the next time p2pchat runs for this profile)"
        print(f"queued: it will be delivered when {peer} is reachable{where}")
    return 0


def _print_history(result: dict[str, Any]) -> None:
    messages = result["messages"]
    if not messages:
        print(f"no messages with {safe_text(result['peer'])} yet")
        return
    for m in messages:
        who = "you" if m["outgoing"] else safe_text(m["author_name"], keep_newlines=False)
        mark = f"  {STATUS_MARKS.get(m['status'] or '', '')}" if m["outgoing"] else ""
        text = safe_text(m["text"]).replace("\n", "\n" + " " * 19)
        print(f"{local_time(m['sent_at'])}  {who}: {text}{mark}")


def cmd_history(args: argparse.Namespace) -> int:
    """Show the conversation with a peer."""
    if args.limit < 1:
        raise CliError("--limit must be at least 1")
    if (args.peer is None) == (args.room is None):
        raise CliError("usage: p2pchat history PEER, or p2pchat history --room ROOM")

    async def go() -> dict[str, Any]:
        async with open_session(args, network=False) as session:
            target = {"room": args.room} if args.room else {"peer": args.peer}
            result: dict[str, Any] = await call(session, "history", {**target, "limit": args.limit})
            return result

    result = run(go())
    if args.json:
        print_json(result["messages"])
    else:
        _print_history(result)
    return 0


async def _simple(args: argparse.Namespace, method: str, params: dict[str, Any]) -> Any:
    async with open_session(args, network=False) as session:
        return await call(session, method, params)


def cmd_add(args: argparse.Namespace) -> int:
    """Remember an address and connect to it."""
    result = run(_simple(args, "add", {"address": args.address}))
    print(f"added {result['address']}; p2pchat connects to it whenever it runs")
    return 0


def cmd_contact(args: argparse.Namespace) -> int:
    """Accept or block a peer."""
    result = run(_simple(args, args.action, {"peer": args.peer}))
    print(f"{safe_text(result['peer'], keep_newlines=False)} is now {result['state']}")
    return 0


def held_back_text(held: dict[str, Any]) -> str:
    """``12 contact requests were held back …`` (or '' when nothing was)."""
    parts = []
    if held.get("requests"):
        parts.append(f"{held['requests']} contact request(s) made way for newer ones")
    if held.get("messages"):
        parts.append(f"{held['messages']} message(s) of requests were past their limits")
    if not parts:
        return ""
    return "held back (too many at once): " + "; ".join(parts)


def cmd_requests(args: argparse.Namespace) -> int:
    """List open contact requests and say how many were held back."""
    result = run(_simple(args, "requests", {}))
    if args.json:
        print_json(result)
        return 0
    if not result["open"]:
        print("no open contact requests")
    for p in result["open"]:
        name = safe_text(p["name"] or "?", keep_newlines=False)
        print(f"{name:<20} {p['short_id']}  {p['address'] or '-'}")
    held = held_back_text(result["held_back"])
    if held:
        print(held)
        print(f"to remove every request: {command_hint(args.profile, 'clear-requests')}")
    return 0


def cmd_clear_requests(args: argparse.Namespace) -> int:
    """Remove every open contact request."""
    result = run(_simple(args, "clear_requests", {}))
    print(f"removed {result['cleared']} contact request(s)")
    return 0


def cmd_name(args: argparse.Namespace) -> int:
    """Change the display name."""
    result = run(_simple(args, "name", {"name": args.new_name}))
    print(f"your name is now {safe_text(result['name'])}")
    return 0
