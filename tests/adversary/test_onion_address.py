"""Attacks on the onion-address frame (chats over Tor, docs/protocol.md "onion").

A node dials a contact's onion address through tor, so whoever could plant an address
for a contact could make us dial them instead (the Noise handshake would still refuse
a wrong identity, but the contact would become unreachable). The frame is signed by its
sender's identity key over the sender's own id, and only a contact's is stored.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import msgpack
import pytest

from p2pchat.identity import Identity
from p2pchat.node import MessageAdded, Node, PeerOffline
from p2pchat.node import onion as onion_module
from p2pchat.node.tor import ONION_PORT, onion_address_of, onion_seed
from p2pchat.store import now_ms
from p2pchat.store.onions import get_onion
from p2pchat.wire import OnionAddress
from p2pchat.wire.onion import onion_signing_bytes
from tests.adversary.hostile import Hostile, hostile_peer
from tests.nodes import make_node, wait_for


def signed_onion(identity: Identity, *, ts: int | None = None, addr: str = "") -> OnionAddress:
    """An onion frame as ``identity``'s node would sign it."""
    addr = addr or onion_address_of(onion_seed(identity))
    ts = now_ms() if ts is None else ts
    sig = identity.sign(onion_signing_bytes(identity.peer_id, addr, ONION_PORT, ts))
    return OnionAddress(addr=addr, port=ONION_PORT, ts=ts, sig=sig)


@pytest.fixture
async def pair() -> AsyncIterator[tuple[Node, Hostile]]:
    target = make_node("target")
    await target.start()
    hostile = await hostile_peer("mallory", target)
    try:
        yield target, hostile
    finally:
        await hostile.node.stop()
        await target.stop()


async def stored(node: Node, peer: bytes) -> object:
    return await node.db_run(lambda s: get_onion(s, peer))


async def settle(target: Node, hostile: Hostile) -> None:
    """Wait until the target handled what the hostile peer sent before: a link reads
    frames in order, so once a later message arrived, the frames before it were handled."""
    events = target.subscribe()
    try:
        sent = await hostile.node.send_text(target.me, "barrier")
        await wait_for(
            events, lambda e: isinstance(e, MessageAdded) and e.message.id == sent.id, 10
        )
    finally:
        events.close()


async def test_contact_relaying_someone_elses_signed_address_is_not_stored(
    pair: tuple[Node, Hostile],
) -> None:
    target, hostile = pair
    await target.accept(hostile.me)
    await hostile.node.accept(target.me)
    victim = Identity.generate()
    # Genuinely signed, but by another identity: it does not vouch for Mallory's address.
    hostile.send(target.me, signed_onion(victim))
    # Mallory's own address under a signature that is not Mallory's.
    mine = signed_onion(hostile.node.identity)
    hostile.send(
        target.me, OnionAddress(addr=mine.addr, port=mine.port, ts=mine.ts, sig=b"\0" * 64)
    )
    await settle(target, hostile)
    assert await stored(target, hostile.me) is None
    assert await stored(target, victim.peer_id) is None
    # A genuine one still works afterwards (the link survived, the frame is kept).
    hostile.send(target.me, mine)
    await settle(target, hostile)
    row = await stored(target, hostile.me)
    assert row is not None
    assert row.addr == mine.addr  # type: ignore[attr-defined]


async def test_replayed_older_address_does_not_replace_a_newer_one(
    pair: tuple[Node, Hostile],
) -> None:
    target, hostile = pair
    await target.accept(hostile.me)
    await hostile.node.accept(target.me)
    identity = hostile.node.identity
    old = signed_onion(identity, ts=1_000, addr=onion_address_of(b"\1" * 32))
    new = signed_onion(identity, ts=2_000)
    hostile.send(target.me, new, old)
    await settle(target, hostile)
    row = await stored(target, hostile.me)
    assert row is not None
    assert row.addr == new.addr  # type: ignore[attr-defined]


async def test_stranger_onion_address_is_never_stored_until_accepted(
    pair: tuple[Node, Hostile],
) -> None:
    target, hostile = pair
    frame = signed_onion(hostile.node.identity)
    hostile.send(target.me, frame)
    await settle(target, hostile)
    assert await stored(target, hostile.me) is None
    assert len(target.onions._held) == 1
    await target.accept(hostile.me)  # the person accepts: the held address is kept
    row = await stored(target, hostile.me)
    assert row is not None
    assert row.addr == frame.addr  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    "addr",
    [
        "a" * 5000,  # oversized
        "a" * 56,  # right length, wrong checksum
        onion_address_of(b"\2" * 32).upper(),  # not the lower-case alphabet
    ],
    ids=["oversized", "bad-checksum", "upper-case"],
)
async def test_malformed_onion_frame_closes_the_link_and_stores_nothing(
    pair: tuple[Node, Hostile], addr: str
) -> None:
    target, hostile = pair
    await target.accept(hostile.me)
    events = target.subscribe()
    raw = msgpack.packb(
        {"t": "onion", "addr": addr, "port": ONION_PORT, "ts": 1, "sig": b"\0" * 64},
        use_bin_type=True,
    )
    hostile.node.links.links[target.me].conn.write_encoded(raw)
    await wait_for(events, lambda e: isinstance(e, PeerOffline) and e.peer_id == hostile.me)
    assert await stored(target, hostile.me) is None


async def test_contact_flooding_new_addresses_costs_one_store_write(
    pair: tuple[Node, Hostile], monkeypatch: pytest.MonkeyPatch
) -> None:
    target, hostile = pair
    await target.accept(hostile.me)
    writes: list[object] = []
    real_put = onion_module.put_onion

    def counting_put(store: object, row: object) -> bool:
        writes.append(row)
        return real_put(store, row)  # type: ignore[arg-type]

    monkeypatch.setattr(onion_module, "put_onion", counting_put)
    identity = hostile.node.identity
    frames = [
        signed_onion(identity, ts=1_000 + i, addr=onion_address_of(bytes([i]) * 32))
        for i in range(200)
    ]
    hostile.send(target.me, *frames)
    await settle(target, hostile)
    assert len(writes) == 1
    row = await stored(target, hostile.me)
    assert row is not None
    assert row.addr == frames[0].addr  # type: ignore[attr-defined]
