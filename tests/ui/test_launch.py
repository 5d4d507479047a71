"""``p2pchat`` hands the app a Launch: its shell first, the node built in a thread.

What the first frame has imported is checked in a fresh process
(test_startup_imports.py). Here: keys pressed before the node exists, quitting while
it is being built, a build that fails, and that the app is then fully usable.
"""

from __future__ import annotations

import asyncio
import socket
import threading

from p2pchat.node import MessageAdded, Node
from p2pchat.paths import profile_dir
from p2pchat.ui.app import ChatApp
from p2pchat.ui.launch import Launch, LaunchError
from p2pchat.ui.notify import DesktopNotifier
from p2pchat.ui.screens.shell import OPENING, ShellScreen
from p2pchat.ui.screens.startup_error import StartupErrorScreen
from tests.nodes import make_node, wait_for
from tests.ui.helpers import SIZE, WAIT, befriend, open_chat_with, screen_text, until


def launching(name: str, gate: threading.Event, built: list[Node]) -> ChatApp:
    """An app that builds ``name``'s node itself, once ``gate`` is set."""

    def build() -> Node:  # in the app's worker thread, like p2pchat's
        assert gate.wait(WAIT)
        node = make_node(name)
        built.append(node)
        return node

    launch = Launch(profile_dir(name), build)
    return ChatApp(launch, serve_control=False, desktop=DesktopNotifier(enabled=False))


async def test_keys_before_the_node_exists_do_nothing_then_the_app_chats() -> None:
    bob = make_node("bob")
    await bob.start()
    gate, built = threading.Event(), list[Node]()
    app = launching("alice", gate, built)
    try:
        async with app.run_test(size=SIZE) as pilot:
            await pilot.pause()
            assert isinstance(app.screen, ShellScreen)
            assert OPENING in screen_text(app)
            # Help, search, the palette, settings, typing: nothing to act on yet.
            await pilot.press("f1", "ctrl+f", "ctrl+p", "f2", "ctrl+e", *"hi", "enter", "escape")
            await pilot.pause()
            assert isinstance(app.screen, ShellScreen)
            assert not built
            gate.set()
            await until(pilot, lambda: app.node_built and app.chat.node_ready)
            alice = built[0]
            assert app.screen is app.chat
            await befriend(alice, bob)
            bob_events = bob.subscribe()
            await bob.send_text(alice.me, "sent after start-up")
            await open_chat_with(pilot, app, bob.me)
            await until(pilot, lambda: "sent after start-up" in screen_text(app))
            await pilot.press(*"and a reply", "enter")
            got = await wait_for(bob_events, lambda e: isinstance(e, MessageAdded) and e.incoming)
            assert isinstance(got, MessageAdded)
            assert got.message.body == b"and a reply"
            await pilot.press("ctrl+q")
        assert app.return_code == 0
        again = make_node("alice")  # the app stopped its node: the store lock is free
        await again.start()
        await again.stop()
    finally:
        await bob.stop()


async def test_quitting_while_the_node_is_built_waits_and_never_starts_it() -> None:
    gate, built = threading.Event(), list[Node]()
    app = launching("alice", gate, built)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        quitting = asyncio.ensure_future(pilot.press("ctrl+q"))
        async with asyncio.timeout(WAIT):
            while not app.stopping:  # noqa: ASYNC110 - a flag of the app, no event to wait on
                await asyncio.sleep(0.01)
        assert not built
        gate.set()  # the build finishes after the person quit
        await quitting
    assert app.return_code == 0
    assert len(built) == 1
    assert built[0].started_at == 0.0  # never started, so nothing to close or lose
    again = make_node("alice")
    await again.start()
    await again.stop()


async def test_a_build_that_fails_is_explained_not_a_traceback() -> None:
    def build() -> Node:
        raise LaunchError("the key file of this profile is damaged")

    app = ChatApp(Launch(profile_dir("alice"), build), desktop=DesktopNotifier(enabled=False))
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: isinstance(app.screen, StartupErrorScreen))
        await pilot.pause()
        text = screen_text(app)
        assert "the key file of this profile is damaged" in text
        assert "Traceback" not in text
        await pilot.press("q")
    assert app.return_code == 1


async def test_a_port_in_use_after_the_build_is_explained() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        launch = Launch(profile_dir("alice"), lambda: make_node("alice", port=port))
        app = ChatApp(launch, serve_control=False, desktop=DesktopNotifier(enabled=False))
        async with app.run_test(size=SIZE) as pilot:
            await until(pilot, lambda: isinstance(app.screen, StartupErrorScreen))
            await pilot.pause()
            assert f"Port {port} is already in use" in screen_text(app)
            await pilot.press("ctrl+q")
        assert app.return_code == 1


async def test_quitting_at_once_leaves_nothing_open() -> None:
    """ctrl+q as soon as the shell shows: whatever stage the build or the start had
    reached, the app waits for it, stops what started and exits; the store is closed."""
    launch = Launch(profile_dir("alice"), lambda: make_node("alice"))
    app = ChatApp(launch, serve_control=False, desktop=DesktopNotifier(enabled=False))
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("ctrl+q")
    assert app.return_code == 0
    again = make_node("alice")
    await again.start()
    await again.stop()
