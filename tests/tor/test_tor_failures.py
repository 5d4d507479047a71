"""A tor that is missing or hangs never holds up the node: it says so and retries.

These need no Tor network: the tor here is absent, or a stand-in that never answers
(a hung tor is outside our control, so a script plays it).
"""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path

import pytest

from p2pchat.node import TorStatus
from tests.nodes import make_node, wait_for


async def test_missing_tor_fails_visibly_without_holding_up_the_node(
    tmp_path: Path,
) -> None:
    node = make_node("alice", tor=True, tor_binary=str(tmp_path / "no-tor"))
    events = node.subscribe()
    started = time.monotonic()
    await node.start()
    try:
        assert time.monotonic() - started < 5  # tor never holds up the start
        failed = await wait_for(events, lambda e: isinstance(e, TorStatus) and e.state == "failed")
        assert isinstance(failed, TorStatus)
        assert "cannot run" in failed.detail
        assert node.links.proxy is None
    finally:
        await node.stop()


async def test_hung_tor_is_given_up_on_in_time_and_killed_on_stop(
    tmp_path: Path,
) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    pid_file = tmp_path / "tor.pid"
    fake = bin_dir / "tor"
    fake.write_text(f"#!/bin/sh\necho $$ > {pid_file}\nexec sleep 600\n")
    fake.chmod(0o755)
    node = make_node("alice", tor=True, tor_binary=str(fake), tor_bootstrap_timeout=1.5)
    events = node.subscribe()
    await node.start()
    try:
        failed = await wait_for(
            events, lambda e: isinstance(e, TorStatus) and e.state == "failed", 10
        )
        assert isinstance(failed, TorStatus)
        assert "did not open its control port" in failed.detail
    finally:
        async with asyncio.timeout(15):
            await node.stop()
    # The hung process was ended with the failed attempt (TERM, then KILL).
    pid = int(pid_file.read_text())
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)


async def test_tor_setting_is_remembered_per_profile(
    tmp_path: Path,
) -> None:
    # No real tor: nothing here may ever reach for the public Tor network.
    missing = str(tmp_path / "no-tor")
    for flag, expected in (
        (None, False),
        (True, True),
        (None, True),
        (False, False),
        (None, False),
    ):
        node = make_node("alice", tor=flag, tor_binary=missing)
        await node.start()
        try:
            assert node.onions.enabled is expected, (flag, expected)
        finally:
            await node.stop()


async def test_switching_tor_on_and_off_while_running(
    tmp_path: Path,
) -> None:
    # No real tor: it fails at once, and nothing reaches for the public Tor network.
    node = make_node("alice", tor_binary=str(tmp_path / "no-tor"))
    events = node.subscribe()
    await node.start()
    try:
        assert node.onions.enabled is False
        await node.onions.set_enabled(True)
        await wait_for(events, lambda e: isinstance(e, TorStatus) and e.state == "failed")
        assert node.onions.enabled is True
        node.links.add_target("x" * 56 + ".onion", 7373, "onion", b"\1" * 32)
        await node.onions.set_enabled(False)
        off = await wait_for(events, lambda e: isinstance(e, TorStatus) and e.state == "off")
        assert isinstance(off, TorStatus)
        assert node.onions.runner is None
        assert node.links.onion_targets(b"\1" * 32) == []
    finally:
        await node.stop()
    again = make_node("alice", tor_binary=str(tmp_path / "no-tor"))
    await again.start()
    try:
        assert again.onions.enabled is False  # the switch was remembered
    finally:
        await again.stop()
