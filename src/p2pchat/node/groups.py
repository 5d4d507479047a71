"""Group rooms: membership changes, fan-out, history sync and per-member receipts.

There is no server, so members keep a room's history in agreement themselves:

- every change of membership is a signed ``system`` envelope, and the member list is
  *derived* by replaying them (``rooms.replay``), identically on every member;
- a message to the room is queued for every member and sent to those reachable;
- when two members connect they exchange per-author heads (``sync``) and push each other
  what is missing, original signatures intact, so a member who was away catches up from
  any member, even when the author is offline;
- an envelope is accepted only if it is authentic, relayed by a current member, and its
  author was a member at its position; removed members are sent nothing new.

Store work runs inside ``Node._write`` ("store thread" below: the store's thread, or the
loop for a quick write, never both at once); the rest in the loop.

``GroupService`` is assembled from parts: group_base.py (limits, membership caches),
group_sync.py (+ group_heads.py: history sync), group_api.py (what the person does, the
signed changes); this module adds inbound envelopes, receipts and the lifecycle.
"""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from p2pchat.identity import short_id
from p2pchat.node.checks_ahead import ChecksAhead
from p2pchat.node.coalesce import Coalescer
from p2pchat.node.edits import CHANGE_KINDS, KIND_DELETE
from p2pchat.node.envelopes import (
    apply_reaction,
    envelope_to_row,
    held_intact,
)
from p2pchat.node.events import (
    MessageAdded,
    RoomChanged,
    RoomInvitation,
    SecurityWarning,
)
from p2pchat.node.latest import LatestWins
from p2pchat.node.periodic import every_connected_peer
from p2pchat.node.rooms import (
    DEPS_NOT_HELD,
    GROUP_ROOM_ID_LEN,
    KIND_SYSTEM,
    MAX_OPS,
    MAX_OPS_PER_AUTHOR,
    Membership,
    group_envelope_id,
    resolve,
)
from p2pchat.node.sticker_body import KIND_STICKER
from p2pchat.store import Message, MessageStatus, NewMessage, Store, now_ms
from p2pchat.wire import MAX_HEADS, RECEIPT_DELIVERED, Envelope

if TYPE_CHECKING:
    from p2pchat.node.facade import NodeFacade
    from p2pchat.node.inbox import Inbound

from p2pchat.node.group_api import GroupApi
from p2pchat.node.group_base import (
    VOID_END,
    GroupError,
    decoded_op,
    op_entries,
    op_of,
)
from p2pchat.node.group_heads import MAX_SUMMARY_AUTHORS, Heads
from p2pchat.node.group_receipts import GroupReceipts
from p2pchat.node.group_sync import holders_of

__all__ = ["MAX_SUMMARY_AUTHORS", "GroupError", "GroupService", "room_position"]

log = logging.getLogger(__name__)

# Bounds on what a peer can make us hold for a room we are not in yet (an invitation).
# In memory, before an invitation is adopted: only well-formed membership changes
# (a few hundred bytes each), a whole log per room (a room holds at most MAX_OPS
# changes; fewer and an invitation to a busy room could never be adopted), and a few
# whole logs in all (the room that waited longest makes way).
MAX_PENDING_ROOMS = 16
MAX_PENDING_ROOMS_PER_CONTACT = 2
MAX_PENDING_ENVELOPES = MAX_OPS + MAX_HEADS
MAX_PENDING_TOTAL = 4 * MAX_PENDING_ENVELOPES
# In the store, unanswered invitations: per inviter, in all, and how long they are kept.
MAX_INVITATIONS_PER_INVITER = 3
MAX_INVITATIONS = 24
INVITATION_EXPIRY_MS = 30 * 24 * 3600 * 1000

#: The name tests patch (``_Heads.merged``).
_Heads = Heads


@dataclass
class _Outcome:
    """What a store-thread ingest decided, for the loop thread to announce and send."""

    stored: list[Message]
    changed_rooms: set[bytes]
    invitations: list[tuple[bytes, str, bytes]]
    acks: dict[tuple[bytes, bytes], list[bytes]]  # (author, room) -> ids
    held_back: dict[bytes, int]  # inviter -> invitations refused by the store's bounds
    behind: set[bytes] = field(default_factory=set)  # rooms where we lack what was named


def room_position(m: Message | NewMessage | Envelope) -> tuple[int, bytes, bytes]:
    """Display-order position of a message."""
    return (m.lamport, m.author, m.id)


