"""Hole 3: impersonation by display name.

A stranger takes a contact's name, or a contact renames itself to look like another
contact, with look-alike characters that a plain comparison misses: a Cyrillic A, an
invisible combining grapheme joiner, a Hangul filler, a braille blank. On the code before
this fix the look-alikes raised no warning, a contact's rename raised none at all, and
old history lines changed author names with the rename ("Alice invited Alice").
"""

from __future__ import annotations

import unicodedata
from collections.abc import Callable

import pytest

from p2pchat.cli.chat_cmds import _print_history
from p2pchat.cli.output import describe_event
from p2pchat.control.api import NodeApi
from p2pchat.control.serialize import event_json
from p2pchat.identity import short_id
from p2pchat.node import (
    MessageAdded,
    Node,
    PeerLookupError,
    PeerOnline,
    PeerUpdated,
    SecurityWarning,
)
from p2pchat.node.events import Event
from p2pchat.node.names import name_keys, skeleton, visible
from p2pchat.wire import Profile as ProfileFrame
from tests.adversary.hostile import Hostile, hostile_peer
from tests.nodes import connected_pair, make_node, wait_for

LOOK_ALIKES = {
    "plain": "Alice",
    "cyrillic": "\u0410lice",
    "grapheme-joiner": "Alice\u034f",
    "hangul-filler": "Alice\u3164",
    "braille-blank": "Alice\u2800",
}
NAMES = pytest.mark.parametrize("name", list(LOOK_ALIKES.values()), ids=list(LOOK_ALIKES))


async def befriend(a: Node, b: Node) -> None:
    await connected_pair(a, b)
    await a.accept(b.me)
    await b.accept(a.me)


async def start(*names: str) -> list[Node]:
    nodes = [make_node(n) for n in names]
    for node in nodes:
        await node.start()
    return nodes


@NAMES
async def test_a_stranger_with_a_look_alike_name_is_flagged(name: str) -> None:
    alice, bob = await start("alice", "bob")
    mallory = make_node("mallory")
    assert mallory.profile.set_display_name(name) == name  # sent exactly as written
    await mallory.start()
    try:
        await befriend(alice, bob)
        events = bob.subscribe()
        await connected_pair(mallory, bob)
        warning = await wait_for(events, lambda e: isinstance(e, SecurityWarning))
        assert isinstance(warning, SecurityWarning)
        assert warning.peer_id == mallory.me
        assert "impersonating" in warning.text
        assert short_id(alice.me) in warning.text
        # Both names carry their short ids wherever bob sees them.
        assert bob.peer_name(mallory.me) == f"{name} ({short_id(mallory.me)})"
        assert bob.peer_name(alice.me) == f"alice ({short_id(alice.me)})"
        # `serve` prints who came online with the short id too.
        online = event_json(bob, PeerOnline(mallory.me, name, "127.0.0.1"))
        assert f"({short_id(mallory.me)}) is online" in describe_event(online)[0]
        # Naming the contact finds her, never the look-alike: a name a stranger picks
        # cannot win over a contact (node/peer_lookup.py).
        assert await bob.resolve_peer("alice") == alice.me
        # To block, both are candidates: no silent pick of the look-alike (or of her).
        with pytest.raises(PeerLookupError) as lookup:
            await bob.resolve_peer("alice", trusted_first=False)
        assert {c.peer_id for c in lookup.value.candidates} == {alice.me, mallory.me}
        assert await bob.resolve_peer(bob.peer_name(mallory.me)) == mallory.me
    finally:
        for node in (mallory, alice, bob):
            await node.stop()


@NAMES
async def test_a_contact_renaming_itself_like_another_contact_is_flagged(
    name: str, capsys: pytest.CaptureFixture[str]
) -> None:
    alice, bob = await start("alice", "bob")
    try:
        await befriend(alice, bob)
        carol = await hostile_peer("carol", bob)
        await bob.accept(carol.me)
        await carol.node.accept(bob.me)
        events = bob.subscribe()
        said = await carol.node.send_text(bob.me, "meet me at 5")
        await wait_for(events, lambda e: isinstance(e, MessageAdded) and e.message.id == said.id)
        assert bob.peer_name(carol.me) == "carol"

        carol.send(bob.me, ProfileFrame(name=name))
        warning = await wait_for(events, lambda e: isinstance(e, SecurityWarning))
        assert isinstance(warning, SecurityWarning)
        assert warning.peer_id == carol.me
        assert "impersonating" in warning.text
        assert "'carol'" in warning.text  # what it was called until now
        await wait_for(events, lambda e: isinstance(e, PeerUpdated) and e.peer_id == carol.me)

        # History written before the rename still says who wrote it.
        history = await NodeApi(bob).call("history", {"peer": short_id(carol.me)})
        (line,) = history["messages"]
        assert line["author_name"] == f"{name} ({short_id(carol.me)})"
        _print_history(history)
        printed = capsys.readouterr().out
        assert f"({short_id(carol.me)}): meet me at 5" in printed
        assert bob.peer_name(alice.me) == f"alice ({short_id(alice.me)})"
        await carol.node.stop()
    finally:
        await alice.stop()
        await bob.stop()


