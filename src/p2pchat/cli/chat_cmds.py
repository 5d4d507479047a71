"""Chat from the command line: ``peers``, ``send``, ``history``, ``add``, ``forget``, ``accept``,
``block``, ``requests``, ``clear-requests``, ``name``. Each works against a running node
or starts a short-lived one.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import shlex
import uuid
from typing import Any

from p2pchat.cli.common import CliError, add_node_options, command_hint
from p2pchat.cli.output import (
    STATUS_MARKS,
    eprint,
    local_time,
    print_json,
    safe_text,
    say,
    standing,
    text_lines,
)
from p2pchat.cli.session import call, open_session, run
from p2pchat.control.client import NODE_STOPPED
from p2pchat.hostport import parse_host_port
from p2pchat.profile import MAX_DISPLAY_NAME
from p2pchat.timefmt import UNKNOWN_STAMP

DEFAULT_WAIT_RUNNING = 3.0
DEFAULT_WAIT_SHORT_LIVED = 6.0
#: How long ``add`` tries whether anything listens at the address.
ADD_PROBE_SECONDS = 3.0


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
        "--sticker", metavar="PACK/NAME", help="send one of your stickers (p2pchat sticker list)"
    )
    p.add_argument(
        "--wait",
        type=float,
        default=None,
        metavar="SECONDS",
        help="wait up to this long for delivery (default: a few seconds)",
    )
    p.add_argument(
        "--client-id",
        metavar="ID",
        help="your own id for this send (1-64 characters): sending again with the same id "
        "never stores a second copy (for retries after a crash)",
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

    p = subs.add_parser(
        "add", parents=[common], help="connect to a peer by address, or by invite code (Tor)"
    )
    p.add_argument("address", metavar="HOST:PORT|CODE")
    p.set_defaults(handler=cmd_add)

    p = subs.add_parser(
        "forget",
        parents=[common],
        help="forget a stored address (and the peer id pinned to it)",
        description="An address is pinned to the first peer id that answered there: "
        "another id at it is refused, even after `add`. Forget it when someone new "
        "really lives there now (then `add` it again).",
    )
    p.add_argument("address", metavar="HOST:PORT", help="as `p2pchat peers` shows it")
    p.set_defaults(handler=cmd_forget)

    for name, verb in (
        ("accept", "accept a contact request"),
        ("block", "block a peer"),
        ("unblock", "unblock a peer (they become a contact again)"),
    ):
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
                say("(no p2pchat is running for this profile: online state unknown)")
            return peers

    peers = run(go())
    if args.json:
        print_json(peers)
        return 0
    if not peers:
        say("no peers yet: start `p2pchat serve` (or the app) on two machines of one network,")
        say("or add one by address with `p2pchat add HOST:PORT`")
        return 0
    for p in peers:
        dot = "●" if p["online"] else "○"
        name = safe_text(p["name"] or "?")
        verified = " ✔" if p["verified"] else ""
        what = standing(p["state"])  # "not a contact" rather than "unknown"
        say(f"{dot} {name:<20} {p['short_id']}  {what:<14} {p['address'] or '-'}{verified}")
    return 0


def cmd_send(args: argparse.Namespace) -> int:
    """Send one message and report how far it got."""
    if args.file:
        if not args.peer and not args.room:
            raise CliError("say whom to send the file to: p2pchat send PEER --file PATH")
        from p2pchat.cli.file_cmds import cmd_send_file

        return int(cmd_send_file(args))
    if args.sticker:
        return _check_sticker_args(args)
    if args.room:
        # `send --room ROOM TEXT`: the one positional is the text.
        text = args.text if args.text is not None else args.peer
        if text is None or (args.text is not None and args.peer is not None):
            raise CliError("usage: p2pchat send --room ROOM TEXT")
        args.text, args.peer = text, None
    elif args.peer is None or args.text is None:
        raise CliError("usage: p2pchat send PEER TEXT (or --room ROOM TEXT)")
    return _send_checked(args)


def _send_checked(args: argparse.Namespace) -> int:
    """Send the message (text or sticker) ``args`` name and report how far it got."""
    to = safe_text(args.room or args.peer)
    stored: list[bool] = []  # set once the message is in the store

    async def go() -> tuple[dict[str, Any], bool]:
        async with open_session(args, network=True) as session:
            wait = args.wait
            if wait is None:
                wait = DEFAULT_WAIT_RUNNING if session.remote else DEFAULT_WAIT_SHORT_LIVED
            target = {"room": args.room} if args.room else {"peer": args.peer}
            # An explicit --wait: store first, then wait out loud (ctrl+c loses nothing).
            first = 0.0 if args.wait else wait
            what = {"sticker": args.sticker} if args.sticker else {"text": args.text}
            params = {**target, **what, "wait": first, "client_id": client_id}
            try:
                result: dict[str, Any] = await call(session, "send", params)
            except CliError as exc:
                if str(exc) != NODE_STOPPED:
                    raise
                # It may or may not have been stored: the same id makes a retry safe.
                again = f"--client-id {client_id}"
                raise CliError(
                    "the running p2pchat stopped before saying whether the message was stored",
                    details=[f"to send it exactly once, run the same command again with {again}"],
                ) from None
            stored.append(True)
            if args.wait and result["status"] not in ("delivered", "read"):
                if not args.json:  # a long wait is never silent
                    eprint(f"waiting up to {args.wait:g} s for {to} to get it… (ctrl+c stops)")
                params = {"id": result["message"]["id"], "wait": args.wait}
                result = {**result, **await call(session, "wait_delivered", params)}
            return result, session.remote

    if args.wait is not None and args.wait < 0:
        raise CliError("--wait takes a number of seconds (0 or more)")
    client_id = args.client_id or uuid.uuid4().hex
    try:
        result, remote = run(go())
    except KeyboardInterrupt:
        if not stored:
            eprint("stopped before the message was written: nothing was sent")
            return 130
        # Quoted, so a name with a space ("Bob N") can be copied as it is.
        target = f"--room {shlex.quote(args.room)}" if args.room else shlex.quote(args.peer)
        history = f"history {target}"
        eprint(
            f"stopped waiting: the message stays queued and goes out when {to} is "
            f"reachable (`{command_hint(args.profile, history)}` shows it)"
        )
        return 130
    if args.json:
        print_json(result)
        return 0
    _say_sent(args, result, remote=remote)
    return 0


def _check_sticker_args(args: argparse.Namespace) -> int:
    """``send PEER --sticker PACK/NAME`` or ``send --room ROOM --sticker PACK/NAME``."""
    if args.text is not None or (args.room and args.peer):
        raise CliError("usage: p2pchat send PEER --sticker PACK/NAME (or --room ROOM)")
    if not args.peer and not args.room:
        raise CliError("say whom to send the sticker to: p2pchat send PEER --sticker PACK/NAME")
    return _send_checked(args)


def _say_sent(args: argparse.Namespace, result: dict[str, Any], *, remote: bool) -> None:
    """How far the message got, in words."""
    status = result["status"]
    peer = safe_text(args.room or args.peer)
    if status in ("delivered", "read"):
        say(status)
    elif status == "sent":
        if args.room:
            say(f"sent to {peer}; not yet confirmed by every member")
        else:
            say(f"sent, not yet confirmed by {peer} (they may not have accepted you yet)")
    else:
        where = "" if remote else " (the next time p2pchat runs for this profile)"
        say(f"queued: it will be delivered when {peer} is reachable{where}")


def _print_history(result: dict[str, Any]) -> None:
    messages = result["messages"]
    if not messages:
        say(f"no messages with {safe_text(result['peer'])} yet")
        return
    by_id = {m["id"]: m for m in messages}
    for m in messages:
        when = local_time(m["sent_at"]) if m["sent_at"] else UNKNOWN_STAMP
        first, *rest = text_lines(m["text"])
        # Later lines of a message line up under its first and never start at the left
        # edge, where only a time can: no message can pass for another.
        indent = " " * (len(f"{when:<16}") + 2)
        if m.get("kind") == "system":  # "Alice created the room": nobody wrote it
            say(f"{when:<16}  · {first}", *(indent + line for line in rest))
            continue
        who = "you" if m["outgoing"] else m["author_name"] or "?"
        mark = f"  {STATUS_MARKS.get(m['status'] or '', '')}" if m["outgoing"] else ""
        say(f"{when:<16}  {who}: {first}{mark}", *(indent + line for line in rest))
        extra = [_reply_line(m.get("reply_to"), by_id), _reactions_line(m.get("reactions"))]
        say(*(indent + line for line in extra if line))


def _reply_line(reply_to: str | None, by_id: dict[str, dict[str, Any]]) -> str:
    """``↩ in reply to bob: first words…`` (or to an earlier message not listed)."""
    if not reply_to:
        return ""
    original = by_id.get(reply_to)
    if original is None:
        return "↩ in reply to an earlier message"
    who = "you" if original["outgoing"] else original["author_name"] or "?"
    words = text_lines(original["text"])[0]
    if len(words) > 40:
        words = words[:39] + "…"
    return f"↩ in reply to {who}: {words}"


def _reactions_line(reactions: list[dict[str, Any]] | None) -> str:
    """``👍 2  ❤️ 1`` (who, with --json)."""
    counts: dict[str, int] = {}
    for reaction in reactions or []:
        emoji = str(reaction.get("emoji", ""))
        counts[emoji] = counts.get(emoji, 0) + 1
    return "  ".join(f"{emoji} {n}" for emoji, n in counts.items())


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
        print_json(result)  # the control socket's shape, {peer, room, messages}: one to learn
    else:
        _print_history(result)
    return 0


async def _simple(args: argparse.Namespace, method: str, params: dict[str, Any]) -> Any:
    async with open_session(args, network=False) as session:
        return await call(session, method, params)


def cmd_add(args: argparse.Namespace) -> int:
    """Remember an address and connect to it; say so when nothing answers there now."""
    from p2pchat.cli import tor_cmds

    if tor_cmds.is_invite(args.address):
        return tor_cmds.cmd_add_invite(args)
    result = run(_simple(args, "add", {"address": args.address}))
    address = safe_text(result["address"])
    if run(_answers(args.address)):
        say(f"added {address}; p2pchat connects to it whenever it runs")
    else:
        say(
            f"added {address}, but nothing answers there now (is p2pchat running on it, "
            "and is the port right?); p2pchat keeps trying whenever it runs"
        )
    return 0


def cmd_forget(args: argparse.Namespace) -> int:
    """Forget an address and its pin."""
    result = run(_simple(args, "forget", {"address": args.address}))
    if result["forgotten"]:
        say(f"forgot {result['address']}; whoever answers there next is a new peer")
    else:
        say(f"{result['address']} was not stored")
    return 0


async def _answers(address: str) -> bool:
    """Whether something accepts a TCP connection at ``address`` within a moment."""
    try:
        host, port = parse_host_port(address)
        async with asyncio.timeout(ADD_PROBE_SECONDS):
            _reader, writer = await asyncio.open_connection(host, port)
    except (OSError, ValueError, TimeoutError):
        return False
    writer.close()
    with contextlib.suppress(OSError):
        await writer.wait_closed()
    return True


def cmd_contact(args: argparse.Namespace) -> int:
    """Accept, block or unblock a peer (unblocking accepts them again, as in the app)."""
    method = "accept" if args.action == "unblock" else args.action
    result = run(_simple(args, method, {"peer": args.peer}))
    done = {
        "unblock": "unblocked, and a contact again",
        "block": "blocked: nothing from them is stored or shown",
    }.get(args.action, "now a contact")
    say(f"{safe_text(result['peer'])} is {done}")
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
        say("no open contact requests")
    for p in result["open"]:
        name = safe_text(p["name"] or "?")
        say(f"{name:<20} {p['short_id']}  {p['address'] or '-'}")
    held = held_back_text(result["held_back"])
    if held:
        say(held, f"to remove every request: {command_hint(args.profile, 'clear-requests')}")
    return 0


def cmd_clear_requests(args: argparse.Namespace) -> int:
    """Remove every open contact request."""
    result = run(_simple(args, "clear_requests", {}))
    say(f"removed {result['cleared']} contact request(s)")
    return 0


def cmd_name(args: argparse.Namespace) -> int:
    """Change the display name."""
    result = run(_simple(args, "name", {"name": args.new_name}))
    say(f"your name is now {safe_text(result['name'])}")
    if len(args.new_name.strip()) > MAX_DISPLAY_NAME:
        say(f"(names are at most {MAX_DISPLAY_NAME} characters: the rest was left out)")
    return 0
