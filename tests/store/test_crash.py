"""kill -9 in the middle of a write burst loses nothing that was reported committed."""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
from pathlib import Path

from p2pchat.store import Store

from .helpers import ROOM

_WRITER = textwrap.dedent(
    """
    import os, sys
    from p2pchat.store import NewMessage, Store
    room = b"R" * 16
    author = b"A" * 32
    s = Store.open(sys.argv[1])
    s.ensure_room(room, "group", created_at=1)
    seq = s.next_seq(room, author)
    committed = seq - 1
    while True:
        batch = []
        for _ in range(50):
            batch.append(NewMessage(id=os.urandom(16), room=room, author=author, seq=seq,
                lamport=seq, sent_at=seq, received_at=seq, kind="text",
                body=os.urandom(200), sig=b"s" * 64))
            seq += 1
        with s.transaction():
            s.add_messages(batch)
            s.enqueue(author, b"frame")
        committed += len(batch)
        # Printed only after COMMIT returned: this is what a delivered receipt promises.
        print(committed, flush=True)
    """
)


def test_kill_9_mid_burst_keeps_every_committed_batch(db_path: Path) -> None:
    db_path.parent.mkdir(parents=True)
    for _ in range(2):  # crash twice: recovery after a crash must itself be crash-safe
        proc = subprocess.Popen(
            [sys.executable, "-c", _WRITER, str(db_path)],
            stdout=subprocess.PIPE,
            text=True,
        )
        assert proc.stdout is not None
        last = 0
        start = None
        for line in proc.stdout:
            value = int(line)
            start = value if start is None else start
            last = value
            if last - start >= 1500:
                break
        proc.send_signal(signal.SIGKILL)
        # Lines printed before the kill may still be in the pipe.
        rest = proc.stdout.read().split()
        proc.wait()
        if rest:
            last = int(rest[-1])
        assert proc.returncode == -signal.SIGKILL

        with Store.open(db_path) as s:
            assert s.integrity_check() == ["ok"]
            count = s.message_count(ROOM)
            assert count >= last
            # A batch is all or nothing, and heads agree with the rows.
            assert count % 50 == 0
            assert s.heads(ROOM) == {b"A" * 32: count}
            assert len(s.pending_for(b"A" * 32, limit=10**6)) == count // 50
