"""Printing for the CLI: safe lines, times, statuses, and one-line event descriptions.

Everything a peer chose (names, messages, file names, reasons) may hold terminal escape
sequences or line breaks. Every line the CLI prints goes through :func:`say` (or
:func:`print_json`), which shows each control character as a visible escape (``\\x1b``,
``\\x0a``): a message can never clear the screen or move the cursor, and a name such
as ``"x\\nmessage from Alice: new IBAN"`` stays on the one line it belongs to, so it
cannot forge a line of ``p2pchat serve``'s output. Text that really has several lines
(a message body) is split by :func:`text_lines` and printed as indented continuation
lines, which no first line of an event looks like.
"""

from __future__ import annotations

import json
import logging
import os
import re
import sys
from datetime import datetime
from typing import Any, TextIO

from rich.cells import cell_len

from p2pchat.cli.common import command_hint
from p2pchat.paths import DEFAULT_PROFILE
from p2pchat.timefmt import UNKNOWN_STAMP

#: The app's marks (✔✔ is read there too), with the word for the last one.
STATUS_MARKS = {"queued": "…", "sent": "✓", "delivered": "✓✓", "read": "✔✔ read"}
#: Indentation of a message body's second and later lines.
CONTINUATION = "    "
_NEWLINE = re.compile(r"\r?\n")


def safe_text(text: object) -> str:
    """``text`` as part of one terminal line: every character that is not printable
    (controls, newlines, C1, bidi overrides, line separators) shown as ``\\xNN`` /
    ``\\uNNNN``; tabs become spaces. ``None`` is empty.
    """
    if text is None:
        return ""
    text = str(text)
    if text.isprintable():
        return text
    out = []
    for i, ch in enumerate(text):
        if ch == "\t":
            out.append("    ")
        elif not ch.isprintable() and not emoji_glue(text, i):
            code = ord(ch)
            out.append(
                f"\\x{code:02x}"
                if code < 0x100
                else f"\\u{code:04x}"
                if code < 0x10000
                else f"\\U{code:08x}"
            )
        else:
            out.append(ch)
    return "".join(out)


_TAGS = range(0xE0020, 0xE0080)
_BLACK_FLAG = "\U0001f3f4"


def emoji_glue(text: str, i: int) -> bool:
    """``text[i]`` is an invisible character that is part of one emoji: a zero-width
    joiner between two emoji (👨‍👩‍👧) or a tag of a subdivision flag (🏴 + tags).

    Python counts them unprintable, but escaping them breaks the emoji into pieces
    (``👨\u200d👩``); anywhere else they stay escaped, so no text hides in them.
    """
    ch = text[i]
    if ch == "\u200d":
        return 0 < i < len(text) - 1 and ord(text[i - 1]) >= 0x2000 and ord(text[i + 1]) >= 0x2000
    if ord(ch) in _TAGS:
        start = i
        while start > 0 and ord(text[start - 1]) in _TAGS:
            start -= 1
        return start > 0 and text[start - 1] == _BLACK_FLAG and i - start < 8
    return False


def text_lines(text: str | None) -> list[str]:
    """Multi-line peer text (a message body) as its lines, each safe (see ``safe_text``)."""
    return [safe_text(line) for line in _NEWLINE.split(text or "")]


def say(*lines: object, err: bool = False, flush: bool = False) -> None:
    """Print each of ``lines`` as exactly one line, whatever it contains.

    The one way the CLI writes text for people: whatever a peer put into a line is
    escaped here, so no caller can forget to. On a terminal, a line wider than it is
    folded here, with indented continuation rows (``fit_rows``): left to the terminal,
    a message padded to its width would put the peer's text at the left edge of the
    next row, where a line of our own starts.
    """
    stream: TextIO = sys.stderr if err else sys.stdout
    width = _terminal_width(stream)
    for line in lines:
        print(*fit_rows(safe_text(line), width), sep="\n", file=stream)
    if flush:
        stream.flush()


