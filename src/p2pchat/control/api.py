"""The node's API as named methods with JSON parameters and results.

The control socket dispatches requests here, and the CLI calls the same object
directly when no node is running, so both paths behave identically.
"""

from __future__ import annotations

import asyncio
import os
import secrets
from collections.abc import Awaitable, Callable
from typing import Any

from p2pchat.control.changes_api import change_methods
from p2pchat.control.chats_api import chat_methods
from p2pchat.control.files_api import file_methods
from p2pchat.control.params import ApiError, number_param, text_param
from p2pchat.control.serialize import JSONDict, message_json, peer_json, status_name
from p2pchat.control.stickers_api import sticker_methods
from p2pchat.control.tor_api import tor_methods
from p2pchat.hostport import parse_host_port
from p2pchat.identity import encode_peer_id, short_id
from p2pchat.node import (
    BOOL_SETTINGS,
    SETTING_DOWNLOAD_DIR,
    TEXT_SETTINGS,
    Node,
    NodeError,
    PeerLookupError,
)
from p2pchat.store import MessageStatus, StoreError
from p2pchat.store.backup import snapshot

#: Prefix of the store snapshots the ``backup`` call leaves in the profile's folder.
SNAPSHOT_PREFIX = "backup-snapshot-"

MAX_HISTORY = 10_000
MAX_WAIT = 3600.0
#: A send's client id (idempotent sends), in characters.
MAX_CLIENT_ID = 64


def _client_id(params: JSONDict) -> str | None:
    """The optional ``client_id`` of a send: 1 to 64 printable characters."""
    value = params.get("client_id")
    if value is None:
        return None
    if not isinstance(value, str) or not 0 < len(value) <= MAX_CLIENT_ID or not value.isprintable():
        raise ApiError(f"'client_id' must be 1 to {MAX_CLIENT_ID} printable characters")
    return value


