"""Printing for the CLI: safe text, times, statuses, and one-line event descriptions.

Everything a peer chose (names, messages) may hold terminal escape sequences; it is made
harmless here before it reaches the terminal: control characters become visible
escapes, so a message can never clear the screen or move the cursor.
"""

from __future__ import annotations

import json
import sys
from datetime import datetime
from typing import Any

from p2pchat.cli.common import command_hint
from p2pchat.paths import DEFAULT_PROFILE

STATUS_MARKS = {"queued": "…", "sent": "✓", "delivered": "✓✓", "read": "✓✓ read"}


def safe_text(text: str | None, *, keep_newlines: bool = True) -> str:
    """``text`` with control characters shown as ``\\xNN`` instead of acting on the terminal."""
    if text is None:
        return ""
    out = []
    for ch in text:
        if ch == "\n" and keep_newlines:
            out.append(ch)
        elif ch == "\t":
            out.append("    ")
        elif not ch.isprintable():
            out.append(f"\\x{ord(ch):02x}" if ord(ch) < 256 else f"\\u{ord(ch):04x}")
        else:
            out.append(ch)
    return "".join(out)


def local_time(iso: str | None, *, with_date: bool = True) -> str:
    """An ISO UTC time as local ``YYYY-MM-DD HH:MM`` (or ``HH:MM:SS``)."""
    if not iso:
        return "-"
    when = datetime.fromisoformat(iso).astimezone()
    return when.strftime("%Y-%m-%d %H:%M" if with_date else "%H:%M:%S")


def print_json(obj: Any) -> None:
    """Machine-readable output (peer text is JSON-escaped, so it is safe too)."""
    print(json.dumps(obj, ensure_ascii=False, indent=None))


def describe_event(event: dict[str, Any], profile: str = DEFAULT_PROFILE) -> str:
    """One human line per node event, for ``p2pchat serve`` (hints name ``profile``)."""
    kind = event.get("type")
    peer = str(event.get("peer"))[:8]
    if kind == "message":
        who = safe_text(event.get("author_name"), keep_newlines=False)
        text = safe_text(event.get("text")).replace("\n", "\n    ")
        if event.get("incoming"):
            return f"message from {who}: {text}"
        return f"you wrote ({event.get('status')}): {text}"
    if kind == "receipt":
        return f"{len(event.get('ids', []))} message(s) {event.get('status')}"
    if kind == "online":
        return f"{safe_text(event.get('name'))} is online ({event.get('host')})"
    if kind == "offline":
        who = safe_text(event.get("name") or peer, keep_newlines=False)
        return f"{who} went offline ({safe_text(event.get('reason'))})"
    if kind == "peer":
        return f"{peer} is now {safe_text(event.get('name'))} [{event.get('state')}]"
    if kind == "typing":
        return f"{peer} {'is typing' if event.get('typing') else 'stopped typing'}"
    if kind == "request":
        name = safe_text(event.get("name"))
        accept = command_hint(profile, f"accept {peer}")
        return f"contact request from {name} ({peer}); to accept: {accept}"
    if kind == "held_back":
        if not event.get("requests") and not event.get("messages"):
            return "contact requests cleared"
        requests, messages = int(event.get("requests") or 0), int(event.get("messages") or 0)
        clear = command_hint(profile, "clear-requests")
        return (
            f"too many contact requests at once: {requests} request(s) and {messages} "
            f"message(s) of requests were held back; to see them: "
            f"{command_hint(profile, 'requests')}; to clear: {clear}"
        )
    if kind == "room":
        return f"room {str(event.get('room'))[:8]} changed"
    if kind == "withdrawn":
        count = len(event.get("ids") or [])
        room = str(event.get("room"))[:8]
        return (
            f"room {room}: {count} message(s) withdrawn (written outside their author's membership)"
        )
    if kind == "invitation":
        inviter = safe_text(event.get("inviter_name"), keep_newlines=False)
        name = safe_text(event.get("name"), keep_newlines=False)
        room = str(event.get("room"))[:8]
        join = command_hint(profile, f"room join {room}")
        return f"{inviter} invited you to {name}; to join: {join}"
    if kind == "transfer":
        name = safe_text(event.get("name"), keep_newlines=False)
        size = int(event.get("size") or 0)
        done = int(event.get("done") or 0)
        pct = f"{100 * done // size}%" if size else ""
        return f"file {name}: {event.get('state')} {pct} {safe_text(event.get('detail'))}".rstrip()
    if kind == "warning":
        return f"WARNING: {safe_text(event.get('text'))}"
    if kind == "status":
        mdns = "announced over mDNS" if event.get("announcing") else "not announced"
        return f"listening on port {event.get('port')} ({mdns})"
    return json.dumps(event, ensure_ascii=False)


def eprint(*parts: str) -> None:
    """A line on stderr."""
    print(*parts, file=sys.stderr)
