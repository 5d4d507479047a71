"""The control socket's wire format: one JSON object per line, both ways.

Request:  ``{"id": 1, "method": "send", "params": {"peer": "bob", "text": "hi"}}``
Response: ``{"id": 1, "result": ...}`` or ``{"id": 1, "error": {"message": "..."}}``
``{"id": 2, "method": "subscribe"}`` turns the connection into an event stream:
``{"event": {"type": "message", ...}}`` lines until the client disconnects.
"""

from __future__ import annotations

import json
from typing import Any

MAX_LINE = 1 << 20  # a request larger than 1 MiB is refused, never buffered


class ControlProtocolError(Exception):
    """A malformed line on the control socket."""


def encode_line(obj: Any) -> bytes:
    """One JSON object as a UTF-8 line (non-ASCII kept readable)."""
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode("utf-8") + b"\n"


def decode_line(line: bytes) -> dict[str, Any]:
    """Parse one line into a JSON object; raise ControlProtocolError otherwise."""
    try:
        obj = json.loads(line)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ControlProtocolError(f"not JSON: {exc}") from None
    if not isinstance(obj, dict):
        raise ControlProtocolError("expected a JSON object")
    return obj
