"""Benchmark of the p2pchat store on a large history (default: 1,000,000 messages).

Builds a throwaway store in a temporary directory, then prints: bulk insert rate, the
time to open a room's latest 200 messages and to page back through it, the room list,
unread counts and heads, message search (p50/p95 over several kinds of query), durable
write throughput with 1 vs 100 messages per transaction (synchronous=FULL, so every
commit is an fsync) and its CPU time per message, and the time to open the store.
Message bodies are text (words drawn with a skewed frequency, one in ten messages
Chinese), so the search index is as big as real text makes it. Never run by the tests:
figures are machine-dependent and measured here only. It must never touch a real profile.

Everything is measured twice in the same run: on a plain store and on one encrypted as
with a passphrase (AEGIS-256 through SQLite3 Multiple Ciphers, random 32-byte key),
printed side by side with the ratio.

    .venv/bin/python bench/store.py [--messages 1000000] [--dir /some/tmp] [--plain-only]
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

from p2pchat.store import NewMessage, Store, db

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


def durable_rate(store: Store, per_tx: int, transactions: int) -> tuple[float, float]:
    """Messages per second when each transaction commits ``per_tx`` new messages, and
    the CPU time per message in µs (this process: SQLite, the cipher, Python; not the
    disk's wait for fsync, so it stays comparable on a loaded machine)."""
    author = b"W" * 32
    room = BIG_ROOM
    seq = store.next_seq(room, author)
    lamport = store.max_lamport(room)
    c0 = time.process_time()
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
    wall = time.perf_counter() - t0
    cpu = time.process_time() - c0
    return per_tx * transactions / wall, cpu * 1e6 / (per_tx * transactions)


def _percentiles(fn: Callable[[], object], repeat: int) -> tuple[float, float]:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1000)
    times.sort()
    return statistics.median(times), times[int(len(times) * 0.95) - 1]


