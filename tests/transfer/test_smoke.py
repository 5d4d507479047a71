from __future__ import annotations

from pathlib import Path

from tests.transfer.helpers import sha256_file, start_pair, wait_final, write_random


async def test_small_file(tmp_path: Path) -> None:
    alice, bob = await start_pair(tmp_path)
    try:
        src = tmp_path / "hello.bin"
        digest = write_random(src, 200_000)
        stream = bob.subscribe()
        msg = await alice.transfers.send_file(bob.me, src)
        info = await wait_final(bob, stream, msg.id, within=20)
        assert info.state == "done", info
        assert info.path is not None
        assert sha256_file(Path(info.path)) == digest
    finally:
        await alice.stop()
        await bob.stop()
