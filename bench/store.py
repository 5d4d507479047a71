"""Benchmark of the p2pchat store on a large history (default: 1,000,000 messages).

Builds a throwaway store in a temporary directory, then prints: bulk insert rate, the
time to open a room's latest 200 messages and to page back through it, the room list,
unread counts and heads, message search (p50/p95 over several kinds of query), and
durable write throughput with 1 vs 100 messages per transaction (synchronous=FULL, so
every commit is an fsync). Message bodies are text (words drawn with a skewed
frequency, one in ten messages Chinese), so the search index is as big as real text
makes it. Never run by the tests:
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


_LETTERS = "abcdefghijklmnopqrstuvwxyz"
_HAN = [chr(c) for c in range(0x4E00, 0x4E00 + 3000)]
#: A word that occurs in one message of 20,000: the "rare" query.
RARE = "zebracorn"


def _vocabulary(size: int = 5000) -> list[str]:
    """The bench's words, most frequent first (the same list on every call)."""
    rng = random.Random(7)
    return ["".join(rng.choices(_LETTERS, k=rng.randint(2, 9))) for _ in range(size)]


def _text(rng: random.Random, words: list[str], n: int) -> bytes:
    """A chat-like message: 3 to 30 words (skewed towards common ones) or Chinese."""
    if n % 20_000 == 7:
        return f"did you see the {RARE} today".encode()
    if rng.random() < 0.1:
        return "".join(rng.choices(_HAN[:1500], k=rng.randint(4, 40))).encode()
    count = rng.randint(3, 30)
    picked = [words[min(int(rng.paretovariate(1.2)) - 1, len(words) - 1)] for _ in range(count)]
    return " ".join(picked).encode()


def build(store: Store, total: int, rooms: int, authors: int) -> float:
    """Insert ``total`` messages (half in BIG_ROOM); return messages per second."""
    rng = random.Random(1)
    words = _vocabulary()
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
                    body=_text(rng, words, done + len(batch)),
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


def _percentiles(fn: Callable[[], object], repeat: int) -> tuple[float, float]:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1000)
    times.sort()
    return statistics.median(times), times[int(len(times) * 0.95) - 1]


def search_figures(store: Store) -> None:
    """Time Store.search_messages (50 results, as the app and CLI ask) on several queries."""
    words = _vocabulary()
    common = [w for w in words[:50] if len(w) >= 3][:10]
    mid = [w for w in words[200:400] if len(w) >= 5][:10]
    # Chinese queries taken from stored messages, so each has at least one hit.
    han = [
        m.body.decode()
        for m in store.latest_messages(BIG_ROOM, 2000)
        if not m.body.isascii() and len(m.body) >= 30
    ][:10]
    kinds: dict[str, list[tuple[str, dict[str, object]]]] = {
        "common word (thousands of hits)": [(w, {}) for w in common],
        "less common word": [(w, {}) for w in mid],
        "rare word (50 hits)": [(RARE, {})],
        "two words": [(f"{a} {b}", {}) for a, b in zip(common, mid, strict=False)],
        "absent word (no hit)": [("qqqxqqq", {})],
        "Chinese, 3 characters": [(t[4:7], {}) for t in han],
        "Chinese, 2 characters (bounded scan)": [(t[2:4], {}) for t in han],
        "1 ASCII letter (bounded scan)": [(c, {}) for c in "qjxz"],
        "common word in the big room": [(w, {"rooms": [BIG_ROOM]}) for w in common],
        "rare word, in a small room without it": [(RARE, {"rooms": [(3).to_bytes(16, "big")]})],
    }
    all_times: list[float] = []
    for label, queries in kinds.items():
        times = []
        hits = 0
        stopped = 0
        for _ in range(max(1, 20 // len(queries))):
            for text, kw in queries:
                t0 = time.perf_counter()
                found, resume = store.search_messages(text, limit=50, **kw)  # type: ignore[arg-type]
                times.append((time.perf_counter() - t0) * 1000)
                hits = max(hits, len(found))
                stopped += resume is not None
        times.sort()
        all_times.extend(times)
        p50 = statistics.median(times)
        p95 = times[max(0, int(len(times) * 0.95) - 1)]
        note = f", {stopped}/{len(times)} stopped at the time budget" if stopped else ""
        print(f"search, {label}: p50 {p50:.2f} ms, p95 {p95:.2f} ms ({hits} results shown{note})")
    all_times.sort()
    print(
        f"search, all queries above: p50 {statistics.median(all_times):.2f} ms,"
        f" p95 {all_times[int(len(all_times) * 0.95) - 1]:.2f} ms"
    )


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

            search_figures(store)

            one = durable_rate(store, per_tx=1, transactions=300)
            hundred = durable_rate(store, per_tx=100, transactions=30)
            print(f"durable add_messages, 1 msg/tx:   {one:,.0f} msgs/s")
            print(f"durable add_messages, 100 msg/tx: {hundred:,.0f} msgs/s")
        finally:
            store.close()


if __name__ == "__main__":
    main()
