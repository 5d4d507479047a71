"""Benchmark of the chat app: start-up, opening a 100,000-message room, memory.

Prints these figures:

* launch -> first frame: from spawning ``python`` to the app's first painted frame
  (interpreter start, imports, app and screen set-up; headless), median of a few runs,
  next to the same figure for an empty Textual app (the floor), and their ratio taken
  run by run (each pair back to back, so under the same load; target <= 1.5). The app
  goes through the command line's ``main`` as ``p2pchat`` does; the frame must show the
  app's top bar;
* launch -> chat list shown: the same process, until the node has started and the chat
  list is on screen (so moving work behind the first frame shows if it made the app
  slower to be usable);
* open a room of 100,000 messages: from the request to the latest page shown and laid
  out, in a running app whose node has started (median of several opens);
* peak RSS of that app process with the big room open.

With ``--live`` it measures live traffic instead (issue 12): two befriended nodes, each
its own process (``bench/_ui_live.py``), first headless, then each inside the chat app
(run headless by Textual's test driver, the chat open and visible), at 100 / 10,000 /
100,000 messages already in the room. One side sends a burst of ``--burst`` messages
from a script (``--window`` in flight); the rate is counted until the other side has
them all (the app: the last one shown in the open chat). Meanwhile the receiving app
gets a key every 20 ms in its composer, timed until the frame after it shows, and a
mouse-wheel notch over the chat every 50 ms (up, then down), timed until the frame
after the view moved (scrolling stays smooth: the same < 50 ms p99). After a
warm-up there are ``--rounds`` such bursts back to back in the same processes: the rate
is the median round's, and the keys of all rounds are pooled (a burst of 1,000 lasts
about a second, so one gives 15-20 keys, and its "p99" is only its slowest key; six
give about 100). It prints app/headless ratios, the CPU time each side used per 1,000
messages and the receiver's longest garbage-collector pause. ``--old-src DIR`` adds the
same app runs with another checkout's ``src`` (A/B against old code in the same run, on
the same loaded machine), in both modes.

The room is written straight into a throwaway profile's store (the node API would
sign and fsync 100,000 messages one by one), so only the app is measured. It never
touches a real profile: everything lives in a temporary P2PCHAT_HOME.

    .venv/bin/python bench/ui.py [--messages 100000] [--runs 5] [--old-src /tmp/old/src]
    .venv/bin/python bench/ui.py --live [--sizes 100,10000,100000] [--burst 2000]
                                 [--rounds 6] [--old-src /tmp/old/src] [--pace 1000]

Profiles of the bursts alone (each side, both modes): ``P2PCHAT_BENCH_PYSPY=dir``
(py-spy, collapsed stacks) or ``P2PCHAT_BENCH_PROFILE=dir`` (cProfile).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
PROFILE = "bench"


def build_room(home: Path, total: int) -> None:
    """A profile with a contact and a direct room holding ``total`` messages."""
    os.environ["P2PCHAT_HOME"] = str(home)
    from p2pchat.node.envelopes import direct_room_id
    from p2pchat.profile import open_profile
    from p2pchat.store import MessageStatus, NewMessage, Store

    profile = open_profile(PROFILE)
    profile.set_display_name("Bench")
    me = profile.identity.peer_id
    friend = b"F" * 32
    room = direct_room_id(me, friend)
    store = Store.open(profile.store_path, self_id=me)
    try:
        with store.transaction():
            store.upsert_peer(friend, name="Friend", state="contact", last_seen=None)
            store.ensure_room(room, "direct", created_at=0)
            store.set_member(room, me, "member", "joined")
            store.set_member(room, friend, "member", "joined")
        start = int(time.time() * 1000) - total * 1000
        seqs = {me: 0, friend: 0}
        batch: list[NewMessage] = []
        for i in range(total):
            author = me if i % 3 == 0 else friend
            seqs[author] += 1
            batch.append(
                NewMessage(
                    id=i.to_bytes(16, "big"),
                    room=room,
                    author=author,
                    seq=seqs[author],
                    lamport=i + 1,
                    sent_at=start + i * 1000,
                    received_at=start + i * 1000,
                    kind="text",
                    body=f"message {i}: the quick brown fox jumps over the lazy dog 🦊".encode(),
                    sig=b"\0" * 64,
                    status=MessageStatus.READ,
                )
            )
            if len(batch) == 10_000:
                store.add_messages(batch)
                batch = []
        store.add_messages(batch)
        last = store.latest_messages(room, 1)[-1]
        store.mark_room_read(room, last.rowid)
    finally:
        store.close()


# ---------------------------------------------------------------- child processes


class _Timing:
    """Notes the first painted frame, then the first frame with the chat list loaded
    (the node started and the sidebar filled), and prints both (then exits)."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.seen: dict[str, object] = {}

    def mounted(self) -> None:
        self.app.call_after_refresh(self.first_frame)

    def first_frame(self) -> None:
        screen = self.app.screen
        shown = "\n".join(strip.text for strip in screen._compositor.render_strips())
        self.seen.update(first_frame=time.time(), screen=type(screen).__name__, text=shown)
        self.timer = self.app.set_interval(0.005, self.poll)

    def poll(self) -> None:
        from p2pchat.ui.widgets.sidebar import Sidebar

        app = self.app
        if not getattr(app, "node_built", True) or not app.chat.node_ready:
            return
        if not app.chat.is_mounted or not app.chat.query_one(Sidebar).entries:
            return
        self.timer.stop()
        app.call_after_refresh(self.ready)

    def ready(self) -> None:
        self.seen["ready"] = time.time()
        assert sys.__stdout__ is not None  # Textual captures print()
        sys.__stdout__.write(json.dumps(self.seen) + "\n")
        sys.__stdout__.flush()
        self.app.exit(0)


