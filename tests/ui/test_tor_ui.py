"""Tor in the app: the invite QR code decodes to the code, the palette adds one, and a
contact linked through tor is shown as such."""

from __future__ import annotations

from pathlib import Path

import pytest
from textual.widgets import Button, Checkbox, Input

from p2pchat.node import PeerInfo
from p2pchat.node.service import Node
from p2pchat.ui.screens.invite import InviteScreen, invite_qr_lines
from p2pchat.ui.screens.prompt import PromptScreen
from p2pchat.ui.screens.settings import SettingsScreen
from p2pchat.ui.widgets.header import header_text
from p2pchat.wire.invite import decode_invite
from tests.nodes import make_node
from tests.ui.helpers import SIZE, app_for, screen_text, until
from tests.ui.test_qr import _picture

zxingcpp = pytest.importorskip("zxingcpp")


def test_drawn_invite_qr_decodes_to_the_code() -> None:
    node = make_node("alice")
    code = node.onions.invite_code()
    results = zxingcpp.read_barcodes(_picture(invite_qr_lines(code)))
    assert [r.text for r in results] == [code.upper()]
    assert decode_invite(results[0].text).peer_id == node.me
    assert len(invite_qr_lines(code)) <= 25  # fits the dialog on a 40-row terminal


async def test_palette_shows_my_code_and_adds_theirs() -> None:
    alice: Node = make_node("alice")
    bob_code = make_node("bob").onions.invite_code()
    bob_id = decode_invite(bob_code).peer_id
    await alice.start()
    try:
        app = app_for(alice)
        async with app.run_test(size=SIZE) as pilot:
            await pilot.press("ctrl+p", *"Show my invite code")
            await pilot.pause(0.3)
            await pilot.press("enter")
            await until(pilot, lambda: isinstance(app.screen, InviteScreen))
            # The code wraps in the dialog: compare without line breaks and borders.
            shown = "".join(ch for ch in screen_text(app) if ch.isalnum() or ch in ":.")
            assert alice.onions.invite_code() in shown
            assert "Tor is off" in screen_text(app)
            await pilot.press("escape")
            await pilot.press("ctrl+p", *"Add a contact by invite")
            await pilot.pause(0.3)
            await pilot.press("enter")
            await until(pilot, lambda: isinstance(app.screen, PromptScreen))
            app.screen.query_one(Input).value = bob_code  # pasted, as people would
            await pilot.press("enter")
            await until(pilot, lambda: alice.is_contact(bob_id))
    finally:
        await alice.stop()


@pytest.mark.parametrize(
    ("address", "through_tor"),
    [("x" * 56 + ".onion", True), ("tor", True), ("192.168.1.20:7100", False), (None, False)],
)
def test_header_says_when_a_contact_is_linked_through_tor(
    address: str | None, through_tor: bool
) -> None:
    info = PeerInfo(b"\1" * 32, "bob", "contact", False, True, address, None)
    text = header_text("bob", info, typing=False, now_ms=0).plain
    assert ("through Tor" in text) is through_tor
    assert "online" in text


async def test_settings_switch_turns_tor_on_and_is_remembered(
    tmp_path: Path,
) -> None:
    # No real tor: nothing may reach for the public Tor network.
    alice: Node = make_node("alice", tor_binary=str(tmp_path / "no-tor"))
    await alice.start()
    try:
        app = app_for(alice)
        async with app.run_test(size=SIZE) as pilot:
            await pilot.press("f2")
            await until(pilot, lambda: isinstance(app.screen, SettingsScreen))
            box = app.screen.query_one("#tor", Checkbox)
            assert box.value is False
            box.value = True
            app.screen.query_one("#save", Button).press()
            await until(pilot, lambda: alice.onions.enabled)
            await until(pilot, lambda: "Tor" in screen_text(app).split("\n")[0])
        assert await alice.onions.remembered()
    finally:
        await alice.stop()
