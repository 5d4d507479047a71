"""A bench child: one node (headless, or inside the chat app run headless), on JSON lines.

Used by ``bench/ui.py --live``: each side of a measured pair is its own process, as
people run the app. Commands (one JSON object a line on stdin, one answer a line):

* ``{"cmd": "connect", "peer": text, "port": n}``: dial, wait online, accept; in app
  mode also open the chat with that peer (the chat visible while messages arrive).
* ``{"cmd": "expect", "count": n, "last": text}``: answer ``{"done": t}`` (monotonic
  clock, system-wide on Linux) once ``count`` incoming messages arrived and, in app
  mode, the message ``last`` is shown in the open chat; with ``"keys": true`` it also
  types into the composer every 20 ms meanwhile and reports each key's latency (from
  the key event to the frame after the composer holds it), and turns the mouse wheel
  over the chat every 50 ms, up then down, timing each notch from the event to the
  frame after the view moved (``scroll_ms``). The answer also gives the
  longest pause of Python's garbage collector meanwhile (``gc_ms``).
* ``{"cmd": "burst", "count": n, "window": w, "tag": text, "pace": r}``: send ``count``
  messages (``w`` in flight; with ``pace``, at ``r`` a second), answer
  ``{"start": t, "end": t}``.
* ``{"cmd": "cpu"}``: this process's CPU time so far.
* ``{"cmd": "stop"}``.

A command with ``"measured": true`` is profiled when ``P2PCHAT_BENCH_PROFILE=dir`` is
set (cProfile, only while such commands are served). With ``P2PCHAT_BENCH_PYSPY=dir``
``{"cmd": "spy"}`` starts py-spy on this process (collapsed stacks of the threads
holding the GIL, 1,000 a second) and ``{"cmd": "spy", "stop": true}`` stops it: a
sampling profile of the bursts alone, with far less overhead than cProfile.

    P2PCHAT_HOME=... python bench/_ui_live.py NAME headless|app
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import json
import logging
import os
import signal
import sys
import time
from typing import Any

WAIT = 60.0


def say(obj: dict[str, Any]) -> None:
    """One answer line (on the real stdout: Textual captures ``print``)."""
    assert sys.__stdout__ is not None
    sys.__stdout__.write(json.dumps(obj) + "\n")
    sys.__stdout__.flush()


async def stdin_lines() -> asyncio.StreamReader:
    """Standard input as an asyncio stream."""
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    return reader


class GcPauses:
    """The longest pause of the cyclic garbage collector since ``reset`` (ms), on the
    clock and in CPU time (on a loaded machine the clock also counts waiting for a CPU)."""

    def __init__(self) -> None:
        self.longest = self.longest_cpu = 0.0
        self._began = self._began_cpu = 0.0
        gc.callbacks.append(self._callback)

    def reset(self) -> None:
        """Start counting again."""
        self.longest = self.longest_cpu = 0.0

    def _callback(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._began, self._began_cpu = time.perf_counter(), time.thread_time()
        else:
            self.longest = max(self.longest, (time.perf_counter() - self._began) * 1000)
            cpu = (time.thread_time() - self._began_cpu) * 1000
            self.longest_cpu = max(self.longest_cpu, cpu)


async def spy(name: str, mode: str) -> asyncio.subprocess.Process | None:
    """py-spy on this process until stopped (with ``P2PCHAT_BENCH_PYSPY=dir``)."""
    out = os.environ.get("P2PCHAT_BENCH_PYSPY")
    if not out:
        return None
    spy_exe = os.path.join(os.path.dirname(sys.executable), "py-spy")
    target = os.path.join(out, f"{name}-{mode}.txt")
    proc = await asyncio.create_subprocess_exec(
        *(spy_exe, "record", "-p", str(os.getpid()), "-r", "1000", "-f", "raw", "-g"),
        *("--nonblocking", "-o", target),
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )
    await asyncio.sleep(1.0)  # py-spy attaches (nothing else happens meanwhile)
    return proc


async def run(name: str, mode: str, profiler: Any = None) -> None:
    """Serve commands until ``stop`` (``profiler``, a ``cProfile.Profile``, runs only
    while a command marked ``"measured"`` is served)."""
    from textual import events

    from p2pchat.identity import decode_peer_id
    from p2pchat.node import MessageAdded, Node, NodeConfig, PeerOnline
    from p2pchat.profile import open_profile
    from p2pchat.ui.app import ChatApp
    from p2pchat.ui.notify import DesktopNotifier
    from p2pchat.ui.widgets.composer import Composer
    from p2pchat.ui.widgets.message_list import MessageList

    pauses = GcPauses()
    node = Node(open_profile(name), NodeConfig(bind="127.0.0.1", discovery=False))
    stream = node.subscribe()
    incoming = 0
    arrived = asyncio.Event()

    async def watch() -> None:
        nonlocal incoming
        async for e in stream:
            if isinstance(e, MessageAdded) and e.incoming:
                incoming += 1
                arrived.set()
            elif isinstance(e, PeerOnline):
                arrived.set()

    watcher = asyncio.create_task(watch())
    await node.start()
    app: ChatApp | None = None
    if mode == "app":
        app = ChatApp(node, owns_node=False, serve_control=False, desktop=DesktopNotifier(""))
    async with contextlib.AsyncExitStack() as stack:
        pilot = await stack.enter_async_context(app.run_test(size=(100, 30))) if app else None
        if app is not None:
            async with asyncio.timeout(WAIT):
                while not app.chat.node_ready:  # noqa: ASYNC110 - a UI flag, polled
                    await asyncio.sleep(0.01)
        say({"port": node.port, "peer": node.peer_id_text})
        reader = await stdin_lines()
        spying: asyncio.subprocess.Process | None = None
        while line := await reader.readline():
            msg = json.loads(line)
            cmd = msg["cmd"]
            if profiler is not None and msg.get("measured"):
                profiler.enable()
            if cmd == "connect":
                peer = decode_peer_id(msg["peer"])
                if msg.get("port"):
                    node.links.add_target("127.0.0.1", msg["port"], "manual", peer)
                async with asyncio.timeout(WAIT):
                    while not node.links.is_online(peer):
                        arrived.clear()
                        with contextlib.suppress(TimeoutError):
                            await asyncio.wait_for(arrived.wait(), 0.1)
                await node.accept(peer)
                if app is not None:
                    await app.chat.open_room(node.direct_room(peer))
                    assert pilot is not None
                    await pilot.pause()
                    app.chat.query_one(Composer).focus()
                say({"connected": True})
            elif cmd == "expect":
                base = incoming - msg.get("already", 0)
                pauses.reset()
                count, last = msg["count"], msg["last"].encode()
                latencies: list[float] = []

                def shown(base: int = base, count: int = count, last: bytes = last) -> bool:
                    if incoming - base < count:
                        return False
                    if app is None:
                        return True
                    item = app.chat.query_one(MessageList).last_item()
                    return item is not None and item.message.body == last

                async def typing(latencies: list[float] = latencies) -> None:
                    assert app is not None
                    composer = app.chat.query_one(Composer)
                    while True:
                        await asyncio.sleep(0.02)
                        before = len(composer.text)
                        t0 = time.perf_counter()
                        app.post_message(events.Key("x", "x"))
                        while len(composer.text) == before:  # noqa: ASYNC110 - polled
                            await asyncio.sleep(0.001)
                        painted = asyncio.Event()
                        app.call_after_refresh(painted.set)
                        await painted.wait()
                        latencies.append((time.perf_counter() - t0) * 1000)
                        if len(composer.text) > 200:
                            composer.clear()

                scrolls: list[float] = []

                async def wheeling(latencies: list[float] = scrolls) -> None:
                    """A mouse wheel over the list every 50 ms, up then down: each notch
                    timed from the event to the frame after the view moved."""
                    assert app is not None
                    listing = app.chat.query_one(MessageList)
                    up = True
                    while True:
                        await asyncio.sleep(0.05)
                        if (up and listing.scroll_y <= 0) or (
                            not up and listing.scroll_y >= listing.max_scroll_y
                        ):
                            up = not up
                            continue
                        region = listing.region
                        x, y = region.x + region.width // 2, region.y + region.height // 2
                        wheel = events.MouseScrollUp if up else events.MouseScrollDown
                        before = listing.scroll_y
                        t0 = time.perf_counter()
                        app.post_message(
                            wheel(None, x, y, 0, -1 if up else 1, 0, False, False, False, x, y)
                        )
                        while listing.scroll_y == before:  # noqa: ASYNC110 - polled
                            await asyncio.sleep(0.001)
                        painted = asyncio.Event()
                        app.call_after_refresh(painted.set)
                        await painted.wait()
                        latencies.append((time.perf_counter() - t0) * 1000)
                        up = not up

                measuring = app is not None and msg.get("keys")
                typer = asyncio.create_task(typing()) if measuring else None
                wheel_task = asyncio.create_task(wheeling()) if measuring else None
                try:
                    async with asyncio.timeout(msg.get("within", 600)):
                        while not shown():  # noqa: ASYNC110 - the UI's state, polled
                            await asyncio.sleep(0.005)
                finally:
                    for task in (typer, wheel_task):
                        if task is not None:
                            task.cancel()
                say(
                    {
                        "done": time.monotonic(),
                        "keys_ms": latencies,
                        "scroll_ms": scrolls,
                        "cpu": time.process_time(),
                        "gc_ms": pauses.longest,
                        "gc_cpu_ms": pauses.longest_cpu,
                    }
                )
            elif cmd == "burst":
                peer = decode_peer_id(msg["peer"])
                gate = asyncio.Semaphore(msg["window"])
                tag = msg["tag"]

                async def one(
                    i: int, gate: asyncio.Semaphore = gate, peer: bytes = peer, tag: str = tag
                ) -> None:
                    async with gate:
                        await node.send_text(peer, f"{tag} {i}")

                start = time.monotonic()
                pace = msg.get("pace") or 0
                if pace:
                    # At ``pace`` msgs/s: each message leaves at its due time (still at
                    # most ``window`` in flight), as a busy chat would send them.
                    sends = []
                    for i in range(msg["count"]):
                        late = start + i / pace - time.monotonic()
                        if late > 0.001:
                            await asyncio.sleep(late)
                        sends.append(asyncio.create_task(one(i)))
                    await asyncio.gather(*sends)
                else:
                    await asyncio.gather(*(one(i) for i in range(msg["count"])))
                say({"start": start, "end": time.monotonic(), "cpu": time.process_time()})
            elif cmd == "cpu":
                say({"cpu": time.process_time()})
            elif cmd == "spy":
                if msg.get("stop") and spying is not None:
                    spying.send_signal(signal.SIGINT)  # py-spy writes its file and ends
                    await spying.wait()
                    spying = None
                elif not msg.get("stop"):
                    spying = spying or await spy(name, mode)
                say({"spying": spying is not None})
            elif cmd == "stop":
                break
            if profiler is not None and msg.get("measured"):
                profiler.disable()
    watcher.cancel()
    stream.close()
    await node.stop()
    say({"stopped": True})


def main() -> None:
    """``_ui_live.py NAME headless|app``."""
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    if "P2PCHAT_HOME" not in os.environ:
        sys.exit("P2PCHAT_HOME must be set (never touch a real profile)")
    out = os.environ.get("P2PCHAT_BENCH_PROFILE")  # a directory: cProfile each side's burst
    if not out:
        asyncio.run(run(sys.argv[1], sys.argv[2]))
        return
    import cProfile

    prof = cProfile.Profile()
    asyncio.run(run(sys.argv[1], sys.argv[2], prof))
    prof.dump_stats(os.path.join(out, f"{sys.argv[1]}-{sys.argv[2]}.prof"))


if __name__ == "__main__":
    main()
