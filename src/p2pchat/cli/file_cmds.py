"""``p2pchat files``, ``get``, ``cancel`` and ``send PEER --file PATH``: file transfers.

Each works against a running node (the app or ``serve``) or starts a short-lived one.
A progress bar is drawn on stderr only when it is a terminal; scripts get one final line
(or ``--json``). File names chosen by peers pass through ``safe_text`` before printing.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from pathlib import Path
from typing import Any

from p2pchat.cli.common import CliError, add_node_options, command_hint
from p2pchat.cli.output import print_json, safe_text, say
from p2pchat.cli.session import Session, call, open_session, run

FINAL = ("done", "failed", "cancelled")
POLL = 0.2
#: How long ``send --file`` waits for the receiver to start pulling before it reports
#: "offered" and returns (the offer stays; the file is served whenever a node runs).
DEFAULT_START_WAIT = 10.0


def register(subs: Any, common: argparse.ArgumentParser) -> None:
    """Add the file-transfer subcommands to the parser."""
    p = subs.add_parser(
        "files",
        parents=[common],
        help="file transfers (sent and received) with their progress",
    )
    p.add_argument("--limit", type=int, default=50, help="how many (default: %(default)s)")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(handler=cmd_files)

    p = subs.add_parser(
        "get",
        parents=[common],
        help="download a file someone offered (ID from `p2pchat files`)",
        description="Accept the file offer ID (4 or more hex digits from `p2pchat files`), "
        "wait while it downloads, and print where it was saved. The download resumes "
        "after interruptions; the file is verified (SHA-256) before it is saved.",
    )
    p.add_argument("id", metavar="ID")
    p.add_argument("--no-wait", action="store_true", help="start the download and return at once")
    p.add_argument("--json", action="store_true", help="print JSON")
    add_node_options(p)
    p.set_defaults(handler=cmd_get)

    p = subs.add_parser(
        "cancel",
        parents=[common],
        help="stop a download, decline an offer, or revoke a file you offered",
    )
    p.add_argument("id", metavar="ID")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(handler=cmd_cancel)


# ------------------------------------------------------------------ formatting


def human_size(n: float) -> str:
    """1536 -> '1.5 KiB'."""
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(n) < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} GiB"


def _eta(seconds: float | None) -> str:
    if seconds is None:
        return "--:--"
    seconds = int(seconds)
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


def progress_line(t: dict[str, Any], width: int = 24) -> str:
    """One line: name, bar, percent, speed, ETA (or the state when not moving)."""
    name = safe_text(t["name"])
    if len(name) > 30:
        name = name[:29] + "…"
    frac = float(t["progress"])
    filled = int(frac * width)
    bar = "█" * filled + "░" * (width - filled)
    if t["state"] == "active":
        tail = f"{human_size(t['rate'])}/s  ETA {_eta(t['eta'])}"
    elif t["state"] == "done":  # the words the app's file card uses
        tail = "✓ saved" if t.get("incoming") else "✓ sent"
    else:
        tail = str(t["state"])
    return f"{name:<30} {bar} {frac:6.1%}  {human_size(t['done'])}/{human_size(t['size'])}  {tail}"


class Bar:
    """Redraws one line on stderr when it is a terminal; silent otherwise."""

    def __init__(self) -> None:
        self.tty = sys.stderr.isatty()
        self.drawn = False

    def show(self, t: dict[str, Any]) -> None:
        if self.tty:
            sys.stderr.write("\r\x1b[2K" + safe_text(progress_line(t)))
            sys.stderr.flush()
            self.drawn = True

    def end(self) -> None:
        if self.drawn:
            sys.stderr.write("\n")
            sys.stderr.flush()
            self.drawn = False


async def _follow(
    session: Session, tid: str, bar: Bar, *, start_wait: float | None = None
) -> dict[str, Any]:
    """Poll a transfer until it ends (or, with ``start_wait``, until it fails to start)."""
    started = time.monotonic()
    while True:
        t: dict[str, Any] = await call(session, "files", {"id": tid})
        bar.show(t)
        if t["state"] in FINAL:
            return t
        if (
            start_wait is not None
            and t["state"] == "offered"
            and time.monotonic() - started > start_wait
        ):
            return t
        await asyncio.sleep(POLL)


# ------------------------------------------------------------------ commands


def cmd_send_file(args: argparse.Namespace) -> int:
    """``p2pchat send PEER --file PATH`` (or ``--room ROOM --file PATH``): offer a file.

    Waits until the peer has the whole file when they accept it at once (contacts,
    within their size limit); otherwise reports that it is offered and returns.
    """
    path = Path(args.file).expanduser()
    try:
        path = path.resolve(strict=True)
    except (OSError, RuntimeError):
        raise CliError(f"no such file: {args.file}") from None
    if not path.is_file():
        raise CliError(f"{args.file} is not a regular file")
    start_wait = getattr(args, "wait", None)
    if start_wait is None:
        start_wait = DEFAULT_START_WAIT
    if start_wait < 0:
        raise CliError("--wait takes a number of seconds (0 or more)")
    bar = Bar()

    async def go() -> tuple[dict[str, Any], bool]:
        async with open_session(args, network=True) as session:
            room = getattr(args, "room", None)
            target = {"room": room} if room else {"peer": args.peer}
            offer: dict[str, Any] = await call(session, "send_file", {**target, "path": str(path)})
            try:
                final = await _follow(session, offer["id"], bar, start_wait=start_wait)
            finally:
                bar.end()
            return final, session.remote

    try:
        t, remote = run(go())
    except KeyboardInterrupt:
        bar.end()
        say("stopped; the offer stands and the download resumes when p2pchat runs again")
        return 130
    if args.json:
        print_json(t)
        return 0 if t["state"] != "failed" else 1
    name = safe_text(t["name"])
    peer = safe_text(getattr(args, "room", None) or t["peer_name"])
    if t["state"] == "done":
        say(f"sent {name} ({human_size(t['size'])}) to {peer}")
    elif t["state"] == "cancelled":
        say(f"{name}: cancelled")
    elif t["state"] == "failed":
        say(f"{name}: failed: {safe_text(t['detail'])}")
        return 1
    else:
        where = "" if remote else " while p2pchat (the app or `p2pchat serve`) runs"
        say(
            f"offered {name} ({human_size(t['size'])}) to {peer}; they can download it{where} "
            f"(transfer {t['short_id']})"
        )
    return 0


def cmd_files(args: argparse.Namespace) -> int:
    """List transfers."""
    if args.limit < 1:
        raise CliError("--limit must be at least 1")

    async def go() -> list[dict[str, Any]]:
        async with open_session(args, network=False) as session:
            found: list[dict[str, Any]] = await call(session, "files", {"limit": args.limit})
            return found

    transfers = run(go())
    if args.json:
        print_json(transfers)
        return 0
    if not transfers:
        say("no file transfers yet; send one with `p2pchat send PEER --file PATH`")
        return 0
    for t in transfers:
        arrow = "←" if t["incoming"] else "→"
        peer = safe_text(t["peer_name"])
        say(f"{t['short_id']}  {arrow} {peer:<12} {progress_line(t)}")
        if t["state"] == "offered" and t["incoming"]:
            say(f"          to download: {command_hint(args.profile, 'get ' + t['short_id'])}")
        elif t["detail"] and t["state"] in ("failed", "paused", "offered", "cancelled"):
            say(f"          {safe_text(t['detail'])}")
        elif t["state"] == "done" and t["incoming"] and t["path"]:
            say(f"          saved to {safe_text(t['path'])}")
    return 0


def cmd_get(args: argparse.Namespace) -> int:
    """Accept a file offer and wait for it."""
    bar = Bar()

    async def go() -> dict[str, Any]:
        async with open_session(args, network=True) as session:
            t: dict[str, Any] = await call(session, "get", {"id": args.id})
            if args.no_wait:
                return t
            try:
                return await _follow(session, t["id"], bar)
            finally:
                bar.end()

    try:
        t = run(go())
    except KeyboardInterrupt:
        bar.end()
        say("stopped; `p2pchat get` again resumes where it stopped")
        return 130
    if args.json:
        print_json(t)
    elif t["state"] == "done":
        say(f"saved to {safe_text(t['path'])}")
    elif t["state"] in ("failed", "cancelled"):
        say(f"{safe_text(t['name'])}: {t['state']}: {safe_text(t['detail'])}")
    else:
        say(f"downloading {safe_text(t['name'])} ({t['state']})")
    return 1 if t["state"] in ("failed", "cancelled") else 0


def cmd_cancel(args: argparse.Namespace) -> int:
    """Cancel a transfer (or decline an offer)."""

    async def go() -> dict[str, Any]:
        async with open_session(args, network=False) as session:
            t: dict[str, Any] = await call(session, "cancel", {"id": args.id})
            return t

    t = run(go())
    if args.json:
        print_json(t)
    else:
        say(f"{safe_text(t['name'])}: {t['state']}")
    return 0
