"""Start-up failures, first run, the control socket and a clean quit.

The app owns its node here (as ``p2pchat`` does): it starts it, shows failures as a
screen with words instead of a traceback, and stops it on ctrl+q.
"""

from __future__ import annotations

import socket
from dataclasses import replace

from p2pchat.control.client import ControlClient
from p2pchat.node import MessageStatus, Node
from p2pchat.profile import open_profile
from p2pchat.ui.screens.prompt import PromptScreen
from p2pchat.ui.screens.startup_error import StartupErrorScreen
from tests.nodes import TEST_CONFIG, make_node
from tests.ui.helpers import SIZE, app_for, screen_text, until


async def test_port_in_use_is_explained_not_a_traceback() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        node = make_node("alice", port=port)
        app = app_for(node, owns_node=True)
        async with app.run_test(size=SIZE) as pilot:
            await until(pilot, lambda: isinstance(app.screen, StartupErrorScreen))
            await pilot.pause()
            text = screen_text(app)
            assert f"Port {port} is already in use" in text
            assert "Traceback" not in text
            await pilot.press("q")
        assert app.return_code == 1


async def test_profile_open_elsewhere_is_explained() -> None:
    first = make_node("alice")
    await first.start()
    try:
        second = Node(open_profile("alice"), replace(TEST_CONFIG))
        app = app_for(second, owns_node=True)
        async with app.run_test(size=SIZE) as pilot:
            await until(pilot, lambda: isinstance(app.screen, StartupErrorScreen))
            await pilot.pause()
            assert "already open in another p2pchat" in screen_text(app)
            await pilot.press("ctrl+q")
        assert app.return_code == 1
    finally:
        await first.stop()


async def test_quit_stops_the_node_and_keeps_what_was_written() -> None:
    bob = make_node("bob")
    await bob.start()
    bob_id = bob.me
    await bob.stop()  # bob is away: alice's message waits in her outbox
    alice = make_node("alice")
    app = app_for(alice, owns_node=True, serve_control=True)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: app.chat.node_ready)
        # The control socket answers while the app runs (like `p2pchat serve`).
        async with await ControlClient.connect(alice.profile.control_path) as client:
            info = await client.call("info")
        assert info["id"] == alice.peer_id_text
        room = await alice.open_direct_room(bob_id)
        await app.chat.open_room(room)
        await pilot.press(*"see you later", "enter")
        await until(pilot, lambda: "see you later" in screen_text(app))
        await pilot.press("ctrl+q")
    assert not alice.profile.control_path.exists()
    again = make_node("alice")  # the store lock was released
    await again.start()
    try:
        history = await again.history(room)
        assert [m.body for m in history] == [b"see you later"]
        assert history[0].status == MessageStatus.QUEUED
    finally:
        await again.stop()


async def test_first_run_asks_for_a_name() -> None:
    profile = open_profile("newcomer")
    assert not profile.has_display_name
    node = Node(profile, replace(TEST_CONFIG))
    app = app_for(node, owns_node=True)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: isinstance(app.screen, PromptScreen))
        await pilot.pause()
        assert "What should people on your network call you?" in screen_text(app)
        await pilot.press("escape")  # cannot be skipped
        assert isinstance(app.screen, PromptScreen)
        await pilot.press(*"Zoë", "enter")
        await until(pilot, lambda: profile.has_display_name)
        assert node.profile.display_name == "Zoë"
        await pilot.press("ctrl+q")
