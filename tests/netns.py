"""Reusable network-namespace harness: N namespaces on one private link, for real-network tests.

``netns_network(n)`` creates ``n`` namespaces named ``p2pc<pid>_<i>`` (unique per test process),
each with an interface called ``veth0`` carrying ``10.X.Y.<i+1>/24`` and multicast enabled. Two
namespaces are joined by a single veth pair; more than two hang off a bridge in an extra hub
namespace. Everything (namespaces, links, processes started through the harness) is torn down
on exit, even when setup or the test fails half-way. It needs root and ``ip``; tests call
``require_netns()`` (or use the ``netns`` fixtures) to skip with a clear reason otherwise.

It must never touch the host's own network namespace beyond creating and moving the veth ends,
and never send traffic anywhere but between its own namespaces.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import queue
import shutil
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pytest

__all__ = [
    "LineReader",
    "Netns",
    "NetnsNetwork",
    "netns_network",
    "netns_unavailable_reason",
    "require_netns",
]

_counter = itertools.count()
_IP_TIMEOUT = 10.0


def _ip(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    ip = shutil.which("ip") or "ip"
    return subprocess.run(
        [ip, *args], capture_output=True, text=True, timeout=_IP_TIMEOUT, check=check
    )


_cached_reason: list[str | None] = []


def netns_unavailable_reason() -> str | None:
    """``None`` when namespaces can be used here, else a human-readable reason (cached)."""
    if _cached_reason:
        return _cached_reason[0]
    reason: str | None = None
    if not hasattr(os, "geteuid") or os.geteuid() != 0:
        reason = "needs root for ip netns: not running as root"
    elif shutil.which("ip") is None:
        reason = "needs root for ip netns: the `ip` command (iproute2) is not installed"
    else:
        name = f"p2pcprobe{os.getpid()}"
        try:
            _ip("netns", "add", name)
        except (subprocess.CalledProcessError, subprocess.TimeoutExpired, OSError) as exc:
            detail = getattr(exc, "stderr", "") or str(exc)
            reason = f"needs root for ip netns: `ip netns add` failed: {detail.strip()}"
        else:
            _ip("netns", "del", name, check=False)
    _cached_reason.append(reason)
    return reason


def require_netns() -> None:
    """Skip the calling test when network namespaces are not usable here."""
    reason = netns_unavailable_reason()
    if reason is not None:
        pytest.skip(reason)


class LineReader:
    """Collects a subprocess's stdout lines on a thread so tests can wait with a timeout."""

    def __init__(self, proc: subprocess.Popen[str]) -> None:
        self.lines: queue.Queue[str] = queue.Queue()
        self._proc = proc
        self._thread = threading.Thread(target=self._pump, daemon=True)
        self._thread.start()

    def _pump(self) -> None:
        assert self._proc.stdout is not None
        for line in self._proc.stdout:
            self.lines.put(line.rstrip("\n"))

    def next_line(self, timeout: float) -> str:
        """The next line; raises ``TimeoutError`` if none arrives in time."""
        try:
            return self.lines.get(timeout=timeout)
        except queue.Empty:
            raise TimeoutError(f"no output line within {timeout} s") from None


