"""File transfers: offers, pulls by range over a separate connection, resume, verify.

(Skeleton: the node calls these hooks; the engine fills them in.)
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from p2pchat.transport import Connection

if TYPE_CHECKING:
    from p2pchat.node.service import Node
    from p2pchat.store import Message


class TransferService:
    """Owns every file transfer of one node."""

    def __init__(self, node: Node) -> None:
        self.node = node

    async def start(self) -> None:
        """Resume unfinished transfers (called once the node is up)."""

    async def stop(self) -> None:
        """Stop transfers, keeping ``.part`` files for resume."""

    async def serve_connection(self, conn: Connection) -> None:
        """Serve a ``purpose: files`` connection for its lifetime."""
        await conn.close("file transfers are not supported yet")

    def check_offer(self, body: bytes) -> str | None:
        """Why a received ``file`` envelope body is unacceptable, or None if it is fine."""
        del body
        return "file transfers are not supported yet"

    async def on_file_message(self, message: Message, incoming: bool) -> None:
        """A ``file`` message was stored (ours or a peer's)."""

    async def send_file(self, peer_id: bytes, path: Path) -> Message:
        """Offer ``path`` to ``peer_id``."""
        raise NotImplementedError
