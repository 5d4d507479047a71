"""``kill -9`` the receiver mid-transfer, start it again: the pull resumes from the part.

The receiver runs in a subprocess (``receiver_process.py``); its files connection goes
through a proxy the test freezes at a chosen chunk, so the kill always lands mid-file.
The test waits on lines the subprocess prints, never on time.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from p2pchat.identity import decode_peer_id
from p2pchat.node.events import PeerOnline
from p2pchat.node.transfer import PARTS_DIR
from tests.nodes import make_node
from tests.proxy import FaultProxy
from tests.transfer.helpers import sha256_file, write_random

REPO = Path(__file__).resolve().parents[2]
WAIT = 30.0


class Receiver:
    """The subprocess and its output lines."""

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc
        self.lines: list[str] = []

    @classmethod
    async def start(cls, log: Path, *args: str) -> Receiver:
        with log.open("ab") as err:
            proc = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "tests.transfer.receiver_process",
                *args,
                cwd=REPO,
                env={**os.environ, "PYTHONUNBUFFERED": "1"},
                stdout=asyncio.subprocess.PIPE,
                stderr=err,
            )
        return cls(proc)

    async def wait_line(self, predicate: object, within: float = WAIT) -> str:
        """The next line (read from now on) for which ``predicate(words)`` is true."""
        assert self.proc.stdout is not None
        check = predicate  # a callable taking the split line
        async with asyncio.timeout(within):
            while True:
                raw = await self.proc.stdout.readline()
                if not raw:
                    raise AssertionError(f"receiver exited; saw {self.lines[-20:]}")
                line = raw.decode().strip()
                self.lines.append(line)
                if check(line.split()):  # type: ignore[operator]
                    return line

    async def kill(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            self.proc.kill()
        await self.proc.wait()


@pytest.fixture
async def receivers() -> AsyncIterator[list[Receiver]]:
    made: list[Receiver] = []
    yield made
    for r in made:
        await r.kill()


async def test_kill_9_receiver_mid_transfer_then_resume(
    tmp_path: Path, receivers: list[Receiver]
) -> None:
    size = 32 * 1024 * 1024
    chunks = -(-size // 64000)
    src = tmp_path / "big.bin"
    digest = write_random(src, size)
    downloads = tmp_path / "downloads"
    alice = make_node("alice")
    await alice.start()
    served_before = served_after = 0
    killed = False

    def hook(direction: str, index: int, data: bytes) -> list[bytes]:
        nonlocal served_before, served_after
        if direction == "s2c" and index > 0:
            if killed:
                served_after += 1
            else:
                served_before += 1
                if served_before == 100:
                    proxy.paused.clear()  # freeze mid-file until the kill
        return [data]

    proxy = await FaultProxy("127.0.0.1", alice.port, hook=hook).start()
    args = (
        "--profile",
        "bob",
        "--peer",
        f"127.0.0.1:{alice.port}",
        "--accept",
        alice.peer_id_text,
        "--downloads",
        str(downloads),
        "--files-via",
        f"127.0.0.1:{proxy.port}",
    )
    try:
        online = alice.subscribe()
        bob = await Receiver.start(tmp_path / "bob.log", *args)
        receivers.append(bob)
        ready = await bob.wait_line(lambda w: w[:1] == ["READY"])
        bob_id = decode_peer_id(ready.split()[2])
        async with asyncio.timeout(WAIT):
            if not alice.links.is_online(bob_id):
                await online.next_matching(
                    lambda e: isinstance(e, PeerOnline) and e.peer_id == bob_id
                )
        msg = await alice.transfers.send_file(bob_id, src)
        mid = msg.id.hex()
        await bob.wait_line(lambda w: w[:3] == ["STATE", mid, "active"] and int(w[3]) >= 50 * 64000)
        await bob.kill()
        killed = True
        part = downloads / PARTS_DIR / f"{bob_id.hex()[:16]}-{mid}.part"
        on_disk = part.stat().st_size
        print(f"killed with {on_disk} of {size} bytes in the part")
        assert 0 < on_disk < size
        proxy.cut_all()
        proxy.paused.set()

        bob2 = await Receiver.start(tmp_path / "bob.log", *args)
        receivers.append(bob2)
        resumed = await bob2.wait_line(lambda w: w[:2] == ["RESUME", mid])
        assert int(resumed.split()[3]) == on_disk
        done = await bob2.wait_line(lambda w: w[:2] == ["DONE", mid], within=60)
        saved = Path(done.split(maxsplit=2)[2])
        assert saved.parent == downloads
        assert sha256_file(saved) == digest
        # Resumed, not restarted: far fewer chunks were served after the restart.
        print(f"chunks served: {served_before} before the kill, {served_after} after")
        assert served_after <= chunks - on_disk // 64000 + 16
        assert not part.exists()
    finally:
        await proxy.stop()
        await alice.stop()
