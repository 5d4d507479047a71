"""A benchmark's child process, spoken to in JSON lines over its stdin/stdout.

Shared by the benches that run a node in another process (as real peers are): send a
command, read the answer, and stop the child politely, killing it if it hangs.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from typing import Any


class Child:
    """A running child script; ``name`` is only used in error messages."""

    def __init__(self, proc: asyncio.subprocess.Process, name: str, step: float) -> None:
        self.proc = proc
        self.name = name
        self.step = step

    async def read(self, within: float | None = None) -> dict[str, Any]:
        """The child's next JSON line (TimeoutError after ``within``, EOFError if it died)."""
        assert self.proc.stdout is not None
        async with asyncio.timeout(self.step if within is None else within):
            line = await self.proc.stdout.readline()
        if not line:
            code = await self.proc.wait()
            raise EOFError(f"{self.name} exited with {code} (its stderr is above)")
        result: dict[str, Any] = json.loads(line)
        return result

    async def request(self, within: float | None = None, **command: Any) -> dict[str, Any]:
        """Send one command, return the child's answer."""
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps(command).encode() + b"\n")
        await self.proc.stdin.drain()
        return await self.read(within)

    async def close(self, grace: float = 10.0) -> None:
        """Ask the child to stop; kill it if it does not within ``grace`` seconds."""
        if self.proc.returncode is None:
            with contextlib.suppress(Exception):
                assert self.proc.stdin is not None
                self.proc.stdin.write(b'{"cmd": "stop"}\n')
                await self.proc.stdin.drain()
                self.proc.stdin.close()
            try:
                async with asyncio.timeout(grace):
                    await self.proc.wait()
            except TimeoutError:
                self.proc.kill()
                await self.proc.wait()
