"""Run ``p2pchat`` as real subprocesses and wait on what they print (never on time)."""

from __future__ import annotations

import os
import queue
import random
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

WAIT = 20.0


def _ephemeral_floor() -> int:
    """The lowest port the kernel hands out for ``bind(0)`` and outgoing connections."""
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now, from below the kernel's ephemeral range.

    A port the kernel chose with ``bind(0)`` comes from the same range as the local ports
    of outgoing connections, so by the time a subprocess binds it some outgoing connection
    (the test Tor network makes many) may hold it: CI saw "port already in use". Ports
    below that range are only ever taken by an explicit bind.
    """
    floor = _ephemeral_floor()
    if floor > 12000:
        for _ in range(200):
            port = random.randrange(10000, floor)
            if port in _handed_out:  # two calls in a row must not give the same port
                continue
            with socket.socket() as s:
                try:
                    s.bind(("127.0.0.1", port))
                except OSError:
                    continue
            _handed_out.add(port)
            return port
    with socket.socket() as s:  # an unusual range: let the kernel choose
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


_handed_out: set[int] = set()


def cli(
    *args: str, home: Path, timeout: float = 60, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    """Run one ``p2pchat`` command to completion."""
    env = {**os.environ, "P2PCHAT_HOME": str(home)}
    return subprocess.run(
        [sys.executable, "-m", "p2pchat", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=timeout,
        input=stdin,
        check=False,
    )


class Serve:
    """A ``p2pchat serve`` process whose output lines can be awaited."""

    def __init__(self, profile: str, home: Path, *args: str) -> None:
        env = {**os.environ, "P2PCHAT_HOME": str(home), "PYTHONUNBUFFERED": "1"}
        if "--interface" not in args:
            # Tests connect by address and keep off mDNS altogether: no packet may leave
            # for a real network, and no other p2pchat on this machine may wander in.
            args = (*args, "--no-mdns")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "p2pchat", "--profile", profile, "serve", *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env=env,
        )
        self.lines: list[str] = []
        self._queue: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self._queue.put(line.rstrip("\n"))
        self._queue.put(None)

    def wait_for(self, text: str, timeout: float = WAIT) -> str:
        """Block until a line containing ``text`` is printed; return it."""
        for line in self.lines:
            if text in line:
                return line
        end = time.monotonic() + timeout
        while (left := end - time.monotonic()) > 0:
            try:
                line = self._queue.get(timeout=left)
            except queue.Empty:
                break
            if line is None:
                raise AssertionError(f"serve exited waiting for {text!r}: {self.lines}")
            self.lines.append(line)
            if text in line:
                return line
        raise AssertionError(f"no line with {text!r} within {timeout} s: {self.lines}")

    def stop(self, sig: int = signal.SIGTERM) -> int:
        """Signal the process and wait for it to exit; return its exit code."""
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout=WAIT)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            raise