class NodeApi:
    """Named, JSON-in/JSON-out operations on a running node."""

    def __init__(self, node: Node) -> None:
        self.node = node
        self._methods: dict[str, Callable[[JSONDict], Awaitable[Any]]] = {
            "info": self.info,
            "peers": self.peers,
            "send": self.send,
            "history": self.history,
            "wait_delivered": self.wait_delivered,
            "add": self.add,
            "forget": self.forget,
            "accept": self.accept,
            "block": self.block,
            "requests": self.requests,
            "clear_requests": self.clear_requests,
            "name": self.name,
            "settings": self.settings,
            "rooms": self.rooms,
            "room_create": self.room_create,
            "room_invite": self.room_invite,
            "room_join": self.room_join,
            "room_decline": self.room_decline,
            "room_leave": self.room_leave,
            "room_members": self.room_members,
            "room_remove": self.room_remove,
            "room_promote": self.room_promote,
            "room_rename": self.room_rename,
            "backup": self.backup,
        }
        self._methods.update(file_methods(self))
        self._methods.update(chat_methods(self))
        self._methods.update(tor_methods(self))
        self._methods.update(change_methods(self))
        self._methods.update(sticker_methods(self))

    @property
    def methods(self) -> list[str]:
        """Names of every method (for ``help`` and errors)."""
        return sorted(self._methods)

    async def call(self, method: str, params: JSONDict | None = None) -> Any:
        """Run ``method``; raises ApiError with a message meant for people."""
        handler = self._methods.get(method)
        if handler is None:
            raise ApiError(f"unknown method {method!r}; known: {', '.join(self.methods)}")
        try:
            return await handler(params or {})
        except PeerLookupError as exc:
            raise ApiError(str(exc), candidates=[peer_json(p) for p in exc.candidates]) from None
        except NodeError as exc:
            raise ApiError(str(exc)) from None

    async def backup(self, params: JSONDict) -> JSONDict:
        """Snapshot the store (consistent, taken while the node runs) for ``p2pchat backup``.

        The snapshot goes into the profile's own folder under a name the node picks (no
        path from the caller reaches the filesystem); the caller packs it and removes it.
        """
        directory = self.node.profile.directory
        dest = directory / f"{SNAPSHOT_PREFIX}{secrets.token_hex(8)}.sqlite3"
        try:
            # Same key as the store: an encrypted store's snapshot is encrypted too.
            profile = self.node.profile
            await asyncio.to_thread(snapshot, profile.store_path, dest, profile.store_key)
        except StoreError as exc:
            raise ApiError(str(exc)) from None
        return {"snapshot": dest.name}

    async def peer_param(self, params: JSONDict, *, trusted_first: bool = True) -> bytes:
        text = text_param(params, "peer", max_len=200)
        try:
            return await self.node.resolve_peer(text, trusted_first=trusted_first)
        except PeerLookupError as exc:
            if not exc.candidates and self._is_me(text):
                raise ApiError(f"{text!r} is you: name someone else") from None
            raise

    def _is_me(self, text: str) -> bool:
        """Our own display name, id or id prefix (nobody else is called that)."""
        query = text.strip()
        node = self.node
        return query.casefold() == node.profile.display_name.casefold() or (
            len(query) >= 4 and node.peer_id_text.startswith(query.lower())
        )

    async def info(self, params: JSONDict) -> JSONDict:
        """Who this node is and where it listens."""
        node = self.node
        return {
            "id": node.peer_id_text,
            "short_id": short_id(node.me),
            "name": node.profile.display_name,
            "profile": node.profile.name,
            "port": node.port if node.config.network else None,
            "online_peers": len(node.links.links),
        }

    async def peers(self, params: JSONDict) -> list[JSONDict]:
        """Known peers and contacts, online first."""
        return [peer_json(p) for p in await self.node.list_peers()]

    async def send(self, params: JSONDict) -> JSONDict:
        """Send a text (or our ``sticker`` PACK/NAME) to a peer or a room; wait up to
        ``wait`` seconds for delivery."""
        sticker = text_param(params, "sticker", max_len=80) if "sticker" in params else None
        text = "" if sticker is not None else text_param(params, "text")
        wait = number_param(params, "wait", 0.0, 0.0, MAX_WAIT)
        client_id = _client_id(params)
        if params.get("room") is not None:
            room = await self.room_param(params)
            if sticker is not None:
                message = await self.node.stickers.send_to_room(room, sticker)
            else:
                message = await self.node.send_message(room, text, client_id=client_id)
            if wait > 0:
                await self.node.wait_for_status(message.id, MessageStatus.DELIVERED, wait)
            current = await self.node.get_message(message.id) or message
            return {
                "status": status_name(current.status),
                "message": message_json(self.node, current),
            }
        peer = await self.peer_param(params)
        if sticker is not None:
            message = await self.node.stickers.send(peer, sticker)
        else:
            message = await self.node.send_text(peer, text, client_id=client_id)
        # A node that has run for a while and has no link to the peer will not get one in
        # the next seconds: report "queued" at once. A fresh node may still be connecting.
        if wait > 0 and (self.node.links.is_online(peer) or self.node.uptime < wait + 5):
            await self.node.wait_for_status(message.id, MessageStatus.DELIVERED, wait)
        current = await self.node.get_message(message.id) or message
        return {
            "status": status_name(current.status),
            "peer_online": self.node.links.is_online(peer),
            "peer_state": (await self._state(peer)),
            "message": message_json(self.node, current),
        }

    async def wait_delivered(self, params: JSONDict) -> JSONDict:
        """Wait up to ``wait`` seconds for a sent message (``id``) to be delivered.

        ``send --wait``: the message is stored first (so ctrl+c while waiting loses
        nothing), then this waits, even for someone offline, as long as asked.
        """
        try:
            message_id = bytes.fromhex(text_param(params, "id", max_len=128))
        except ValueError:
            raise ApiError("parameter 'id' must be a message id (hex)") from None
        wait = number_param(params, "wait", 0.0, 0.0, MAX_WAIT)
        if await self.node.get_message(message_id) is None:
            raise ApiError("no such message")
        await self.node.wait_for_status(message_id, MessageStatus.DELIVERED, wait)
        current = await self.node.get_message(message_id)
        assert current is not None
        return {"status": status_name(current.status), "message": message_json(self.node, current)}

    async def _state(self, peer: bytes) -> str:
        for info in await self.node.list_peers():
            if info.peer_id == peer:
                return info.state
        return "unknown"

    async def history(self, params: JSONDict) -> JSONDict:
        """The latest messages with a peer or in a room; showing them marks them read."""
        limit = int(number_param(params, "limit", 50, 1, MAX_HISTORY))
        if params.get("room") is not None:
            room = await self.room_param(params)
            title = next((r.name for r in await self.node.list_rooms() if r.room_id == room), "")
        else:
            peer = await self.peer_param(params)
            room = self.node.direct_room(peer)
            title = self.node.peer_name(peer)
        messages = await self.node.history(room, limit)
        if params.get("mark_read", True):
            await self.node.mark_read(room, [m.id for m in messages])
        reactions = await self.node.reactions([m.id for m in messages])
        return {
            "peer": title,
            "room": room.hex(),
            "messages": [
                {
                    **message_json(self.node, m),
                    "reactions": [
                        {"emoji": r.emoji, "author_name": self.node.peer_name(r.author)}
                        for r in reactions.get(m.id, [])
                    ],
                }
                for m in messages
            ],
        }

    async def room_param(self, params: JSONDict) -> bytes:
        return await self.node.resolve_room(text_param(params, "room", max_len=200))

    async def rooms(self, params: JSONDict) -> list[JSONDict]:
        """Every conversation: direct chats and group rooms, with unread counts."""
        out = []
        for r in await self.node.list_rooms():
            mine = None
            if r.kind == "group":
                members = await self.node.groups.members(r.room_id)
                mine = next((m.state for m in members if m.peer_id == self.node.me), None)
                count = sum(1 for m in members if m.state == "joined")
            else:
                count = 2
            out.append(
                {
                    "id": r.room_id.hex(),
                    "kind": r.kind,
                    "name": r.name,
                    "members": count,
                    "my_state": mine or "joined",
                    "unread": r.unread,
                    "online": r.online,
                    "muted": r.muted,
                    "archived": r.archived,
                }
            )
        return out

    async def room_create(self, params: JSONDict) -> JSONDict:
        """Create a group room (``name``, optional ``topic``)."""
        topic = params.get("topic")
        room = await self.node.groups.create_room(
            text_param(params, "name", max_len=1000), topic if isinstance(topic, str) else None
        )
        return {"id": room.hex(), "name": params["name"]}

    async def room_invite(self, params: JSONDict) -> JSONDict:
        """Invite a contact to a room."""
        room, peer = await self.room_param(params), await self.peer_param(params)
        await self.node.groups.invite(room, peer)
        return {"room": room.hex(), "invited": self.node.peer_name(peer)}

    async def room_join(self, params: JSONDict) -> JSONDict:
        """Accept an invitation."""
        room = await self.room_param(params)
        await self.node.groups.join(room)
        # The room's own name, not whatever prefix or spelling the person typed.
        name = next((r.name for r in await self.node.list_rooms() if r.room_id == room), None)
        return {"room": room.hex(), "state": "joined", "name": name}

    async def room_decline(self, params: JSONDict) -> JSONDict:
        """Refuse an invitation."""
        room = await self.room_param(params)
        await self.node.groups.decline(room)
        return {"room": room.hex(), "state": "left"}

    async def room_leave(self, params: JSONDict) -> JSONDict:
        """Leave a room."""
        room = await self.room_param(params)
        await self.node.groups.leave(room)
        return {"room": room.hex(), "state": "left"}

    async def room_members(self, params: JSONDict) -> list[JSONDict]:
        """Members of a room with role and state."""
        room = await self.room_param(params)
        return [
            {
                "id": encode_peer_id(m.peer_id),
                "short_id": short_id(m.peer_id),
                "name": m.name,
                "role": m.role,
                "state": m.state,
                "online": m.online,
                "you": m.peer_id == self.node.me,
            }
            for m in await self.node.groups.members(room)
        ]

    async def room_remove(self, params: JSONDict) -> JSONDict:
        """Remove a member (owners and admins)."""
        # Like block: a shared name is a tie, the stranger may be the one meant.
        room, peer = (
            await self.room_param(params),
            await self.peer_param(params, trusted_first=False),
        )
        await self.node.groups.remove(room, peer)
        return {"room": room.hex(), "removed": self.node.peer_name(peer)}

    async def room_promote(self, params: JSONDict) -> JSONDict:
        """Make a member an admin."""
        room, peer = await self.room_param(params), await self.peer_param(params)
        await self.node.groups.promote(room, peer)
        return {"room": room.hex(), "admin": self.node.peer_name(peer)}

    async def room_rename(self, params: JSONDict) -> JSONDict:
        """Rename a room."""
        room = await self.room_param(params)
        name = text_param(params, "name", max_len=1000)
        await self.node.groups.rename(room, name)
        return {"room": room.hex(), "name": name}

    async def add(self, params: JSONDict) -> JSONDict:
        """Remember a manual address (HOST:PORT) and dial it."""
        try:
            host, port = parse_host_port(text_param(params, "address", max_len=300))
        except ValueError as exc:
            raise ApiError(str(exc)) from None
        await self.node.add_address(host, port)
        return {"address": f"{host}:{port}"}

    async def forget(self, params: JSONDict) -> JSONDict:
        """Forget a stored address (HOST:PORT) and the peer id it was pinned to."""
        try:
            host, port = parse_host_port(text_param(params, "address", max_len=300))
        except ValueError as exc:
            raise ApiError(str(exc)) from None
        known = await self.node.forget_address(host, port)
        return {"address": f"{host}:{port}", "forgotten": known}

    async def accept(self, params: JSONDict) -> JSONDict:
        """Accept a contact request (or make a peer a contact)."""
        # A shared name is a tie here: the request to accept is a stranger's, and
        # accepting one who took a contact's name must never happen by name alone.
        peer = await self.peer_param(params, trusted_first=False)
        await self.node.accept(peer)
        return {"peer": self.node.peer_name(peer), "state": "contact"}

    async def block(self, params: JSONDict) -> JSONDict:
        """Block a peer: nothing from them is stored or shown."""
        # A name two peers share is a tie here, whoever is a contact: the one to block
        # is more likely the stranger who took a contact's name than the contact.
        peer = await self.peer_param(params, trusted_first=False)
        await self.node.block(peer)
        return {"peer": self.node.peer_name(peer), "state": "blocked"}

    def _held_back(self) -> JSONDict:
        held = self.node.requests_held_back
        return {"requests": held.requests, "messages": held.messages}

    async def requests(self, params: JSONDict) -> JSONDict:
        """Open contact requests, and how many were held back (not kept) since the last
        clear: requests that made way for newer ones, messages past a request's limits."""
        peers = [p for p in await self.node.list_peers() if p.state == "request"]
        return {"open": [peer_json(p) for p in peers], "held_back": self._held_back()}

    async def clear_requests(self, params: JSONDict) -> JSONDict:
        """Remove every open contact request and its messages; reset the held-back count."""
        cleared = await self.node.clear_requests()
        return {"cleared": cleared, "held_back": self._held_back()}

    async def name(self, params: JSONDict) -> JSONDict:
        """Change our display name."""
        try:
            new = await self.node.rename(text_param(params, "name", max_len=1000))
        except ValueError as exc:
            raise ApiError(str(exc)) from None
        return {"name": new}

    async def settings(self, params: JSONDict) -> JSONDict:
        """Read all settings, or set one: ``key`` with a boolean ``value`` (read
        receipts, typing, announce) or a text one (``download_dir``)."""
        key = params.get("key")
        if key is not None:
            value = params.get("value")
            if not isinstance(key, str):
                raise ApiError("settings: 'key' must be text")
            if key in TEXT_SETTINGS and isinstance(value, str):
                if key == SETTING_DOWNLOAD_DIR and value and not os.path.isabs(value):
                    # Relative to what? The node's working directory is nobody's guess.
                    raise ApiError("settings: download_dir must be an absolute path (or empty)")
                await self.node.set_text_setting(key, value)
            elif key in BOOL_SETTINGS and isinstance(value, bool):
                await self.node.set_setting(key, value)
            elif key in TEXT_SETTINGS or key in BOOL_SETTINGS:
                kind = "text" if key in TEXT_SETTINGS else "true or false"
                raise ApiError(f"settings: {key!r} takes {kind}")
            else:
                known = ", ".join([*BOOL_SETTINGS, *TEXT_SETTINGS])
                raise ApiError(f"settings: no setting {key!r} (there are: {known})")
        return {
            **{k: self.node.setting(k) for k in BOOL_SETTINGS},
            **{k: self.node.text_setting(k) for k in TEXT_SETTINGS},
        }


async def wait_forever() -> None:
    """Park a task until cancelled (used by ``serve``)."""
    await asyncio.Event().wait()
