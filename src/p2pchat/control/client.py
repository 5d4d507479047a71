"""Talk to a running node over its control socket (used by the CLI and by scripts)."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from collections.abc import AsyncIterator
from pathlib import Path
from types import TracebackType
from typing import Any

from p2pchat.control.params import ApiError
from p2pchat.control.protocol import MAX_LINE, ControlProtocolError, decode_line, encode_line

#: What a command says when the node it was talking to goes away mid-way.
NODE_STOPPED = (
    "the running p2pchat (the app or `p2pchat serve`) stopped; run this command again to carry on"
)


class ControlClient:
    """A connection to ``control.sock``; ``await call(method, params)``."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._reader = reader
        self._writer = writer
        self._ids = itertools.count(1)

    @classmethod
    async def connect(cls, path: Path) -> ControlClient:
        """Connect; raises OSError when no node answers there."""
        reader, writer = await asyncio.open_unix_connection(str(path), limit=MAX_LINE)
        return cls(reader, writer)

    async def call(self, method: str, params: dict[str, Any] | None = None) -> Any:
        """Run ``method`` on the node; raises ApiError with the node's message."""
        req_id = next(self._ids)
        self._writer.write(encode_line({"id": req_id, "method": method, "params": params or {}}))
        await self._writer.drain()
        line = await self._reader.readline()
        if not line:
            raise ApiError(NODE_STOPPED)
        try:
            response = decode_line(line)
        except ControlProtocolError as exc:
            raise ApiError(f"bad answer from the running p2pchat: {exc}") from None
        if "error" in response:
            error = response["error"] if isinstance(response["error"], dict) else {}
            extra = {k: v for k, v in error.items() if k != "message"}
            raise ApiError(str(error.get("message", "unknown error")), **extra)
        return response.get("result")

    async def events(self) -> AsyncIterator[dict[str, Any]]:
        """Subscribe and yield each event object until the node goes away."""
        self._writer.write(encode_line({"id": next(self._ids), "method": "subscribe"}))
        await self._writer.drain()
        await self._reader.readline()  # the "subscribed" acknowledgement
        while line := await self._reader.readline():
            with contextlib.suppress(ControlProtocolError):
                obj = decode_line(line)
                if isinstance(obj.get("event"), dict):
                    yield obj["event"]

    async def close(self) -> None:
        """Close the connection."""
        self._writer.close()
        with contextlib.suppress(Exception):
            await self._writer.wait_closed()

    async def __aenter__(self) -> ControlClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()
