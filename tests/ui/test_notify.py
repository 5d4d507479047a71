"""Desktop notifications never block the app, are killed after a deadline, and pass
peer text as plain (escaped, cleaned) arguments."""

from __future__ import annotations

import asyncio
import stat
import time
from pathlib import Path

import pytest

from p2pchat.ui import notify
from p2pchat.ui.notify import DesktopNotifier


def _script(tmp_path: Path, body: str) -> str:
    path = tmp_path / "fake-notify-send"
    path.write_text(f"#!/bin/sh\n{body}\n", encoding="utf-8")
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return str(path)


async def test_a_hanging_notifier_returns_at_once_and_is_killed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(notify, "DEADLINE", 0.3)
    notifier = DesktopNotifier(_script(tmp_path, "sleep 30"))
    started = time.monotonic()
    notifier.send("bob", "hello")
    assert time.monotonic() - started < 0.05  # send() never waits
    async with asyncio.timeout(5):
        await notifier.close()
    assert time.monotonic() - started < 3


async def test_peer_text_is_cleaned_and_escaped(tmp_path: Path) -> None:
    out = tmp_path / "args"
    notifier = DesktopNotifier(_script(tmp_path, f'printf "%s\\n" "$@" > {out}'))
    notifier.send("<b>bob</b>", "hi\x1b[2J & <i>bye</i>")
    await notifier.close()
    args = out.read_text(encoding="utf-8").splitlines()
    assert args[-2] == "&lt;b&gt;bob&lt;/b&gt;"
    assert args[-1] == "hi␛[2J &amp; &lt;i&gt;bye&lt;/i&gt;"


def test_missing_notify_send_is_a_no_op() -> None:
    notifier = DesktopNotifier(program="")
    assert not notifier.available
    notifier.send("bob", "hello")  # no running loop needed: nothing starts
