"""The group rooms' API (create, invite, join, leave, remove, promote, rename, send) and
the signed membership changes it makes.
"""

from __future__ import annotations

import dataclasses
import logging
import os
from typing import TYPE_CHECKING

from p2pchat.node.envelopes import row_to_envelope
from p2pchat.node.errors import AlreadySent
from p2pchat.node.events import MessageAdded, RoomChanged, RoomInvitation
from p2pchat.node.model import MemberInfo
from p2pchat.node.rooms import (
    KIND_SYSTEM,
    MAX_ROOM_NAME_CHARS,
    MAX_TOPIC_CHARS,
    NONCE_LEN,
    Membership,
    SystemOp,
    encode_system,
    group_room_id,
)
from p2pchat.store import Message, MessageStatus, Store
from p2pchat.wire import Envelope, MessageFrame, encode_frame

if TYPE_CHECKING:
    pass

from p2pchat.node.group_base import LEGACY_ROOM, GroupError, op_of
from p2pchat.node.group_sync import GroupSync

log = logging.getLogger(__name__)


class GroupApi(GroupSync):
    """What the person does with group rooms (see the module docstring)."""

    # ------------------------------------------------------------------ API

    async def create_room(self, name: str, topic: str | None = None) -> bytes:
        """Create a group room with us as owner; returns its id."""
        name = _clean(name, MAX_ROOM_NAME_CHARS, "room name")
        topic = _clean(topic, MAX_TOPIC_CHARS, "topic", allow_empty=True) if topic else None
        nonce = os.urandom(NONCE_LEN)
        room = group_room_id(self.node.me, nonce)
        now = self._now_ms()
        create = SystemOp("create", name=name, topic=topic, nonce=nonce)

        def work(store: Store) -> None:
            store.ensure_room(room, "group", name=name, owner=self.node.me, created_at=now)
            self.group_rooms(store).add(room)
            self._author_system(store, room, create, now)
            # The create message goes to nobody yet: invitations carry the log.

        await self.node.core.write(work)
        self.node.core.emit(RoomChanged(room))
        return room

    async def invite(self, room: bytes, peer: bytes) -> None:
        """Invite a contact: members learn of it, and the invitee gets the room's log."""
        if not self.node.core.contacts.is_contact(peer):
            raise GroupError("you can only invite contacts; accept them or write to them first")
        await self._change(room, SystemOp("invite", peer=peer), extra_recipient=peer)

    async def join(self, room: bytes) -> None:
        """Accept an invitation; members then sync the room's history to us."""
        await self._change(room, SystemOp("join"), require_state="invited")
        await self.sync_room_with_members(room)

    async def decline(self, room: bytes) -> None:
        """Refuse an invitation."""
        await self._change(room, SystemOp("decline"), require_state="invited")

    async def leave(self, room: bytes) -> None:
        """Leave the room: nothing new is sent to us from then on."""
        await self._change(room, SystemOp("leave"))

    async def remove(self, room: bytes, peer: bytes) -> None:
        """Remove a member (owners and admins only)."""
        await self._change(room, SystemOp("remove", peer=peer), extra_recipient=peer)

    async def promote(self, room: bytes, peer: bytes) -> None:
        """Make a member an admin (owners and admins only)."""
        await self._change(room, SystemOp("promote", peer=peer))

    async def rename(self, room: bytes, name: str) -> None:
        """Rename the room (owners and admins only)."""
        await self._change(room, SystemOp("rename", name=_clean(name, MAX_ROOM_NAME_CHARS, "name")))

    async def set_topic(self, room: bytes, topic: str) -> None:
        """Change the room's topic (owners and admins only)."""
        clean = _clean(topic, MAX_TOPIC_CHARS, "topic", allow_empty=True)
        await self._change(room, SystemOp("topic", topic=clean))

    async def members(self, room: bytes) -> list[MemberInfo]:
        """Everyone who is, was invited to, or left the room."""

        def load(store: Store) -> Membership:
            if store.get_room(room) is None:
                raise GroupError("no such room")
            return self.membership(store, room)

        m = await self.node.core.read(load)
        out = [
            MemberInfo(
                peer,
                self.node.peer_name(peer),
                m.role_of(peer),
                state,
                peer == self.node.me or self.node.links.is_online(peer),
            )
            for peer, state in m.states.items()
        ]
        order = {"joined": 0, "invited": 1, "left": 2, "removed": 3}
        out.sort(key=lambda i: (order.get(i.state, 9), i.role != "owner", i.name.casefold()))
        return out

    async def send_envelope(
        self,
        room: bytes,
        kind: str,
        body: bytes,
        reply_to: bytes | None,
        client_id: str | None = None,
    ) -> Message:
        """Author any envelope (text, reaction, file) into a group room."""
        node = self.node
        now = self._now_ms()

        def work(store: Store) -> tuple[Message, Envelope, list[bytes]]:
            m = self._require_member(store, room)
            recipients = [p for p in m.joined() if p != node.me]
            online = any(node.links.is_online(p) for p in recipients)
            message, env = node.author_envelope(
                store,
                room,
                kind=kind,
                body=body,
                reply_to=reply_to,
                now=now,
                recipients=recipients,
                online=online,
                deps=m.heads,
                client_id=client_id,
            )
            return message, env, recipients

        try:
            message, env, recipients = await node.core.write(work, quick=True)
        except AlreadySent as done:
            return done.message
        await node.publish_own(message, env, recipients)
        return message

    async def invitations(self) -> list[RoomInvitation]:
        """Rooms we are invited to and have not answered yet (they survive restarts)."""

        def load(store: Store) -> list[RoomInvitation]:
            out = []
            for room in self.group_rooms(store):
                m = self.membership(store, room)
                if m.state_of(self.node.me) != "invited":
                    continue
                invites = [
                    msg
                    for msg in store.messages_of_kind(room, KIND_SYSTEM)
                    if op_of(msg) == ("invite", self.node.me)
                ]
                inviter = invites[-1].author if invites else (m.owner or self.node.me)
                out.append(RoomInvitation(room, m.name or "a room", inviter))
            return out

        return await self.node.core.read(load)

    async def receipts(self, message_id: bytes) -> list[tuple[bytes, int]]:
        """Per member: the best status they reported for our message."""

        def load(store: Store) -> list[tuple[bytes, int]]:
            msg = store.get_message(message_id)
            if msg is None:
                return []
            m = self.membership(store, msg.room)
            got = {r.peer: r.status for r in store.receipts_for(message_id)}
            return [
                (p, got.get(p, int(MessageStatus.SENT))) for p in m.joined() if p != self.node.me
            ]

        return await self.node.core.read(load)

    # ------------------------------------------------------------------ changes

    def _require_member(self, store: Store, room: bytes) -> Membership:
        info = store.get_room(room)
        if info is None or info.kind != "group":
            raise GroupError("no such group room")
        m = self.membership(store, room)
        if not m.created:
            raise GroupError(LEGACY_ROOM)
        if m.state_of(self.node.me) != "joined":
            raise GroupError("you are not a member of this room")
        return m

    def _author_system(
        self, store: Store, room: bytes, op: SystemOp, now: int
    ) -> tuple[Message, Envelope, list[bytes]]:
        """Store thread: author a system message, queued for members before and after it.

        Raises GroupError (and the caller's transaction rolls back) when the change is
        not ours to make.
        """
        before = self.membership(store, room) if store.get_room(room) else Membership()
        recipients = {p for p in before.joined() if p != self.node.me}
        if op.op == "remove" and op.peer is not None:
            # Everything of theirs we hold stays; what they write from now on does not.
            op = dataclasses.replace(op, upto=store.heads(room).get(op.peer, 0))
        message, env = self.node.author_envelope(
            store,
            room,
            kind=KIND_SYSTEM,
            body=encode_system(op),
            reply_to=None,
            now=now,
            recipients=[],
            online=True,
            deps=before.heads,
        )
        m = self._refresh(store, room)
        problem = _rejection(m, env)
        if problem is not None:
            # The caller's savepoint rolls this back, and the node forgets its caches.
            raise GroupError(f"{op.op} refused: {problem}")
        recipients |= {p for p in m.joined() if p != self.node.me}
        if op.peer is not None and op.peer != self.node.me:
            recipients.add(op.peer)
        ordered = sorted(recipients)
        store.enqueue_many([(p, _frame_bytes(env), env.id) for p in ordered], created_at=now)
        return message, env, ordered

    async def _change(
        self,
        room: bytes,
        op: SystemOp,
        *,
        require_state: str = "joined",
        extra_recipient: bytes | None = None,
    ) -> None:
        node = self.node
        now = self._now_ms()

        def work(store: Store) -> tuple[Message, Envelope, list[bytes], list[Message]]:
            info = store.get_room(room)
            if info is None or info.kind != "group":
                raise GroupError("no such group room")
            m = self.membership(store, room)
            if not m.created:
                raise GroupError(LEGACY_ROOM)
            if m.state_of(node.me) != require_state:
                raise GroupError(
                    "you have no invitation to this room"
                    if require_state == "invited"
                    else "you are not a member of this room"
                )
            message, env, recipients = self._author_system(store, room, op, now)
            # A new invitee cannot check anything without the room's log: send it all.
            log_for_invitee: list[Message] = []
            if op.op == "invite" and extra_recipient is not None:
                log_for_invitee = store.messages_of_kind(room, KIND_SYSTEM)
                store.enqueue_many(
                    [
                        (extra_recipient, _frame_bytes(row_to_envelope(r)), r.id)
                        for r in log_for_invitee
                        if r.id != message.id
                    ],
                    created_at=now,
                )
            return message, env, recipients, log_for_invitee

        message, env, recipients, invite_log = await node.core.write(work)
        node.core.emit(MessageAdded(message, incoming=False))
        node.core.emit(RoomChanged(room))
        self.emit_withdrawn()
        if extra_recipient is not None:
            for row in invite_log:
                if row.id != message.id:
                    node.links.write(extra_recipient, MessageFrame(env=row_to_envelope(row)))
        await node.deliver(MessageFrame(env=env), recipients)


def _frame_bytes(env: Envelope) -> bytes:
    return encode_frame(MessageFrame(env=env))


def _clean(text: str | None, limit: int, what: str, *, allow_empty: bool = False) -> str:
    cleaned = "".join(ch for ch in (text or "") if ch.isprintable()).strip()
    if not cleaned and not allow_empty:
        raise GroupError(f"a {what} needs at least one visible character")
    if len(cleaned) > limit:
        raise GroupError(f"the {what} is too long (at most {limit} characters)")
    return cleaned


def _rejection(m: Membership, env: Envelope) -> str | None:
    """Why the resolution did not apply ``env``, or None if it took effect."""
    if env.id in m.applied:
        return None
    return m.refused.get(env.id, "it names changes we do not hold")
