"""Desktop notifications through ``notify-send``, when the system has it.

It runs as a child process the app never waits on from the UI: no D-Bus notification
service means notify-send can hang, so each call has a deadline and is killed after it.
Peer-written text is passed as an argument (no shell), cleaned of control characters and
with the few characters notification servers read as markup escaped.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import subprocess

from p2pchat.ui.text import one_line

DEADLINE = 3.0


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


class DesktopNotifier:
    """Sends desktop notifications in the background; a no-op without notify-send."""

    def __init__(self, program: str | None = None) -> None:
        self.program = program if program is not None else shutil.which("notify-send")
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def available(self) -> bool:
        """True when notify-send exists on this system."""
        return bool(self.program)

    def send(self, title: str, body: str) -> None:
        """Start a notification and return at once."""
        if not self.program:
            return
        task = asyncio.get_running_loop().create_task(self._run(title, body))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _run(self, title: str, body: str) -> None:
        assert self.program is not None
        try:
            proc = await asyncio.create_subprocess_exec(
                self.program,
                "--app-name=p2pchat",
                "--expire-time=5000",
                "--",
                _escape(one_line(title, 80)),
                _escape(one_line(body, 200)),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        except OSError:
            self.program = None  # broken install: stop trying
            return
        try:
            async with asyncio.timeout(DEADLINE):
                await proc.wait()
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            await proc.wait()

    async def close(self) -> None:
        """Wait (briefly) for running notifications; used when the app quits."""
        if self._tasks:
            await asyncio.wait(list(self._tasks), timeout=DEADLINE + 1)
