"""Desktop notifications through ``desktop-notifier``, without ever holding up the app.

desktop-notifier talks to the desktop's notification service itself: D-Bus
(``org.freedesktop.Notifications``) on Linux, WinRT on Windows. That replaces a
``notify-send`` child process per message, which needed libnotify's tool installed
and a process start each time. On macOS the library only works from an app bundle,
which a terminal program is not, so there are no desktop notifications there (the
terminal bell still works).

The guarantee is ours, not the library's: :meth:`DesktopNotifier.send` returns at once;
each notification is a task on the event loop (the D-Bus traffic is asynchronous
sockets, nothing blocks) with a :data:`DEADLINE`, after which it is cancelled: a
notification service that never answers costs nothing but a pending task, and at most
:data:`MAX_PENDING` of those exist (further notifications are dropped until they end).
Any failure (no session bus, no service) is swallowed: notifications are a courtesy.
Peer-written text is cleaned of control characters and the few characters
notification servers read as markup are escaped.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import sys
from pathlib import Path
from typing import Protocol

from p2pchat.ui.text import one_line

DEADLINE = 3.0
MAX_PENDING = 8
#: How long the notification stays up, in seconds (the service may ignore it).
SHOWN_FOR = 5

# desktop-notifier logs failures with tracebacks; with no logging configured Python
# would print them over the app's screen, and a handler configured for the process (the
# CLI's stderr formatter) would too. A notification that fails is not worth a line.
for _name in ("desktop_notifier", "dbus_fast"):
    _logger = logging.getLogger(_name)
    _logger.addHandler(logging.NullHandler())
    _logger.propagate = False


class Sender(Protocol):
    """What is needed of ``desktop_notifier.DesktopNotifier``."""

    async def send(
        self,
        title: str,
        message: str,
        *,
        timeout: int,  # noqa: ASYNC109 - the library's name for how long it stays up
    ) -> object: ...


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def service_expected() -> bool:
    """Whether this system can have a notification service desktop-notifier reaches."""
    if sys.platform.startswith("linux"):
        if os.environ.get("DBUS_SESSION_BUS_ADDRESS"):
            return True
        return Path(f"/run/user/{os.getuid()}/bus").exists()
    return sys.platform == "win32"


class DesktopNotifier:
    """Sends desktop notifications in the background; a no-op where there is no service."""

    def __init__(self, sender: Sender | None = None, *, enabled: bool | None = None) -> None:
        self._sender = sender
        self._enabled = service_expected() if enabled is None else enabled
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def available(self) -> bool:
        """True when this system has a notification service to send to."""
        return self._enabled

    @property
    def pending(self) -> int:
        """Notifications still waiting for the service (at most MAX_PENDING)."""
        return len(self._tasks)

    def send(self, title: str, body: str) -> None:
        """Start a notification and return at once (dropped if too many are pending)."""
        if not self._enabled or len(self._tasks) >= MAX_PENDING:
            return
        task = asyncio.get_running_loop().create_task(self._run(title, body))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _get_sender(self) -> Sender:
        if self._sender is None:
            # Imported on first use: D-Bus libraries are not needed to start the app.
            from desktop_notifier import DesktopNotifier as Library

            self._sender = Library(app_name="p2pchat")
        return self._sender

    async def _run(self, title: str, body: str) -> None:
        with contextlib.suppress(Exception):  # TimeoutError included: the deadline passed
            async with asyncio.timeout(DEADLINE):
                await self._get_sender().send(
                    title=_escape(one_line(title, 80)),
                    message=_escape(one_line(body, 200)),
                    timeout=SHOWN_FOR,
                )

    async def close(self) -> None:
        """Wait (briefly) for pending notifications; used when the app quits."""
        if self._tasks:
            await asyncio.wait(list(self._tasks), timeout=DEADLINE + 1)
