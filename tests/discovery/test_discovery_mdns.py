"""Real mDNS between Discovery instances in one process, on loopback only."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

import pytest
from zeroconf import ServiceInfo, ServiceStateChange
from zeroconf.asyncio import AsyncZeroconf

from p2pchat.discovery import SERVICE_TYPE, Discovery, PeerLost, PeerSeen, instance_name
from p2pchat.discovery.mdns import MAX_PENDING_RESOLVES
from tests.discovery.helpers import Collector, Node, random_peer_id

MakeNode = Callable[..., Node]


async def test_two_nodes_see_each_other_but_not_themselves(make_node: MakeNode) -> None:
    alice = make_node("alice", 40001)
    bob = make_node("bob", 40002)
    await alice.discovery.start()
    await bob.discovery.start()
    seen_bob = await alice.seen(bob)
    seen_alice = await bob.seen(alice)
    assert seen_bob == PeerSeen(bob.peer_id, "bob", (("127.0.0.1", 40002),), 1)
    assert seen_alice == PeerSeen(alice.peer_id, "alice", (("127.0.0.1", 40001),), 1)
    # Self-reports are checked for every node at fixture teardown as well.
    assert alice.events.about(alice.peer_id) == []


async def test_rename_propagates_as_new_peer_seen(make_node: MakeNode) -> None:
    alice = make_node("alice", 40011)
    bob = make_node("bob", 40012)
    await alice.discovery.start()
    await bob.discovery.start()
    await alice.seen(bob)
    await bob.discovery.set_name("bobby 🎉")
    renamed = await alice.events.wait_for(
        lambda e: isinstance(e, PeerSeen) and e.peer_id == bob.peer_id and e.name == "bobby 🎉"
    )
    assert renamed.peer_id == bob.peer_id
    assert bob.discovery.name == "bobby 🎉"


async def test_stopping_a_node_yields_peer_lost(make_node: MakeNode) -> None:
    alice = make_node("alice", 40021)
    bob = make_node("bob", 40022)
    await alice.discovery.start()
    await bob.discovery.start()
    await alice.seen(bob)
    async with asyncio.timeout(5):
        await bob.discovery.stop()
    await alice.events.wait_for(lambda e: e == PeerLost(bob.peer_id), within=5)
    await bob.discovery.stop()  # idempotent


async def test_hidden_node_sees_others_but_is_not_seen(make_node: MakeNode) -> None:
    hidden = make_node("lurker", 40031, announce=False)
    visible = make_node("visible", 40032)
    await hidden.discovery.start()
    await visible.discovery.start()
    await hidden.seen(visible)
    # Positive control: a node announced after the hidden one is seen by `visible`, so its
    # browser has been answering queries all along - yet it never heard of `hidden`.
    late = make_node("late", 40033)
    await late.discovery.start()
    await visible.seen(late)
    assert visible.events.about(hidden.peer_id) == []
    assert late.events.about(hidden.peer_id) == []


def _raw_info(label: str, port: int, properties: dict[bytes, bytes], **kw: object) -> ServiceInfo:
    return ServiceInfo(
        SERVICE_TYPE,
        f"{label}.{SERVICE_TYPE}",
        port=port,
        properties=properties,
        server=f"raw-{label}.local.",
        parsed_addresses=kw.pop("addresses", ["127.0.0.1"]),  # type: ignore[arg-type]
    )


def _txt(peer_id: str, **overrides: bytes) -> dict[bytes, bytes]:
    props = {b"id": peer_id.encode(), b"name": b"x", b"v": b"1"}
    props.update({k.encode(): v for k, v in overrides.items()})
    return props


async def test_malformed_records_are_ignored(
    make_node: MakeNode, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="p2pchat.discovery")
    ids = [random_peer_id() for _ in range(6)]
    bad = [
        _raw_info("noid", 4000, {b"name": b"x", b"v": b"1"}),
        _raw_info("shortid", 4000, _txt("abc")),
        _raw_info("wrongname", 4000, _txt(ids[0])),
        _raw_info(ids[1][:16], 0, _txt(ids[1])),
        _raw_info(ids[2][:16], 4000, _txt(ids[2], name=b"\xff\xfe")),
        _raw_info(ids[3][:16], 4000, _txt(ids[3], name=b"y" * 64)),
        _raw_info(ids[4][:16], 4000, _txt(ids[4], v=b"x")),
        _raw_info(
            ids[5][:16],
            4000,
            _txt(ids[5]),
            addresses=[f"127.0.0.{i}" for i in range(1, 18)],
        ),
    ]
    good_id = random_peer_id()
    raw = AsyncZeroconf(interfaces=["127.0.0.1"])
    try:
        registered = await asyncio.gather(*(raw.async_register_service(i) for i in bad))
        await asyncio.gather(*registered)
        observer = make_node("observer", 40041)
        await observer.discovery.start()
        # A well-formed raw record announced later by the same responder: positive control.
        good = _raw_info(good_id[:16], 4001, _txt(good_id, name=b"ok", v=b"2"))
        await (await raw.async_register_service(good))
        event = await observer.events.wait_for(lambda e: e.peer_id == good_id)
        assert event == PeerSeen(good_id, "ok", (("127.0.0.1", 4001),), 2)
        # Other p2pchat instances on this host (other test runs) may show up too; only ours count.
        # The 17-address record can arrive split over packets and look valid until the rest
        # lands, so what matters is that none of the bad ones is *currently* reported as seen.
        for bad_id in ids:
            about = observer.events.about(bad_id)
            assert not about or about[-1] == PeerLost(bad_id), about
        assert not [e for e in observer.events.events if e.peer_id in ids[:5]]
        ignored = {r.args[0] for r in caplog.records if r.msg.startswith("ignoring")}  # type: ignore[index]
        assert {info.name for info in bad} <= ignored
    finally:
        async with asyncio.timeout(10):
            await raw.async_close()


async def test_event_handler_exception_does_not_break_discovery(make_node: MakeNode) -> None:
    calls = Collector()

    def explode(event: PeerSeen | PeerLost) -> None:
        calls(event)
        raise RuntimeError("handler bug")

    fragile = Discovery(
        peer_id=random_peer_id(),
        name="fragile",
        port=40051,
        interfaces=["127.0.0.1"],
        on_event=explode,
    )
    other = make_node("other", 40052)
    try:
        await fragile.start()
        await other.discovery.start()
        await calls.wait_for(lambda e: e.peer_id == other.peer_id)
        await other.discovery.set_name("other2")
        await calls.wait_for(lambda e: isinstance(e, PeerSeen) and e.name == "other2")  # unique
    finally:
        await fragile.stop()


def test_unknown_interface_name_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match=r"unknown network interface 'nope0'.*available:.*lo"):
        Discovery(
            peer_id=random_peer_id(),
            name="x",
            port=1,
            interfaces=["nope0"],
            on_event=lambda e: None,
        )


def test_interface_name_resolves_to_its_addresses() -> None:
    disc = Discovery(
        peer_id=random_peer_id(), name="x", port=1, interfaces=["lo"], on_event=lambda e: None
    )
    assert disc._addresses == ["127.0.0.1"]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"peer_id": "short"}, "peer id"),
        ({"port": 0}, "port"),
        ({"port": 70000}, "port"),
        ({"name": "\x1b\x07"}, "display name"),
    ],
)
def test_constructor_rejects_bad_arguments(kwargs: dict[str, object], message: str) -> None:
    args: dict[str, object] = {
        "peer_id": random_peer_id(),
        "name": "x",
        "port": 1,
        "interfaces": ["127.0.0.1"],
        "on_event": lambda e: None,
    }
    args.update(kwargs)
    with pytest.raises(ValueError, match=message):
        Discovery(**args)  # type: ignore[arg-type]


async def test_stop_without_start_and_twice() -> None:
    disc = Discovery(
        peer_id=random_peer_id(),
        name="x",
        port=1,
        interfaces=["127.0.0.1"],
        on_event=lambda e: None,
    )
    async with asyncio.timeout(2):
        await disc.stop()
        await disc.stop()


def test_instance_name_comes_from_the_id() -> None:
    pid = random_peer_id()
    assert instance_name(pid) == f"{pid[:16]}._p2pchat._tcp.local."


async def test_flood_of_announcements_is_bounded_and_stop_is_prompt() -> None:
    disc = Discovery(
        peer_id=random_peer_id(),
        name="x",
        port=1,
        announce=False,
        interfaces=["127.0.0.1"],
        on_event=lambda e: None,
    )
    await disc.start()
    try:
        zc = disc._aiozc.zeroconf  # type: ignore[union-attr]
        # Names nobody answers for: each would wait RESOLVE_TIMEOUT_MS for a reply.
        for i in range(MAX_PENDING_RESOLVES * 3):
            disc._on_state_change(
                zeroconf=zc,
                service_type=SERVICE_TYPE,
                name=f"ghost{i}.{SERVICE_TYPE}",
                state_change=ServiceStateChange.Added,
            )
        assert len(disc._resolving) == MAX_PENDING_RESOLVES
    finally:
        async with asyncio.timeout(5):
            await disc.stop()
    assert disc._resolving == {}


async def test_set_name_on_hidden_node_just_records_it() -> None:
    disc = Discovery(
        peer_id=random_peer_id(),
        name="x",
        port=1,
        announce=False,
        interfaces=["127.0.0.1"],
        on_event=lambda e: None,
    )
    await disc.start()
    try:
        await disc.set_name("y" * 100)
        assert disc.name == "y" * 63
    finally:
        await disc.stop()
