"""Conversations as the interfaces read them: history, rooms, reactions, settings."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from p2pchat.identity import safety_number, short_id
from p2pchat.node.edits import with_edits
from p2pchat.node.envelopes import KIND_FILE, KIND_REACTION, direct_room_id, encode_reaction
from p2pchat.node.errors import NodeError
from p2pchat.node.files import ManifestError, decode_manifest, safe_name
from p2pchat.node.model import (
    MAX_UI_SETTING,
    PeerInfo,
    ReactionInfo,
    RoomInfo,
    human_size,
    text_body,
    ui_key,
)
from p2pchat.node.names import name_keys, visible
from p2pchat.node.node_base import DIRECT_ROOM_ID_LEN, MAX_EMOJI_CHARS
from p2pchat.node.outgoing import OutgoingApi
from p2pchat.node.rooms import KIND_SYSTEM, SystemBodyError, decode_system, describe_system
from p2pchat.node.settings import TEXT_SETTINGS
from p2pchat.node.sticker_body import KIND_STICKER, StickerError, decode_sticker
from p2pchat.store import Message, Store


class ConversationApi(OutgoingApi):
    """Conversations as the interfaces read them: history, rooms, reactions, settings."""

    # ================================================================ history

    async def history(self, room: bytes, limit: int = 200) -> list[Message]:
        """The latest displayable messages of a room (at most ``limit``), oldest first."""
        return await self._read(
            lambda s: with_edits(
                s,
                self.groups.shown_page(
                    s, room, s.latest_messages(room, limit, shown_only=True), limit
                ),
            )
        )

    async def older_messages(self, room: bytes, before: Message, limit: int = 200) -> list[Message]:
        """Displayable messages shown before ``before`` (for scrolling up), oldest first."""
        return await self._read(
            lambda s: with_edits(
                s,
                self.groups.shown_page(
                    s, room, s.messages_before(room, before.cursor, limit, shown_only=True), limit
                ),
            )
        )

    async def list_rooms(self) -> list[RoomInfo]:
        """Every conversation, most recent activity first, with unread counts."""

        def load(store: Store) -> list[tuple[Any, list[bytes]]]:
            return [
                (self.groups.shown_summary(store, r), [m.peer for m in store.members(r.room.id)])
                for r in store.list_rooms()
            ]

        rooms = []
        for summary, members in await self._read(load):
            room = summary.room
            peer = next((m for m in members if m != self.me), None)
            if room.kind == "direct" and peer is not None:
                name = self.peer_name(peer)
                online = self.links.is_online(peer)
            else:
                name = room.name or room.id.hex()[:8]
                online = any(self.links.is_online(m) for m in members if m != self.me)
            rooms.append(
                RoomInfo(
                    room.id,
                    room.kind,
                    name,
                    peer if room.kind == "direct" else None,
                    summary.unread,
                    summary.last_message,
                    online,
                    muted=room.muted,
                    archived=summary.archived,
                )
            )
        return rooms

    async def resolve_room(self, text: str) -> bytes:
        """Find a group room by name (case-insensitive) or by the start of its hex id."""
        query = text.strip()
        rooms = [r for r in await self.list_rooms() if r.kind == "group"]
        by_name = [r for r in rooms if r.name.casefold() == query.casefold()]
        by_id = [r for r in rooms if len(query) >= 4 and r.room_id.hex().startswith(query.lower())]
        matches = {r.room_id: r for r in [*by_name, *by_id]}
        if len(matches) == 1:
            return next(iter(matches))
        if not matches:
            raise NodeError(f"no room called {query!r}")
        listing = ", ".join(f"{r.name} ({r.room_id.hex()[:8]})" for r in matches.values())
        raise NodeError(f"{query!r} matches several rooms: {listing}; use the id")

    async def open_direct_room(self, peer_id: bytes) -> bytes:
        """Make sure the one-to-one room with ``peer_id`` exists; return its id."""
        room = direct_room_id(self.me, peer_id)
        await self._write(lambda s: self.core.ensure_direct(s, room, peer_id, self._now_ms()))
        return room

    async def send_message(
        self,
        room: bytes,
        text: str,
        reply_to: bytes | None = None,
        client_id: str | None = None,
    ) -> Message:
        """Write a text message into a room (the person writes to a room, not a peer)."""
        peer = await self.room_peer(room)
        if peer is not None:
            return await self.send_text(peer, text, reply_to, client_id)
        body = text_body(text)
        return await self.groups.send_envelope(room, "text", body, reply_to, client_id)

    async def react(self, message_id: bytes, emoji: str, on: bool = True) -> None:
        """Add (or with ``on=False`` remove) our emoji reaction to a message."""
        emoji = emoji.strip()
        if not emoji or len(emoji) > MAX_EMOJI_CHARS or not emoji.isprintable():
            raise NodeError("a reaction is one emoji")
        target = await self.get_message(message_id)
        if target is None:
            raise NodeError("no such message")
        peer = await self.room_peer(target.room)
        body = encode_reaction(message_id, emoji, on)
        if peer is not None:
            await self.send_envelope(peer, KIND_REACTION, body, None)
            return
        await self.groups.send_envelope(target.room, KIND_REACTION, body, None)

    async def reactions(self, message_ids: Sequence[bytes]) -> dict[bytes, list[ReactionInfo]]:
        """Reactions on these messages, by message id."""
        found = await self._read(lambda s: s.reactions_for(message_ids))
        return {
            mid: [ReactionInfo(r.message_id, r.author, r.emoji) for r in rows]
            for mid, rows in found.items()
        }

    async def send_to_room(
        self, room: bytes, kind: str, body: bytes, reply_to: bytes | None
    ) -> Message:
        """Author an envelope of any kind into a room, direct or group."""
        peer = await self.room_peer(room)
        if peer is None and len(room) == DIRECT_ROOM_ID_LEN:  # no message in it yet
            peer = next((p for p in self._states if self.direct_room(p) == room), None)
        if peer is not None:
            return await self.send_envelope(peer, kind, body, reply_to)
        return await self.groups.send_envelope(room, kind, body, reply_to)

    async def edit_message(self, message_id: bytes, text: str) -> Message:
        """Change the text of our own message, everywhere it went."""
        return await self.changes.edit(message_id, text)

    async def delete_message(self, message_id: bytes) -> Message:
        """Delete a message (ours; in a group, as owner or admin, also a member's)."""
        return await self.changes.delete(message_id)

    async def set_disappearing(self, room: bytes, seconds: int) -> Message:
        """Set the room's disappearing-message timer (0: off; see edits.TIMER_CHOICES)."""
        return await self.changes.set_timer(room, seconds)

    async def disappearing(self, room: bytes) -> int:
        """The room's disappearing-message timer in seconds (0: off)."""
        return await self.changes.timer(room)

    def safety_number(self, peer_id: bytes) -> str:
        """The 60-digit number both people compare to rule out a man in the middle."""
        return safety_number(self.me, peer_id)

    async def peer_info(self, peer_id: bytes) -> PeerInfo | None:
        """One peer's details, or None if unknown."""
        for info in await self.list_peers():
            if info.peer_id == peer_id:
                return info
        return None

    def text_setting(self, key: str) -> str:
        """A text setting such as the download folder ('' = default)."""
        if key not in TEXT_SETTINGS:
            raise NodeError(f"unknown setting {key!r}")
        return self._text_settings.get(key, TEXT_SETTINGS[key])

    async def ui_setting(self, key: str) -> str | None:
        """A setting of an interface (the app's bell, say), kept in the profile's store."""
        name = ui_key(key)
        return await self._read(lambda s: s.get_setting(name))

    async def set_ui_setting(self, key: str, value: str) -> None:
        """Store a setting of an interface; the node never interprets it."""
        name = ui_key(key)
        if len(value) > MAX_UI_SETTING:
            raise NodeError("setting value too long")
        await self._write(lambda s: s.set_setting(name, value))

    async def set_text_setting(self, key: str, value: str) -> None:
        """Change a text setting; stored so it survives restarts."""
        if key not in TEXT_SETTINGS:
            raise NodeError(f"unknown setting {key!r}")
        await self._write(lambda s: s.set_setting(key, value))
        self._text_settings[key] = value

    async def get_message(self, message_id: bytes) -> Message | None:
        """One stored message (an edited one with its latest text)."""
        found = await self.get_messages([message_id])
        return found[0] if found else None

    async def get_messages(self, message_ids: Sequence[bytes]) -> list[Message]:
        """Stored messages among ``message_ids``, edited ones with their latest text."""
        return await self._read(lambda s: with_edits(s, s.get_messages(message_ids)))

    def display_text(self, message: Message) -> str:
        """What to show for a message: its text, or a sentence for other kinds."""
        if message.kind == "text":
            return message.body.decode("utf-8", errors="replace")
        if message.kind == KIND_SYSTEM:
            try:
                op = decode_system(message.body)
            except SystemBodyError:
                return "(unreadable room change)"
            target = self.peer_name(op.peer) if op.peer else None
            return describe_system(op, self.peer_name(message.author), target)
        if message.kind == KIND_FILE:
            try:
                manifest = decode_manifest(message.body)
            except ManifestError:
                return "(unreadable file offer)"
            # The name as it would be saved: no invisible or bidi characters in a preview.
            return f"\U0001f4ce {safe_name(manifest.name)} ({human_size(manifest.size)})"
        if message.kind == KIND_REACTION:
            return "(reaction)"
        changed = self.changes.display_text(message)
        if changed is not None:
            return changed
        if message.kind == KIND_STICKER:
            try:  # pack and name are checked plain ASCII (node/sticker_body.py)
                return f"(sticker {decode_sticker(message.body).label})"
            except StickerError:
                return "(unreadable sticker)"
        # A kind from a newer p2pchat (docs/protocol.md, "Envelope kinds"): its body is
        # never shown, and the kind is named only if it is plain ASCII letters and digits
        # (a peer chooses it: no escapes, no look-alikes).
        kind = message.kind
        plain = kind.isascii() and kind.replace("-", "").replace("_", "").isalnum()
        return f"(a message of a kind this p2pchat cannot show yet: {kind if plain else '?'})"

    def peer_name(self, peer_id: bytes) -> str:
        """What to call a peer: its display name, or its short id.

        A name that looks like another known peer's (or ours) comes with the short id,
        ``Alice (k3j5x7ab)``, wherever it is shown: history keeps saying who wrote what
        even after someone renames itself to look like someone else.
        """
        if peer_id == self.me:
            return self.profile.display_name
        name = self._names.get(peer_id)
        if not name or not visible(name):
            return short_id(peer_id)
        if self._names.collides(peer_id) or name_keys(name) & name_keys(self.profile.display_name):
            return f"{name} ({short_id(peer_id)})"
        return name
