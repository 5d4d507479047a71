"""Hole 8: contact-request spam from fresh identities.

Each spammer is a fresh identity speaking the real protocol over TCP (a Noise handshake
and a validly signed envelope), as a LAN attacker could make thousands of for free. The
real newcomer is a whole node, as a person's app would be. On the code before this fix
22 fresh identities spent the request budget and a newcomer's first message was dropped
without a word; with 100 open requests every newcomer was.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from p2pchat.control.api import NodeApi
from p2pchat.identity import Identity
from p2pchat.node import MessageAdded, Node, PeerOffline, RequestsHeldBack
from p2pchat.node.envelopes import direct_room_id, new_message_id, sign_envelope
from p2pchat.node.events import Event
from p2pchat.node.requests import HeldBack
from p2pchat.store import now_ms
from p2pchat.transport import LocalHello, connect
from p2pchat.wire import Envelope, MessageFrame
from tests.nodes import WAIT, connected_pair, make_node, wait_for
from tests.processes import Serve, cli, free_port


def _envelope(identity: Identity, to: bytes, body: bytes, seq: int) -> Envelope:
    unsigned = Envelope.unsigned(
        room=direct_room_id(identity.peer_id, to),
        id=new_message_id(),
        author=identity.peer_id,
        seq=seq,
        lamport=seq,
        ts=now_ms(),
        kind="text",
        body=body,
    )
    return sign_envelope(identity, unsigned)


def _stored_from(author: bytes) -> Callable[[Event], bool]:
    return lambda e: isinstance(e, MessageAdded) and e.message.author == author


async def send_request(port: int, body: bytes = b"buy now", *, n: int = 0) -> Identity:
    """A fresh identity dials ``port``, sends one message and leaves; returns it."""
    identity = Identity.generate()
    conn = await connect(
        "127.0.0.1", port, LocalHello(identity=identity, name=f"spam{n}"), deadline=WAIT
    )
    conn.write_frame(MessageFrame(env=_envelope(identity, conn.remote.peer_id, body, 1)))
    await conn.close()
    return identity


async def spam(
    target: Node, count: int, *, bodies: tuple[bytes, ...] = (b"buy now",)
) -> list[bytes]:
    """``count`` fresh identities, one after another, each open a request at ``target``.

    Each connects, sends ``bodies``, waits until ``target`` stored its first message
    (so the order of the requests is known) and leaves. Returns their ids, oldest first.
    """
    events = target.subscribe()
    ids = []
    try:
        for n in range(count):
            identity = Identity.generate()
            conn = await connect(
                "127.0.0.1",
                target.port,
                LocalHello(identity=identity, name=f"spam{n}"),
                expected_peer=target.me,
                deadline=WAIT,
            )
            for seq, body in enumerate(bodies, start=1):
                conn.write_frame(MessageFrame(env=_envelope(identity, target.me, body, seq)))
            await wait_for(events, _stored_from(identity.peer_id))
            await conn.close()
            ids.append(identity.peer_id)
    finally:
        events.close()
    return ids


async def open_requests(node: Node) -> set[bytes]:
    return {p.peer_id for p in await node.list_peers() if p.state == "request"}


async def test_a_newcomer_gets_in_past_a_full_list_of_spam_requests() -> None:
    bob = make_node("bob")  # the default limits: 100 open requests
    carol = make_node("carol")
    await bob.start()
    await carol.start()
    try:
        spammers = await spam(bob, bob.config.max_open_requests)
        assert await open_requests(bob) == set(spammers)
        events, notices = bob.subscribe(), bob.subscribe()
        await connected_pair(carol, bob)
        hello = await carol.send_text(bob.me, "hi Bob, it's Carol from the 3rd floor")
        stored = await wait_for(events, _stored_from(carol.me))
        assert isinstance(stored, MessageAdded)
        assert stored.message.id == hello.id
        held = await wait_for(notices, lambda e: isinstance(e, RequestsHeldBack))
        assert held == RequestsHeldBack(requests=1, messages=0)
        # Bounded: the quietest request made way, and what it wrote is gone from disk.
        assert await open_requests(bob) == {*spammers[1:], carol.me}
        assert await bob.history(direct_room_id(spammers[0], bob.me)) == []
        assert bob.requests_held_back.requests == 1
    finally:
        await carol.stop()
        await bob.stop()


async def test_a_flood_of_fresh_identities_keeps_the_newest_and_counts_the_rest() -> None:
    bob = make_node("bob", max_open_requests=5)
    await bob.start()
    try:
        events = bob.subscribe()
        spammers = await spam(bob, 22)
        assert await open_requests(bob) == set(spammers[-5:])
        for gone in spammers[:-5]:
            assert await bob.history(direct_room_id(gone, bob.me)) == []
        held = await wait_for(
            events, lambda e: isinstance(e, RequestsHeldBack) and e.requests == 17
        )
        assert held == RequestsHeldBack(requests=17, messages=0)
        assert bob.requests_held_back.requests == 17
    finally:
        await bob.stop()


async def test_messages_past_a_requests_limits_are_counted_not_silently_dropped() -> None:
    bob = make_node("bob", max_messages_per_request=3)
    await bob.start()
    try:
        events = bob.subscribe()
        bodies = (b"1", b"2", b"x" * 5000, b"3", b"4", b"5")
        (spammer,) = await spam(bob, 1, bodies=bodies)
        held = await wait_for(events, lambda e: isinstance(e, RequestsHeldBack) and e.messages == 3)
        assert held == RequestsHeldBack(requests=0, messages=3)
        kept = await bob.history(direct_room_id(spammer, bob.me))
        assert [m.body for m in kept] == [b"1", b"2", b"3"]
    finally:
        await bob.stop()


async def test_clearing_all_requests_removes_them_and_resets_the_count() -> None:
    bob = make_node("bob", max_open_requests=3)
    await bob.start()
    try:
        spammers = await spam(bob, 4)
        assert bob.requests_held_back.requests == 1
        events = bob.subscribe()
        api = NodeApi(bob)
        listed = await api.call("requests")
        assert listed["held_back"] == {"requests": 1, "messages": 0}
        assert len(listed["open"]) == 3
        result = await api.call("clear_requests")
        assert result == {"cleared": 3, "held_back": {"requests": 0, "messages": 0}}
        await wait_for(events, lambda e: e == RequestsHeldBack(0, 0))
        assert await open_requests(bob) == set()
        for peer in spammers:
            assert await bob.history(direct_room_id(peer, bob.me)) == []
        # Cleared is not blocked: someone who writes again opens a new request.
        (again,) = await spam(bob, 1)
        assert await open_requests(bob) == {again}
    finally:
        await bob.stop()


async def test_the_held_back_count_and_the_request_order_survive_a_restart() -> None:
    bob = make_node("bob", max_open_requests=2)
    await bob.start()
    try:
        _first, second, third = await spam(bob, 3)
        assert await open_requests(bob) == {second, third}
        await bob.stop()
        await bob.start()
        assert bob.requests_held_back.requests == 1
        # The quietest request is still the first to make way.
        (fourth,) = await spam(bob, 1)
        assert await open_requests(bob) == {third, fourth}
        assert bob.requests_held_back.requests == 2
    finally:
        await bob.stop()


async def test_the_app_shows_the_held_back_count_and_clears_requests() -> None:
    from p2pchat.ui.screens.confirm import ConfirmScreen
    from tests.ui.helpers import SIZE, app_for, screen_text, until

    alice = make_node("alice", max_open_requests=2)
    await alice.start()
    try:
        app = app_for(alice)
        async with app.run_test(size=SIZE) as pilot:
            await spam(alice, 3)
            await until(pilot, lambda: "+1 held back" in screen_text(app))
            clear = next(c for c in app.palette_commands() if c[0] == "Clear all contact requests")
            clear[2]()
            await until(pilot, lambda: isinstance(app.screen, ConfirmScreen))
            await pilot.press("enter")
            await until(pilot, lambda: "CONTACT REQUESTS" not in screen_text(app))
            assert await open_requests(alice) == set()
            assert alice.requests_held_back.requests == 0
    finally:
        await alice.stop()


async def test_the_cli_shows_held_back_requests_and_clears_them(p2pchat_home: Path) -> None:
    port = free_port()
    bob = Serve("bob", p2pchat_home, "--port", str(port), "--no-announce")
    try:
        bob.wait_for("listening on port")
        for n in range(101):  # one more than the open requests kept
            await send_request(port, n=n)
            if n < 100:
                # Each one stored before the next dials: on a loaded machine bob may
                # still hold earlier links, and over the cap on strangers' links a new
                # one is turned away before it could count (that cap is another test's).
                bob.wait_for(f"message from spam{n}: ")
        line = bob.wait_for("were held back")
        assert "1 request(s)" in line
        assert "p2pchat --profile bob clear-requests" in line
        listed = cli("--profile", "bob", "requests", home=p2pchat_home)
        assert listed.returncode == 0, listed.stderr
        assert "1 contact request(s) made way for newer ones" in listed.stdout
        assert len([x for x in listed.stdout.splitlines() if x.startswith("spam")]) == 100
        cleared = cli("--profile", "bob", "clear-requests", home=p2pchat_home)
        assert cleared.returncode == 0, cleared.stderr
        assert "removed 100 contact request(s)" in cleared.stdout
        bob.wait_for("contact requests cleared")
        after = cli("--profile", "bob", "requests", home=p2pchat_home)
        assert "no open contact requests" in after.stdout
        assert "held back" not in after.stdout
    finally:
        bob.stop()


async def test_a_request_sent_again_is_not_counted_again() -> None:
    bob = make_node("bob", max_messages_per_request=2)
    alice = make_node("alice")
    await bob.start()
    await alice.start()
    try:
        await connected_pair(alice, bob)
        await alice.accept(bob.me)
        await bob.accept(alice.me)
        identity = Identity.generate()
        queued = [_envelope(identity, bob.me, f"m{n}".encode(), n) for n in (1, 2, 3, 4)]
        events = bob.subscribe()
        # A request is never acknowledged, so the sender's app sends its whole queue again
        # on every connection; only what is new may count.
        for attempt in range(2):
            conn = await connect(
                "127.0.0.1",
                bob.port,
                LocalHello(identity=identity, name="eager"),
                expected_peer=bob.me,
                deadline=WAIT,
            )
            for env in queued:
                conn.write_frame(MessageFrame(env=env))
            if attempt == 1:
                conn.write_frame(MessageFrame(env=_envelope(identity, bob.me, b"x" * 5000, 5)))
            await conn.close()
            await wait_for(
                events, lambda e: isinstance(e, PeerOffline) and e.peer_id == identity.peer_id
            )
        # Everything the stranger sent is queued ahead of a contact's message.
        fence = await alice.send_text(bob.me, "fence")
        await wait_for(events, lambda e: isinstance(e, MessageAdded) and e.message.id == fence.id)
        assert bob.requests_held_back == HeldBack(requests=0, messages=3)  # m3, m4, the big one
        kept = await bob.history(direct_room_id(identity.peer_id, bob.me))
        assert [m.body for m in kept] == [b"m1", b"m2"]
    finally:
        await alice.stop()
        await bob.stop()
