"""Finding and managing chats from the command line: ``search``, ``export``, ``mute``,
``unmute``, ``archive``, ``unarchive`` and ``delete-chat`` (issue 14, items 1 and 5).

Each names a chat as ``history`` does (``PEER`` or ``--room ROOM``), and works against a
running node or a short-lived one. Text from peers is printed plain, through ``say``.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from p2pchat.cli.common import CliError
from p2pchat.cli.output import local_time, print_json, safe_text, say, text_lines
from p2pchat.cli.session import call, open_session, run
from p2pchat.node.export import FORMATS
from p2pchat.timefmt import UNKNOWN_STAMP

#: Characters of a message shown around the first word found.
CONTEXT_CHARS = 60


def register(subs: Any, common: argparse.ArgumentParser) -> None:
    """Add the commands."""
    p = subs.add_parser(
        "search",
        parents=[common],
        help="find messages in every chat (or one)",
        description="Find text messages holding every word of QUERY (parts of words "
        "too, any case, any script), newest first.",
    )
    p.add_argument("query", metavar="QUERY")
    _add_target(p, required=False)
    p.add_argument("--limit", type=int, default=50, help="how many (default: %(default)s)")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(handler=cmd_search)

    p = subs.add_parser(
        "export",
        parents=[common],
        help="write a chat to a Markdown, JSON or HTML file",
        description="The file is created readable by you only. HTML is one file with "
        "the pictures you downloaded inside; nothing in it loads from the network.",
    )
    _add_target(p, required=True)
    p.add_argument("--format", choices=FORMATS, default="md", help="default: %(default)s")
    p.add_argument("-o", "--output", metavar="FILE", required=True, type=Path)
    p.add_argument("--force", action="store_true", help="replace FILE if it exists")
    p.set_defaults(handler=cmd_export)

    for name, method, key, value, helptext in (
        ("mute", "chat_mute", "muted", True, "no notifications from a chat (still counted)"),
        ("unmute", "chat_mute", "muted", False, "notifications from a chat again"),
        ("archive", "chat_archive", "archived", True, "hide a chat until a new message"),
        ("unarchive", "chat_archive", "archived", False, "show an archived chat again"),
    ):
        p = subs.add_parser(name, parents=[common], help=helptext)
        _add_target(p, required=True)
        p.set_defaults(handler=cmd_setting, method=method, key=key, value=value, word=name)

    p = subs.add_parser(
        "delete-chat",
        parents=[common],
        help="delete a chat's messages from this computer only",
        description="Removes the messages from your store; the others keep theirs. A "
        "group room is left first (you need a new invitation to return).",
    )
    _add_target(p, required=True)
    p.add_argument("--yes", action="store_true", help="do not ask")
    p.set_defaults(handler=cmd_delete_chat)


def _add_target(p: argparse.ArgumentParser, *, required: bool) -> None:
    """``PEER`` or ``--room ROOM`` (required); ``--peer PEER`` or ``--room ROOM`` (search)."""
    if required:
        p.add_argument("peer", metavar="PEER", nargs="?", help="a direct chat")
    else:
        p.set_defaults(peer=None)
    p.add_argument("--peer", dest="peer_opt", metavar="PEER", help="a direct chat")
    p.add_argument("--room", metavar="ROOM", help="a group room (name or id)")
    p.set_defaults(target_required=required)


def _target(args: argparse.Namespace) -> dict[str, str]:
    if args.peer and args.peer_opt:
        raise CliError("name the peer once (PEER or --peer)")
    peer = args.peer_opt or args.peer
    if peer and args.room:
        raise CliError("give either a peer or --room, not both")
    if args.room:
        return {"room": args.room}
    if peer:
        return {"peer": peer}
    if args.target_required:
        raise CliError(f"usage: p2pchat {args.command} PEER, or --room ROOM")
    return {}


async def _call(args: argparse.Namespace, method: str, params: dict[str, Any]) -> Any:
    async with open_session(args, network=False) as session:
        return await call(session, method, params)


def cmd_search(args: argparse.Namespace) -> int:
    """Search messages and print them with where they are."""
    if args.limit < 1:
        raise CliError("--limit must be at least 1")
    params = {"text": args.query, "limit": args.limit, **_target(args)}
    result = run(_call(args, "search", params))
    if args.json:
        print_json(result)
        return 0
    hits = result["results"]
    if not hits:
        say(f"nothing found for {safe_text(args.query)}")
    for hit in hits:
        when = local_time(hit["sent_at"]) if hit["sent_at"] else UNKNOWN_STAMP
        where = ("with " if hit["room_kind"] == "direct" else "in ") + (hit["room_name"] or "?")
        who = "you" if hit["outgoing"] else hit["author_name"] or "?"
        say(f"{when:<16}  {where} · {who}: {excerpt(hit['text'], args.query)}")
    if not result["complete"]:
        say(
            "(only the newest messages were searched for such short words; "
            "use 3 or more characters to search everything)"
        )
    return 0


def excerpt(text: str, query: str, width: int = CONTEXT_CHARS) -> str:
    """One safe line of ``text`` around the first word of ``query`` found in it."""
    flat = " ".join(text_lines(text))
    folded = flat.casefold()
    positions = [folded.find(w.casefold()) for w in query.split()]
    found = [p for p in positions if p >= 0]
    at = min(found) if found else 0
    start = max(0, at - width // 3)
    end = start + width
    return ("…" if start else "") + flat[start:end] + ("…" if end < len(flat) else "")


def cmd_export(args: argparse.Namespace) -> int:
    """Write a chat to a file."""
    params = {
        **_target(args),
        "format": args.format,
        "path": str(args.output.expanduser().absolute()),
        "overwrite": args.force,
    }
    result = run(_call(args, "export", params))
    pictures = f" and {result['pictures']} picture(s)" if result["pictures"] else ""
    say(f"wrote {result['messages']} message(s){pictures} to {safe_text(result['path'])}")
    return 0


def cmd_setting(args: argparse.Namespace) -> int:
    """Mute, unmute, archive or unarchive a chat."""
    params = {**_target(args), args.key: args.value}
    run(_call(args, args.method, params))
    name = safe_text(args.room or args.peer_opt or args.peer)
    words = {
        "mute": f"muted {name}: no notifications, unread still counted",
        "unmute": f"{name} notifies you again",
        "archive": f"archived {name}: it comes back when a new message arrives",
        "unarchive": f"{name} is back in your chats",
    }
    say(words[args.word])
    return 0


def cmd_delete_chat(args: argparse.Namespace) -> int:
    """Delete a chat locally, after asking (unless --yes)."""
    target = _target(args)
    name = safe_text(args.room or args.peer_opt or args.peer)
    if not args.yes:
        try:
            answer = input(f"delete every message of {name} from this computer? [y/N] ")
        except EOFError:
            answer = ""
        if answer.strip().lower() not in ("y", "yes"):
            say("nothing deleted")
            return 1
    result = run(_call(args, "chat_delete", target))
    say(f"deleted {result['removed']} message(s) of {name} from this computer")
    return 0
