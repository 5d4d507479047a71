"""Control-socket methods that change messages: ``edit``, ``delete``, ``disappear``.

Message ids are the full hex ids ``history --json`` shows: no prefixes, so a script
never edits or deletes the wrong message.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from p2pchat.control.params import ApiContext, ApiError, text_param
from p2pchat.control.serialize import message_json
from p2pchat.node.edits import TIMER_CHOICES, TIMER_NAMES

Handler = Callable[[dict[str, Any]], Awaitable[Any]]

#: What ``disappear`` takes: a name or a number of seconds among TIMER_CHOICES.
TIMER_WORDS = {"off": 0, "5m": 300, "1h": 3600, "1d": 86400, "1w": 604800}


def parse_timer(text: str) -> int | None:
    """Seconds for ``off``, ``5m``, ``1h``, ``1d``, ``1w`` (or those seconds); else None."""
    word = text.strip().lower()
    if word in TIMER_WORDS:
        return TIMER_WORDS[word]
    if word.isdigit() and int(word) in TIMER_CHOICES:
        return int(word)
    return None


def change_methods(api: ApiContext) -> dict[str, Handler]:
    """The message-changing methods to add to ``api``."""

    node = api.node

    def message_id(params: dict[str, Any]) -> bytes:
        text = text_param(params, "id", max_len=64).strip().lower()
        try:
            value = bytes.fromhex(text)
        except ValueError:
            value = b""
        if len(value) != 16:
            raise ApiError(
                "parameter 'id' must be a message id (32 hex digits, see history --json)"
            )
        return value

    async def edit(params: dict[str, Any]) -> dict[str, Any]:
        """Replace the text of one of our messages (``id``, ``text``)."""
        target = message_id(params)
        await node.edit_message(target, text_param(params, "text"))
        current = await node.get_message(target)
        assert current is not None
        return {"message": message_json(node, current)}

    async def delete(params: dict[str, Any]) -> dict[str, Any]:
        """Delete a message (``id``): ours, or as a group owner/admin a member's."""
        target = message_id(params)
        await node.delete_message(target)
        current = await node.get_message(target)
        assert current is not None
        return {"message": message_json(node, current)}

    async def disappear(params: dict[str, Any]) -> dict[str, Any]:
        """Read (no ``timer``) or set a chat's or room's disappearing-message timer."""
        if params.get("room") is not None:
            room = await api.room_param(params)
        else:
            room = node.direct_room(await api.peer_param(params))
        if params.get("timer") is not None:
            seconds = parse_timer(text_param(params, "timer", max_len=16))
            if seconds is None:
                raise ApiError("timer must be off, 5m, 1h, 1d or 1w")
            await node.set_disappearing(room, seconds)
        seconds = await node.disappearing(room)
        return {"room": room.hex(), "seconds": seconds, "timer": TIMER_NAMES[seconds]}

    return {"edit": edit, "delete": delete, "disappear": disappear}
