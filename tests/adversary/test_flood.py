"""Hole 7: floods from a contact.

A contact sending 48 KB texts at full speed must neither delay another contact's
messages (fair per-peer scheduling, backpressure on the flooder's connection) nor grow
the store without bound (a per-peer daily quota): what is over the quota is refused
without an acknowledgement, so it stays in the sender's outbox, and the person is told.
Every flood here is bounded in count, and every wait in time.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import Callable

from p2pchat.node import Node
from p2pchat.node.envelopes import direct_room_id
from p2pchat.node.events import MessageAdded, PeerThrottled
from p2pchat.node.inbox import FairInbox
from p2pchat.node.quota import DAY, FloodGuard, FloodLimits, FloodNotice
from p2pchat.store import MessageStatus
from p2pchat.wire import MAX_BODY
from tests.adversary.hostile import Hostile, hostile_peer
from tests.node.groups_helpers import form_room, mesh, start_nodes, texts, wait_texts
from tests.nodes import WAIT, connected_pair, make_node, wait_for

BIG = MAX_BODY  # 48 KiB, the largest text a peer may send
#: Limits that never throttle nor refuse: only the scheduling is under test.
UNLIMITED = FloodLimits(rate_bytes=1e12, burst_bytes=1e12, daily_bytes=1e12)


async def befriend(a: Node, b: Node) -> None:
    await connected_pair(a, b)
    await a.accept(b.me)
    await b.accept(a.me)


async def flood(
    hostile: Hostile,
    to: Node,
    count: int,
    *,
    chunk: int = 8,
    after_chunk: Callable[[], None] = lambda: None,
) -> None:
    """Send ``count`` big signed texts as fast as the connection takes them."""
    for start in range(0, count, chunk):
        envs = [
            hostile.direct(to.me, body=b"%06d" % i + b"x" * (BIG - 6))
            for i in range(start, min(count, start + chunk))
        ]
        hostile.send_envelopes(to.me, *envs)
        await hostile.node.links.flush(to.me)  # waits while the receiver is not reading
        after_chunk()


class Ledger:
    """Counts what node ``a`` stores, by author, as it happens (one event stream)."""

    def __init__(self, a: Node, flooder: bytes, probe: Callable[[], int] = lambda: 0) -> None:
        self.a = a
        self.flooder = flooder
        self.flooded = 0  # messages of the flooder stored so far
        self.arrived: dict[bytes, int] = {}  # other message id -> flooded count then
        self.throttled: list[PeerThrottled] = []
        self.max_probe = 0
        self.probe = probe
        self._changed = asyncio.Event()
        self._stream = a.subscribe()
        self._task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        async for event in self._stream:
            if isinstance(event, MessageAdded) and event.incoming:
                if event.message.author == self.flooder:
                    self.flooded += 1
                else:
                    self.arrived[event.message.id] = self.flooded
            elif isinstance(event, PeerThrottled) and event.peer_id == self.flooder:
                self.throttled.append(event)
            self.sample()
            self._changed.set()

    def sample(self) -> None:
        self.max_probe = max(self.max_probe, self.probe())

    @property
    def refused(self) -> int:
        return sum(n.refused for n in self.throttled)

    async def until(self, predicate: Callable[[], bool], within: float = WAIT) -> None:
        async with asyncio.timeout(within):
            while not predicate():
                self._changed.clear()
                await self._changed.wait()

    async def close(self) -> None:
        self._stream.close()
        self._task.cancel()
        await asyncio.gather(self._task, return_exceptions=True)


async def test_flooding_contact_does_not_delay_another_contacts_messages() -> None:
    count, honest = 600, 5
    limits = dataclasses.replace(UNLIMITED, queue_bytes=256 * 1024)
    queue_items = -(-limits.queue_bytes // (BIG + limits.message_overhead))
    a = make_node("alice", flood=limits)
    b = make_node("bob")
    await a.start()
    await b.start()
    m = await hostile_peer("mallory", a)
    await a.accept(m.me)
    await befriend(a, b)
    ledger = Ledger(a, m.me, probe=lambda: a._inbound.queued_bytes(m.me))
    flooding = asyncio.create_task(flood(m, a, count, after_chunk=ledger.sample))
    try:
        await ledger.until(lambda: ledger.flooded >= 20)
        waits = []
        for i in range(honest):
            sent = await b.send_text(a.me, f"still here {i}")  # returns once it is sent
            before = ledger.flooded
            await ledger.until(lambda sent=sent: sent.id in ledger.arrived)
            waits.append(ledger.arrived[sent.id] - before)
        # Each of bob's messages waited for at most a couple of batches of mallory's
        # (a queue's worth each), never behind the whole backlog; and all of them
        # arrived while mallory's flood was still being stored.
        assert max(waits) <= 4 * queue_items + 4, waits
        assert ledger.flooded < count, "bob's messages arrived only after the flood"
        # Backpressure: mallory's queued work never went far over the per-peer bound.
        assert ledger.max_probe <= limits.queue_bytes + 2 * BIG
        await ledger.until(lambda: ledger.flooded == count, within=60)
    finally:
        flooding.cancel()
        await ledger.close()
        for node in (m.node, b, a):
            await node.stop()


async def test_flood_over_the_daily_quota_is_refused_and_the_person_told() -> None:
    count = 60
    limits = FloodLimits(
        rate_bytes=1e12, burst_bytes=1e12, daily_bytes=1024 * 1024, notice_interval=0.2
    )
    a = make_node("alice", flood=limits)
    b = make_node("bob")
    await a.start()
    await b.start()
    m = await hostile_peer("mallory", a)
    await a.accept(m.me)
    await befriend(a, b)
    ledger = Ledger(a, m.me)
    try:
        await flood(m, a, count)
        await ledger.until(lambda: ledger.flooded + ledger.refused == count)
        assert ledger.refused > 0
        notice = ledger.throttled[0]
        assert "mallory" in notice.text
        assert "refused" in notice.text
        # What mallory made alice store stayed within the quota.
        room = direct_room_id(a.me, m.me)
        stored = [x for x in await a.history(room, limit=1000) if x.author == m.me]
        assert len(stored) == ledger.flooded
        charged = sum(len(x.body) + limits.message_overhead for x in stored)
        assert charged <= limits.daily_bytes
        # Bob, who sends little, is not affected by mallory's spent quota.
        sent = await b.send_text(a.me, "hello")
        assert await b.wait_for_status(sent.id, MessageStatus.DELIVERED, WAIT)
    finally:
        await ledger.close()
        for node in (m.node, b, a):
            await node.stop()


async def test_refused_messages_are_not_acknowledged_and_come_again_later() -> None:
    count = 16  # a quota of 10 refuses 6, which fit in the next day's quota
    limits = FloodLimits(
        rate_bytes=1e12, burst_bytes=1e12, daily_bytes=10 * (BIG + 256), notice_interval=0.2
    )
    a = make_node("alice", flood=limits)
    m = make_node("mallory")  # a real node: its own send path, outbox and retries
    await a.start()
    await m.start()
    offset = [0.0]
    a.flood.clock = lambda: time.monotonic() + offset[0]  # the quota's clock only
    ledger = Ledger(a, m.me)
    try:
        await befriend(a, m)
        sent = [await m.send_text(a.me, f"{i:06d}" + "x" * (BIG - 6)) for i in range(count)]
        await ledger.until(lambda: ledger.flooded + ledger.refused == count)
        assert ledger.refused > 0
        # A message from alice after the flood: mallory reads (and stores) every
        # receipt alice sent before it first, so the statuses below are final.
        m_events = m.subscribe()
        reply = await a.send_text(m.me, "slow down")
        await wait_for(m_events, lambda e: isinstance(e, MessageAdded) and e.message.id == reply.id)
        m_events.close()
        room = direct_room_id(a.me, m.me)
        held = {x.id for x in await a.history(room, limit=1000) if x.author == m.me}
        refused = [s.id for s in sent if s.id not in held]
        assert len(refused) == ledger.refused
        for s in sent:
            status = (await m.get_message(s.id)).status
            if s.id in held:
                assert status == MessageStatus.DELIVERED
            else:
                assert status == MessageStatus.SENT, "a refused message was acknowledged"
        waiting = await m._read(lambda st: st.pending_for(a.me, 1000))
        assert set(refused) <= {item.message_id for item in waiting}
        # A day later, and connected again, the refused messages come and are delivered.
        offset[0] = 86_400.0
        await a.links.links[m.me].conn.close("test: reconnect")
        for message_id in refused:
            assert await m.wait_for_status(message_id, MessageStatus.DELIVERED, WAIT)
    finally:
        await ledger.close()
        for node in (m, a):
            await node.stop()


async def test_peer_over_its_rate_is_held_back_and_loses_nothing() -> None:
    count = 30
    limits = FloodLimits(rate_bytes=1024 * 1024, burst_bytes=128 * 1024, notice_interval=0.2)
    a = make_node("alice", flood=limits)
    m = make_node("mallory")
    await a.start()
    await m.start()
    ledger = Ledger(a, m.me)
    try:
        await befriend(a, m)
        sent = [await m.send_text(a.me, f"{i:06d}" + "x" * (BIG - 6)) for i in range(count)]
        for s in sent:
            assert await m.wait_for_status(s.id, MessageStatus.DELIVERED, WAIT)
        await ledger.until(lambda: sum(n.held_back for n in ledger.throttled) > 0)
        assert ledger.flooded == count
        assert ledger.refused == 0
        assert "held back" in ledger.throttled[0].text
    finally:
        await ledger.close()
        for node in (m, a):
            await node.stop()


async def test_refused_group_messages_come_again_with_the_next_sync() -> None:
    count = 16
    limits = FloodLimits(
        rate_bytes=1e12, burst_bytes=1e12, daily_bytes=10 * (BIG + 256), notice_interval=0.2
    )
    a, m = await start_nodes(["alice", "mallory"], sync_interval=0.5, flood=limits)
    offset = [0.0]
    a.flood.clock = lambda: time.monotonic() + offset[0]
    ledger = Ledger(a, m.me)
    try:
        await mesh([a, m])
        room = await form_room(m, [a])
        for i in range(count):
            await m.send_message(room, f"{i:06d}" + "x" * (BIG - 6))
        await ledger.until(lambda: ledger.refused > 0)
        assert len(await texts(a, room)) < count
        offset[0] = 86_400.0  # a day later the quota has room again; no reconnect needed
        await wait_texts(a, room, count, within=WAIT)
        assert sorted(await texts(a, room)) == sorted(
            f"{i:06d}" + "x" * (BIG - 6) for i in range(count)
        )
    finally:
        await ledger.close()
        for node in (m, a):
            await node.stop()


async def test_node_stops_at_once_while_a_flooder_is_held_back() -> None:
    # 48 KB at 8 KB/s: each of mallory's messages holds her connection for 6 s.
    limits = FloodLimits(rate_bytes=8 * 1024, burst_bytes=1, notice_interval=0.2)
    a = make_node("alice", flood=limits)
    await a.start()
    m = await hostile_peer("mallory", a)
    await a.accept(m.me)
    ledger = Ledger(a, m.me)
    stopped = False
    try:
        await flood(m, a, 16)
        await ledger.until(lambda: bool(ledger.throttled))

        def serving() -> list[asyncio.Task[object]]:
            return [
                t for t in asyncio.all_tasks() if "Listener._accept" in t.get_coro().__qualname__
            ]

        assert serving(), "alice should be serving mallory's connection"
        async with asyncio.timeout(WAIT):
            await a.stop()
        stopped = True
        # Her read loop for mallory ends with the node, not after the hold-back (6 s).
        left = serving()
        if left:
            _, pending = await asyncio.wait(left, timeout=1.0)
            assert not pending, "a read loop outlived the node"
    finally:
        await ledger.close()
        await m.node.stop()
        if not stopped:
            await a.stop()


# ---------------------------------------------------------------- the parts, alone


async def test_inbox_serves_peers_in_turn_keeps_each_peers_order_and_bounds_a_batch() -> None:
    inbox: FairInbox[str] = FairInbox(peer_bytes=1000)
    for i in range(4):
        await inbox.put(b"m", f"m{i}", 100)
    await inbox.put(b"b", "b0", 10)
    # Mallory's budget per batch is 200 bytes: two of hers, bob's one, in turn.
    assert await inbox.take(limit=100, peer_budget=200) == ["m0", "b0", "m1"]
    assert await inbox.take(limit=100, peer_budget=200) == ["m2", "m3"]
    assert inbox.empty()


async def test_inbox_makes_a_peer_over_its_bound_wait_until_there_is_room() -> None:
    inbox: FairInbox[str] = FairInbox(peer_bytes=200)
    await inbox.put(b"m", "m0", 200)
    blocked = asyncio.create_task(inbox.put(b"m", "m1", 200))
    await inbox.put(b"b", "b0", 200)  # another peer is never held up by mallory's bound
    await asyncio.sleep(0)
    assert not blocked.done()
    assert await inbox.take(limit=1, peer_budget=1000) == ["m0"]
    await asyncio.wait_for(blocked, WAIT)
    inbox.close()  # once closed, nobody waits
    await asyncio.wait_for(inbox.put(b"m", "m2", 10_000), WAIT)
    await asyncio.wait_for(inbox.pause(3600), WAIT)


async def test_flood_guard_rate_daily_budget_and_notices() -> None:
    now = [1000.0]
    notices: list[FloodNotice] = []
    limits = FloodLimits(
        rate_bytes=1000, burst_bytes=1000, daily_bytes=2000, message_overhead=0, notice_interval=0
    )
    guard = FloodGuard(limits, notices.append, clock=lambda: now[0])
    assert guard.hold_back(b"m", 1000) == 0  # the burst
    assert guard.hold_back(b"m", 500) == 0.5  # half a second's worth over the rate
    assert guard.hold_back(b"b", 1000) == 0  # bob has his own budget
    assert guard.allow_store(b"m", 1500)
    assert not guard.allow_store(b"m", 1000)  # 500 left today
    assert [(n.held_back, n.refused) for n in notices] == [(1, 0), (0, 1)]
    now[0] += DAY / 2  # half a day refills half the daily budget
    assert guard.allow_store(b"m", 1400)
    assert not guard.allow_store(b"m", 200)