def fit_rows(line: str, width: int | None) -> list[str]:
    """``line`` folded into rows of at most ``width`` cells, every row after the first
    indented by ``CONTINUATION``; one row when ``width`` is None (not a terminal) or too
    narrow to fold sensibly."""
    if width is None or width < 2 * len(CONTINUATION) or cell_len(line) <= width:
        return [line]
    rows: list[str] = []
    row: list[str] = []
    used, room = 0, width
    for ch in line:
        size = cell_len(ch)
        if used + size > room:
            rows.append("".join(row))
            row, used, room = [CONTINUATION], len(CONTINUATION), width
        row.append(ch)
        used += size
    rows.append("".join(row))
    return rows


def _terminal_width(stream: TextIO) -> int | None:
    """Columns of the terminal ``stream`` writes to; None when it is not a terminal."""
    try:
        return os.get_terminal_size(stream.fileno()).columns if stream.isatty() else None
    except (AttributeError, ValueError, OSError):  # a replaced stream, closed or no fd
        return None


def local_time(iso: str | None, *, with_date: bool = True) -> str:
    """An ISO UTC time as local ``YYYY-MM-DD HH:MM`` (or ``HH:MM:SS``); ``-`` for none.

    Never raises: the text came over the control socket, and a time the node could not
    express (``null``) or that falls off the calendar in this time zone (9999-12-31 east
    of UTC) reads ``unknown time``.
    """
    if not iso:
        return "-"
    try:
        when = datetime.fromisoformat(iso).astimezone()
        return when.strftime("%Y-%m-%d %H:%M" if with_date else "%H:%M:%S")
    except (ValueError, OverflowError, OSError):
        return UNKNOWN_STAMP


def json_line(obj: Any) -> str:
    """``obj`` as one line of JSON with every unprintable character ``\\u``-escaped.

    ``json.dumps`` escapes C0 controls but, with ``ensure_ascii=False``, lets C1 controls
    (``\\x9b`` is a CSI on some terminals), bidi overrides and line separators through.
    Outside strings JSON text is plain ASCII, so escaping those characters wherever they
    are keeps the JSON identical for any parser.
    """
    text = json.dumps(obj, ensure_ascii=False, indent=None)
    if text.isprintable():
        return text
    out = []
    for i, ch in enumerate(text):
        if ch.isprintable() or emoji_glue(text, i):
            out.append(ch)
            continue
        code = ord(ch)
        if code < 0x10000:
            out.append(f"\\u{code:04x}")
        else:  # a surrogate pair, as JSON spells characters beyond the BMP
            code -= 0x10000
            out.append(f"\\u{0xD800 + (code >> 10):04x}\\u{0xDC00 + (code & 0x3FF):04x}")
    return "".join(out)


def print_json(obj: Any) -> None:
    """Machine-readable output, one line (peer text JSON-escaped, so it is safe too)."""
    print(json_line(obj))


def describe_event(event: dict[str, Any], profile: str = DEFAULT_PROFILE) -> list[str]:
    """The human lines for one node event, for ``p2pchat serve`` (hints name ``profile``).

    One line, except for a message of several lines: its later lines come indented by
    ``CONTINUATION``. Every line is safe to print (see ``safe_text``).
    """
    kind = event.get("type")
    peer = safe_text(str(event.get("peer"))[:8])
    if kind == "message":
        who = safe_text(event.get("author_name"))
        first, *rest = text_lines(event.get("text"))
        head = (
            f"message from {who}: {first}"
            if event.get("incoming")
            else f"you wrote ({safe_text(event.get('status'))}): {first}"
        )
        return [head, *(CONTINUATION + line for line in rest)]
    return [safe_text(_describe_other(kind, event, peer, profile))]


def standing(state: object, verified: object = False) -> str:
    """What a peer is to us, in words ("verified contact", "not a contact"…)."""
    if state == "contact":
        return "verified contact" if verified else "contact"
    return {"unknown": "not a contact", "request": "asking to chat"}.get(str(state), str(state))


