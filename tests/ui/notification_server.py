"""A private D-Bus session bus and a scripted desktop notification service on it.

The notification path is tested against a real ``dbus-daemon`` (started per test on a
socket in a temporary folder) and a service speaking ``org.freedesktop.Notifications``,
which records what it is sent and, if asked to, never answers.
"""

# dbus-fast reads D-Bus signatures from string annotations ("as", "a{sv}"), which are not
# Python expressions, so this module has no `from __future__ import annotations`.
# ruff: noqa: F722, F821

import asyncio
import contextlib
import shutil
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

from dbus_fast.aio import MessageBus
from dbus_fast.service import ServiceInterface, method

NAME = "org.freedesktop.Notifications"
PATH = "/org/freedesktop/Notifications"


@dataclass
class Received:
    """One Notify call as the service saw it."""

    app_name: str
    summary: str
    body: str
    expire_timeout: int


class Notifications(ServiceInterface):
    """The notification service: records calls; ``hang`` makes Notify never answer."""

    def __init__(self, hang: bool = False) -> None:
        super().__init__(NAME)
        self.hang = hang
        self.received: list[Received] = []
        self.got = asyncio.Event()

    @method()
    def GetCapabilities(self) -> "as":
        return ["body"]

    @method()
    def GetServerInformation(self) -> "ssss":
        return ["scripted", "p2pchat tests", "1.0", "1.2"]

    @method()
    async def Notify(
        self,
        app_name: "s",
        replaces_id: "u",
        app_icon: "s",
        summary: "s",
        body: "s",
        actions: "as",
        hints: "a{sv}",
        expire_timeout: "i",
    ) -> "u":
        self.received.append(Received(app_name, summary, body, expire_timeout))
        self.got.set()
        if self.hang:
            await asyncio.sleep(3600)  # cancelled when the test's bus goes away
        return len(self.received)


@contextlib.asynccontextmanager
async def session_bus(folder: Path) -> AsyncIterator[str]:
    """A private ``dbus-daemon`` on a socket in ``folder``; yields its address."""
    daemon = shutil.which("dbus-daemon")
    if daemon is None:
        import pytest

        pytest.skip("dbus-daemon is not installed")
    address = f"unix:path={folder / 'bus'}"
    proc = await asyncio.create_subprocess_exec(
        daemon,
        "--session",
        "--nofork",
        "--nopidfile",
        f"--address={address}",
        "--print-address=1",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
    )
    try:
        assert proc.stdout is not None
        async with asyncio.timeout(10):
            printed = (await proc.stdout.readline()).decode().strip()
        assert printed.startswith("unix:path="), printed
        yield printed
    finally:
        with contextlib.suppress(ProcessLookupError):
            proc.terminate()
        async with asyncio.timeout(10):
            await proc.wait()


@contextlib.asynccontextmanager
async def notification_service(address: str, hang: bool = False) -> AsyncIterator[Notifications]:
    """The scripted service, owning the notification name on the bus at ``address``."""
    bus = await MessageBus(bus_address=address).connect()
    service = Notifications(hang)
    bus.export(PATH, service)
    await bus.request_name(NAME)
    try:
        yield service
    finally:
        bus.disconnect()
