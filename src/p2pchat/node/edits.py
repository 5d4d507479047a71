"""Edits, deletes and disappearing-message timers: signed envelopes that change others.

- ``edit``: ``reply_to`` names the message, the body is its new text. Only the author of
  a text message can edit it; an edit by anyone else is stored (it is part of its
  author's sequence) but never shown. The latest edit, in display order, is the text
  shown. An edit that arrives before its message simply waits: edits are applied when
  history is read, so the arrival order never matters.
- ``delete``: the body lists the envelopes removed (id, author, seq). Their rows become
  tombstones: the text, signature and reactions are gone from this store (and with the
  text, from any index kept by triggers). The author may delete its own envelopes; in a
  group room an owner or admin may delete those of a member of lower rank, judged in the
  state the delete's ``deps`` name (causally), never by numbers its author chose.
  Because a delete names the author and seq of what it removes, a member that never held
  the message still fills that seq (with a tombstone): a deleted message never leaves a
  hole in anyone's sequence.
- ``timer``: the body is the number of seconds after which messages disappear (0: off).
  Either person of a direct chat may set it; in a group room, owners and admins (again
  judged causally). It applies to the messages after it in display order.

Store work runs in the store thread (``Node._write``); events go out afterwards.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import msgpack

from p2pchat.identity import short_id
from p2pchat.node.envelopes import KIND_FILE, MESSAGE_ID_LEN, split_ids
from p2pchat.node.errors import NodeError
from p2pchat.node.events import MessagesChanged
from p2pchat.node.model import text_body
from p2pchat.node.rooms import (
    GROUP_ROOM_ID_LEN,
    KIND_SYSTEM,
    ROLE_RANK,
    Membership,
    OpEntry,
    SystemBodyError,
    decode_system,
    group_envelope_id,
    resolve,
)
from p2pchat.store import Message, MessageStatus, NewMessage, Store
from p2pchat.store.changes import (
    EXPIRING_KINDS,
    KIND_REMOVED,
    KIND_TOMBSTONE,
    add_timer,
    current_timer,
    edits_of,
    expiry_of,
    has_timers,
    is_tombstone,
    messages_between,
    next_timer_after,
    set_expiry,
    timer_at,
    timers_in_force,
    tombstone,
)
from p2pchat.wire import Envelope

if TYPE_CHECKING:
    from p2pchat.node.facade import NodeFacade

log = logging.getLogger(__name__)

KIND_EDIT = "edit"
KIND_DELETE = "delete"
KIND_TIMER = "timer"
#: Kinds that change other messages and are never shown as messages themselves.
CHANGE_KINDS = frozenset({KIND_EDIT, KIND_DELETE})
#: What a delete cannot remove: room changes, other deletes, timer changes, tombstones.
UNDELETABLE = frozenset({KIND_SYSTEM, KIND_DELETE, KIND_TIMER, KIND_TOMBSTONE, KIND_REMOVED})
#: Envelopes one delete may remove (a message and its edits, or a batch that expired).
MAX_DELETE_TARGETS = 256
#: The timers people can choose: off, 5 minutes, 1 hour, 1 day, 1 week.
TIMER_CHOICES = (0, 300, 3600, 86400, 604800)
#: Past room states kept resolved (for judging deletes and timers by others).
MAX_SEEN_STATES = 256
TIMER_NAMES = {0: "off", 300: "5 minutes", 3600: "1 hour", 86400: "1 day", 604800: "1 week"}

#: Decides whether a change's author may change something ``target_author`` wrote
#: (None: a room-wide change such as a timer).
Authority = Callable[[Store, Envelope, bytes | None], bool]


class ChangeBodyError(ValueError):
    """A delete or timer body is malformed."""


@dataclass(frozen=True)
class Target:
    """An envelope a delete removes: its id, author and seq (so its seq is filled)."""

    id: bytes
    author: bytes
    seq: int


def encode_delete(targets: Sequence[Target]) -> bytes:
    """Body of a ``delete`` envelope: a msgpack array of ``[id, author, seq]``."""
    return bytes(msgpack.packb([[t.id, t.author, t.seq] for t in targets], use_bin_type=True))


def decode_delete(body: bytes) -> tuple[Target, ...]:
    """Parse a delete body; raise ChangeBodyError when malformed."""
    try:
        data = msgpack.unpackb(
            body,
            raw=False,
            max_bin_len=32,
            max_str_len=0,
            max_array_len=MAX_DELETE_TARGETS,
            max_map_len=0,
            max_ext_len=0,
        )
    except Exception as exc:  # msgpack raises several unrelated types
        raise ChangeBodyError(f"not a delete body: {type(exc).__name__}") from None
    if not isinstance(data, list) or not 1 <= len(data) <= MAX_DELETE_TARGETS:
        raise ChangeBodyError("a delete names 1 to 256 messages")
    targets = []
    for item in data:
        if not (isinstance(item, list) and len(item) == 3):
            raise ChangeBodyError("each target is [id, author, seq]")
        mid, author, seq = item
        if not (isinstance(mid, bytes) and len(mid) == MESSAGE_ID_LEN):
            raise ChangeBodyError("target id must be 16 bytes")
        if not (isinstance(author, bytes) and len(author) == 32):
            raise ChangeBodyError("target author must be 32 bytes")
        if not (type(seq) is int and 1 <= seq < 2**63):
            raise ChangeBodyError("target seq must be a sequence number")
        targets.append(Target(mid, author, seq))
    return tuple(targets)


def encode_timer(seconds: int) -> bytes:
    """Body of a ``timer`` envelope: the seconds as a msgpack integer."""
    return bytes(msgpack.packb(seconds))


def decode_timer(body: bytes) -> int:
    """Parse a timer body; raise ChangeBodyError unless it is one of TIMER_CHOICES."""
    try:
        seconds = msgpack.unpackb(body, max_str_len=0, max_bin_len=0, max_array_len=0)
    except Exception as exc:  # msgpack raises several unrelated types
        raise ChangeBodyError(f"not a timer body: {type(exc).__name__}") from None
    if type(seconds) is not int or seconds not in TIMER_CHOICES:
        raise ChangeBodyError("timer must be off, 5 minutes, 1 hour, 1 day or 1 week")
    return seconds


def change_problem(env: Envelope) -> str | None:
    """Why an edit, delete or timer envelope is malformed, or None (other kinds: None)."""
    if env.kind == KIND_EDIT:
        if env.reply_to is None:
            return "an edit must name its message"
        try:
            text = env.body.decode("utf-8")
        except UnicodeDecodeError:
            return "edited text is not UTF-8"
        if not text.strip():
            return "an edit cannot be empty (delete instead)"
    elif env.kind in (KIND_DELETE, KIND_TIMER):
        try:
            decode_delete(env.body) if env.kind == KIND_DELETE else decode_timer(env.body)
        except ChangeBodyError as exc:
            return str(exc)
    return None


def describe_timer(seconds: int, who: str) -> str:
    """A timer change as a sentence for people."""
    if seconds == 0:
        return f"{who} turned off disappearing messages"
    return f"{who} set messages to disappear after {TIMER_NAMES.get(seconds, f'{seconds} s')}"


def with_edits(store: Store, rows: list[Message]) -> list[Message]:
    """Store thread: ``rows`` as shown: each text message with its latest edit by its
    author applied, each under a timer with its deadline, and without timer changes by
    someone who had no right to make them."""
    timers = [r.id for r in rows if r.kind == KIND_TIMER]
    if timers:
        in_force = timers_in_force(store, timers)
        rows = [r for r in rows if r.kind != KIND_TIMER or r.id in in_force]
    deadlines = expiry_of(store, [r.id for r in rows if r.kind in EXPIRING_KINDS])
    if deadlines:
        rows = [
            dataclasses.replace(r, expires_at=deadlines[r.id]) if r.id in deadlines else r
            for r in rows
        ]
    texts = {r.id: r for r in rows if r.kind == "text"}
    if not texts:
        return rows
    latest: dict[bytes, Message] = {}
    for edit in edits_of(store, list(texts)):
        target = texts.get(edit.reply_to or b"")
        if target is None or edit.author != target.author or edit.room != target.room:
            continue  # only a message's author can edit it
        best = latest.get(target.id)
        if best is None or (edit.lamport, edit.id) > (best.lamport, best.id):
            latest[target.id] = edit
    if not latest:
        return rows
    return [
        dataclasses.replace(r, body=latest[r.id].body, edited=True) if r.id in latest else r
        for r in rows
    ]


def direct_authority(store: Store, env: Envelope, target_author: bytes | None) -> bool:
    """In a direct room each person changes only their own messages; both set timers."""
    return target_author is None or target_author == env.author


def op_entries(store: Store, room: bytes) -> list[OpEntry]:
    """Store thread: the room's well-formed operations, for resolving a past state."""
    out = []
    for msg in store.messages_of_kind(room, KIND_SYSTEM):
        if msg.deps is None:
            continue
        try:
            out.append(
                OpEntry(msg.id, msg.author, msg.seq, split_ids(msg.deps), decode_system(msg.body))
            )
        except SystemBodyError:
            continue
    return out