async def test_a_name_that_merely_resembles_is_not_flagged() -> None:
    alice, bob = await start("alice", "bob")
    alicia = await _stranger(bob, "Alicia")
    try:
        await befriend(alice, bob)
        events = bob.subscribe()
        await connected_pair(alicia.node, bob)
        alicia.send_envelopes(bob.me, alicia.direct(bob.me, body=b"hi"))
        first = await wait_for(events, lambda e: isinstance(e, SecurityWarning | MessageAdded))
        assert isinstance(first, MessageAdded)  # no warning came before it
        assert bob.peer_name(alicia.me) == "Alicia"
        assert bob.peer_name(alice.me) == "alice"
    finally:
        for node in (alicia.node, alice, bob):
            await node.stop()


def _added(message_id: bytes) -> Callable[[Event], bool]:
    return lambda e: isinstance(e, MessageAdded) and e.message.id == message_id


async def _stranger(target: Node, name: str) -> Hostile:
    node = make_node("stranger")
    node.profile.set_display_name(name)
    await node.start()
    return Hostile(node)


def test_look_alike_keys_cover_the_reported_names() -> None:
    keys = name_keys("Alice")
    for name in LOOK_ALIKES.values():
        assert name_keys(name) & keys, repr(name)
    assert skeleton("\u0440\u0430\u0443\u0440\u0430l") == skeleton("paypal")  # Cyrillic
    assert not name_keys("Alicia") & keys
    assert not name_keys("Bob") & keys


# Default_Ignorable_Code_Point (Unicode 15 DerivedCoreProperties.txt): every one is
# removed before comparing, as is anything that draws as a blank.
DEFAULT_IGNORABLE = [
    (0x00AD, 0x00AD),
    (0x034F, 0x034F),
    (0x061C, 0x061C),
    (0x115F, 0x1160),
    (0x17B4, 0x17B5),
    (0x180B, 0x180F),
    (0x200B, 0x200F),
    (0x202A, 0x202E),
    (0x2060, 0x206F),
    (0x3164, 0x3164),
    (0xFE00, 0xFE0F),
    (0xFEFF, 0xFEFF),
    (0xFFA0, 0xFFA0),
    (0xFFF0, 0xFFF8),
    (0x1BCA0, 0x1BCA3),
    (0x1D173, 0x1D17A),
    (0xE0000, 0xE0FFF),
]


def test_every_default_ignorable_and_blank_character_is_removed() -> None:
    for first, last in DEFAULT_IGNORABLE:
        for code in range(first, last + 1):
            assert visible(f"a{chr(code)}b") == "ab", hex(code)
    for blank in ("\u2800", "\u3000", "\u00a0", "\u2028", " "):
        assert visible(f"a{blank}b") == "ab", hex(ord(blank))
    # Visible look-alikes are the skeleton's job, not removed as invisible.
    assert visible("\u0430") == "\u0430"
    assert unicodedata.category("\u3164") == "Lo"  # why a category test alone is not enough


async def test_the_app_shows_short_ids_beside_look_alikes_after_a_rename() -> None:
    from tests.ui.helpers import SIZE, app_for, screen_text, until

    alice, bob = await start("alice", "bob")
    try:
        await befriend(alice, bob)
        carol = await hostile_peer("carol", bob)
        await bob.accept(carol.me)
        await carol.node.accept(bob.me)
        for peer in (alice, carol.node):
            events = bob.subscribe()
            said = await peer.send_text(bob.me, "hi")
            await wait_for(events, _added(said.id))
        app = app_for(bob)
        async with app.run_test(size=SIZE) as pilot:
            await until(pilot, lambda: "carol" in screen_text(app))
            carol.send(bob.me, ProfileFrame(name="\u0410lice"))
            await until(pilot, lambda: f"\u0410lice ({short_id(carol.me)})" in screen_text(app))
            assert f"alice ({short_id(alice.me)})" in screen_text(app)
            assert "SECURITY WARNING" in screen_text(app)
        await carol.node.stop()
    finally:
        await alice.stop()
        await bob.stop()
