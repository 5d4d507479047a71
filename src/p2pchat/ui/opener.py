"""Opening a received file (or its folder) with the system's default application.

``xdg-open`` (Linux, BSD) or ``open`` (macOS) runs as a child process in the
background: the app never waits for it, and the file name is an argument (no shell), so
a hostile name cannot run anything. Without either program the app shows the path.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import subprocess
import sys
from pathlib import Path

#: How long a launcher may run before it is left to itself (it is killed at app exit).
DEADLINE = 10.0


def default_program() -> str | None:
    """``open`` on macOS, else ``xdg-open``; None when neither exists."""
    names = ("open",) if sys.platform == "darwin" else ("xdg-open",)
    for name in names:
        found = shutil.which(name)
        if found:
            return found
    return None


class Opener:
    """Starts the default application for a path and returns at once."""

    def __init__(self, program: str | None = None) -> None:
        self.program = program if program is not None else default_program()
        self._tasks: set[asyncio.Task[None]] = set()
        self.opened: list[Path] = []  # what was handed to the program (tests read it)

    @property
    def available(self) -> bool:
        """True when there is a program to open files with."""
        return bool(self.program)

    def open(self, path: Path) -> bool:
        """Open ``path`` in the background; False when no program exists to do it."""
        if not self.program:
            return False
        self.opened.append(path)
        task = asyncio.get_running_loop().create_task(self._run(path))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return True

    async def _run(self, path: Path) -> None:
        assert self.program is not None
        try:
            proc = await asyncio.create_subprocess_exec(
                self.program,
                str(path),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                start_new_session=True,  # the viewer outlives neither a ctrl+c nor us
            )
        except OSError:
            self.program = None
            return
        try:
            async with asyncio.timeout(DEADLINE):
                await proc.wait()
        except TimeoutError:
            pass  # a launcher that stays (some do): leave it running

    async def close(self) -> None:
        """Forget launchers still running (they are separate sessions)."""
        for task in list(self._tasks):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