def _describe_other(kind: object, event: dict[str, Any], peer: str, profile: str) -> str:
    """The line of an event other than a message (escaped by the caller as a whole)."""
    raw, event = event, {key: "" if value is None else value for key, value in event.items()}
    if kind == "receipt":
        return f"{len(event.get('ids', []))} message(s) {event.get('status')}"
    if kind == "online":
        return f"{event.get('name')} is online ({event.get('host')})"
    if kind == "offline":
        return f"{event.get('name') or peer} went offline ({event.get('reason')})"
    if kind == "peer" and event.get("state") == "self":
        return f"your name is now {event.get('name')}"
    if kind == "peer":  # a rename, or a change of state: say both, in words
        what = standing(event.get("state"))
        article = "a " if what == "contact" else ""
        return f"{event.get('name') or peer} ({peer}) is {article}{what}"
    if kind == "typing":
        return f"{peer} {'is typing' if event.get('typing') else 'stopped typing'}"
    if kind == "request":
        accept = command_hint(profile, f"accept {peer}")
        return f"contact request from {event.get('name')} ({peer}); to accept: {accept}"
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
        room = str(event.get("room"))[:8]
        join = command_hint(profile, f"room join {room}")
        return f"{event.get('inviter_name')} invited you to {event.get('name')}; to join: {join}"
    if kind == "transfer":
        size = int(event.get("size") or 0)
        done = int(event.get("done") or 0)
        pct = f"{100 * done // size}%" if size else ""
        state, detail = event.get("state"), event.get("detail") or ""
        return f"file {event.get('name')}: {state} {pct} {detail}".rstrip()
    if kind == "warning":
        return f"WARNING: {event.get('text')}"
    if kind == "status":
        mdns = "announced over mDNS" if event.get("announcing") else "not announced"
        return f"listening on port {event.get('port')} ({mdns})"
    if kind == "tor":
        state = str(event.get("state"))
        if state == "bootstrapping":
            state = f"bootstrapping {event.get('percent')} %"
        elif state == "ready":
            state = f"ready: reachable at {event.get('onion')}.onion"
        detail = f" ({event.get('detail')})" if event.get("detail") and state != "ready" else ""
        return f"tor {state}{detail}"
    return json_line(raw)


class SafeLogFormatter(logging.Formatter):
    """Log records as terminal-safe lines, for the CLI's stderr.

    A log message can quote what a peer sent (an mDNS service name, an error about a
    frame): its first line is escaped as a whole (``safe_text``), and a traceback's lines
    are escaped and indented, so no peer text starts a line of its own.
    """

    def format(self, record: logging.LogRecord) -> str:
        head = f"p2pchat: {record.levelname.lower()}: {safe_text(record.getMessage())}"
        if not record.exc_info:
            return head
        trace = self.formatException(record.exc_info).splitlines()
        return "\n".join([head, *(CONTINUATION + safe_text(line) for line in trace)])


class _StderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever ``sys.stderr`` is at the time of each record."""

    def emit(self, record: logging.LogRecord) -> None:
        self.stream = sys.stderr  # no flush of the old one: it may be closed
        super().emit(record)


def log_to_stderr(level: int = logging.WARNING) -> None:
    """Send warnings and errors to stderr through ``SafeLogFormatter`` (instead of
    Python's last-resort handler, which prints messages as they are). Idempotent."""
    root = logging.getLogger()
    if any(isinstance(h, _StderrHandler) for h in root.handlers):
        return
    handler = _StderrHandler(sys.stderr)
    handler.setLevel(level)
    handler.setFormatter(SafeLogFormatter())
    root.addHandler(handler)


def eprint(*lines: object) -> None:
    """Lines on stderr (each one line, escaped: see ``say``)."""
    say(*lines, err=True)
