"""Inbound messages the store could not write are stored once it can again (issue 11).

A full disk is outside our control, so it is a test double (the store's insert raises
what SQLite raises then); a lock held by another program is real: a second SQLite
connection to the same file holding an exclusive transaction.
"""

from __future__ import annotations

import asyncio
import sys

import pytest

from p2pchat.control.api import ApiError, NodeApi
from p2pchat.control.client import ControlClient
from p2pchat.control.server import ControlServer
from p2pchat.identity import encode_peer_id
from p2pchat.node import MessageStatus, SecurityWarning
from p2pchat.store import Store, StoreIOError
from tests.node.groups_helpers import befriend, start_nodes
from tests.nodes import wait_for

RECOVERY = 5.0  # the promise: delivered within 5 s of the fault clearing


async def test_messages_wait_out_a_full_disk_and_arrive_without_a_restart(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    alice, bob = await start_nodes(["alice", "bob"])
    try:
        await befriend(alice, bob)
        full = True
        real_insert = Store.insert_messages

        def insert(store: Store, rows):  # type: ignore[no-untyped-def]
            if full and store.path == alice.profile.store_path:
                raise StoreIOError(store.path, "database or disk is full")
            return real_insert(store, rows)

        monkeypatch.setattr(Store, "insert_messages", insert)
        warnings = alice.subscribe()
        sent = [await bob.send_text(alice.me, f"m{i}") for i in range(20)]
        got = await wait_for(warnings, lambda e: isinstance(e, SecurityWarning))
        assert isinstance(got, SecurityWarning)
        assert "cannot be stored" in got.text
        assert (await bob.get_message(sent[0].id)).status < MessageStatus.DELIVERED  # type: ignore[union-attr]
        full = False  # space was freed
        for message in sent:
            assert await bob.wait_for_status(message.id, MessageStatus.DELIVERED, RECOVERY)
        assert [m.body for m in await alice.history(alice.direct_room(bob.me))][-20:] == [
            f"m{i}".encode() for i in range(20)
        ]
    finally:
        for node in (alice, bob):
            await node.stop()


_HOLD_LOCK = """
import sqlite3, sys
conn = sqlite3.connect(sys.argv[1], isolation_level=None, timeout=0)
conn.execute("BEGIN EXCLUSIVE")
print("locked", flush=True)
sys.stdin.read()
conn.execute("ROLLBACK")
"""


async def test_messages_wait_out_a_lock_held_by_another_program() -> None:
    alice, bob = await start_nodes(["alice", "bob"])
    try:
        await befriend(alice, bob)
        # Another program holds the store: a process of its own, since SQLite's locks
        # are POSIX locks, which a second SQLite library in this process would not see.
        other = await asyncio.create_subprocess_exec(
            sys.executable,
            "-c",
            _HOLD_LOCK,
            str(alice.profile.store_path),
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
        )
        assert other.stdin is not None
        assert other.stdout is not None
        try:
            async with asyncio.timeout(30):
                assert (await other.stdout.readline()).strip() == b"locked"
            warnings = alice.subscribe()
            sent = await bob.send_text(alice.me, "while locked")
            await wait_for(warnings, lambda e: isinstance(e, SecurityWarning))
        finally:
            other.stdin.close()  # the holder rolls back and exits
            async with asyncio.timeout(30):
                await other.wait()
        assert await bob.wait_for_status(sent.id, MessageStatus.DELIVERED, RECOVERY)
    finally:
        for node in (alice, bob):
            await node.stop()


async def test_sending_on_a_full_disk_says_so_plainly(monkeypatch: pytest.MonkeyPatch) -> None:
    alice, bob = await start_nodes(["alice", "bob"])
    server = ControlServer(NodeApi(alice), alice.profile.control_path)
    await server.start()
    try:
        await befriend(alice, bob)

        def full(store: Store, rows):  # type: ignore[no-untyped-def]
            raise StoreIOError(store.path, "database or disk is full")

        monkeypatch.setattr(Store, "insert_messages", full)
        client = await ControlClient.connect(alice.profile.control_path)
        try:
            with pytest.raises(ApiError) as caught:
                await client.call("send", {"peer": encode_peer_id(bob.me), "text": "hi"})
        finally:
            await client.close()
        text = str(caught.value)
        assert "internal error" not in text
        assert "is full" in text
        assert "free some space" in text
    finally:
        await server.stop()
        for node in (alice, bob):
            await node.stop()
