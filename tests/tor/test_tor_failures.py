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
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))  # no tor anywhere
    node = make_node("alice", tor=True)
    events = node.subscribe()
    started = time.monotonic()
    await node.start()
    try:
        assert time.monotonic() - started < 5  # tor never holds up the start
        failed = await wait_for(events, lambda e: isinstance(e, TorStatus) and e.state == "failed")
        assert isinstance(failed, TorStatus)
        assert "cannot run 'tor'" in failed.detail
        assert node.links.proxy is None
    finally:
        await node.stop()


async def test_hung_tor_is_given_up_on_in_time_and_killed_on_stop(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    pid_file = tmp_path / "tor.pid"
    fake = bin_dir / "tor"
    fake.write_text(f"#!/bin/sh\necho $$ > {pid_file}\nexec sleep 600\n")
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    node = make_node("alice", tor=True, tor_bootstrap_timeout=1.5)
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
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # No tor on PATH: nothing here may ever reach for the real Tor network.
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    for flag, expected in (
        (None, False),
        (True, True),
        (None, True),
        (False, False),
        (None, False),
    ):
        node = make_node("alice", tor=flag)
        await node.start()
        try:
            assert node.onions.enabled is expected, (flag, expected)
        finally:
            await node.stop()


async def test_switching_tor_on_and_off_while_running(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))  # tor fails at once: no network
    node = make_node("alice")
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
    again = make_node("alice")
    await again.start()
    try:
        assert again.onions.enabled is False  # the switch was remembered
    finally:
        await again.stop()