class ChangeService:
    """Applies edits, deletes and timers for one node, and announces what they changed."""

    def __init__(self, node: NodeFacade) -> None:
        self.node = node
        # Store thread: ids of shown messages whose look changed, per room (to announce).
        self.changed: dict[bytes, list[bytes]] = {}
        # Store thread: a message got a deadline (the sweeper may sleep past it).
        self.new_deadline = False
        # Store thread: file offers deleted or expired, whose transfers must stop.
        self.files_gone: list[bytes] = []
        self._tasks: set[asyncio.Task[None]] = set()
        # Store thread: resolved past states of rooms (see _state_seen).
        self._seen_states: dict[
            tuple[bytes, tuple[bytes, ...]], tuple[Membership, Membership | None]
        ] = {}

    # ------------------------------------------------------------------ authority

    def group_authority(self, store: Store, env: Envelope, target_author: bytes | None) -> bool:
        """An author changes its own; owners and admins, in the state they had seen,
        change those of lower rank and the room's timer."""
        if target_author == env.author:
            return True
        m = self.node.groups.membership(store, env.room)
        if env.deps is None or m.admits(env.author, env.seq, env.deps) is not None:
            return False
        then = self._state_seen(store, env.room, m, env.deps)
        if then is None:
            return False
        rank = ROLE_RANK[then.role_of(env.author)]
        if then.state_of(env.author) != "joined" or rank < ROLE_RANK["admin"]:
            return False
        return target_author is None or rank > ROLE_RANK[then.role_of(target_author)]

    def _state_seen(
        self, store: Store, room: bytes, m: Membership, deps: tuple[bytes, ...]
    ) -> Membership | None:
        """Store thread: the room as an envelope naming ``deps`` saw it (None: not held).

        Cached per (room, deps) while the room's membership stands: a run of deletes by
        one admin names the same deps, and a member sending many resolves the room once.
        """
        key = (room, deps)
        cached = self._seen_states.get(key)
        if cached is not None and cached[0] is m:
            return cached[1]
        seen = m.seen(deps)
        then = None
        if seen is not None:
            then = resolve(room, [e for e in op_entries(store, room) if e.id in seen])
        if len(self._seen_states) >= MAX_SEEN_STATES:
            self._seen_states.clear()
        self._seen_states[key] = (m, then)
        return then

    def authority(self, room: bytes) -> Authority:
        return self.group_authority if len(room) == GROUP_ROOM_ID_LEN else direct_authority

    # ------------------------------------------------------------------ applying

    def apply_deletes(self, store: Store, envelopes: Sequence[Envelope], now: int) -> None:
        """Store thread: carry out the authorised deletes among ``envelopes``.

        Called before the envelopes themselves are stored (a group member stores an
        author's envelopes only without gaps, and a delete fills the seq it removes).
        Idempotent: a delete seen again changes nothing.
        """
        for env in envelopes:
            if env.kind != KIND_DELETE:
                continue
            try:
                targets = decode_delete(env.body)
            except ChangeBodyError:
                continue
            allowed = self.authority(env.room)
            blank: list[bytes] = []
            for t in targets:
                problem = self._target_problem(store, env, t, allowed)
                if problem is not None:
                    log.info("ignored a delete by %s: %s", short_id(env.author), problem)
                    continue
                held = store.get_message(t.id)
                if held is None:
                    store.insert_messages([_tombstone_row(env, t, now)])
                elif (held.room, held.author, held.seq) != (env.room, t.author, t.seq):
                    log.info("ignored a delete by %s: not that message", short_id(env.author))
                elif held.kind in UNDELETABLE and not is_tombstone(held):
                    log.info(
                        "ignored a delete by %s: cannot delete a %s",
                        short_id(env.author),
                        held.kind,
                    )
                else:
                    blank.append(t.id)
                    if held.kind == KIND_FILE:
                        self.files_gone.append(t.id)
            done = tombstone(store, blank, env.id)
            if done:
                self.changed.setdefault(env.room, []).extend(done)
                mine = {t.id for t in targets if t.author == self.node.me}
                self._unqueue(store, [mid for mid in done if mid in mine])

    @staticmethod
    def _target_problem(store: Store, env: Envelope, t: Target, allowed: Authority) -> str | None:
        if t.author == env.author and t.seq >= env.seq:
            return "a delete can only name what its author wrote before it"
        if len(env.room) == GROUP_ROOM_ID_LEN and t.id != group_envelope_id(
            env.room, t.author, t.seq
        ):
            return "target id does not match its author and seq"
        if not allowed(store, env, t.author):
            return "its author may not delete that message"
        return None

    def after_store(
        self, store: Store, stored: list[Message], envelopes: dict[bytes, Envelope], now: int
    ) -> set[bytes]:
        """Store thread: what newly stored messages change; the ids not to announce.

        Edits mark their message changed; authorised timer changes are recorded and
        re-time what follows them; messages under a timer get their deadline, and one
        already past it (we were offline) is removed at once, and neither it nor a timer
        change its author had no right to make is announced. ``envelopes``: the signed
        envelopes of ``stored`` by id, for judging authority. A message given a deadline
        is replaced in ``stored`` by a copy that carries it (``expires_at``).
        """
        gone: list[bytes] = []
        refused: set[bytes] = set()
        clock = self.node.expiry.clock()  # the sweeper's clock (a test may move it)
        timed: dict[bytes, bool] = {}
        for index, msg in enumerate(stored):
            if msg.kind == KIND_EDIT and msg.reply_to is not None:
                target = store.get_message(msg.reply_to)
                if target is not None and target.author == msg.author and target.room == msg.room:
                    self.changed.setdefault(msg.room, []).append(target.id)
            elif msg.kind == KIND_TIMER:
                env = envelopes.get(msg.id)
                if env is not None and self.authority(msg.room)(store, env, None):
                    self._record_timer(store, msg)
                    timed[msg.room] = True
                else:
                    refused.add(msg.id)  # kept (its author's seq), never shown
            if msg.room not in timed:
                timed[msg.room] = has_timers(store, msg.room)
            if msg.kind in EXPIRING_KINDS and timed[msg.room]:
                seconds = timer_at(store, msg.room, msg.cursor)
                if seconds:
                    at = min(msg.sent_at, msg.received_at) + seconds * 1000
                    set_expiry(store, [(msg.id, msg.room, at)])
                    stored[index] = dataclasses.replace(msg, expires_at=at)
                    self.new_deadline = True
                    if at <= clock:
                        gone.append(msg.id)
        if gone:
            self.expire(store, gone)
        return refused | set(gone)

    def _record_timer(self, store: Store, msg: Message) -> None:
        """Store thread: a timer change took effect; re-time the messages it governs."""
        try:
            seconds = decode_timer(msg.body)
        except ChangeBodyError:
            return
        if not add_timer(store, msg, seconds):
            return
        following = next_timer_after(store, msg.room, msg.cursor)
        entries: list[tuple[bytes, bytes, int | None]] = []
        for row in messages_between(store, msg.room, msg.cursor, following):
            at = min(row.sent_at, row.received_at) + seconds * 1000 if seconds else None
            entries.append((row.id, row.room, at))
        set_expiry(store, entries)
        self.new_deadline = True
        clock = self.node.expiry.clock()
        due = [mid for mid, _, at in entries if at is not None and at <= clock]
        if due:
            self.expire(store, due)

    def expire(self, store: Store, message_ids: Sequence[bytes]) -> list[bytes]:
        """Store thread: remove messages whose time is up, with their edits."""
        edits = [e.id for e in edits_of(store, message_ids)]
        rows = {m.id: m for m in store.get_messages([*message_ids, *edits])}
        self.files_gone += [m.id for m in rows.values() if m.kind == KIND_FILE]
        done = tombstone(store, list(rows), None, keep_place=False)
        for mid in done:
            self.changed.setdefault(rows[mid].room, []).append(mid)
        self._unqueue(store, [mid for mid in done if rows[mid].author == self.node.me])
        return done

    @staticmethod
    def _unqueue(store: Store, message_ids: Sequence[bytes]) -> None:
        """Store thread: a removed message of ours still queued is never sent."""
        if not message_ids:
            return
        for peer in store.peers_with_pending():
            store.remove_outbox_for_messages(peer, message_ids)

    def on_own(self, store: Store, message: Message, env: Envelope, now: int) -> Message:
        """Store thread: an envelope of ours was just written; carry out what it changes.

        Returns the message as announced (with its deadline under a timer)."""
        if message.kind == KIND_DELETE:
            self.apply_deletes(store, [env], now)
        written = [message]
        self.after_store(store, written, {env.id: env}, now)
        return written[0]

    def emit_changed(self) -> None:
        """Loop thread: announce which shown messages changed (after a store write)."""
        changed, self.changed = self.changed, {}
        files, self.files_gone = self.files_gone, []
        if files:  # an offer withdrawn is served no more; a download in progress stops
            task = asyncio.ensure_future(self._stop_transfers(files))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        if self.new_deadline:
            self.new_deadline = False
            self.node.expiry.poke()
        for room, ids in changed.items():
            self.node.emit(MessagesChanged(room, tuple(dict.fromkeys(ids))))

    async def _stop_transfers(self, message_ids: list[bytes]) -> None:
        for message_id in message_ids:
            try:
                await self.node.transfers.cancel(message_id, detail="deleted")
            except Exception as exc:  # no transfer row, or the node is stopping
                log.debug("transfer of a deleted file not cancelled: %s", exc)

    def display_text(self, message: Message) -> str | None:
        """What to show for the kinds of this module (None: not one of them)."""
        if message.kind in (KIND_TOMBSTONE, KIND_REMOVED):
            return "message deleted"
        if message.kind == KIND_TIMER:
            try:
                seconds = decode_timer(message.body)
            except ChangeBodyError:
                return "(unreadable timer change)"
            return describe_timer(seconds, self.node.peer_name(message.author))
        if message.kind == KIND_EDIT:
            return "(edited a message)"
        if message.kind == KIND_DELETE:
            return "(deleted a message)"
        return None

    # ------------------------------------------------------------------ API

    async def edit(self, message_id: bytes, text: str) -> Message:
        """Write an edit of our own text message."""
        body = text_body(text)
        target = await self.node.store_read(lambda s: s.get_message(message_id))
        if target is None:
            raise NodeError("no such message")
        if target.author != self.node.me:
            raise NodeError("you can only edit your own messages")
        if target.kind != "text":
            raise NodeError("only text messages can be edited")
        return await self.node.send_to_room(target.room, KIND_EDIT, body, message_id)

    async def delete(self, message_id: bytes) -> Message:
        """Write a delete of a message and its edits."""
        me = self.node.me

        def plan(store: Store) -> tuple[bytes, list[Target]]:
            target = store.get_message(message_id)
            if target is None:
                raise NodeError("no such message")
            if is_tombstone(target):
                raise NodeError("that message is already deleted")
            if target.kind in UNDELETABLE:
                raise NodeError("room changes and timer changes cannot be deleted")
            if target.author != me:
                if len(target.room) != GROUP_ROOM_ID_LEN:
                    raise NodeError("you can only delete your own messages")
                m = self.node.groups.membership(store, target.room)
                rank = ROLE_RANK[m.role_of(me)]
                if rank < ROLE_RANK["admin"] or rank <= ROLE_RANK[m.role_of(target.author)]:
                    raise NodeError(
                        "only owners and admins may delete others' messages, "
                        "and only those of members of lower role"
                    )
            edits = [
                e
                for e in edits_of(store, [message_id])
                if e.author == target.author and e.room == target.room
            ]
            targets = [Target(target.id, target.author, target.seq)]
            targets += [Target(e.id, e.author, e.seq) for e in edits[: MAX_DELETE_TARGETS - 1]]
            return target.room, targets

        room, targets = await self.node.store_read(plan)
        return await self.node.send_to_room(room, KIND_DELETE, encode_delete(targets), None)

    async def set_timer(self, room: bytes, seconds: int) -> Message:
        """Write a timer change for a room (off, 5 min, 1 hour, 1 day or 1 week)."""
        if seconds not in TIMER_CHOICES:
            raise NodeError("choose off, 5 minutes, 1 hour, 1 day or 1 week")
        if len(room) == GROUP_ROOM_ID_LEN:

            def check(store: Store) -> None:
                m = self.node.groups.membership(store, room)
                if ROLE_RANK[m.role_of(self.node.me)] < ROLE_RANK["admin"]:
                    raise NodeError("only owners and admins can change the room's timer")

            await self.node.store_read(check)
        return await self.node.send_to_room(room, KIND_TIMER, encode_timer(seconds), None)

    async def timer(self, room: bytes) -> int:
        """The room's timer now (seconds, 0 = off)."""
        return (await self.node.store_read(lambda s: current_timer(s, room)))[0]


def _tombstone_row(env: Envelope, t: Target, now: int) -> NewMessage:
    """The row that fills a removed envelope's seq for a member that never held it."""
    return NewMessage(
        id=t.id,
        room=env.room,
        author=t.author,
        seq=t.seq,
        lamport=env.lamport,
        sent_at=env.ts,
        received_at=now,
        kind=KIND_REMOVED,  # never shown here: nothing to say it was deleted
        body=b"",
        sig=b"",
        reply_to=env.id,
        status=MessageStatus.DELIVERED,
    )


def relay_page(store: Store, rows: Sequence[Message]) -> list[Message]:
    """Store thread: ``rows`` as they can be relayed: a tombstone is replaced by the
    signed delete that vouches for it (which fills its seq), or left out if none does."""
    out: list[Message] = []
    sent: set[bytes] = set()
    for row in rows:
        if not is_tombstone(row):
            out.append(row)
            continue
        if row.reply_to is None or row.reply_to in sent:
            continue
        voucher = store.get_message(row.reply_to)
        if voucher is not None and voucher.kind == KIND_DELETE and voucher.sig:
            out.append(voucher)
            sent.add(voucher.id)
    return out
