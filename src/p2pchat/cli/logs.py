"""What ``p2pchat serve`` prints besides events: why the node refused what a peer sent.

The node and transport log each refusal (a malformed frame, a relayed direct message, a
far-ahead Lamport time, a failed handshake...) at INFO with the peer and the reason, as
docs/protocol.md promises. A person running ``serve`` should see them, but a hostile
peer can cause thousands a second: so each (peer, reason) is printed once per window,
and the next line after the window says how many were held back. Lines go to stderr
(stdout stays events only, one JSON object a line with ``--json``), with control
characters neutralised: reasons can quote what a peer sent.
"""

from __future__ import annotations

import logging
import re
import sys
import time
from collections.abc import Callable
from typing import TextIO

from p2pchat.cli.output import safe_text

#: Each distinct (peer, reason) is printed at most once in this many seconds.
WINDOW = 60.0
#: At most this many (peer, reason) pairs are remembered; beyond, old ones are forgotten.
MAX_KEYS = 1024
_DIGITS = re.compile(r"\d+")


def _reason_key(record: logging.LogRecord) -> tuple[object, ...]:
    """The record's template and arguments, numbers in its last argument blurred.

    Every drop log ends with the reason (``"... from %s: %s"``); a reason such as
    ``lamport 123 is implausibly far ahead`` differs per frame only in its numbers, and
    must count as one reason. The other arguments (peer, room) are kept as they are.
    """
    args = record.args if isinstance(record.args, tuple) else ()
    if args:
        args = (*args[:-1], _DIGITS.sub("#", str(args[-1])))
    return (record.name, str(record.msg), *map(str, args))


class OncePerWindow(logging.Filter):
    """Let each distinct log line through once per ``window`` seconds (see module doc)."""

    def __init__(
        self, window: float = WINDOW, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        super().__init__()
        self.window = window
        self._clock = clock
        self._seen: dict[tuple[object, ...], tuple[float, int]] = {}  # key: (printed at, held)

    def filter(self, record: logging.LogRecord) -> bool:
        now = self._clock()
        key = _reason_key(record)
        last = self._seen.get(key)
        if last is not None and now - last[0] < self.window:
            self._seen[key] = (last[0], last[1] + 1)
            return False
        held = last[1] if last is not None else 0
        if len(self._seen) >= MAX_KEYS:
            self._seen = {k: v for k, v in self._seen.items() if now - v[0] < self.window}
            if len(self._seen) >= MAX_KEYS:
                self._seen.clear()
        self._seen[key] = (now, 0)
        if held:
            record.msg = f"{record.msg} ({held} more like it held back)"
        return True


class _SafeFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return safe_text(super().format(record))


def show_node_logs(stream: TextIO | None = None) -> logging.Handler:
    """Print the node's INFO-and-above log lines on ``stream`` (stderr), rate-limited."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setLevel(logging.INFO)
    handler.addFilter(OncePerWindow())
    handler.setFormatter(_SafeFormatter("%(asctime)s  %(message)s", datefmt="%H:%M:%S"))
    logger = logging.getLogger("p2pchat")
    logger.setLevel(logging.INFO)
    logger.addHandler(handler)
    return handler
