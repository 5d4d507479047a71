"""Desktop notifications go over D-Bus (desktop-notifier), never block the app, give
up after a deadline, and pass peer text cleaned and escaped.

Against a real ``dbus-daemon`` and a scripted notification service
(tests/ui/notification_server.py); nothing here needs a desktop.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from p2pchat.ui import notify
from p2pchat.ui.notify import MAX_PENDING, DesktopNotifier
from tests.ui.notification_server import notification_service, session_bus


@pytest.fixture(autouse=True)
def _no_cli_stderr_logging() -> Iterator[None]:
    """A CLI command run earlier in this process installed its stderr log handler (the
    app never does): take it away here, so these tests see what the app would print."""
    root = logging.getLogger()
    cli_handlers = [h for h in root.handlers if type(h).__name__ == "_StderrHandler"]
    for handler in cli_handlers:
        root.removeHandler(handler)
    yield
    for handler in cli_handlers:
        root.addHandler(handler)


async def test_notification_reaches_the_service_cleaned_and_escaped(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with session_bus(tmp_path) as address:
        monkeypatch.setenv("DBUS_SESSION_BUS_ADDRESS", address)
        async with notification_service(address) as service:
            notifier = DesktopNotifier()
            assert notifier.available
            notifier.send("<b>bob</b>", "hi\x1b[2J & <i>bye</i>\nsecond line")
            async with asyncio.timeout(10):
                await service.got.wait()
                await notifier.close()
    [got] = service.received
    assert got.app_name == "p2pchat"
    assert got.summary == "&lt;b&gt;bob&lt;/b&gt;"
    assert got.body == "hi␛[2J &amp; &lt;i&gt;bye&lt;/i&gt;⏎second line"
    assert got.expire_timeout == notify.SHOWN_FOR * 1000


async def test_a_service_that_never_answers_never_blocks_the_app(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(notify, "DEADLINE", 0.5)
    async with session_bus(tmp_path) as address:
        monkeypatch.setenv("DBUS_SESSION_BUS_ADDRESS", address)
        async with notification_service(address, hang=True) as service:
            notifier = DesktopNotifier()
            started = time.monotonic()
            for i in range(3 * MAX_PENDING):
                notifier.send("bob", f"hello {i}")
            assert time.monotonic() - started < 0.05  # send() never waits
            assert notifier.pending == MAX_PENDING  # a flood does not pile up work
            async with asyncio.timeout(10):
                await service.got.wait()
                # The loop stays free while the service sits on the call.
                tick = time.monotonic()
                await asyncio.sleep(0.01)
                assert time.monotonic() - tick < 0.2
                await notifier.close()
            assert notifier.pending == 0
            assert time.monotonic() - started < 5


async def test_no_service_on_the_bus_is_quiet(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(notify, "DEADLINE", 0.5)
    async with session_bus(tmp_path) as address:
        monkeypatch.setenv("DBUS_SESSION_BUS_ADDRESS", address)
        notifier = DesktopNotifier()
        notifier.send("bob", "hello")
        async with asyncio.timeout(5):
            await notifier.close()
    assert notifier.pending == 0
    out, err = capfd.readouterr()
    assert "Traceback" not in out + err  # nothing is printed over the app's screen


async def test_no_bus_at_all_is_quiet(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(notify, "DEADLINE", 0.5)
    monkeypatch.setenv("DBUS_SESSION_BUS_ADDRESS", f"unix:path={tmp_path / 'nothing'}")
    notifier = DesktopNotifier()
    notifier.send("bob", "hello")
    async with asyncio.timeout(5):
        await notifier.close()
    out, err = capfd.readouterr()
    assert "Traceback" not in out + err


def test_disabled_notifier_is_a_no_op() -> None:
    notifier = DesktopNotifier(enabled=False)
    assert not notifier.available
    notifier.send("bob", "hello")  # no running loop needed: nothing starts
