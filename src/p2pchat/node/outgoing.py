"""Messages out: our envelopes signed, stored, queued and sent; typing and read marks."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence

from p2pchat.node.edits import CHANGE_KINDS
from p2pchat.node.envelopes import (
    KIND_FILE,
    KIND_REACTION,
    apply_reaction,
    decode_reaction,
    direct_room_id,
    envelope_to_row,
    new_message_id,
    sign_envelope,
)
from p2pchat.node.errors import AlreadySent, NodeError
from p2pchat.node.events import MessageAdded, ReactionChanged
from p2pchat.node.model import text_body
from p2pchat.node.people import PeopleApi
from p2pchat.node.rooms import group_envelope_id
from p2pchat.node.settings import SETTING_READ_RECEIPTS, SETTING_TYPING
from p2pchat.node.sticker_body import KIND_STICKER
from p2pchat.store import Message, MessageStatus, Store
from p2pchat.wire import RECEIPT_READ, Envelope, Frame, MessageFrame, Typing, encode_frame


class OutgoingApi(PeopleApi):
    """Messages out: our envelopes signed, stored, queued and sent; typing and read marks."""

    # ================================================================ messages out

    async def send_text(
        self,
        peer_id: bytes,
        text: str,
        reply_to: bytes | None = None,
        client_id: str | None = None,
    ) -> Message:
        """Write a text message to ``peer_id``: stored, queued, and sent if reachable.

        With ``client_id`` (a script's own id for this send), a second call with the same
        id returns the message the first wrote instead of writing another.
        """
        body = text_body(text)
        if peer_id == self.me:
            raise NodeError("you cannot send a message to yourself")
        if self._states.get(peer_id) == "request":
            # Replying to a contact request accepts it, with everything accepting means
            # (receipts for the messages they sent while waiting).
            await self.accept(peer_id)
        return await self.send_envelope(peer_id, "text", body, reply_to, client_id)

    async def send_envelope(
        self,
        peer_id: bytes,
        kind: str,
        body: bytes,
        reply_to: bytes | None,
        client_id: str | None = None,
    ) -> Message:
        """Write a message of any kind to ``peer_id`` (accepting them): stored, queued, sent.

        For the services (stickers, files) and tests; people's text goes via send_text.
        """
        room = direct_room_id(self.me, peer_id)
        online = self.links.is_online(peer_id)
        now = self._now_ms()

        def work(store: Store) -> tuple[Message, bool, Envelope]:
            became_contact = False
            if self._states.get(peer_id) != "contact":  # the common case skips a query
                peer = store.get_peer(peer_id) or self.core.contacts.remember(store, peer_id)
                if peer.state == "blocked":
                    raise NodeError("you blocked this peer; unblock them to send")
                became_contact = peer.state != "contact"
                if became_contact:  # writing to someone accepts them
                    store.set_peer_state(peer_id, "contact")
            self.core.ensure_direct(store, room, peer_id, now)
            message, env = self.author_envelope(
                store,
                room,
                kind=kind,
                body=body,
                reply_to=reply_to,
                now=now,
                recipients=[peer_id],
                online=online,
                client_id=client_id,
            )
            return message, became_contact, env

        try:
            message, became_contact, env = await self._write(work, quick=True)
        except AlreadySent as done:
            return done.message
        if became_contact:
            self._set_state(peer_id, "contact")
        await self.publish_own(message, env, [peer_id])
        return message

    _send_envelope = send_envelope  # the name the tests use

    def author_envelope(
        self,
        store: Store,
        room: bytes,
        *,
        kind: str,
        body: bytes,
        reply_to: bytes | None,
        now: int,
        recipients: Sequence[bytes],
        online: bool,
        deps: tuple[bytes, ...] | None = None,
        client_id: str | None = None,
    ) -> tuple[Message, Envelope]:
        """Store thread: sign a new envelope of ours, store it, queue it for ``recipients``.

        The envelope stays in each recipient's outbox until that recipient's delivered
        receipt arrives, so it survives restarts and lost connections. ``deps``: in a
        group room, the membership operations we have seen (``Membership.heads``).
        ``client_id``: a client's own id for this send; if a message was already written
        for it, AlreadySent is raised (and nothing written), so a retry never doubles.
        """
        if client_id is not None:
            existing = store.message_for_client(client_id)
            if existing is not None:
                raise AlreadySent(existing)
        try:
            seq, lamport = self._next_position(store, room)
            env = sign_envelope(
                self.identity,
                Envelope.unsigned(
                    room=room,
                    id=new_message_id() if deps is None else group_envelope_id(room, self.me, seq),
                    author=self.me,
                    seq=seq,
                    lamport=lamport,
                    ts=now,
                    kind=kind,
                    body=body,
                    reply_to=reply_to,
                    deps=deps,
                ),
            )
            status = MessageStatus.SENT if online else MessageStatus.QUEUED
            row = envelope_to_row(env, now, status)
            (message,) = store.insert_messages([row])
            assert message is not None  # a fresh random id is never a duplicate
            if client_id is not None:
                store.record_client_send(client_id, message.id, now)
            if kind == KIND_REACTION:
                apply_reaction(store, row)
            message = self.changes.on_own(store, message, env, now)
            frame = encode_frame(MessageFrame(env=env))
            store.enqueue_many([(p, frame, env.id) for p in recipients], created_at=now)
        except BaseException:
            # The write is rolled back: forget cached positions so no gap is left.
            self._seq_cache.pop(room, None)
            raise
        return message, env

    async def publish_own(
        self, message: Message, env: Envelope, recipients: Sequence[bytes]
    ) -> None:
        """Loop thread: announce our new message and send it to whoever is online."""
        if message.kind == KIND_REACTION:
            self._emit(ReactionChanged(message.room, decode_reaction(message.body)[0]))
        elif message.kind not in CHANGE_KINDS:
            self._emit(MessageAdded(message, incoming=False))
        self.changes.emit_changed()
        if message.kind == KIND_FILE:
            await self.transfers.on_file_message(message, incoming=False)
        elif message.kind == KIND_STICKER:
            await self.stickers.on_sticker_message(message)
        await self.deliver(MessageFrame(env=env), recipients)

    async def deliver(self, frame: Frame, recipients: Sequence[bytes]) -> None:
        """Send ``frame`` to every recipient connected now; wake the dialler for the rest.

        The frame is already in each recipient's outbox, so a failure here loses nothing.
        """
        sent = self.links.write_all(recipients, frame)
        for peer in set(recipients).difference(sent):
            self.links.redial_soon(peer)
        await self.links.flush_all(sent)

    def _forget_caches(self) -> None:
        """Store thread: a rolled-back write may have taught the caches something false.

        Rooms, next seqs and memberships are re-read from the store on next use.
        """
        self._ready_rooms.clear()
        self._seq_cache.clear()
        self.groups.forget_caches()

    def raise_seq_floor(self, store: Store, room: bytes, held_by_other: int) -> None:
        """Store thread: our next seq in ``room`` is above ``held_by_other``.

        The other side of a direct room holds our messages up to that seq; if our store
        lost its tail (a crash losing the end of the log), reusing those seqs would make
        our new messages collide with the lost ones there.
        """
        self._seq_floor[room] = max(self._seq_floor.get(room, 0), held_by_other + 1)
        if room in self._seq_cache:
            self._seq_cache[room] = max(self._seq_cache[room], self._seq_floor[room])

    def _next_position(self, store: Store, room: bytes) -> tuple[int, int]:
        """Our next (seq, lamport) in ``room``; store thread only, cached after first use."""
        if room not in self._seq_cache:
            self._seq_cache[room] = store.next_seq(room, self.me)
            self.clock.witness(store.max_lamport(room))
        seq = max(self._seq_cache[room], self._seq_floor.get(room, 0))
        self._seq_cache[room] = seq + 1
        return seq, self.clock.tick()

    def lamport_problem(self, env: Envelope) -> str | None:
        """Why an envelope's Lamport time is unacceptable (absurdly far ahead), or None."""
        return self.clock.problem(env.lamport)

    async def set_typing_room(self, room: bytes, typing: bool) -> None:
        """Tell a room's people (connected contacts or members) whether we are typing."""
        if not self._settings[SETTING_TYPING]:
            return
        peer = await self.room_peer(room)
        if peer is not None:
            await self.set_typing(peer, typing)
            return
        members = await self._read(lambda s: self.groups.membership(s, room).joined())
        if self.me not in members:
            return
        self.links.write_all((m for m in members if m != self.me), Typing(room=room, on=typing))

    async def set_typing(self, peer_id: bytes, typing: bool) -> None:
        """Tell ``peer_id`` we are (not) typing; nothing is sent if the setting is off."""
        if self._settings[SETTING_TYPING] and self._states.get(peer_id) == "contact":
            self.links.write(peer_id, Typing(room=direct_room_id(self.me, peer_id), on=typing))

    async def mark_read(self, room: bytes, message_ids: Sequence[bytes] | None = None) -> int:
        """Mark messages as read (shown to the person); send read receipts if enabled.

        With ``message_ids`` None, every incoming message of the room counts as shown.
        Returns how many messages changed to read.
        """

        def work(store: Store) -> tuple[list[Message], int, set[bytes]]:
            if message_ids is None:
                msgs = store.incoming_not_read(room, self.me)
                newest = store.latest_messages(room, limit=1)
                marker = newest[-1].rowid if newest else 0
            else:
                found = [m for m in store.get_messages(message_ids) if m.room == room]
                msgs = [m for m in found if m.author != self.me]
                # The read marker moves only as far as what was actually shown.
                marker = max((m.rowid for m in found), default=0)
            changed = set(store.set_status([m.id for m in msgs], MessageStatus.READ))
            if marker:
                store.mark_room_read(room, marker)
            info = store.get_room(room)
            members: set[bytes] = set()
            if info is not None and info.kind == "group":
                members = set(self.groups.membership(store, room).joined())
            return [m for m in msgs if m.id in changed], len(changed), members

        changed_msgs, count, members = await self._write(work)
        if self._settings[SETTING_READ_RECEIPTS]:
            by_author: dict[bytes, list[bytes]] = defaultdict(list)
            for m in changed_msgs:
                by_author[m.author].append(m.id)
            for author, ids in by_author.items():
                # In a direct chat only accepted contacts learn we read; in a group, only
                # current members (never an author we merely heard of through the log).
                allowed = author in members if members else self._states.get(author) == "contact"
                if allowed and self._states.get(author) != "blocked":
                    await self.core.send_receipts(author, room, ids, RECEIPT_READ)
        return count