def child_first_frame() -> None:
    """Run the app headless; print when its first frame was painted, and when the chat
    list was shown.

    New code (it has ``p2pchat.ui.launch``): exactly what ``p2pchat --profile bench``
    runs, through the command line's ``main``, with only the app's driver made headless
    and the node's configuration the one the old code gets here (loopback, no network
    start, no discovery; read in the build thread, after the first frame). Old code: the
    app around a node built before it (what ``run_app`` did then).
    """
    try:
        import p2pchat.ui.launch
    except ImportError:
        child_first_frame_old()
        return
    import p2pchat.cli
    import p2pchat.cli.app
    import p2pchat.ui.run
    from p2pchat.ui.app import ChatApp
    from p2pchat.ui.launch import Launch

    class Timed(ChatApp):
        def on_mount(self) -> None:  # Textual also runs ChatApp.on_mount
            _Timing(self).mounted()

    def headless(launch: Launch) -> int:
        Timed(launch).run(headless=True)
        return 0

    def bench_config(args: object) -> Any:
        from p2pchat.node import NodeConfig

        return NodeConfig(bind="127.0.0.1", discovery=False, network=False)

    p2pchat.ui.run.run_app = headless  # type: ignore[assignment]
    p2pchat.cli.app.node_config_from_args = bench_config
    p2pchat.cli.main(["--profile", PROFILE, "--no-mdns", "--no-announce"])


def child_first_frame_old() -> None:
    """The first frame of code from before ``ui.launch``: the node is built first."""
    from p2pchat.node import Node, NodeConfig
    from p2pchat.profile import open_profile
    from p2pchat.ui.app import ChatApp

    class Timed(ChatApp):
        def on_mount(self) -> None:  # Textual also runs ChatApp.on_mount
            _Timing(self).mounted()

    config = NodeConfig(bind="127.0.0.1", discovery=False, network=False)
    Timed(Node(open_profile(PROFILE), config), serve_control=False).run(headless=True)


def child_bare_frame() -> None:
    """Baseline: an empty Textual app's first frame (the floor for any Textual app)."""
    from textual.app import App

    class Bare(App[None]):
        def on_mount(self) -> None:
            self.call_after_refresh(self._painted)

        def _painted(self) -> None:
            assert sys.__stdout__ is not None
            sys.__stdout__.write(json.dumps({"first_frame": time.time()}) + "\n")
            sys.__stdout__.flush()
            self.exit()

    Bare().run(headless=True)


def child_open_room(runs: int) -> None:
    """Open the big room ``runs`` times; print timings and peak RSS."""
    import asyncio
    import resource

    from p2pchat.node import Node, NodeConfig
    from p2pchat.profile import open_profile
    from p2pchat.ui.app import ChatApp
    from p2pchat.ui.widgets.message_list import MessageList

    async def main() -> dict[str, object]:
        config = NodeConfig(bind="127.0.0.1", discovery=False, network=False)
        app = ChatApp(Node(open_profile(PROFILE), config), serve_control=False)
        opens: list[float] = []
        older: list[float] = []
        async with app.run_test(size=(100, 40)) as pilot:
            while not app.chat.node_ready:
                await pilot.pause(0.01)
            room = (await app.node.list_rooms())[0].room_id
            listing = app.chat.query_one(MessageList)
            for _ in range(runs):
                t0 = time.perf_counter()
                await app.chat.open_room(room)
                await pilot.pause()  # the layout and paint of the new page
                opens.append((time.perf_counter() - t0) * 1000)
                assert listing.loaded
                assert listing.items
            t0 = time.perf_counter()
            listing.load_older()
            await app.workers.wait_for_complete(list(app.workers)[-1:])
            await pilot.pause()
            older.append((time.perf_counter() - t0) * 1000)
            shown = len(listing.items)
        rss_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return {"open_ms": opens, "older_ms": older, "shown": shown, "rss_mb": rss_kb / 1024}

    print(json.dumps(asyncio.run(main())), flush=True)


