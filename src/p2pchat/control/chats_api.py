"""Control-socket methods for finding and managing chats (issue 14, items 1 and 5).

``search``, ``chat_mute``, ``chat_archive``, ``chat_delete`` and ``export``:
the same JSON shapes for the control socket, the CLI and scripts. A chat is named by
``peer`` (a direct chat) or ``room`` (a group room), as ``history`` takes them.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from p2pchat.control.params import ApiContext, ApiError, number_param, text_param
from p2pchat.control.serialize import message_json
from p2pchat.identity import encode_peer_id
from p2pchat.node import SearchError
from p2pchat.node.chats import DEFAULT_RESULTS
from p2pchat.node.export import FORMATS
from p2pchat.store.search import MAX_QUERY_CHARS, MAX_RESULTS

Handler = Callable[[dict[str, Any]], Awaitable[Any]]


class _ChatApi:
    """The handlers, sharing the node and the peer-or-room lookup."""

    def __init__(self, api: ApiContext) -> None:
        self.api = api
        self.node = api.node

    async def target(self, params: dict[str, Any]) -> bytes:
        """The room named by ``room`` or ``peer`` (never both)."""
        if params.get("room") is not None and params.get("peer") is not None:
            raise ApiError("give either 'peer' or 'room', not both")
        if params.get("room") is not None:
            return await self.node.resolve_room(text_param(params, "room", max_len=200))
        return self.node.direct_room(await self.api.peer_param(params))

    async def search(self, params: dict[str, Any]) -> dict[str, Any]:
        """Messages holding every word of ``text``, newest first; ``peer``/``room``
        narrow it, ``limit`` (default 50) and ``before`` (a ``next_before``) page it."""
        text = params.get("text")
        if not isinstance(text, str):
            raise ApiError("missing or invalid parameter 'text' (text expected)")
        if len(text) > MAX_QUERY_CHARS:
            raise ApiError(f"search text is too long (at most {MAX_QUERY_CHARS} characters)")
        named = params.get("room") is not None or params.get("peer") is not None
        room = await self.target(params) if named else None
        limit = int(number_param(params, "limit", DEFAULT_RESULTS, 1, MAX_RESULTS))
        before = params.get("before")
        if before is not None and (isinstance(before, bool) or not isinstance(before, int)):
            raise ApiError("parameter 'before' must be a whole number (a 'next_before')")
        try:
            page = await self.node.chats.search(text, room=room, limit=limit, before_rowid=before)
        except SearchError as exc:
            raise ApiError(str(exc)) from None
        return {
            "query": text,
            "results": [
                {
                    **message_json(self.node, hit.message),
                    "room_name": hit.room_name,
                    "room_kind": hit.room_kind,
                    "peer": encode_peer_id(hit.peer_id) if hit.peer_id else None,
                }
                for hit in page.hits
            ],
            # False when a search of only 1-2 character words stopped at its time budget.
            "complete": page.resume_before is None,
            "next_before": page.next_before,
        }

    async def chat_mute(self, params: dict[str, Any]) -> dict[str, Any]:
        """Mute (``muted``: true, the default) or unmute a chat."""
        room = await self.target(params)
        muted = _flag(params, "muted", default=True)
        await self.node.chats.set_muted(room, muted)
        return {"room": room.hex(), "muted": muted}

    async def chat_archive(self, params: dict[str, Any]) -> dict[str, Any]:
        """Archive (``archived``: true, the default) or unarchive a chat."""
        room = await self.target(params)
        archived = _flag(params, "archived", default=True)
        await self.node.chats.set_archived(room, archived)
        return {"room": room.hex(), "archived": archived}

    async def chat_delete(self, params: dict[str, Any]) -> dict[str, Any]:
        """Delete a chat's messages from this computer only (a group is left first)."""
        room = await self.target(params)
        removed = await self.node.chats.delete_locally(room)
        return {"room": room.hex(), "removed": removed}

    async def export(self, params: dict[str, Any]) -> dict[str, Any]:
        """Write a chat to ``path`` (absolute) as ``format`` md, json or html."""
        room = await self.target(params)
        fmt = params.get("format", "md")
        if fmt not in FORMATS:
            raise ApiError(f"'format' must be one of {', '.join(FORMATS)}")
        path = Path(text_param(params, "path", max_len=4096))
        if not path.is_absolute():
            raise ApiError("'path' must be absolute (the node runs in another directory)")
        overwrite = _flag(params, "overwrite", default=False)
        result = await self.node.chats.export(room, fmt, path, overwrite=overwrite)
        return {
            "room": room.hex(),
            "path": str(result.path),
            "format": fmt,
            "messages": result.messages,
            "pictures": result.pictures,
        }


def _flag(params: dict[str, Any], key: str, *, default: bool) -> bool:
    value = params.get(key, default)
    if not isinstance(value, bool):
        raise ApiError(f"parameter {key!r} must be true or false")
    return value


def chat_methods(api: ApiContext) -> dict[str, Handler]:
    """The chat methods to add to ``api``."""
    chats = _ChatApi(api)
    return {
        "search": chats.search,
        "chat_mute": chats.chat_mute,
        "chat_archive": chats.chat_archive,
        "chat_delete": chats.chat_delete,
        "export": chats.export,
    }


__all__ = ["chat_methods"]
