"""The control socket: a running node (TUI or ``serve``) answers the CLI and scripts.

A Unix domain socket in the profile directory, mode 0600 inside a 0700 directory, so
only the profile's owner can drive the node. Requests are bounded in size and the
number of clients is capped.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
from pathlib import Path
from typing import Any

from p2pchat.control.api import NodeApi
from p2pchat.control.params import ApiError
from p2pchat.control.protocol import MAX_LINE, ControlProtocolError, decode_line, encode_line
from p2pchat.control.serialize import event_json
from p2pchat.node import StoreError

log = logging.getLogger(__name__)

MAX_CLIENTS = 32


class ControlServerError(Exception):
    """The socket could not be set up (another node owns it, path too long, ...)."""


def socket_is_live(path: Path) -> bool:
    """True if a node is answering on ``path``."""
    if not path.exists():
        return False
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
        probe.settimeout(1.0)
        try:
            probe.connect(str(path))
        except OSError:
            return False
    return True


class ControlServer:
    """Serve ``api`` on the Unix socket at ``path``."""

    def __init__(self, api: NodeApi, path: Path) -> None:
        self.api = api
        self.path = path
        self._server: asyncio.Server | None = None
        self._clients: set[asyncio.StreamWriter] = set()

    async def start(self) -> None:
        """Create the socket (0600), replacing a stale one left by a crash."""
        if socket_is_live(self.path):
            raise ControlServerError(f"another p2pchat already answers on {self.path}")
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()
        old_umask = os.umask(0o177)
        try:
            self._server = await asyncio.start_unix_server(
                self._handle, path=str(self.path), limit=MAX_LINE
            )
        except OSError as exc:
            raise ControlServerError(f"cannot create control socket {self.path}: {exc}") from None
        finally:
            os.umask(old_umask)
        self.path.chmod(0o600)

    async def stop(self) -> None:
        """Close the socket and every client; remove the socket file."""
        if self._server is not None:
            self._server.close()
        for writer in list(self._clients):
            writer.transport.abort()
        if self._server is not None:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(2):
                    await self._server.wait_closed()
            self._server = None
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if len(self._clients) >= MAX_CLIENTS:
            writer.write(encode_line({"error": {"message": "too many control clients"}}))
            writer.close()
            return
        self._clients.add(writer)
        try:
            await self._serve(reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            self._clients.discard(writer)
            writer.close()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            try:
                line = await reader.readline()
            except (asyncio.LimitOverrunError, ValueError):
                writer.write(encode_line({"error": {"message": "request too large"}}))
                return
            if not line:
                return
            try:
                request = decode_line(line)
            except ControlProtocolError as exc:
                writer.write(encode_line({"error": {"message": str(exc)}}))
                await writer.drain()
                continue
            req_id = request.get("id")
            method = request.get("method")
            if method == "subscribe":
                writer.write(encode_line({"id": req_id, "result": "subscribed"}))
                await self._stream_events(reader, writer)
                return
            params = request.get("params") or {}
            response: dict[str, Any] = {"id": req_id}
            if not isinstance(method, str) or not isinstance(params, dict):
                response["error"] = {"message": "a request needs 'method' (text) and 'params'"}
            else:
                try:
                    response["result"] = await self.api.call(method, params)
                except ApiError as exc:
                    response["error"] = exc.data
                except StoreError as exc:  # a full disk, a lock: words for people
                    log.warning("control method %s: %s", method, exc)
                    response["error"] = {"message": str(exc)}
                except Exception as exc:
                    log.exception("control method %s failed", method)
                    response["error"] = {"message": f"internal error: {type(exc).__name__}"}
            writer.write(encode_line(response))
            await writer.drain()

    async def _stream_events(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        node = self.api.node
        stream = node.subscribe()
        closed = asyncio.ensure_future(reader.read())  # EOF when the client leaves
        try:
            while True:
                nxt = asyncio.ensure_future(stream.get())
                done, _ = await asyncio.wait({nxt, closed}, return_when=asyncio.FIRST_COMPLETED)
                if closed in done:
                    nxt.cancel()
                    return
                event = nxt.result()
                if event is None:
                    return
                writer.write(encode_line({"event": event_json(node, event)}))
                await writer.drain()
        finally:
            closed.cancel()
            stream.close()
