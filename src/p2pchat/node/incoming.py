"""Messages in: frames from links, queued per peer, checked, stored in batches."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from concurrent.futures import Executor

from p2pchat.identity import short_id
from p2pchat.node.checks_ahead import CheckedBatch, new_verifier
from p2pchat.node.conversations import ConversationApi
from p2pchat.node.edits import KIND_DELETE, KIND_EDIT, KIND_TIMER, change_problem
from p2pchat.node.envelopes import (
    KIND_FILE,
    KIND_REACTION,
    ReactionError,
    decode_reaction,
    envelope_is_authentic,
)
from p2pchat.node.events import PeerThrottled, PeerUpdated, SecurityWarning, TypingChanged
from p2pchat.node.inbox import Inbound, SyncRequest
from p2pchat.node.node_base import (
    INGEST_RETRY_FIRST,
    INGEST_RETRY_MAX,
    MAX_INGEST_BATCH,
    SYNC_REQUEST_COST,
    VERIFY_IN_THREAD_FROM,
)
from p2pchat.node.quota import FloodNotice, describe_flood
from p2pchat.node.rooms import KIND_SYSTEM
from p2pchat.node.sticker_body import KIND_STICKER
from p2pchat.store import StoreError
from p2pchat.transport import Connection
from p2pchat.wire import (
    MAX_TS,
    Envelope,
    Frame,
    MessageFrame,
    OnionAddress,
    Receipt,
    SyncHeads,
    Typing,
)
from p2pchat.wire import Profile as ProfileFrame

log = logging.getLogger(__name__)


class IncomingApi(ConversationApi):
    """Messages in: frames from links, queued per peer, checked, stored in batches."""

    # ================================================================ messages in

    async def _on_frame(self, conn: Connection, frame: Frame) -> None:
        peer = conn.remote.peer_id
        state = self._states.get(peer, "unknown")
        if state == "blocked":
            return
        if isinstance(frame, MessageFrame):
            cost = self.flood.cost(len(frame.env.body))
            delay = self.flood.hold_back(peer, cost)
            if delay > 0:  # over its rate: read nothing more from this peer meanwhile
                await self._inbound.pause(delay)
            # Waits (so stops reading this peer) while its queued work is over the bound.
            await self._inbound.put(peer, Inbound(peer, frame.env), cost)
        elif isinstance(frame, SyncHeads):
            # Queued behind the envelopes that came before it (a join, say), so it is
            # answered with the membership those envelopes establish.
            await self._inbound.put(peer, SyncRequest(peer, frame), SYNC_REQUEST_COST)
        elif isinstance(frame, Receipt):
            if frame.room == self.direct_room(peer):
                await self.direct.on_receipt(peer, frame)
            else:
                await self.groups.on_receipt(peer, frame)
        elif isinstance(frame, Typing):
            direct = frame.room == self.direct_room(peer)
            if (direct and state == "contact") or (not direct and peer in self.groups.co_members):
                self._emit(TypingChanged(frame.room, peer, frame.on))
        elif isinstance(frame, ProfileFrame):
            await self._on_profile(peer, frame.name)
        elif isinstance(frame, OnionAddress):
            await self.onions.on_frame(peer, frame)

    async def _on_profile(self, peer: bytes, name: str) -> None:
        self._check_impersonation(peer, name)
        self._names[peer] = name
        if not self._is_stranger(peer):  # a stranger's renames cost us no disk writes
            await self._write(lambda s: s.upsert_peer(peer, name=name))
        self._emit(PeerUpdated(peer, name, self._states.get(peer, "unknown")))

    async def _ingest_loop(self) -> None:
        """Store inbound messages in batches; acknowledge them; announce them.

        Batches are stored one after another, in arrival order. After a large batch (a
        catch-up, say) the next one is taken at once and its signatures are checked in
        the verifier threads while this one is being stored; after a small one, the next
        is taken only once it is stored, so it holds everything that came meanwhile.
        """
        storing: asyncio.Future[None] | None = None
        try:
            while True:
                taken = await self._inbound.take(MAX_INGEST_BATCH, self.config.flood.batch_bytes)
                # Quotas and dates first, so nothing refused costs a signature check.
                batch = self._admitted(taken)
                checks = self.checks_ahead.start(
                    self._verifier_pool(), [i.env for i in batch if isinstance(i, Inbound)]
                )
                if storing is not None:
                    await storing
                    storing = None
                if checks is None:
                    await self._store_batch(batch, len(taken), None)
                else:
                    storing = asyncio.ensure_future(self._store_batch(batch, len(taken), checks))
        finally:
            if storing is not None:
                storing.cancel()
            self.checks_ahead.clear()  # a batch taken but never stored leaves no verdicts

    async def _store_batch(
        self, batch: list[Inbound | SyncRequest], taken: int, checks: CheckedBatch | None
    ) -> None:
        try:
            await self._ingest_until_stored(batch)
        finally:
            self._inbound.done(taken)
            self.checks_ahead.finish(checks)

    def _admitted(self, batch: list[Inbound | SyncRequest]) -> list[Inbound | SyncRequest]:
        """The envelopes dated before year 10000 and within their peer's daily quota, then
        every sync request (``_ingest`` takes a batch's envelopes before its requests)."""
        dated = [i for i in batch if isinstance(i, Inbound) and self._time_ok(i)]
        return [*self._within_quota(dated), *(i for i in batch if isinstance(i, SyncRequest))]

    def _verifier_pool(self) -> Executor:
        if self._verifier is None:  # not started (tests that ingest directly)
            self._verifier = new_verifier()
        return self._verifier

    async def _ingest_until_stored(self, batch: list[Inbound | SyncRequest]) -> None:
        """Ingest ``batch``; while the store cannot write (disk full, locked), try again.

        Nothing of a failed batch was acknowledged, and its senders would offer it again
        only on a new connection: so it waits here, with the peers' further frames held
        back by the inbox's bounds, and is stored within moments of the fault clearing.
        The person is told once per fault.
        """
        delay = INGEST_RETRY_FIRST
        while True:
            try:
                await self._ingest(batch)
            except StoreError as exc:
                if not self._store_fault:
                    self._store_fault = str(exc)
                    log.warning("cannot store incoming messages: %s", exc)
                    self._emit(
                        SecurityWarning(
                            None,
                            f"Incoming messages cannot be stored: {exc}. They wait and are "
                            "stored as soon as the store can write again (free some disk "
                            "space, or close the program holding the store).",
                        )
                    )
                await asyncio.sleep(delay)  # the fault must clear; this paces the retries
                delay = min(delay * 2, INGEST_RETRY_MAX)
                continue
            except Exception:
                log.exception("failed to store %d inbound messages", len(batch))
            if self._store_fault:
                log.warning("the store writes again; waiting messages were stored")
                self._store_fault = ""
            return

    async def authentic(self, items: Sequence[Inbound]) -> list[Inbound]:
        """The items whose envelope signature verifies.

        A large batch (a catch-up) is verified in a thread: libsodium releases the GIL,
        so checking signatures overlaps with decrypting the next frames on the loop.
        A small one is checked inline, where a thread hop would only add latency.
        """
        ahead = self.checks_ahead.covering([i.env for i in items])
        if ahead is not None:  # checked while the batch before was being stored
            flags = await ahead.verdicts()
            return [i for i in items if flags[ahead.position[id(i.env)]]]
        if len(items) < VERIFY_IN_THREAD_FROM:
            return [i for i in items if envelope_is_authentic(i.env)]
        loop = asyncio.get_running_loop()
        flags = await loop.run_in_executor(
            self._verifier_pool(), lambda: [envelope_is_authentic(i.env) for i in items]
        )
        return [i for i, ok in zip(items, flags, strict=True) if ok]

    def body_problem(self, env: Envelope) -> str | None:
        """Why an envelope's body is unacceptable for its kind, or None (unknown kinds pass)."""
        if env.kind == "text":
            try:
                env.body.decode("utf-8")
            except UnicodeDecodeError:
                return "text is not UTF-8"
        elif env.kind == KIND_REACTION:
            try:
                decode_reaction(env.body)
            except ReactionError as exc:
                return f"bad reaction: {exc}"
        elif env.kind == KIND_FILE:
            problem = self.transfers.check_offer(env.body)
            if problem is not None:
                return f"bad file offer: {problem}"
        elif env.kind == KIND_STICKER:
            problem = self.stickers.check_body(env.body)
            if problem is not None:
                return f"bad sticker: {problem}"
        elif env.kind == KIND_SYSTEM:
            return "room change outside a group room"  # groups handle theirs before this
        elif env.kind in (KIND_EDIT, KIND_DELETE, KIND_TIMER):
            return change_problem(env)
        # Any other kind is from a newer p2pchat: kept and acknowledged (so its sender's
        # outbox empties), shown only as a placeholder (display_text). Forward compatible.
        return None

    @staticmethod
    def _time_ok(item: Inbound) -> bool:
        """False (and logged) for an envelope dated after year 9999 (docs/protocol.md).

        Its author signed that time; no calendar can show it, and held or relayed it would
        only trouble every other member. Dropped before any room sees it, never stored.
        """
        if item.env.ts <= MAX_TS:
            return True
        log.info(
            "dropped message from %s: ts %d is past year 9999", short_id(item.peer), item.env.ts
        )
        return False

    async def _ingest(self, batch: list[Inbound | SyncRequest]) -> None:
        """Envelopes first (direct rooms, then group rooms), then sync requests."""
        envelopes = [i for i in batch if isinstance(i, Inbound)]  # admitted (_admitted)
        direct = [i for i in envelopes if i.env.room == self.direct_room(i.peer)]
        group = [i for i in envelopes if i.env.room != self.direct_room(i.peer)]
        if direct:
            await self.direct.ingest(direct)
        if group:
            await self.groups.ingest(group)
        for item in batch:
            if isinstance(item, SyncRequest):
                if item.heads.room == self.direct_room(item.peer):
                    self.direct_sync.on_sync_heads(item.peer, item.heads)
                else:
                    await self.groups.on_sync_heads(item.peer, item.heads)

    def _within_quota(self, items: list[Inbound]) -> list[Inbound]:
        """The items their peer's daily store budget allows; the rest are refused.

        A refused envelope is neither stored nor acknowledged: it stays in the sender's
        outbox and comes again with the next connection. The person hears of it through
        a ``PeerThrottled`` notice.
        """
        kept = []
        for item in items:
            if self.flood.allow_store(item.peer, self.flood.cost(len(item.env.body))):
                kept.append(item)
            else:
                log.debug("refused a message from %s: over its daily quota", short_id(item.peer))
        return kept

    def _on_flood_notice(self, notice: FloodNotice) -> None:
        name = f"{self.peer_name(notice.peer)!r} ({short_id(notice.peer)})"
        self._emit(
            PeerThrottled(
                notice.peer,
                describe_flood(name, notice),
                held_back=notice.held_back,
                refused=notice.refused,
            )
        )