class GroupService(GroupReceipts, GroupApi):
    """Everything about group rooms for one node."""

    def __init__(self, node: NodeFacade) -> None:
        self.node = node
        # Store-thread caches: membership per room, rebuilt when a system message lands.
        self._membership: dict[bytes, Membership] = {}
        # Store thread: messages shown before that must go (MessagesWithdrawn), per room.
        self.withdrawn: dict[bytes, list[bytes]] = {}
        # Loop-thread: system envelopes for rooms we might be invited to.
        self._pending: dict[bytes, dict[bytes, Envelope]] = {}
        self._pending_by: dict[bytes, bytes] = {}  # room -> the contact who sent its log
        self._pushes: set[asyncio.Task[None]] = set()
        # Everyone who shares a room with us: not strangers, whatever their contact state.
        # Replaced whole (never mutated) so the loop thread can read it at any time.
        self.co_members: frozenset[bytes] = frozenset()
        # Group rooms we know, as of the last ingest (replaced whole, for the loop thread):
        # their changes are never buffered as invitations.
        self.known_rooms: frozenset[bytes] = frozenset()
        # The members of the rooms we are joined to (not merely invited to, nor left):
        # who may learn an unannounced person's name. Replaced whole, as co_members;
        # _mates_by_room is the store thread's own.
        self.room_mates: frozenset[bytes] = frozenset()
        self._mates_by_room: dict[bytes, frozenset[bytes]] = {}
        # (peer, room) -> the latest heads to push to, or to answer.
        self._push_queue: LatestWins[tuple[bytes, bytes], Heads] = LatestWins(
            "sync push", self._push, self._pushes, merge=Heads.merged
        )
        # (peer, room) -> when we last pushed on this link, and per author the highest seq
        # pushed (GroupSync.in_flight says why).
        self._pushed: dict[tuple[bytes, bytes], tuple[float, dict[bytes, int]]] = {}
        self._group_rooms: set[bytes] | None = None
        self._announce_due: dict[bytes, frozenset[bytes]] = {}
        self._announcer: asyncio.TimerHandle | None = None
        self._ticker: asyncio.Task[None] | None = None
        # Receipts that arrive while others are being written are written together.
        self._receipts = Coalescer(self._record_receipts)
        # Peers told that their group messages are from an older protocol (once each).
        self._warned_old: set[bytes] = set()
        self._held_back: dict[bytes, int] = {}
        self._old_version_warnings: list[SecurityWarning] = []

    # ------------------------------------------------------------------ inbound

    async def ingest(self, items: Sequence[Inbound]) -> None:
        """Store authentic, admissible envelopes of group rooms; acknowledge; announce."""
        node = self.node
        now = now_ms()
        if all(i.env.kind != KIND_SYSTEM for i in items):
            # Posts only (the common case) take ONE trip to the store thread: the look-up
            # of held ids, the signature checks (libsodium releases the GIL, so they run
            # beside the loop) and the storing. Each trip waits for the loop's turn to
            # resume this task; in a busy room that wait, not the work, was the fan-out.
            # Membership changes keep the path below: the invitation buffer they may go
            # to lives on the loop.
            outcome = await node.core.write(
                lambda s: self._ingest_work(
                    s, _authentic_or_held(s, items, node.checks_ahead), {}, now
                )
            )
            await self._after_ingest(outcome, items)
            return
        # Messages we already hold (a push that overlapped another, a relay of what the
        # author sent us too) skip the signature check, the costliest step of ingesting:
        # nothing of them is stored again, and an acknowledgement needs the stored copy's
        # signature to match theirs (held_intact), so an altered copy gains nothing.
        held = await node.core.read(
            lambda s: s.held_ids([i.env.id for i in items if i.env.kind != KIND_SYSTEM])
        )
        fresh = [i for i in items if i.env.id not in held]
        authentic = await node.authentic(fresh)
        if len(authentic) != len(fresh):
            log.warning(
                "dropped %d group envelopes with bad signatures", len(fresh) - len(authentic)
            )
        authentic += [i for i in items if i.env.id in held]
        if not authentic:
            return
        pending_candidates = self._collect_pending(authentic)

        outcome = await node.core.write(
            lambda s: self._ingest_work(s, authentic, pending_candidates, now)
        )
        await self._after_ingest(outcome, authentic)

    async def _after_ingest(self, outcome: _Outcome, items: Sequence[Inbound]) -> None:
        """Loop thread: tell the UI what was stored, acknowledge it, announce it."""
        node = self.node
        node.checks_ahead.note_held(m.id for m in outcome.stored)
        node.changes.emit_changed()
        for message in outcome.stored:
            if message.kind != "reaction" and message.kind not in CHANGE_KINDS:
                node.core.emit(MessageAdded(message, incoming=True))
            if message.kind == "file":
                await node.transfers.on_file_message(message, incoming=True)
            elif message.kind == KIND_STICKER:
                await node.stickers.on_sticker_message(message)
        for room in outcome.changed_rooms:
            node.core.emit(RoomChanged(room))
        self.emit_withdrawn()
        for room, name, inviter in outcome.invitations:
            self._drop_pending(room)
            node.core.emit(RoomInvitation(room, name, inviter))
        for inviter, count in outcome.held_back.items():
            self._held_back[inviter] = self._held_back.get(inviter, 0) + count
            node.core.emit(
                SecurityWarning(
                    inviter,
                    f"{node.peer_name(inviter)} sent more invitations than you have answered: "
                    f"{self._held_back[inviter]} held back. Answer or decline the open ones "
                    "to receive more.",
                )
            )
        while self._old_version_warnings:
            node.core.emit(self._old_version_warnings.pop())
        for (author, room), ids in outcome.acks.items():
            await node.core.send_receipts(author, room, ids, RECEIPT_DELIVERED)
        # Members we are connected to may not be connected to the authors: tell them what
        # we now hold, and they pull what they lack (coalesced, so a burst costs little).
        if outcome.stored:
            self.announce_soon(holders_of(outcome.stored, items))
        # A message that names changes we lack, or comes above a gap, is not stored: tell
        # every member we reach what we hold, and they push what we lack (the changes
        # first, then the message). Without this it waited for the next announcement,
        # which in a room where nobody else writes might never come: a member that got a
        # room's first message before all the joins it names missed it for good.
        if outcome.behind:
            self.announce_soon({room: frozenset() for room in outcome.behind})

    def _drop_pending(self, room: bytes) -> None:
        self._pending.pop(room, None)
        self._pending_by.pop(room, None)

    def _collect_pending(self, items: Sequence[Inbound]) -> dict[bytes, list[Envelope]]:
        """Loop thread: keep system envelopes of unknown rooms sent by contacts (bounded)."""
        out: dict[bytes, list[Envelope]] = {}
        for item in items:
            env = item.env
            if env.kind != KIND_SYSTEM or not self.node.core.contacts.is_contact(item.peer):
                continue
            if env.deps is None or env.room in self.known_rooms or decoded_op(env.body) is None:
                continue  # never part of an invitation we could adopt
            bucket = self._pending.get(env.room)
            if bucket is None:
                mine = [r for r, who in self._pending_by.items() if who == item.peer]
                if len(mine) >= MAX_PENDING_ROOMS_PER_CONTACT:
                    self._drop_pending(mine[0])  # one contact cannot crowd out the others
                if len(self._pending) >= MAX_PENDING_ROOMS:
                    self._drop_pending(next(iter(self._pending)))  # the oldest goes
                bucket = self._pending[env.room] = {}
                self._pending_by[env.room] = item.peer
            if len(bucket) < MAX_PENDING_ENVELOPES:
                while sum(len(b) for b in self._pending.values()) >= MAX_PENDING_TOTAL:
                    self._drop_pending(next(r for r in self._pending if r != env.room))
                bucket[env.id] = env
            out[env.room] = list(bucket.values())
        return out

    def _ingest_work(
        self,
        store: Store,
        items: Sequence[Inbound],
        pending: dict[bytes, list[Envelope]],
        now: int,
    ) -> _Outcome:
        outcome = _Outcome([], set(), [], defaultdict(list), defaultdict(int))
        by_room: dict[bytes, list[Inbound]] = defaultdict(list)
        for item in items:
            by_room[item.env.room].append(item)
        for room, room_items in by_room.items():
            kind = store.room_kind(room)
            if kind is None:
                self._try_invitation(
                    store,
                    room,
                    envelopes=pending.get(room, []),
                    relayer=room_items[0].peer,
                    now=now,
                    outcome=outcome,
                )
                if room not in self.group_rooms(store) and room not in pending:
                    # Neither a room of ours nor an invitation: said, as every drop is.
                    log.info(
                        "dropped message from %s: %s",
                        short_id(room_items[0].peer),
                        "a room we are not in",
                    )
            elif kind == "group":
                self._ingest_room(store, room, room_items, now, outcome)
            else:
                log.info(
                    "dropped message from %s: %s",
                    short_id(room_items[0].peer),
                    "a direct room of other people",
                )
        outcome.stored.sort(key=lambda msg: msg.rowid)
        self.known_rooms = frozenset(self.group_rooms(store))
        return outcome

    def _ingest_room(
        self, store: Store, room: bytes, items: list[Inbound], now: int, outcome: _Outcome
    ) -> None:
        """Store thread: membership changes first, then what members wrote."""
        node = self.node
        m = self.membership(store, room)
        if m.state_of(node.me) is None:
            return  # a room we were never in
        # After we left or were removed we still follow the room's changes (a removal of
        # us may yet be undone by a concurrent one), but hold no messages until rejoined.
        # Only current members may relay (each author is checked at its position below);
        # an invitee may deliver its own answer (join or decline) to the invitation.
        relayed = [
            i
            for i in items
            if m.state_of(i.peer) == "joined"
            or (
                m.state_of(i.peer) == "invited"
                and i.env.author == i.peer
                and i.env.kind == KIND_SYSTEM
            )
        ]
        system_rows = self._system_rows(store, room, m, relayed, now)
        for row in system_rows:
            # Our next message must sort after every change we know of (a join, say).
            node.core.clock.witness(row.lamport)
        if system_rows and any(store.add_messages(system_rows)):
            before = m.applied
            m = self._refresh(store, room)
            outcome.changed_rooms.add(room)
            # Only changes that took effect are shown; one that waited for the changes it
            # names is shown once they arrive.
            outcome.stored.extend(store.get_messages(sorted(m.applied - before)))
        if m.state_of(node.me) != "joined":
            return  # an invitee only follows the membership log
        rows = []
        # A delete fills the seqs it removes, so it is carried out first (even if it
        # must itself wait above a gap): nobody can ever relay what it removed.
        node.changes.apply_deletes(store, self._deletes(store, m, room, relayed), now)
        # An author's messages are held in seq order, without gaps (a gap is only ever
        # filled by that author's own next envelopes), so what two members hold of an
        # author is always one a prefix of the other, and anti-entropy evens it out.
        heads = store.heads(room)
        for item in sorted(relayed, key=lambda i: (i.env.author, i.env.seq)):
            env = item.env
            if env.kind == KIND_SYSTEM:
                continue
            if env.deps is None:
                self._warn_old_version(env.author)
                continue
            if env.seq > _past_voids(m, env.author, heads.get(env.author, 0)) + 1:
                log.info("room %s: held back %s above a gap", room.hex()[:8], short_id(env.author))
                outcome.behind.add(room)
                continue
            problem = (
                m.admits(env.author, env.seq, env.deps)
                or _id_problem(room, env)
                or node.body_problem(env)
                or node.lamport_problem(env)
            )
            if problem is not None:
                log.info("room %s: dropped %s: %s", room.hex()[:8], short_id(env.author), problem)
                if problem == DEPS_NOT_HELD:
                    outcome.behind.add(room)
                continue
            heads[env.author] = max(heads.get(env.author, 0), env.seq)
            rows.append(envelope_to_row(env, now, MessageStatus.DELIVERED))
        held: set[bytes] = set()
        if rows:
            results = store.insert_messages(rows)
            for author in {r.author for r in rows}:
                self._skip_voids(store, room, m, author)
            held = held_intact(store, rows, results)
            fresh = [m for m in results if m is not None]
            for msg in fresh:
                if msg.kind == "reaction":
                    apply_reaction(store, msg)
                node.core.clock.witness(msg.lamport)
            envelopes = {i.env.id: i.env for i in relayed}
            gone = node.changes.after_store(store, fresh, envelopes, now)
            outcome.stored.extend(m for m in fresh if m.id not in gone)
        # Acknowledge to each author (through the outbox if they are away).
        for row in [*system_rows, *(r for r in rows if r.id in held)]:
            if row.author != node.me and m.state_of(row.author) == "joined":
                outcome.acks[(row.author, room)].append(row.id)

    def _deletes(
        self, store: Store, m: Membership, room: bytes, items: list[Inbound]
    ) -> list[Envelope]:
        """Store thread: the deletes among ``items`` that count (gaps aside).

        One we hold already was carried out when stored, and its signature was not
        checked again this time (``ingest``): a copy under its id is never acted on.
        """
        node = self.node
        candidates = [i for i in items if i.env.kind == KIND_DELETE]
        if not candidates:
            return []
        held = store.held_ids([i.env.id for i in candidates])
        return [
            i.env
            for i in candidates
            if i.env.id not in held
            and m.admits(i.env.author, i.env.seq, i.env.deps) is None
            and _id_problem(room, i.env) is None
            and node.body_problem(i.env) is None
            and node.lamport_problem(i.env) is None
        ]

    def _system_rows(
        self, store: Store, room: bytes, m: Membership, items: list[Inbound], now: int
    ) -> list[NewMessage]:
        """Store thread: the system envelopes worth holding (judged later, by resolve).

        Held: well-formed, protocol 2 (with deps), by someone the room knows of, or whom
        a held invitation names (also one still waiting, or in this same batch), within
        the room's cap on operations.
        """
        # Everyone the room knows of, or a held invitation names: an invitation may wait
        # for changes it names (a join we lack yet), and the invitee's join, dropped
        # meanwhile, came back only with a later sync round, one level of such waiting
        # per round: in a 50-member room being formed, a member went over a minute
        # without everyone. Held, it counts as soon as what it waits for arrives.
        invited = set(m.states) | m.named
        for item in items:
            if item.env.kind == KIND_SYSTEM:
                op = decoded_op(item.env.body)
                if op is not None and op.op == "invite" and op.peer is not None:
                    invited.add(op.peer)
        room_left = MAX_OPS - m.held
        by_author = dict(m.held_by)
        rows: list[NewMessage] = []
        for item in sorted(items, key=lambda i: room_position(i.env)):
            env = item.env
            if env.kind != KIND_SYSTEM:
                continue
            problem = None
            if env.deps is None:
                problem = "written by an older p2pchat"
                self._warn_old_version(env.author)
            elif _id_problem(room, env) is not None:
                problem = _id_problem(room, env)
            elif decoded_op(env.body) is None:
                problem = "malformed"
            elif env.author not in invited:
                problem = "its author is unknown to the room"
            elif not _exempt(m, env) and (
                len(rows) >= room_left or by_author.get(env.author, 0) >= MAX_OPS_PER_AUTHOR
            ):
                problem = "the room holds too many changes"
            problem = problem or self.node.lamport_problem(env)
            if problem is not None:
                log.info("room %s: dropped a change: %s", room.hex()[:8], problem)
                continue
            by_author[env.author] = by_author.get(env.author, 0) + 1
            rows.append(envelope_to_row(env, now, MessageStatus.DELIVERED))
        return rows

    def _try_invitation(
        self,
        store: Store,
        room: bytes,
        *,
        envelopes: list[Envelope],
        relayer: bytes,
        now: int,
        outcome: _Outcome,
    ) -> None:
        """Store thread: a room we do not know; adopt it if the log invites us.

        Invitations are bounded in the store: a few unanswered ones per inviter and a
        few dozen in all; more are refused (the person is told how many were held back).
        """
        if not envelopes or len(room) != GROUP_ROOM_ID_LEN:
            return
        v2 = [env for env in envelopes if env.deps is not None and _id_problem(room, env) is None]
        m = resolve(room, op_entries(v2))
        if not m.created or m.state_of(self.node.me) != "invited" or m.owner is None:
            return
        invites = [e for e in op_entries(v2) if e.op.op == "invite" and e.op.peer == self.node.me]
        inviter = next((e.author for e in invites if e.id in m.applied), m.owner)
        if not self.node.core.contacts.is_contact(inviter):
            # Throwaway identities as inviters must not fill the invitation slots.
            log.info("room %s: invitation from a non-contact held back", room.hex()[:8])
            outcome.held_back[relayer] += 1
            return
        pending = self._open_invitations(store, now)
        from_inviter = sum(1 for who in pending.values() if who == inviter)
        if from_inviter >= MAX_INVITATIONS_PER_INVITER or len(pending) >= MAX_INVITATIONS:
            outcome.held_back[inviter] += 1
            return
        store.ensure_room(room, "group", name=m.name, owner=m.owner, created_at=now)
        self.group_rooms(store).add(room)
        rows = [envelope_to_row(env, now, MessageStatus.DELIVERED) for env in v2]
        for row in rows:
            self.node.core.clock.witness(row.lamport)
        store.add_messages(rows)
        m = self._refresh(store, room)
        outcome.stored.extend(store.get_messages(sorted(m.applied)))
        outcome.changed_rooms.add(room)
        outcome.invitations.append((room, m.name or "a room", inviter))
        # Acknowledge the log to whoever handed it over, so it leaves their outbox.
        outcome.acks[(relayer, room)].extend(env.id for env in envelopes)

    def _open_invitations(self, store: Store, now: int) -> dict[bytes, bytes]:
        """Store thread: unanswered invitations (room -> inviter); expired ones are dropped."""
        out: dict[bytes, bytes] = {}
        for room in list(self.group_rooms(store)):
            m = self.membership(store, room)
            if m.state_of(self.node.me) != "invited":
                continue
            info = store.get_room(room)
            if info is not None and now - info.created_at > INVITATION_EXPIRY_MS:
                store.delete_room(room)
                self.group_rooms(store).discard(room)
                self._membership.pop(room, None)
                continue
            out[room] = self._inviter(store, room, m)
        return out

    def _inviter(self, store: Store, room: bytes, m: Membership) -> bytes:
        """Store thread: who invited us to ``room`` (the owner if we cannot tell)."""
        for msg in reversed(store.messages_of_kind(room, KIND_SYSTEM)):
            if msg.id in m.applied and op_of(msg) == ("invite", self.node.me):
                return msg.author
        return m.owner or self.node.me

    async def start(self) -> None:
        """Learn who shares our rooms; begin periodic anti-entropy with connected members."""

        def load(store: Store) -> frozenset[bytes]:
            members: set[bytes] = set()
            for room in self.group_rooms(store):
                m = self.membership(store, room)
                members.update(m.joined())
                self._set_mates(room, m)
            return frozenset(members)

        # Unanswered invitations older than INVITATION_EXPIRY_MS go (and their rooms).
        await self.node.core.write(lambda store: self._open_invitations(store, now_ms()))
        self.co_members = await self.node.core.read(load)
        self.known_rooms = await self.node.core.read(
            lambda store: frozenset(self.group_rooms(store))
        )
        self._ticker = asyncio.ensure_future(
            every_connected_peer(self.node, self.on_link_up, "periodic sync")
        )

    async def stop(self) -> None:
        """Cancel running pushes and timers."""
        if self._announcer is not None:
            self._announcer.cancel()
        for task in [*self._pushes, *([self._ticker] if self._ticker else [])]:
            task.cancel()

    def _now_ms(self) -> int:
        """Wall-clock ms for the parts, read through this module's ``now_ms`` (the UI tests
        freeze that one)."""
        return now_ms()