@dataclass
class Netns:
    """One namespace of the network: its name, its address and its link's name inside it."""

    name: str
    address: str
    interface: str = "veth0"
    _procs: list[subprocess.Popen[str]] = field(default_factory=list, repr=False)

    def argv(self, *command: str) -> list[str]:
        """``command`` wrapped to run inside this namespace."""
        return [shutil.which("ip") or "ip", "netns", "exec", self.name, *command]

    def python_argv(self, code: str | None = None, script: Path | None = None) -> list[str]:
        """argv for the test's own interpreter (the venv's) running ``code`` or ``script``."""
        if (code is None) == (script is None):
            raise ValueError("give exactly one of code= or script=")
        tail = ["-c", code] if code is not None else [str(script)]
        return self.argv(sys.executable, *tail)

    def run(self, *command: str, timeout: float = 30.0) -> subprocess.CompletedProcess[str]:
        """Run a command in the namespace and wait for it (killed after ``timeout``)."""
        return subprocess.run(
            self.argv(*command), capture_output=True, text=True, timeout=timeout, check=False
        )

    def run_python(
        self,
        code: str | None = None,
        *args: str,
        script: Path | None = None,
        timeout: float = 30.0,
    ) -> subprocess.CompletedProcess[str]:
        """Run a Python snippet or script file in the namespace, with a timeout."""
        return subprocess.run(
            [*self.python_argv(code, script), *args],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    def popen_python(
        self, code: str | None = None, *args: str, script: Path | None = None
    ) -> subprocess.Popen[str]:
        """Start Python in the namespace (stdin/stdout/stderr piped, line-buffered text); the
        harness kills it at teardown if it is still running. Read stdout (``LineReader``) and
        keep stderr small or drain it, or the child blocks once a pipe buffer fills."""
        proc = subprocess.Popen(
            [*self.python_argv(code, script), *args],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            bufsize=1,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        self._procs.append(proc)
        return proc

    def _kill_processes(self) -> None:
        for proc in self._procs:
            if proc.poll() is None:
                proc.kill()
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=5)
            for stream in (proc.stdin, proc.stdout, proc.stderr):
                if stream is not None:
                    with contextlib.suppress(OSError):
                        stream.close()
        # Anything else still inside *our* namespace was started by this test (e.g. a grandchild).
        pids = _ip("netns", "pids", self.name, check=False).stdout.split()
        for pid in pids:
            with contextlib.suppress(ProcessLookupError, ValueError):
                os.kill(int(pid), signal.SIGKILL)


@dataclass
class NetnsNetwork:
    """The namespaces of one ``netns_network`` (``members``), all in ``subnet``.

    With more than two members they hang off bridge ``br0`` in the ``hub`` namespace, one
    port per member (``ports[i]``); :meth:`partition` and :meth:`heal` move those ports
    between bridges to split the network into islands (unicast and multicast alike).
    """

    members: list[Netns]
    subnet: str
    hub: str | None = None
    ports: list[str] = field(default_factory=list)
    _islands: list[str] = field(default_factory=list, repr=False)

    def __getitem__(self, index: int) -> Netns:
        return self.members[index]

    def __len__(self) -> int:
        return len(self.members)

    def partition(self, *groups: Sequence[int]) -> None:
        """Split the network: members in different ``groups`` can no longer reach each other
        (each group but the first gets a bridge of its own; members in no group stay on
        ``br0`` with the first). Like pulling cables: open connections just go silent."""
        if self.hub is None:
            raise ValueError("partitions need a bridged network (three or more members)")
        self.heal()
        for k, group in enumerate(groups[1:], start=1):
            bridge = f"br{k}"
            _ip("-n", self.hub, "link", "add", bridge, "type", "bridge")
            self._islands.append(bridge)
            _ip("-n", self.hub, "link", "set", bridge, "up")
            for i in group:
                _ip("-n", self.hub, "link", "set", self.ports[i], "master", bridge)

    def heal(self) -> None:
        """Undo :meth:`partition`: every member back on one bridge."""
        if self.hub is None or not self._islands:
            return
        for port in self.ports:
            _ip("-n", self.hub, "link", "set", port, "master", "br0")
        for bridge in self._islands:
            _ip("-n", self.hub, "link", "del", bridge, check=False)
        self._islands.clear()


def _subnet_octets() -> tuple[int, int]:
    # Namespaces are isolated, so clashes with the host do not matter; distinct values just make
    # captures and logs from concurrent runs easy to tell apart.
    n = next(_counter)
    return 100 + (os.getpid() % 100), (os.getpid() // 100 + n) % 250 + 1


@contextlib.contextmanager
def netns_network(n: int = 2) -> Iterator[NetnsNetwork]:
    """Create ``n`` (>= 2) joined namespaces; tear everything down on exit, even on failure."""
    if n < 2:
        raise ValueError("a network needs at least two namespaces")
    require_netns()
    tag = f"{os.getpid()}_{next(_counter)}"
    x, y = _subnet_octets()
    members = [Netns(name=f"p2pc{tag}_{i}", address=f"10.{x}.{y}.{i + 1}") for i in range(n)]
    hub = f"p2pc{tag}_hub" if n > 2 else None
    created: list[str] = []
    root_links: list[str] = []
    with contextlib.ExitStack() as cleanup:

        def _teardown() -> None:
            for member in members:
                if member.name in created:
                    member._kill_processes()
            for link in root_links:
                _ip("link", "del", link, check=False)
            for name in reversed(created):
                _ip("netns", "del", name, check=False)

        cleanup.callback(_teardown)
        for name in [m.name for m in members] + ([hub] if hub else []):
            _ip("netns", "add", name)
            created.append(name)
            _ip("-n", name, "link", "set", "lo", "up")
        # Link names are global until moved and limited to 15 bytes, hence the short form.
        short = f"{os.getpid() % 100000}{tag.rsplit('_', 1)[1]}"
        ports: list[str] = []  # the bridge's end of each member's link, in the hub
        if hub is None:
            a, b = f"pa{short}", f"pb{short}"
            root_links += [a, b]
            _ip("link", "add", a, "type", "veth", "peer", "name", b)
            for link, member in ((a, members[0]), (b, members[1])):
                _ip("link", "set", link, "netns", member.name)
                root_links.remove(link)
                _ip("-n", member.name, "link", "set", link, "name", member.interface)
        else:
            _ip("-n", hub, "link", "add", "br0", "type", "bridge")
            _ip("-n", hub, "link", "set", "br0", "up")
            for i, member in enumerate(members):
                inner, outer = f"pi{short}_{i}", f"po{short}_{i}"
                root_links += [inner, outer]
                _ip("link", "add", inner, "type", "veth", "peer", "name", outer)
                _ip("link", "set", inner, "netns", member.name)
                root_links.remove(inner)
                _ip("link", "set", outer, "netns", hub)
                root_links.remove(outer)
                _ip("-n", member.name, "link", "set", inner, "name", member.interface)
                _ip("-n", hub, "link", "set", outer, "master", "br0")
                _ip("-n", hub, "link", "set", outer, "up")
                ports.append(outer)
        for member in members:
            dev = member.interface
            _ip("-n", member.name, "addr", "add", f"{member.address}/24", "dev", dev)
            _ip("-n", member.name, "link", "set", dev, "multicast", "on")
            _ip("-n", member.name, "link", "set", dev, "up")
            # Without a default route, make the multicast destination explicit.
            _ip("-n", member.name, "route", "add", "224.0.0.0/4", "dev", dev)
        yield NetnsNetwork(
            members=members,
            subnet=f"10.{x}.{y}.0/24",
            hub=hub,
            ports=ports,
        )


def namespaces_exist(names: Sequence[str]) -> list[str]:
    """Which of ``names`` still exist (used to check teardown)."""
    listed = _ip("netns", "list", check=False).stdout.split()
    return [n for n in names if n in listed]
