"""The control socket used directly, as a script or bot would (docs/control.md)."""

from __future__ import annotations

import asyncio
import json
import stat

import pytest

from p2pchat.control.api import ApiError, NodeApi
from p2pchat.control.client import ControlClient
from p2pchat.control.server import ControlServer
from p2pchat.node import MessageAdded
from tests.nodes import WAIT, connected_pair, make_node, wait_for


async def test_echo_bot_over_the_control_socket() -> None:
    alice, bot = make_node("alice"), make_node("bot")
    await alice.start()
    await bot.start()
    server = ControlServer(NodeApi(bot), bot.profile.control_path)
    await server.start()
    try:
        assert stat.S_IMODE(bot.profile.control_path.stat().st_mode) == 0o600
        await connected_pair(alice, bot)
        await alice.accept(bot.me)

        subscribed = asyncio.Event()

        async def echo_once() -> None:
            events_r, events_w = await asyncio.open_unix_connection(str(bot.profile.control_path))
            calls = await ControlClient.connect(bot.profile.control_path)
            events_w.write(b'{"id": 1, "method": "subscribe"}\n')
            assert json.loads(await events_r.readline())["result"] == "subscribed"
            subscribed.set()
            while line := await events_r.readline():
                event = json.loads(line)["event"]
                if event["type"] == "message" and event["incoming"]:
                    await calls.call("accept", {"peer": event["author"]})
                    await calls.call(
                        "send", {"peer": event["author"], "text": "echo: " + event["text"]}
                    )
                    break
            events_w.close()
            await calls.close()

        bot_task = asyncio.create_task(echo_once())
        events = alice.subscribe()
        async with asyncio.timeout(WAIT):  # the bot listens before alice writes
            await subscribed.wait()
        await alice.send_text(bot.me, "ping 🏓")
        reply = await wait_for(events, lambda e: isinstance(e, MessageAdded) and e.incoming)
        assert reply.message.body.decode() == "echo: ping 🏓"
        await bot_task
    finally:
        await server.stop()
        await alice.stop()
        await bot.stop()
    assert not bot.profile.control_path.exists()


async def test_bad_requests_get_clear_errors() -> None:
    node = make_node("solo")
    await node.start()
    server = ControlServer(NodeApi(node), node.profile.control_path)
    await server.start()
    try:
        reader, writer = await asyncio.open_unix_connection(str(node.profile.control_path))
        for line, expected in [
            (b"not json\n", "not JSON"),
            (b"[1, 2]\n", "expected a JSON object"),
            (b'{"id": 3, "method": "explode"}\n', "unknown method"),
            (
                b'{"id": 4, "method": "send", "params": {"peer": "x", "text": "hi"}}\n',
                "no peer called",
            ),
            (b'{"id": 8, "method": "send", "params": {"peer": "x"}}\n', "parameter 'text'"),
            (
                b'{"id": 5, "method": "send", "params": {"peer": 7, "text": "hi"}}\n',
                "parameter 'peer'",
            ),
            (b'{"id": 6, "method": "add", "params": {"address": "nowhere"}}\n', "HOST:PORT"),
        ]:
            writer.write(line)
            answer = json.loads(await reader.readline())
            assert expected in answer["error"]["message"]
        # Still serving after all that.
        writer.write(b'{"id": 7, "method": "info"}\n')
        info = json.loads(await reader.readline())["result"]
        assert info["name"] == "solo"
        writer.close()
    finally:
        await server.stop()
        await node.stop()


async def test_settings_over_the_control_socket_include_the_download_folder() -> None:
    node = make_node("solo")
    await node.start()
    server = ControlServer(NodeApi(node), node.profile.control_path)
    await server.start()
    try:
        async with await ControlClient.connect(node.profile.control_path) as client:
            got = await client.call("settings", {"key": "download_dir", "value": "/tmp/inbox"})
            assert got["download_dir"] == "/tmp/inbox"
            assert node.text_setting("download_dir") == "/tmp/inbox"
            got = await client.call("settings", {"key": "read_receipts", "value": False})
            assert got["read_receipts"] is False
            for params, expected in [
                ({"key": "download_dir", "value": True}, "takes text"),
                ({"key": "download_dir", "value": "inbox"}, "absolute path"),
                ({"key": "read_receipts", "value": "no"}, "takes true or false"),
                ({"key": "colour", "value": "red"}, "no setting 'colour'"),
            ]:
                with pytest.raises(ApiError, match=expected):
                    await client.call("settings", params)
    finally:
        await server.stop()
        await node.stop()