def _authentic_or_held(
    store: Store, items: Sequence[Inbound], checks: ChecksAhead
) -> list[Inbound]:
    """Store thread: the items already held, and the others whose signature verifies.

    A held message skips the check, the costliest step of ingesting: nothing of it is
    stored again, and an acknowledgement needs the stored copy's signature to match
    theirs (held_intact), so an altered copy gains nothing.

    An author's next seq (one above the head, which counts every seq held without a
    gap) is never held, so only the others are looked up: a live message then costs no
    look-up at all (the heads are in memory). A head that lagged would only mean a
    check more, never one less.
    """
    heads = {room: store.heads(room) for room in {i.env.room for i in items}}
    maybe_held = [
        i.env.id for i in items if i.env.seq != heads[i.env.room].get(i.env.author, 0) + 1
    ]
    held = store.held_ids(maybe_held) if maybe_held else set()
    out = [i for i in items if i.env.id in held or checks.is_authentic(i.env)]
    if len(out) != len(items):
        log.warning("dropped %d group envelopes with bad signatures", len(items) - len(out))
    return out


def _exempt(m: Membership, env: Envelope) -> bool:
    """Changes no cap refuses: an owner's or admin's, and an invitee's answer.

    Caps are applied as envelopes arrive, so what a node holds under them depends on the
    order; a member flooding the room must never make a node refuse the changes that
    run it (a removal of that member, above all).
    """
    if m.role_of(env.author) != "member":
        return True
    op = decoded_op(env.body)
    return op is not None and op.op in ("join", "decline") and m.state_of(env.author) == "invited"


def _past_voids(m: Membership, author: bytes, head: int) -> int:
    """``head`` moved over the void ranges (outside the author's spans) it reaches."""
    for first, last in m.outside(author):
        if first <= head + 1 <= last < VOID_END:
            head = last
    return head


def _id_problem(room: bytes, env: Envelope) -> str | None:
    if env.id != group_envelope_id(room, env.author, env.seq):
        return "its id is not the one its room, author and seq give"
    return None