# ---------------------------------------------------------------- parent


def _child(home: Path, src: Path, *args: str) -> tuple[float, dict[str, object]]:
    env = {**os.environ, "P2PCHAT_HOME": str(home), "PYTHONPATH": str(src)}
    t0 = time.time()
    out = subprocess.run(
        [sys.executable, __file__, *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    if out.returncode != 0:
        sys.exit(f"{' '.join(args)} failed:\n{out.stdout}\n{out.stderr}")
    line = [ln for ln in out.stdout.splitlines() if ln.startswith("{")][-1]
    return t0, json.loads(line)


# ---------------------------------------------------------------- live traffic (--live)

OLD_FRIEND = b"F" * 32  # author of the seeded history (not a live side: no seq clashes)


def build_pair(home: Path, total: int) -> None:
    """Profiles ``a`` and ``b``, contacts, sharing a direct room of ``total`` messages."""
    os.environ["P2PCHAT_HOME"] = str(home)
    from p2pchat.node.envelopes import direct_room_id
    from p2pchat.profile import open_profile
    from p2pchat.store import MessageStatus, NewMessage, Store

    a, b = open_profile("a"), open_profile("b")
    a.set_display_name("Ann")
    b.set_display_name("Bob")
    room = direct_room_id(a.identity.peer_id, b.identity.peer_id)
    start = int(time.time() * 1000) - total * 1000
    for profile, other in ((a, b), (b, a)):
        me = profile.identity.peer_id
        store = Store.open(profile.store_path, self_id=me)
        try:
            with store.transaction():
                store.upsert_peer(OLD_FRIEND, name="Old friend", state="contact", last_seen=None)
                store.ensure_room(room, "direct", created_at=0)
                store.set_member(room, me, "member", "joined")
                store.set_member(room, other.identity.peer_id, "member", "joined")
            for first in range(0, total, 10_000):
                store.add_messages(
                    [
                        NewMessage(
                            id=i.to_bytes(16, "big"),
                            room=room,
                            author=OLD_FRIEND,
                            seq=i + 1,
                            lamport=i + 1,
                            sent_at=start + i * 1000,
                            received_at=start + i * 1000,
                            kind="text",
                            body=f"old message {i}: the quick brown fox 🦊".encode(),
                            sig=b"\0" * 64,
                            status=MessageStatus.READ,
                        )
                        for i in range(first, min(total, first + 10_000))
                    ]
                )
            last = store.latest_messages(room, 1)
            if last:
                store.mark_room_read(room, last[-1].rowid)
        finally:
            store.close()


@dataclass
class LiveResult:
    """What the rounds of one live run measured."""

    rates: list[float] = field(default_factory=list)  # messages/s, round by round
    keys_ms: list[float] = field(default_factory=list)  # every round's keys, pooled
    scroll_ms: list[float] = field(default_factory=list)  # every round's wheel notches
    cpu_sender: float = 0.0  # seconds, all rounds
    cpu_receiver: float = 0.0
    wall: float = 0.0
    gc_ms: float = 0.0  # the receiver's longest garbage-collector pause
    gc_cpu_ms: float = 0.0  # the same in CPU time (the clock's counts waiting for a CPU)


async def live_run(
    home: Path, mode: str, src: Path, burst: int, window: int, rounds: int, pace: int = 0
) -> LiveResult:
    """``rounds`` measured bursts a -> b (both ``mode``), back to back after a warm-up."""
    sys.path.insert(0, str(ROOT / "bench"))
    from _child import Child

    env = {**os.environ, "P2PCHAT_HOME": str(home), "PYTHONPATH": str(src)}
    script = str(ROOT / "bench" / "_ui_live.py")
    children: list[Child] = []
    try:
        for name in ("a", "b"):
            proc = await asyncio.create_subprocess_exec(
                sys.executable,
                script,
                name,
                mode,
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                env=env,
                limit=16 * 1024 * 1024,
            )
            children.append(Child(proc, f"{name} ({mode})", 120.0))
        a, b = children
        hello_a, hello_b = await a.read(), await b.read()
        await asyncio.gather(
            a.request(cmd="connect", peer=hello_b["peer"], port=hello_b["port"]),
            b.request(cmd="connect", peer=hello_a["peer"], port=0),
        )
        result = LiveResult()
        # Warm up (first frames, caches), then the measured bursts, one after another.
        plan = [("warm", 20, False)]
        plan += [(f"burst{r}", burst, True) for r in range(rounds)]
        for tag, count, measured in plan:
            if measured and tag == "burst0":
                await asyncio.gather(a.request(cmd="spy"), b.request(cmd="spy"))
            assert b.proc.stdin is not None
            cpu_b = (await b.request(cmd="cpu"))["cpu"]
            expect = {
                "cmd": "expect",
                "count": count,
                "last": f"{tag} {count - 1}",
                "keys": measured and mode == "app",
                "measured": measured,
            }
            b.proc.stdin.write(json.dumps(expect).encode() + b"\n")
            await b.proc.stdin.drain()
            cpu_a = (await a.request(cmd="cpu"))["cpu"]
            sent = await a.request(
                600.0,
                cmd="burst",
                peer=hello_b["peer"],
                count=count,
                window=window,
                pace=pace,
                tag=tag,
                measured=measured,
            )
            got = await b.read(600.0)
            if not measured:
                continue
            wall = float(got["done"]) - float(sent["start"])
            result.rates.append(count / wall)
            result.wall += wall
            result.keys_ms += got["keys_ms"]
            result.scroll_ms += got.get("scroll_ms", [])
            result.cpu_sender += float(sent["cpu"]) - cpu_a
            result.cpu_receiver += float(got["cpu"]) - cpu_b
            result.gc_ms = max(result.gc_ms, float(got["gc_ms"]))
            result.gc_cpu_ms = max(result.gc_cpu_ms, float(got["gc_cpu_ms"]))
        await asyncio.gather(a.request(cmd="spy", stop=True), b.request(cmd="spy", stop=True))
        per = 1000 / (burst * rounds)
        print(
            f"    ({mode}: {rounds} bursts in {result.wall:.1f} s wall; CPU per 1,000 "
            f"messages: sender {result.cpu_sender * per:.2f} s, receiver "
            f"{result.cpu_receiver * per:.2f} s; receiver's longest GC pause "
            f"{result.gc_ms:.0f} ms, {result.gc_cpu_ms:.0f} ms of CPU)",
            flush=True,
        )
        return result
    finally:
        for child in children:
            await child.close(grace=60)


def pct(values: list[float], q: float) -> float:
    """The ``q`` quantile of ``values`` (0 when empty)."""
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def live(
    sizes: list[int], burst: int, window: int, rounds: int, old_src: Path | None, pace: int = 0
) -> None:
    """Headless pair vs app pair (vs old app pair) at each history size; print ratios."""
    variants: list[tuple[str, str, Path]] = [
        ("headless", "headless", ROOT / "src"),
        ("app", "app", ROOT / "src"),
    ]
    if old_src is not None:
        variants.append(("app (old code)", "app", old_src))
    paced = f", sent at {pace:,} msgs/s" if pace else ""
    print(
        f"{rounds} bursts of {burst:,} messages{paced}, {window} in flight, a -> b, each side "
        "its own process; rates are the median round"
    )
    for size in sizes:
        with tempfile.TemporaryDirectory(prefix="p2pchat-bench-live-") as tmp:
            seed = Path(tmp) / "seed"
            build_pair(seed, size)
            rates: dict[str, float] = {}
            for label, mode, src in variants:
                home = Path(tmp) / label.replace(" ", "_")
                shutil.copytree(seed, home)
                result = asyncio.run(live_run(home, mode, src, burst, window, rounds, pace))
                rate, keys = statistics.median(result.rates), result.keys_ms
                rates[label] = rate
                extra = ""
                for what, times in (("keys", keys), ("wheel", result.scroll_ms)):
                    if times:
                        extra += (
                            f"  {what}: p50 {pct(times, 0.5):.1f} ms, "
                            f"p99 {pct(times, 0.99):.1f} ms, max {max(times):.1f} ms "
                            f"(n={len(times)})"
                        )
                print(f"{size:>7,} in room  {label:<15} {rate:8.0f} msgs/s{extra}", flush=True)
            ratio = rates["app"] / rates["headless"]
            line = f"{size:>7,} in room  app / headless = {ratio:.2f} (target >= 0.5)"
            if "app (old code)" in rates:
                line += f"; new app / old app = {rates['app'] / rates['app (old code)']:.1f}x"
            print(line, flush=True)


def startup(home: Path, runs: int, messages: int, old_src: Path | None) -> None:
    """First frame (against an empty Textual app) and opening the big room; with
    ``old_src`` the same with another checkout's code, each run back to back."""
    variants = [("app", ROOT / "src")]
    if old_src is not None:
        variants.append(("old code", old_src))
    frames: dict[str, list[float]] = {label: [] for label, _ in variants}
    readies: dict[str, list[float]] = {label: [] for label, _ in variants}
    bare: list[float] = []
    for _ in range(runs):
        for label, src in variants:
            started, result = _child(home, src, "--child", "first-frame")
            # The frame timed is the app's own (its top bar), never a blank screen.
            assert "p2pchat" in str(result["text"]), result
            frames[label].append((float(result["first_frame"]) - started) * 1000)  # type: ignore[arg-type]
            readies[label].append((float(result["ready"]) - started) * 1000)  # type: ignore[arg-type]
        started, result = _child(home, ROOT / "src", "--child", "bare-frame")
        bare.append((float(result["first_frame"]) - started) * 1000)  # type: ignore[arg-type]
    print(f"launch -> first frame, an empty Textual app: median {statistics.median(bare):.0f} ms")
    for label, times in frames.items():
        paired = [f / b for f, b in zip(times, bare, strict=True)]  # run by run, same load
        print(
            f"launch -> first frame, {label:<8}: median {statistics.median(times):6.0f} ms "
            f"(min {min(times):.0f}, max {max(times):.0f}); / empty app, run by run: median "
            f"{statistics.median(paired):.2f}x (min {min(paired):.2f}; target <= 1.5)"
        )
    for label, times in readies.items():
        print(
            f"launch -> chat list shown, {label:<8}: median {statistics.median(times):6.0f} ms "
            f"(min {min(times):.0f}, max {max(times):.0f})"
        )
    for label, src in variants:
        _, result = _child(home, src, "--child", "open-room", "--runs", str(runs))
        opens = [float(x) for x in result["open_ms"]]  # type: ignore[attr-defined]
        older = [float(x) for x in result["older_ms"]]  # type: ignore[attr-defined]
        print(
            f"{label:<8}: open the {messages:,}-message room: median "
            f"{statistics.median(opens):.0f} ms (first {opens[0]:.0f}, max {max(opens):.0f}; "
            f"target < 300); one older page on scroll {older[0]:.0f} ms; peak RSS "
            f"{float(result['rss_mb']):.1f} MiB"  # type: ignore[arg-type]
        )


def main() -> None:
    """Build the big room, then measure in fresh processes."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--child", choices=["first-frame", "bare-frame", "open-room"])
    parser.add_argument("--live", action="store_true", help="live traffic between two apps")
    parser.add_argument("--sizes", default="100,10000,100000")
    parser.add_argument("--burst", type=int, default=2000)
    parser.add_argument("--window", type=int, default=64)
    parser.add_argument(
        "--pace",
        type=int,
        default=0,
        help="send the bursts at this many msgs/s (0: as fast as they go); with 1000, "
        "keys and wheel are timed at the rate issue 12's latency target names",
    )
    parser.add_argument(
        "--rounds",
        type=int,
        default=6,
        help="measured bursts per run, back to back (keys are pooled: about 100 of them)",
    )
    parser.add_argument("--old-src", type=Path, default=None)
    args = parser.parse_args()
    if args.live:
        sizes = [int(x) for x in args.sizes.split(",")]
        live(sizes, args.burst, args.window, args.rounds, args.old_src, args.pace)
        return
    if args.child == "first-frame":
        child_first_frame()
        return
    if args.child == "bare-frame":
        child_bare_frame()
        return
    if args.child == "open-room":
        child_open_room(args.runs)
        return

    with tempfile.TemporaryDirectory(prefix="p2pchat-bench-ui-") as tmp:
        home = Path(tmp)
        t0 = time.perf_counter()
        build_room(home, args.messages)
        print(f"built a room of {args.messages:,} messages in {time.perf_counter() - t0:.1f} s")

        startup(home, args.runs, args.messages, args.old_src)


if __name__ == "__main__":
    main()