def search_figures(store: Store) -> dict[str, float]:
    """Time Store.search_messages (50 results, as the app and CLI ask) on several queries."""
    fig: dict[str, float] = {}
    words = _vocabulary()
    common = [w for w in words[:50] if len(w) >= 3][:10]
    mid = [w for w in words[200:400] if len(w) >= 5][:10]
    # Chinese queries taken from stored messages, so each has at least one hit.
    han = [
        m.body.decode()
        for m in store.latest_messages(BIG_ROOM, 5000)
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
        if not queries:
            continue  # (no Chinese text among the latest messages after durable writes)
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
        fig[f"search, {label}: p50 ms"] = p50
        fig[f"search, {label}: p95 ms"] = p95
        if stopped:
            fig[f"search, {label}: stopped at the time budget"] = stopped
        fig[f"search, {label}: results shown"] = hits
    all_times.sort()
    fig["search, all queries above: p50 ms"] = statistics.median(all_times)
    fig["search, all queries above: p95 ms"] = all_times[int(len(all_times) * 0.95) - 1]
    return fig


def build_and_open(path: Path, args: argparse.Namespace, key: bytes | None) -> dict[str, float]:
    """Build a store at ``path`` (encrypted with ``key``, or plain); time the build and two
    reopens: as the clean close left it (no pass over the pages) and after the file was
    written by something else (quick_check reads every page)."""
    fig: dict[str, float] = {}
    with Store.open(path, self_id=SELF, key=key) as store:
        fig["bulk insert (add_messages, 10k/tx), msgs/s"] = build(
            store, args.messages, args.rooms, args.authors
        )
        # What the node's background indexer does in 8,000-character steps, at once.
        t0 = time.perf_counter()
        store.index_queued(None)
        fig["search index of the queued texts, msgs/s"] = args.messages / (time.perf_counter() - t0)
    fig["store size, MB"] = sum(p.stat().st_size for p in path.parent.iterdir()) / 1e6
    t0 = time.perf_counter()
    Store.open(path, self_id=SELF, key=key).close()
    fig["open (existing, as a clean close left it), ms"] = (time.perf_counter() - t0) * 1000
    touch_in_place(path)
    t0 = time.perf_counter()
    Store.open(path, self_id=SELF, key=key).close()
    fig["open (the file written since: quick_check), ms"] = (time.perf_counter() - t0) * 1000
    return fig


def touch_in_place(path: Path) -> None:
    """Write one byte of the closed store back unchanged, as another program might: its
    change time moves, so the next start checks every page (see store/health.py)."""
    with path.open("r+b") as f:
        f.seek(4096)
        same = f.read(1)
        f.seek(4096)
        f.write(same)


def reads_and_writes(store: Store) -> dict[str, float]:
    """One round of the query and durable-write figures on an open store."""
    fig: dict[str, float] = {}
    _, fig["latest_messages(200), median ms"] = _timeit(
        lambda: store.latest_messages(BIG_ROOM, 200)
    )
    # Page back 50 screens of 200 from the end, as scrolling up would.
    page = store.latest_messages(BIG_ROOM, 200)
    t0 = time.perf_counter()
    pages = 0
    while pages < 50 and page:  # fewer when the room is small
        page = store.messages_before(BIG_ROOM, page[0].cursor, 200)
        pages += 1
    fig["messages_before(200), 50 pages back, ms/page"] = (time.perf_counter() - t0) * 1000 / pages
    middle = store.latest_messages(BIG_ROOM, 1)[0].lamport // 2
    cursor = (middle, b"\x00" * 32, b"\x00" * 16)
    _, fig["messages_before(200) at mid-history, median ms"] = _timeit(
        lambda: store.messages_before(BIG_ROOM, cursor, 200)
    )
    _, fig["list_rooms (all unread, capped at 999), median ms"] = _timeit(
        store.list_rooms, repeat=5
    )
    _, fig["unread_count (never opened), median ms"] = _timeit(lambda: store.unread_count(BIG_ROOM))
    latest = store.latest_messages(BIG_ROOM, 200)
    store.mark_room_read(BIG_ROOM, latest[0].rowid)
    _, fig["unread_count (~200 unread), median ms"] = _timeit(lambda: store.unread_count(BIG_ROOM))
    _, fig["heads, median ms"] = _timeit(lambda: store.heads(BIG_ROOM))
    _, fig["message_count(big room), median ms"] = _timeit(
        lambda: store.message_count(BIG_ROOM), repeat=3
    )
    fig.update(search_figures(store))
    # Enough commits that one slow fsync of the VM or disk moves the figure little.
    for per_tx, transactions in ((1, 1000), (100, 30)):
        rate, cpu = durable_rate(store, per_tx, transactions)
        fig[f"durable add_messages {per_tx} msg/tx, msgs/s"] = rate
        fig[f"durable add_messages {per_tx} msg/tx, CPU us/msg"] = cpu
    return fig


def main() -> None:
    """Build a plain and an encrypted store, then time both, round by round, alternating
    which goes first: load from other programs then falls on both alike."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--messages", type=int, default=1_000_000)
    ap.add_argument("--rooms", type=int, default=50)
    ap.add_argument("--authors", type=int, default=20)
    ap.add_argument("--rounds", type=int, default=3, help="rounds of queries (median kept)")
    ap.add_argument("--dir", type=Path, default=None, help="parent of the temp dir")
    ap.add_argument("--plain-only", action="store_true", help="skip the encrypted store")
    args = ap.parse_args()

    keys: dict[str, bytes | None] = {"plain": None}
    if not args.plain_only:
        keys["encrypted"] = os.urandom(32)
    figs: dict[str, dict[str, list[float]]] = {label: {} for label in keys}
    with tempfile.TemporaryDirectory(prefix="p2pchat-bench-", dir=args.dir) as tmp:
        paths = {}
        for label, key in keys.items():
            (Path(tmp) / label).mkdir()
            paths[label] = Path(tmp) / label / "store.sqlite"
            for name, value in build_and_open(paths[label], args, key).items():
                figs[label].setdefault(name, []).append(value)
        stores = {label: Store.open(paths[label], self_id=SELF, key=keys[label]) for label in keys}
        try:
            for n in range(args.rounds):
                order = list(keys) if n % 2 == 0 else list(reversed(keys))
                for label in order:
                    for name, value in reads_and_writes(stores[label]).items():
                        figs[label].setdefault(name, []).append(value)
        finally:
            for store in stores.values():
                store.close()
    print(
        f"{args.messages:,} messages in {args.rooms} rooms by {args.authors} authors, "
        f"half in one big room ({db.codec_version()}); queries: median of "
        f"{args.rounds} rounds, plain and encrypted alternating"
    )
    plain = {k: statistics.median(v) for k, v in figs["plain"].items()}
    enc = {k: statistics.median(v) for k, v in figs.get("encrypted", {}).items()} or None
    head = f"{'':62} {'plain':>12}" + (f" {'encrypted':>12} {'enc/plain':>10}" if enc else "")
    print(head)
    for name in dict.fromkeys([*plain, *(enc or {})]):
        value = plain.get(name, 0.0)
        line = f"{name:62} {value:12,.3f}"
        if enc is not None:
            other = enc.get(name, 0.0)
            line += f" {other:12,.3f} {other / value if value else 0:10.2f}"
        print(line)
    if enc is not None:
        print(
            "ratios: for rates (msgs/s) below 1 means encrypted is slower; for times (ms) "
            "above 1 means encrypted is slower. Target: within 25 % on the hot paths."
        )


if __name__ == "__main__":
    main()
