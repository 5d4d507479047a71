"""Benchmark of the p2pchat store on a large history (default: 1,000,000 messages).

Builds a throwaway store in a temporary directory, then prints: bulk insert rate, the
time to open a room's latest 200 messages and to page back through it, the room list,
unread counts and heads, and durable write throughput with 1 vs 100 messages per
transaction (synchronous=FULL, so every commit is an fsync). Never run by the tests:
figures are machine-dependent and measured here only. It must never touch a real profile.

    .venv/bin/python bench/store.py [--messages 1000000] [--dir /some/tmp]
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from p2pchat.store import NewMessage, Store

BIG_ROOM = b"B" * 16
SELF = b"S" * 32


def _timeit(fn: Callable[[], object], repeat: int = 20) -> tuple[float, float]:
    """Return (first call, median of the rest) in milliseconds."""
    times = []
    for _ in range(repeat + 1):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1000)
    return times[0], statistics.median(times[1:])


def build(store: Store, total: int, rooms: int, authors: int) -> float:
    """Insert ``total`` messages (half in BIG_ROOM); return messages per second."""
    rng = random.Random(1)
    room_ids = [BIG_ROOM] + [i.to_bytes(16, "big") for i in range(1, rooms)]
    author_ids = [SELF] + [i.to_bytes(32, "big") for i in range(1, authors)]
    for r in room_ids:
        store.ensure_room(r, "group", name=r.hex()[:8], created_at=0)
    seqs: dict[tuple[bytes, bytes], int] = {}
    lamports = dict.fromkeys(room_ids, 0)
    batch_size = 10_000
    t0 = time.perf_counter()
    done = 0
    while done < total:
        batch = []
        for _ in range(min(batch_size, total - done)):
            room = BIG_ROOM if rng.random() < 0.5 else rng.choice(room_ids[1:])
            author = rng.choice(author_ids)
            seq = seqs.get((room, author), 0) + 1
            seqs[room, author] = seq
            lamports[room] += 1
            batch.append(
                NewMessage(
                    id=rng.randbytes(16),
                    room=room,
                    author=author,
                    seq=seq,
                    lamport=lamports[room],
                    sent_at=1_700_000_000_000 + done,
                    received_at=1_700_000_000_000 + done,
                    kind="text",
                    body=rng.randbytes(rng.randint(20, 200)),
                    sig=rng.randbytes(64),
                )
            )
        store.add_messages(batch)  # one transaction per 10,000 rows
        done += len(batch)
    return total / (time.perf_counter() - t0)


def durable_rate(store: Store, per_tx: int, transactions: int) -> float:
    """Messages per second when each transaction commits ``per_tx`` new messages."""
    author = b"W" * 32
    room = BIG_ROOM
    seq = store.next_seq(room, author)
    lamport = store.max_lamport(room)
    t0 = time.perf_counter()
    for _ in range(transactions):
        rows = []
        for _ in range(per_tx):
            lamport += 1
            rows.append(
                NewMessage(
                    id=os.urandom(16),
                    room=room,
                    author=author,
                    seq=seq,
                    lamport=lamport,
                    sent_at=0,
                    received_at=0,
                    kind="text",
                    body=b"x" * 100,
                    sig=b"s" * 64,
                )
            )
            seq += 1
        store.add_messages(rows)  # its own transaction: one fsync'd commit
    return per_tx * transactions / (time.perf_counter() - t0)


def main() -> None:
    """Build the store and print the figures."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--messages", type=int, default=1_000_000)
    ap.add_argument("--rooms", type=int, default=50)
    ap.add_argument("--authors", type=int, default=20)
    ap.add_argument("--dir", type=Path, default=None, help="parent of the temp dir")
    args = ap.parse_args()

    with tempfile.TemporaryDirectory(prefix="p2pchat-bench-", dir=args.dir) as tmp:
        path = Path(tmp) / "store.sqlite"
        with Store.open(path, self_id=SELF) as store:
            rate = build(store, args.messages, args.rooms, args.authors)
            print(f"bulk insert (add_messages, 10k/tx): {rate:,.0f} msgs/s")
        size = sum(p.stat().st_size for p in Path(tmp).iterdir())
        print(f"store size: {size / 1e6:,.0f} MB for {args.messages:,} messages")

        t0 = time.perf_counter()
        store = Store.open(path, self_id=SELF)
        print(
            f"open (existing, {args.messages:,} msgs): {(time.perf_counter() - t0) * 1000:.1f} ms"
        )
        try:
            big = store.message_count(BIG_ROOM)
            print(f"big room holds {big:,} messages")
            first, med = _timeit(lambda: store.latest_messages(BIG_ROOM, 200))
            print(f"latest_messages(200): first {first:.2f} ms, median {med:.2f} ms")

            # Page back 50 screens of 200 from the end, as scrolling up would.
            page = store.latest_messages(BIG_ROOM, 200)
            t0 = time.perf_counter()
            pages = 0
            for _ in range(50):
                page = store.messages_before(BIG_ROOM, page[0].cursor, 200)
                pages += 1
            per_page = (time.perf_counter() - t0) * 1000 / pages
            print(f"messages_before(200), 50 pages back: {per_page:.2f} ms/page")

            # A page deep in history (half way back).
            middle = store.latest_messages(BIG_ROOM, 1)[0].lamport // 2
            cursor = (middle, b"\x00" * 32, b"\x00" * 16)
            _, med = _timeit(lambda: store.messages_before(BIG_ROOM, cursor, 200))
            print(f"messages_before(200) at mid-history: median {med:.2f} ms")

            _, med = _timeit(store.list_rooms, repeat=5)
            print(
                f"list_rooms ({args.rooms} rooms, all unread, capped at 999): median {med:.2f} ms"
            )
            _, med = _timeit(lambda: store.unread_count(BIG_ROOM))
            print(f"unread_count (never opened, capped at 999): median {med:.3f} ms")
            latest = store.latest_messages(BIG_ROOM, 200)
            store.mark_room_read(BIG_ROOM, latest[0].rowid)
            _, med = _timeit(lambda: store.unread_count(BIG_ROOM))
            print(f"unread_count (~200 unread): median {med:.3f} ms")
            _, med = _timeit(lambda: store.heads(BIG_ROOM))
            print(f"heads ({args.authors} authors): median {med:.3f} ms")
            _, med = _timeit(lambda: store.message_count(BIG_ROOM), repeat=3)
            print(f"message_count(big room): median {med:.1f} ms (O(room), not on hot path)")

            one = durable_rate(store, per_tx=1, transactions=300)
            hundred = durable_rate(store, per_tx=100, transactions=30)
            print(f"durable add_messages, 1 msg/tx:   {one:,.0f} msgs/s")
            print(f"durable add_messages, 100 msg/tx: {hundred:,.0f} msgs/s")
        finally:
            store.close()


if __name__ == "__main__":
    main()
